"""Live incidents: a fault's flood of per-PMU events becomes one located incident, listed by the command."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from tests.detection.helpers import angles_for
from wams.detection.live import LiveDetection, load_plan
from wams.detection.models import Event, Incident
from wams.grid.loaders import load_demo_topology
from wams.grid.models import Pmu
from wams.pdc import hooks
from wams.pdc.livefeed import SnapshotView

RATE_HZ = 30.0
EPOCH_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FAULT_S = 5.0


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
            snapshot=None,  # type: ignore[arg-type]  # the detectors read the arrays only
        )
        for k in range(t.size)
    ]


@pytest.mark.django_db(transaction=True)
def test_a_fault_through_the_live_path_is_one_incident_at_west_walpole_with_its_events() -> None:
    load_demo_topology()
    pmus = list(Pmu.objects.select_related("bus").order_by("pk"))
    detector = LiveDetection()
    detector.loaded = load_plan(tuple(p.pk for p in pmus))
    hooks.register_snapshot_handler(detector)

    async def run() -> None:
        for view in fault_views(pmus):
            hooks.dispatch(view)

    try:
        asyncio.run(run())
        assert detector.drain(30.0)
    finally:
        hooks.unregister_snapshot_handler(detector)
        detector.stop()
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
