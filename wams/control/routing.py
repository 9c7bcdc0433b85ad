"""Websocket routes of the control pages (to be listed in wams/routing.py)."""

from django.urls import URLPattern, path

from wams.control.consumers import ControlConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/control/", ControlConsumer.as_asgi()),
]
