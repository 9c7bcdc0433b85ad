"""Oscillation events of the monitoring workers become incidents: one per oscillation, or the ringdown of a disturbance."""

from __future__ import annotations

import datetime as dt

import pytest

from wams.detection.incidents import record_incident, record_oscillation
from wams.detection.models import Event, Incident
from wams.detection.services import clear_event, raise_event
from wams.grid.loaders import load_demo_topology
from wams.grid.models import Pmu

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def oscillation_event(at: dt.datetime, frequency_hz: float, damping_pct: float, key: str) -> Event:
    pmus = list(Pmu.objects.filter(bus__number__in=(39, 16, 29)).order_by("pk"))
    strongest = next(p for p in pmus if p.bus is not None and p.bus.number == 29)
    event, _ = raise_event(
        kind="poorly_damped_oscillation",
        severity="alarm",
        summary=f"Poorly damped oscillation at {frequency_hz} Hz",
        started_at=at,
        pmu_ids=[p.pk for p in pmus],
        quantities={
            "frequency_hz": frequency_hz,
            "damping_pct": damping_pct,
            "amplitude": 0.4,
            "amplitude_channel": f"{strongest.station_name}:angle_deg",
            "analysis": "ringdown",
        },
        dedup_key=key,
        source="worker",
    )
    return event


@pytest.mark.django_db
def test_a_poorly_damped_mode_is_one_oscillation_incident_at_its_strongest_pmu_and_ends_with_it() -> None:
    load_demo_topology()
    first = oscillation_event(T0, 0.67, 2.1, "osc:a")
    incident = record_oscillation(first, raised=True)
    assert incident is not None and incident.kind == "oscillation"
    assert incident.bus is not None and incident.bus.number == 29
    assert incident.figures["mode_frequency_hz"] == pytest.approx(0.67)
    assert incident.location_method == "mode_shape"
    # A second mode of the same ringdown, less damped: the same incident, its headline now.
    second = oscillation_event(T0 + dt.timedelta(seconds=3), 0.97, 1.5, "osc:b")
    again = record_oscillation(second, raised=True)
    assert again is not None and again.pk == incident.pk
    assert Incident.objects.count() == 1
    again.refresh_from_db()
    assert again.figures["mode_frequency_hz"] == pytest.approx(0.97) and again.figures["modes_fitted"] == 2
    assert set(Event.objects.values_list("incident", flat=True)) == {incident.pk}
    clear_event("osc:a", ended_at=T0 + dt.timedelta(seconds=40))
    record_oscillation(Event.objects.get(dedup_key="osc:a"), raised=False)
    assert Incident.objects.get().state == Incident.State.ACTIVE  # one of its modes still rings
    clear_event("osc:b", ended_at=T0 + dt.timedelta(seconds=50))
    record_oscillation(Event.objects.get(dedup_key="osc:b"), raised=False)
    assert Incident.objects.get().state == Incident.State.ENDED


@pytest.mark.django_db
def test_the_ringdown_of_a_fault_is_evidence_of_the_fault_not_an_incident_of_its_own() -> None:
    load_demo_topology()
    fault = record_incident(
        correlation_key="live:1",
        change="opened",
        kind="fault",
        severity="critical",
        started_at=T0,
        detected_at=T0 + dt.timedelta(seconds=0.4),
        bus_number=16,
        figures={"voltage_min_pu": 0.01},
    )
    ringdown = oscillation_event(T0 + dt.timedelta(seconds=1), 0.96, 4.0, "osc:c")
    host = record_oscillation(ringdown, raised=True)
    assert host is not None and host.pk == fault.pk
    assert Incident.objects.count() == 1
    fault.refresh_from_db()
    assert fault.figures["ringdown"]["mode_frequency_hz"] == pytest.approx(0.96)
    assert fault.figures["voltage_min_pu"] == 0.01
    assert Event.objects.get(dedup_key="osc:c").incident_id == fault.pk


@pytest.mark.django_db
def test_an_update_after_the_end_reactivates_the_incident_without_a_second_alarm() -> None:
    """A line trip that ended, then turned into the angle separation it began, is one active incident again."""
    load_demo_topology()
    common = {"correlation_key": "live:7", "severity": "warning", "started_at": T0, "detected_at": T0}
    record_incident(change="opened", kind="line_trip", line_name="Line 26-29", **common)
    record_incident(change="ended", kind="line_trip", ended_at=T0 + dt.timedelta(seconds=5), **common)
    assert Incident.objects.get().state == Incident.State.ENDED
    record_incident(change="updated", kind="angle_separation", bus_number=29, **common)
    incident = Incident.objects.get()
    assert (incident.kind, incident.state, incident.ended_at) == ("angle_separation", Incident.State.ACTIVE, None)
    assert incident.detected_at == T0  # named when the line opened
    assert incident.raise_count == 1  # one alarm: the update raises nothing again


@pytest.mark.django_db
def test_a_spectral_line_fitted_to_the_swings_after_a_line_trip_is_the_line_trips_evidence() -> None:
    load_demo_topology()
    trip = record_incident(
        correlation_key="live:2",
        change="opened",
        kind="line_trip",
        severity="alarm",
        started_at=T0,
        detected_at=T0 + dt.timedelta(seconds=0.3),
        line_name="Line 3-18",
    )
    event, _ = raise_event(
        kind="forced_oscillation",
        severity="warning",
        summary="Forced oscillation at 0.261 Hz",
        started_at=T0 - dt.timedelta(seconds=0.2),  # the forced test's onset lands on the step itself
        quantities={"frequency_hz": 0.261, "amplitude": 0.05},
        dedup_key="osc:forced",
        source="worker",
    )
    assert record_oscillation(event, raised=True) == trip
    assert Incident.objects.count() == 1
    assert Event.objects.get(dedup_key="osc:forced").incident_id == trip.pk


@pytest.mark.django_db
def test_a_forced_line_seen_while_a_mode_rings_is_part_of_that_oscillation() -> None:
    load_demo_topology()
    ringing = record_oscillation(oscillation_event(T0, 0.6, 0.8, "osc:ring"), raised=True)
    assert ringing is not None
    line, _ = raise_event(
        kind="forced_oscillation",
        severity="warning",
        summary="Forced oscillation at 0.6 Hz",
        started_at=T0 + dt.timedelta(seconds=2),
        quantities={"frequency_hz": 0.6, "amplitude": 0.1},
        dedup_key="osc:line",
        source="worker",
    )
    assert record_oscillation(line, raised=True) == ringing
    (incident,) = Incident.objects.all()
    assert incident.kind == "oscillation" and incident.figures["forced_line"]["mode_frequency_hz"] == pytest.approx(0.6)


@pytest.mark.django_db
def test_swings_while_an_angle_separation_is_active_are_its_evidence() -> None:
    load_demo_topology()
    separation = record_incident(
        correlation_key="live:3",
        change="opened",
        kind="angle_separation",
        severity="alarm",
        started_at=T0,
        detected_at=T0,
        bus_number=29,
    )
    late = oscillation_event(T0 + dt.timedelta(seconds=25), 0.3, 1.0, "osc:slip")  # past the ringdown window
    assert record_oscillation(late, raised=True) == separation
    assert Incident.objects.count() == 1
