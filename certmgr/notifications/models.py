"""Expiry and health notifications: channels per application, the ledger of notices, preferences.

The ledger is what makes notices neither missed nor doubled: a notice is a row under a unique
constraint, written before anything is sent and claimed by exactly one sender.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..healthcheck.models import HealthCheckRun
from ..inventory.models import Application, Certificate


class NotificationChannel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "email"
        WEBHOOK = "webhook", "webhook (JSON, HMAC-SHA256 signed)"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Microsoft Teams (Workflows webhook)"
        ALERT_NOTIFICATION = "alert_notification", "SAP Alert Notification service"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    # Non-secret settings: extra email addresses, include owners, the ANS token URL and client id.
    options = models.JSONField(default=dict, blank=True)
    # Webhook URLs (Slack's and Teams' carry their credential), HMAC secrets, client secrets:
    # sealed with the same key vault as private keys, never shown again after saving.
    sealed_secret = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["application", "name"]

    def __str__(self):
        return f"{self.application}: {self.name} ({self.get_kind_display()})"


class NoticeQuerySet(models.QuerySet):
    def failed(self):
        """Notices that failed for good. A failed test notice was answered on the spot (the page of
        the person who pressed the button said so); it raises no alarm afterwards."""
        return self.filter(state=Notice.State.FAILED).exclude(event=Notice.Event.TEST)


class Notice(models.Model):
    """One notice to one recipient through one channel: claimed before sending, never twice."""

    objects = NoticeQuerySet.as_manager()

    class Event(models.TextChoices):
        THRESHOLD = "threshold", "expires within the threshold"
        EXPIRED = "expired", "expired"
        RESOLVED = "resolved", "renewed"
        HEALTH_FAILED = "health_failed", "health check failing"
        HEALTH_RECOVERED = "health_recovered", "health check recovered"
        DRIFT = "drift", "a Cloud Foundry binding holds a retired certificate"
        DIGEST = "digest", "daily digest"
        TEST = "test", "test notice"

    class State(models.TextChoices):
        PENDING = "pending", "waiting to be sent"
        SENDING = "sending", "being sent"
        SENT = "sent", "sent"
        FAILED = "failed", "failed for good"

    application = models.ForeignKey(Application, null=True, on_delete=models.CASCADE, related_name="notices")
    certificate = models.ForeignKey(Certificate, null=True, on_delete=models.CASCADE, related_name="notices")
    health_check = models.ForeignKey(HealthCheckRun, null=True, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(
        NotificationChannel, null=True, on_delete=models.CASCADE, related_name="notices"
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    threshold = models.PositiveIntegerField(default=0, help_text="Days, for threshold notices.")
    day = models.DateField(null=True, blank=True, help_text="The digest's day.")
    recipient = models.CharField(
        max_length=320, blank=True, help_text="An email address; empty for webhooks."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["certificate", "event", "threshold", "channel", "recipient"],
                condition=Q(certificate__isnull=False, channel__isnull=False),
                name="notice_once_per_certificate_event",
            ),
            models.UniqueConstraint(
                fields=["health_check", "event", "channel", "recipient"],
                condition=Q(health_check__isnull=False, channel__isnull=False),
                name="notice_once_per_health_event",
            ),
            models.UniqueConstraint(
                fields=["day", "recipient"], condition=Q(event="digest"), name="digest_once_per_day"
            ),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notice_due_to_send")]

    def __str__(self):
        return f"{self.get_event_display()} → {self.recipient or self.channel}"


class UserPreference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    daily_digest = models.BooleanField(
        default=False, help_text="One email a day with everything expiring within the largest threshold."
    )
    # The calendar feed URL carries a secret; only its SHA-256 is kept.
    feed_token_sha256 = models.CharField(max_length=64, blank=True, db_index=True)

    def __str__(self):
        return f"preferences of {self.user}"
