from django.urls import path

from . import views

urlpatterns = [
    path("apps/<slug:slug>/rotation/", views.rotation_page, name="application-rotation"),
    path("apps/<slug:slug>/rotation/keys/", views.new_key, name="pending-key-new"),
    path("apps/<slug:slug>/rotation/keys/<int:pk>/csr.pem", views.csr_download, name="pending-key-csr"),
    path("apps/<slug:slug>/rotation/keys/<int:pk>/discard", views.discard, name="pending-key-discard"),
    path("apps/<slug:slug>/promote/<int:pk>", views.promote, name="application-promote"),
]
