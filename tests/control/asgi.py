"""ASGI application for the control browser test: the project's websockets plus /ws/control/."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.control.site_settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from wams.control.routing import websocket_urlpatterns as control_routes  # noqa: E402
from wams.routing import websocket_urlpatterns as project_routes  # noqa: E402
from wams.websockets import websocket_stack  # noqa: E402

mounted = {str(route.pattern) for route in project_routes}
routes = list(project_routes) + [route for route in control_routes if str(route.pattern) not in mounted]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_stack(URLRouter(routes)),
    }
)
