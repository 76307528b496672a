"""What the API answers and takes: one serializer per shape, also the OpenAPI document's schemas.

Nothing here ever holds a private key or a channel's secret: certificates carry their public
facts and PEM, channels a summary that names only hosts.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from ..core.binding import CF_TARGETS, FORMATS, Target
from ..core.expiry import ExpiryState, days_left, expiry_state
from ..inventory.lists import CERTIFICATE_SORT
from ..models import Certificate, HealthCheckRun, Notice, NotificationChannel, warning_threshold

STATES = [state.value for state in ExpiryState]
LIFECYCLES = Certificate.Lifecycle.values
NAME_MAX_LENGTH = 100  # the parameters' deploy names, as on the certificate page


class StrictBooleanField(serializers.BooleanField):
    """true/false or 1/0 in a query: "yes" or "on" are more likely a mistake than a wish."""

    TRUE_VALUES = {"true", "True", "1", True}
    FALSE_VALUES = {"false", "False", "0", False}
    default_error_messages = {"invalid": "Use true or false (or 1 or 0)."}


class Text(serializers.CharField):
    """Text in a JSON body: a string, not a number DRF would turn into one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Slug(serializers.SlugField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Flag(serializers.BooleanField):
    """true or false in a JSON body (not "yes", 1 or "on")."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _now(serializer) -> object:
    return serializer.context.get("now") or timezone.now()


# --- problems (for the document) ---------------------------------------------------------------


class CheckSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text="e.g. validity, expiry, tenant_unique, key_strength")
    level = serializers.ChoiceField(choices=["pass", "warning", "error"])
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, with a stable ``code``."""

    type = serializers.CharField(help_text="urn:ias-cert-portal:problem:<code>")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="The reason in words, as the pages give it.")
    code = serializers.CharField(
        help_text="e.g. wrong_password, legacy_pkcs12, tenant_conflict, preflight_error"
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False, help_text="Per field."
    )
    checks = CheckSerializer(many=True, required=False, help_text="The pre-flight results (preflight_error).")


# --- applications ------------------------------------------------------------------------------


class HealthSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ok = serializers.BooleanField()
    started_at = serializers.DateTimeField()
    failed_step = serializers.CharField()
    code = serializers.CharField()


class ApplicationSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    tenant_url = serializers.CharField()
    client_id = serializers.CharField()
    domains = serializers.ListField(child=serializers.CharField())
    backend_url = serializers.CharField()
    next_expiry = serializers.DateTimeField(allow_null=True, help_text="Of its active certificates.")
    next_expiry_state = serializers.SerializerMethodField()
    days_left = serializers.SerializerMethodField()
    active_certificates = serializers.IntegerField(source="active_count")
    health = HealthSummarySerializer(source="last_check", allow_null=True, help_text="The last check.")
    checks_paused = serializers.BooleanField()
    writable = serializers.SerializerMethodField(
        help_text="Whether this call's token and user may change it."
    )

    @extend_schema_field(serializers.ChoiceField(choices=STATES, allow_null=True))
    def get_next_expiry_state(self, app) -> str | None:
        if app.next_expiry is None:
            return None
        return expiry_state(app.earliest_start, app.next_expiry, _now(self), warning_threshold()).value

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_days_left(self, app) -> int | None:
        return None if app.next_expiry is None else days_left(app.next_expiry, _now(self))

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_writable(self, app) -> bool:
        return self.context["access"].may_write(app)


class ApplicationFilterSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="In name, slug or client id."
    )
    expiring_within = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=3650,
        help_text="Only applications whose next expiry is within this many days (or past): expiring soon.",
    )


# --- certificates ------------------------------------------------------------------------------


class CertificateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    application = serializers.SlugField(source="application.slug")
    subject = serializers.CharField()
    issuer = serializers.CharField()
    serial = serializers.CharField()
    fingerprint = serializers.CharField(help_text="SHA-256, hex")
    not_before = serializers.DateTimeField()
    not_after = serializers.DateTimeField()
    expiry_state = serializers.SerializerMethodField()
    days_left = serializers.SerializerMethodField()
    lifecycle = serializers.ChoiceField(choices=LIFECYCLES)
    has_private_key = serializers.BooleanField(help_text="The portal holds its key (never returned).")
    key_algorithm = serializers.CharField()
    key_size = serializers.IntegerField()
    source_format = serializers.CharField()
    uploaded_at = serializers.DateTimeField()
    muted_until = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=STATES))
    def get_expiry_state(self, cert) -> str:
        return cert.expiry_state(_now(self)).value

    @extend_schema_field(OpenApiTypes.INT)
    def get_days_left(self, cert) -> int:
        return cert.days_left(_now(self))


class CertificateDetailSerializer(CertificateSerializer):
    x5t_s256 = serializers.CharField()
    key_curve = serializers.CharField()
    sans = serializers.ListField(child=serializers.CharField())
    extended_key_usage = serializers.ListField(child=serializers.CharField())
    self_issued = serializers.BooleanField()
    pem = serializers.CharField(help_text="The certificate (public), PEM.")
    chain_pem = serializers.CharField(help_text="Leaf first, then its issuers; empty when uploaded alone.")


class CertificateFilterSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        max_length=200,
        help_text="In subject, issuer, application name; fingerprint prefix; serial.",
    )
    state = serializers.ChoiceField(choices=STATES, required=False)
    application = serializers.SlugField(required=False, max_length=100)
    lifecycle = serializers.ChoiceField(choices=LIFECYCLES, required=False)
    sort = serializers.ChoiceField(
        choices=[f"{way}{key}" for key in CERTIFICATE_SORT.columns for way in ("", "-")],
        required=False,
        default=CERTIFICATE_SORT.default,
        help_text="A column of the certificate list; a leading - for descending.",
    )


PEM_HELP = "Text as the upload page takes it: PEM (certificate, chain, key), one-line PEM, service key JSON."
PKCS12_HELP = "A .p12/.pfx (or any file the upload page takes), base64-encoded."


class UploadSerializer(serializers.Serializer):
    application = Slug(max_length=100)
    pem = Text(required=False, trim_whitespace=False, help_text=PEM_HELP)
    pkcs12 = Text(required=False, help_text=PKCS12_HELP)
    password = Text(
        required=False, allow_blank=True, trim_whitespace=False, write_only=True, help_text="Used once."
    )
    staged = Flag(default=False, help_text="Stage it for rotation instead of using it now.")
    store_private_key = Flag(
        default=False, help_text="Keep a key found in the input, encrypted (needed for health checks)."
    )

    def validate(self, data):
        if ("pem" in data) == ("pkcs12" in data):
            raise serializers.ValidationError("Give either pem or pkcs12.")
        return data


class PemUploadSerializer(UploadSerializer):
    pkcs12 = None
    pem = Text(trim_whitespace=False, help_text=PEM_HELP)


class Pkcs12UploadSerializer(UploadSerializer):
    pem = None
    pkcs12 = Text(help_text=PKCS12_HELP)


# For the document: the body has either ``pem`` or ``pkcs12`` (the view checks it with UploadSerializer).
UPLOAD_REQUEST = PolymorphicProxySerializer(
    component_name="Upload",
    serializers=[PemUploadSerializer, Pkcs12UploadSerializer],
    resource_type_field_name=None,
)


class PageSerializer(serializers.Serializer):
    page = serializers.IntegerField(required=False, min_value=1, max_value=10**9)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class UploadResultSerializer(serializers.Serializer):
    certificate = CertificateDetailSerializer()
    already_present = serializers.BooleanField()
    key_stored = serializers.BooleanField()
    key_discarded = serializers.BooleanField(help_text="A key was in the input and was not kept.")
    warnings = serializers.ListField(child=serializers.CharField())
    checks = CheckSerializer(many=True, help_text="Pre-flight results, as before binding it.")


class LifecycleSerializer(serializers.Serializer):
    lifecycle = serializers.ChoiceField(choices=LIFECYCLES)


class PromotionSerializer(serializers.Serializer):
    certificate = CertificateSerializer(help_text="Now active.")
    retired = serializers.ListField(child=serializers.IntegerField(), help_text="Ids retired by the switch.")


# --- binding parameters ------------------------------------------------------------------------


class ParametersQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=list(FORMATS),
        required=False,
        default="json",
        error_messages={
            "invalid_choice": f"Unknown format '{{input}}': use one of {', '.join(FORMATS)}.",
            "blank": f"Unknown format '': use one of {', '.join(FORMATS)}.",
        },
    )
    chain = StrictBooleanField(required=False, default=False, help_text="With its issuers.")
    instance = serializers.CharField(required=False, max_length=NAME_MAX_LENGTH, allow_blank=True)
    app = serializers.CharField(required=False, max_length=NAME_MAX_LENGTH, allow_blank=True)
    key = serializers.CharField(required=False, max_length=NAME_MAX_LENGTH, allow_blank=True)
    cf_target = serializers.ChoiceField(
        choices=list(CF_TARGETS),
        required=False,
        default=Target.cf_target,
        help_text="The cf form: create a service key (key) or bind the app (app); never both with one certificate.",
        error_messages={"invalid_choice": "cf_target must be key (a service key) or app (an app's binding)."},
    )
    force = StrictBooleanField(
        required=False, default=False, help_text="Answer despite error-level pre-flight results."
    )


class ParametersSerializer(serializers.Serializer):
    certificate = serializers.IntegerField()
    fingerprint = serializers.CharField()
    subject = serializers.CharField()
    format = serializers.ChoiceField(choices=list(FORMATS))
    chain = serializers.BooleanField()
    cf_target = serializers.ChoiceField(choices=list(CF_TARGETS))
    parameters = serializers.DictField(help_text='{"credential-type": "X509_PROVIDED", "certificate": "…"}')
    rendered = serializers.CharField(help_text="The parameters in the chosen format.")
    checks = CheckSerializer(many=True)
    forced = serializers.BooleanField(help_text="Answered despite error-level checks (force=true).")


# --- health checks -----------------------------------------------------------------------------


class HealthCheckRequestSerializer(serializers.Serializer):
    certificate = Text(
        required=False,
        max_length=100,
        help_text="Id or SHA-256 fingerprint (or a unique prefix of 8+ digits) of a certificate of this "
        "application with a stored key, e.g. the staged one. Default: the certificate in use.",
    )


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField(allow_null=True, help_text="null: not run")
    duration_ms = serializers.FloatField(allow_null=True)
    status = serializers.IntegerField(allow_null=True)
    diagnosis = serializers.CharField(allow_blank=True)
    code = serializers.CharField(allow_blank=True)


class HealthCheckRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    application = serializers.SlugField(source="application.slug")
    certificate = serializers.IntegerField(source="certificate_id", allow_null=True)
    fingerprint = serializers.CharField(source="certificate.fingerprint", allow_null=True, default=None)
    trigger = serializers.ChoiceField(choices=HealthCheckRun.Trigger.values)
    actor = serializers.CharField(source="actor_label")
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    ok = serializers.BooleanField()
    failed_step = serializers.CharField(allow_blank=True)
    code = serializers.CharField(allow_blank=True)
    diagnosis = serializers.CharField(allow_blank=True)
    steps = StepSerializer(many=True)
    claims = serializers.DictField(
        help_text="Plain claims of the token (iss, aud, exp, cnf…); never the token."
    )


# --- notifications -----------------------------------------------------------------------------


class ChannelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=NotificationChannel.Kind.values)
    enabled = serializers.BooleanField()
    summary = serializers.CharField(help_text="Recipients or target host; never a secret or a webhook URL.")
    problem = serializers.CharField(allow_blank=True, help_text="Why it cannot send as configured.")
    include_owners = serializers.BooleanField(allow_null=True, help_text="email only")
    addresses = serializers.ListField(child=serializers.CharField(), allow_null=True, help_text="email only")
    url = serializers.CharField(allow_null=True, help_text="alert_notification only: the service URL")
    token_url = serializers.CharField(allow_null=True, help_text="alert_notification only")
    client_id = serializers.CharField(allow_null=True, help_text="alert_notification only")
    created_at = serializers.DateTimeField()


class ChannelWriteSerializer(serializers.Serializer):
    """The fields of the channel form; secrets are write-only and never answered."""

    kind = serializers.ChoiceField(choices=NotificationChannel.Kind.values, required=False)
    name = Text(required=False, max_length=100)
    enabled = Flag(required=False)
    include_owners = Flag(required=False, help_text="email")
    addresses = serializers.ListField(
        child=Text(max_length=320), required=False, max_length=50, help_text="email"
    )
    url = Text(
        required=False,
        max_length=2000,
        write_only=True,
        help_text="webhook, slack, teams (write-only); alert_notification",
    )
    secret = Text(
        required=False,
        max_length=200,
        write_only=True,
        help_text="webhook signing secret, 16+ characters (write-only)",
    )
    token_url = Text(required=False, max_length=2000, help_text="alert_notification")
    client_id = Text(required=False, max_length=500, help_text="alert_notification")
    client_secret = Text(
        required=False, max_length=2000, write_only=True, help_text="alert_notification (write-only)"
    )


class ChannelCreateSerializer(ChannelWriteSerializer):
    kind = serializers.ChoiceField(choices=NotificationChannel.Kind.values)
    name = Text(max_length=100)


class TestFailureSerializer(serializers.Serializer):
    recipient = serializers.CharField(allow_blank=True)
    error = serializers.CharField()
    retryable = serializers.BooleanField(help_text="A later try could pass.")


class TestNoticeSerializer(serializers.Serializer):
    recipients = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = TestFailureSerializer(many=True)


class NoticeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.ChoiceField(choices=Notice.Event.values)
    threshold = serializers.IntegerField()
    certificate = serializers.IntegerField(source="certificate_id", allow_null=True)
    channel = serializers.IntegerField(source="channel_id", allow_null=True)
    channel_name = serializers.CharField(source="channel.name", allow_null=True, default=None)
    recipient = serializers.CharField(allow_blank=True)
    state = serializers.ChoiceField(choices=Notice.State.values)
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


class NoticeFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Notice.State.values, required=False, allow_blank=True)
    event = serializers.ChoiceField(choices=Notice.Event.values, required=False, allow_blank=True)
