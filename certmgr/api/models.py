"""API tokens: what a pipeline presents as ``Authorization: Bearer cmp_…``.

Only the token's SHA-256 is stored; the token itself is shown once, when it is made. A token
acts for its user and never beyond the user's role at the moment of the call (see
``api/permissions.py``), within its applications (none listed: everything the user may see),
read-only unless made for writing, until it expires or is revoked.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from ..inventory.models import Application

PREFIX = "cmp_"
# cmp_<8 hex: the id people recognise>_<43 characters of base64url: 256 random bits>
TOKEN_PATTERN = re.compile(r"cmp_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
LAST_USE_GRANULARITY = timedelta(minutes=1)  # last use is written at most once a minute
MAX_EXPIRY_DAYS = 366
DEFAULT_EXPIRY_DAYS = 90


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'GitHub Actions of shop'.")
    prefix = models.CharField(
        max_length=12, unique=True, help_text="cmp_ and 8 hex digits: shown to recognise it."
    )
    digest = models.CharField("SHA-256 of the token", max_length=64, unique=True)
    # False with no applications listed means: none (an application deleted from a token's list
    # must not widen the token to everything).
    all_applications = models.BooleanField(default=True)
    applications = models.ManyToManyField(Application, blank=True, related_name="+")
    write = models.BooleanField(default=False, help_text="May change what its user may change.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @classmethod
    def issue(
        cls, user, *, name: str, applications=(), write: bool = False, expires_days: int = DEFAULT_EXPIRY_DAYS
    ) -> tuple[ApiToken, str]:
        """A new token for ``user``: the row, and the token itself (the only time it exists)."""
        for _ in range(20):  # 2^32 prefixes: a clash is rare, and each try draws a new one
            prefix = PREFIX + secrets.token_hex(4)
            if not cls.objects.filter(prefix=prefix).exists():
                break
        token = f"{prefix}_{secrets.token_urlsafe(32)}"
        row = cls.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            digest=token_digest(token),
            all_applications=not applications,
            write=write,
            expires_at=timezone.now() + timedelta(days=expires_days),
        )
        row.applications.set(applications)
        return row, token

    @property
    def label(self) -> str:
        """How the audit log names a call made with it: ``otto (API token cmp_1a2b3c4d)``."""
        return f"{self.user.get_username()} (API token {self.prefix})"

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    def scope_text(self) -> str:
        if self.all_applications:
            return "every application"
        return ", ".join(app.slug for app in self.applications.all()) or "no application (all removed)"

    def touch(self, now=None) -> None:
        """Record a use; a write at most once a minute, whatever the number of calls."""
        now = now or timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < LAST_USE_GRANULARITY:
            return
        ApiToken.objects.filter(pk=self.pk).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - LAST_USE_GRANULARITY)
        ).update(last_used_at=now)
        self.last_used_at = now
