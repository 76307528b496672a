"""The portal's rules for outbound HTTP, from the settings: one policy for every caller."""

from __future__ import annotations

from django.conf import settings

from ..core.outbound import DEFAULT_TENANT_HOSTS, HttpPolicy


def http_policy() -> HttpPolicy:
    """Allowed tenant hosts, extra CAs, timeouts; for the health check, the login and the channels."""
    return HttpPolicy(
        tenant_hosts=DEFAULT_TENANT_HOSTS + tuple(settings.CERTMGR_TENANT_HOSTS),
        ca_bundle=settings.CERTMGR_CA_BUNDLE or None,
        allow_http_loopback=settings.CERTMGR_ALLOW_HTTP_LOOPBACK,
        connect_timeout=settings.CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT,
        read_timeout=settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT,
        outbound_allow=tuple(settings.CERTMGR_OUTBOUND_ALLOW),
        allow_loopback=settings.DEBUG,
    )
