"""Bounded work on /api/v1/data: repeats answered once, over-budget windows refused before any read, large answers streamed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
from django.test import Client

from tests.api.conftest import bearer, make_application
from tests.api.samples import steady
from tests.conftest import make_organisation, make_pmu, make_stream
from wams.api import streaming
from wams.grid.models import Channel
from wams.historian import budget

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def fleet() -> dict[str, Any]:
    """Fourteen PMUs of one organisation, each with 20 s stored at 30 fps, one phasor in the grid model."""
    organisation = make_organisation("tsob")
    stream = make_stream(owner=organisation)
    pmus = [make_pmu(stream=stream) for _ in range(14)]
    for pmu in pmus:
        Channel.objects.create(pmu=pmu, kind=Channel.Kind.PHASOR, order=0, name="VA", unit="V", measures="voltage")
        steady(pmu.pk, T0, 20.0)
    _, token = make_application(organisation)
    return {"pmus": pmus, "token": token}


def _get(client: Client, token: str, **params: Any) -> Any:
    return client.get("/api/v1/data", params, **bearer(token))


def _body(response: Any) -> Any:
    if response.streaming:
        return json.loads(b"".join(response.streaming_content))
    return response.json()


def _window(**extra: Any) -> dict[str, Any]:
    return {"start": T0.isoformat(), "end": (T0 + dt.timedelta(seconds=20)).isoformat(), **extra}


def test_the_same_quantity_repeated_300_times_is_answered_once(client: Client, fleet: dict[str, Any]) -> None:
    pmu = fleet["pmus"][0].pk
    response = _get(client, fleet["token"], pmu=str(pmu), quantity=["frequency_hz"] * 300, **_window(max_points="50"))
    assert response.status_code == 200
    (trace,) = _body(response)["traces"]
    assert trace["channel"] == "frequency_hz" and len(trace["t"]) == 50


def test_a_window_over_the_sample_budget_is_refused_before_any_read(
    client: Client, fleet: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WAMS_QUERY_MAX_SAMPLES = 5000  # 14 PMUs x 600 stored samples = 8,400
    monkeypatch.setattr("wams.historian.query.traces.stored_parts", _must_not_decode)
    ids = ",".join(str(p.pk) for p in fleet["pmus"])
    response = _get(client, fleet["token"], pmu=ids, quantity=["frequency_hz"] * 300, **_window(max_points="100000"))
    assert response.status_code == 400
    message = response.json()["error"]
    assert "8,400 samples" in message and "limit 5,000" in message and "start/end" in message


def _must_not_decode(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("an over-budget query decoded chunks")


def test_an_answer_over_the_value_budget_is_refused(client: Client, fleet: dict[str, Any], settings: Any) -> None:
    settings.WAMS_QUERY_MAX_VALUES = 10_000  # 14 PMUs x 3 quantities x 600 points = 25,200
    ids = ",".join(str(p.pk) for p in fleet["pmus"])
    quantities = "frequency_hz,rocof_hz_per_s,angle_deg"
    response = _get(client, fleet["token"], pmu=ids, quantity=quantities, **_window(max_points="1000"))
    assert response.status_code == 400
    assert "25,200 values" in response.json()["error"] and "max_points" in response.json()["error"]
    fits = _get(client, fleet["token"], pmu=ids, quantity=quantities, **_window(max_points="200"))
    assert fits.status_code == 200 and len(_body(fits)["traces"]) == 42


def test_too_many_different_quantities_are_refused(client: Client, fleet: dict[str, Any], settings: Any) -> None:
    settings.WAMS_QUERY_MAX_CHANNELS = 4
    quantities = [f"phasor_{k}_magnitude" for k in range(5)]
    response = _get(client, fleet["token"], pmu=str(fleet["pmus"][0].pk), quantity=quantities, **_window())
    assert response.status_code == 400 and "at most 4 different quantities" in response.json()["error"]


@pytest.mark.parametrize("window", [True, False])
def test_a_channel_the_pmu_does_not_have_is_a_400(client: Client, fleet: dict[str, Any], window: bool) -> None:
    pmu = fleet["pmus"][0].pk
    params = _window() if window else {}
    response = _get(client, fleet["token"], pmu=str(pmu), quantity="phasor_99_magnitude", **params)
    assert response.status_code == 400
    assert response.json()["error"] == f"PMU {pmu} has phasors 0-0: phasor_99_magnitude does not exist"
    analog = _get(client, fleet["token"], pmu=str(pmu), quantity="analog_0", **params)
    assert analog.status_code == 400 and "no analog channel" in analog.json()["error"]


def test_a_large_answer_is_streamed_and_equals_the_small_form(
    client: Client, fleet: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = ",".join(str(p.pk) for p in fleet["pmus"][:3])
    params = _window(max_points="100000", quantity="frequency_hz,angle_deg")
    whole = _get(client, fleet["token"], pmu=ids, **params)
    assert not whole.streaming
    monkeypatch.setattr(streaming, "STREAM_ABOVE_VALUES", 10)
    streamed = _get(client, fleet["token"], pmu=ids, **params)
    assert streamed.streaming and streamed["Content-Type"] == "application/json"
    assert _body(streamed) == whole.json()
    assert len(whole.json()["traces"]) == 6 and len(whole.json()["traces"][0]["t"]) == 600


def test_nan_values_stream_as_null() -> None:
    from wams.historian.query import Trace

    values = np.array([1.5, np.nan, np.inf])
    trace = Trace(3, "frequency_hz", np.array([1, 2, 3]), values, values, values, np.ones(3, dtype=np.int64))
    assert json.loads(streaming.trace_json_text(trace)) == json.loads(json.dumps(trace.to_json())) | {
        "mean": [1.5, None, None],
        "min": [1.5, None, None],
        "max": [1.5, None, None],
    }


def test_when_every_read_slot_is_taken_the_answer_is_503_with_retry_after(
    client: Client, fleet: dict[str, Any], settings: Any
) -> None:
    settings.WAMS_QUERY_WAIT_S = 0
    semaphore = budget._slots.semaphore()
    taken = 0
    while semaphore.acquire(blocking=False):
        taken += 1
    try:
        response = _get(client, fleet["token"], pmu=str(fleet["pmus"][0].pk), **_window())
    finally:
        for _ in range(taken):
            semaphore.release()
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "heavy reads are running" in response.json()["error"]
    assert _get(client, fleet["token"], pmu=str(fleet["pmus"][0].pk), **_window()).status_code == 200


def test_an_application_holds_a_bounded_number_of_subscriptions(
    client: Client, fleet: dict[str, Any], settings: Any
) -> None:
    settings.WAMS_WEBHOOK_ALLOW = ["127.0.0.1"]
    settings.WAMS_API_MAX_SUBSCRIPTIONS = 3
    body = {"kind": "event", "pmus": [fleet["pmus"][0].pk], "webhook_url": "http://127.0.0.1:9/hook"}
    answers = [
        client.post(
            "/api/v1/subscriptions", json.dumps(body), content_type="application/json", **bearer(fleet["token"])
        )
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 400]
    assert "at most 3 subscriptions" in answers[-1].json()["error"]
