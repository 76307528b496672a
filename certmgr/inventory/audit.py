"""How the audit log describes an application's creation and changes (page and admin alike)."""

from __future__ import annotations

from ..access.auditdiff import AuditSpec, audit_snapshot, audit_value
from .forms import ApplicationForm
from .models import Application

APPLICATION_AUDIT_LABELS = {
    "tenant_url": "tenant URL",
    "client_id": "client id",
    "domains": "trusted domains",
    "backend_url": "backend URL",
    "backend_mtls": "backend mTLS",
    "check_interval_minutes": "check interval (minutes)",
    "deploy_tool": "deployed with",
    "cf_app_name": "app name",
    "cf_service_instance": "IAS service instance",
    "cf_binding_name": "service key / binding in use",
    "kyma_namespace": "Kyma namespace",
    "kyma_binding_name": "ServiceBinding in use",
}
# The form's fields, and the thresholds (set on the notifications page and in the admin), which
# the log names right before the check interval.
_FIELDS = ApplicationForm.Meta.fields
_AT = _FIELDS.index("check_interval_minutes")
_AUDITED = (*_FIELDS[:_AT], "notice_thresholds", *_FIELDS[_AT:])
# Shown old → new, all but: the backend URL and the notes only by their label (a URL shown is its
# host), the owners by who was added and removed.
APPLICATION_AUDIT_PLAIN = frozenset(_AUDITED) - {"backend_url", "notes", "owners", "owner_groups"}
APPLICATION_AUDIT = AuditSpec(fields=_AUDITED, labels=APPLICATION_AUDIT_LABELS, plain=APPLICATION_AUDIT_PLAIN)


def application_created_detail(app: Application) -> str:
    """``application 'Billing' (billing) created, tenant 'x.accounts.ondemand.com', owners: otto``."""
    facts = audit_snapshot(app, ("owners", "owner_groups"))
    parts = [f"application '{app.name}' ({app.slug}) created"]
    if app.tenant_url:
        parts.append(f"tenant {audit_value(app.tenant_url)}")
    for name, label in (("owners", "owners"), ("owner_groups", "owner groups")):
        if facts[name]:
            parts.append(f"{label}: {', '.join(sorted(facts[name]))}")
    return ", ".join(parts)
