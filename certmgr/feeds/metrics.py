"""Prometheus metrics: certificate expiry, health-check results, the notice ledger.

A scrape reads the database with a fixed number of queries, however many certificates there
are. The view (bearer token, HTTP) is in views.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.db.models import Count, Max
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..core.expiry import days_left
from ..models import Application, Certificate, HealthCheckRun
from ..notifications.models import Notice, NotificationChannel

# Certificates that are, or are about to be, in use: retired ones no longer matter to anyone.
LIVE = (Certificate.Lifecycle.ACTIVE, Certificate.Lifecycle.STAGED)
CERTIFICATE_LABELS = ["application", "fingerprint", "subject", "lifecycle"]


class PortalCollector:
    """Everything /metrics reports, read at scrape time; four queries per scrape."""

    def __init__(self, now: datetime | None = None):
        self.now = now

    def collect(self):
        now = self.now or timezone.now()
        yield from self._certificates(now)
        yield from self._applications()
        yield from self._notices()

    def _certificates(self, now):
        not_after = GaugeMetricFamily(
            "certmgr_certificate_not_after_timestamp_seconds",
            "End of validity (not_after) of each active or staged certificate, Unix time.",
            labels=CERTIFICATE_LABELS,
        )
        left = GaugeMetricFamily(
            "certmgr_certificate_days_left",
            "Whole days until the certificate expires, rounded down; negative once expired.",
            labels=CERTIFICATE_LABELS,
        )
        rows = (
            Certificate.objects.filter(lifecycle__in=LIVE)
            .order_by("application__slug", "not_after", "fingerprint")
            .values_list("application__slug", "fingerprint", "subject", "lifecycle", "not_after")
        )
        for slug, fingerprint, subject, lifecycle, expires in rows:
            labels = [slug, fingerprint, subject, lifecycle]
            not_after.add_metric(labels, expires.timestamp())
            left.add_metric(labels, days_left(expires, now))
        yield not_after
        yield left

    def _applications(self):
        apps = list(Application.objects.select_related("last_check").order_by("slug"))
        last_success = dict(
            HealthCheckRun.objects.filter(ok=True)
            .values("application")
            .annotate(at=Max("started_at"))
            .values_list("application", "at")
        )
        count = GaugeMetricFamily("certmgr_applications", "Applications the portal manages.")
        count.add_metric([], len(apps))
        ok = GaugeMetricFamily(
            "certmgr_health_check_ok",
            "1 if the application's last health check succeeded, 0 if it failed; absent if never checked.",
            labels=["application"],
        )
        steps = GaugeMetricFamily(
            "certmgr_health_check_step_duration_seconds",
            "Time each step of the application's last health check took.",
            labels=["application", "step"],
        )
        success = GaugeMetricFamily(
            "certmgr_health_check_last_success_timestamp_seconds",
            "Start of the application's latest successful health check, Unix time.",
            labels=["application"],
        )
        paused = GaugeMetricFamily(
            "certmgr_health_check_paused",
            "1 if scheduled health checks are paused after repeated invalid_client refusals.",
            labels=["application"],
        )
        for app in apps:
            paused.add_metric([app.slug], int(app.checks_paused))
            if app.pk in last_success:
                success.add_metric([app.slug], last_success[app.pk].timestamp())
            run = app.last_check
            if run is None:
                continue
            ok.add_metric([app.slug], int(run.ok))
            for step in run.steps:
                if step.get("duration_ms") is not None:
                    steps.add_metric([app.slug, step["name"]], step["duration_ms"] / 1000)
        yield from (count, ok, steps, success, paused)

    def _notices(self):
        failed = GaugeMetricFamily(
            "certmgr_notices_failed",
            "Notices that failed for good (ledger rows in state failed).",
            labels=["application", "channel_kind"],
        )
        pending = GaugeMetricFamily(
            "certmgr_notices_pending",
            "Notices waiting to be sent or being sent (ledger rows in state pending or sending).",
            labels=["application", "channel_kind"],
        )
        waiting = (Notice.State.PENDING, Notice.State.SENDING)
        totals: Counter[tuple[str, str, str]] = Counter()
        rows = (
            Notice.objects.filter(state__in=[Notice.State.FAILED, *waiting])
            .exclude(event=Notice.Event.TEST, state=Notice.State.FAILED)
            .values("state", "application__slug", "channel__kind")
            .annotate(n=Count("pk"))
            .order_by()
            .values_list("state", "application__slug", "channel__kind", "n")
        )
        for state, slug, kind, n in rows:
            # Only the daily digest has no channel (nor application): it goes out by email.
            totals[state in waiting, slug or "", kind or NotificationChannel.Kind.EMAIL.value] += n
        for (is_waiting, slug, kind), value in sorted(totals.items()):
            (pending if is_waiting else failed).add_metric([slug, kind], value)
        yield failed
        yield pending


def render_metrics(now: datetime | None = None) -> bytes:
    """The text format of one scrape, from a registry made for it (no process or default metrics)."""
    registry = CollectorRegistry()
    registry.register(PortalCollector(now))
    return generate_latest(registry)


# --- iCalendar -----------------------------------------------------------------------------------
