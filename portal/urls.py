from django.contrib import admin
from django.urls import include, path

from certmgr.access.local_login import admin_login
from portal.health import healthz

# One password login with one set of rules (CERTMGR_LOCAL_LOGIN, throttling, audit): the admin
# site's own login form would check only is_staff.
admin.site.login = admin_login

urlpatterns = [
    path("healthz", healthz, name="healthz"),  # answered by portal.middleware before host checks
    path("admin/", admin.site.urls),
    path("", include("certmgr.urls")),
]
