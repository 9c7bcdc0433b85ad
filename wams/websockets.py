"""Websocket gatekeeping around the consumers: exact origin checks and open sockets per user.

`OriginValidator` compares a handshake's Origin header, scheme, host and port together, with the
origins in CSRF_TRUSTED_ORIGINS and with the site's own origin (the Host the socket was opened on,
when that host is in ALLOWED_HOSTS, on the same scheme and port). A handshake without an Origin is
refused unless DEBUG: every browser sends one, so only scripts omit it, and scripts have the API.

`ConnectionLimiter` caps the sockets one user holds open in this process at WAMS_WS_MAX_PER_USER;
the socket past the cap is accepted and closed at once with code 4429, so the page can tell it from
a refusal. The count is per process: with several web processes a user may hold that many in each.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from django.conf import settings
from django.http.request import split_domain_port, validate_host

Scope = dict[str, Any]
Receive = Any
Send = Any

# Close code after the handshake for "too many sockets" (4000 + HTTP 429).
CLOSE_TOO_MANY = 4429
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(origin: str) -> tuple[str, str, int] | None:
    """Return (scheme, host, port) of an http(s) origin with the default port filled in; None when malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/") or parts.query or parts.username:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def header(scope: Scope, name: bytes) -> str | None:
    """Return one request header of an ASGI scope (latin-1), or None when absent."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def is_secure(scope: Scope) -> bool:
    """Tell whether the browser opened the socket over TLS (directly, or as the trusted proxy says)."""
    if scope.get("scheme") == "wss":
        return True
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        name = proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        return (header(scope, name) or "").split(",")[0].strip().lower() == proxy[1]
    return False


def own_origin(scope: Scope) -> tuple[str, str, int] | None:
    """Return the origin of the page that opens a socket to this very host, or None when the host is not ours."""
    host = header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host.lower())
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return normalise_origin(("https://" if is_secure(scope) else "http://") + host)


def trusted_origin(origin: tuple[str, str, int], trusted: list[str]) -> bool:
    """Tell whether an origin equals one of `trusted` (scheme, host and port; "https://*.example.org" allowed)."""
    for entry in trusted:
        wildcard = "://*." in entry
        allowed = normalise_origin(entry.replace("://*.", "://", 1))
        if allowed is None or (allowed[0], allowed[2]) != (origin[0], origin[2]):
            continue
        if origin[1] == allowed[1] or (wildcard and origin[1].endswith("." + allowed[1])):
            return True
    return False


def origin_allowed(scope: Scope) -> bool:
    """Tell whether a websocket handshake comes from a page of this site or of a trusted origin."""
    raw = header(scope, b"origin")
    if raw is None:
        return bool(settings.DEBUG)
    origin = normalise_origin(raw)
    if origin is None:
        return False
    return origin == own_origin(scope) or trusted_origin(origin, list(settings.CSRF_TRUSTED_ORIGINS))


async def refuse_handshake(receive: Receive, send: Send) -> None:
    """Refuse a websocket before accepting it (the client sees HTTP 403)."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


class OriginValidator:
    """ASGI middleware: refuse websockets whose Origin is not this site or a trusted origin."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            await refuse_handshake(receive, send)
            return None
        return await self.app(scope, receive, send)


class ConnectionCounter:
    """Open sockets per user in this process (every consumer runs on the server's one event loop)."""

    def __init__(self) -> None:
        self.open: Counter[int] = Counter()

    def acquire(self, user_id: int, limit: int) -> bool:
        """Count one more socket for the user; False (and nothing counted) when they already hold `limit`."""
        if self.open[user_id] >= limit:
            return False
        self.open[user_id] += 1
        return True

    def release(self, user_id: int) -> None:
        """Forget one of the user's sockets."""
        self.open[user_id] -= 1
        if self.open[user_id] <= 0:
            del self.open[user_id]


connections = ConnectionCounter()


async def close_too_many(receive: Receive, send: Send) -> None:
    """Accept, then close with CLOSE_TOO_MANY: the page learns why, which a bare 403 would not tell it."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_TOO_MANY})


class ConnectionLimiter:
    """ASGI middleware (inside the auth middleware): at most WAMS_WS_MAX_PER_USER open sockets per user."""

    def __init__(self, app: Any, counter: ConnectionCounter | None = None) -> None:
        self.app = app
        self.counter = counter or connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        user = scope.get("user")
        if scope["type"] != "websocket" or user is None or not user.is_authenticated:
            return await self.app(scope, receive, send)  # consumers refuse anonymous sockets themselves
        user_id = int(user.pk)
        if not self.counter.acquire(user_id, settings.WAMS_WS_MAX_PER_USER):
            await close_too_many(receive, send)
            return None
        try:
            return await self.app(scope, receive, send)
        finally:
            self.counter.release(user_id)


def websocket_stack(router: Any) -> Any:
    """Wrap the websocket router: origin check, session auth, per-user socket limit."""
    return OriginValidator(AuthMiddlewareStack(ConnectionLimiter(router)))
