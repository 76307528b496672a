"""Health-check pages: run one by hand (steps streamed as they complete), the history, one run."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from ..access.clientaddr import client_ip
from ..core.latency_chart import ChartRun, latency_svg
from ..core.tokenflow import STEPS
from ..lib.viewkit import managed_application
from ..models import Application, Certificate, HealthCheckRun
from .runner import Check, NotCheckable, why_not_checkable, why_not_with

HISTORY_SIZE = 100
NDJSON = "application/x-ndjson"


@require_POST
def health_run(request, slug):
    """The check of the certificate in use, or with ``certificate`` (a pk of this application's:
    a staged one before the switch, say), which changes nothing about which one is active."""
    app = managed_application(request, slug)
    chosen, reason = _chosen_certificate(app, request.POST.get("certificate", ""))
    check = Check(
        app,
        trigger=HealthCheckRun.Trigger.MANUAL,
        actor=request.user,
        actor_label=request.user.get_username(),
        remote_addr=client_ip(request),
        certificate=chosen,
    )
    if NDJSON in request.headers.get("Accept", ""):
        response = StreamingHttpResponse(_stream(check, reason), content_type=NDJSON)
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # let proxies pass each line on as it comes
        return response
    if reason:
        messages.error(request, f"The health check cannot run: {reason}")
        return redirect(chosen or app)
    for _ in check:
        pass
    return redirect(check.run)


def _chosen_certificate(app: Application, reference: str) -> tuple[Certificate | None, str]:
    """(the certificate to check or None for the one in use, why the check cannot run or "")."""
    if not reference:
        return None, why_not_checkable(app)
    found = None
    if reference.isascii() and reference.isdigit() and len(reference) < 16:
        found = app.certificates.filter(pk=int(reference)).first()
    if found is None:
        return None, "No such certificate in this application."
    return found, why_not_with(app, found)


def _stream(check: Check, reason: str):
    if reason:
        yield _line({"error": f"The health check cannot run: {reason}"})
        return
    try:
        for step in check:
            yield _line({"step": step.to_dict()})
    except NotCheckable as exc:
        yield _line({"error": f"The health check cannot run: {exc}"})
        return
    run = check.run
    yield _line({"done": True, "ok": run.ok, "url": run.get_absolute_url(), "summary": summary(run)})


def _line(data: dict) -> bytes:
    return (json.dumps(data) + "\n").encode("utf-8")


def summary(run: HealthCheckRun) -> str:
    if run.ok:
        backend_ok = any(step.get("name") == "backend" and step.get("ok") for step in run.steps)
        return "Healthy: IAS issued a token for this certificate" + (
            " and the backend accepted it." if backend_ok else "."
        )
    return f"Failed at {run.failed_step}: {run.diagnosis}"


# The history page's time ranges; the chart shows at most CHART_POINTS runs of one (evenly thinned).
RANGES = {
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
}
CHART_POINTS = 300
CHART_READ_LIMIT = 10_000


def health_history(request, slug):
    app = get_object_or_404(Application, slug=slug)
    now = timezone.now()
    chosen = request.GET.get("range", "7d") if request.GET.get("range") in RANGES else "7d"
    in_range = app.health_checks.filter(started_at__gte=now - RANGES[chosen][1])
    runs = list(in_range.select_related("certificate")[:HISTORY_SIZE])
    charted = list(in_range.values_list("started_at", "ok", "steps")[:CHART_READ_LIMIT])
    charted = charted[:: max(1, -(-len(charted) // CHART_POINTS))]
    chart_runs = [
        ChartRun(started_at, ok, {step["name"]: step.get("duration_ms") for step in steps})
        for started_at, ok, steps in reversed(charted)
    ]
    span = (now - RANGES[chosen][1], now)
    return render(
        request,
        "certmgr/healthcheck/health_history.html",
        {
            "app": app,
            "runs": runs,
            # The SVG is built from numbers, timestamps and fixed names, each escaped by the chart.
            "chart": mark_safe(latency_svg(chart_runs, span=span)),  # noqa: S308
            "charted": len(chart_runs),
            "ranges": [(key, label, key == chosen) for key, (label, _) in RANGES.items()],
            "range_label": RANGES[chosen][0],
            "steps": STEPS,
            "can_manage": app.is_managed_by(request.user),
        },
    )


def health_run_detail(request, slug, pk):
    run = get_object_or_404(HealthCheckRun.objects.select_related("application", "certificate"), pk=pk)
    if run.application.slug != slug:
        return redirect(run)
    return render(
        request,
        "certmgr/healthcheck/health_run.html",
        {
            "app": run.application,
            "run": run,
            "summary": summary(run),
            "can_manage": run.application.is_managed_by(request.user),
        },
    )
