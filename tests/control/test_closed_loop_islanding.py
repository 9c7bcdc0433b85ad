"""Closed loop with the simulator: controlled islanding on angle separation.

The `angle_separation` scenario loses line 26-29, the parallel path out of the Seabrook pocket
(buses 28, 29, 38; unit GENROU_9), then ramps the unit's output by 20 MW/s while the rest of the
grid's load grows as much: the angle of Seabrook behind the New York tie (corridor 39-29) opens
until the pocket loses synchronism and slips poles. It is simulated twice, with the islanding
scheme disarmed and armed; the scheme watches the corridor on the simulator's PMU streams and,
through the simulator's IEC 104 RTUs, opens both breakers of the cut set (26-28, 26-29) and runs
the unit back to the pocket's load. Slow (two real-time simulator runs): `pytest -m slow tests/control`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_user
from tests.control.closedloop import Collector, SimulatorProcess, aligned, watch_streams
from wams.control.countermeasures import evaluate_snapshot, reset_runtime
from wams.control.iec104 import reset_pool
from wams.control.models import Command, Scheme, SchemeAction, SchemeStage
from wams.control.services import arm_scheme, poll_device_states, set_dry_run
from wams.control.services.states import read_device_state
from wams.grid.models import ControllableDevice, Corridor, Organisation

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.django_db(transaction=True)]

SCENARIO_AT_S = 6.0  # simulated seconds after the simulator's start; the ramp starts 2 s later
RUN_S = 56.0  # the unit slips near 41 s disarmed; the ramp ends at 43 s
CORRIDOR = "New York tie to Seabrook"  # PMUs at bus 39 (grid side) and bus 29 (pocket side)
WATCHED_BUSES = (39, 29, 16)
STAGE_DEG = 40.0  # about 13 deg below where the pocket slips (offline runs: 53 deg at 1300 MW)
STAGE_MS = 300
CUT_BREAKERS = ("Breaker 26-28 Scobie", "Breaker 26-29 Scobie")
UNIT = "Seabrook unit set point"
RUNBACK_MW = 500.0  # the pocket's load is 490 MW
F0 = 60.0


def prepare_grid() -> dict[str, Any]:
    """Load the demo on free ports, keep the watched PMU streams (TCP path only) and return what to read."""
    streams, watched = watch_streams(WATCHED_BUSES)
    return {"streams": streams, "pmu_of_bus": {pmu.bus.number: pmu.pk for pmu in watched}}


def make_scheme() -> Scheme:
    """One stage: corridor angle above STAGE_DEG for STAGE_MS opens the cut set and runs the unit back."""
    scheme = Scheme.objects.create(
        name="Seabrook controlled islanding",
        owner=Organisation.objects.get(code="netso"),
        quantity="angle_separation_deg",
        comparison="above",
        corridor=Corridor.objects.get(name=CORRIDOR),
        reset_ms=60_000,
    )
    SchemeStage.objects.create(scheme=scheme, number=1, threshold=STAGE_DEG, duration_ms=STAGE_MS)
    for name in CUT_BREAKERS:
        device = ControllableDevice.objects.get(name=name)
        SchemeAction.objects.create(scheme=scheme, stage=1, device=device, action="open")
    unit = ControllableDevice.objects.get(name=UNIT)
    SchemeAction.objects.create(scheme=scheme, stage=1, device=unit, action="set_point", value=RUNBACK_MW)
    for action in scheme.actions.all():
        action.full_clean()
    return scheme


def start_simulator(var_dir: Path, attempts: int = 3) -> tuple[dict[str, Any], SimulatorProcess]:
    """Place the demo on free ports and start the simulator there; retry on fresh ports if one was taken meanwhile."""
    for attempt in range(attempts):
        setup = prepare_grid()
        sim = SimulatorProcess(var_dir / f"try{attempt}", [f"angle_separation@{SCENARIO_AT_S}"], duration_s=RUN_S + 30)
        try:
            sim.wait_ready()
            return setup, sim
        except RuntimeError:
            sim.stop()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def run_ramp(var_dir: Path, scheme: Scheme) -> dict[str, Any]:
    """Simulate the ramp once; return angles and frequencies at the watched PMUs, commands and breaker states."""
    setup, sim = start_simulator(var_dir)
    runtime = reset_runtime(inline=False)
    runtime.reload()
    reset_pool()
    try:
        # Measurement time of simulated t = 0, from the run's ground truth.
        epoch_s = float(json.loads(Path(sim.inventory["truth"]).read_text())["epoch_utc_s"])
        poll_device_states()  # opens the RTU links, as the periodic poll keeps them open in service
        collector = Collector(setup["streams"], evaluate_snapshot)
        time.sleep(RUN_S)
        recording = collector.stop()
        runtime.shutdown()  # every command sent and logged
        breakers = {name: read_device_state(ControllableDevice.objects.get(name=name), 3.0) for name in CUT_BREAKERS}
    finally:
        sim.stop()
        runtime.shutdown()
        reset_pool()
    ids = [setup["pmu_of_bus"][bus] for bus in WATCHED_BUSES]
    t_a, angles = aligned(recording.angles_deg, ids)
    t_f, freqs = aligned(recording.samples, ids)
    return {
        "epoch_s": epoch_s,
        "t_angle": np.array(t_a),
        "angle": {bus: np.array(a) for bus, a in zip(WATCHED_BUSES, angles)},
        "t_f": np.array(t_f),
        "f": {bus: np.array(f) for bus, f in zip(WATCHED_BUSES, freqs)},
        "commands": list(Command.objects.filter(scheme=scheme).select_related("device").order_by("pk")),
        "decisions": recording.decisions,
        "breakers": breakers,
    }


def separation(run: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Return (times, unwrapped angle of bus 29 ahead of bus 39 in degrees)."""
    a29, a39 = run["angle"][29], run["angle"][39]
    ok = np.isfinite(a29) & np.isfinite(a39)
    return run["t_angle"][ok], np.degrees(np.unwrap(np.radians(a29[ok] - a39[ok])))


def test_armed_islanding_opens_the_cut_set_before_the_pocket_slips_and_both_islands_hold_frequency(
    tmp_path: Path, capsys: Any, django_user_model: Any
):
    prepare_grid()
    scheme = make_scheme()
    disarmed = run_ramp(tmp_path / "disarmed", scheme)
    operator = make_user(django_user_model, "operator", Organisation.objects.get(code="netso"))
    assert set_dry_run(scheme.pk, operator, False, "closed-loop test").ok
    assert arm_scheme(scheme.pk, operator, "closed-loop test").ok
    armed = run_ramp(tmp_path / "armed", scheme)

    # Disarmed: the corridor angle keeps opening, the pocket slips poles against the grid.
    t0, sep0 = separation(disarmed)
    slipped = np.flatnonzero(sep0 > 180.0)
    assert slipped.size, f"disarmed: no loss of synchronism (largest separation {sep0.max():.1f} deg)"
    t_slip_s = t0[slipped[0]] - disarmed["epoch_s"]  # simulated seconds
    f0_29, f0_39 = disarmed["f"][29], disarmed["f"][39]
    late0 = disarmed["t_f"] > disarmed["t_f"][-1] - 8.0
    slips = float(sep0[-1] / 360.0)

    # Armed: the stage fired once, on the corridor; its three commands completed.
    trigger = [d for d in armed["decisions"] if d.mode == "execute"]
    assert len(trigger) == 1, armed["decisions"]
    t_trip = trigger[0].trigger_time_s
    t_trip_s = t_trip - armed["epoch_s"]
    commands = armed["commands"]
    latency_ms = [(c.sent_at - c.detected_at).total_seconds() * 1000 for c in commands]
    completed_ms = [(c.finished_at - c.detected_at).total_seconds() * 1000 for c in commands]
    t1, sep1 = separation(armed)
    before_trip = t1 <= t_trip
    peak_tied = float(sep1[before_trip].max())
    tf = armed["t_f"]
    after = tf >= t_trip
    f1_29, f1_39, f1_16 = armed["f"][29][after], armed["f"][39][after], armed["f"][16][after]
    late1 = tf[after] > tf[-1] - 8.0
    with capsys.disabled():
        print(
            f"\nclosed loop islanding: disarmed: separation passed 180 deg at t={t_slip_s:.1f} s (simulated), "
            f"{slips:.1f} slip cycles by the end; last 8 s f29 {f0_29[late0].min():.3f}..."
            f"{f0_29[late0].max():.3f} Hz, f39 {f0_39[late0].min():.3f}...{f0_39[late0].max():.3f} Hz\n"
            f"  armed: stage at {trigger[0].quantities} (t={t_trip_s:.1f} s, {t_slip_s - t_trip_s:.1f} s before the disarmed slip); peak separation while tied "
            f"{peak_tied:.1f} deg; after: f29 {f1_29.min():.3f}...{f1_29.max():.3f} Hz (last 8 s "
            f"{f1_29[late1].mean():.3f}, ptp {np.ptp(f1_29[late1]) * 1000:.0f} mHz), f39 {f1_39.min():.3f}..."
            f"{f1_39.max():.3f} Hz, f16 {f1_16.min():.3f}...{f1_16.max():.3f} Hz; breakers {armed['breakers']}; "
            f"commands {[(c.device.name, c.action, c.state) for c in commands]}; detection to sent "
            f"{', '.join(f'{ms:.0f}' for ms in latency_ms)} ms, to completed {', '.join(f'{ms:.0f}' for ms in completed_ms)} ms"
        )
    assert disarmed["commands"] == []
    assert np.abs(f0_29[late0] - F0).max() > 1.0, "disarmed: the slipping pocket's frequency stayed near nominal"
    assert sorted((c.device.name, c.action, c.state) for c in commands) == sorted(
        [(name, "open", "completed") for name in CUT_BREAKERS] + [(UNIT, "set_point", "completed")]
    )
    assert armed["breakers"] == dict.fromkeys(CUT_BREAKERS, "open")
    assert t_trip_s < t_slip_s - 2.0, "the stage fired too close to where the pocket slipped disarmed"
    assert STAGE_DEG < peak_tied < 90.0, f"peak separation while tied {peak_tied:.1f} deg"
    for name, f in (("pocket (29)", f1_29), ("grid (39)", f1_39), ("grid (16)", f1_16)):
        assert np.abs(f - F0).max() < 1.0, f"{name} left 60 +- 1 Hz: {f.min():.3f}...{f.max():.3f} Hz"
    assert np.ptp(f1_29[late1]) < 0.1, "the pocket island still swings"  # no slipping, settled
    assert abs(f1_29[late1].mean() - f1_39[late1].mean()) > 0.05  # two islands, each on its own frequency
