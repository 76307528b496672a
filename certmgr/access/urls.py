from django.contrib.auth import views as auth_views
from django.urls import path

from . import local_login, oidc, views

urlpatterns = [
    path("login/", local_login.LocalLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("logged-out/", local_login.logged_out, name="logged-out"),
    path("oidc/authenticate/", oidc.IasLoginStart.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.IasLoginCallback.as_view(), name="oidc_authentication_callback"),
    path("audit/", views.audit_log, name="audit-log"),
]
