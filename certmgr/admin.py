from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User
from django.db import models, router, transaction
from django.urls import reverse
from django.utils.html import format_html

from .access.auditdiff import AuditSpec
from .inventory.audit import APPLICATION_AUDIT, application_created_detail
from .models import Application, AuditEvent, Certificate, ExternalIdentity, HealthCheckRun
from .notifications.models import Notice, NotificationChannel

# The admin site is the portal's, not "Django administration".
admin.site.site_header = "IAS certificate portal · administration"
admin.site.site_title = "IAS certificate portal admin"
admin.site.index_title = "Users, roles and records"
admin.site.site_url = "/"


class AuditedAdmin(admin.ModelAdmin):
    """Additions, changes and deletions made here go to the audit log too ("via admin: …"), in the
    transaction of the change. What changed is the difference of the row before and after."""

    audit_action = AuditEvent.Action.APPLICATION_CHANGED
    audit_add_action = None  # the same as audit_action
    audit_spec = AuditSpec(fields=())

    def audit_name(self, obj) -> str:
        return f"{obj._meta.verbose_name} '{obj}'"

    def audit_targets(self, obj, *, deleted: bool = False) -> dict:
        """The application and certificate columns of the entry."""
        return {}

    def audit_added(self, obj) -> str:
        return f"{self.audit_name(obj)} created"

    def audit_deleted(self, obj) -> str:
        return f"{self.audit_name(obj)} deleted"

    def audit(self, request, obj, detail: str, *, action=None, deleted: bool = False) -> None:
        AuditEvent.record(
            action or self.audit_action,
            request,
            detail="via admin: " + detail,
            **self.audit_targets(obj, deleted=deleted),
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            # Before the form writes into it: the "before" of log_change.
            obj._audit_before = self.audit_spec.snapshot(obj)
        return obj

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self.audit(request, obj, self.audit_added(obj), action=self.audit_add_action)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        before = getattr(obj, "_audit_before", None)
        if before is not None:
            changes = self.audit_spec.changes(before, obj)
        else:  # not through get_object: the field names the admin logged
            changes = [
                str(field).lower()
                for part in (message if isinstance(message, list) else [])
                for field in part.get("changed", {}).get("fields", [])
            ]
        if changes:
            self.audit(request, obj, f"{self.audit_name(obj)} changed: {', '.join(changes)}")
        return entry

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self.audit(request, obj, self.audit_deleted(obj), deleted=True)
        return super().log_deletions(request, queryset)

    def response_action(self, request, queryset):
        # "Delete selected" logs, then deletes: one transaction, as the admin's own views have.
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().response_action(request, queryset)


@admin.register(Application)
class ApplicationAdmin(AuditedAdmin):
    audit_add_action = AuditEvent.Action.APPLICATION_CREATED
    audit_spec = APPLICATION_AUDIT

    list_display = ["name", "slug", "tenant_url", "client_id"]
    search_fields = ["name", "slug", "client_id", "tenant_url"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["owners", "owner_groups"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def audit_name(self, obj) -> str:
        return f"application '{obj.name}' ({obj.slug})"

    def audit_targets(self, obj, *, deleted=False):
        return {"application": None if deleted else obj}

    def audit_added(self, obj) -> str:
        return application_created_detail(obj)

    def audit_deleted(self, obj) -> str:
        count = obj.certificates.count()
        return f"{self.audit_name(obj)} deleted with {count} certificate{'s' if count != 1 else ''}"


@admin.register(Certificate)
class CertificateAdmin(AuditedAdmin):
    """Facts come from the PEM, so they are read-only; new certificates go through the upload page."""

    audit_action = AuditEvent.Action.CERTIFICATE_CHANGED
    audit_spec = AuditSpec(fields=("application", "lifecycle"), plain=frozenset({"application", "lifecycle"}))

    list_display = ["subject", "application", "not_after", "lifecycle", "key_held"]
    list_filter = ["lifecycle", "key_algorithm", "source_format"]
    search_fields = ["subject", "issuer", "fingerprint", "serial", "application__name"]
    autocomplete_fields = ["application"]
    list_select_related = ["application"]
    date_hierarchy = "not_after"
    readonly_fields = [
        "upload_link",
        "pem",
        "chain_pem",
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "fingerprint",
        "x5t_s256",
        "key_algorithm",
        "key_size",
        "key_curve",
        "sans",
        "extended_key_usage",
        "is_ca",
        "self_issued",
        "source_format",
        "key_held",
        "tenant",
        "uploaded_by",
        "uploaded_at",
    ]
    fields = ["application", "lifecycle", *readonly_fields]

    @admin.display(boolean=True, description="private key held")
    def key_held(self, obj):
        return obj.has_private_key

    @admin.display(description="add certificates")
    def upload_link(self, obj):
        return format_html('<a href="{}">Upload page</a>', reverse("upload"))

    def has_add_permission(self, request):
        return False

    def audit_name(self, obj) -> str:
        subject = obj.subject if len(obj.subject) <= 80 else obj.subject[:79] + "…"
        return f"certificate '{subject}' ({obj.display_fingerprint[:23]}…)"

    def audit_targets(self, obj, *, deleted=False):
        return {"application_id": obj.application_id, "certificate": None if deleted else obj}


# Users and groups: who may do what. Their changes are role changes in the audit log.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(AuditedAdmin, auth_admin.UserAdmin):
    audit_action = AuditEvent.Action.ROLES_CHANGED
    audit_spec = AuditSpec(
        fields=(
            "username",
            "first_name",
            "last_name",
            "email",
            "password",
            "is_active",
            "is_staff",
            "is_superuser",
            "groups",
            "user_permissions",
            "last_login",
            "date_joined",
        ),
        labels={
            "is_active": "active",
            "is_staff": "staff status",
            "is_superuser": "superuser status",
            "user_permissions": "permissions",
        },
        plain=frozenset({"username", "is_active", "is_staff", "is_superuser"}),
    )

    def audit_name(self, obj) -> str:
        return f"user '{obj.get_username()}'"

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().user_change_password(request, id, form_url)


@admin.register(Group)
class GroupAdmin(AuditedAdmin, auth_admin.GroupAdmin):
    audit_action = AuditEvent.Action.ROLES_CHANGED
    audit_spec = AuditSpec(fields=("name", "permissions"), plain=frozenset({"name"}))

    def audit_name(self, obj) -> str:
        return f"group '{obj.name}'"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records kept by the portal itself: to look at here, changed only through the portal's pages."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "action", "application", "certificate", "remote_addr"]
    list_filter = ["action"]
    search_fields = ["actor_label", "detail", "application__name"]
    list_select_related = ["application", "certificate"]


class NamedBlankFilter(admin.AllValuesFieldListFilter):
    """A healthy run has no failed step or code: its filter link says so instead of being empty."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            yield {**choice, "display": choice["display"] or "(none: healthy)"}


@admin.register(HealthCheckRun)
class HealthCheckRunAdmin(ReadOnlyAdmin):
    """Runs are records of what happened: read-only, like the audit log."""

    list_display = ["started_at", "application", "ok", "failed_step", "code", "trigger", "duration_ms"]
    list_filter = ["ok", "trigger", ("failed_step", NamedBlankFilter), ("code", NamedBlankFilter)]
    search_fields = ["application__name", "application__slug", "diagnosis"]
    list_select_related = ["application"]
    date_hierarchy = "started_at"  # history: a run goes only with its application (whose deletion is audited)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    """Who logs in through IAS, with the groups of their last login: kept by the login, read-only here."""

    list_display = ["user", "subject", "issuer", "last_login", "group_list"]
    search_fields = ["user__username", "user__email", "subject"]
    list_select_related = ["user"]

    @admin.display(description="IAS groups")
    def group_list(self, obj):
        return ", ".join(obj.groups)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(NotificationChannel)
class NotificationChannelAdmin(ReadOnlyAdmin):
    """Channels are made on each application's notifications page; their sealed secret is never shown."""

    list_display = ["name", "application", "kind", "enabled", "secret_set", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "application__name", "application__slug"]
    list_select_related = ["application"]
    fields = ["application", "kind", "name", "enabled", "options", "secret_set", "created_at"]
    readonly_fields = fields

    @admin.display(boolean=True, description="secret or URL stored (sealed)")
    def secret_set(self, obj):
        return obj.sealed_secret is not None


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    """The notice ledger: what went out, to whom, through which channel, and what failed."""

    list_display = [
        "created_at",
        "event",
        "threshold",
        "application",
        "channel",
        "recipient",
        "state",
        "attempts",
    ]
    list_filter = ["state", "event"]
    search_fields = ["application__name", "application__slug", "recipient", "last_error"]
    list_select_related = ["application", "channel"]
    date_hierarchy = "created_at"
    fields = [
        "created_at", "event", "threshold", "day", "application", "certificate", "health_check", "channel",
        "recipient", "state", "attempts", "next_attempt_at", "claimed_at", "sent_at", "last_error",
    ]  # fmt: skip
    readonly_fields = fields
