"""The rotation page: a new key and its CSR, the candidates checked side by side, the steps per
deploy tool, and the promotion (after which the new certificate is checked at once)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from ..access.clientaddr import client_ip
from ..bindings import parameters as bindings
from ..bindings.views import USE_ANYWAY, use_anyway
from ..core.rotation_steps import PHASES, TOOLS
from ..core.tokenflow import STEPS
from ..healthcheck.runner import why_not_checkable
from ..healthcheck.views import summary
from ..lib.viewkit import managed_application
from ..models import Application, Certificate
from . import pending_keys, plan
from .forms import NewKeyForm


@require_safe
def rotation_page(request, slug):
    app = get_object_or_404(Application, slug=slug)
    return _render(request, app, None)


def _render(request, app: Application, form: NewKeyForm | None):
    can_manage = app.is_managed_by(request.user)
    if can_manage and form is None:
        form = NewKeyForm(initial={"subject": pending_keys.proposed_subject(app)})
    chosen = request.GET.get("candidate", "")
    the_plan = plan.plan(
        app, int(chosen) if chosen.isascii() and chosen.isdigit() and len(chosen) < 16 else None
    )
    context = {
        "app": app,
        "plan": the_plan,
        "can_manage": can_manage,
        "form": form if can_manage else None,
        "pending": list(app.pending_keys.live()),
        "phases": PHASES,
        "pending_days": settings.CERTMGR_PENDING_KEY_DAYS,
        "health_steps": STEPS,
    }
    if the_plan is not None:
        context.update(_steps(request, app, the_plan.staged))
    return render(request, "certmgr/rotation/rotation.html", context)


def _steps(request, app: Application, staged: Certificate) -> dict:
    """The steps of every tool for ``staged``, the application's own tool first; withheld while
    the pre-flight gate blocks the parameters (bindings.parameters.blocking_checks)."""
    blocking = bindings.blocking_checks(staged)
    withheld = bool(blocking) and not use_anyway(request)
    wanted = request.GET.get("tool")
    first = wanted if wanted in TOOLS else app.tool
    tools = [first, *(tool for tool in TOOLS if tool != first)]
    labels = {"app": "app name", "instance": "service instance", "key": "service key", "namespace": "namespace",
              "binding": "ServiceBinding"}  # fmt: skip
    return {
        "guessed": [labels[name] for name in app.deploy_names().guessed],
        "blocking": blocking,
        "withheld": withheld,
        "use_anyway_flag": USE_ANYWAY,
        "rotations": [] if withheld else [plan.steps_for(app, staged, tool) for tool in tools],
    }


@require_POST
@never_cache
def new_key(request, slug):
    app = managed_application(request, slug)
    form = NewKeyForm(request.POST)
    if not form.is_valid():
        return _render(request, app, form)
    try:
        pending = pending_keys.create(
            app,
            subject=form.cleaned_data["subject"],
            key_type=form.cleaned_data["key_type"],
            actor=request.user,
            actor_label=request.user.get_username(),
            remote_addr=client_ip(request),
        )
    except pending_keys.PendingKeyError as exc:
        form.add_error(None, str(exc))
        return _render(request, app, form)
    messages.success(
        request,
        f"New {pending.get_key_type_display()} key generated and stored encrypted. Download its CSR, have "
        "it signed, then upload the certificate: it is stored with this key.",
    )
    return redirect(reverse("application-rotation", args=[app.slug]) + "#pending-keys")


@require_safe
def csr_download(request, slug, pk):
    app = managed_application(request, slug)
    pending = get_object_or_404(app.pending_keys.live(), pk=pk)
    pending_keys.csr_downloaded(
        pending, actor=request.user, actor_label=request.user.get_username(), remote_addr=client_ip(request)
    )
    response = HttpResponse(pending.csr_pem, content_type="application/pkcs10")
    response["Content-Disposition"] = f'attachment; filename="{app.slug}-{pending.pk}.csr.pem"'
    return response


@require_POST
def discard(request, slug, pk):
    app = managed_application(request, slug)
    pending = get_object_or_404(app.pending_keys, pk=pk)
    pending_keys.discard(
        pending, actor=request.user, actor_label=request.user.get_username(), remote_addr=client_ip(request)
    )
    messages.info(request, "Pending key discarded: a certificate for its CSR can no longer be matched to it.")
    return redirect(reverse("application-rotation", args=[app.slug]) + "#pending-keys")


@require_POST
def promote(request, slug, pk):
    app = managed_application(request, slug)
    staged = get_object_or_404(app.certificates, pk=pk, lifecycle=Certificate.Lifecycle.STAGED)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Confirm that the new binding works before retiring the old certificate.")
        return redirect("application-rotation", app.slug)
    retired = plan.promote(staged, actor=request.user, remote_addr=client_ip(request))
    messages.success(request, f"The staged certificate is now active; {len(retired)} certificate(s) retired.")
    run = plan.check_now(app, actor=request.user, remote_addr=client_ip(request))
    reason = "" if run is not None else why_not_checkable(app)
    if run is not None:
        messages.info(request, f"Health check with the new certificate: {summary(run)}")
    elif reason:
        messages.warning(request, f"The new certificate is not checked yet: {reason}")
    else:
        messages.info(
            request, "The health check with the new certificate is due now: the worker is running it."
        )
    return redirect(app.get_absolute_url() + "#health")
