from django.urls import path

from . import views

urlpatterns = [
    path("certificates/<int:pk>/binding.<str:fmt>", views.certificate_binding, name="certificate-binding"),
    # Deprecated: redirects to /api/v1/certificates/<id>/parameters/ until the next release.
    path("api/certificates/<int:pk>/binding", views.api_certificate_binding, name="api-certificate-binding"),
    path("apps/<slug:slug>/credential-types/", views.credential_types, name="application-credential-types"),
]
