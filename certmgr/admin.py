from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from .models import Application, AuditEvent, Certificate, HealthCheckRun


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tenant_url", "client_id"]
    search_fields = ["name", "slug", "client_id", "tenant_url"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["owners", "owner_groups"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    """Facts come from the PEM, so they are read-only; new certificates go through the upload page."""

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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "application", "certificate", "remote_addr"]
    list_filter = ["action"]
    search_fields = ["actor_label", "detail", "application__name"]
    list_select_related = ["application", "certificate"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(HealthCheckRun)
class HealthCheckRunAdmin(admin.ModelAdmin):
    """Runs are records of what happened: read-only, like the audit log."""

    list_display = ["started_at", "application", "ok", "failed_step", "code", "trigger", "duration_ms"]
    list_filter = ["ok", "trigger", "failed_step", "code"]
    search_fields = ["application__name", "application__slug", "diagnosis"]
    list_select_related = ["application"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
