"""What a notice says: its subject, text and HTML from the templates in notifications/notices/."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from ..core.expiry import days_left
from ..core.notices import Message, horizon
from ..core.rotation_steps import NewCertificate, rotation_steps
from .ledger import digest_certificates, digest_readers
from .models import Notice

EXPIRY_EVENTS = (Notice.Event.THRESHOLD, Notice.Event.EXPIRED)


def message_for(notice: Notice, now: datetime) -> Message:
    app, certificate = notice.application, notice.certificate
    if notice.event == Notice.Event.TEST and app is not None:  # shown, not notified for
        certificate = app.certificates.active().order_by("not_after").first()
    context = {
        "notice": notice,
        "app": app,
        "certificate": certificate,
        "run": notice.health_check,
        "days_left": days_left(certificate.not_after, now) if certificate else None,
        "link": settings.CERTMGR_PORTAL_URL + app.get_absolute_url() if app else settings.CERTMGR_PORTAL_URL,
        "now": now,
        # The bindings the last Cloud Foundry sync found holding the (retired) certificate.
        "bindings": list(certificate.bindings.all())
        if notice.event == Notice.Event.DRIFT and certificate
        else [],
    }
    if notice.event in EXPIRY_EVENTS and app is not None:
        # An expiring certificate's notice leads to the rotation page and lists its steps.
        context["link"] = settings.CERTMGR_PORTAL_URL + reverse("application-rotation", args=[app.slug])
        context["rotation"] = rotation_steps(app.tool, app.deploy_names(), NewCertificate())
    context["days_ago"] = -context["days_left"] if context["days_left"] is not None else None
    subject = " ".join(render_to_string("certmgr/notifications/notices/subject.txt", context).split())
    return Message(
        event=notice.event,
        subject=subject,
        text=render_to_string("certmgr/notifications/notices/body.txt", context),
        html=render_to_string("certmgr/notifications/notices/body.html", context),
        application=app.name if app else "",
        application_slug=app.slug if app else "",
        tenant=app.tenant if app else "",
        certificate_subject=certificate.subject if certificate else "",
        fingerprint=certificate.fingerprint if certificate else "",
        not_after=certificate.not_after if certificate else None,
        days_left=context["days_left"],
        threshold=notice.threshold or None,
        link=context["link"],
        severity=_SEVERITY.get(notice.event, "warning"),
        notice_id=str(notice.pk),
    )


_SEVERITY = {
    Notice.Event.EXPIRED: "critical",
    Notice.Event.HEALTH_FAILED: "error",
    Notice.Event.DRIFT: "error",
    Notice.Event.RESOLVED: "info",
    Notice.Event.HEALTH_RECOVERED: "info",
    Notice.Event.TEST: "info",
}


def digest_message(notice: Notice, now: datetime) -> Message:
    reader = digest_readers().filter(email__iexact=notice.recipient).first()
    rows = [
        (certificate, days_left(certificate.not_after, now))
        for certificate in (digest_certificates(reader, now) if reader else [])
    ]
    context = {"rows": rows, "now": now, "portal": settings.CERTMGR_PORTAL_URL, "reader": reader}
    return Message(
        event=Notice.Event.DIGEST,
        subject=f"[IAS certificates] Daily digest: {len(rows)} certificate{'s' if len(rows) != 1 else ''} "
        f"expiring within {horizon(settings.CERTMGR_NOTICE_THRESHOLDS).days} days",
        text=render_to_string("certmgr/notifications/notices/digest.txt", context),
        html=render_to_string("certmgr/notifications/notices/digest.html", context),
        link=settings.CERTMGR_PORTAL_URL + "/",
        severity="info",
        notice_id=str(notice.pk),
    )
