"""Incidents on the API (listed, shown, redacted) and incident webhooks: one delivery per state change."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tests.api.conftest import bearer, make_application
from tests.api.test_webhooks import Receiver, receiver, retry_due_now, subscribe  # noqa: F401
from tests.conftest import make_organisation, make_pmu, make_stream, make_user
from wams.api import incidents as api_incidents
from wams.api import tasks
from wams.api.delivery import SIGNATURE_HEADER, verify
from wams.api.models import Delivery
from wams.detection.incidents import acknowledge_incident, record_incident
from wams.detection.services import raise_event
from wams.grid.services import ROLE_OPERATOR

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def report(key: str, change: str, at_s: float = 0.0, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "kind": "fault",
        "severity": "alarm",
        "started_at": T0,
        "detected_at": T0 + dt.timedelta(seconds=at_s),
        "summary": "Fault near West Walpole",
        "figures": {"voltage_min_pu": 0.4, "duration_ms": 100},
    } | fields
    return record_incident(correlation_key=key, change=change, **values)


@pytest.mark.django_db
def test_incidents_are_listed_newest_first_and_redacted_for_the_applications_organisation(client: Any) -> None:
    mine, theirs = make_organisation(), make_organisation()
    my_pmu, their_pmu = make_pmu(stream=make_stream(owner=mine)), make_pmu(stream=make_stream(owner=theirs))
    e1, _ = raise_event(kind="voltage_sag", severity="alarm", summary="a", started_at=T0, pmu_ids=[my_pmu.pk])
    e2, _ = raise_event(kind="voltage_sag", severity="alarm", summary="b", started_at=T0, pmu_ids=[their_pmu.pk])
    shared = report("r:1", "opened", event_keys=[e1.dedup_key, e2.dedup_key])
    e3, _ = raise_event(kind="rocof", severity="alarm", summary="c", started_at=T0, pmu_ids=[their_pmu.pk])
    hidden = report("r:2", "opened", 1.0, kind="line_trip", started_at=T0 + dt.timedelta(seconds=60))
    hidden.events.add(e3)
    own = report("r:3", "opened", 2.0, kind="load_step", started_at=T0 + dt.timedelta(seconds=120))
    own.events.add(e1.__class__.objects.create(kind="x", summary="own", started_at=T0, dedup_key="own"))
    own.events.first().pmus.add(my_pmu)  # type: ignore[union-attr]
    _, token = make_application(mine)

    body = client.get("/api/v1/incidents", **bearer(token)).json()
    assert [i["id"] for i in body["incidents"]] == [own.pk, shared.pk]  # newest first; theirs alone absent
    shown = next(i for i in body["incidents"] if i["id"] == shared.pk)
    assert shown["redacted"] and shown["pmu_ids"] == [my_pmu.pk] and shown["events"] == [e1.pk]
    assert "West Walpole" not in shown["summary"] and shown["figures"]["voltage_min_pu"] == 0.4
    assert shown["alarm"]["state"] == "unack_active"

    detail = client.get(f"/api/v1/incidents/{shared.pk}", **bearer(token)).json()
    assert [e["id"] for e in detail["events"]] == [e1.pk] and detail["figures"]["duration_ms"] == 100
    assert client.get(f"/api/v1/incidents/{hidden.pk}", **bearer(token)).status_code == 404
    only = client.get("/api/v1/incidents?kind=load_step", **bearer(token)).json()["incidents"]
    assert [i["id"] for i in only] == [own.pk]
    bad = client.get("/api/v1/incidents?kind=meteor", **bearer(token))
    assert bad.status_code == 400 and "unknown kind" in bad.json()["error"]


@pytest.mark.django_db
def test_alarm_order_puts_unacknowledged_and_active_first(client: Any, django_user_model: Any) -> None:
    operator = make_user(django_user_model, ROLE_OPERATOR)
    old = report("r:1", "opened", bus_number=1)
    acked = report("r:2", "opened", 1.0, bus_number=2, started_at=T0 + dt.timedelta(seconds=60))
    acknowledge_incident(acked.pk, operator)
    newest_ended = report("r:3", "opened", 2.0, bus_number=3, started_at=T0 + dt.timedelta(seconds=120))
    report("r:3", "ended", 3.0, bus_number=3, started_at=T0 + dt.timedelta(seconds=120), ended_at=T0)
    _, token = make_application(make_organisation())
    rows = client.get("/api/v1/incidents?order=alarm", **bearer(token)).json()["incidents"]
    assert [(i["id"], i["alarm"]["state"]) for i in rows] == [
        (old.pk, "unack_active"),
        (newest_ended.pk, "unack_returned"),
        (acked.pk, "ack_active"),
    ]
    unacked = client.get("/api/v1/incidents?alarm=unack_active,unack_returned", **bearer(token)).json()
    assert {i["id"] for i in unacked["incidents"]} == {old.pk, newest_ended.pk}


@pytest.mark.django_db(transaction=True)
def test_an_incident_with_40_symptoms_is_one_delivery_and_one_per_state_change(
    receiver: Receiver,  # noqa: F811
    django_user_model: Any,
) -> None:
    organisation = make_organisation()
    pmus = [make_pmu(stream=make_stream(owner=organisation)) for _ in range(4)]
    application, _ = make_application(organisation)
    _, event_secret = subscribe(application, kind="event", webhook_url=receiver.url)
    _, secret = subscribe(application, kind="incident", webhook_url=receiver.url)
    keys = []
    for i in range(40):
        event, _ = raise_event(
            kind="voltage_sag",
            severity="alarm",
            summary=f"sag {i}",
            started_at=T0,
            pmu_ids=[pmus[i % 4].pk],
            dedup_key=f"sag:{i}",
        )
        keys.append(event.dedup_key)
    event_deliveries = Delivery.objects.filter(event__isnull=False).count()
    assert event_deliveries == 40  # the symptoms, to event subscribers

    incident = report("r:1", "opened", event_keys=keys[:20])
    report("r:1", "updated", 0.5, event_keys=keys, figures={"voltage_min_pu": 0.35})
    report("r:1", "updated", 0.8, event_keys=keys, figures={"voltage_min_pu": 0.3})  # within 30 s: not sent
    report("r:1", "ended", 5.0, event_keys=keys, ended_at=T0 + dt.timedelta(seconds=5))
    acknowledge_incident(incident.pk, make_user(django_user_model, ROLE_OPERATOR, organisation))
    assert api_incidents.fan_out_incident(incident.pk, "ended") == 0  # safe twice

    rows = Delivery.objects.filter(incident=incident).order_by("pk")
    assert [d.change for d in rows] == ["raised", "updated", "ended", "acknowledged"]
    assert tasks.deliver_due.apply().get() >= 4
    got = [(json.loads(body), headers) for headers, body in receiver.received if json.loads(body)["type"] == "incident"]
    assert [b["change"] for b, _ in got] == ["raised", "updated", "ended", "acknowledged"]
    for _body, headers in got:
        raw = next(b for h, b in receiver.received if h["X-WAMS-Delivery"] == headers["X-WAMS-Delivery"])
        assert verify(raw, secret, headers[SIGNATURE_HEADER]) and not verify(
            raw, event_secret, headers[SIGNATURE_HEADER]
        )
    assert len(got[0][0]["incident"]["events"]) == 20 and len(got[2][0]["incident"]["events"]) == 40
    assert got[3][0]["incident"]["alarm"]["state"] == "normal"


@pytest.mark.django_db(transaction=True)
def test_incident_subscriptions_filter_by_kind_and_organisation(receiver: Receiver) -> None:  # noqa: F811
    mine, theirs = make_organisation(), make_organisation()
    their_pmu = make_pmu(stream=make_stream(owner=theirs))
    application, _ = make_application(mine)
    subscribe(application, kind="incident", event_kinds=["generator_trip"], webhook_url=receiver.url)
    report("r:1", "opened")  # a fault: not asked for
    event, _ = raise_event(kind="rocof", severity="alarm", summary="c", started_at=T0, pmu_ids=[their_pmu.pk])
    report("r:2", "opened", kind="generator_trip", bus_number=5, event_keys=[event.dedup_key])  # theirs
    assert Delivery.objects.filter(incident__isnull=False).count() == 0
    trip = report("r:3", "opened", kind="generator_trip", bus_number=7)  # grid-wide
    assert list(Delivery.objects.values_list("incident", flat=True)) == [trip.pk]
    with pytest.raises(Exception, match="unknown incident kind"):
        subscribe(application, kind="incident", event_kinds=["rocof"], webhook_url=receiver.url)
