"""Per-token rate limit (CERTMGR_API_THROTTLE, e.g. "120/min"): 429 with Retry-After past it.

Counted in Django's cache: with the default in-memory cache that is per process, so gunicorn's
WEB_CONCURRENCY workers each allow the rate. Calls with the session (the docs page) are not limited.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    scope = "api_token"

    def get_rate(self) -> str | None:
        return settings.CERTMGR_API_THROTTLE or None

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiToken):
            return f"certmgr-api-throttle:{request.auth.prefix}"
        return None
