"""Name a group of symptoms: what happened (kind), where (against the topology) and its key figures.

Measured on the kept snapshots around the first symptom's start t0, at the closing time tc:
- a deep voltage dip (>= `fault_dip_fraction` of the pre-event voltage) is a fault, located at the
  PMU with the largest dip; its duration is the time that PMU stayed below 90 % of its pre-event value;
- frequency groups drifting apart (the islanding detector, or a gap in the measured frequencies)
  after lines opened is an islanding, the island being the smaller group;
- a grid-wide frequency change (the grid ROCOF detector or a mean change of `frequency_event_hz`) is a
  generator trip when the frequency falls and an online unit near the angle step can explain the
  power lost, otherwise a load step; the power comes from the settled drop and the system's
  frequency response, refined once the frequency has settled;
- a line trip without a frequency event is located at the tripped current channel's line or, lacking
  one, at the line between the two sides of the angle step pattern;
- slow symptoms (angle separation building up, voltages sagging without a step) are an angle
  separation or a voltage decline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wams.detection.analytics.incidents.history import Window
from wams.detection.analytics.incidents.topology import GridTopology, Unit
from wams.detection.analytics.incidents.types import IncidentKind, Location, LocationMethod
from wams.detection.analytics.types import Detection, DetectionKind, Severity

K = DetectionKind
FREQUENCY_KINDS = {K.ROCOF, K.UNDER_FREQUENCY, K.OVER_FREQUENCY}
VOLTAGE_KINDS = {K.VOLTAGE_SAG, K.VOLTAGE_SWELL}


@dataclass(frozen=True)
class ClassifyConfig:
    """Thresholds of the classification (calibrated on the simulator's scenarios)."""

    fault_dip_fraction: float = 0.25  # dip / pre-event voltage that only a fault gives
    frequency_event_hz: float = 0.04  # mean frequency change of a generation/load imbalance
    quiet_frequency_hz: float = 0.02  # a settled change below this is a swing, not an imbalance
    rocof_frequency_hz: float = 0.01  # with a grid ROCOF, a change this large when the incident opens is one
    angle_step_deg: float = 3.0  # a step of the relative angles this large means the topology changed
    island_drift_deg: float = 20.0  # angle drift between two PMU groups that are no longer in step
    island_frequency_hz: float = 0.05  # ... with their frequencies this far apart
    early_fraction: float = 0.5  # share of the settled frequency change reached when an incident opens
    unit_search_hops: int = 2  # how far from the angle step a tripped unit may sit
    unit_match_low: float = 0.6  # estimated MW / unit output accepted as that unit's trip ...
    unit_match_high: float = 1.6  # ... up to this
    settle_from_s: float = 6.0  # after t0: the settled frequency is averaged from here ...
    settle_to_s: float = 10.0  # ... to here


@dataclass
class Verdict:
    """A classification: kind, location, figures, severity."""

    kind: IncidentKind
    location: Location
    figures: dict[str, object] = field(default_factory=dict)
    severity: str = "warning"
    unit: Unit | None = None
    started_s: float | None = None  # the measured onset, when it is earlier than the first symptom


def _round(value: float, digits: int = 3) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


def _kinds(symptoms: Sequence[Detection]) -> set[DetectionKind]:
    return {d.kind for d in symptoms}


def _worst(symptoms: Sequence[Detection]) -> str:
    worst = max((d.severity for d in symptoms), default=Severity.WARNING)
    return worst.label


class Measures:
    """What the window says around t0: pre-event levels, dips, frequency change, angle steps."""

    def __init__(self, window: Window, t0_s: float, tc_s: float) -> None:
        """Measure once; every figure below reads from here."""
        self.window = window
        self.t0_s = t0_s
        self.tc_s = tc_s
        base_from = max(t0_s - 1.2, float(window.time_s[0]))
        base_to = t0_s - 0.05
        if base_to <= base_from:
            base_to = base_from + 1e-3
        self.v_base = window.mean(window.voltage_pu, base_from, base_to)
        self.f_base = window.mean(window.frequency_hz, base_from, base_to)
        self.a_base = window.mean(window.angle_deg, base_from, base_to)
        dip_rows = window.rows(t0_s - 0.05, min(tc_s, t0_s + 0.6) + 1e-6)
        with np.errstate(all="ignore"):
            self.v_min = np.nanmin(np.where(dip_rows[:, None], window.voltage_pu, np.nan), axis=0)
        self.dip_fraction = (self.v_base - self.v_min) / self.v_base
        self.v_now = window.mean(window.voltage_pu, tc_s - 0.2, tc_s + 1e-6)
        self.f_now = window.mean(window.frequency_hz, tc_s - 0.3, tc_s + 1e-6)
        self.a_now = window.mean(window.angle_deg, tc_s - 0.3, tc_s + 1e-6)
        step = self.a_now - self.a_base
        with np.errstate(all="ignore"):
            # Against the mean step of the PMUs measured both before and now (the reference's own step is 0).
            self.angle_step_deg = step - (np.nanmean(step) if np.isfinite(step).any() else 0.0)
        with np.errstate(all="ignore"):
            self.df_hz = float(np.nanmean(self.f_now) - np.nanmean(self.f_base))

    def deepest(self) -> int | None:
        """Return the PMU with the largest relative dip."""
        dips = np.nan_to_num(self.dip_fraction, nan=-np.inf)
        return int(np.argmax(dips)) if np.isfinite(dips).any() else None

    def max_dip(self) -> float:
        """Return the largest relative dip (0 when none measured)."""
        finite = self.dip_fraction[np.isfinite(self.dip_fraction)]
        return float(finite.max()) if finite.size else 0.0

    def below_ms(self, pmu: int, fraction: float = 0.9) -> float:
        """Return how long (ms) a PMU stayed below `fraction` of its pre-event voltage after t0."""
        w = self.window
        rows = w.rows(self.t0_s - 0.05, self.tc_s + 1e-6)
        low = rows & (w.voltage_pu[:, pmu] < fraction * self.v_base[pmu])
        if not low.any():
            return 0.0
        frame_s = float(np.median(np.diff(w.time_s))) if w.time_s.size > 1 else 0.0
        return 1000.0 * float(low.sum()) * frame_s

    def settled_df_hz(self, config: ClassifyConfig) -> float | None:
        """Return the mean frequency change averaged over the settling interval, if the window reaches it."""
        w = self.window
        start, stop = self.t0_s + config.settle_from_s, self.t0_s + config.settle_to_s
        if w.time_s[-1] < stop - 0.1:
            return None
        with np.errstate(all="ignore"):
            value = float(np.nanmean(w.mean(w.frequency_hz, start, stop)) - np.nanmean(self.f_base))
        return value if math.isfinite(value) else None


def onset(window: Window, t0_s: float) -> float:
    """Return the start of the disturbance: the largest frame-to-frame change in the second before t0_s.

    A detector with a pickup or a slope window starts its condition late; angles and voltages move
    on the very frame the topology or the power balance changed.
    """
    rows = np.flatnonzero(window.rows(t0_s - 1.0, t0_s + 0.05))
    if rows.size < 4 or rows[0] == 0:
        return t0_s
    w = window
    change = np.nansum(np.abs(np.diff(w.angle_deg[rows[0] - 1 : rows[-1] + 1], axis=0)), axis=1) + 10.0 * np.nansum(
        np.abs(np.diff(w.voltage_pu[rows[0] - 1 : rows[-1] + 1], axis=0)), axis=1
    )
    k = int(np.argmax(change))
    if change[k] >= 5.0 * float(np.median(change)) and w.time_s[rows[k]] < t0_s:
        return float(w.time_s[rows[k]])
    return t0_s


def classify(
    symptoms: Sequence[Detection],
    window: Window | None,
    topology: GridTopology,
    t0_s: float,
    tc_s: float,
    config: ClassifyConfig | None = None,
) -> Verdict:
    """Return the kind, location and figures of one group of symptoms."""
    config = config or ClassifyConfig()
    if window is None or window.time_s.size < 3:
        return _fallback(symptoms, topology)
    m = Measures(window, onset(window, t0_s), tc_s)
    verdict = _classify(symptoms, m, topology, config)
    verdict.started_s = m.t0_s
    return verdict


def _classify(symptoms: Sequence[Detection], m: Measures, topology: GridTopology, config: ClassifyConfig) -> Verdict:
    """Return the verdict of a measured group of symptoms."""
    kinds = _kinds(symptoms)
    island = _islanding(symptoms, m, topology, config)
    if island is not None:
        return island
    if m.max_dip() >= config.fault_dip_fraction:
        return _fault(symptoms, m, topology)
    grid_rocof = any(d.kind is K.ROCOF and len(d.pmu_indices) >= 3 for d in symptoms)
    steps = np.abs(m.angle_step_deg[np.isfinite(m.angle_step_deg)])
    stepped = bool(steps.size and steps.max() >= config.angle_step_deg)
    if abs(m.df_hz) >= config.frequency_event_hz or (grid_rocof and abs(m.df_hz) >= config.rocof_frequency_hz):
        return _imbalance(symptoms, m, topology, config)
    if K.LINE_TRIP in kinds:
        return _line_trip(symptoms, m, topology)
    if K.ANGLE_SEPARATION in kinds:
        return _angle_separation(symptoms, topology)
    if stepped and K.VOLTAGE_SAG not in kinds:
        return _line_trip(symptoms, m, topology)
    if K.VOLTAGE_SAG in kinds:
        return _voltage_decline(symptoms, m, topology)
    return _fallback(symptoms, topology)


def _fault(symptoms: Sequence[Detection], m: Measures, topology: GridTopology) -> Verdict:
    """Locate a fault at the largest dip; figures: minimum voltage, duration, the PMUs that dipped most."""
    pmu = m.deepest()
    assert pmu is not None
    bus = topology.pmu_buses[pmu]
    dip = m.max_dip()
    area = [i for i in range(len(m.dip_fraction)) if np.isfinite(m.dip_fraction[i]) and m.dip_fraction[i] >= 0.5 * dip]
    area_buses = sorted(topology.buses_of(area))
    recovered = bool(np.isfinite(m.v_now[pmu]) and m.v_now[pmu] >= 0.9 * m.v_base[pmu])
    figures: dict[str, object] = {
        "voltage_min_pu": _round(float(m.v_min[pmu])),
        "voltage_before_pu": _round(float(m.v_base[pmu])),
        "duration_ms": round(m.below_ms(pmu)),
        "faulted_area_buses": area_buses,
        "faulted_area_substations": sorted({s for s in (topology.substation(b) for b in area_buses) if s}),
        "recovered": recovered,
        "pmus_dipped": len(area),
    }
    severity = "critical" if float(m.v_min[pmu]) < 0.5 else "alarm"
    return Verdict(IncidentKind.FAULT, Location(bus=bus, method=LocationMethod.VOLTAGE_DIP), figures, severity)


def _drift_groups(m: Measures, config: ClassifyConfig) -> tuple[list[int], list[int]] | None:
    """Split the PMUs into the two groups whose angles drifted apart (best 1-D two-means split).

    Return (island, rest) - the island the smaller group - when the groups drifted at least
    `island_drift_deg` apart and their frequencies differ by `island_frequency_hz`, else None.
    """
    known = [i for i in range(m.angle_step_deg.size) if np.isfinite(m.angle_step_deg[i]) and np.isfinite(m.f_now[i])]
    if len(known) < 2:
        return None
    order = sorted(known, key=lambda i: m.angle_step_deg[i])
    values = np.array([m.angle_step_deg[i] for i in order])
    best_k, best_cost = 1, np.inf
    for k in range(1, len(order)):
        cost = values[:k].var() * k + values[k:].var() * (len(order) - k)
        if cost < best_cost:
            best_k, best_cost = k, cost
    low, high = order[:best_k], order[best_k:]
    drift = values[best_k:].mean() - values[:best_k].mean()
    f_gap = abs(float(np.mean(m.f_now[high]) - np.mean(m.f_now[low])))
    if drift < config.island_drift_deg or f_gap < config.island_frequency_hz:
        return None
    return (low, high) if len(low) < len(high) else (high, low)


def island_drift(m: Measures, config: ClassifyConfig) -> tuple[frozenset[int], float] | None:
    """Return the drifting island's PMUs and the drift (deg) between the groups, if two groups drifted apart."""
    groups = _drift_groups(m, config)
    if groups is None:
        return None
    island, rest = groups
    with np.errstate(all="ignore"):
        drift = abs(float(np.nanmean(m.angle_step_deg[island]) - np.nanmean(m.angle_step_deg[rest])))
    return frozenset(island), drift


def islanding_verdict(
    symptoms: Sequence[Detection], m: Measures, topology: GridTopology, config: ClassifyConfig
) -> Verdict | None:
    """Return an islanding verdict of these symptoms and measures, or None (see `_islanding`)."""
    return _islanding(symptoms, m, topology, config)


def _islanding(
    symptoms: Sequence[Detection], m: Measures, topology: GridTopology, config: ClassifyConfig
) -> Verdict | None:
    """Return an islanding verdict when frequency groups separate after lines opened."""
    kinds = _kinds(symptoms)
    groups = _drift_groups(m, config)
    detected = K.ISLANDING in kinds
    if groups is None:
        if not detected:
            return None
        island_det = next(d for d in symptoms if d.kind is K.ISLANDING)
        island = list(island_det.pmu_indices)
        rest = [i for i in range(m.f_now.size) if i not in island]
    else:
        if not detected and (K.LINE_TRIP not in kinds or m.max_dip() >= config.fault_dip_fraction):
            return None
        island, rest = groups
    opened = _tripped_lines(symptoms, topology)
    island_buses = set(topology.buses_of(island))
    rest_buses = set(topology.buses_of(rest))
    # The opened line between the two groups (each bus taken to the group of its nearest PMU) locates it.
    seeds = dict.fromkeys(island_buses, 1) | dict.fromkeys(rest_buses, 0)
    label = topology.nearest_pmu_side(seeds)
    boundary = [
        name
        for name in opened
        if (ends := topology.line_buses(name)) is not None and label.get(ends[0]) != label.get(ends[1])
    ]
    line = boundary[0] if boundary else (opened[0] if opened else None)
    bus = None
    if line is not None:
        ends = topology.line_buses(line)
        if ends is not None:
            bus = next((b for b in ends if label.get(b) == 1), ends[0])
    elif island_buses:
        bus = sorted(island_buses)[0]
    with np.errstate(all="ignore"):
        island_hz = float(np.nanmean(m.f_now[island])) if island else float("nan")
        rest_hz = float(np.nanmean(m.f_now[rest])) if rest else float("nan")
    figures: dict[str, object] = {
        "island_pmu_buses": sorted(island_buses),
        "island_frequency_hz": _round(island_hz, 4),
        "rest_frequency_hz": _round(rest_hz, 4),
        "frequency_divergence_hz": _round(island_hz - rest_hz, 4),
        "rest_pmu_buses": sorted(rest_buses),
        "opened_lines": list(opened),
        "groups_from": "measured frequencies" if groups is not None else "islanding detector",
    }
    method = LocationMethod.CURRENT_TRIP if line else LocationMethod.FREQUENCY_GROUPS
    return Verdict(IncidentKind.ISLANDING, Location(bus=bus, line=line, method=method), figures, "critical")


def _tripped_lines(symptoms: Sequence[Detection], topology: GridTopology) -> list[str]:
    """Return the lines whose current channels fell to (almost) zero, in order of detection."""
    out: list[str] = []
    for d in symptoms:
        if d.kind is not K.LINE_TRIP or "current_channel" not in d.quantities:
            continue
        ratio = d.quantities.get("current_ratio_min", d.quantities.get("current_ratio", 1.0))
        channel = int(d.quantities["current_channel"])
        if ratio is not None and ratio < 0.2 and 0 <= channel < len(topology.current_lines):
            name = topology.current_lines[channel]
            if name and name not in out:
                out.append(name)
    return out


def _angle_side(m: Measures, sign: float) -> int | None:
    """Return the PMU with the largest angle step of a sign (+1 advanced, -1 retarded)."""
    steps = np.nan_to_num(sign * m.angle_step_deg, nan=-np.inf)
    return int(np.argmax(steps)) if np.isfinite(steps).any() and steps.max() > 0 else None


def _units_near(topology: GridTopology, bus: int | None, hops: int) -> list[tuple[Unit, int]]:
    """Return the units within `hops` lines of a bus, with their distance."""
    if bus is None:
        return []
    distance = topology.hops_from([bus])
    return [(u, distance[u.bus]) for u in topology.units if distance.get(u.bus, 99) <= hops]


def estimate_mw(df_hz: float, topology: GridTopology) -> float | None:
    """Return the power imbalance (MW, positive = generation lost) explaining a settled frequency change."""
    beta = topology.frequency_response_mw_per_hz
    return None if beta is None or not math.isfinite(df_hz) else -df_hz * beta


def _imbalance(symptoms: Sequence[Detection], m: Measures, topology: GridTopology, config: ClassifyConfig) -> Verdict:
    """Classify a grid-wide frequency event as a generator trip or a load step."""
    falling = m.df_hz < 0
    # The angle steps back where power was lost (or load added) and forward where load was shed.
    pmu = _angle_side(m, -1.0 if falling else 1.0)
    bus = topology.pmu_buses[pmu] if pmu is not None else None
    settled = m.settled_df_hz(config)
    # Governors are still picking up when the incident opens: extrapolate to the settled change.
    df = settled if settled is not None else m.df_hz / config.early_fraction
    mw = estimate_mw(df, topology)
    rocof = [d.quantities.get("rocof_max_hz_per_s", float("nan")) for d in symptoms if d.kind is K.ROCOF]
    rocof_hz_per_s = max(rocof, key=lambda r: abs(r) if math.isfinite(r) else -1.0) if rocof else float("nan")
    figures: dict[str, object] = {
        "frequency_before_hz": _round(float(np.nanmean(m.f_base)), 4),
        "frequency_change_hz": _round(df, 4),
        "frequency_settled": settled is not None,
        "rocof_max_hz_per_s": _round(rocof_hz_per_s, 4),
        "angle_step_max_deg": _round(float(m.angle_step_deg[pmu]), 2) if pmu is not None else None,
        "angle_step_bus": bus,
    }
    if mw is not None:
        figures["mw_method"] = "settled frequency change x system frequency response"
        figures["frequency_response_mw_per_hz"] = topology.frequency_response_mw_per_hz
    unit = _tripped_unit(mw, bus, topology, config) if falling else None
    severity = _worst(symptoms)
    if unit is not None:
        figures |= {"mw_lost_mw": _round(mw or 0.0, 1), "unit": unit.name, "unit_output_mw": unit.output_mw}
        location = Location(bus=unit.bus, method=LocationMethod.ANGLE_PATTERN)
        return Verdict(IncidentKind.GENERATOR_TRIP, location, figures, max(severity, "alarm", key=_rank), unit)
    if mw is not None:
        figures["load_change_mw"] = _round(mw, 1)
    return Verdict(IncidentKind.LOAD_STEP, Location(bus=bus, method=LocationMethod.ANGLE_PATTERN), figures, severity)


def _tripped_unit(mw: float | None, bus: int | None, topology: GridTopology, config: ClassifyConfig) -> Unit | None:
    """Return the online unit near the angle step whose output best explains the power lost, if any."""
    if mw is None or mw <= 0:
        return None
    candidates = [
        (u, hops)
        for u, hops in _units_near(topology, bus, config.unit_search_hops)
        if u.output_mw > 0 and config.unit_match_low <= mw / u.output_mw <= config.unit_match_high
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda c: abs(math.log(mw / c[0].output_mw)) + 0.1 * c[1])[0]


def refine_imbalance(verdict: Verdict, m: Measures, topology: GridTopology, config: ClassifyConfig) -> bool:
    """Recompute an imbalance's power from the settled frequency (and so whether a unit tripped); True if done."""
    settled = m.settled_df_hz(config)
    mw = estimate_mw(settled, topology) if settled is not None else None
    if settled is None or mw is None:
        return False
    figures = verdict.figures
    steps = np.abs(m.angle_step_deg[np.isfinite(m.angle_step_deg)])
    if abs(settled) < config.quiet_frequency_hz and steps.size and steps.max() >= config.angle_step_deg:
        # The frequency came back: it was the swing of a topology change, not an imbalance.
        line, bus = _line_from_angles(m, topology)
        verdict.kind = IncidentKind.LINE_TRIP
        verdict.unit = None
        verdict.location = Location(bus=bus, line=line, method=LocationMethod.ANGLE_PATTERN)
        verdict.figures = {"angle_step_max_deg": _round(float(steps.max()), 2), "opened_lines": []}
        return True
    figures["frequency_change_hz"] = _round(settled, 4)
    figures["frequency_settled"] = True
    for name in ("mw_lost_mw", "unit", "unit_output_mw", "load_change_mw"):
        figures.pop(name, None)
    located = verdict.unit.bus if verdict.unit is not None else verdict.location.bus
    # The unit is searched from the angle step again, not from the unit found at opening.
    step_bus = figures.get("angle_step_bus", located)
    unit = (
        _tripped_unit(mw, step_bus if isinstance(step_bus, int) else located, topology, config) if settled < 0 else None
    )
    verdict.unit = unit
    if unit is not None:
        verdict.kind = IncidentKind.GENERATOR_TRIP
        figures |= {"mw_lost_mw": _round(mw, 1), "unit": unit.name, "unit_output_mw": unit.output_mw}
        verdict.location = Location(bus=unit.bus, method=LocationMethod.ANGLE_PATTERN)
        verdict.severity = max(verdict.severity, "alarm", key=_rank)
    else:
        verdict.kind = IncidentKind.LOAD_STEP
        figures["load_change_mw"] = _round(mw, 1)
        if isinstance(step_bus, int):
            verdict.location = Location(bus=step_bus, method=LocationMethod.ANGLE_PATTERN)
    return True


def _line_trip(symptoms: Sequence[Detection], m: Measures, topology: GridTopology) -> Verdict:
    """Locate a line trip at its current channel, else between the two sides of the angle step."""
    opened = _tripped_lines(symptoms, topology)
    figures: dict[str, object] = {"angle_step_max_deg": None, "opened_lines": opened}
    finite = np.isfinite(m.angle_step_deg)
    if finite.any():
        figures["angle_step_max_deg"] = _round(float(np.max(np.abs(m.angle_step_deg[finite]))), 2)
    if opened:
        ends = topology.line_buses(opened[0])
        measured = [b for b in (ends or ()) if b in topology.pmu_buses]
        bus = measured[0] if measured else (ends[0] if ends else None)
        return Verdict(
            IncidentKind.LINE_TRIP,
            Location(bus=bus, line=opened[0], method=LocationMethod.CURRENT_TRIP),
            figures,
            _worst(symptoms),
        )
    line, bus = _line_from_angles(m, topology)
    return Verdict(
        IncidentKind.LINE_TRIP, Location(bus=bus, line=line, method=LocationMethod.ANGLE_PATTERN), figures, "warning"
    )


def _line_from_angles(m: Measures, topology: GridTopology) -> tuple[str | None, int | None]:
    """Return the line between the advanced and the retarded side nearest the largest steps."""
    ahead, behind = _angle_side(m, 1.0), _angle_side(m, -1.0)
    if ahead is None or behind is None:
        return None, None
    seeds = {}
    for i, bus in enumerate(topology.pmu_buses):
        if bus is not None and np.isfinite(m.angle_step_deg[i]):
            seeds[bus] = 1 if m.angle_step_deg[i] > 0 else -1
    side = topology.nearest_pmu_side(seeds)
    bus_ahead, bus_behind = topology.pmu_buses[ahead], topology.pmu_buses[behind]
    if bus_ahead is None or bus_behind is None:  # PMUs not placed in the grid model
        return None, bus_ahead if bus_ahead is not None else bus_behind
    from_ahead, from_behind = topology.hops_from([bus_ahead]), topology.hops_from([bus_behind])
    best: tuple[float, str, int] | None = None
    for name, a, b in topology.lines:
        if side.get(a) == side.get(b):
            continue
        up, down = (a, b) if side.get(a) == 1 else (b, a)
        cost = from_ahead.get(up, 99) + from_behind.get(down, 99)
        if best is None or cost < best[0]:
            strong = up if abs(m.angle_step_deg[ahead]) >= abs(m.angle_step_deg[behind]) else down
            best = (cost, name, strong)
    if best is None:
        return None, bus_ahead
    return best[1], best[2]


def angle_separation_verdict(symptoms: Sequence[Detection], topology: GridTopology) -> Verdict:
    """Return the verdict of an angle separation among these symptoms (see `_angle_separation`)."""
    return _angle_separation(symptoms, topology)


def _angle_separation(symptoms: Sequence[Detection], topology: GridTopology) -> Verdict:
    """Locate an angle separation at its corridor's end PMUs."""
    det = max((d for d in symptoms if d.kind is K.ANGLE_SEPARATION), key=lambda d: d.severity)
    buses = topology.buses_of(det.pmu_indices)
    line = topology.line_between(*buses) if len(buses) == 2 else None
    figures: dict[str, object] = {
        "angle_separation_deg": _round(det.quantities.get("angle_separation_max_deg", float("nan")), 1),
        "corridor_pmu_buses": buses,
    }
    location = Location(bus=buses[-1] if buses else None, line=line, method=LocationMethod.CORRIDOR)
    return Verdict(IncidentKind.ANGLE_SEPARATION, location, figures, _worst(symptoms))


def _voltage_decline(symptoms: Sequence[Detection], m: Measures, topology: GridTopology) -> Verdict:
    """Locate a slow voltage decline at the lowest voltage."""
    with np.errstate(all="ignore"):
        lowest = np.nan_to_num(m.v_now, nan=np.inf)
    pmu = int(np.argmin(lowest))
    sagged = sorted({b for d in symptoms if d.kind is K.VOLTAGE_SAG for b in topology.buses_of(d.pmu_indices)})
    figures: dict[str, object] = {"voltage_min_pu": _round(float(m.v_now[pmu])), "sagged_buses": sagged}
    location = Location(bus=topology.pmu_buses[pmu], method=LocationMethod.LOWEST_VOLTAGE)
    return Verdict(IncidentKind.VOLTAGE_DECLINE, location, figures, _worst(symptoms))


def _fallback(symptoms: Sequence[Detection], topology: GridTopology) -> Verdict:
    """Name a group measured without snapshots by its symptoms alone."""
    kinds = _kinds(symptoms)
    first = symptoms[0]
    buses = topology.buses_of(first.pmu_indices)
    location = Location(bus=buses[0] if buses else None, method="")
    if K.ISLANDING in kinds:
        kind = IncidentKind.ISLANDING
    elif K.LINE_TRIP in kinds:
        kind = IncidentKind.LINE_TRIP
    elif K.ANGLE_SEPARATION in kinds:
        kind = IncidentKind.ANGLE_SEPARATION
    elif kinds & VOLTAGE_KINDS:
        kind = IncidentKind.VOLTAGE_DECLINE
    else:
        kind = IncidentKind.LOAD_STEP
    return Verdict(kind, location, {}, _worst(symptoms))


def oscillation_verdict(detection: Detection, topology: GridTopology) -> Verdict:
    """Name an oscillation detection: the mode, its damping, its shape and a source estimate."""
    q = detection.quantities
    forced = detection.kind is K.FORCED_OSCILLATION
    source = q.get("source_pmu")
    source_pmu = int(source) if source is not None and math.isfinite(source) else None
    buses = topology.buses_of(detection.pmu_indices)
    bus = topology.pmu_buses[source_pmu] if source_pmu is not None else None
    figures: dict[str, object] = {
        "mode_frequency_hz": _round(q.get("mode_frequency_hz", q.get("frequency_hz", float("nan"))), 4),
        "damping_pct": _round(q.get("damping_pct", q.get("apparent_damping_pct", float("nan"))), 2),
        "mode_shape_pmu_buses": buses,
        "source_bus": bus,
    }
    if forced:
        figures["amplitude"] = _round(q.get("amplitude", float("nan")), 4)
    kind = IncidentKind.FORCED_OSCILLATION if forced else IncidentKind.OSCILLATION
    method = LocationMethod.MODE_SHAPE
    if bus is None and buses:
        bus = buses[0]
    return Verdict(kind, Location(bus=bus, method=method), figures, detection.severity.label)


_RANKS = ["info", "warning", "alarm", "critical"]


def _rank(severity: str) -> int:
    return _RANKS.index(severity) if severity in _RANKS else 1
