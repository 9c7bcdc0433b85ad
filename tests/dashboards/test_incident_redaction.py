"""A DSO user sees no TSO names on the incident pages, the overview banner or the incident socket messages."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from tests.dashboards.test_redaction import T0, Demo, demo, leaks  # noqa: F401 - the fixture
from wams import live
from wams.detection.models import Event, Incident
from wams.detection.services import incident_payload
from wams.grid.models import Bus, Line
from wams.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


def _incident(events: list[Event], key: str, bus_number: int, **fields: object) -> Incident:
    bus = Bus.objects.select_related("substation").get(number=bus_number)
    incident = Incident.objects.create(
        kind=fields.pop("kind", Incident.Kind.FAULT),
        severity="alarm",
        summary=str(fields.pop("summary", f"Fault near {bus.substation.name} ({bus.substation.code})")),
        started_at=T0,
        detected_at=T0 + dt.timedelta(milliseconds=150),
        bus=bus,
        substation=bus.substation,
        bus_number=bus_number,
        location_method="largest_voltage_dip",
        figures={"min_voltage_pu": 0.3, "source_pmu": "LGMTN-B1", "duration_ms": 100.0},
        correlation_key=key,
        **fields,
    )
    Event.objects.filter(pk__in=[e.pk for e in events]).update(incident=incident)
    return incident


def test_incident_pages_show_no_tso_name_to_the_dso_operator(client: Client, demo: Demo) -> None:  # noqa: F811
    mixed = _incident([demo.mixed, demo.tso_only], "mixed", bus_number=1)  # at Long Mountain (TSO)
    tso_only = _incident([demo.tso_only], "tso", bus_number=1, summary="Fault at LGMTN-B1 (Long Mountain)")
    line = Line.objects.filter(from_bus__number=1).first()
    assert line is not None
    mixed.line = line
    mixed.line_name = line.name
    mixed.save()
    client.force_login(demo.dso)
    urls = [
        reverse("dashboards:incidents"),
        reverse("dashboards:incidents") + "?state=all",
        reverse("dashboards:incident", args=[mixed.pk]),
        reverse("dashboards:incident", args=[tso_only.pk]),
        reverse("dashboards:overview"),
        reverse("dashboards:events") + "?state=all",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, url
        body = response.content.decode()
        assert not leaks(body, demo.hidden_names), (url, leaks(body, demo.hidden_names))
        assert "LGMTN" not in body and line.name not in body, url
    assert client.get(reverse("dashboards:incident", args=[tso_only.pk])).status_code == 404
    page = client.get(reverse("dashboards:incident", args=[mixed.pk]))
    body = page.content.decode()
    assert "with devices of other organisations" in body and "not located" in body
    assert "source_pmu" not in body and "Min voltage (pu)" in body
    # Only the symptom the DSO may see is listed as evidence.
    assert reverse("dashboards:event", args=[demo.mixed.pk]) in body
    assert reverse("dashboards:event", args=[demo.tso_only.pk]) not in body
    overview = client.get(reverse("dashboards:overview")).context["config"]
    assert [row["incident_id"] for row in overview["incidents"]] == [mixed.pk]
    assert overview["incidents"][0]["highlight"] is None
    # The TSO operator sees it whole.
    client.force_login(demo.tso_operator)
    full = client.get(reverse("dashboards:incident", args=[mixed.pk])).content.decode()
    assert "Long Mountain" in full and line.name in full


def test_incident_messages_on_the_dso_socket_name_no_tso_device(demo: Demo) -> None:  # noqa: F811
    mixed = _incident([demo.mixed, demo.tso_only], "mixed", bus_number=1)
    tso_only = _incident([demo.tso_only], "tso", bus_number=1)

    async def body() -> None:
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/?topics=alarms")
        communicator.scope["user"] = demo.dso
        connected, _ = await communicator.connect()
        assert connected
        await communicator.receive_json_from()  # hello
        for incident in (tso_only, mixed):
            payload = await database_sync_to_async(lambda i=incident: incident_payload(Incident.objects.get(pk=i.pk)))()
            await live.apublish(getattr(live, "GROUP_INCIDENTS", live.GROUP_ALARMS),
                                getattr(live, "EVENT_INCIDENT", live.EVENT_ALARM), payload)  # fmt: skip
        message = await communicator.receive_json_from(timeout=5)
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        assert message["type"] == "incident" and message["incident_id"] == mixed.pk
        assert message["redacted"] is True and message["highlight"] is None
        assert not leaks(json.dumps(message), demo.hidden_names) and "LGMTN" not in json.dumps(message)

    async_to_sync(body)()
