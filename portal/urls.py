from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),  # answered by portal.middleware before host checks
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("certmgr.urls")),
]
