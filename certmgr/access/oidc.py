"""Login through IAS: the thin Django shell around core/oidclogin.py and mozilla-django-oidc.

mozilla-django-oidc runs the browser side (state, nonce and PKCE kept in the session, the
callback's state check, safe ``next`` URLs). The code exchange and every id_token check are ours
(core/oidclogin.py: iss, aud, azp, exp, iat, nonce, RS256 against the tenant's JWKS, through the
one outbound HTTP wrapper). Users are found by their IAS subject, never by email; their IAS
groups decide their roles at every login (see roles.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from ..core.oidclogin import LoginClient, LoginError, exchange_code, groups_of, verify_id_token
from ..lib.policy import http_policy
from ..models import AuditEvent, ExternalIdentity
from . import roles

log = logging.getLogger(__name__)


def login_client() -> LoginClient | None:
    """The portal's login client, or None when IAS login is not configured."""
    config = settings.CERTMGR_OIDC
    aliases = tuple(settings.CERTMGR_OIDC_ISSUER_ALIASES)
    return LoginClient(**config, issuer_aliases=aliases) if config else None


def login_policy(client: LoginClient):
    """The health check's HTTP policy, with the portal's own tenant allowed (it comes from its binding)."""
    policy = http_policy()
    host = urlsplit(client.issuer).hostname or ""
    if host in policy.tenant_hosts:
        return policy
    return replace(policy, tenant_hosts=(*policy.tenant_hosts, host))


def callback_url(request) -> str:
    return request.build_absolute_uri(reverse("oidc_authentication_callback"))


class IasBackend(ModelBackend):
    """Authenticates the browser coming back from IAS with a code (only from the callback view)."""

    def authenticate(self, request, nonce=None, code_verifier=None, **kwargs):
        if request is None or kwargs or nonce is None:
            return None  # not an OIDC callback: a password login is ModelBackend's
        client = login_client()
        code = request.GET.get("code")
        if client is None or not code:
            return None
        try:
            policy = login_policy(client)
            tokens = exchange_code(client, code, callback_url(request), code_verifier, policy)
            claims = verify_id_token(client, tokens["id_token"], nonce, policy)
            user = sync_user(client, claims, request)
        except LoginError as exc:
            request.ias_login_error = exc
            AuditEvent.record(
                AuditEvent.Action.LOGIN_FAILED, request, actor_label="IAS login", detail=exc.message
            )
            log.warning("IAS login failed: %s (%s)", exc.code, exc.message)
            return None
        if not user.is_active:
            request.ias_login_error = LoginError("inactive", "This portal account is deactivated.")
            return None
        request.ias_login_groups = groups_of(claims)
        return user


def sync_user(client: LoginClient, claims: dict, request=None):
    """The portal user of an IAS account, created on first login; name, email and roles from IAS."""
    # IAS's user_uuid stays when login name or email change; sub may be either of those (and be
    # given to someone else later). The claim's name is part of the key, so the two never mix.
    subject = f"user_uuid:{claims['user_uuid']}" if claims.get("user_uuid") else f"sub:{claims['sub']}"
    groups = groups_of(claims)
    User = get_user_model()
    for _attempt in range(2):  # two first logins of one person at once: the second finds the first's
        try:
            with transaction.atomic():
                identity = (
                    ExternalIdentity.objects.select_for_update()
                    .select_related("user")
                    .filter(issuer=client.issuer, subject=subject)
                    .first()
                )
                if identity is None:
                    user = User(username=_free_username(claims, subject))
                    user.set_unusable_password()  # IAS only: no password to guess here
                    user.save()
                    identity = ExternalIdentity(user=user, issuer=client.issuer, subject=subject)
                    before = None
                else:
                    user = identity.user
                    before = roles.describe(user)
                user.email = str(claims.get("email") or user.email)[:254]
                user.first_name = str(claims.get("given_name") or user.first_name)[:150]
                user.last_name = str(claims.get("family_name") or user.last_name)[:150]
                admin = bool(set(groups) & set(settings.CERTMGR_ADMIN_GROUPS))
                user.is_superuser = user.is_staff = admin
                user.save()
                _mirror_groups(user, groups)
                identity.groups = groups
                identity.last_login = timezone.now()
                identity.save()
                roles.forget(user)
                after = roles.describe(user)
                if after != before:
                    AuditEvent.record(
                        AuditEvent.Action.ROLES_CHANGED,
                        request,
                        actor=user,
                        actor_label=user.get_username(),
                        detail=f"{before or 'new IAS user'} → {after} (from IAS groups: {', '.join(groups) or 'none'})",
                    )
                return user
        except IntegrityError:
            continue
    raise LoginError("conflict", "The portal account could not be created; please log on again.")


def _free_username(claims: dict, subject: str) -> str:
    User = get_user_model()
    base = str(claims.get("email") or claims.get("preferred_username") or subject)[:140]
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _mirror_groups(user, groups: list[str]) -> None:
    """The user's IAS groups as Django groups named "ias:<group>", exactly; groups given in the portal stay.

    The prefix keeps IAS's groups apart from the portal's own: an IAS group never inherits the
    permissions of a local group that happens to share its name.
    """
    mirrored = []
    for name in groups:
        group, _ = Group.objects.get_or_create(name=(roles.IAS_GROUP_PREFIX + name)[:150])
        mirrored.append(group)
    local = user.groups.exclude(name__startswith=roles.IAS_GROUP_PREFIX)
    user.groups.set([*local, *mirrored])


@method_decorator(login_not_required, name="dispatch")
class IasLoginStart(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: off to IAS's login page (404 when IAS login is not configured)."""

    def __init__(self, *args, **kwargs):
        config = settings.CERTMGR_OIDC or {}
        self.OIDC_OP_AUTH_ENDPOINT = config.get("authorization_endpoint", "")
        self.OIDC_RP_CLIENT_ID = config.get("client_id", "")

    def get(self, request):
        if not settings.CERTMGR_OIDC:
            raise Http404("Login through IAS is not configured.")
        return super().get(request)


@method_decorator(login_not_required, name="dispatch")
class IasLoginCallback(OIDCAuthenticationCallbackView):
    """/oidc/callback/: back from IAS. A failed login is explained, never a bare redirect or a 400."""

    def get(self, request):
        if not settings.CERTMGR_OIDC:
            raise Http404("Login through IAS is not configured.")
        state = request.GET.get("state")
        known = state in (request.session.get("oidc_states") or {})
        if request.GET.get("error") and known:
            said = request.GET.get("error_description") or request.GET["error"]
            reason = f"IAS ended the login: {said[:300]}"
            AuditEvent.record(AuditEvent.Action.LOGIN_FAILED, request, actor_label="IAS login", detail=reason)
            super().get(request)  # drops the state, logs out
            return self.failed(reason)
        if not known:  # a stray or forged link: no logout, nothing recorded in anyone's name
            return self.failed(
                "This login does not belong to this browser session: it was started in another tab or "
                "browser, used twice, or the session ended meanwhile."
            )
        return super().get(request)

    def login_failure(self):
        error = getattr(self.request, "ias_login_error", None)
        return self.failed(error.message if error else "IAS did not confirm who you are.")

    def failed(self, reason: str):
        return render(self.request, "registration/ias_failed.html", {"reason": reason}, status=403)
