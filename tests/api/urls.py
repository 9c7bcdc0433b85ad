"""The API mounted as the lead mounts it (at /api/), for the API tests."""

from django.urls import include, path

urlpatterns = [path("api/", include("wams.api.urls"))]
