"""URL patterns of the application API (mounted at /api/)."""

from django.urls import path

from wams.api import views

app_name = "api"

urlpatterns = [
    path("v1/pmus", views.pmus, name="pmus"),
    path("v1/events", views.events, name="events"),
    path("v1/data", views.data, name="data"),
    path("v1/subscriptions", views.subscriptions, name="subscriptions"),
    path("v1/subscriptions/<int:subscription_id>", views.subscription, name="subscription"),
    path("v1/fault-records", views.fault_records, name="fault-records"),
    path("v1/streams/<int:stream_id>/enabled", views.stream_enabled, name="stream-enabled"),
]
