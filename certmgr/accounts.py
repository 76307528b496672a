"""Django's own login, kept for local use and break-glass admins; logins and failures audited."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.shortcuts import render
from django.utils.decorators import method_decorator

from .models import AuditEvent


class LocalLoginForm(AuthenticationForm):
    def clean(self):
        if settings.CERTMGR_LOCAL_LOGIN == "off":
            raise forms.ValidationError(
                "Local accounts are switched off: log on through IAS.", code="local_login_off"
            )
        return super().clean()

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if settings.CERTMGR_LOCAL_LOGIN == "admins" and not user.is_superuser:
            raise forms.ValidationError(
                "This portal logs people on through IAS; the password login is for break-glass "
                "admin accounts only.",
                code="local_login_admins_only",
            )


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
def logged_out(request):
    """Where logging out ends: not the login page, which would send an IAS user straight back in."""
    return render(request, "registration/logged_out.html", {"ias_login": bool(settings.CERTMGR_OIDC)})


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs):
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
        AuditEvent.Action.LOGIN_FAILED, request, actor_label=name, detail="local password login refused"
    )
