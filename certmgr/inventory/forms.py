from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from ..core.parse import too_large
from ..core.rotation_steps import DEFAULT_TOOL
from ..lib.fields import (
    TEXT_MAX,
    URL_MAX,
    BoundedModelMultipleChoiceField,
    PasswordField,
)
from ..lib.policy import target_problem
from ..models import Application, Certificate, default_check_interval
from ..search.picker import pick


class DomainsField(forms.CharField):
    """Trusted domains as one per line or comma-separated text; a list in the model."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        domains = [d.strip().lower() for d in text.replace("\n", ",").split(",") if d.strip()]
        if len(domains) > 20 or any(len(d) > 253 for d in domains):
            raise forms.ValidationError("At most 20 domains of at most 253 characters each.")
        return domains


def _checked_url(url: str | None, *, resolve: bool) -> str:
    url = (url or "").strip()
    problem = target_problem(url, resolve=resolve) if url else ""
    if problem:
        raise forms.ValidationError(problem)
    return url


class ApplicationForm(forms.ModelForm):
    tenant_url = forms.URLField(
        required=False,
        max_length=URL_MAX,
        assume_scheme="https",
        label="IAS tenant URL",
        help_text="e.g. https://mytenant.accounts.ondemand.com",
    )
    backend_url = forms.URLField(
        required=False, max_length=URL_MAX, assume_scheme="https", label="Protected backend URL"
    )
    domains = DomainsField(
        required=False, label="Trusted domains", help_text="e.g. accounts.ondemand.com, accounts.cloud.sap"
    )
    check_interval_minutes = forms.IntegerField(
        required=False,
        min_value=5,
        max_value=7 * 24 * 60,
        label="Health check every (minutes)",
        help_text="Scheduled token-flow checks; empty: the default (60).",
    )
    owners = BoundedModelMultipleChoiceField(get_user_model().objects.order_by("username"), required=False)
    owner_groups = BoundedModelMultipleChoiceField(Group.objects.order_by("name"), required=False)
    notes = forms.CharField(required=False, max_length=TEXT_MAX, widget=forms.Textarea)

    def clean_tenant_url(self):
        return _checked_url(self.cleaned_data.get("tenant_url"), resolve=False)

    def clean_backend_url(self):
        # The health check sends the access token there: no internal target (checked again at send time).
        return _checked_url(self.cleaned_data.get("backend_url"), resolve=True)

    def clean_deploy_tool(self):
        return self.cleaned_data.get("deploy_tool") or DEFAULT_TOOL

    def clean_check_interval_minutes(self):
        value = self.cleaned_data.get("check_interval_minutes")
        return value if value is not None else default_check_interval()

    class Meta:
        model = Application
        fields = [
            "name",
            "slug",
            "tenant_url",
            "client_id",
            "domains",
            "backend_url",
            "backend_mtls",
            "check_interval_minutes",
            "deploy_tool",
            "cf_app_name",
            "cf_service_instance",
            "cf_binding_name",
            "kyma_namespace",
            "kyma_binding_name",
            "owners",
            "owner_groups",
            "notes",
        ]


class UploadForm(forms.Form):
    # Typed, not chosen from a list of every application (search.picker resolves it).
    application = forms.CharField(
        max_length=200,
        label="Application",
        help_text="Its name, slug or client id: suggestions appear as you type.",
    )
    file = forms.FileField(
        required=False,
        help_text=".pem, .crt, .cer, .der, .p7b, .p12, .pfx, a service key .json or a Kubernetes Secret .yaml",
    )
    text = forms.CharField(
        required=False,
        label="…or paste",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "autocomplete": "off"}),
        help_text="PEM text, a one-line PEM with \\n, a service key / VCAP_SERVICES JSON, or a Kubernetes Secret.",
    )
    password = PasswordField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="For a .p12/.pfx or an encrypted key. Used once, never stored.",
    )
    lifecycle = forms.ChoiceField(
        choices=[
            (Certificate.Lifecycle.ACTIVE, "Active: the application uses it now"),
            (Certificate.Lifecycle.STAGED, "Staged for rotation: it replaces the active one later"),
        ],
        initial=Certificate.Lifecycle.ACTIVE,
        required=False,  # absent means active
        label="Use as",
        widget=forms.RadioSelect,
    )
    store_private_key = forms.BooleanField(
        required=False,
        label="Store the private key (encrypted) for health checks",
        help_text="X509_PROVIDED needs only the certificate. Leave unchecked to discard any key found.",
    )

    def __init__(self, *args, applications=None, kept=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.applications = applications if applications is not None else Application.objects.all()
        self.kept = kept  # a file kept from the last try (pending.KeptFile), used when no other input comes
        self.chosen = None

    def clean_application(self):
        # A button of the "which one?" step names its application; else what was typed.
        text = self.data.get("application_choice") or self.cleaned_data["application"]
        self.chosen = pick(self.applications, text)
        if self.chosen.application is not None:
            return self.chosen.application
        if self.chosen.choices:
            raise forms.ValidationError(f"Several of your applications match “{text}”: choose one.")
        raise forms.ValidationError(f"None of the applications you manage matches “{text}”.")

    @property
    def uses_kept_file(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return bool(self.kept and self.data.get("use_kept") and not data.get("file") and not data.get("text"))

    def clean(self):
        data = super().clean()
        upload, text = data.get("file"), (data.get("text") or "").strip()
        if upload and text:
            raise forms.ValidationError("Choose a file or paste text, not both.")
        if not upload and not text and not self.uses_kept_file:
            raise forms.ValidationError("The input is empty: choose a file or paste a certificate.")
        limit = settings.CERTMGR_MAX_UPLOAD_BYTES
        if upload and upload.size > limit:
            raise forms.ValidationError(too_large(upload.size, limit).message)
        return data

    def payload(self) -> tuple[str, bytes] | None:
        """The file's or the pasted text's name and bytes; None when the kept file is to be used."""
        upload = self.cleaned_data.get("file")
        if upload:
            upload.seek(0)
            return upload.name, upload.read()
        if self.cleaned_data.get("text", "").strip():
            return "pasted text", self.cleaned_data["text"].encode("utf-8")
        return None


class KeyDownloadForm(forms.Form):
    password = PasswordField(
        label="Encrypt the download with a password (recommended)",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class LifecycleForm(forms.Form):
    lifecycle = forms.ChoiceField(choices=Certificate.Lifecycle.choices, label="Lifecycle state")
