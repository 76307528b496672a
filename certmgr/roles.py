"""The portal's three roles, from the least to the most:

- viewer: sees every application, certificate and health-check result; no key, no change.
  A user is a viewer through the permission "certmgr.view_application" (given directly, or
  through a group: the IAS groups named in CERTMGR_VIEWER_GROUPS carry it).
- owner: a viewer who also manages the applications they own (Application.owners, or a member
  of one of its owner groups; IAS groups are mirrored as Django groups at each login).
- admin: everything (a superuser; the IAS groups in CERTMGR_ADMIN_GROUPS make one).

A logged-in user with none of these sees only a page that says so.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Permission
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import render
from django.urls import reverse

from .models import Application

VIEWER, OWNER, ADMIN = "viewer", "owner", "admin"
VIEW_PERMISSION = "certmgr.view_application"


def role_of(user) -> str | None:
    """The user's highest role, or None: one query (none for an admin), remembered on the user object."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    if not hasattr(user, "_portal_role"):
        app_label, codename = VIEW_PERMISSION.split(".")
        views = Permission.objects.filter(
            Q(user=OuterRef("pk")) | Q(group__user=OuterRef("pk")),
            content_type__app_label=app_label,
            codename=codename,
        )
        owns, sees = (
            get_user_model()
            .objects.filter(pk=user.pk)
            .annotate(owns=Exists(Application.objects.managed_by(user)), sees=Exists(views))
            .values_list("owns", "sees")
            .get()
        )
        user._portal_role = OWNER if owns else VIEWER if sees else None
    return user._portal_role


def describe(user) -> str:
    """The role in words for the audit log, e.g. 'owner (groups: team-a)'."""
    role = role_of(user) or "no role"
    names = sorted(user.groups.values_list("name", flat=True))
    return f"{role} (groups: {', '.join(names)})" if names else role


class RoleRequiredMiddleware:
    """After LoginRequiredMiddleware: a logged-in user without a role reaches no page of the portal.

    Views that authenticate by other means (login_not_required: the feeds, /metrics, /healthz,
    the login pages) and the admin site (its own staff check) are left alone; so is logging out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not getattr(view_func, "login_required", True):
            return None
        if request.path.startswith(reverse("admin:index")) or request.path == reverse("logout"):
            return None
        request.portal_role = role_of(user)
        if request.portal_role is None:
            return no_role(request)
        return None


@login_not_required
def no_role(request):
    from django.conf import settings

    return render(
        request, "registration/no_role.html", {"viewer_groups": settings.CERTMGR_VIEWER_GROUPS}, status=403
    )
