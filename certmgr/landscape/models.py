"""What the portal knows of Cloud Foundry: the foundations it reads and the identity bindings found there.

Nothing here is a secret: a binding row keeps names, the credential type, the client id and the
fingerprint of the certificate it holds; the certificate itself is a Certificate of the inventory.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import models
from django.utils import timezone

from ..inventory.models import Application, Certificate


class Foundry(models.Model):
    """One Cloud Foundry API (a foundation: a region such as cf.eu10). One is configured from the
    environment today; the rows allow more. Syncs are claimed with a conditional UPDATE on
    ``next_sync_at``, so any number of workers sync each foundation once per interval."""

    name = models.CharField(max_length=100, unique=True)
    api_url = models.URLField("CF API", max_length=300, unique=True)
    next_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_ok = models.BooleanField(null=True, editable=False)
    last_sync_error = models.CharField(max_length=500, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @staticmethod
    def name_for(api_url: str) -> str:
        return (urlsplit(api_url).netloc or api_url)[:100]


class Binding(models.Model):
    """An app binding or a service key of an ``identity`` instance, as the last sync found it."""

    class Kind(models.TextChoices):
        APP = "app", "app binding"
        KEY = "key", "service key"

    foundry = models.ForeignKey(Foundry, on_delete=models.CASCADE, related_name="bindings")
    guid = models.CharField(max_length=64)
    kind = models.CharField("type", max_length=3, choices=Kind.choices)
    name = models.CharField(max_length=255, blank=True, help_text="Empty for an app binding without a name.")
    instance_guid = models.CharField(max_length=64)
    instance_name = models.CharField(max_length=255)
    org = models.CharField("organization", max_length=255)
    space = models.CharField(max_length=255)
    app_guid = models.CharField(max_length=64, blank=True)
    app_name = models.CharField(max_length=255, blank=True)
    credential_type = models.CharField(
        max_length=20, blank=True, help_text="Empty when the technical user may not read the credentials."
    )
    client_id = models.CharField(max_length=200, blank=True)
    tenant = models.CharField(max_length=255, blank=True)
    fingerprint = models.CharField("SHA-256 of the certificate it holds", max_length=64, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="bindings"
    )
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.SET_NULL, related_name="cf_bindings"
    )
    problem = models.CharField(max_length=500, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["org", "space", "instance_name", "kind", "name", "app_name"]
        constraints = [models.UniqueConstraint(fields=["foundry", "guid"], name="binding_once_per_foundry")]

    def __str__(self):
        return f"{self.where} ({self.get_kind_display()})"

    @property
    def where(self) -> str:
        """org/space, then the app or the key: how people find it with the cf CLI."""
        holder = self.app_name if self.kind == self.Kind.APP else self.name
        return f"{self.org}/{self.space} · {self.instance_name} · {holder or '(unnamed)'}"


class DiscoveredApplication(models.Model):
    """The mark of an application the sync created: found in Cloud Foundry, not entered by anyone."""

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="discovery")
    foundry = models.ForeignKey(Foundry, null=True, on_delete=models.SET_NULL, related_name="+")
    instance_guid = models.CharField(max_length=64)
    instance_name = models.CharField(max_length=255)
    org = models.CharField("organization", max_length=255)
    space = models.CharField(max_length=255)
    found_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.application} (found in Cloud Foundry)"
