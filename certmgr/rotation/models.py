"""A key generated in the portal, waiting for the certificate its CSR asks for."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from ..core.csr import KEY_TYPES
from ..inventory.models import Application


def pending_key_lifetime() -> timedelta:
    return timedelta(days=settings.CERTMGR_PENDING_KEY_DAYS)


class PendingKeyQuerySet(models.QuerySet):
    def live(self, now: datetime | None = None):
        return self.filter(expires_at__gt=now or timezone.now())

    def expired(self, now: datetime | None = None):
        return self.filter(expires_at__lte=now or timezone.now())


class PendingKey(models.Model):
    """Sealed with the vault like a stored certificate's key; never shown, never logged.

    When a certificate with this public key is uploaded or imported into the application, it is
    stored with this key and the pending key goes away; unused ones expire
    (CERTMGR_PENDING_KEY_DAYS) and are deleted by the worker.
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="pending_keys")
    key_type = models.CharField(max_length=16, choices=list(KEY_TYPES.items()))
    subject = models.CharField("CSR subject", max_length=1024)
    csr_pem = models.TextField("CSR (PEM)")
    public_key_sha256 = models.CharField(max_length=64, db_index=True, editable=False)
    encrypted_private_key = models.BinaryField(editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    objects = PendingKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"pending key #{self.pk} ({self.get_key_type_display()}) for {self.subject}"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())
