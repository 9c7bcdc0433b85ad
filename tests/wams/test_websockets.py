"""Websocket gatekeeping: exact origins (scheme, host, port) and open sockets per user."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from tests.conftest import make_organisation, make_user
from wams.websockets import (
    CLOSE_TOO_MANY,
    ConnectionCounter,
    ConnectionLimiter,
    RedisConnectionCounter,
    normalise_origin,
    origin_allowed,
    trusted_origin,
)

SITE = [(b"host", b"127.0.0.1:8000")]


def scope(origin: str | None, host: str | None = "127.0.0.1:8000", scheme: str = "ws", **headers: str) -> dict:
    pairs = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    if origin is not None:
        pairs.append((b"origin", origin.encode()))
    if host is not None:
        pairs.append((b"host", host.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": pairs}


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://127.0.0.1:8000", ("http", "127.0.0.1", 8000)),
        ("HTTPS://Example.ORG", ("https", "example.org", 443)),
        ("http://[::1]:8000", ("http", "::1", 8000)),
        ("http://example.org/", ("http", "example.org", 80)),
        ("null", None),
        ("file://", None),
        ("http://example.org/path", None),
        ("http://example.org:99999", None),
        ("http://user@example.org", None),
    ],
)
def test_origins_are_normalised_with_their_default_port(origin, expected):
    assert normalise_origin(origin) == expected


@override_settings(DEBUG=False, ALLOWED_HOSTS=["127.0.0.1", "localhost"], CSRF_TRUSTED_ORIGINS=[])
def test_a_page_on_another_port_of_the_same_host_is_refused():
    assert origin_allowed(scope("http://127.0.0.1:8000"))
    assert not origin_allowed(scope("http://127.0.0.1:9999"))
    assert not origin_allowed(scope("https://127.0.0.1:8000"))  # same host and port, another scheme
    assert not origin_allowed(scope("http://127.0.0.1"))


@override_settings(DEBUG=False, ALLOWED_HOSTS=["127.0.0.1"], CSRF_TRUSTED_ORIGINS=[])
def test_the_own_origin_counts_only_for_a_host_the_site_serves():
    assert not origin_allowed(scope("http://evil.example:8000", host="evil.example:8000"))
    assert not origin_allowed(scope("http://127.0.0.1:8000", host=None))


@override_settings(
    DEBUG=False,
    ALLOWED_HOSTS=["wams.example.org"],
    CSRF_TRUSTED_ORIGINS=["https://wams.example.org", "https://*.grid.example.org:8443"],
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_behind_a_tls_proxy_the_https_origin_is_the_sites_own():
    forwarded = {"x_forwarded_proto": "https"}
    assert origin_allowed(scope("https://wams.example.org", host="wams.example.org", **forwarded))
    assert origin_allowed(scope("https://wams.example.org", host="wams.example.org"))  # trusted origin
    assert not origin_allowed(scope("http://wams.example.org:443", host="wams.example.org"))
    assert origin_allowed(scope("https://cr1.grid.example.org:8443", host="wams.example.org"))
    assert not origin_allowed(scope("https://cr1.grid.example.org", host="wams.example.org"))
    assert not origin_allowed(scope("https://evilgrid.example.org:8443", host="wams.example.org"))


def test_trusted_origins_match_scheme_host_and_port_exactly():
    trusted = ["http://127.0.0.1:8000", "http://localhost:8000"]
    assert trusted_origin(("http", "localhost", 8000), trusted)
    assert not trusted_origin(("http", "localhost", 8001), trusted)
    assert not trusted_origin(("https", "localhost", 8000), trusted)


def test_a_missing_origin_is_refused_in_production_and_allowed_in_debug():
    with override_settings(DEBUG=False):
        assert not origin_allowed(scope(None))
    with override_settings(DEBUG=True):
        assert origin_allowed(scope(None))
    with override_settings(DEBUG=True, ALLOWED_HOSTS=["127.0.0.1"], CSRF_TRUSTED_ORIGINS=[]):
        assert not origin_allowed(scope("http://127.0.0.1:9999"))  # a wrong origin stays wrong in debug


# The full ASGI application, as Daphne serves it.


@pytest.fixture
def operator_session(client: Any, django_user_model: Any) -> tuple[list[tuple[bytes, bytes]], Any]:
    user = make_user(django_user_model, "operator", make_organisation(), username="ws-operator")
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())], user


async def handshake(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any, WebsocketCommunicator]:
    from wams.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    return connected, code, communicator


@pytest.mark.django_db(transaction=True)
@override_settings(DEBUG=False, ALLOWED_HOSTS=["127.0.0.1"], CSRF_TRUSTED_ORIGINS=[])
@pytest.mark.parametrize("path", ["/ws/live/", "/ws/control/"])
def test_the_application_refuses_a_foreign_port_and_accepts_the_sites_own_origin(operator_session, path):
    cookie, _ = operator_session

    async def body() -> tuple[bool, bool, bool]:
        foreign, _, _ = await handshake(path, [*cookie, *SITE, (b"origin", b"http://127.0.0.1:9999")])
        missing, _, _ = await handshake(path, [*cookie, *SITE])
        own, _, communicator = await handshake(path, [*cookie, *SITE, (b"origin", b"http://127.0.0.1:8000")])
        if own:
            await communicator.disconnect()
        return foreign, missing, own

    foreign, missing, own = async_to_sync(body)()
    assert (foreign, missing, own) == (False, False, True)


@pytest.mark.django_db(transaction=True)
@override_settings(DEBUG=False, ALLOWED_HOSTS=["127.0.0.1"], CSRF_TRUSTED_ORIGINS=[], WAMS_WS_MAX_PER_USER=3)
def test_the_socket_past_the_per_user_limit_is_closed_with_4429(operator_session, monkeypatch, settings):
    import uuid

    from wams import websockets

    # A count of its own: user ids repeat between tests, and a shared Redis keeps other tests' entries a while.
    fresh = websockets.ConnectionCounter()
    if settings.REDIS_URL:
        fresh = RedisConnectionCounter(settings.REDIS_URL, f"wams-test:ws:{uuid.uuid4().hex[:8]}:")
    monkeypatch.setitem(websockets._counters, settings.REDIS_URL, fresh)
    cookie, _ = operator_session
    headers = [*cookie, *SITE, (b"origin", b"http://127.0.0.1:8000")]

    async def body() -> tuple[list[bool], Any, bool, bool]:
        opened = [await handshake("/ws/live/" if n % 2 else "/ws/control/", headers) for n in range(3)]
        over, _, extra = await handshake("/ws/live/", headers)
        closed = await extra.receive_output(timeout=2) if over else None
        # One closes: a new one fits again.
        await opened[0][2].disconnect()
        again, _, replacement = await handshake("/ws/live/", headers)
        probe = await replacement.receive_output(timeout=2)  # the hello, not a close
        for _, _, communicator in [*opened[1:], (None, None, replacement)]:
            await communicator.disconnect()
        return [connected for connected, _, _ in opened], closed, again, probe["type"] == "websocket.send"

    opened, closed, again, live = async_to_sync(body)()
    assert opened == [True, True, True]
    assert closed == {"type": "websocket.close", "code": CLOSE_TOO_MANY}
    assert again and live


def test_the_counter_is_per_user_and_released_when_the_socket_ends():
    counter = ConnectionCounter()

    async def body() -> None:
        assert await counter.acquire(1, "a", 2) and await counter.acquire(1, "b", 2)
        assert not await counter.acquire(1, "c", 2)
        assert await counter.acquire(2, "d", 2)  # another user is unaffected
        await counter.release(1, "a")
        assert await counter.acquire(1, "e", 2)
        for user_id, socket_id in [(1, "b"), (1, "e"), (2, "d")]:
            await counter.release(user_id, socket_id)

    async_to_sync(body)()
    assert counter.open == {}


class User:
    pk = 7
    is_authenticated = True


def test_the_limiter_releases_the_slot_when_the_consumer_fails():
    async def failing_app(scope, receive, send):
        raise RuntimeError("consumer crashed")

    counter = ConnectionCounter()
    limiter = ConnectionLimiter(failing_app, counter)

    async def body() -> None:
        with pytest.raises(RuntimeError):
            await limiter({"type": "websocket", "user": User()}, None, None)

    with override_settings(WAMS_WS_MAX_PER_USER=1):
        async_to_sync(body)()
    assert counter.open == {}


REDIS_TEST_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def shared_counters():
    """Two counters on one Redis, as two web processes would have; a key prefix of their own."""
    import uuid

    import redis

    from tests.dashboards.livesite import redis_available

    if not redis_available():
        pytest.skip("Redis is not running")
    prefix = f"wams-test:ws:{uuid.uuid4().hex[:8]}:"
    yield RedisConnectionCounter(REDIS_TEST_URL, prefix), RedisConnectionCounter(REDIS_TEST_URL, prefix)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


@pytest.mark.redis
def test_with_redis_the_limit_holds_across_processes(shared_counters):
    first, second = shared_counters

    async def body() -> list[bool]:
        results = [await first.acquire(7, "p1-a", 3), await second.acquire(7, "p2-a", 3)]
        results.append(await first.acquire(7, "p1-b", 3))
        results.append(await second.acquire(7, "p2-b", 3))  # the fourth, in either process
        results.append(await second.acquire(8, "p2-c", 3))  # another user
        await first.release(7, "p1-a")
        results.append(await second.acquire(7, "p2-d", 3))
        return results

    assert async_to_sync(body)() == [True, True, True, False, True, True]


@pytest.mark.redis
def test_with_redis_a_dead_processs_sockets_drop_out_when_their_lease_ends(shared_counters):
    first, second = shared_counters
    first.lease_s = 0.5  # a process that dies holds its sockets this long

    async def body() -> tuple[bool, bool, bool]:
        held = await first.acquire(7, "dead-a", 1)
        blocked = await second.acquire(7, "live-a", 1)
        await asyncio.sleep(1.0)
        return held, blocked, await second.acquire(7, "live-b", 1)

    assert async_to_sync(body)() == (True, False, True)


def test_with_redis_down_the_limit_falls_back_to_this_process():
    counter = RedisConnectionCounter("redis://127.0.0.1:1/0")  # nothing listens on port 1

    async def body() -> list[bool]:
        results = [await counter.acquire(7, "a", 1), await counter.acquire(7, "b", 1)]
        await counter.release(7, "a")
        results.append(await counter.acquire(7, "c", 1))
        return results

    assert async_to_sync(body)() == [True, False, True]
