"""Small helpers the views share: permission checks, request facts."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from ..models import Application, Certificate

PARAM_MAX = 200  # every filter, search and slug is shorter; SQLite refuses LIKE patterns over 50,000


def param(request, name: str, default: str = "") -> str:
    """A query parameter as text the database accepts: no NUL (PostgreSQL refuses it), bounded."""
    return request.GET.get(name, default).replace("\x00", "")[:PARAM_MAX]


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
