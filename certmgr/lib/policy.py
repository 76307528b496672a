"""The portal's rules for outbound HTTP, from the settings: one policy for every caller."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from ..core import outbound
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


def target_problem(url: str, *, resolve: bool = True) -> str:
    """Why a call to ``url`` (a backend, a notification receiver) would be refused, in words that
    do not repeat the URL (Slack's and Teams' are credentials); "" if it would go out. With
    ``resolve``, the addresses its host resolves to are checked too (the call checks them again
    when it connects)."""
    policy = http_policy()
    try:
        if resolve:
            outbound.check_target(url, policy)
        else:
            outbound.check_url(url, policy, tenant=False)
    except outbound.OutboundError as exc:
        host = urlsplit(url).hostname or "?"
        if exc.code == "http_refused":
            return "Only https URLs are allowed (plain http only to this machine, in development)."
        if urlsplit(url).scheme not in ("http", "https"):
            return "Only https URLs are allowed."
        if urlsplit(url).username is not None:
            return "A user name or password in the URL is not allowed."
        if exc.code == "address_not_allowed":
            return exc.diagnosis.replace(url, host)
        return "This URL cannot be used: its host is missing or ambiguous."
    return ""
