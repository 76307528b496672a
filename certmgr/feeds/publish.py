"""What the portal publishes for machines: Prometheus metrics and iCalendar feeds of expiry dates.

Both read the database with a fixed number of queries, however many certificates there are.
The views (authentication, HTTP) are in views_feeds.py.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone
from icalendar import Alarm, Calendar, Event, vDuration
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..access.roles import role_of
from ..core.expiry import days_left
from ..models import Application, Certificate, HealthCheckRun
from ..notifications.models import Notice, NotificationChannel

# Certificates that are, or are about to be, in use: retired ones no longer matter to anyone.
LIVE = (Certificate.Lifecycle.ACTIVE, Certificate.Lifecycle.STAGED)
CERTIFICATE_LABELS = ["application", "fingerprint", "subject", "lifecycle"]
ALARMS_DAYS_BEFORE = (30, 7)
PRODID = "-//certmgr//IAS certificate portal//EN"
REFRESH = timedelta(hours=6)


# --- who sees what -------------------------------------------------------------------------------


def visible_applications(user):
    """The applications ``user`` may see in feeds: all of them for any role (roles.py), none without."""
    return Application.objects.all() if role_of(user) else Application.objects.none()


def feed_token_digest(token: str) -> str:
    """What is stored of a feed token: its SHA-256, hex. The token itself is never kept."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- Prometheus ----------------------------------------------------------------------------------


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


def calendar_for(user, application: Application | None = None) -> bytes:
    """The expiry dates ``user`` may see, of one application or of all: one event per certificate."""
    apps = visible_applications(user)
    certificates = (
        Certificate.objects.filter(lifecycle__in=LIVE, application__in=apps)
        .select_related("application")
        .order_by("not_after", "application__slug", "fingerprint")
    )
    if application is not None:
        certificates = certificates.filter(application=application)
    name = f"IAS certificates: {application.name}" if application else "IAS certificates: all applications"

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-caldesc", "When the client certificates of SAP IAS applications expire.")
    # How often subscribers should fetch again (RFC 7986, and what Outlook reads).
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH).to_ical().decode())
    host = urlsplit(settings.CERTMGR_PORTAL_URL).hostname or "certmgr"
    for certificate in certificates:
        calendar.add_component(expiry_event(certificate, host))
    return calendar.to_ical()


def expiry_event(certificate: Certificate, host: str) -> Event:
    app = certificate.application
    link = settings.CERTMGR_PORTAL_URL + app.get_absolute_url()
    expires = certificate.not_after.astimezone(UTC)
    staged = certificate.lifecycle == Certificate.Lifecycle.STAGED
    lines = [
        f"The IAS client certificate of {app.name} expires on {expires:%Y-%m-%d %H:%M} UTC.",
        "" if not staged else "It is staged for rotation, not yet in use.",
        f"Subject: {certificate.subject}",
        f"SHA-256 fingerprint: {certificate.display_fingerprint}",
        f"IAS tenant: {app.tenant or 'not set'}",
        f"Renew or rotate it in the portal: {link}",
    ]
    event = Event()
    # A certificate may be used by applications of different tenants: the UID names both.
    event.add("uid", f"{certificate.fingerprint}-{app.slug}@{host}")
    event.add("dtstamp", certificate.uploaded_at.astimezone(UTC))
    event.add("dtstart", expires)
    event.add("summary", f"{app.name}: IAS certificate expires")
    event.add("description", "\n".join(line for line in lines if line))
    event.add("url", link)
    event.add("transp", "TRANSPARENT")
    for days in ALARMS_DAYS_BEFORE:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"{app.name}: IAS certificate expires in {days} days")
        alarm.add("trigger", timedelta(days=-days))
        event.add_component(alarm)
    return event
