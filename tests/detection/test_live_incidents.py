"""Live incidents: a fault's flood of per-PMU events becomes one located incident, listed by the command."""

from __future__ import annotations

import asyncio
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.management import call_command

from tests.detection.helpers import angles_for
from wams.detection.live import LiveDetection, load_plan
from wams.detection.live.plan import DetectorPlan
from wams.detection.models import Event, Incident
from wams.grid.loaders import load_demo_topology
from wams.grid.models import Channel, Line, Pmu
from wams.pdc import hooks
from wams.pdc.align import Snapshot
from wams.pdc.livefeed import SnapshotView

RATE_HZ = 30.0
EPOCH_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FAULT_S = 5.0
TRIP_S = 5.0


def fault_views(pmus: list[Pmu], seconds: float = 14.0) -> list[SnapshotView]:
    """Return snapshots of a 100 ms bolted fault at bus 16: deepest there, shallower with distance."""
    ids = np.array([p.pk for p in pmus], dtype=np.int64)
    buses = [p.bus.number if p.bus else 0 for p in pmus]
    depth = np.array([0.99 if b == 16 else 0.6 if b in (19, 22, 23, 14, 3) else 0.3 for b in buses])
    n = len(pmus)
    t = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    rng = np.random.default_rng(5)
    frequency = 60.0 + rng.normal(0.0, 0.002, (t.size, n))
    voltage = 1.0 + rng.normal(0.0, 0.001, (t.size, n))
    during = (t >= FAULT_S) & (t < FAULT_S + 0.1)
    voltage[during] *= 1.0 - depth
    frequency[(t >= FAULT_S) & (t < FAULT_S + 0.4)] += 0.3  # the phase jump's frequency blip
    angle = angles_for(frequency, rate_hz=RATE_HZ)
    return [
        SnapshotView(
            timestamp_s=EPOCH_S + t[k],
            pmu_ids=ids,
            present=np.ones(n, dtype=bool),
            frequency_hz=frequency[k],
            rocof_hz_per_s=np.zeros(n),
            voltage_magnitude_pu=voltage[k],
            voltage_angle_deg=angle[k],
            stat=np.zeros(n, dtype=np.uint16),
            snapshot=Snapshot(round((EPOCH_S + t[k]) * 1e6), {}, (), 0.0, 0.0),  # no decoded blocks: arrays only
        )
        for k in range(t.size)
    ]


def feed(plan: DetectorPlan, views: list[SnapshotView]) -> None:
    """Dispatch the views to live detection with this plan, as the pdc does, and wait for its database work."""
    detector = LiveDetection()
    detector.loaded = plan
    hooks.register_snapshot_handler(detector)

    async def run() -> None:
        for view in views:
            hooks.dispatch(view)

    try:
        asyncio.run(run())
        assert detector.drain(30.0)
    finally:
        hooks.unregister_snapshot_handler(detector)
        detector.stop()


@pytest.mark.django_db(transaction=True)
def test_a_fault_through_the_live_path_is_one_incident_at_west_walpole_with_its_events() -> None:
    load_demo_topology()
    pmus = list(Pmu.objects.select_related("bus").order_by("pk"))
    feed(load_plan(tuple(p.pk for p in pmus)), fault_views(pmus))
    assert Event.objects.count() >= 5  # the flood: a sag at every PMU, frequency excursions
    (incident,) = Incident.objects.all()
    assert incident.kind == "fault"
    assert incident.bus is not None and incident.bus.number == 16
    assert incident.substation is not None and incident.substation.code == "WWALP"
    assert incident.figures["duration_ms"] == pytest.approx(100, abs=70)
    assert set(Event.objects.values_list("incident", flat=True)) == {incident.pk}  # every symptom folded in
    out = io.StringIO()
    call_command("incidents", "--since", "2026-01-01T00:00:00Z", "--json", stdout=out)
    (listed,) = json.loads(out.getvalue())
    assert listed["kind"] == "fault"
    assert listed["location"] == {"bus": 16, "substation": "WWALP", "line": None, "method": "largest_voltage_dip"}
    assert sorted(listed["events"]) == sorted(Event.objects.values_list("pk", flat=True))
    assert listed["started_at"].startswith("2026-01-01T00:00:05")
    assert listed["figures"]["voltage_min_pu"] < 0.1


def line_trip_views(pmus: list[Pmu], line: str, seconds: float = 14.0) -> list[SnapshotView]:
    """Return snapshots with every PMU's phasors (voltage, then its line currents); `line` opens at TRIP_S.

    The currents of the opened line fall to the charging current; the flow moves onto the others and
    the angles at the line's ends step a few degrees apart, as the simulator's line trips do.
    """
    ids = np.array([p.pk for p in pmus], dtype=np.int64)
    n = len(pmus)
    t = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    rng = np.random.default_rng(9)
    frequency = 60.0 + rng.normal(0.0, 0.002, (t.size, n))
    angle = angles_for(frequency, rate_hz=RATE_HZ)
    ends = set(Line.objects.filter(name=line).values_list("from_bus__number", "to_bus__number").get())
    step = np.array(
        [3.0 if p.bus and p.bus.number == min(ends) else -3.0 if p.bus and p.bus.number in ends else 0.0 for p in pmus]
    )
    after = t >= TRIP_S
    angle[after] += step
    channels = {
        p.pk: list(p.channels.filter(kind=Channel.Kind.PHASOR).order_by("order").values_list("measures", "line__name"))
        for p in pmus
    }
    base = {p.pk: p.base_voltage_v() for p in pmus}
    views = []
    for k in range(t.size):
        samples = {}
        for i, p in enumerate(pmus):
            phasors = []
            for measures, name in channels[p.pk]:
                if measures == Channel.Measures.BUS_VOLTAGE:
                    phasors.append(base[p.pk] * np.exp(1j * np.radians(angle[k, i])))
                else:
                    amps = 2.0 if (after[k] and name == line) else 600.0 * (1.1 if after[k] else 1.0)
                    phasors.append(amps * np.exp(1j * np.radians(angle[k, i] - 20.0)))
            samples[int(p.pk)] = SimpleNamespace(
                stat=0,
                frequency_hz=frequency[k, i],
                rocof_hz_per_s=0.0,
                phasors=np.array(phasors, dtype=np.complex128),
                analogs=np.zeros(0),
                digitals=[],
            )
        views.append(
            SnapshotView(
                timestamp_s=EPOCH_S + t[k],
                pmu_ids=ids,
                present=np.ones(n, dtype=bool),
                frequency_hz=frequency[k],
                rocof_hz_per_s=np.zeros(n),
                voltage_magnitude_pu=np.ones(n),
                voltage_angle_deg=angle[k],
                stat=np.zeros(n, dtype=np.uint16),
                snapshot=Snapshot(round((EPOCH_S + t[k]) * 1e6), samples, (), 0.0, 0.0),
            )
        )
    return views


@pytest.mark.django_db(transaction=True)
def test_a_line_trip_through_the_live_path_is_located_at_its_line_by_the_current_channels() -> None:
    """The live plan maps every line-current phasor of the grid model; the opened line's currents locate it."""
    load_demo_topology()
    pmus = list(Pmu.objects.select_related("bus").order_by("pk"))
    plan = load_plan(tuple(p.pk for p in pmus))
    measuring = Channel.objects.filter(line__name="Line 16-17", measures=Channel.Measures.LINE_CURRENT).count()
    assert measuring >= 1 and "Line 16-17" in plan.topology.current_lines
    assert len(plan.currents) == Channel.objects.filter(measures=Channel.Measures.LINE_CURRENT).count()
    feed(plan, line_trip_views(pmus, "Line 16-17"))
    trips = Event.objects.filter(kind="line_trip")
    assert trips.exists()
    (incident,) = Incident.objects.all()
    assert incident.kind == "line_trip"
    assert incident.line is not None and incident.line.name == "Line 16-17"
    assert incident.location_method == "current_trip"
    assert incident.figures["opened_lines"] == ["Line 16-17"]
