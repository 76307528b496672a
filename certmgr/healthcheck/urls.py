from django.urls import path

from . import views

urlpatterns = [
    path("apps/<slug:slug>/health/", views.health_history, name="health-history"),
    path("apps/<slug:slug>/health/run", views.health_run, name="health-check"),
    path("apps/<slug:slug>/health/<int:pk>/", views.health_run_detail, name="health-run"),
]
