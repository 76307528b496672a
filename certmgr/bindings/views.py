"""Binding parameters (they hold no secret: every logged-in user may see them), rotation to a
staged certificate, and the other credential types."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from ..access.clientaddr import client_ip
from ..core import binding
from ..core.binding import FORMATS, Target
from ..lib.viewkit import managed_application, param
from ..lib.words import counted
from ..models import Application, AuditEvent, Certificate
from . import parameters as bindings
from . import rotation


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


def binding_options(request) -> tuple[bool, Target, dict[str, str]]:
    """chain=1, and the names typed into the form (an empty one keeps Target's placeholder)."""
    names = {field: param(request, field).strip()[:NAME_MAX_LENGTH] for field in ("instance", "app", "key")}
    target = Target(
        instance=names["instance"] or Target.instance,
        app=names["app"] or Target.app,
        key_name=names["key"] or Target.key_name,
    )
    return request.GET.get("chain") == "1", target, names


def binding_panel(request, cert: Certificate, now) -> dict:
    chain, target, names = binding_options(request)
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
    chain, target, _ = binding_options(request)
    spec = BINDING_FORMATS[fmt]
    response = HttpResponse(
        bindings.rendered(cert, fmt, chain=chain, target=target),
        content_type=f"{spec.content_type}; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{spec.filename}"'
    _audit_parameters(request, cert, f"{fmt} download{' with chain' if chain else ''}")
    return response


def _audit_parameters(request, cert, detail: str) -> None:
    AuditEvent.record(
        AuditEvent.Action.PARAMETERS_GENERATED,
        request,
        application_id=cert.application_id,
        certificate=cert,
        detail=detail,
    )


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
    chain, target, _ = binding_options(request)
    _audit_parameters(request, cert, f"{fmt} via the API{' with chain' if chain else ''}")
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


@require_POST
def promote(request, slug, pk):
    app = managed_application(request, slug)
    staged = get_object_or_404(app.certificates, pk=pk, lifecycle=Certificate.Lifecycle.STAGED)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Confirm that the new binding works before retiring the old certificate.")
        return redirect(app)
    retired = rotation.promote(staged, actor=request.user, remote_addr=client_ip(request))
    messages.success(
        request, f"The staged certificate is now active; {counted(len(retired), 'certificate')} retired."
    )
    return redirect(app)


class CredentialTypeForm(forms.Form):
    credential_type = forms.ChoiceField(
        choices=[
            ("X509_GENERATED", "X509_GENERATED (IAS generates certificate and key)"),
            ("SECRET", "SECRET"),
        ],
        label="Credential type",
    )
    key_length = forms.TypedChoiceField(choices=[(2048, "2048"), (4096, "4096")], coerce=int, initial=2048)
    validity = forms.IntegerField(initial=30, help_text="Days, 1 to 30.")
    app_identifier = forms.CharField(
        required=False, help_text="At most 20 characters; keeps the subject DN stable."
    )
    format = forms.ChoiceField(choices=[(f, f) for f in binding.FORMATS], initial="json")


def credential_types(request, slug):
    """The other credential types, rendered with IAS's own limits, for comparison and migration."""
    app = get_object_or_404(Application, slug=slug)
    form = CredentialTypeForm(request.GET or None)
    rendered = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            params = (
                binding.secret()
                if data["credential_type"] == "SECRET"
                else binding.x509_generated(data["key_length"], data["validity"], data["app_identifier"])
            )
            rendered = binding.render(params, data["format"], binding.Target(app=app.slug))
        except binding.ParameterError as exc:
            form.add_error(None, str(exc))
    return render(
        request, "certmgr/bindings/credential_types.html", {"app": app, "form": form, "rendered": rendered}
    )
