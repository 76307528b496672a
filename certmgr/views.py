"""Thin views: they gather input, call the parser/importer/model methods, render."""

from __future__ import annotations

import re
from typing import NamedTuple

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe

from . import bindings, keys, pending
from .core.binding import FORMATS, Target
from .core.errors import InputError
from .core.expiry import ExpiryState, days_left, expiry_state
from .core.parse import ParsedInput
from .forms import ApplicationForm, KeyDownloadForm, LifecycleForm, UploadForm
from .importer import Importer, ImportResult
from .models import Application, AuditEvent, Certificate, warning_threshold

PAGE_SIZE = 50


def dashboard(request):
    now = timezone.now()
    apps = Application.objects.with_next_expiry().order_by(F("next_expiry").asc(nulls_last=True), "name")
    query = _param(request, "q").strip()
    if query:
        apps = apps.filter(
            Q(name__icontains=query) | Q(slug__icontains=query) | Q(client_id__icontains=query)
        )
    page = Paginator(apps, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(app, _next_expiry_state(app.next_expiry, now, app.earliest_start)) for app in page]
    return render(
        request,
        "certmgr/dashboard.html",
        {
            "page": page,
            "rows": rows,
            "query": query,
            "counts": Certificate.objects.active().count_by_state(now),
            "querystring": _querystring(request, exclude="page"),
            "threshold_days": warning_threshold().days,
        },
    )


def _next_expiry_state(not_after, now, earliest_start):
    """State of an application's next expiry; not yet valid only while no active one has started."""
    if not_after is None:
        return None, None
    return expiry_state(earliest_start, not_after, now, warning_threshold()), days_left(not_after, now)


def certificate_list(request):
    now = timezone.now()
    certs = Certificate.objects.select_related("application")
    filters = {
        "q": _param(request, "q").strip(),
        "state": _param(request, "state"),
        "application": _param(request, "application"),
        "lifecycle": _param(request, "lifecycle"),
        "sort": _param(request, "sort", "expiry"),
    }
    certs = certs.search(filters["q"])
    if filters["state"] in {s.value for s in ExpiryState}:  # "x" in ExpiryState raises on Python 3.11
        certs = certs.in_state(filters["state"], now=now)
    if filters["application"]:
        certs = certs.filter(application__slug=filters["application"])
    if filters["lifecycle"] in Certificate.Lifecycle.values:
        certs = certs.filter(lifecycle=filters["lifecycle"])
    order = "-not_after" if filters["sort"] == "-expiry" else "not_after"
    page = Paginator(certs.order_by(order, "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "certmgr/certificate_list.html",
        {
            "page": page,
            "rows": [(c, c.expiry_state(now), c.days_left(now)) for c in page],
            "filters": filters,
            "states": list(ExpiryState),
            "lifecycles": Certificate.Lifecycle.choices,
            # Decided here: a template {% if %} per option is most of the page's time with 1,000 apps.
            "applications": [
                (slug, name, slug == filters["application"])
                for slug, name in Application.objects.values_list("slug", "name")
            ],
            "querystring": _querystring(request, exclude="page"),
        },
    )


def _param(request, name: str, default: str = "") -> str:
    """A query parameter as text the database accepts (PostgreSQL refuses NUL characters)."""
    return request.GET.get(name, default).replace("\x00", "")


def _querystring(request, exclude: str) -> str:
    params = request.GET.copy()
    params.pop(exclude, None)
    return params.urlencode()


def application_detail(request, slug):
    app = get_object_or_404(Application, slug=slug)
    now = timezone.now()
    certs = app.certificates.order_by("lifecycle", "not_after")
    earliest_start = min(
        (c.not_before for c in certs if c.lifecycle == Certificate.Lifecycle.ACTIVE), default=None
    )
    next_expiry = min(
        (c.not_after for c in certs if c.lifecycle == Certificate.Lifecycle.ACTIVE), default=None
    )
    return render(
        request,
        "certmgr/application_detail.html",
        {
            "app": app,
            "rows": [(c, c.expiry_state(now), c.days_left(now)) for c in certs],
            "next": _next_expiry_state(next_expiry, now, earliest_start),
            "next_expiry": next_expiry,
            "can_manage": app.is_managed_by(request.user),
        },
    )


def application_create(request):
    if not (request.user.is_superuser or request.user.has_perm("certmgr.add_application")):
        raise PermissionDenied("You may not create applications.")
    form = ApplicationForm(request.POST or None, initial={"owners": [request.user]})
    if request.method == "POST" and form.is_valid():
        app = form.save()
        messages.success(request, f"Application '{app.name}' created.")
        return redirect(app)
    return render(request, "certmgr/application_form.html", {"form": form, "app": None})


def application_edit(request, slug):
    app = _managed_application(request, slug)
    form = ApplicationForm(request.POST or None, instance=app)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Application saved.")
        return redirect(app)
    return render(request, "certmgr/application_form.html", {"form": form, "app": app})


def _managed_application(request, slug) -> Application:
    app = get_object_or_404(Application, slug=slug)
    if not app.is_managed_by(request.user):
        raise PermissionDenied("Only the application's owners and admins may do this.")
    return app


@sensitive_post_parameters("password", "text")
@never_cache
def upload(request, slug=None):
    managed = Application.objects.managed_by(request.user).order_by("name")
    initial_app = get_object_or_404(managed, slug=slug) if slug else None
    if request.method == "POST" and request.POST.get("step") in {"confirm", "cancel"}:
        return _finish_upload(request)
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        applications=managed,
        initial={"application": initial_app},
    )
    if request.method == "POST" and form.is_valid():
        app = form.cleaned_data["application"]
        label, data = form.payload()
        outcome = Importer(app, store_keys=False).parse(label, data, form.cleaned_data["password"] or None)
        if isinstance(outcome, ImportResult):
            form.add_error(None, outcome.error)
        else:
            store = form.cleaned_data["store_private_key"]
            lifecycle = form.cleaned_data["lifecycle"] or Certificate.Lifecycle.ACTIVE
            token = pending.stash(request.session, app.pk, label, outcome, store, lifecycle)
            context = _preview_context(app, label, outcome, store, token)
            return render(request, "certmgr/upload_preview.html", {**context, "lifecycle": lifecycle})
        _drop_pasted_keys(form, outcome.error_code)
    elif request.method == "POST":
        _drop_pasted_keys(form)
    return render(
        request, "certmgr/upload.html", {"form": form, "app": initial_app, "has_apps": managed.exists()}
    )


_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL
)


def _drop_pasted_keys(form, error_code: str = "") -> None:
    """The pasted text is shown again after an error, but never a private key that was in it."""
    text = form.data.get("text", "")
    kept = _PRIVATE_KEY_BLOCK.sub("", text)
    if error_code == InputError.KEY_WITHOUT_CERTIFICATE or "PRIVATE" in kept.upper():
        kept = ""  # a key without its armour, or with damaged armour: drop everything
    if kept != text:
        form.data = form.data.copy()
        form.data["text"] = kept
        form.add_error(
            "text", "The private key was taken out of the text: a key is never sent back to the page."
        )


def _preview_context(app, label: str, parsed: ParsedInput, store: bool, token: str) -> dict:
    now = timezone.now()
    leaf = parsed.leaf
    return {
        "app": app,
        "label": label,
        "parsed": parsed,
        "leaf": leaf,
        "token": token,
        "store_key": store and parsed.has_private_key,
        "state": expiry_state(leaf.not_before, leaf.not_after, now, warning_threshold()),
        "days_left": days_left(leaf.not_after, now),
        "existing": Certificate.objects.filter(fingerprint=leaf.sha256).select_related("application").first(),
        "conflict": Importer(app, store_keys=False).tenant_conflict(leaf.sha256),
    }


def _finish_upload(request):
    if request.POST["step"] == "cancel":
        pending.discard(request.session)
        messages.info(request, "Upload cancelled; nothing was stored.")
        return redirect("dashboard")
    taken = pending.take(request.session, request.POST.get("token", ""))
    if taken is None:
        messages.error(request, "That upload has expired or was already saved. Please upload again.")
        return redirect("upload")
    app = _managed_application(request, get_object_or_404(Application, pk=taken.application_id).slug)
    importer = Importer(
        app,
        store_keys=taken.parsed.has_private_key,
        actor=request.user,
        remote_addr=_client_ip(request),
        lifecycle=taken.lifecycle,
    )
    [result] = importer.save([(taken.label, taken.parsed)])
    if not result.ok:
        messages.error(request, result.error)
        return redirect(app)
    if result.already_present:
        messages.info(request, "This certificate was already stored for this application.")
    else:
        messages.success(
            request,
            "Certificate stored" + (" with its private key (encrypted)." if result.key_stored else "."),
        )
    return redirect(result.certificate)


def certificate_detail(request, pk):
    cert = get_object_or_404(Certificate.objects.select_related("application", "uploaded_by"), pk=pk)
    now = timezone.now()
    can_manage = cert.application.is_managed_by(request.user)
    return render(
        request,
        "certmgr/certificate_detail.html",
        {
            "cert": cert,
            "app": cert.application,
            "state": cert.expiry_state(now),
            "days_left": cert.days_left(now),
            "chain": cert.chain_certificates(),
            "can_manage": can_manage,
            "key_form": KeyDownloadForm(),
            "lifecycle_form": LifecycleForm(initial={"lifecycle": cert.lifecycle}),
            "key_reads": cert.auditevent_set.filter(action=AuditEvent.Action.KEY_READ)[:10]
            if can_manage
            else [],
            "binding": _binding_panel(request, cert, now),
        },
    )


def certificate_pem(request, pk):
    cert = get_object_or_404(Certificate, pk=pk)
    response = HttpResponse(cert.chain_pem or cert.pem, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'attachment; filename="{_filename(cert)}.pem"'
    return response


@sensitive_post_parameters("password")
@require_POST
@never_cache
def certificate_key(request, pk):
    cert = _managed_certificate(request, pk, "download its private key")
    form = KeyDownloadForm(request.POST)
    if not cert.has_private_key:
        messages.error(request, "No private key is stored for this certificate.")
        return redirect(cert)
    if not form.is_valid():
        messages.error(request, "The download password cannot be used: " + " ".join(form.errors["password"]))
        return redirect(cert)
    try:
        der = keys.read_private_key(
            cert,
            actor=request.user,
            actor_label=request.user.get_username(),
            remote_addr=_client_ip(request),
            purpose="downloaded from the certificate page",
        )
    except keys.VaultError as exc:
        messages.error(request, str(exc))
        return redirect(cert)
    response = HttpResponse(
        keys.export_pem(der, form.cleaned_data["password"]), content_type="application/x-pem-file"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(cert)}.key.pem"'
    return response


@require_POST
def certificate_lifecycle(request, pk):
    cert = _managed_certificate(request, pk, "change its certificates")
    form = LifecycleForm(request.POST)
    if form.is_valid() and form.cleaned_data["lifecycle"] != cert.lifecycle:
        before = cert.get_lifecycle_display()
        cert.lifecycle = form.cleaned_data["lifecycle"]
        cert.save(update_fields=["lifecycle"])
        AuditEvent.objects.create(
            actor=request.user,
            actor_label=request.user.get_username(),
            action=AuditEvent.Action.CERTIFICATE_CHANGED,
            application=cert.application,
            certificate=cert,
            remote_addr=_client_ip(request),
            detail=f"lifecycle {before} → {cert.get_lifecycle_display()}",
        )
        messages.success(request, f"Certificate is now {cert.get_lifecycle_display()}.")
    return redirect(cert)


# --- binding parameters: no secret in them, so every logged-in user may see them ---------------


class BindingFormat(NamedTuple):
    label: str
    filename: str
    content_type: str
    where: str


BINDING_FORMATS = {
    "json": BindingFormat(
        "JSON",
        "params.json",
        "application/json",
        "The parameters alone: cf bind-service APP INSTANCE -c params.json, "
        "or cf create-service-key INSTANCE KEY -c params.json.",
    ),
    "cf": BindingFormat(
        "cf CLI",
        "cf-commands.sh",
        "text/x-shellscript",
        "Two commands: a service key, and a binding of the app. Run the one you need.",
    ),
    "manifest": BindingFormat(
        "manifest.yml",
        "manifest.yml",
        "application/yaml",
        "The parameters of the service in the app's manifest.yml.",
    ),
    "mta": BindingFormat(
        "mta.yaml", "mta.yaml", "application/yaml", "The parameters.config of a requires entry in mta.yaml."
    ),
    "kyma": BindingFormat(
        "Kyma",
        "servicebinding.yaml",
        "application/yaml",
        "A ServiceBinding for the SAP BTP service operator (Kyma, Kubernetes).",
    ),
    "terraform": BindingFormat(
        "Terraform",
        "binding.tf",
        "text/plain",
        "A btp_subaccount_service_binding for the SAP BTP Terraform provider.",
    ),
}
NAME_MAX_LENGTH = 100


def _binding_options(request) -> tuple[bool, Target, dict[str, str]]:
    """chain=1, and the names typed into the form (an empty one keeps Target's placeholder)."""
    names = {field: _param(request, field).strip()[:NAME_MAX_LENGTH] for field in ("instance", "app", "key")}
    target = Target(
        instance=names["instance"] or Target.instance,
        app=names["app"] or Target.app,
        key_name=names["key"] or Target.key_name,
    )
    return request.GET.get("chain") == "1", target, names


def _binding_panel(request, cert: Certificate, now) -> dict:
    chain, target, names = _binding_options(request)
    query = urlencode(({"chain": "1"} if chain else {}) | {k: v for k, v in names.items() if v})
    checks = bindings.checks(cert, now)
    return {
        "checks": checks,
        "counts": {level: sum(c.level == level for c in checks) for level in ("error", "warning", "pass")},
        "chain": chain,
        "chain_length": len(cert.chain_certificates()),
        "names": names,
        "defaults": Target(),
        "max_length": NAME_MAX_LENGTH,
        "blocks": [
            {
                "format": fmt,
                "spec": BINDING_FORMATS[fmt],
                "text": bindings.rendered(cert, fmt, chain=chain, target=target),
                "download": reverse("certificate-binding", args=[cert.pk, fmt])
                + ("?" + query if query else ""),
            }
            for fmt in FORMATS
        ],
    }


@require_safe
def certificate_binding(request, pk, fmt):
    if fmt not in FORMATS:
        raise Http404("No such binding format.")
    cert = get_object_or_404(Certificate, pk=pk)
    chain, target, _ = _binding_options(request)
    spec = BINDING_FORMATS[fmt]
    response = HttpResponse(
        bindings.rendered(cert, fmt, chain=chain, target=target),
        content_type=f"{spec.content_type}; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{spec.filename}"'
    return response


@require_safe
def api_certificate_binding(request, pk):
    fmt = request.GET.get("format", "json")
    if fmt not in FORMATS:
        return JsonResponse(
            {"error": f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}."}, status=400
        )
    if request.GET.get("chain", "0") not in ("0", "1"):
        return JsonResponse(
            {"error": "chain must be 0 (the certificate alone) or 1 (with its issuers)."}, status=400
        )
    cert = Certificate.objects.filter(pk=pk).first()
    if cert is None:
        return JsonResponse({"error": f"No certificate with id {pk}."}, status=404)
    chain, target, _ = _binding_options(request)
    return JsonResponse(
        {
            "certificate": cert.pk,
            "fingerprint": cert.fingerprint,
            "subject": cert.subject,
            "format": fmt,
            "chain": chain,
            "parameters": bindings.parameters(cert, chain=chain),
            "rendered": bindings.rendered(cert, fmt, chain=chain, target=target),
            "checks": [
                {"rule": c.rule, "level": c.level, "message": c.message} for c in bindings.checks(cert)
            ],
        }
    )


def _managed_certificate(request, pk, doing: str) -> Certificate:
    cert = get_object_or_404(Certificate.objects.select_related("application"), pk=pk)
    if not cert.application.is_managed_by(request.user):
        raise PermissionDenied(f"Only the application's owners and admins may {doing}.")
    return cert


def _filename(cert: Certificate) -> str:
    return f"{slugify(cert.application.slug)}-{cert.fingerprint[:12]}"


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None
