from django.urls import include, path

# One include per feature package; the inventory's catch-all slugs come after the others'.
urlpatterns = [
    path("", include("certmgr.access.urls")),
    path("", include("certmgr.feeds.urls")),
    path("", include("certmgr.api.urls")),
    path("", include("certmgr.bindings.urls")),
    path("", include("certmgr.healthcheck.urls")),
    path("", include("certmgr.notifications.urls")),
    path("", include("certmgr.rotation.urls")),
    path("", include("certmgr.search.urls")),
    path("", include("certmgr.inventory.urls")),
]
