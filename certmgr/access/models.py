"""Who did what (the audit log), and the IAS accounts behind portal users."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from ..inventory.models import Application, Certificate
from .clientaddr import client_ip


class AuditEvent(models.Model):
    """Who did what, when, from where. Key reads are always written here."""

    class Action(models.TextChoices):
        KEY_STORED = "key_stored", "private key stored"
        KEY_READ = "key_read", "private key read"
        KEY_GENERATED = "key_generated", "private key generated (pending)"
        CSR_DOWNLOADED = "csr_downloaded", "CSR downloaded"
        KEY_DISCARDED = "key_discarded", "pending key discarded"
        CERTIFICATE_ADDED = "certificate_added", "certificate added"
        CERTIFICATE_CHANGED = "certificate_changed", "certificate changed"
        KEYS_ROTATED = "keys_rotated", "encryption keys rotated"
        PARAMETERS_GENERATED = "parameters_generated", "binding parameters generated"
        HEALTH_CHECK_RUN = "health_check_run", "health check run"
        APPLICATION_CREATED = "application_created", "application created"
        APPLICATION_CHANGED = "application_changed", "application changed"
        CHANNEL_CHANGED = "channel_changed", "notification channel changed"
        CHANNEL_TESTED = "channel_tested", "test notice sent"
        LOGGED_IN = "logged_in", "logged in"
        LOGIN_FAILED = "login_failed", "login failed"
        ROLES_CHANGED = "roles_changed", "roles changed"
        API_TOKEN_CREATED = "api_token_created", "API token created"
        API_TOKEN_REVOKED = "api_token_revoked", "API token revoked"
        API_WRITE = "api_write", "write call through the API"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200, help_text="User name, or the command that acted.")
    action = models.CharField(max_length=32, choices=Action.choices)
    application = models.ForeignKey(Application, null=True, blank=True, on_delete=models.SET_NULL)
    certificate = models.ForeignKey(Certificate, null=True, blank=True, on_delete=models.SET_NULL)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            # The audit log filtered by what (its count reads this index only), sorted by who.
            models.Index(fields=["action", "actor_label", "at"], name="audit_action_actor_at"),
            models.Index(fields=["actor_label", "at"], name="audit_actor_at"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.get_action_display()}"

    @classmethod
    def record(cls, action, request=None, *, actor_label: str = "", **fields) -> AuditEvent:
        """One entry; with a request, its user and address are the actor."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            fields.setdefault("actor", user)
            actor_label = actor_label or user.get_username()
        if request is not None:
            fields.setdefault("remote_addr", client_ip(request))
        detail = fields.get("detail", "")
        if len(detail) > 500:  # the column's length; every caller may write freely
            fields["detail"] = detail[:499] + "…"
        return cls.objects.create(action=action, actor_label=actor_label[:200] or "system", **fields)

    @classmethod
    def saved(cls, obj, update_fields: list[str], action, request=None, **fields) -> AuditEvent:
        """Save ``update_fields`` of ``obj`` and record the change, in one transaction."""
        with transaction.atomic():
            obj.save(update_fields=update_fields)
            return cls.record(action, request, **fields)


class ExternalIdentity(models.Model):
    """The IAS account behind a portal user who logs in with OpenID Connect.

    Users are found by (issuer, subject), never by email: a local break-glass account with the
    same address is not taken over by whoever holds that address in IAS.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ias_identity"
    )
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=300)
    groups = models.JSONField(default=list, blank=True, help_text="IAS groups at the last login.")
    last_login = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="unique_ias_subject")]

    def __str__(self):
        return f"{self.subject} at {self.issuer}"
