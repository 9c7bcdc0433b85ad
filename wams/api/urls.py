"""URL patterns of the application API (mounted at /api/).

Ids in paths are 1 to 18 digits (they fit the database's 64-bit keys); any other path, or an id
out of that range, gets the API's JSON 404 rather than a page.
"""

from django.urls import path, re_path, register_converter

from wams.api import views


class IdConverter:
    """A positive database id that fits in 64 bits."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "api_id")

app_name = "api"

urlpatterns = [
    path("v1/pmus", views.pmus, name="pmus"),
    path("v1/events", views.events, name="events"),
    path("v1/incidents", views.incidents, name="incidents"),
    path("v1/incidents/<api_id:incident_id>", views.incident, name="incident"),
    path("v1/data", views.data, name="data"),
    path("v1/subscriptions", views.subscriptions, name="subscriptions"),
    path("v1/subscriptions/<api_id:subscription_id>", views.subscription, name="subscription"),
    path("v1/fault-records", views.fault_records, name="fault-records"),
    path("v1/streams/<api_id:stream_id>/enabled", views.stream_enabled, name="stream-enabled"),
    re_path(r"^(?P<rest>.*)$", views.not_found, name="not-found"),
]
