"""Every model of the app, where Django (and everyone else) looks for them.

The models live with their feature (inventory, healthcheck, notifications, access, landscape,
rotation); one app
label, ``certmgr``, so tables, migrations and permissions are the same as before the split.
"""

from .access.models import AuditEvent, ExternalIdentity
from .api.models import ApiToken
from .healthcheck.models import HealthCheckRun
from .inventory.models import (
    RESERVED_SLUGS,
    Application,
    Certificate,
    default_check_interval,
    state_q,
    tenant_conflict_message,
    tenant_key,
    warning_threshold,
)
from .landscape.models import Binding, DiscoveredApplication, Foundry
from .notifications.models import Notice, NotificationChannel, UserPreference
from .rotation.models import PendingKey

__all__ = [
    "ApiToken",
    "RESERVED_SLUGS",
    "Application",
    "AuditEvent",
    "Binding",
    "Certificate",
    "DiscoveredApplication",
    "ExternalIdentity",
    "Foundry",
    "HealthCheckRun",
    "Notice",
    "NotificationChannel",
    "PendingKey",
    "UserPreference",
    "default_check_interval",
    "state_q",
    "tenant_conflict_message",
    "tenant_key",
    "warning_threshold",
]
