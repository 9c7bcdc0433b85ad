"""Control pages and command endpoints (mounted at /control/)."""

from django.urls import path

from wams.control import views

app_name = "control"
urlpatterns = [
    path("", views.device_list, name="devices"),
    path("devices/<int:device_id>/", views.device_panel, name="device"),
    path("devices/<int:device_id>/select", views.select_device, name="select_device"),
    path("devices/<int:device_id>/state", views.device_state, name="device_state"),
    path("streams/<int:stream_id>/select", views.select_stream, name="select_stream"),
    path("commands/<int:command_id>/", views.command_status, name="command"),
    path("commands/<int:command_id>/execute", views.execute, name="execute"),
    path("commands/<int:command_id>/cancel", views.cancel, name="cancel"),
    path("schemes/<int:scheme_id>/change", views.scheme_change, name="scheme_change"),
    path("audit/", views.audit_log, name="audit"),
]
