"""REST API: authentication, organisation scoping, on-demand data, subscriptions, uploads, stream switching."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from tests.api.conftest import bearer, make_application
from tests.api.samples import steady
from tests.conftest import make_organisation, make_pmu, make_stream, make_substation
from wams.api.models import Application, Subscription
from wams.detection.models import Event, FaultRecord
from wams.detection.services import raise_event
from wams.grid.models import Stream
from wams.historian.blocks import SampleBlock
from wams.historian.recent import push_recent

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def grid() -> dict[str, Any]:
    """Two organisations: A owns two PMUs, B owns one it shares with A and one it keeps."""
    org_a, org_b = make_organisation("tsoa"), make_organisation("dsob", role="dso")
    stream_a, stream_b = make_stream(owner=org_a), make_stream(owner=org_b)
    a1, a2 = make_pmu(stream=stream_a), make_pmu(stream=stream_a)
    b_shared, b_private = make_pmu(stream=stream_b), make_pmu(stream=make_stream(owner=org_b))
    b_shared.shared_with.add(org_a)
    app, token = make_application(org_a)
    return {
        "app": app,
        "token": token,
        "a1": a1,
        "a2": a2,
        "b_shared": b_shared,
        "b_private": b_private,
        "stream_a": stream_a,
        "stream_b": stream_b,
        "private_stream": b_private.stream,
    }


def get(client: Client, token: str, url: str, **params: Any) -> Any:
    return client.get(url, params, **bearer(token))


def post_json(client: Client, token: str, url: str, body: Any) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json", **bearer(token))


def test_requests_without_a_valid_token_are_refused_with_401(client: Client, grid: dict[str, Any]) -> None:
    assert client.get("/api/v1/pmus").status_code == 401
    response = client.get("/api/v1/pmus", HTTP_AUTHORIZATION="Bearer wams_000000000000_forged")
    assert response.status_code == 401 and "token" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    Application.objects.filter(pk=grid["app"].pk).update(enabled=False)
    assert get(client, grid["token"], "/api/v1/pmus").status_code == 401


def test_an_application_sees_its_own_and_shared_pmus_only(client: Client, grid: dict[str, Any]) -> None:
    response = get(client, grid["token"], "/api/v1/pmus")
    assert response.status_code == 200
    ids = [p["id"] for p in response.json()["pmus"]]
    assert ids == sorted([grid["a1"].pk, grid["a2"].pk, grid["b_shared"].pk])
    private = grid["b_private"].pk
    refused = get(client, grid["token"], "/api/v1/data", pmu=str(private))
    assert refused.status_code == 404 and str(private) in refused.json()["error"]
    subscribe = post_json(
        client, grid["token"], "/api/v1/subscriptions", {"kind": "event", "webhook_url": "http://x/", "pmus": [private]}
    )
    assert subscribe.status_code == 404


def test_events_are_scoped_to_visible_pmus_and_filtered(client: Client, grid: dict[str, Any]) -> None:
    mine, _ = raise_event(
        kind="under_frequency", severity="warning", summary="f", started_at=T0, pmu_ids=[grid["a1"].pk]
    )
    raise_event(kind="voltage_sag", severity="alarm", summary="v", started_at=T0, pmu_ids=[grid["b_private"].pk])
    both, _ = raise_event(
        kind="islanding",
        severity="alarm",
        summary="i",
        started_at=T0,
        pmu_ids=[grid["b_shared"].pk, grid["b_private"].pk],
    )
    grid_wide, _ = raise_event(kind="forced_oscillation", severity="warning", summary="0.8 Hz", started_at=T0)
    found = get(client, grid["token"], "/api/v1/events").json()["events"]
    assert sorted(e["id"] for e in found) == sorted([mine.pk, both.pk, grid_wide.pk])
    shared = next(e for e in found if e["id"] == both.pk)
    assert shared["pmu_ids"] == [grid["b_shared"].pk]  # the other organisation's PMU is not named
    only = get(client, grid["token"], "/api/v1/events", kind="under_frequency").json()["events"]
    assert [e["id"] for e in only] == [mine.pk]
    future = get(
        client, grid["token"], "/api/v1/events", since=(dt.datetime.now(tz=dt.UTC) + dt.timedelta(hours=1)).isoformat()
    )
    assert future.json()["events"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give pmu=<id>"),
        ({"pmu": "x"}, "'x' is not an integer"),
        ({"pmu": "{a1}", "quantity": "voltage"}, "unknown channel 'voltage'"),
        ({"pmu": "{a1}", "start": "yesterday"}, "give epoch seconds or an ISO 8601 time"),
        ({"pmu": "{a1}", "start": "2026-01-01T12:00:00"}, "give a UTC offset"),
        ({"pmu": "{a1}", "start": "1767268800", "end": "1767265200"}, "end is before start"),
        ({"pmu": "{a1}", "start": "1767225600", "end": "1767398400"}, "longer than 24 hours"),
        ({"pmu": "{a1}", "start": "1767225600", "end": "1767225660", "max_points": "0"}, "max_points must be between"),
    ],
)
def test_bad_data_requests_get_400_with_a_message(
    client: Client, grid: dict[str, Any], params: dict[str, str], message: str
) -> None:
    params = {k: v.format(a1=grid["a1"].pk) for k, v in params.items()}
    response = get(client, grid["token"], "/api/v1/data", **params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_data_window_is_decimated_to_max_points(client: Client, grid: dict[str, Any]) -> None:
    steady(grid["a1"].pk, T0, 20.0, frequency_hz=59.95)
    response = get(
        client,
        grid["token"],
        "/api/v1/data",
        pmu=str(grid["a1"].pk),
        quantity="frequency_hz,angle_deg",
        start=T0.isoformat(),
        end=str(T0.timestamp() + 10.0),
        max_points="50",
    )
    assert response.status_code == 200
    frequency, angle = response.json()["traces"]
    assert (frequency["channel"], angle["channel"]) == ("frequency_hz", "phasor_0_angle_deg")
    assert len(frequency["t"]) == 50 and frequency["bucket_s"] == pytest.approx(10.0 / 50, rel=0.01)
    np.testing.assert_allclose(frequency["mean"], 59.95)
    np.testing.assert_allclose(angle["max"], 10.0, atol=1e-4)


def test_latest_values_come_from_the_recent_window_or_the_newest_stored_sample(
    client: Client, grid: dict[str, Any]
) -> None:
    a1, a2 = grid["a1"].pk, grid["a2"].pk
    steady(a2, T0, 2.0, frequency_hz=60.01)
    stamps = np.array([1_800_000_000_000_000, 1_800_000_000_033_333])
    push_recent(
        SampleBlock(
            pmu_id=a1,
            timestamp_us=stamps,
            stat=np.zeros(2, np.uint16),
            frequency_hz=np.array([59.9, 59.8]),
            rocof_hz_per_s=np.zeros(2),
            phasors=np.full((2, 1), 1000.0 + 0j),
        )
    )
    latest = get(client, grid["token"], "/api/v1/data", pmu=f"{a1},{a2}", quantity="frequency_hz").json()["latest"]
    assert latest[0]["t"] == pytest.approx(1_800_000_000.033333) and latest[0]["values"]["frequency_hz"] == 59.8
    assert latest[1]["t"] == pytest.approx(T0.timestamp() + 59 / 30, abs=1e-5)
    assert latest[1]["values"]["frequency_hz"] == pytest.approx(60.01)


def test_subscriptions_are_created_with_a_secret_shown_once_and_validated(
    client: Client, grid: dict[str, Any], settings: Any
) -> None:
    settings.WAMS_WEBHOOK_ALLOW = ["127.0.0.1"]  # the test's receiver is local: the admin allows it
    body = {
        "kind": "event",
        "event_kinds": ["under_frequency", "rocof"],
        "min_severity": "alarm",
        "pmus": [grid["a1"].pk, grid["b_shared"].pk],
        "webhook_url": "http://127.0.0.1:9/hook",
    }
    created = post_json(client, grid["token"], "/api/v1/subscriptions", body)
    assert created.status_code == 201
    reply = created.json()
    assert len(reply["secret"]) == 64 and reply["pmus"] == sorted([grid["a1"].pk, grid["b_shared"].pk])
    assert Subscription.objects.get(pk=reply["id"]).secret == reply["secret"]
    listed = get(client, grid["token"], "/api/v1/subscriptions").json()["subscriptions"]
    assert [s["id"] for s in listed] == [reply["id"]] and "secret" not in listed[0]
    bad = [
        ({"kind": "sometimes", "webhook_url": "http://x/"}, "kind must be one of"),
        ({"kind": "periodic", "webhook_url": "http://x/"}, "period_s must be a number"),
        ({"kind": "periodic", "period_s": 0.1, "webhook_url": "http://x/"}, "period_s must be between 1 and 86400"),
        ({"kind": "event", "webhook_url": "ftp://x/"}, "webhook_url must be an http:// or https:// URL"),
        ({"kind": "event", "webhook_url": "http://x/", "event_kinds": ["earthquake"]}, "unknown event kind"),
        ({"kind": "event", "webhook_url": "http://x/", "colour": "red"}, "unknown field(s): colour"),
        ([1, 2], "the body must be a JSON object"),
    ]
    for payload, message in bad:
        response = post_json(client, grid["token"], "/api/v1/subscriptions", payload)
        assert response.status_code == 400 and message in response.json()["error"], payload
    garbled = client.post("/api/v1/subscriptions", "{", content_type="application/json", **bearer(grid["token"]))
    assert garbled.status_code == 400 and "not valid JSON" in garbled.json()["error"]
    assert client.delete(f"/api/v1/subscriptions/{reply['id']}", **bearer(grid["token"])).status_code == 204


def test_streams_are_switched_by_their_owner_only(client: Client, grid: dict[str, Any]) -> None:
    token = grid["token"]
    own = post_json(client, token, f"/api/v1/streams/{grid['stream_a'].pk}/enabled", {"enabled": False})
    assert own.status_code == 200 and own.json()["enabled"] is False
    assert not Stream.objects.get(pk=grid["stream_a"].pk).enabled
    shared = post_json(client, token, f"/api/v1/streams/{grid['stream_b'].pk}/enabled", {"enabled": False})
    assert shared.status_code == 403 and "another organisation" in shared.json()["error"]
    hidden = post_json(client, token, f"/api/v1/streams/{grid['private_stream'].pk}/enabled", {"enabled": False})
    assert hidden.status_code == 404
    bad = post_json(client, token, f"/api/v1/streams/{grid['stream_a'].pk}/enabled", {"enabled": "no"})
    assert bad.status_code == 400 and "enabled" in bad.json()["error"]
    assert Stream.objects.get(pk=grid["stream_b"].pk).enabled


@pytest.mark.django_db(transaction=True)
def test_fault_records_are_uploaded_as_a_multipart_burst(client: Client, tmp_path: Path) -> None:
    from tests.detection.test_live_fault_records import record_files

    substation = make_substation(code="SUB7")
    pmu = make_pmu(substation=substation)
    _, token = make_application(pmu.owner)
    event, _ = raise_event(kind="line_trip", severity="alarm", summary="trip", started_at=T0, pmu_ids=[pmu.pk])
    files = record_files(tmp_path, "fr1", "SUB7", T0 + dt.timedelta(seconds=0.5))
    uploads = {name: _upload(name, content) for name, content in files}
    response = client.post("/api/v1/fault-records", uploads, **bearer(token))
    assert response.status_code == 201
    (record,) = response.json()["records"]
    assert record["event_id"] == event.pk and record["created"] is True
    assert FaultRecord.objects.get().uploaded_by.startswith("application ")
    empty = client.post("/api/v1/fault-records", {}, **bearer(token))
    assert empty.status_code == 400 and "multipart" in empty.json()["error"]
    junk = client.post("/api/v1/fault-records", {"a": _upload("a.txt", b"x")}, **bearer(token))
    assert junk.status_code == 400 and junk.json()["records"][0]["error"] == "not a .cfg, .dat or .zip file"
    assert Event.objects.filter(kind="fault_record").count() == 0


def _upload(name: str, content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)
