"""Websocket routes."""

from django.urls import URLPattern, URLResolver, path

from dashboards import consumers
from wams.control.routing import websocket_urlpatterns as control_routes

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/live/", consumers.LiveConsumer.as_asgi()),
    path("ws/pmu/<int:pmu_id>/", consumers.PmuConsumer.as_asgi()),
    path("ws/replay/", consumers.ReplayConsumer.as_asgi()),
    *control_routes,
]
