"""Applications (IAS applications as the portal knows them) and their certificates.

The PEM is the source of truth; the facts the portal filters and sorts on are copied from it
into indexed columns when a certificate is stored, so no query ever parses PEM.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import connections, models
from django.db.models import Count, F, Func, OuterRef, Q, Subquery, Value
from django.db.models.expressions import Star
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse
from django.utils import timezone

from ..core import rotation_steps
from ..core.expiry import ExpiryState, days_left, expiry_state
from ..core.facts import format_fingerprint
from ..core.rotation_steps import DEFAULT_TOOL, TOOLS


def warning_threshold() -> timedelta:
    return timedelta(days=settings.CERTMGR_EXPIRY_WARNING_DAYS)


def default_check_interval() -> int:
    return settings.CERTMGR_HEALTHCHECK_INTERVAL_MINUTES


# One IAS tenant answers under both domains (a binding's "domains" lists both).
_TENANT_DOMAIN_ALIASES = {".accounts.cloud.sap": ".accounts.ondemand.com"}
RESERVED_SLUGS = {"new"}  # taken by URLs under /apps/


def tenant_key(tenant_url: str) -> str:
    """The identity of an IAS tenant for uniqueness: its host in one spelling, and a port if not 443."""
    if not tenant_url:
        return ""
    parts = urlsplit(tenant_url if "//" in tenant_url else "https://" + tenant_url)
    host = (parts.hostname or "").rstrip(".")
    for alias, canonical in _TENANT_DOMAIN_ALIASES.items():
        if host.endswith(alias):
            host = host[: -len(alias)] + canonical
    try:
        port = parts.port
    except ValueError:
        port = None
    return host if port in (None, 443) else f"{host}:{port}"


def tenant_conflict_message(holder: Certificate) -> str:
    return (
        f"This certificate is already used by application '{holder.application.name}' "
        f"({holder.application.slug}) in the same IAS tenant ({holder.tenant}); IAS accepts "
        "a certificate for one application per tenant only."
    )


# Names go into shell commands (quoted) and YAML (escaped): still, no blanks or control characters.
DEPLOY_NAME = RegexValidator(r"\A[^\s\x00-\x1f\x7f]+\Z", "No spaces or control characters.")
# Kubernetes object and namespace names (RFC 1123 labels).
DNS_LABEL = RegexValidator(
    r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z",
    "Lowercase letters, digits and '-', starting and ending alphanumeric.",
)


class ApplicationQuerySet(models.QuerySet):
    def with_next_expiry(self):
        """Each application's next expiry, earliest start and number of active certificates.

        Correlated subqueries, not a GROUP BY over every certificate: with the index on
        (application, lifecycle, not_after) each is a short index lookup, and the database computes
        the ones a page does not sort by for the rows it shows only (10,000 applications: see
        bench/pages_bench.py).
        """
        active = Certificate.objects.filter(
            application=OuterRef("pk"), lifecycle=Certificate.Lifecycle.ACTIVE
        )

        def first(field):
            return Subquery(active.order_by(field).values(field)[:1])

        counted = active.order_by().values("application").annotate(n=Count("pk")).values("n")
        return self.annotate(
            next_expiry=first("not_after"),
            earliest_start=first("not_before"),
            active_count=Coalesce(Subquery(counted, output_field=models.IntegerField()), Value(0)),
        )

    def managed_by(self, user):
        if user.is_superuser:
            return self
        return self.filter(Q(owners=user) | Q(owner_groups__in=user.groups.all())).distinct()


class Application(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    tenant_url = models.URLField(
        "IAS tenant URL", blank=True, help_text="e.g. https://mytenant.accounts.ondemand.com"
    )
    client_id = models.CharField("client id", max_length=200, blank=True)
    domains = models.JSONField(
        "trusted domains", default=list, blank=True, help_text="e.g. accounts.ondemand.com"
    )
    app_tid = models.CharField(
        "app_tid",
        max_length=200,
        blank=True,
        help_text="The IAS tenant's id, from the binding (formerly zone_uuid).",
    )
    certurl = models.CharField(
        "certificate URL (certurl)",
        max_length=200,
        blank=True,
        help_text="From the binding, when it has one.",
    )
    backend_url = models.URLField(
        "protected backend URL",
        blank=True,
        help_text="The health check calls it with the token, e.g. …/hello",
    )
    backend_mtls = models.BooleanField(
        "present the client certificate to the backend",
        default=False,
        help_text="For a backend that checks the token's certificate binding on its cert. route.",
    )
    # Where the application runs, for the rotation steps (core/rotation_steps.py); empty: a guess.
    deploy_tool = models.CharField(
        "deployed with",
        max_length=16,
        choices=list(TOOLS.items()),
        default=DEFAULT_TOOL,
        blank=True,
        help_text="The rotation steps in expiry notices are written for it.",
    )
    cf_app_name = models.CharField(
        "app name (Cloud Foundry app or Kubernetes Deployment)",
        max_length=100,
        blank=True,
        validators=[DEPLOY_NAME],
        help_text="Empty: the slug.",
    )
    cf_service_instance = models.CharField(
        "IAS service instance",
        max_length=100,
        blank=True,
        validators=[DEPLOY_NAME],
        help_text="Empty: <slug>-ias.",
    )
    cf_binding_name = models.CharField(
        "service key / binding in use",
        max_length=100,
        blank=True,
        validators=[DEPLOY_NAME],
        help_text="The service key (or Terraform binding) that holds the certificate now; empty: "
        "<slug>-ias-key. A promotion sets it to the new one.",
    )
    kyma_namespace = models.CharField(
        "Kyma namespace", max_length=63, blank=True, validators=[DNS_LABEL], help_text="Empty: default."
    )
    kyma_binding_name = models.CharField(
        "ServiceBinding in use",
        max_length=63,
        blank=True,
        validators=[DNS_LABEL],
        help_text="Kyma: the ServiceBinding that holds the certificate now; empty: <slug>-ias. "
        "A promotion sets it to the new one.",
    )
    notice_thresholds = models.JSONField(
        "notice thresholds (days)",
        default=list,
        blank=True,
        help_text="Days before expiry to notify, e.g. 30, 7, 1; empty: the global default.",
    )
    check_interval_minutes = models.PositiveIntegerField(
        "health check every (minutes)",
        default=default_check_interval,
        validators=[MinValueValidator(5), MaxValueValidator(7 * 24 * 60)],
    )
    # Scheduling state of the health check: claimed with a conditional UPDATE (see healthcheck/runner.py).
    next_check_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)
    checks_paused = models.BooleanField(
        default=False,
        editable=False,
        help_text="Set after repeated invalid_client results, so scheduled checks do not lock the client id.",
    )
    last_check = models.ForeignKey(
        "HealthCheckRun", null=True, blank=True, editable=False, on_delete=models.SET_NULL, related_name="+"
    )
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="owned_applications")
    owner_groups = models.ManyToManyField(Group, blank=True, related_name="owned_applications")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ApplicationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            # The lists sorted by application name (Lower("name"), then the primary key): PostgreSQL
            # walks it and each application's certificates instead of sorting 100,000 joined rows.
            models.Index(Lower("name"), F("id"), name="application_name_lower"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("application", args=[self.slug])

    @property
    def tenant(self) -> str:
        return tenant_key(self.tenant_url)

    @property
    def tool(self) -> str:
        """How it is deployed (a key of core.rotation_steps.TOOLS), the default if not said."""
        return self.deploy_tool if self.deploy_tool in TOOLS else DEFAULT_TOOL

    @property
    def tool_label(self) -> str:
        return TOOLS[self.tool]

    def deploy_names(self) -> rotation_steps.Names:
        """Its names where it runs, for the rotation steps; the ones not set guessed from the slug."""
        return rotation_steps.names(
            self.slug,
            app=self.cf_app_name,
            instance=self.cf_service_instance,
            key=self.cf_binding_name,
            namespace=self.kyma_namespace,
            binding=self.kyma_binding_name,
        )

    def is_managed_by(self, user) -> bool:
        if not user.is_authenticated:
            return False
        if user.is_superuser:
            return True
        return (
            self.owners.filter(pk=user.pk).exists()
            or self.owner_groups.filter(pk__in=user.groups.values("pk")).exists()
        )

    def tenant_conflicts(self, tenant: str):
        """Certificates of this application already used by another application of ``tenant``."""
        if not tenant:
            return Certificate.objects.none()
        mine = self.certificates.values("fingerprint")
        return (
            Certificate.objects.filter(tenant=tenant, fingerprint__in=mine)
            .exclude(application=self)
            .select_related("application")
        )

    def clean(self):
        self.tenant_url = self.tenant_url.rstrip("/")
        if self.slug in RESERVED_SLUGS:
            raise ValidationError({"slug": f"'{self.slug}' is reserved; choose another slug."})
        clash = self.tenant_conflicts(self.tenant).first() if self.pk else None
        if clash is not None:
            raise ValidationError(
                {
                    "tenant_url": f"{tenant_conflict_message(clash)} (Certificate {clash.display_fingerprint[:23]}…)"
                }
            )

    def save(self, *args, **kwargs):
        adding = self._state.adding
        super().save(*args, **kwargs)
        # Keep the tenant copy on certificates in step: it backs the per-tenant uniqueness. A new
        # application has none yet.
        if not adding:
            self.certificates.exclude(tenant=self.tenant).update(tenant=self.tenant)


def state_q(state: ExpiryState, now=None, within: timedelta | None = None) -> Q:
    """The rows in ``state`` at ``now``: the database's side of core.expiry.expiry_state."""
    now = now or timezone.now()
    within = warning_threshold() if within is None else within
    return {
        ExpiryState.EXPIRED: Q(not_after__lt=now),
        ExpiryState.NOT_YET_VALID: Q(not_before__gt=now),
        ExpiryState.EXPIRING: Q(not_before__lte=now, not_after__gte=now, not_after__lte=now + within),
        ExpiryState.VALID: Q(not_before__lte=now, not_after__gt=now + within),
    }[state]


class CertificateQuerySet(models.QuerySet):
    def active(self):
        return self.filter(lifecycle=Certificate.Lifecycle.ACTIVE)

    def expired(self, now=None):
        return self.filter(state_q(ExpiryState.EXPIRED, now))

    def not_yet_valid(self, now=None):
        return self.filter(state_q(ExpiryState.NOT_YET_VALID, now))

    def expiring(self, within: timedelta | None = None, now=None):
        return self.filter(state_q(ExpiryState.EXPIRING, now, within))

    def valid(self, within: timedelta | None = None, now=None):
        """Valid and not yet inside the warning window."""
        return self.filter(state_q(ExpiryState.VALID, now, within))

    def in_state(self, state: str, now=None, within: timedelta | None = None):
        return self.filter(state_q(ExpiryState(state), now, within))

    def count_by_state(self, now=None, **more) -> dict[str, int]:
        """``total`` and one count per expiry state, and a count of each queryset in ``more``: one query.

        Each count is its own ``COUNT(*)`` subquery, so each state's range is counted over the
        index (lifecycle, not_after, not_before) alone: the dashboard's tiles over 40,000 active
        certificates took 230 ms on SQLite as one ``COUNT ... FILTER`` pass that read every row,
        9 ms this way (bench/pages_bench.py).
        """
        now = now or timezone.now()
        rows = self.order_by()
        subsets = {"total": rows, **{state.value: rows.filter(state_q(state, now)) for state in ExpiryState}}
        return count_each({**subsets, **more}, self.db)

    def search(self, text: str):
        text = text.strip()
        if not text:
            return self
        compact = text.replace(":", "").lower()
        return self.filter(
            Q(subject__icontains=text)
            | Q(issuer__icontains=text)
            # The applications named so, found once: not a join per certificate row to test.
            | Q(application__in=Application.objects.filter(name__icontains=text))
            | Q(fingerprint__startswith=compact)
            | Q(serial__iexact=compact)
        )


def count_each(querysets: dict, using: str) -> dict[str, int]:
    """The number of rows of each queryset, in one statement: ``SELECT (SELECT COUNT(*) …), …``."""
    parts, params = [], []
    for subset in querysets.values():
        # COUNT(*) is no aggregate to Django here: no GROUP BY, one row even when nothing matches.
        n = Func(Star(), function="COUNT", output_field=models.IntegerField())
        sql, subset_params = subset.order_by().annotate(n=n).values("n").query.get_compiler(using).as_sql()
        parts.append(f"({sql})")
        params.extend(subset_params)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        return dict(zip(querysets, cursor.fetchone(), strict=True))


class Certificate(models.Model):
    class Lifecycle(models.TextChoices):
        ACTIVE = "active", "active"
        STAGED = "staged", "staged for rotation"
        RETIRED = "retired", "retired"

    # No index of its own: the (application, fingerprint) unique constraint's index leads with it.
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="certificates", db_index=False
    )
    pem = models.TextField(help_text="The leaf certificate: the source of truth.")
    chain_pem = models.TextField(blank=True, help_text="Leaf first, then each issuer.")
    subject = models.CharField(max_length=1024)  # searched with icontains: a B-tree index would not help
    issuer = models.CharField(max_length=1024)
    serial = models.CharField(max_length=64)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField(db_index=True)
    fingerprint = models.CharField("SHA-256 fingerprint", max_length=64, db_index=True)
    x5t_s256 = models.CharField("x5t#S256", max_length=43)
    key_algorithm = models.CharField(max_length=16)
    key_size = models.PositiveIntegerField()
    key_curve = models.CharField(max_length=32, blank=True)
    sans = models.JSONField("subject alternative names", default=list, blank=True)
    extended_key_usage = models.JSONField(default=list, blank=True)
    is_ca = models.BooleanField(default=False)
    self_issued = models.BooleanField(default=False)
    source_format = models.CharField(max_length=20)
    encrypted_private_key = models.BinaryField(null=True, blank=True, editable=False)
    tenant = models.CharField(max_length=255, blank=True, editable=False)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    muted_until = models.DateTimeField(
        null=True, blank=True, help_text="No expiry notices for this certificate until then."
    )

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["not_after"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "fingerprint"], name="certificate_once_per_application"
            ),
            # IAS refuses a certificate that another application of the same tenant already uses.
            models.UniqueConstraint(
                fields=["tenant", "fingerprint"], condition=~Q(tenant=""), name="certificate_once_per_tenant"
            ),
        ]
        indexes = [
            # not_before too: the dashboard's counts per expiry state read this index only.
            models.Index(
                fields=["lifecycle", "not_after", "not_before"], name="certificate_lifecycle_expiry"
            ),
            # An application's active certificates by expiry: the dashboard's next expiry per row.
            models.Index(fields=["application", "lifecycle", "not_after"], name="certificate_app_expiry"),
        ]

    def __str__(self):
        return self.subject

    def get_absolute_url(self):
        return reverse("certificate", args=[self.pk])

    def clean(self):
        """For the admin, which can move a certificate: the constraints' checks, as messages."""
        if not self.application_id:
            return
        others = Certificate.objects.filter(fingerprint=self.fingerprint).exclude(pk=self.pk)
        if others.filter(application_id=self.application_id).exists():
            raise ValidationError({"application": "This application already holds this certificate."})
        tenant = self.application.tenant
        clash = others.filter(tenant=tenant).select_related("application").first() if tenant else None
        if clash is not None:
            raise ValidationError({"application": tenant_conflict_message(clash)})

    def save(self, *args, **kwargs):
        # The tenant copy follows the application, also when a certificate is moved (the admin
        # allows it): otherwise the per-tenant uniqueness would check the old tenant.
        fields = kwargs.get("update_fields")
        if fields is None or "application" in fields:
            self.tenant = self.application.tenant
            if fields is not None:
                kwargs["update_fields"] = {*fields, "tenant"}
        super().save(*args, **kwargs)

    @property
    def has_private_key(self) -> bool:
        return self.encrypted_private_key is not None

    @property
    def display_fingerprint(self) -> str:
        return format_fingerprint(self.fingerprint)

    def expiry_state(self, now=None) -> ExpiryState:
        return expiry_state(self.not_before, self.not_after, now or timezone.now(), warning_threshold())

    def days_left(self, now=None) -> int:
        return days_left(self.not_after, now or timezone.now())

    def chain_certificates(self) -> list[str]:
        body = self.chain_pem or self.pem
        end = "-----END CERTIFICATE-----"
        return [part.strip() + "\n" + end + "\n" for part in body.split(end) if part.strip()]
