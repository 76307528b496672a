"""Binding parameters (they hold no secret: every logged-in user may see them) behind the
pre-flight gate (parameters.blocking_checks), and the other credential types."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlencode

from django import forms
from django.http import Http404, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from ..core import binding
from ..core.binding import CF_TARGETS, FORMATS, Target
from ..lib.viewkit import param
from ..models import Application, AuditEvent, Certificate
from . import parameters as bindings


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
        "or cf create-service-key INSTANCE KEY -c params.json: one or the other, never both.",
    ),
    "cf": BindingFormat(
        "cf CLI",
        "cf-commands.sh",
        "text/x-shellscript",
        "A script to run as is: it creates the service key or binds the app, as chosen above. "
        "One or the other, never both: IAS takes a certificate once per tenant.",
    ),
    "manifest": BindingFormat(
        "manifest.yml",
        "manifest.yml",
        "application/yaml",
        "The parameters of the service in the app's manifest.yml (applied when cf push creates the binding).",
    ),
    "mta": BindingFormat(
        "mta.yaml",
        "mta.yaml",
        "application/yaml",
        "For an app's binding: modules[].requires[].parameters.config; for a service key: "
        "resources[].parameters.service-keys[].config (as chosen above).",
    ),
    "kyma": BindingFormat(
        "Kyma",
        "servicebinding.yaml",
        "application/yaml",
        "A ServiceBinding for the SAP BTP service operator (Kyma, Kubernetes).",
    ),
    "terraform": BindingFormat(
        "Terraform (BTP)",
        "binding.tf",
        "text/plain",
        "A btp_subaccount_service_binding for the SAP BTP Terraform provider (instances managed in the subaccount).",
    ),
    "terraform-cf": BindingFormat(
        "Terraform (Cloud Foundry)",
        "binding-cf.tf",
        "text/plain",
        "A cloudfoundry_service_credential_binding of type key or app (as chosen above) for the Cloud Foundry "
        "Terraform provider (instances managed in Cloud Foundry; it takes GUIDs, not names).",
    ),
}
NAME_MAX_LENGTH = 100


USE_ANYWAY = "use_anyway"  # the page's confirmation past error-level checks (a GET flag: works without JS)


def use_anyway(request) -> bool:
    return request.GET.get(USE_ANYWAY) == "1"


def binding_options(request) -> tuple[bool, Target, dict[str, str]]:
    """chain=1, cf_target, and the names typed into the form (an empty one keeps Target's placeholder)."""
    names = {field: param(request, field).strip()[:NAME_MAX_LENGTH] for field in ("instance", "app", "key")}
    cf_target = request.GET.get("cf_target", "")
    target = Target(
        instance=names["instance"] or Target.instance,
        app=names["app"] or Target.app,
        key_name=names["key"] or Target.key_name,
        cf_target=cf_target if cf_target in CF_TARGETS else Target.cf_target,
    )
    return request.GET.get("chain") == "1", target, names


def binding_panel(request, cert: Certificate, now) -> dict:
    chain, target, names = binding_options(request)
    cf_target = {} if target.cf_target == Target.cf_target else {"cf_target": target.cf_target}
    checks = bindings.checks(cert, now)
    blocking = bindings.blocking(checks)
    confirmed = bool(blocking) and use_anyway(request)
    query = urlencode(
        ({"chain": "1"} if chain else {})
        | cf_target
        | {k: v for k, v in names.items() if v}
        | ({USE_ANYWAY: "1"} if confirmed else {})
    )
    return {
        "checks": checks,
        "blocking": blocking,
        "withheld": bool(blocking) and not confirmed,
        "use_anyway": confirmed,
        "counts": {level: sum(c.level == level for c in checks) for level in ("error", "warning", "pass")},
        "chain": chain,
        "chain_length": len(cert.chain_certificates()),
        "names": names,
        "cf_target": target.cf_target,
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
    blocking = bindings.blocking_checks(cert)
    if blocking and not use_anyway(request):
        return HttpResponse(
            "IAS would refuse this certificate:\n"
            + "".join(f"error: {c.rule}: {c.message}\n" for c in blocking)
            + f'Confirm on the certificate page ("use anyway") to download it regardless ({USE_ANYWAY}=1).\n',
            status=409,
            content_type="text/plain; charset=utf-8",
        )
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
    """Deprecated: moved to /api/v1/certificates/<id>/parameters/ (same query); gone in the next release."""
    target = reverse("api-parameters", args=[pk])
    query = request.META.get("QUERY_STRING", "")
    response = HttpResponsePermanentRedirect(target + ("?" + query if query else ""))
    response["Deprecation"] = "true"
    response["Link"] = f'<{target}>; rel="successor-version"'
    return response


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
        required=False, max_length=200, help_text="At most 20 characters; keeps the subject DN stable."
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
