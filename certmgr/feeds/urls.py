from django.urls import path

from . import views

# The feeds are authenticated by their own means, not a login (see views.py).
urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("feeds/<str:token>/all.ics", views.feed_all, name="feed-all"),
    path("feeds/<str:token>/apps/<slug:slug>.ics", views.feed_application, name="feed-application"),
    path("account/calendar/", views.account_calendar, name="account-calendar"),
]
