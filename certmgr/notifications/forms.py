"""Forms of the notification pages: a channel (fields by kind), the thresholds, a certificate's mute.

Secrets are write-only: a field that holds one is never rendered with a value, and on edit an
empty secret field keeps what is stored (sealed with ``channels.seal_secret``).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from ..core.notices import clean_thresholds
from ..lib.policy import target_problem
from . import channels
from .models import NotificationChannel

Kind = NotificationChannel.Kind

MAX_ADDRESSES = 50
MIN_SECRET_LENGTH = 16
MAX_THRESHOLDS = 10
MAX_MUTE = timedelta(days=365)
KEEP = "Leave empty to keep the stored value."


class WriteOnlyURLInput(forms.URLInput):
    """A URL that is a credential (Slack, Teams) or leads to one: never rendered with a value."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


def _secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"})


def url_problem(url: str) -> str:
    """Why the notice senders would refuse ``url``, in words that do not repeat it; "" if fine."""
    return target_problem(url)


def host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


class ChannelForm(forms.Form):
    """One form for every kind; ``kind`` decides the fields. ``instance`` is the row being edited."""

    name = forms.CharField(max_length=100, help_text="e.g. team mail, ops webhook")
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled (send notices)")

    def __init__(self, data=None, *, application, kind: str, instance: NotificationChannel | None = None):
        super().__init__(data)
        self.application = application
        self.kind = kind
        self.instance = instance
        self.generated_secret = ""
        editing = instance is not None
        options = (instance.options or {}) if editing else {}
        if editing:
            self.initial.update(name=instance.name, enabled=instance.enabled)
        if kind == Kind.EMAIL:
            self.fields["include_owners"] = forms.BooleanField(
                required=False,
                label="Mail the application's owners",
                help_text="Owners and the members of owner groups, each at their account's address.",
            )
            self.fields["addresses"] = forms.CharField(
                required=False,
                max_length=20_000,
                label="More addresses",
                widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
                help_text="Comma or newline separated, e.g. oncall@example.com",
            )
            self.initial["include_owners"] = options.get("include_owners", True)
            addresses = options.get("addresses") or []
            self.initial["addresses"] = "\n".join(addresses) if isinstance(addresses, list) else addresses
        elif kind in (Kind.WEBHOOK, Kind.SLACK, Kind.TEAMS):
            help_text = {
                Kind.WEBHOOK: "The receiver's https URL; notices are POSTed to it as signed JSON.",
                Kind.SLACK: "The incoming webhook URL (https://hooks.slack.com/services/…). It is a credential.",
                Kind.TEAMS: "The Workflows webhook URL of the channel. It is a credential.",
            }[kind]
            self.fields["url"] = forms.URLField(
                required=not editing,
                max_length=2000,
                assume_scheme="https",
                label="Webhook URL",
                widget=WriteOnlyURLInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
                help_text=f"{help_text} Stored encrypted, never shown again.{' ' + KEEP if editing else ''}",
            )
            if kind == Kind.WEBHOOK:
                self.fields["secret"] = forms.CharField(
                    required=False,
                    max_length=200,
                    label="Signing secret (HMAC-SHA256)",
                    widget=_secret_input(),
                    help_text=(
                        KEEP
                        if editing
                        else "Leave empty to have one generated: it is shown once, after saving."
                    ),
                )
                if editing:
                    self.fields["new_secret"] = forms.BooleanField(
                        required=False,
                        label="Generate a new signing secret (shown once, after saving)",
                    )
        elif kind == Kind.ALERT_NOTIFICATION:
            self.fields["url"] = forms.URLField(
                max_length=2000,
                assume_scheme="https",
                label="Service URL",
                help_text="The service key's url, e.g. https://clm-sl-ans-live-ans-service-api.cfapps.eu10.hana.ondemand.com",
            )
            self.fields["token_url"] = forms.URLField(
                max_length=2000,
                assume_scheme="https",
                label="Token URL",
                help_text="The service key's oauth_url, e.g. https://….authentication.eu10.hana.ondemand.com/oauth/token",
            )
            self.fields["client_id"] = forms.CharField(max_length=500, label="Client id")
            self.fields["client_secret"] = forms.CharField(
                required=not editing,
                max_length=2000,
                label="Client secret",
                widget=_secret_input(),
                help_text=f"Stored encrypted, never shown again.{' ' + KEEP if editing else ''}",
            )
            for name in ("url", "token_url", "client_id"):
                self.initial[name] = options.get(name, "")
        else:
            raise ValueError(f"unknown channel kind {kind!r}")

    # --- validation -------------------------------------------------------------------------------

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        others = NotificationChannel.objects.filter(application=self.application, name__iexact=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError("This application already has a channel of that name.")
        return name

    def clean_addresses(self):
        text = self.cleaned_data.get("addresses", "")
        found, bad = [], []
        for address in (a.strip() for a in re.split(r"[,;\s]+", text)):
            if not address:
                continue
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
                continue
            if address.lower() not in {f.lower() for f in found}:
                found.append(address)
        if bad:
            raise ValidationError(
                "Not an email address: %(bad)s", params={"bad": ", ".join(bad[:5])}, code="invalid"
            )
        if len(found) > MAX_ADDRESSES:
            raise ValidationError(f"At most {MAX_ADDRESSES} addresses; use a mailing list for more.")
        return found

    def _clean_url(self, name: str) -> str:
        url = (self.cleaned_data.get(name) or "").strip()
        if url:
            problem = url_problem(url)
            if problem:
                raise ValidationError(problem)
        return url

    def clean_url(self):
        return self._clean_url("url")

    def clean_token_url(self):
        return self._clean_url("token_url")

    def clean_secret(self):
        secret = self.cleaned_data.get("secret", "")
        if secret and len(secret) < MIN_SECRET_LENGTH:
            raise ValidationError(f"Use at least {MIN_SECRET_LENGTH} characters, or leave it empty.")
        return secret

    def clean(self):
        data = super().clean()
        if self.kind in (Kind.WEBHOOK, Kind.SLACK, Kind.TEAMS, Kind.ALERT_NOTIFICATION):
            self._sealed = self._seal(data)
        return data

    def _seal(self, data) -> bytes | None:
        """The new sealed_secret, or None to keep the stored one."""
        if self.kind == Kind.ALERT_NOTIFICATION:
            secret = data.get("client_secret", "")
            if not secret:
                self._require_stored("client_secret")
                return None
            return channels.seal_secret(self.kind, client_secret=secret)
        url = data.get("url", "")
        if self.kind in (Kind.SLACK, Kind.TEAMS):
            if not url:
                self._require_stored("url")
                return None
            return channels.seal_secret(self.kind, url=url)
        # The webhook keeps its URL and its signing secret together: one given alone takes the other.
        if "url" in self.errors or "secret" in self.errors:
            return None
        secret = data.get("secret", "")
        if not secret and (self.instance is None or data.get("new_secret")):
            secret = self.generated_secret = secrets.token_urlsafe(32)
        if url and secret:
            return channels.seal_secret(self.kind, url=url, secret=secret)
        if not url and not secret:
            self._require_stored("url")
            return None
        stored = self._stored()
        if stored is None:
            missing = "url" if not url else "secret"
            if missing not in self.errors:
                self.add_error(missing, "The stored value cannot be read: enter it again.")
            return None
        return channels.seal_secret(self.kind, url=url or stored.url, secret=secret or stored.secret)

    def _require_stored(self, field: str) -> None:
        if self.instance is None or not self.instance.sealed_secret:
            if field not in self.errors:
                self.add_error(field, "This field is required.")

    def _stored(self):
        try:
            return channels.channel_for(self.instance)
        except channels.ChannelError:
            return None

    # --- saving -----------------------------------------------------------------------------------

    def save(self) -> NotificationChannel:
        data = self.cleaned_data
        row = self.instance or NotificationChannel(application=self.application, kind=self.kind)
        row.name = data["name"]
        row.enabled = data["enabled"]
        options = dict(row.options or {})
        if self.kind == Kind.EMAIL:
            options.update(include_owners=data["include_owners"], addresses=data["addresses"])
        elif self.kind == Kind.ALERT_NOTIFICATION:
            options.update(url=data["url"], token_url=data["token_url"], client_id=data["client_id"].strip())
        row.options = options
        if getattr(self, "_sealed", None) is not None:
            row.sealed_secret = self._sealed
        row.save()
        return row


class ThresholdsForm(forms.Form):
    thresholds = forms.CharField(
        required=False,
        max_length=200,
        label="Notice thresholds (days before expiry)",
        help_text="e.g. 30, 7, 1. Empty: the global default.",
    )

    def clean_thresholds(self) -> list[int]:
        values = [v for v in re.split(r"[,;\s]+", self.cleaned_data.get("thresholds", "")) if v]
        for value in values:
            if not re.fullmatch(r"[+-]?\d{1,9}", value):
                raise ValidationError(f"{value!r} is not a whole number of days between 1 and 3650")
        try:
            days = clean_thresholds(values)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if len(days) > MAX_THRESHOLDS:
            raise ValidationError(f"At most {MAX_THRESHOLDS} thresholds.")
        return list(days)


class MuteForm(forms.Form):
    muted_until = forms.DateField(
        required=False,
        label="Mute expiry notices until (UTC)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Notices resume at 00:00 UTC of that day; at most 365 days ahead.",
    )
    action = forms.ChoiceField(choices=[("mute", "mute"), ("unmute", "unmute")], required=False)

    def clean(self):
        data = super().clean()
        if data.get("action") == "unmute" or self.errors:
            return data
        day = data.get("muted_until")
        if day is None:
            raise ValidationError("Choose the day until which notices are muted.")
        until = datetime(day.year, day.month, day.day, tzinfo=UTC)
        now = timezone.now()
        if until <= now:
            raise ValidationError("The end of the mute must be in the future.")
        if until > now + MAX_MUTE:
            raise ValidationError("Notices can be muted for at most 365 days.")
        data["until"] = until
        return data
