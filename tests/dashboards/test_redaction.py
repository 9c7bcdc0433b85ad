"""No cross-organisation leaks: a DSO user walks every page, API endpoint and socket of the demo grid.

The demo's DSO (pvdso) owns Manchester and Ludlow and sees two TSO PMUs shared with it. Events that
also touch TSO PMUs it may not see are shown with a generic summary and plain numbers; nothing of
the TSO's other PMUs, streams or substations appears anywhere, refusals included.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.api.conftest import bearer, make_application
from wams import live
from wams.api.models import Subscription
from wams.control.models import Command
from wams.control.services import CommandRequest, execute_command
from wams.detection.models import Event
from wams.detection.services import event_payload, raise_event
from wams.grid.models import ControllableDevice, Organisation, Pmu, Stream, Substation
from wams.grid.services import user_visibility
from wams.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@dataclass
class Demo:
    dso: Any
    tso_operator: Any
    hidden_names: list[str]
    mixed: Event  # a visible shared TSO PMU, a hidden TSO PMU
    dso_and_tso: Event  # the DSO's own PMU and a hidden TSO PMU
    tso_only: Event
    tso_substation_only: Event
    tso_command: Command
    tso_device: ControllableDevice
    dso_device: ControllableDevice
    token: str


def _pmu(code_bus: str) -> Pmu:
    return Pmu.objects.get(station_name=code_bus)


@pytest.fixture
def demo() -> Demo:
    call_command("load_demo", "--password", "demo-pass-1")
    dso = get_user_model().objects.get(username="dso-operator")
    tso_operator = get_user_model().objects.get(username="operator")
    seen = user_visibility(dso)
    hidden_pmus = Pmu.objects.exclude(pk__in=seen.pmu_ids)
    hidden_names = sorted(
        set(hidden_pmus.values_list("station_name", flat=True))
        | set(Stream.objects.exclude(pmus__in=list(seen.pmu_ids)).values_list("name", flat=True))
        | set(Substation.objects.exclude(pk__in=seen.substation_ids).values_list("name", flat=True))
        | set(ControllableDevice.objects.exclude(owner__code="pvdso").values_list("name", flat=True))
    )
    shared, own = _pmu("PLVAL-B39"), _pmu("MNCHS-B4")
    assert shared.pk in seen.pmu_ids and own.pk in seen.pmu_ids
    hidden_a, hidden_b = _pmu("LGMTN-B1"), _pmu("MLSTN-B6")
    assert hidden_a.pk not in seen.pmu_ids and hidden_b.pk not in seen.pmu_ids
    mixed, _ = raise_event(
        kind="under_frequency",
        severity="alarm",
        summary="Under frequency at PLVAL-B39, LGMTN-B1 (Long Mountain): 59.70 Hz",
        started_at=T0,
        pmu_ids=[shared.pk, hidden_a.pk],
        quantities={"frequency_nadir_hz": 59.7, "source_pmu": "LGMTN-B1", "mode_shape": {"LGMTN-B1": 1.0}},
    )
    dso_and_tso, _ = raise_event(
        kind="oscillation",
        severity="warning",
        summary="Oscillation 0.62 Hz: MNCHS-B4 swings against MLSTN-B6 (Millstone)",
        started_at=T0 + dt.timedelta(seconds=5),
        pmu_ids=[own.pk, hidden_b.pk],
        quantities={"frequency_hz": 0.62, "swing_against": "MLSTN-B6 at Millstone"},
    )
    tso_only, _ = raise_event(
        kind="voltage_sag",
        severity="alarm",
        summary="Voltage sag at LGMTN-B1 (Long Mountain)",
        started_at=T0 + dt.timedelta(seconds=10),
        pmu_ids=[hidden_a.pk],
    )
    tso_substation_only = Event.objects.create(
        kind="fault_record",
        severity="info",
        summary="Fault record at Haddam",
        started_at=T0 + dt.timedelta(seconds=15),
        dedup_key="fault_record:haddam",
        source="fault_record",
    )
    tso_substation_only.substations.add(Substation.objects.get(code="HADDM"))
    tso_device = ControllableDevice.objects.get(name="Load block Southington")
    dso_device = ControllableDevice.objects.get(name="Load block Manchester A")
    selected = execute_command(
        CommandRequest(action="shed", device_id=tso_device.pk, user=tso_operator, step="select", reason="test")
    )
    assert selected.state == "selected", selected.detail
    application, token = make_application(Organisation.objects.get(code="pvdso"), name="DSO tools")
    Subscription.objects.create(application=application, kind="event", webhook_url="https://hooks.example.org/x")
    return Demo(
        dso=dso,
        tso_operator=tso_operator,
        hidden_names=hidden_names,
        mixed=mixed,
        dso_and_tso=dso_and_tso,
        tso_only=tso_only,
        tso_substation_only=tso_substation_only,
        tso_command=Command.objects.get(pk=selected.command_id),
        tso_device=tso_device,
        dso_device=dso_device,
        token=token,
    )


def leaks(body: str, names: list[str]) -> list[str]:
    """Return the hidden names found in a response body."""
    return [name for name in names if name in body]


def page_urls(demo: Demo) -> list[str]:
    """Every dashboard and control page a DSO operator can open, with the ids it may see (and some it may not)."""
    seen = user_visibility(demo.dso)
    urls = [
        reverse("dashboards:overview"),
        reverse("dashboards:phasors"),
        reverse("dashboards:pmus"),
        reverse("dashboards:events") + "?state=all",
        reverse("dashboards:events"),
        reverse("dashboards:history"),
        reverse("dashboards:history") + f"?pmus={min(seen.pmu_ids)}",
        reverse("control:devices"),
        reverse("control:audit"),
        reverse("control:device", args=[demo.dso_device.pk]),
        reverse("control:device_state", args=[demo.dso_device.pk]),
        reverse("control:device", args=[demo.tso_device.pk]),
        reverse("control:device_state", args=[demo.tso_device.pk]),
        reverse("control:command", args=[demo.tso_command.pk]),
    ]
    urls += [reverse("dashboards:pmu", args=[pk]) for pk in Pmu.objects.values_list("pk", flat=True)]
    urls += [reverse("dashboards:substation", args=[pk]) for pk in Substation.objects.values_list("pk", flat=True)]
    urls += [reverse("dashboards:event", args=[pk]) for pk in Event.objects.values_list("pk", flat=True)]
    return urls


def test_no_page_shows_a_tso_name_to_the_dso_operator(client: Client, demo: Demo) -> None:
    client.force_login(demo.dso)
    statuses = {}
    for url in page_urls(demo):
        response = client.get(url)
        assert response.status_code < 500, url
        statuses[url] = response.status_code
        body = response.content.decode()
        assert not leaks(body, demo.hidden_names), (url, leaks(body, demo.hidden_names))
    # The shared event is listed and opened with its visible PMU, the TSO-only ones are not found.
    assert statuses[reverse("dashboards:event", args=[demo.mixed.pk])] == 200
    assert statuses[reverse("dashboards:event", args=[demo.tso_only.pk])] == 404
    assert statuses[reverse("dashboards:event", args=[demo.tso_substation_only.pk])] == 404
    listed = client.get(reverse("dashboards:events") + "?state=all").content.decode()
    assert "PLVAL-B39" in listed and "MNCHS-B4" in listed and "Under frequency event" in listed
    detail = client.get(reverse("dashboards:event", args=[demo.mixed.pk])).content.decode()
    assert "frequency_nadir_hz" in detail and "source_pmu" not in detail


def test_the_tso_operator_still_sees_the_full_event(client: Client, demo: Demo) -> None:
    client.force_login(demo.tso_operator)
    detail = client.get(reverse("dashboards:event", args=[demo.mixed.pk])).content.decode()
    assert "LGMTN-B1 (Long Mountain)" in detail and "source_pmu" in detail


def test_no_api_answer_shows_a_tso_name_to_a_dso_application(client: Client, demo: Demo) -> None:
    seen = user_visibility(demo.dso)
    subscription = Subscription.objects.get(application__name="DSO tools")
    hidden_stream = Stream.objects.get(name="PMU Long Mountain 1")
    urls = [
        "/api/v1/pmus",
        "/api/v1/events",
        "/api/v1/events?state=raised",
        f"/api/v1/data?pmu={min(seen.pmu_ids)}",
        f"/api/v1/data?pmu={_pmu('LGMTN-B1').pk}",
        "/api/v1/subscriptions",
        f"/api/v1/subscriptions/{subscription.pk}",
        f"/api/v1/streams/{hidden_stream.pk}/enabled",
    ]
    for url in urls:
        response = client.get(url, **bearer(demo.token))
        assert response.status_code < 500, url
        assert not leaks(response.content.decode(), demo.hidden_names), url
    switched = client.post(
        f"/api/v1/streams/{hidden_stream.pk}/enabled",
        json.dumps({"enabled": False}),
        content_type="application/json",
        **bearer(demo.token),
    )
    assert switched.status_code == 404 and not leaks(switched.content.decode(), demo.hidden_names)
    events = client.get("/api/v1/events", **bearer(demo.token)).json()["events"]
    by_id = {e["id"]: e for e in events}
    assert set(by_id) == {demo.mixed.pk, demo.dso_and_tso.pk}
    assert by_id[demo.mixed.pk]["pmu_ids"] == [_pmu("PLVAL-B39").pk]
    assert by_id[demo.mixed.pk]["quantities"] == {"frequency_nadir_hz": 59.7}


def test_refusing_a_tso_device_or_command_reads_like_a_missing_one(client: Client, demo: Demo) -> None:
    client.force_login(demo.dso)
    missing_id = 999_999
    pairs = [
        ("control:select_device", demo.tso_device.pk, {"action": "shed"}),
        ("control:execute", demo.tso_command.pk, {"reason": "try"}),
        ("control:cancel", demo.tso_command.pk, {"reason": "try"}),
    ]
    for name, foreign_id, data in pairs:
        foreign = client.post(reverse(name, args=[foreign_id]), data)
        missing = client.post(reverse(name, args=[missing_id]), data)
        assert foreign.status_code == missing.status_code == 404, name
        assert foreign.json() == missing.json(), name
        assert not leaks(foreign.content.decode(), demo.hidden_names), name
    assert client.post(reverse("control:execute", args=[demo.tso_command.pk]), {"reason": "x"}).json() == {
        "state": "refused",
        "detail": "No such device.",
    }
    demo.tso_command.refresh_from_db()
    assert demo.tso_command.state == "selected"  # the TSO's selection is untouched


def test_alarm_messages_on_the_dso_socket_name_no_tso_device(demo: Demo) -> None:
    async def body() -> None:
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/?topics=alarms")
        communicator.scope["user"] = demo.dso
        connected, _ = await communicator.connect()
        assert connected
        hello = await communicator.receive_json_from()
        assert not leaks(json.dumps(hello), demo.hidden_names)
        for event in (demo.tso_only, demo.mixed, demo.dso_and_tso):
            await live.apublish(live.GROUP_ALARMS, live.EVENT_ALARM, await _payload(event))
        received = [await communicator.receive_json_from(timeout=2) for _ in range(2)]
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        assert {m["event_id"] for m in received} == {demo.mixed.pk, demo.dso_and_tso.pk}
        for message in received:
            assert not leaks(json.dumps(message), demo.hidden_names), message
            assert message["redacted"] is True

    async_to_sync(body)()


async def _payload(event: Event) -> dict[str, Any]:
    from channels.db import database_sync_to_async

    return await database_sync_to_async(lambda: event_payload(Event.objects.get(pk=event.pk)))()
