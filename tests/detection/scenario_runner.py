"""Run a simulator scenario and feed the detection analytics as the live path does, snapshot by snapshot.

The IEEE 39-bus engine runs faster than real time; the demo PMU fleet is sampled at 30 frames/s
with the simulator's noise, every frame goes through the C37.118 codec (int16 and rectangular
PMUs included) and the decoded blocks become one aligned `Snapshot` per instant: frequency, ROCOF,
phasor 0 in per unit of the bus's phase-to-neutral base, its angle, and the magnitudes of the
current phasors (what the pdc holds for every present PMU). The fast detectors see each snapshot
once; the oscillation monitor sees the relative angles and frequencies (each minus the mean over
the PMUs, as the worker's channels are) one snapshot at a time.

The detector configuration follows the live plan's layout with the analytics' default thresholds:
corridors as angle pairs (warning at 80 % of the limit), control areas as islanding groups, and
each PMU's current channels mapped to it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wams.detection.analytics.fast import (
    AngleSeparationConfig,
    FastDetectorBank,
    FastDetectorConfig,
    IslandingConfig,
    LineTripConfig,
)
from wams.detection.analytics.incidents import CorrelatorConfig, GridTopology, IncidentCorrelator, IncidentReport, Unit
from wams.detection.analytics.oscillation import OscillationConfig, OscillationMonitor
from wams.detection.analytics.types import Detection, FloatArray, Snapshot
from wams.grid import demo
from wams.simulator.engine.realtime import RealTimeSimulator
from wams.simulator.fleet.demo import demo_fleet_spec
from wams.simulator.fleet.meter import StreamMeter
from wams.synchrophasor import DataFrame, decode_frame, encode_frame, make_fracsec

EPOCH_S = 1_700_000_000.0  # run time 0 is stamped at this UTC second
RATE_FPS = 30
CHUNK_S = 1.0  # simulated and measured this much at a time


@dataclass(frozen=True)
class PmuLayout:
    """The demo PMUs in snapshot order and what each measures."""

    buses: tuple[int, ...]  # (n_pmu,) bus of each PMU
    idcodes: tuple[int, ...]
    base_voltage_v: FloatArray  # (n_pmu,) phase-to-neutral base of each bus voltage
    current_pmu: tuple[int, ...]  # (n_current,) PMU index of each current channel
    current_lines: tuple[tuple[int, int], ...]  # (n_current,) the line each current channel measures

    @property
    def n_pmu(self) -> int:
        """Return the number of PMUs."""
        return len(self.buses)

    def index_of_bus(self, bus: int) -> int:
        """Return the snapshot index of the PMU at a bus (KeyError if none)."""
        return self.buses.index(bus)

    def pmus_measuring(self, line: tuple[int, int]) -> set[int]:
        """Return the PMU indices with a current channel on a line (either end)."""
        wanted = set(line)
        return {p for p, ln in zip(self.current_pmu, self.current_lines) if set(ln) == wanted}


def detector_config(layout: PmuLayout) -> FastDetectorConfig:
    """Return the fast detector configuration the live plan builds for the demo grid (default thresholds)."""
    index = {bus: i for i, bus in enumerate(layout.buses)}
    pairs = [(index[a], index[b]) for _name, a, b, _limit in demo.CORRIDORS if a in index and b in index]
    limits = np.array([limit for _name, a, b, limit in demo.CORRIDORS if a in index and b in index])
    area_of = demo.area_of_bus()
    areas: dict[str, list[int]] = {}
    for i, bus in enumerate(layout.buses):
        areas.setdefault(area_of[bus], []).append(i)
    return FastDetectorConfig(
        angle=AngleSeparationConfig(pairs=pairs, warning_deg=0.8 * limits, alarm_deg=limits),
        islanding=IslandingConfig(groups=[areas[a] for a in sorted(areas)]),
        line_trip=LineTripConfig(current_pmu_index=layout.current_pmu),
    )


def group_names(layout: PmuLayout) -> list[str]:
    """Return the control area of each islanding group, in the order of `detector_config`."""
    area_of = demo.area_of_bus()
    return sorted({area_of[bus] for bus in layout.buses})


@dataclass
class ScenarioRun:
    """What one simulated run produced: ground truth, detections, and noise-free traces at PMU buses."""

    events: list[tuple[str, float, dict[str, Any]]]  # (scenario name, run time s, params) as scheduled
    truth: dict[str, Any]  # the simulator's ground truth (events, modes, scenarios)
    layout: PmuLayout
    line_ids: list[str]  # every line of the case (ANDES idx) ...
    line_buses: list[tuple[int, int]]  # ... and the buses it joins, for topology questions
    time_s: FloatArray  # (n_time,) run time of each snapshot
    voltage_pu: FloatArray  # (n_time, n_pmu) noise-free bus voltage magnitude at each PMU
    frequency_hz: FloatArray  # (n_time, n_pmu) noise-free bus frequency at each PMU
    fast: list[Detection] = field(default_factory=list)
    oscillation: list[Detection] = field(default_factory=list)
    monitor: OscillationMonitor | None = None
    wall_s: float = 0.0
    restarts: int = 0
    snapshots: list[Snapshot] = field(default_factory=list)  # every measured snapshot, when kept

    def run_time(self, epoch_s: float) -> float:
        """Return the run time of an epoch instant."""
        return epoch_s - EPOCH_S

    def truth_events(self, kind: str, scenario: str | None = None) -> list[dict[str, Any]]:
        """Return the ground-truth events of a kind (and scenario), in time order."""
        return [
            e for e in self.truth["events"] if e["kind"] == kind and (scenario is None or e["scenario"] == scenario)
        ]

    def dominant_mode(self, reason: str) -> dict[str, Any]:
        """Return the dominant inter-area mode the simulator found by eigenvalues at a scenario's start."""
        (entry,) = [m for m in self.truth["modes"] if m["reason"] == reason]
        return dict(entry["dominant_inter_area"])


def demo_layout(meters: Sequence[StreamMeter]) -> PmuLayout:
    """Return the snapshot layout of the demo fleet's PMUs, in stream order."""
    buses: list[int] = []
    idcodes: list[int] = []
    base: list[float] = []
    current_pmu: list[int] = []
    current_lines: list[tuple[int, int]] = []
    for meter in meters:
        grid = meter.sim.grid
        for plan in meter.plans:
            p = len(buses)
            buses.append(plan.spec.bus)
            idcodes.append(plan.spec.idcode)
            base.append(float(grid.bus_nominal_kv[grid.bus_column(plan.spec.bus)]) * 1e3 / math.sqrt(3.0))
            for k in plan.i_line:
                current_pmu.append(p)
                a, b = grid.line_buses[int(k)]
                current_lines.append((int(a), int(b)))
    return PmuLayout(tuple(buses), tuple(idcodes), np.array(base), tuple(current_pmu), tuple(current_lines))


class SnapshotFeed:
    """Frames of every stream at one instant, through the codec, into one aligned snapshot."""

    def __init__(self, meters: Sequence[StreamMeter], layout: PmuLayout) -> None:
        """Keep the meters and the layout."""
        self.meters = list(meters)
        self.layout = layout

    def snapshot(self, sample: Any, row: int, utc_s: float) -> Snapshot:
        """Return the snapshot of instant `row` of a grid sample, as the pdc would assemble it."""
        soc = math.floor(utc_s + 1e-9)
        fraction = round((utc_s - soc) * self.meters[0].config.time_base)
        blocks = []
        for meter in self.meters:
            frame = DataFrame(
                idcode=meter.stream.idcode,
                soc=soc,
                fracsec=make_fracsec(fraction),
                pmus=meter.measure(sample, row),
                time_base=meter.config.time_base,
            )
            decoded = decode_frame(encode_frame(frame, meter.config), meter.config)
            assert isinstance(decoded, DataFrame)
            blocks.extend(decoded.pmus)
        voltage = np.array([b.phasors[0] for b in blocks])
        currents = np.array([abs(x) for b in blocks for x in b.phasors[1:]])
        return Snapshot(
            timestamp_s=float(soc + fraction / self.meters[0].config.time_base),
            frequency_hz=np.array([b.frequency_hz for b in blocks]),
            rocof_hz_per_s=np.array([b.rocof_hz_per_s for b in blocks]),
            voltage_magnitude_pu=np.abs(voltage) / self.layout.base_voltage_v,
            voltage_angle_deg=np.degrees(np.angle(voltage)),
            stat=np.array([b.stat for b in blocks], dtype=np.uint16),
            present=np.ones(len(blocks), dtype=bool),
            current_magnitude_a=currents,
            current_angle_deg=None,
        )


class RelativeChannels:
    """Turn snapshots into the oscillation monitor's channels: angles and frequencies relative to their mean."""

    def __init__(self, n_pmu: int) -> None:
        """Start with no angle history."""
        self.last_wrapped_deg: FloatArray | None = None
        self.unwrapped_deg = np.zeros(n_pmu)

    def values(self, snapshot: Snapshot) -> FloatArray:
        """Return (2 n_pmu,): relative unwrapped angles, then relative frequencies."""
        angle = np.asarray(snapshot.voltage_angle_deg, dtype=np.float64)
        if self.last_wrapped_deg is None:
            self.unwrapped_deg = angle.copy()
        else:
            self.unwrapped_deg = self.unwrapped_deg + (angle - self.last_wrapped_deg + 180.0) % 360.0 - 180.0
        self.last_wrapped_deg = angle
        frequency = np.asarray(snapshot.frequency_hz, dtype=np.float64)
        return np.concatenate([self.unwrapped_deg - self.unwrapped_deg.mean(), frequency - frequency.mean()])


def run_scenario(
    events: Sequence[tuple[str, float, dict[str, Any]]],
    duration_s: float,
    *,
    ambient_seed: int = 0,
    oscillation_config: OscillationConfig | None = None,
    keep_snapshots: bool = False,
) -> ScenarioRun:
    """Simulate `events` ((name, run time s, params)) over ambient load noise and run the detectors.

    The engine integrates `CHUNK_S` at a time; every reporting instant of the chunk becomes one
    snapshot fed to the fast detector bank and one row fed to the oscillation monitor.
    """
    started = time.perf_counter()
    sim = RealTimeSimulator("ieee39", epoch_utc_s=EPOCH_S)
    sim.schedule("ambient", 0.0, seed=ambient_seed)
    for name, at_s, params in events:
        sim.schedule(name, at_s, **params)
    meters = [StreamMeter(stream, sim) for stream in demo_fleet_spec(with_rtus=False).streams]
    layout = demo_layout(meters)
    feed = SnapshotFeed(meters, layout)
    bank = FastDetectorBank(layout.n_pmu, detector_config(layout))
    channels = RelativeChannels(layout.n_pmu)
    names = [f"{b}:angle_deg" for b in layout.buses] + [f"{b}:frequency_hz" for b in layout.buses]
    monitor = OscillationMonitor(
        float(RATE_FPS), 2 * layout.n_pmu, oscillation_config, list(range(layout.n_pmu)) * 2, names
    )
    columns = [sim.grid.bus_column(bus) for bus in layout.buses]
    n_time = round(duration_s * RATE_FPS)
    run_time_s = np.arange(n_time) / RATE_FPS
    voltage = np.zeros((n_time, layout.n_pmu))
    frequency = np.zeros((n_time, layout.n_pmu))
    line_ids = [str(line) for line in sim.grid.line_ids]
    line_buses = [(int(a), int(b)) for a, b in sim.grid.line_buses]
    run = ScenarioRun(list(events), {}, layout, line_ids, line_buses, run_time_s, voltage, frequency, monitor=monitor)
    per_chunk = round(CHUNK_S * RATE_FPS)
    for begin in range(0, n_time, per_chunk):
        stop = min(begin + per_chunk, n_time)
        sim.advance_to(run_time_s[stop - 1] + 2.0 / RATE_FPS)
        utc = EPOCH_S + run_time_s[begin:stop]
        sample = sim.sample_utc(utc)
        voltage[begin:stop] = np.abs(sample.snapshot.bus_voltage_pu[:, columns])
        frequency[begin:stop] = sample.snapshot.bus_frequency_pu[:, columns] * sim.grid.nominal_hz
        for row in range(stop - begin):
            snapshot = feed.snapshot(sample, row, float(utc[row]))
            run.fast.extend(bank.update(snapshot))
            if keep_snapshots:
                run.snapshots.append(snapshot)
            values = channels.values(snapshot)
            run.oscillation.extend(monitor.update_block(np.array([snapshot.timestamp_s]), values[None, :]))
    run.fast.extend(bank.open_detections())
    run.truth = sim.truth.data
    run.restarts = sim.restarts
    run.wall_s = time.perf_counter() - started
    return run


def harness_topology(run: ScenarioRun) -> GridTopology:
    """Return the correlator's view of the simulated grid: its lines, the PMUs' buses, the demo's units."""
    names = {frozenset(ends): name for name, ends in zip(run.line_ids, run.line_buses)}
    units = tuple(Unit(n, bus, mw, mva, h) for n, bus, mw, mva, h in demo.generation_units())
    return GridTopology(
        lines=tuple((name, a, b) for name, (a, b) in zip(run.line_ids, run.line_buses)),
        pmu_buses=tuple(run.layout.buses),
        current_lines=tuple(names.get(frozenset(ln)) for ln in run.layout.current_lines),
        substation_of_bus=demo.substation_of_bus(),
        units=units,
        nominal_hz=60.0,
        frequency_response_mw_per_hz=demo.FREQUENCY_RESPONSE_MW_PER_HZ,
    )


def replay_incidents(run: ScenarioRun, config: CorrelatorConfig | None = None) -> list[IncidentReport]:
    """Feed a run's snapshots and detections to the incident correlator as the live path does, in order.

    Fast detections reach the correlator with the snapshot that raised them; oscillation detections
    when their snapshot arrives (the worker's analyses run beside the pdc).
    """
    if not run.snapshots:
        raise ValueError("run the scenario with keep_snapshots=True")
    correlator = IncidentCorrelator(harness_topology(run), config)
    by_time: dict[float, list[Detection]] = {}
    for det in run.fast + run.oscillation:
        by_time.setdefault(det.detected_time_s, []).append(det)
    last_s = run.snapshots[-1].timestamp_s
    reports: list[IncidentReport] = []
    for snapshot in run.snapshots:
        found = by_time.pop(snapshot.timestamp_s, [])
        reports += correlator.update(snapshot, found)
    for _t, found in sorted(by_time.items()):  # the open conditions reported at the end
        if _t >= last_s:
            reports += correlator.update(None, found)
    reports += correlator.flush()
    return reports
