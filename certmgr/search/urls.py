from django.urls import path

from . import views

urlpatterns = [
    path("search/", views.search, name="search"),
    path("search/applications.json", views.application_suggestions, name="search-applications"),
]
