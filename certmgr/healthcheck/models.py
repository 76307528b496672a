"""The stored result of a token-flow health check."""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone

from ..inventory.models import Application, Certificate


class HealthCheckRun(models.Model):
    """One run of the token-flow health check. No token, no key: steps, timings and plain claims."""

    class Trigger(models.TextChoices):
        MANUAL = "manual", "run by hand"
        COMMAND = "command", "healthcheck command"
        SCHEDULED = "scheduled", "scheduled"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="health_checks")
    certificate = models.ForeignKey(Certificate, null=True, on_delete=models.SET_NULL, related_name="+")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    actor_label = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.FloatField(default=0)
    ok = models.BooleanField()
    failed_step = models.CharField(max_length=32, blank=True)
    code = models.CharField(
        max_length=40, blank=True, help_text="The failed step's code, e.g. invalid_client."
    )
    diagnosis = models.TextField(blank=True)
    steps = models.JSONField(default=list)
    claims = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["application", "-started_at"], name="healthcheck_app_recent")]

    def __str__(self):
        return f"{self.application} {self.started_at:%Y-%m-%d %H:%M} {'ok' if self.ok else self.code}"

    def get_absolute_url(self):
        return reverse("health-run", args=[self.application.slug, self.pk])

    LOCKOUT_CODES = frozenset({"invalid_client", "client_locked"})

    @property
    def locks_out(self) -> bool:
        """IAS counts this as a failed login of the client id."""
        return self.code in self.LOCKOUT_CODES
