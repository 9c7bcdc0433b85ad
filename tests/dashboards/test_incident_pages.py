"""Incident list, incident page, acknowledge and shelve, the events page's default and the scenario page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import make_user
from tests.dashboards.conftest import make_event
from wams.detection.models import Event, Incident
from wams.grid.models import Bus
from wams.simulator.models import SimulatorRequest

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC)


def make_incident(events: list[Event], started_at: dt.datetime = T0, **fields: Any) -> Incident:
    """Create an incident grouping symptom events."""
    values: dict[str, Any] = {
        "kind": Incident.Kind.FAULT,
        "severity": "alarm",
        "summary": "Fault near Alpha, cleared in 100 ms",
        "started_at": started_at,
        "detected_at": started_at + dt.timedelta(milliseconds=120),
        "location_method": "largest_voltage_dip",
        "figures": {"min_voltage_pu": 0.312, "duration_ms": 100.0, "faulted_area_pmus": 3},
        "correlation_key": f"test:{started_at.timestamp()}:{fields.get('kind', 'fault')}:{len(events)}",
    }
    values.update(fields)
    incident = Incident.objects.create(**values)
    Event.objects.filter(pk__in=[e.pk for e in events]).update(incident=incident)
    return incident


def test_incident_list_shows_visible_incidents_unacknowledged_and_active_first(client, scenario) -> None:
    own = make_event([scenario.a1], dedup_key="a1")
    private = make_event([scenario.b1], dedup_key="b1")
    ended = make_incident([own], started_at=T0 + dt.timedelta(minutes=5), state=Incident.State.ENDED,
                          ended_at=T0 + dt.timedelta(minutes=6), kind=Incident.Kind.LINE_TRIP)  # fmt: skip
    acked = make_incident([], started_at=T0 + dt.timedelta(minutes=9), substation=scenario.sub_a,
                          kind=Incident.Kind.LOAD_STEP, acknowledged_at=T0 + dt.timedelta(minutes=10))  # fmt: skip
    active = make_incident([make_event([scenario.a2], dedup_key="a2")], started_at=T0)
    hidden = make_incident([private], kind=Incident.Kind.GENERATOR_TRIP)
    client.force_login(scenario.operator_a)
    response = client.get(reverse("dashboards:incidents") + "?state=all")
    assert response.status_code == 200
    rows = [row["incident_id"] for row in response.context["page_obj"]]
    # Unacknowledged active, then unacknowledged ended, then acknowledged; the other organisation's is absent.
    assert rows == [active.pk, ended.pk, acked.pk]
    assert hidden.pk not in rows
    body = response.content.decode()
    assert "Min voltage (pu) 0.312" in body
    # Filters: kind and state.
    by_kind = client.get(reverse("dashboards:incidents") + "?state=all&kind=line_trip").context["page_obj"]
    assert [row["incident_id"] for row in by_kind] == [ended.pk]
    by_state = client.get(reverse("dashboards:incidents") + "?state=ended").context["page_obj"]
    assert [row["incident_id"] for row in by_state] == [ended.pk]
    unacked = client.get(reverse("dashboards:incidents") + "?state=unacknowledged").context["page_obj"]
    assert [row["incident_id"] for row in unacked] == [active.pk, ended.pk]
    current = client.get(reverse("dashboards:incidents")).context["page_obj"]  # default: what needs attention
    assert [row["incident_id"] for row in current] == [active.pk, ended.pk, acked.pk]
    assert client.get(reverse("dashboards:incident", args=[hidden.pk])).status_code == 404


def test_incident_page_shows_location_figures_evidence_and_plots(client, scenario, fake_history) -> None:
    sag = make_event([scenario.a1], dedup_key="sag", kind="voltage_sag", summary="Voltage sag at A1")
    rocof = make_event([scenario.a2], dedup_key="rocof", kind="rocof", summary="ROCOF at A2")
    bus = Bus.objects.create(number=16, name="Bus 16", substation=scenario.sub_a, base_kv=345.0)
    incident = make_incident([sag, rocof], bus=bus, bus_number=16, substation=scenario.sub_a)
    client.force_login(scenario.operator_a)
    response = client.get(reverse("dashboards:incident", args=[incident.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Fault - bus 16, ALPHA" in body
    assert "largest voltage dip" in body
    assert "Min voltage (pu)" in body and "0.312" in body and "Duration (ms)" in body
    for event in (sag, rocof):
        assert reverse("dashboards:event", args=[event.pk]) in body
    # Plots before and after from the event page's window figures, over both PMUs.
    assert [item["id"] for item in response.context["window_figures"]] == [
        "figure-frequency_hz",
        "figure-rocof_hz_per_s",
        "figure-magnitude_pu",
    ]
    assert sorted(fake_history.calls[0]["pmus"]) == sorted([scenario.a1.pk, scenario.a2.pk])
    assert fake_history.calls[0]["start"] < incident.started_at < fake_history.calls[0]["end"]
    assert 'id="acknowledge"' in body or 'id="acknowledge-unavailable"' in body


def test_an_operator_acknowledges_and_shelves_an_incident_and_a_viewer_may_not(client, scenario) -> None:
    from wams.detection import services

    if not hasattr(services, "acknowledge_incident"):
        pytest.skip("alarms on incidents are not there yet")
    incident = make_incident([make_event([scenario.a1])])
    url = reverse("dashboards:incident_acknowledge", args=[incident.pk])
    client.force_login(scenario.viewer_a)
    assert 'id="acknowledge"' not in client.get(reverse("dashboards:incident", args=[incident.pk])).content.decode()
    assert client.post(url, {"comment": "seen"}).status_code == 403
    client.force_login(scenario.operator_b)  # another organisation: as if it did not exist
    assert client.post(url, {"comment": "seen"}).status_code == 404
    client.force_login(scenario.operator_a)
    response = client.post(url, {"comment": "crew sent"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None and incident.acknowledged_by == scenario.operator_a
    again = client.post(url, HTTP_ACCEPT="application/json")
    assert again.status_code == 409 and "already acknowledged" in again.json()["error"]
    page = client.get(reverse("dashboards:incident", args=[incident.pk])).content.decode()
    assert "crew sent" in page and 'id="acknowledge"' not in page
    shelve = reverse("dashboards:incident_shelve", args=[incident.pk])
    assert client.post(shelve, {"hours": "2", "reason": ""}).status_code == 302  # refused: no reason
    incident.refresh_from_db()
    assert incident.shelved_until is None
    client.post(shelve, {"hours": "2", "reason": "maintenance"})
    incident.refresh_from_db()
    assert incident.shelved_until is not None and incident.shelve_reason == "maintenance"
    # A shelved incident leaves what needs attention.
    current = client.get(reverse("dashboards:incidents")).context["page_obj"]
    assert incident.pk not in [row["incident_id"] for row in current]


def test_events_page_shows_unacknowledged_and_active_first_and_links_the_incident(client, scenario) -> None:
    acked_cleared = make_event([scenario.a1], dedup_key="old", summary="cleared and acknowledged",
                               state=Event.State.CLEARED, acknowledged_at=T0, started_at=T0)  # fmt: skip
    unacked_cleared = make_event([scenario.a1], dedup_key="gone", summary="cleared but unacknowledged",
                                 state=Event.State.CLEARED, started_at=T0 + dt.timedelta(minutes=2))  # fmt: skip
    acked_active = make_event([scenario.a1], dedup_key="ack", summary="acknowledged active",
                              state=Event.State.ACKNOWLEDGED, acknowledged_at=T0, started_at=T0 + dt.timedelta(minutes=3))  # fmt: skip
    raised = make_event([scenario.a2], dedup_key="new", summary="raised now", started_at=T0 + dt.timedelta(minutes=1))
    incident = make_incident([raised, unacked_cleared])
    client.force_login(scenario.operator_a)
    response = client.get(reverse("dashboards:events"))
    order = [event.pk for event in response.context["page_obj"]]
    assert order == [raised.pk, unacked_cleared.pk, acked_active.pk]
    assert acked_cleared.pk not in order
    body = response.content.decode()
    assert f'href="{reverse("dashboards:incident", args=[incident.pk])}"' in body
    everything = [event.pk for event in client.get(reverse("dashboards:events") + "?state=all").context["page_obj"]]
    assert acked_cleared.pk in everything


def test_the_overview_folds_an_incidents_symptoms_into_one_row(client, scenario) -> None:
    symptoms = [make_event([scenario.a1], dedup_key=f"s{i}") for i in range(5)]
    loose = make_event([scenario.a2], dedup_key="loose", summary="loose alarm")
    incident = make_incident(symptoms, substation=scenario.sub_a)
    client.force_login(scenario.operator_a)
    config = client.get(reverse("dashboards:overview")).context["config"]
    assert [row["incident_id"] for row in config["incidents"]] == [incident.pk]
    assert [alarm["event_id"] for alarm in config["alarms"]] == [loose.pk]
    highlight = config["incidents"][0]["highlight"]
    assert highlight["points"][0]["id"] == scenario.sub_a.pk
    assert config["incidents"][0]["url"] == reverse("dashboards:incident", args=[incident.pk])


def test_every_page_navigates_to_incidents_and_operators_to_control(client, scenario, django_user_model) -> None:
    pages = ["overview", "phasors", "pmus", "events", "history", "incidents"]
    client.force_login(scenario.operator_a)
    for name in pages:
        body = client.get(reverse(f"dashboards:{name}")).content.decode()
        assert f'href="{reverse("dashboards:incidents")}"' in body, name
        assert f'href="{reverse("control:devices")}"' in body, name
        assert f'href="{reverse("dashboards:scenarios")}"' not in body, name
    control = client.get(reverse("control:devices")).content.decode()
    assert control.count(f'href="{reverse("control:devices")}"') == 1
    client.force_login(scenario.viewer_a)
    body = client.get(reverse("dashboards:overview")).content.decode()
    assert f'href="{reverse("control:devices")}"' not in body
    admin = make_user(django_user_model, "admin", scenario.org_a, username="admin_a")
    client.force_login(admin)
    body = client.get(reverse("dashboards:overview")).content.decode()
    assert f'href="{reverse("dashboards:scenarios")}"' in body and f'href="{reverse("control:devices")}"' in body


def test_an_admin_starts_a_scenario_and_others_may_not(client, scenario, django_user_model) -> None:
    url = reverse("dashboards:scenarios")
    client.force_login(scenario.operator_a)
    assert client.get(url).status_code == 403
    assert client.post(url, {"scenario": "fault"}).status_code == 403
    admin = make_user(django_user_model, "admin", scenario.org_a, username="admin_b")
    client.force_login(admin)
    page = client.get(url)
    assert page.status_code == 200
    names = [item["name"] for item in page.context["catalogue"]]
    assert "fault" in names and "generator_trip" in names and "ambient" not in names
    fault = next(item for item in page.context["catalogue"] if item["name"] == "fault")
    assert [p["name"] for p in fault["params"]] == ["bus", "duration_s", "trip_line"]
    assert 'name="fault__duration_s"' in page.content.decode()
    response = client.post(
        url, {"scenario": "fault", "fault__bus": "16", "fault__duration_s": "0.1", "fault__trip_line": ""}
    )
    assert response.status_code == 302
    queued = SimulatorRequest.objects.get()
    assert (queued.action, queued.scenario, queued.params) == ("scenario", "fault", {"bus": 16, "duration_s": 0.1})
    assert queued.status == SimulatorRequest.Status.PENDING
    after = client.get(response["Location"]).content.decode()
    assert "queued as request" in after and reverse("dashboards:incidents") in after
    bad = client.post(url, {"scenario": "fault", "fault__duration_s": "long"})
    assert bad.status_code == 400 and "must be a number" in bad.content.decode()
    assert client.post(url, {"scenario": "fault", "fault__speed": "2"}).status_code == 400
    assert client.post(url, {"scenario": "meteor"}).status_code == 400
    assert SimulatorRequest.objects.count() == 1
