"""Websocket gatekeeping around the consumers: exact origin checks and open sockets per user.

`OriginValidator` compares a handshake's Origin header, scheme, host and port together, with the
origins in CSRF_TRUSTED_ORIGINS and with the site's own origin (the Host the socket was opened on,
when that host is in ALLOWED_HOSTS, on the same scheme and port). A handshake without an Origin is
refused unless DEBUG: every browser sends one, so only scripts omit it, and scripts have the API.

`ConnectionLimiter` caps the sockets one user holds open at WAMS_WS_MAX_PER_USER; the socket past
the cap is accepted and closed at once with code 4429, so the page can tell it from a refusal. With
REDIS_URL the count is shared by every web process (a sorted set per user in Redis, each socket a
member with a lease its process renews while the socket is open, so a crashed process's sockets
drop out within LEASE_S); without it, or while Redis fails, each process counts its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections import Counter
from typing import Any, Protocol
from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from django.conf import settings
from django.http.request import split_domain_port, validate_host

Scope = dict[str, Any]
Receive = Any
Send = Any

logger = logging.getLogger(__name__)

# Close code after the handshake for "too many sockets" (4000 + HTTP 429).
CLOSE_TOO_MANY = 4429
# A socket's entry in the shared count lives this long unless its process renews it (every LEASE_S / 3).
LEASE_S = 90.0
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


class SocketCounter(Protocol):
    """Where open sockets are counted."""

    async def acquire(self, user_id: int, socket_id: str, limit: int) -> bool: ...
    async def renew(self, user_id: int, socket_id: str) -> None: ...
    async def release(self, user_id: int, socket_id: str) -> None: ...


class ConnectionCounter:
    """Open sockets per user in this process (every consumer runs on the server's one event loop)."""

    def __init__(self) -> None:
        self.open: Counter[int] = Counter()

    async def acquire(self, user_id: int, socket_id: str, limit: int) -> bool:
        """Count one more socket for the user; False (and nothing counted) when they already hold `limit`."""
        if self.open[user_id] >= limit:
            return False
        self.open[user_id] += 1
        return True

    async def renew(self, user_id: int, socket_id: str) -> None:
        """Nothing to renew: the count lives and dies with this process."""

    async def release(self, user_id: int, socket_id: str) -> None:
        """Forget one of the user's sockets."""
        self.open[user_id] -= 1
        if self.open[user_id] <= 0:
            del self.open[user_id]


# Drop expired leases, refuse at the limit, else add this socket: one atomic step for every process.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisConnectionCounter:
    """Open sockets per user across web processes: a Redis sorted set per user, members scored by lease end."""

    def __init__(self, url: str, prefix: str = "wams:ws:user:", lease_s: float = LEASE_S) -> None:
        self.url = url
        self.prefix = prefix
        self.lease_s = lease_s
        self.local = ConnectionCounter()  # used while Redis fails
        self.fallback: set[str] = set()
        self.clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def client(self) -> Any:
        """Return this event loop's Redis client (a client cannot move between loops)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        if loop not in self.clients:
            self.clients[loop] = redis.asyncio.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return self.clients[loop]

    async def acquire(self, user_id: int, socket_id: str, limit: int) -> bool:
        now = time.time()
        key = f"{self.prefix}{user_id}"
        try:
            added = await self.client().eval(
                _ACQUIRE, 1, key, now, now + self.lease_s, socket_id, limit, int(self.lease_s) + 1
            )
        except Exception as exc:  # noqa: BLE001 - Redis down: count in this process rather than refuse everyone
            logger.warning("websocket limit: Redis unavailable (%s); counting in this process", exc)
            self.fallback.add(socket_id)
            return await self.local.acquire(user_id, socket_id, limit)
        return bool(added)

    async def renew(self, user_id: int, socket_id: str) -> None:
        if socket_id in self.fallback:
            return
        with contextlib.suppress(Exception):
            await self.client().zadd(f"{self.prefix}{user_id}", {socket_id: time.time() + self.lease_s}, xx=True)

    async def release(self, user_id: int, socket_id: str) -> None:
        if socket_id in self.fallback:
            self.fallback.discard(socket_id)
            await self.local.release(user_id, socket_id)
            return
        with contextlib.suppress(Exception):  # an entry left behind expires with its lease
            await self.client().zrem(f"{self.prefix}{user_id}", socket_id)


_counters: dict[str | None, SocketCounter] = {}


def default_counter() -> SocketCounter:
    """Return the counter for the configured REDIS_URL (shared) or this process (embedded)."""
    url = settings.REDIS_URL
    if url not in _counters:
        _counters[url] = RedisConnectionCounter(url) if url else ConnectionCounter()
    return _counters[url]


async def close_too_many(receive: Receive, send: Send) -> None:
    """Accept, then close with CLOSE_TOO_MANY: the page learns why, which a bare 403 would not tell it."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_TOO_MANY})


class ConnectionLimiter:
    """ASGI middleware (inside the auth middleware): at most WAMS_WS_MAX_PER_USER open sockets per user."""

    def __init__(self, app: Any, counter: SocketCounter | None = None) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        user = scope.get("user")
        if scope["type"] != "websocket" or user is None or not user.is_authenticated:
            return await self.app(scope, receive, send)  # consumers refuse anonymous sockets themselves
        counter = self.counter or default_counter()
        user_id, socket_id = int(user.pk), uuid.uuid4().hex
        if not await counter.acquire(user_id, socket_id, settings.WAMS_WS_MAX_PER_USER):
            await close_too_many(receive, send)
            return None
        renewing = asyncio.ensure_future(self.renew(counter, user_id, socket_id))
        try:
            return await self.app(scope, receive, send)
        finally:
            renewing.cancel()
            await counter.release(user_id, socket_id)

    @staticmethod
    async def renew(counter: SocketCounter, user_id: int, socket_id: str) -> None:
        """Keep the socket's lease alive while it is open."""
        while True:
            await asyncio.sleep(LEASE_S / 3)
            await counter.renew(user_id, socket_id)


def websocket_stack(router: Any) -> Any:
    """Wrap the websocket router: origin check, session auth, per-user socket limit."""
    return OriginValidator(AuthMiddlewareStack(ConnectionLimiter(router)))
