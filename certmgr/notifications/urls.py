from django.urls import path

from . import views

urlpatterns = [
    path("apps/<slug:slug>/notifications/", views.notifications, name="notifications"),
    path("apps/<slug:slug>/notifications/new/", views.channel_new, name="notification-channel-new"),
    path(
        "apps/<slug:slug>/notifications/<int:pk>/edit/", views.channel_edit, name="notification-channel-edit"
    ),
    path(
        "apps/<slug:slug>/notifications/<int:pk>/delete",
        views.channel_delete,
        name="notification-channel-delete",
    ),
    path(
        "apps/<slug:slug>/notifications/<int:pk>/test", views.channel_test, name="notification-channel-test"
    ),
    path("apps/<slug:slug>/thresholds/", views.thresholds, name="application-thresholds"),
    path("certificates/<int:pk>/mute", views.certificate_mute, name="certificate-mute"),
]
