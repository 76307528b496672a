"""Application-level binding work: rotating to a staged certificate, other credential types."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import rotation
from .core import binding
from .models import Application, Certificate
from .views import _client_ip, _managed_application


@require_POST
def promote(request, slug, pk):
    app = _managed_application(request, slug)
    staged = get_object_or_404(app.certificates, pk=pk, lifecycle=Certificate.Lifecycle.STAGED)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Confirm that the new binding works before retiring the old certificate.")
        return redirect(app)
    retired = rotation.promote(staged, actor=request.user, remote_addr=_client_ip(request))
    messages.success(request, f"The staged certificate is now active; {len(retired)} certificate(s) retired.")
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
    return render(request, "certmgr/credential_types.html", {"app": app, "form": form, "rendered": rendered})
