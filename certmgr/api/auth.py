"""``Authorization: Bearer cmp_…``: the API token's authentication (DRF), and its OpenAPI scheme.

A token that is unknown, expired or revoked, or whose user was deactivated, gets 401. What the
user's role allows is decided per call in ``permissions.py``. The token never reaches a log: it
travels only in this header, and ``portal.logjson`` masks anything that looks like one.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from .models import TOKEN_PATTERN, ApiToken, token_digest
from .problems import Unauthenticated

REALM = "ias-cert-portal"


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            return None  # no token: the session may still authenticate the call
        token = value.strip()
        if not TOKEN_PATTERN.fullmatch(token):
            raise Unauthenticated("token_invalid", "The bearer token is not an API token of this portal.")
        found = ApiToken.objects.select_related("user").filter(digest=token_digest(token)).first()
        if found is None:
            raise Unauthenticated("token_invalid", "Unknown API token.")
        now = timezone.now()
        if found.revoked_at is not None:
            raise Unauthenticated("token_revoked", f"The API token {found.prefix}… was revoked.")
        if found.expires_at <= now:
            raise Unauthenticated("token_expired", f"The API token {found.prefix}… has expired.")
        if not found.user.is_active:
            raise Unauthenticated("token_invalid", "The API token's user is deactivated.")
        found.touch(now)
        return found.user, found

    def authenticate_header(self, request):
        return f'Bearer realm="{REALM}"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from the 'API tokens' page or `manage.py api_token` (cmp_…).",
        }
