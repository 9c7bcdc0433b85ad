"""HTTP security wiring: the Content-Security-Policy with the site's own websocket origin, the login lockout page."""

from __future__ import annotations

from typing import Any

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.loader import render_to_string

# Lockout answer: "Too Many Requests", the code axes uses by default.
LOCKOUT_STATUS = 429


class SiteCSPMiddleware(CSPMiddleware):
    """Add this host's ws:// or wss:// origin to connect-src (older browsers do not count websockets as 'self')."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:  # the 400 answer for a foreign Host header: no origin to add
            return parts
        scheme = "wss" if request.is_secure() else "ws"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), f"{scheme}://{host}"]
        parts.update = update
        return parts


def lockout_response(request: HttpRequest, *_: Any) -> HttpResponse:
    """Answer a login attempt on a locked account or address with a page (HTTP 429) saying what to do."""
    username = request.POST.get("username", "") if request.method == "POST" else ""
    context = {
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "lockout_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    body = render_to_string("registration/locked_out.html", context, request=request)
    return HttpResponse(body, status=LOCKOUT_STATUS)
