from django.urls import path

from .access import views as views_audit
from .bindings import views as views_binding
from .feeds import views as views_feeds
from .healthcheck import views as views_health
from .inventory import views
from .notifications import views as views_notify

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("certificates/", views.certificate_list, name="certificates"),
    path("certificates/<int:pk>/", views.certificate_detail, name="certificate"),
    path("certificates/<int:pk>/certificate.pem", views.certificate_pem, name="certificate-pem"),
    path("certificates/<int:pk>/key", views.certificate_key, name="certificate-key"),
    path("certificates/<int:pk>/lifecycle", views.certificate_lifecycle, name="certificate-lifecycle"),
    path(
        "certificates/<int:pk>/binding.<str:fmt>",
        views_binding.certificate_binding,
        name="certificate-binding",
    ),
    path(
        "api/certificates/<int:pk>/binding",
        views_binding.api_certificate_binding,
        name="api-certificate-binding",
    ),
    path("upload/", views.upload, name="upload"),
    path("apps/new/", views.application_create, name="application-create"),
    path("apps/<slug:slug>/", views.application_detail, name="application"),
    path("apps/<slug:slug>/edit/", views.application_edit, name="application-edit"),
    path("apps/<slug:slug>/upload/", views.upload, name="application-upload"),
    path("apps/<slug:slug>/promote/<int:pk>", views_binding.promote, name="application-promote"),
    path("apps/<slug:slug>/health/", views_health.health_history, name="health-history"),
    path("apps/<slug:slug>/health/run", views_health.health_run, name="health-check"),
    path("apps/<slug:slug>/health/<int:pk>/", views_health.health_run_detail, name="health-run"),
    path(
        "apps/<slug:slug>/credential-types/",
        views_binding.credential_types,
        name="application-credential-types",
    ),
    # Authenticated by their own means, not a login (see views_feeds.py).
    path("metrics", views_feeds.metrics, name="metrics"),
    path("feeds/<str:token>/all.ics", views_feeds.feed_all, name="feed-all"),
    path("feeds/<str:token>/apps/<slug:slug>.ics", views_feeds.feed_application, name="feed-application"),
    path("account/calendar/", views_feeds.account_calendar, name="account-calendar"),
]

# Notifications (views_notify.py): channels, thresholds, the ledger, per-certificate mute.
urlpatterns += [
    path("apps/<slug:slug>/notifications/", views_notify.notifications, name="notifications"),
    path("apps/<slug:slug>/notifications/new/", views_notify.channel_new, name="notification-channel-new"),
    path(
        "apps/<slug:slug>/notifications/<int:pk>/edit/",
        views_notify.channel_edit,
        name="notification-channel-edit",
    ),
    path(
        "apps/<slug:slug>/notifications/<int:pk>/delete",
        views_notify.channel_delete,
        name="notification-channel-delete",
    ),
    path(
        "apps/<slug:slug>/notifications/<int:pk>/test",
        views_notify.channel_test,
        name="notification-channel-test",
    ),
    path("apps/<slug:slug>/thresholds/", views_notify.thresholds, name="application-thresholds"),
    path("certificates/<int:pk>/mute", views_notify.certificate_mute, name="certificate-mute"),
]
urlpatterns += [path("audit/", views_audit.audit_log, name="audit-log")]
