"""Where a request came from, as the audit log records it."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address for the audit log.

    Behind CERTMGR_TRUSTED_PROXY_HOPS proxies (the gorouter on Cloud Foundry: 1), REMOTE_ADDR is
    the last proxy; each trusted proxy appends the address it saw to X-Forwarded-For, so the
    client is that many entries from the end. Entries before it are the client's own claims.
    """
    hops = settings.CERTMGR_TRUSTED_PROXY_HOPS
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    if hops > 0 and len(forwarded) >= hops:
        candidate = forwarded[-hops]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR") or None
