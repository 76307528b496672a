"""Notification pages: an application's channels, thresholds and ledger; the channel forms; the
"send test notice" button; a certificate's mute.

Everyone logged in may look; only the application's owners and admins may change or send. No page
shows a stored secret or a webhook URL (Slack's and Teams' URLs are their credential): only the host.
Every change and every test notice goes to the audit log, which names a URL or a secret only by its
field's label.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from ..access.auditdiff import cut
from ..inventory import keys
from ..lib.viewkit import managed_application, managed_certificate
from ..lib.words import counted
from ..models import Application, AuditEvent
from . import ledger
from .audit import channel_changes, channel_created_detail, channel_facts, channel_title
from .forms import ChannelForm, MuteForm, ThresholdsForm
from .models import NotificationChannel
from .summary import describe

log = logging.getLogger(__name__)
Kind = NotificationChannel.Kind

LEDGER_SIZE = 50
GENERATED_SECRET_KEY = "certmgr_generated_secret"  # noqa: S105 (a session key name)
GENERATED_SECRET_MAX_AGE = 10 * 60
SECRET_POST_FIELDS = ("url", "secret", "client_secret")


def effective_thresholds(app: Application) -> tuple[list[int], bool]:
    """The thresholds in force, largest first, and whether they are the global default."""
    return sorted(set(ledger.thresholds_for(app)), reverse=True), not app.notice_thresholds


@never_cache
@require_http_methods(["GET", "HEAD"])
def notifications(request, slug):
    app = get_object_or_404(Application, slug=slug)
    return _page(request, app, generated=_take_generated(request, app))


def _page(request, app, *, thresholds_form=None, generated=None) -> HttpResponse:
    can_manage = app.is_managed_by(request.user)
    thresholds, default = effective_thresholds(app)
    failed = app.notices.failed().select_related("certificate", "channel")
    response = render(
        request,
        "certmgr/notifications/notifications.html",
        {
            "app": app,
            "can_manage": can_manage,
            "rows": [describe(row) for row in app.channels.all()],
            "kinds": Kind.choices,
            "thresholds": thresholds,
            "default_thresholds": default,
            "thresholds_form": thresholds_form
            or ThresholdsForm(initial={"thresholds": ", ".join(map(str, app.notice_thresholds or []))}),
            "failed": list(failed[:LEDGER_SIZE]),
            "failed_total": failed.count(),
            "recent": list(app.notices.select_related("certificate", "channel")[:LEDGER_SIZE]),
            "ledger_size": LEDGER_SIZE,
            "generated": generated,
        },
    )
    if generated:
        response["Cache-Control"] = "no-store"
    return response


# --- channels -----------------------------------------------------------------------------------


@sensitive_post_parameters(*SECRET_POST_FIELDS)
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def channel_new(request, slug):
    app = managed_application(request, slug)
    kind = request.POST.get("kind") if request.method == "POST" else request.GET.get("kind")
    if kind not in Kind.values:
        if request.method == "POST":
            messages.error(request, "Choose a kind of channel.")
        return render(
            request,
            "certmgr/notifications/channel_form.html",
            {"app": app, "form": None, "kinds": Kind.choices},
        )
    form = ChannelForm(request.POST if request.method == "POST" else None, application=app, kind=kind)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            row = form.save()
            _audit_channel(request, row, channel_created_detail(row))
        return _saved(request, app, row, form, "added")
    return _form_page(request, app, form, kind, None)


@sensitive_post_parameters(*SECRET_POST_FIELDS)
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def channel_edit(request, slug, pk):
    app = managed_application(request, slug)
    row = get_object_or_404(NotificationChannel, application=app, pk=pk, kind__in=Kind.values)
    form = ChannelForm(
        request.POST if request.method == "POST" else None, application=app, kind=row.kind, instance=row
    )
    if request.method == "POST" and form.is_valid():
        before = channel_facts(row)  # the form changes the row only when it saves it
        with transaction.atomic():
            form.save()
            changes = channel_changes(row, before, channel_facts(row), generated=bool(form.generated_secret))
            if changes:
                _audit_channel(request, row, f"{channel_title(row)} changed: {', '.join(changes)}")
        return _saved(request, app, row, form, "saved")
    return _form_page(request, app, form, row.kind, row)


def _form_page(request, app, form, kind, row) -> HttpResponse:
    return render(
        request,
        "certmgr/notifications/channel_form.html",
        {
            "app": app,
            "form": form,
            "kind": kind,
            "kind_label": Kind(kind).label,
            "channel": row,
            "current": describe(row) if row else None,
        },
    )


def _saved(request, app, row, form, done: str) -> HttpResponse:
    """Redirect after the POST, so a reload does not post the form again (a second channel)."""
    messages.success(request, f"Channel '{row.name}' {done}.")
    if form.generated_secret:
        # Shown once on the page the redirect leads to; until then it waits sealed with the vault
        # (as a pending upload's key does), never in clear in the session store.
        sealed = keys.vault().encrypt(form.generated_secret.encode()).decode("ascii")
        request.session[GENERATED_SECRET_KEY] = {"channel": row.pk, "sealed": sealed}
    return redirect("notifications", app.slug)


def _take_generated(request, app) -> dict | None:
    """The secret generated for a channel of ``app`` just now, removed from the session."""
    stored = request.session.get(GENERATED_SECRET_KEY)
    row = app.channels.filter(pk=stored["channel"]).first() if stored else None
    if row is None:
        return None
    del request.session[GENERATED_SECRET_KEY]
    try:
        secret = keys.vault().decrypt(stored["sealed"].encode("ascii"), max_age=GENERATED_SECRET_MAX_AGE)
    except keys.VaultError:
        return None
    return {"channel": row, "secret": secret.decode()}


def _audit_channel(request, row: NotificationChannel, detail: str, action=AuditEvent.Action.CHANNEL_CHANGED):
    AuditEvent.record(action, request, application=row.application, detail=detail)


@require_POST
def channel_delete(request, slug, pk):
    app = managed_application(request, slug)
    row = get_object_or_404(NotificationChannel, application=app, pk=pk)
    name = row.name
    with transaction.atomic():
        _audit_channel(request, row, f"{channel_title(row)} deleted")
        row.delete()  # its ledger rows go with it
    messages.success(request, f"Channel '{name}' deleted.")
    return redirect("notifications", app.slug)


@require_POST
def channel_test(request, slug, pk):
    """Send a test notice now, through this channel, to each of its recipients; never a 500.

    The notice goes through the ledger's one delivery path (a TEST row per recipient), so the
    channel is exercised exactly as an expiry notice would exercise it.
    """
    app = managed_application(request, slug)
    row = get_object_or_404(NotificationChannel, application=app, pk=pk)
    test = ledger.send_test(row)
    if test.refused:
        messages.error(request, f"The test notice through '{row.name}' was not sent: {test.refused}")
        _audit_test(request, row, test, f"not sent: {test.refused}")
        return redirect("notifications", app.slug)
    for notice, retryable in test.failed:
        _test_failed(request, row, notice.recipient, notice.last_error, retryable)
    where = (
        f" to {len(test.sent)} of {counted(test.recipients, 'recipient')}" if row.kind == Kind.EMAIL else ""
    )
    if test.sent:
        messages.success(request, f"Test notice sent through '{row.name}'{where}.")
    outcome = [f"sent{where}"] if test.sent else []
    outcome += [
        f"failed{' for ' + notice.recipient if notice.recipient else ''}: {cut(notice.last_error, 160)}"
        for notice, _ in test.failed
    ]
    _audit_test(request, row, test, "; ".join(outcome))
    return redirect("notifications", app.slug)


def _test_failed(request, row, recipient: str, error: str, retryable: bool) -> None:
    who = f" to {recipient}" if recipient else ""
    hint = "a temporary problem: try again later" if retryable else "fix the channel's configuration"
    messages.error(request, f"The test notice through '{row.name}'{who} failed ({hint}): {error}")


def _audit_test(request, row: NotificationChannel, test: ledger.TestNotice, outcome: str) -> None:
    """``test notice through webhook channel 'ops': sent``, or ``…: failed: <reason>``."""
    detail = f"test notice through {channel_title(row)}: {test.scrub(outcome)}"
    _audit_channel(request, row, detail, AuditEvent.Action.CHANNEL_TESTED)


# --- thresholds and mute ------------------------------------------------------------------------


@require_POST
def thresholds(request, slug):
    app = managed_application(request, slug)
    form = ThresholdsForm(request.POST)
    if not form.is_valid():
        return _page(request, app, thresholds_form=form)
    before, was_default = effective_thresholds(app)
    stored = app.notice_thresholds
    app.notice_thresholds = form.cleaned_data["thresholds"]
    days, default = effective_thresholds(app)
    if app.notice_thresholds != stored:
        AuditEvent.saved(
            app,
            ["notice_thresholds"],
            AuditEvent.Action.APPLICATION_CHANGED,
            request,
            application=app,
            detail=f"notice thresholds {_days(before, was_default)} → {_days(days, default)}",
        )
    text = ", ".join(map(str, days))
    messages.success(
        request,
        f"Notices now go out {text} days before expiry" + (" (the global default)." if default else "."),
    )
    return redirect("notifications", app.slug)


def _days(days: list[int], default: bool) -> str:
    return ",".join(map(str, days)) + (" (global default)" if default else "")


@require_POST
def certificate_mute(request, pk):
    cert = managed_certificate(request, pk, "mute its notices")
    form = MuteForm(request.POST)
    back = cert.get_absolute_url() + "#notices"
    if not form.is_valid():
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        messages.error(request, "Notices were not muted: " + " ".join(errors))
        return redirect(back)
    if form.cleaned_data.get("action") == "unmute":
        cert.muted_until = None
        detail = "expiry notices unmuted"
        done = "Expiry notices for this certificate are no longer muted."
    else:
        cert.muted_until = form.cleaned_data["until"]
        stamp = f"{cert.muted_until:%Y-%m-%d %H:%M} UTC"
        detail = f"expiry notices muted until {stamp}"
        done = f"Expiry notices for this certificate are muted until {stamp}."
    AuditEvent.saved(
        cert,
        ["muted_until"],
        AuditEvent.Action.CERTIFICATE_CHANGED,
        request,
        application=cert.application,
        certificate=cert,
        detail=detail,
    )
    messages.success(request, done)
    return redirect(back)
