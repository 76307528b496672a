from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from certmgr.access import local_login as accounts
from certmgr.access import oidc
from portal.health import healthz

# One password login with one set of rules (CERTMGR_LOCAL_LOGIN, throttling, audit): the admin
# site's own login form would check only is_staff.
admin.site.login = accounts.admin_login

urlpatterns = [
    path("healthz", healthz, name="healthz"),  # answered by portal.middleware before host checks
    path("login/", accounts.LocalLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("logged-out/", accounts.logged_out, name="logged-out"),
    path("oidc/authenticate/", oidc.IasLoginStart.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.IasLoginCallback.as_view(), name="oidc_authentication_callback"),
    path("admin/", admin.site.urls),
    path("", include("certmgr.urls")),
]
