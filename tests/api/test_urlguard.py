"""Webhook SSRF guard: only public addresses (or the admin's allow-list), checked at subscribe and delivery time.

Name resolution is faked (this machine has no network) and no connection leaves the machine: the
one "public" delivery connects nowhere, its socket call is recorded and refused.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.api.conftest import bearer, make_application
from tests.api.test_webhooks import Receiver
from tests.conftest import make_organisation
from wams.api import delivery, urlguard
from wams.api.models import Delivery, Subscription
from wams.api.urlguard import UnsafeUrl, check_webhook_url

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

PUBLIC = "93.184.216.34"
REAL_GETADDRINFO = socket.getaddrinfo


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> list[str]:
    """Answer getaddrinfo for the given names (address literals and others resolve as usual); return the asked names."""
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(str(host))
        if host in names:
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in names[host]
            ]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:6379/x", "loopback"),
        ("http://[::1]:5432/x", "loopback"),
        ("http://10.0.0.1/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/", "metadata"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[::ffff:10.1.2.3]/hook", "private"),
        ("http://localhost:8000/hook", "loopback"),
        ("http://0.0.0.0:8000/hook", "unspecified"),
        ("http://100.64.1.1/hook", "carrier-grade NAT"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://rebind.example.org/hook", "private"),  # one of its addresses is private
        ("http://user:secret@hooks.example.org/hook", "credentials"),
        ("ftp://hooks.example.org/hook", "http:// or https://"),
        ("http://hooks.example.org:99999/hook", "invalid port"),
        ("http://no-such-host.invalid/hook", "cannot be resolved"),
    ],
)
def test_unsafe_webhook_urls_are_refused_with_400(
    client: Client, monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    fake_dns(monkeypatch, {"hooks.example.org": [PUBLIC], "rebind.example.org": [PUBLIC, "10.0.0.7"]})
    _, token = make_application(make_organisation())
    response = client.post(
        "/api/v1/subscriptions",
        json.dumps({"kind": "event", "webhook_url": url}),
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 400, response.content
    assert why in response.json()["error"]
    assert not Subscription.objects.exists()


def test_a_public_address_is_accepted(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"hooks.example.org": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]})
    _, token = make_application(make_organisation())
    response = client.post(
        "/api/v1/subscriptions",
        json.dumps({"kind": "event", "webhook_url": "https://hooks.example.org/wams?x=1"}),
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 201, response.content
    checked = check_webhook_url("https://hooks.example.org/wams?x=1")
    assert (checked.host, checked.port, checked.address, checked.target) == (
        "hooks.example.org",
        443,
        PUBLIC,
        "/wams?x=1",
    )


def test_the_allow_list_admits_named_hosts_and_networks_but_never_metadata() -> None:
    assert check_webhook_url("http://127.0.0.1:9/hook", allow=["127.0.0.1"]).address == "127.0.0.1"
    assert check_webhook_url("http://10.2.3.4/hook", allow=["10.0.0.0/8"]).address == "10.2.3.4"
    assert check_webhook_url("http://localhost:9/hook", allow=["localhost"]).host == "localhost"
    with pytest.raises(UnsafeUrl, match="private"):
        check_webhook_url("http://10.2.3.4/hook", allow=["192.168.0.0/16"])
    with pytest.raises(UnsafeUrl, match="metadata"):
        check_webhook_url("http://169.254.169.254/", allow=["169.254.0.0/16"])


def _subscription_to(url: str) -> Subscription:
    application, _ = make_application(make_organisation())
    return Subscription.objects.create(application=application, kind="event", webhook_url=url, secret="s" * 64)


def _pending(subscription: Subscription) -> Delivery:
    from django.utils import timezone

    return Delivery.objects.create(
        subscription=subscription, change="raised", payload={"type": "test"}, next_attempt_at=timezone.now()
    )


def _no_connection(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every outgoing connection attempt and refuse it."""
    attempts: list[Any] = []

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        raise ConnectionRefusedError("no connection in this test")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempts


def test_a_delivery_to_a_url_that_became_unsafe_fails_with_the_reason_and_no_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stored when the host was public; it now resolves to the metadata service.
    fake_dns(monkeypatch, {"hooks.example.org": ["169.254.169.254"]})
    attempts = _no_connection(monkeypatch)
    item = _pending(_subscription_to("http://hooks.example.org/hook"))
    assert delivery.deliver(item.pk) == "failed"
    item.refresh_from_db()
    assert item.last_error.startswith("refused: ") and "metadata" in item.last_error
    assert item.attempts == 1 and item.last_status_code is None
    assert attempts == []


def test_a_delivery_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_dns(monkeypatch, {"hooks.example.org": [PUBLIC]})
    attempts = _no_connection(monkeypatch)
    item = _pending(_subscription_to("http://hooks.example.org:8080/hook"))
    assert delivery.deliver(item.pk) == "pending"  # refused connection: retried later
    assert attempts == [(PUBLIC, 8080)]
    assert asked.count("hooks.example.org") == 1  # one resolution, checked and used


def test_delivery_sends_the_host_header_of_the_url_to_the_pinned_address(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    receiver = Receiver()
    try:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        settings.WAMS_WEBHOOK_ALLOW = ["hooks.test"]
        fake_dns(monkeypatch, {"hooks.test": ["127.0.0.1"]})
        item = _pending(_subscription_to(f"http://hooks.test:{port}/hook?x=1"))
        assert delivery.deliver(item.pk) == "delivered"
        headers, body = receiver.received[0]
        assert headers["Host"] == f"hooks.test:{port}" and json.loads(body) == {"type": "test"}
    finally:
        receiver.close()


def test_redirects_are_answers_not_hops(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    receiver = Receiver()
    try:
        receiver.statuses = [302]
        settings.WAMS_WEBHOOK_ALLOW = ["127.0.0.1"]
        item = _pending(_subscription_to(receiver.url))
        assert delivery.deliver(item.pk) == "pending"
        item.refresh_from_db()
        assert item.last_status_code == 302 and len(receiver.received) == 1
    finally:
        receiver.close()


def test_unsafe_reason_unwraps_ipv6_forms_of_ipv4() -> None:
    import ipaddress

    reason: Callable[[str], str | None] = lambda a: urlguard.unsafe_reason(ipaddress.ip_address(a))  # noqa: E731
    assert reason("64:ff9b::a00:1") and "private" in str(reason("64:ff9b::a00:1"))
    assert reason("2002:7f00:1::1") and "loopback" in str(reason("2002:7f00:1::1"))
    assert reason(PUBLIC) is None
