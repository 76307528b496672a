"""Django's own login, kept for local use and break-glass admins; logins and failures audited.

Once IAS login is configured the password login is for local superusers only (CERTMGR_LOCAL_LOGIN),
never for accounts that came from IAS (they would keep roles IAS has taken away). A refused
login always gets the same message, whichever rule refused it, and every refusal is audited;
the audit log also throttles guessing: too many failures for one user name or from one address
in a quarter of an hour, and the form stops trying passwords.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxLengthValidator
from django.dispatch import receiver
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator

from ..models import AuditEvent
from .clientaddr import client_ip

PASSWORD_MAX_LENGTH = 4096  # nobody types more; a megabyte would only cost the hasher
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 10
MAX_FAILURES_PER_ADDRESS = 50


class LocalLoginForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].validators.append(MaxLengthValidator(PASSWORD_MAX_LENGTH))

    def clean(self):
        if settings.CERTMGR_LOCAL_LOGIN == "off":
            raise forms.ValidationError(
                "Local accounts are switched off: log on through IAS.", code="local_login_off"
            )
        if self._throttled():
            raise forms.ValidationError(
                "Too many failed logins for this user name or from this address: try again in 15 minutes.",
                code="throttled",
            )
        return super().clean()

    def _throttled(self) -> bool:
        since = timezone.now() - THROTTLE_WINDOW
        failures = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED, at__gte=since)
        name = str(self.data.get("username") or "")[:100]
        address = client_ip(self.request) if self.request is not None else None
        return failures.filter(actor_label=name).count() >= MAX_FAILURES_PER_NAME or (
            address is not None and failures.filter(remote_addr=address).count() >= MAX_FAILURES_PER_ADDRESS
        )

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        reason = None
        if hasattr(user, "ias_identity"):
            reason = "an IAS account"
        elif settings.CERTMGR_LOCAL_LOGIN == "admins" and not user.is_superuser:
            reason = "not a break-glass admin"
        if reason:
            AuditEvent.record(
                AuditEvent.Action.LOGIN_FAILED,
                self.request,
                actor_label=user.get_username(),
                detail=f"local password login refused: {reason}",
            )
            raise self.get_invalid_login_error()  # the same words as a wrong password


@method_decorator(login_not_required, name="dispatch")
class LocalLoginView(auth_views.LoginView):
    form_class = LocalLoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["ias_login"] = bool(settings.CERTMGR_OIDC)
        context["local_login"] = settings.CERTMGR_LOCAL_LOGIN
        return context


@login_not_required
def admin_login(request, extra_context=None):
    """The admin site's login page: the portal's own, with its rules (next= is kept).

    Someone logged in who is not staff lands here too; sending them to /login/ would send them
    straight back (/login/ passes a logged-in user on to next=/admin/): a 403 page instead.
    """
    if request.user.is_authenticated:
        if request.user.is_active and request.user.is_staff:  # already in: on to the admin site
            return HttpResponseRedirect(reverse("admin:index"))
        raise PermissionDenied("The admin site is for the portal's administrators only.")
    query = request.META.get("QUERY_STRING", "")
    return HttpResponseRedirect(reverse("login") + (f"?{query}" if query else ""))


@login_not_required
def logged_out(request):
    """Where logging out ends: not the login page, which would send an IAS user straight back in."""
    return render(request, "registration/logged_out.html", {"ias_login": bool(settings.CERTMGR_OIDC)})


@receiver(user_logged_in)
def _at_login(sender, request, user, **kwargs):
    if request is None:
        return
    # A fixed end: requests that write to the session later do not push it further out.
    if hasattr(request, "session"):
        request.session.set_expiry(timezone.now() + timedelta(hours=settings.CERTMGR_SESSION_HOURS))
    groups = getattr(request, "ias_login_groups", None)
    how = "through IAS" if groups is not None else "with a local password"
    AuditEvent.record(
        AuditEvent.Action.LOGGED_IN, request, actor=user, actor_label=user.get_username(), detail=how
    )


@receiver(user_login_failed)
def _audit_login_failure(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in ``credentials``; only the user name is kept.
    name = str(credentials.get("username") or "")[:100]
    if not name:
        return  # an IAS callback that failed is audited by the backend with its reason
    AuditEvent.record(
        AuditEvent.Action.LOGIN_FAILED,
        request,
        actor_label=name,
        detail="local password login: wrong user name or password",
    )
