"""iCalendar feeds of expiry dates, one secret URL per user (only its SHA-256 is stored).

The view (the token in the URL, HTTP) is in views.py.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from icalendar import Alarm, Calendar, Event, vDuration

from ..access.roles import role_of
from ..models import Application, Certificate
from .metrics import LIVE

ALARMS_DAYS_BEFORE = (30, 7)
PRODID = "-//certmgr//IAS certificate portal//EN"
REFRESH = timedelta(hours=6)


def visible_applications(user):
    """The applications ``user`` may see in feeds: all of them for any role (roles.py), none without."""
    return Application.objects.all() if role_of(user) else Application.objects.none()


def feed_token_digest(token: str) -> str:
    """What is stored of a feed token: its SHA-256, hex. The token itself is never kept."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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
