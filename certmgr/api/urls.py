from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path

from .views import base, bindings, healthchecks, inventory, notifications, pages


def api(view_class):
    """A DRF view: it authenticates by itself (token or session) and answers 401, not a redirect."""
    return login_not_required(view_class.as_view())


V1 = "api/v1/"
urlpatterns = [
    path("account/api-tokens/", pages.api_tokens, name="api-tokens"),
    path("account/api-tokens/<int:pk>/revoke", pages.api_token_revoke, name="api-token-revoke"),
    path(V1 + "docs/", pages.docs, name="api-docs"),
    path(V1 + "docs/init.js", pages.docs_script, name="api-docs-script"),
    path(V1 + "openapi.json", api(pages.OpenApiDocument), name="api-schema"),
    path(V1 + "applications/", api(inventory.ApplicationList), name="api-applications"),
    path(V1 + "applications/<slug:slug>/", api(inventory.ApplicationDetail), name="api-application"),
    path(
        V1 + "applications/<slug:slug>/health-checks/",
        api(healthchecks.HealthChecks),
        name="api-health-checks",
    ),
    path(
        V1 + "applications/<slug:slug>/health-checks/<int:id>/",
        api(healthchecks.HealthCheckDetail),
        name="api-health-check",
    ),
    path(V1 + "applications/<slug:slug>/channels/", api(notifications.Channels), name="api-channels"),
    path(
        V1 + "applications/<slug:slug>/channels/<int:id>/",
        api(notifications.ChannelDetail),
        name="api-channel",
    ),
    path(
        V1 + "applications/<slug:slug>/channels/<int:id>/test/",
        api(notifications.ChannelTest),
        name="api-channel-test",
    ),
    path(V1 + "applications/<slug:slug>/notices/", api(notifications.Notices), name="api-notices"),
    path(V1 + "certificates/", api(inventory.CertificateList), name="api-certificates"),
    path(V1 + "certificates/<int:id>/", api(inventory.CertificateDetail), name="api-certificate"),
    path(V1 + "certificates/<int:id>/parameters/", api(bindings.Parameters), name="api-parameters"),
    path(V1 + "certificates/<int:id>/promote/", api(bindings.Promote), name="api-promote"),
    re_path(
        r"^api/v1/(?P<rest>[\s\S]*)$", base.not_found, name="api-not-found"
    ),  # any character, newlines too
]
