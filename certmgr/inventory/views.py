"""Thin views: they gather input, call the parser/importer/model methods, render."""

from __future__ import annotations

import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from ..access.clientaddr import client_ip
from ..bindings.parameters import preview_checks
from ..bindings.views import binding_panel
from ..core.errors import InputError
from ..core.expiry import ExpiryState, days_left, expiry_state
from ..core.parse import ParsedInput
from ..core.tokenflow import STEPS
from ..healthcheck.runner import why_not_checkable
from ..lib.listing import Listing, csv_response, paginate
from ..lib.viewkit import managed_application, managed_certificate, param
from ..models import Application, AuditEvent, Certificate, HealthCheckRun, warning_threshold
from ..rotation.plan import health_follows_certificate
from ..search import picker
from ..search.picker import matching
from . import keys, pending
from .audit import APPLICATION_AUDIT, application_created_detail
from .forms import ApplicationForm, KeyDownloadForm, LifecycleForm, UploadForm
from .importer import Importer, ImportResult
from .lists import CERTIFICATE_SORT, DASHBOARD_SORT

PAGE_SIZE = 50


HEALTH_FILTERS = {
    "failing": ("failing health checks", Q(last_check__ok=False)),
    "paused": ("paused health checks", Q(checks_paused=True)),
}


def dashboard(request):
    now = timezone.now()
    listing = Listing.of(request, DASHBOARD_SORT, keep=("q", "health"))
    apps = Application.objects.with_next_expiry()
    query = listing.query.get("q", "")
    if query:
        apps = apps.filter(matching(query))
    health = listing.query.get("health", "")
    if health in HEALTH_FILTERS:
        apps = apps.filter(HEALTH_FILTERS[health][1])
    # Two steps: the page's ids in the chosen order (the sort's own subquery is the only one the
    # database computes for every application), then those 50 rows with all a row shows
    # (10,000 applications: 62 -> 28 ms on PostgreSQL, 35 -> 22 ms on SQLite).
    page = paginate(request, apps.order_by(*listing.order_by).values_list("pk", flat=True), PAGE_SIZE)
    ids = list(page)
    shown = {app.pk: app for app in apps.select_related("last_check").filter(pk__in=ids)}
    rows = [
        (app, _next_expiry_state(app.next_expiry, now, app.earliest_start))
        for app in (shown[pk] for pk in ids if pk in shown)  # one deleted in between: left out
    ]
    checks = {key: Application.objects.filter(q) for key, (_, q) in HEALTH_FILTERS.items()}
    counts = Certificate.objects.active().count_by_state(now, **checks)
    return render(
        request,
        "certmgr/inventory/dashboard.html",
        {
            "page": page,
            "rows": rows,
            "listing": listing,
            "query": query,
            "health": health if health in HEALTH_FILTERS else "",
            "health_filters": [(key, label) for key, (label, _) in HEALTH_FILTERS.items()],
            # The tiles: certificates by state and applications by health check, in one query.
            "counts": counts,
            "checks": counts,
            "threshold_days": warning_threshold().days,
        },
    )


def _next_expiry_state(not_after, now, earliest_start):
    """State of an application's next expiry; not yet valid only while no active one has started."""
    if not_after is None:
        return None, None
    return expiry_state(earliest_start, not_after, now, warning_threshold()), days_left(not_after, now)


CSV_CERTIFICATE_FIELDS = (
    "subject", "application__slug", "application__name", "lifecycle", "not_before", "not_after",
    "fingerprint", "serial", "issuer", "key_algorithm", "key_size", "uploaded_at",
)  # fmt: skip


def certificate_list(request):
    now = timezone.now()
    listing = Listing.of(request, CERTIFICATE_SORT, keep=("q", "state", "application", "lifecycle"))
    filters = {name: listing.query.get(name, "") for name in ("q", "state", "application", "lifecycle")}
    certs = Certificate.objects.select_related("application").search(filters["q"])
    if filters["state"] in {s.value for s in ExpiryState}:  # "x" in ExpiryState raises on Python 3.11
        certs = certs.in_state(filters["state"], now=now)
    chosen = picker.pick(Application.objects.all(), filters["application"])
    if chosen.application is not None:
        certs = certs.filter(application=chosen.application)
    elif chosen.text:  # several match (offered below the form) or none: all of them, or nothing
        certs = certs.filter(application__in=chosen.matches(Application.objects.all()))
    if filters["lifecycle"] in Certificate.Lifecycle.values:
        certs = certs.filter(lifecycle=filters["lifecycle"])
    certs = certs.order_by(*listing.order_by)
    if param(request, "export") == "csv":
        return _certificates_csv(certs, now)
    page = paginate(request, certs, PAGE_SIZE)
    return render(
        request,
        "certmgr/inventory/certificate_list.html",
        {
            "page": page,
            "rows": [(c, c.expiry_state(now), c.days_left(now)) for c in page],
            "filters": filters,
            "listing": listing,
            "chosen": chosen,
            "choices": [(app, listing.link(application=app.slug, page="")) for app in chosen.choices],
            "states": list(ExpiryState),
            "lifecycles": Certificate.Lifecycle.choices,
        },
    )


def _certificates_csv(certs, now):
    key_held = ExpressionWrapper(Q(encrypted_private_key__isnull=False), output_field=BooleanField())
    rows = certs.annotate(key_held=key_held).values_list(*CSV_CERTIFICATE_FIELDS, "key_held")

    def lines():
        for row in rows.iterator(chunk_size=2000):
            not_before, not_after = row[4], row[5]
            state = expiry_state(not_before, not_after, now, warning_threshold())
            yield [*row[:6], state.value, days_left(not_after, now), *row[6:-1], "yes" if row[-1] else "no"]

    header = [
        "subject", "application", "application name", "lifecycle", "not before (UTC)", "not after (UTC)",
        "state", "days left", "sha-256 fingerprint", "serial", "issuer", "key algorithm", "key size",
        "uploaded (UTC)", "private key held",
    ]  # fmt: skip
    return csv_response("certificates", header, lines())


def application_detail(request, slug):
    app = get_object_or_404(Application.objects.select_related("last_check"), slug=slug)
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
        "certmgr/inventory/application_detail.html",
        {
            "app": app,
            "rows": [(c, c.expiry_state(now), c.days_left(now)) for c in certs],
            "next": _next_expiry_state(next_expiry, now, earliest_start),
            "next_expiry": next_expiry,
            "can_manage": app.is_managed_by(request.user),
            "not_checkable": why_not_checkable(app, certs),
            "steps": STEPS,
            # Since the certificate in use changed (a promotion), no run of the new one yet.
            "rotated": app.last_check_id is None and app.health_checks.exists(),
        },
    )


def application_create(request):
    if not (request.user.is_superuser or request.user.has_perm("certmgr.add_application")):
        raise PermissionDenied("You may not create applications.")
    form = ApplicationForm(_with_slug(request.POST) or None, initial={"owners": [request.user]})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            app = form.save()
            AuditEvent.record(
                AuditEvent.Action.APPLICATION_CREATED,
                request,
                application=app,
                detail=application_created_detail(app),
            )
        messages.success(request, f"Application '{app.name}' created.")
        return redirect(app)
    return render(request, "certmgr/inventory/application_form.html", {"form": form, "app": None})


def _with_slug(data):
    """An empty slug is made from the name, as the page's script does while one types."""
    if data and not data.get("slug", "").strip() and data.get("name", "").strip():
        data = data.copy()
        data["slug"] = slugify(data["name"])[:100]
    return data


def application_edit(request, slug):
    app = managed_application(request, slug)
    form = ApplicationForm(request.POST or None, instance=app)
    # Taken before validation: a valid form has already written its values into ``app``.
    before = APPLICATION_AUDIT.snapshot(app) if request.method == "POST" else {}
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            changes = APPLICATION_AUDIT.changes(before, app)
            if changes:
                AuditEvent.record(
                    AuditEvent.Action.APPLICATION_CHANGED,
                    request,
                    application=app,
                    detail="changed: " + ", ".join(changes),
                )
        messages.success(request, "Application saved.")
        return redirect(app)
    return render(request, "certmgr/inventory/application_form.html", {"form": form, "app": app})


# A file whose only problem was its password, or the application not yet chosen, waits for the retry.
RETRY_CODES = {InputError.WRONG_PASSWORD, InputError.PASSWORD_REQUIRED}


@sensitive_post_parameters("password", "text")
@sensitive_variables("data", "outcome", "form")
@never_cache
def upload(request, slug=None):
    managed = Application.objects.managed_by(request.user).order_by("name")
    # An application the user may see but not manage: 403, as everywhere else.
    initial_app = managed_application(request, slug) if slug else None
    if request.method == "POST" and request.POST.get("step") in {"confirm", "cancel"}:
        return _finish_upload(request)
    first = [] if initial_app else list(managed[:2])
    only_app = initial_app or (first[0] if len(first) == 1 else None)
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        applications=managed,
        kept=pending.kept_file(request.session),
        initial={"application": only_app.slug if only_app else ""},
    )
    if request.method == "POST" and form.is_valid():
        outcome = _parse_upload(request, form)
        if isinstance(outcome, HttpResponse):
            return outcome
    elif request.method == "POST":
        _keep_file_for_retry(request, form)
        _drop_pasted_keys(form)
    return render(
        request,
        "certmgr/inventory/upload.html",
        {
            "form": form,
            "app": initial_app,
            "has_apps": bool(initial_app or first),
            "kept": pending.kept_file(request.session),
            "back": initial_app.get_absolute_url() if initial_app else reverse("dashboard"),
        },
    )


def _parse_upload(request, form) -> HttpResponse | None:
    """The preview page for a valid form; None (the form has the error) when the input was not usable."""
    app = form.cleaned_data["application"]
    source = form.payload()
    if source is None:
        source = pending.take_retry(request.session)
        if source is None:
            form.add_error(None, "The file kept from your last try has expired: choose it again.")
            return None
    else:
        pending.drop_retry(request.session)
    label, data = source
    outcome = Importer(app, store_keys=False).parse(label, data, form.cleaned_data["password"] or None)
    if isinstance(outcome, ImportResult):
        form.add_error(None, outcome.error)
        if outcome.error_code in RETRY_CODES:
            pending.keep_for_retry(request.session, label, data)
        _drop_pasted_keys(form, outcome.error_code)
        return None
    store = form.cleaned_data["store_private_key"]
    lifecycle = form.cleaned_data["lifecycle"] or Certificate.Lifecycle.ACTIVE
    token = pending.stash(request.session, app.pk, label, outcome, store, lifecycle)
    context = _preview_context(app, label, outcome, store, token)
    return render(request, "certmgr/inventory/upload_preview.html", {**context, "lifecycle": lifecycle})


def _keep_file_for_retry(request, form) -> None:
    """Only the application was wrong (not found, or several match): keep the chosen file."""
    upload = form.cleaned_data.get("file") if hasattr(form, "cleaned_data") else None
    if upload and set(form.errors) == {"application"}:
        upload.seek(0)
        pending.keep_for_retry(request.session, upload.name, upload.read())


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
    importer = Importer(app, store_keys=False)
    existing = Certificate.objects.filter(fingerprint=leaf.sha256).select_related("application").first()
    conflict = importer.tenant_conflict(leaf.sha256)
    return {
        "app": app,
        "label": label,
        "parsed": parsed,
        "leaf": leaf,
        "token": token,
        "store_key": store and parsed.has_private_key,
        "state": expiry_state(leaf.not_before, leaf.not_after, now, warning_threshold()),
        "days_left": days_left(leaf.not_after, now),
        "existing": existing,
        "conflict": conflict,
        # The application that holds it, for a link (IAS refuses the certificate for a second one).
        "holder": Certificate.objects.filter(tenant=app.tenant, fingerprint=leaf.sha256)
        .exclude(application=app)
        .select_related("application")
        .first()
        if conflict
        else None,
        # A certificate already here keeps what it has; a new one takes its pending key.
        "pending_key": None if existing else importer.matching_pending_key(leaf),
        "checks": preview_checks(app, parsed, now),
    }


def _finish_upload(request):
    if request.POST["step"] == "cancel":
        came_from = Application.objects.filter(pk=pending.discard(request.session)).first()
        messages.info(request, "Upload cancelled; nothing was stored.")
        return redirect(came_from or "dashboard")
    pending.drop_retry(request.session)
    taken = pending.take(request.session, request.POST.get("token", ""))
    if taken is None:
        messages.error(request, "That upload has expired or was already saved. Please upload again.")
        return redirect("upload")
    app = managed_application(request, get_object_or_404(Application, pk=taken.application_id).slug)
    importer = Importer(
        app,
        store_keys=taken.parsed.has_private_key,
        actor=request.user,
        remote_addr=client_ip(request),
        lifecycle=taken.lifecycle,
    )
    [result] = importer.save([(taken.label, taken.parsed)])
    if not result.ok:
        messages.error(request, result.error)
        return redirect(app)
    if result.already_present:
        messages.info(request, "This certificate was already stored for this application.")
    elif result.key_matched:
        messages.success(
            request, "Certificate stored with the private key generated in the portal for its CSR."
        )
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
        "certmgr/inventory/certificate_detail.html",
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
            "binding": binding_panel(request, cert, now),
            "latest_run": HealthCheckRun.objects.filter(certificate=cert).first(),
            "steps": STEPS,
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
@sensitive_variables("der", "form")
def certificate_key(request, pk):
    cert = managed_certificate(request, pk, "download its private key")
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
            remote_addr=client_ip(request),
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
    cert = managed_certificate(request, pk, "change its certificates")
    form = LifecycleForm(request.POST)
    if form.is_valid() and form.cleaned_data["lifecycle"] != cert.lifecycle:
        before = cert.get_lifecycle_display()
        cert.lifecycle = form.cleaned_data["lifecycle"]
        AuditEvent.saved(
            cert,
            ["lifecycle"],
            AuditEvent.Action.CERTIFICATE_CHANGED,
            request,
            application=cert.application,
            certificate=cert,
            detail=f"lifecycle {before} → {cert.get_lifecycle_display()}",
        )
        messages.success(request, f"Certificate is now {cert.get_lifecycle_display()}.")
        if health_follows_certificate(cert.application):
            messages.info(
                request, "The application uses another certificate now: its health check is due at once."
            )
    return redirect(cert)


def _filename(cert: Certificate) -> str:
    return f"{slugify(cert.application.slug)}-{cert.fingerprint[:12]}"
