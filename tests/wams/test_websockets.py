"""Websocket gatekeeping: exact origins (scheme, host, port) and open sockets per user."""

from __future__ import annotations

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
def test_the_socket_past_the_per_user_limit_is_closed_with_4429(operator_session, django_user_model):
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
    assert counter.acquire(1, 2) and counter.acquire(1, 2)
    assert not counter.acquire(1, 2)
    assert counter.acquire(2, 2)  # another user is unaffected
    counter.release(1)
    assert counter.acquire(1, 2)
    counter.release(1), counter.release(1), counter.release(2)
    assert counter.open == {}


def test_the_limiter_releases_the_slot_when_the_consumer_fails():
    class User:
        pk = 7
        is_authenticated = True

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
