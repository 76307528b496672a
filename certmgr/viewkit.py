"""Small helpers the views share: permission checks, request facts."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from .models import Application, Certificate


def param(request, name: str, default: str = "") -> str:
    """A query parameter as text the database accepts (PostgreSQL refuses NUL characters)."""
    return request.GET.get(name, default).replace("\x00", "")


def managed_application(request, slug) -> Application:
    app = get_object_or_404(Application, slug=slug)
    if not app.is_managed_by(request.user):
        raise PermissionDenied("Only the application's owners and admins may do this.")
    return app


def managed_certificate(request, pk, doing: str) -> Certificate:
    cert = get_object_or_404(Certificate.objects.select_related("application"), pk=pk)
    if not cert.application.is_managed_by(request.user):
        raise PermissionDenied(f"Only the application's owners and admins may {doing}.")
    return cert


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
