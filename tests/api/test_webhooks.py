"""Event-based and periodic reporting: signed webhooks to a local HTTP server, retried until accepted."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from tests.api.conftest import make_application
from tests.conftest import make_organisation, make_pmu, make_stream
from wams.api import tasks
from wams.api.delivery import MAX_ATTEMPTS, SIGNATURE_HEADER, verify
from wams.api.models import Application, Delivery, Subscription
from wams.api.services import create_subscription, send_due_reports
from wams.detection.services import clear_event, raise_event
from wams.historian.blocks import SampleBlock
from wams.historian.recent import push_recent

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that answers with the queued statuses (then 200) and keeps what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[Message, bytes]] = []  # headers are case-insensitive
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.WAMS_WEBHOOK_ALLOW = ["127.0.0.1"]  # the receiver is local: allowed as an admin would
    server = Receiver()
    yield server
    server.close()


def subscribe(application: Application, **fields: Any) -> tuple[Subscription, str]:
    return create_subscription(application, fields)


def retry_due_now() -> int:
    """Make every pending delivery due and run the sweep once (a retry, without waiting for the backoff)."""
    Delivery.objects.filter(status=Delivery.Status.PENDING).update(next_attempt_at=T0)
    return tasks.deliver_due.apply().get()


def test_event_webhook_is_signed_and_retried_after_a_500(receiver: Receiver) -> None:
    pmu = make_pmu()
    application, _ = make_application(pmu.owner)
    subscription, secret = subscribe(application, kind="event", webhook_url=receiver.url)
    receiver.statuses = [500]

    event, _ = raise_event(kind="rocof", severity="alarm", summary="df/dt", started_at=T0, pmu_ids=[pmu.pk])
    delivery = Delivery.objects.get()
    assert (delivery.subscription, delivery.event, delivery.change) == (subscription, event, "raised")

    assert tasks.deliver_due.apply().get() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at > delivery.created_at  # backing off

    assert retry_due_now() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    (h1, b1), (h2, b2) = receiver.received
    assert b1 == b2  # the same body each attempt, so the application can deduplicate
    assert verify(b2, secret, h2[SIGNATURE_HEADER])
    assert not verify(b2, "another secret", h2[SIGNATURE_HEADER])
    body = json.loads(b2)
    assert body["type"] == "event" and body["change"] == "raised"
    assert body["event"]["id"] == event.pk and body["event"]["pmu_ids"] == [pmu.pk]
    assert (h1["X-WAMS-Delivery"], h1["X-WAMS-Attempt"], h2["X-WAMS-Attempt"]) == (str(delivery.pk), "1", "2")
    assert retry_due_now() == 0  # delivered: never sent again


def test_a_delivery_that_keeps_failing_is_given_up_after_the_last_attempt(receiver: Receiver) -> None:
    pmu = make_pmu()
    application, _ = make_application(pmu.owner)
    subscribe(application, kind="event", webhook_url=receiver.url)
    receiver.statuses = [503] * MAX_ATTEMPTS
    raise_event(kind="sync_loss", severity="warning", summary="sync", started_at=T0, pmu_ids=[pmu.pk])
    for _ in range(MAX_ATTEMPTS):
        retry_due_now()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.last_error == "HTTP 503"


def test_event_subscriptions_filter_by_kind_severity_and_organisation(receiver: Receiver) -> None:
    org_a, org_b = make_organisation(), make_organisation()
    a = make_pmu(stream=make_stream(owner=org_a))
    b = make_pmu(stream=make_stream(owner=org_b))
    app_a, _ = make_application(org_a)
    alarms, _ = subscribe(
        app_a, kind="event", webhook_url=receiver.url, event_kinds=["voltage_sag"], min_severity="alarm"
    )
    everything, _ = subscribe(app_a, kind="event", webhook_url=receiver.url)

    raise_event(kind="voltage_sag", severity="warning", summary="sag", started_at=T0, pmu_ids=[a.pk], dedup_key="s")
    raise_event(kind="voltage_sag", severity="alarm", summary="deeper", started_at=T0, pmu_ids=[a.pk], dedup_key="s")
    raise_event(kind="rocof", severity="alarm", summary="df/dt", started_at=T0, pmu_ids=[a.pk])
    raise_event(kind="voltage_sag", severity="alarm", summary="theirs", started_at=T0, pmu_ids=[b.pk])
    clear_event("s", ended_at=T0 + dt.timedelta(seconds=2))

    got = {(d.subscription_id, d.event.kind if d.event else "", d.change) for d in Delivery.objects.all()}
    assert got == {
        (alarms.pk, "voltage_sag", "escalated:alarm"),  # its first notice: the event reached alarm
        (alarms.pk, "voltage_sag", "cleared"),
        (everything.pk, "voltage_sag", "raised"),
        (everything.pk, "voltage_sag", "escalated:alarm"),
        (everything.pk, "voltage_sag", "cleared"),
        (everything.pk, "rocof", "raised"),
    }
    tasks.deliver_due.apply()
    assert len(receiver.received) == 6
    assert {p["event"]["pmu_ids"][0] for p in receiver.payloads()} == {a.pk}


def test_periodic_report_carries_the_latest_values_of_the_subscribed_pmus(receiver: Receiver) -> None:
    pmu = make_pmu()
    application, _ = make_application(pmu.owner)
    subscription, secret = subscribe(
        application, kind="periodic", period_s=2.0, quantities=["frequency_hz"], webhook_url=receiver.url
    )
    stamps = 1_800_000_000_000_000 + np.arange(60) * 33_333
    frequency = 60.0 + 0.01 * np.arange(60) / 59
    push_recent(
        SampleBlock(
            pmu_id=pmu.pk,
            timestamp_us=stamps,
            stat=np.zeros(60, np.uint16),
            frequency_hz=frequency,
            rocof_hz_per_s=np.zeros(60),
            phasors=np.ones((60, 1), complex),
        )
    )
    now = dt.datetime.now(tz=dt.UTC)
    assert send_due_reports(now) == 1
    assert send_due_reports(now + dt.timedelta(seconds=1)) == 0  # not due before the period has passed
    assert send_due_reports(now + dt.timedelta(seconds=2)) == 1
    assert retry_due_now() == 2
    headers, body = receiver.received[0]
    assert verify(body, secret, headers[SIGNATURE_HEADER])
    report = json.loads(body)
    assert report["type"] == "periodic_report" and report["subscription_id"] == subscription.pk
    (row,) = report["pmus"]
    assert row["pmu_id"] == pmu.pk and row["n_samples"] == 60
    stats = row["values"]["frequency_hz"]
    assert stats["last"] == pytest.approx(60.01) and stats["min"] == pytest.approx(60.0)
    assert stats["mean"] == pytest.approx(60.005)
    assert len(receiver.received) == 2
