from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("certificates/", views.certificate_list, name="certificates"),
    path("certificates/<int:pk>/", views.certificate_detail, name="certificate"),
    path("certificates/<int:pk>/certificate.pem", views.certificate_pem, name="certificate-pem"),
    path("certificates/<int:pk>/key", views.certificate_key, name="certificate-key"),
    path("certificates/<int:pk>/lifecycle", views.certificate_lifecycle, name="certificate-lifecycle"),
    path("upload/", views.upload, name="upload"),
    path("apps/new/", views.application_create, name="application-create"),
    path("apps/<slug:slug>/", views.application_detail, name="application"),
    path("apps/<slug:slug>/edit/", views.application_edit, name="application-edit"),
    path("apps/<slug:slug>/upload/", views.upload, name="application-upload"),
]
