"""The portal's three roles, from the least to the most:

- viewer: sees every application, certificate and health-check result; no key, no change.
  A user is a viewer through the permission "certmgr.view_application" (given in the admin,
  directly or through a group), or as a member of an IAS group named in CERTMGR_VIEWER_GROUPS.
- owner: a viewer who also manages the applications they own (Application.owners, or a member
  of one of its owner groups; IAS groups are mirrored as Django groups "ias:<name>" at each login).
- admin: everything (a superuser; the IAS groups in CERTMGR_ADMIN_GROUPS make one).

A logged-in user with none of these sees only a page that says so.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Group, Permission
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from ..models import Application, ExternalIdentity

VIEWER, OWNER, ADMIN = "viewer", "owner", "admin"
IAS_GROUP_PREFIX = "ias:"  # IAS groups are mirrored as Django groups under this prefix
VIEW_PERMISSION = "certmgr.view_application"


def role_of(user) -> str | None:
    """The user's highest role, or None: one query, remembered on the user object (forget() drops it).

    An IAS user's roles come from the groups of their last IAS login; CERTMGR_IAS_ROLE_DAYS after
    it they lapse, so someone who left (and never logs in again) stops receiving calendar feeds
    and digests too.
    """
    if not user.is_authenticated or not user.is_active:
        return None
    if not hasattr(user, "_portal_role"):
        app_label, codename = VIEW_PERMISSION.split(".")
        views = Permission.objects.filter(
            Q(user=OuterRef("pk")) | Q(group__user=OuterRef("pk")),
            content_type__app_label=app_label,
            codename=codename,
        )
        viewer_groups = [IAS_GROUP_PREFIX + name for name in settings.CERTMGR_VIEWER_GROUPS]
        in_viewer_group = Group.objects.filter(user=OuterRef("pk"), name__in=viewer_groups)
        cutoff = timezone.now() - timedelta(days=settings.CERTMGR_IAS_ROLE_DAYS)
        lapsed = ExternalIdentity.objects.filter(user=OuterRef("pk"), last_login__lt=cutoff)
        owns, sees, stale = (
            get_user_model()
            .objects.filter(pk=user.pk)
            .annotate(
                owns=Exists(Application.objects.managed_by(user)),
                sees=Exists(views) | Exists(in_viewer_group),
                stale=Exists(lapsed),
            )
            .values_list("owns", "sees", "stale")
            .get()
        )
        if stale:
            user._portal_role = None
        else:
            user._portal_role = ADMIN if user.is_superuser else OWNER if owns else VIEWER if sees else None
    return user._portal_role


def forget(user) -> None:
    """Drop the remembered role (after the user's groups or ownership changed)."""
    user.__dict__.pop("_portal_role", None)


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
    return render(
        request, "registration/no_role.html", {"viewer_groups": settings.CERTMGR_VIEWER_GROUPS}, status=403
    )
