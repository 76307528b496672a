from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from .core.parse import too_large
from .models import Application, Certificate, default_check_interval


class DomainsField(forms.CharField):
    """Trusted domains as one per line or comma-separated text; a list in the model."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [d.strip().lower() for d in text.replace("\n", ",").split(",") if d.strip()]


class ApplicationForm(forms.ModelForm):
    tenant_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="IAS tenant URL",
        help_text="e.g. https://mytenant.accounts.ondemand.com",
    )
    backend_url = forms.URLField(required=False, assume_scheme="https", label="Protected backend URL")
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
    owners = forms.ModelMultipleChoiceField(get_user_model().objects.order_by("username"), required=False)
    owner_groups = forms.ModelMultipleChoiceField(Group.objects.order_by("name"), required=False)

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
            "owners",
            "owner_groups",
            "notes",
        ]


class UploadForm(forms.Form):
    application = forms.ModelChoiceField(Application.objects.none(), required=True)
    file = forms.FileField(
        required=False, help_text=".pem, .crt, .cer, .der, .p7b, .p12, .pfx or a service key .json"
    )
    text = forms.CharField(
        required=False,
        label="…or paste",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "autocomplete": "off"}),
        help_text="PEM text, a one-line PEM with \\n, or a service key / VCAP_SERVICES JSON.",
    )
    password = forms.CharField(
        required=False,
        strip=False,
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

    def __init__(self, *args, applications=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["application"].queryset = (
            applications if applications is not None else Application.objects.all()
        )

    def clean(self):
        data = super().clean()
        upload, text = data.get("file"), (data.get("text") or "").strip()
        if upload and text:
            raise forms.ValidationError("Choose a file or paste text, not both.")
        if not upload and not text:
            raise forms.ValidationError("The input is empty: choose a file or paste a certificate.")
        limit = settings.CERTMGR_MAX_UPLOAD_BYTES
        if upload and upload.size > limit:
            raise forms.ValidationError(too_large(upload.size, limit).message)
        return data

    def payload(self) -> tuple[str, bytes]:
        upload = self.cleaned_data.get("file")
        if upload:
            return upload.name, upload.read()
        return "pasted text", self.cleaned_data["text"].encode("utf-8")


class KeyDownloadForm(forms.Form):
    password = forms.CharField(
        required=False,
        strip=False,
        label="Encrypt the download with a password (recommended)",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class LifecycleForm(forms.Form):
    lifecycle = forms.ChoiceField(choices=Certificate.Lifecycle.choices, label="Lifecycle state")


# --- describing a change for the audit log ----------------------------------------------------------
#
# A change is the difference of two snapshots of a row, taken before and after it: field labels,
# old → new only for the fields a caller names as plain, many-to-many as who was added or removed.
# Nothing else is written out: a URL or a secret appears in a detail at most as its field's label.

AUDIT_DETAIL_MAX = 500  # AuditEvent.detail
AUDIT_VALUE_MAX = 60
AUDIT_ITEMS_MAX = 5

APPLICATION_AUDIT_FIELDS = (
    "name",
    "slug",
    "tenant_url",
    "client_id",
    "domains",
    "backend_url",
    "backend_mtls",
    "notice_thresholds",
    "check_interval_minutes",
    "owners",
    "owner_groups",
    "notes",
)
APPLICATION_AUDIT_LABELS = {
    "tenant_url": "tenant URL",
    "client_id": "client id",
    "domains": "trusted domains",
    "backend_url": "backend URL",
    "backend_mtls": "backend mTLS",
    "check_interval_minutes": "check interval (minutes)",
}
# Shown old → new; the backend URL and the notes only by their label. A URL shown is its host.
APPLICATION_AUDIT_PLAIN = frozenset(
    {
        "name",
        "slug",
        "tenant_url",
        "client_id",
        "domains",
        "backend_mtls",
        "notice_thresholds",
        "check_interval_minutes",
    }
)


def audit_label(obj) -> str:
    """How the audit log names a related row: a user by user name, an application by slug."""
    if obj is None:
        return ""
    if isinstance(obj, get_user_model()):
        return obj.get_username()
    if isinstance(obj, Application):
        return obj.slug
    if obj._meta.label == "auth.Permission":
        return f"{obj.content_type.app_label}.{obj.codename}"
    return str(obj)


def audit_snapshot(obj, names) -> dict:
    """The values of ``names`` on ``obj`` for comparing: related rows by label, choices by display."""
    values = {}
    for name in names:
        field = obj._meta.get_field(name)
        if field.many_to_many:
            rows = getattr(obj, name).all() if obj.pk else []
            if obj.pk and field.related_model._meta.label == "auth.Permission":
                rows = rows.select_related("content_type")
            values[name] = frozenset(audit_label(row) for row in rows)
        elif field.many_to_one:
            values[name] = audit_label(getattr(obj, name)) if getattr(obj, field.attname) is not None else ""
        elif field.choices:
            values[name] = getattr(obj, f"get_{name}_display")()
        else:
            values[name] = getattr(obj, field.attname)
    return values


def audit_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value in (None, "", [], ()):
        return "none"
    if isinstance(value, list | tuple):
        text = ",".join(map(str, value))
    elif isinstance(value, str):
        text = (urlsplit(value).hostname or "?") if "://" in value else value
        return f"'{_cut(text, AUDIT_VALUE_MAX)}'"
    else:
        text = str(value)
    return _cut(text, AUDIT_VALUE_MAX)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _audit_items(sign: str, items) -> list[str]:
    items = sorted(items)
    shown = [f"{sign}{item}" for item in items[:AUDIT_ITEMS_MAX]]
    if len(items) > AUDIT_ITEMS_MAX:
        shown.append(f"{sign}{len(items) - AUDIT_ITEMS_MAX} more")
    return shown


def audit_changes(before: dict, after: dict, *, labels=None, plain=frozenset()) -> list[str]:
    """What differs, one part per field: ``name 'a' → 'b'``, ``owners (+otto, -bob)``, ``notes``."""
    labels = labels or {}
    parts = []
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        label = labels.get(name, name.replace("_", " "))
        if isinstance(old, frozenset) and isinstance(new, frozenset):
            parts.append(
                f"{label} ({', '.join(_audit_items('+', new - old) + _audit_items('-', old - new))})"
            )
        elif name in plain:
            parts.append(f"{label} {audit_value(old)} → {audit_value(new)}")
        else:
            parts.append(label)
    return list(dict.fromkeys(parts))  # two fields may share a label (password1, password2)


def audit_detail(text: str) -> str:
    """``text`` cut to fit AuditEvent.detail."""
    return _cut(text, AUDIT_DETAIL_MAX)


def application_created_detail(app: Application) -> str:
    """``application 'Billing' (billing) created, tenant 'x.accounts.ondemand.com', owners: otto``."""
    facts = audit_snapshot(app, ("owners", "owner_groups"))
    parts = [f"application '{app.name}' ({app.slug}) created"]
    if app.tenant_url:
        parts.append(f"tenant {audit_value(app.tenant_url)}")
    for name, label in (("owners", "owners"), ("owner_groups", "owner groups")):
        if facts[name]:
            parts.append(f"{label}: {', '.join(sorted(facts[name]))}")
    return audit_detail(", ".join(parts))
