"""Group the symptoms of one disturbance into one incident, snapshot by snapshot.

A raised detection that belongs to no incident opens a group; later symptoms join it while they keep
coming (each extends the group by `quiet_s`, from `min_window_s` up to `max_window_s` after the first
start). When the group closes it is classified against the kept snapshots and the topology and
reported as opened. Symptoms raised while an incident holds conditions open (its own raised and not
yet cleared) are folded into it, as are re-raises of its own conditions: the per-PMU sags, the ROCOF
at every PMU and the frequency blip of a fault's phase jump all become its evidence. An oscillation
found within `ringdown_s` of an incident's start is the ringdown of that disturbance and folds into
it; any other oscillation is an incident of its own (one per mode kind while it lasts). An incident
ends `end_hold_s` after its last condition cleared; a generation/load imbalance is refined once its
frequency has settled.

Sustained off-nominal states (`sustained.py`) belong to the incident that caused them: while the grid
frequency is outside its band a generation/load imbalance or an island stays active, and when the
excursion has lasted long enough its severity rises to alarm with the figures of the excursion; a
voltage outside its limits does the same to a voltage decline. An excursion with no such incident
is an incident of its own (low frequency: generator_trip, high: load_step, voltage: voltage_decline).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from wams.detection.analytics.incidents.classify import (
    ClassifyConfig,
    Measures,
    Verdict,
    angle_separation_verdict,
    classify,
    island_drift,
    islanding_verdict,
    oscillation_verdict,
    refine_imbalance,
)
from wams.detection.analytics.incidents.history import SnapshotHistory
from wams.detection.analytics.incidents.sustained import (
    Change,
    Quantity,
    SustainedChange,
    SustainedConfig,
    SustainedMonitor,
)
from wams.detection.analytics.incidents.topology import GridTopology
from wams.detection.analytics.incidents.types import (
    IncidentKind,
    IncidentPhase,
    IncidentReport,
    Location,
    LocationMethod,
)
from wams.detection.analytics.types import Detection, DetectionKind, DetectionPhase, Snapshot

K = DetectionKind
IGNORED = {K.SYNC_LOSS, K.INVALID_DATA, K.STALE_DATA}
OSCILLATIONS = {K.POORLY_DAMPED_OSCILLATION, K.FORCED_OSCILLATION}
IMBALANCE = {IncidentKind.GENERATOR_TRIP, IncidentKind.LOAD_STEP}
#: Incidents that may turn out to be an islanding once the parts' frequencies have had time to drift apart.
MAY_ISLAND = IMBALANCE | {IncidentKind.LINE_TRIP}
#: The incidents a sustained excursion of each quantity belongs to.
SUSTAINED_HOSTS = {
    Quantity.FREQUENCY: IMBALANCE | {IncidentKind.ISLANDING},
    # A separating pocket's or an island's voltages sag with it: part of that incident.
    Quantity.VOLTAGE: {IncidentKind.VOLTAGE_DECLINE, IncidentKind.ANGLE_SEPARATION, IncidentKind.ISLANDING},
}
SEVERITIES = ("info", "warning", "alarm", "critical")
#: A fault is named within a few hundred milliseconds; its recovery and duration are measured again this long after.
FAULT_REVIEW_S = 1.0


@dataclass(frozen=True)
class CorrelatorConfig:
    """Grouping windows (seconds)."""

    min_window_s: float = 0.2
    quiet_s: float = 0.1
    max_window_s: float = 0.3
    end_hold_s: float = 5.0
    ringdown_s: float = 20.0
    keep_s: float = 30.0
    island_watch_s: float = 10.0  # after its start a line trip or imbalance is re-measured for islands ...
    island_check_s: float = 0.5  # ... this often
    island_growth_deg: float = 2.0  # an island's drift grows this much between two checks (a swing does not)
    separation_watch_s: float = 120.0  # an angle separation this soon after a nearby line trip is its sequel ...
    separation_hops: int = 2  # ... the line within this many lines of the corridor's ends
    decline_watch_s: float = 60.0  # a voltage decline this soon after a load increase is where it led
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    sustained: SustainedConfig = field(default_factory=SustainedConfig)


@dataclass
class _Group:
    """Symptoms collecting before classification."""

    first_s: float
    last_new_s: float
    symptoms: list[Detection] = field(default_factory=list)


@dataclass
class _Incident:
    """An incident the correlator reported and still follows."""

    number: int
    verdict: Verdict
    started_s: float
    symptoms: list[str]
    open_keys: set[str]
    last_clear_s: float
    refined: bool = False
    ended: bool = False
    holds: set[str] = field(default_factory=set)  # sustained excursions keeping it active
    evidence: list[Detection] = field(default_factory=list)  # the raised symptoms, for re-classification
    next_island_check_s: float = 0.0
    last_drift: tuple[frozenset[int], float] | None = None


class IncidentCorrelator:
    """Feed snapshots and the detections they raised; get incident reports (opened, updated, ended)."""

    def __init__(self, topology: GridTopology, config: CorrelatorConfig | None = None) -> None:
        """Start with nothing open."""
        self.topology = topology
        self.config = config or CorrelatorConfig()
        self.history = SnapshotHistory(self.config.keep_s)
        self.group: _Group | None = None
        self.incidents: list[_Incident] = []
        self.owner: dict[str, _Incident] = {}  # detection key -> its incident
        self.count = 0
        self.now_s = 0.0
        self.sustained = SustainedMonitor(topology.nominal_hz, self.config.sustained)
        self.sustained_host: dict[Quantity, _Incident] = {}

    def update(self, snapshot: Snapshot | None, detections: Iterable[Detection] = ()) -> list[IncidentReport]:
        """Take one snapshot (or None: detections only, e.g. from the oscillation worker) and its detections."""
        out: list[IncidentReport] = []
        if snapshot is not None:
            self.history.append(snapshot)
            self.now_s = max(self.now_s, float(snapshot.timestamp_s))
        for det in detections:
            self.now_s = max(self.now_s, det.detected_time_s)
            out += self._take(det)
        if snapshot is not None:
            for change in self.sustained.update(snapshot):
                out += self._sustained(change)
        out += self._advance(self.now_s)
        return out

    def flush(self) -> list[IncidentReport]:
        """Close the collecting group now (end of data)."""
        if self.group is None:
            return []
        return [self._open(self.group, self.now_s)]

    # symptoms ------------------------------------------------------------------------------
    def _take(self, det: Detection) -> list[IncidentReport]:
        if det.kind in IGNORED:
            return []
        owner = self.owner.get(det.key)
        if owner is not None and not owner.ended:
            self._fold(owner, det)
            return []
        if det.phase is not DetectionPhase.RAISED:
            if self.group is not None:
                self.group.symptoms.append(det)
            return []
        if det.kind in OSCILLATIONS:
            return self._oscillation(det)
        if det.kind is K.ANGLE_SEPARATION:
            separated = self._separated(det)
            if separated is not None:
                return [separated]
        host = self._active_host(det)
        if host is not None:
            self._fold(host, det)
            return []
        if self.group is None:
            self.group = _Group(det.start_time_s, det.detected_time_s)
        elif det.key not in {d.key for d in self.group.symptoms}:
            self.group.last_new_s = det.detected_time_s
            self.group.first_s = min(self.group.first_s, det.start_time_s)
        self.group.symptoms.append(det)
        return []

    def _separated(self, det: Detection) -> IncidentReport | None:
        """Turn the line trip that started an angle separation into that separation's incident.

        A line opening across a corridor leaves the rest to carry the transfer; the angle then builds
        up over seconds to minutes. One disturbance, one incident: the line trip, named when it
        opened, becomes the angle separation (re-activated if it had ended).
        """
        corridor = [b for b in self.topology.buses_of(det.pmu_indices) if b is not None]
        near = self.topology.hops_from(corridor) if corridor else {}
        for inc in reversed(self.incidents):
            if inc.verdict.kind is not IncidentKind.LINE_TRIP:
                continue
            if not inc.started_s <= det.start_time_s <= inc.started_s + self.config.separation_watch_s:
                continue
            ends = self.topology.line_buses(inc.verdict.location.line) if inc.verdict.location.line else None
            buses = list(ends or ()) + ([inc.verdict.location.bus] if inc.verdict.location.bus is not None else [])
            if not buses or min(near.get(b, 99) for b in buses) > self.config.separation_hops:
                continue
            before = inc.verdict
            inc.verdict = angle_separation_verdict([det], self.topology)
            inc.verdict.figures |= {
                "opened_lines": before.figures.get("opened_lines", []),
                "first_named": before.kind.value,
                "named_separation_after_s": round(det.detected_time_s - inc.started_s, 2),
            }
            inc.ended = False
            self._fold(inc, det)
            return self._report(inc, IncidentPhase.UPDATED, det.detected_time_s)
        return None

    def _active_host(self, det: Detection) -> _Incident | None:
        """Return the newest fast-disturbance incident still holding conditions open."""
        for inc in reversed(self.incidents):
            if inc.ended or inc.verdict.kind in (IncidentKind.OSCILLATION, IncidentKind.FORCED_OSCILLATION):
                continue
            if inc.open_keys or det.start_time_s <= inc.last_clear_s + self.config.quiet_s:
                return inc
        return None

    def _fold(self, inc: _Incident, det: Detection) -> None:
        if det.key not in inc.symptoms:
            inc.symptoms.append(det.key)
        if det.phase is DetectionPhase.RAISED and len(inc.evidence) < 200:
            inc.evidence.append(det)
        self.owner[det.key] = inc
        if det.phase is DetectionPhase.RAISED:
            inc.open_keys.add(det.key)
        else:
            inc.open_keys.discard(det.key)
            inc.last_clear_s = max(inc.last_clear_s, det.end_time_s or det.detected_time_s)

    def _oscillation(self, det: Detection) -> list[IncidentReport]:
        """Fold a ringdown into the disturbance that excited it, or open/extend an oscillation incident."""
        for inc in reversed(self.incidents):
            if inc.verdict.kind in IMBALANCE | {IncidentKind.FAULT, IncidentKind.LINE_TRIP, IncidentKind.ISLANDING}:
                if inc.started_s - 1.0 <= det.start_time_s <= inc.started_s + self.config.ringdown_s:
                    self._fold(inc, det)
                    return []
            elif not inc.ended and inc.verdict.kind in (IncidentKind.OSCILLATION, IncidentKind.FORCED_OSCILLATION):
                forced = det.kind is K.FORCED_OSCILLATION
                if forced == (inc.verdict.kind is IncidentKind.FORCED_OSCILLATION):
                    self._fold(inc, det)
                    return []
        self.count += 1
        verdict = oscillation_verdict(det, self.topology)
        inc = _Incident(self.count, verdict, det.start_time_s, [], set(), det.detected_time_s)
        self.incidents.append(inc)
        self._fold(inc, det)
        return [self._report(inc, IncidentPhase.OPENED, det.detected_time_s)]

    # time ----------------------------------------------------------------------------------
    def _advance(self, now_s: float) -> list[IncidentReport]:
        out = []
        group = self.group
        if group is not None:
            quiet = now_s >= group.last_new_s + self.config.quiet_s
            if (quiet or now_s >= group.first_s + self.config.max_window_s) and (
                now_s >= group.first_s + self.config.min_window_s
            ):
                out.append(self._open(group, now_s))
        for inc in self.incidents:
            if inc.ended:
                continue
            if self._islanded(inc, now_s):
                out.append(self._report(inc, IncidentPhase.UPDATED, now_s))
            if inc.verdict.kind is IncidentKind.FAULT and not inc.refined and now_s >= inc.started_s + FAULT_REVIEW_S:
                inc.refined = True
                if self._review_fault(inc, now_s):
                    out.append(self._report(inc, IncidentPhase.UPDATED, now_s))
            settle_s = inc.started_s + self.config.classify.settle_to_s
            if inc.verdict.kind in IMBALANCE and not inc.refined and now_s >= settle_s:
                inc.refined = True
                if self._refine(inc, now_s):
                    out.append(self._report(inc, IncidentPhase.UPDATED, now_s))
            waiting = inc.verdict.kind in IMBALANCE and not inc.refined
            held = inc.open_keys or inc.holds
            if not held and not waiting and now_s >= inc.last_clear_s + self.config.end_hold_s:
                inc.ended = True
                out.append(self._report(inc, IncidentPhase.ENDED, now_s))
        return out

    # sustained excursions ------------------------------------------------------------------
    def _sustained(self, change: SustainedChange) -> list[IncidentReport]:
        """Hold, escalate or release the incident a sustained excursion belongs to (or open one)."""
        key = f"sustained:{change.quantity.value}"
        host = self.sustained_host.get(change.quantity)
        if host is not None and host.ended:
            host = None
        if change.change is Change.PENDING:
            host = host or self._sustained_host(change.quantity)
            if host is not None:
                host.holds.add(key)
                self.sustained_host[change.quantity] = host
            return []
        if change.change is Change.RAISED:
            return [self._sustained_raise(change, host or self._sustained_host(change.quantity), key)]
        self.sustained_host.pop(change.quantity, None)
        if host is not None:
            host.holds.discard(key)
            host.last_clear_s = max(host.last_clear_s, change.at_s)
            if change.change is Change.CLEARED:
                host.verdict.figures.update(change.figures)
        return []

    def _sustained_host(self, quantity: Quantity) -> _Incident | None:
        """Return the newest active incident an excursion of this quantity belongs to."""
        kinds = SUSTAINED_HOSTS[quantity]
        return next((i for i in reversed(self.incidents) if not i.ended and i.verdict.kind in kinds), None)

    def _sustained_raise(self, change: SustainedChange, host: _Incident | None, key: str) -> IncidentReport:
        """Escalate the host of an excursion that lasted, or open an incident of the nearest kind."""
        if host is not None:
            host.holds.add(key)
            host.verdict.figures.update(change.figures)
            if SEVERITIES.index(host.verdict.severity) < SEVERITIES.index("alarm"):
                host.verdict.severity = "alarm"
            self.sustained_host[change.quantity] = host
            return self._report(host, IncidentPhase.UPDATED, change.at_s)
        if change.quantity is Quantity.FREQUENCY:
            kind = IncidentKind.GENERATOR_TRIP if change.direction < 0 else IncidentKind.LOAD_STEP
            location = Location(method="frequency_band")
        else:
            kind = IncidentKind.VOLTAGE_DECLINE
            index = change.pmu_index
            bus = self.topology.pmu_buses[index] if index is not None and index < len(self.topology.pmu_buses) else None
            location = Location(bus=bus, method=LocationMethod.LOWEST_VOLTAGE.value)
        verdict = Verdict(kind, location, dict(change.figures), "alarm")
        if kind is IncidentKind.VOLTAGE_DECLINE:
            grown = self._load_grown_into_decline(verdict, change.since_s)
            if grown is not None:
                grown.holds.add(key)
                self.sustained_host[change.quantity] = grown
                return self._report(grown, IncidentPhase.UPDATED, change.at_s)
        self.count += 1
        inc = _Incident(self.count, verdict, change.since_s, [], set(), change.since_s, refined=True, holds={key})
        self.incidents.append(inc)
        self.sustained_host[change.quantity] = inc
        return self._report(inc, IncidentPhase.OPENED, change.at_s)

    def _islanded(self, inc: _Incident, now_s: float) -> bool:
        """Re-measure a line trip or imbalance for islands; True when it became an islanding.

        The parts of a split grid drift apart over seconds, after the incident was named from its
        first half second. An islanding is told from a swing by a drift that keeps growing with the
        same PMUs on each side over two checks (or by the islanding detector's own symptom).
        """
        cfg = self.config
        kind = inc.verdict.kind
        if kind not in MAY_ISLAND | {IncidentKind.ISLANDING} or now_s > inc.started_s + cfg.island_watch_s:
            return False
        if now_s < inc.next_island_check_s:
            return False
        inc.next_island_check_s = now_s + cfg.island_check_s
        m = self._measure(inc, now_s)
        if m is None:
            return False
        drift = island_drift(m, cfg.classify)
        previous, inc.last_drift = inc.last_drift, drift
        detected = any(d.kind is K.ISLANDING for d in inc.evidence)
        growing = (
            drift is not None
            and previous is not None
            and drift[0] == previous[0]
            and drift[1] >= previous[1] + cfg.island_growth_deg
        )
        if not (growing or detected):
            return False
        verdict = islanding_verdict(inc.evidence, m, self.topology, cfg.classify)
        if verdict is None:
            return False
        if kind is IncidentKind.ISLANDING:
            # Already an islanding: the drift, larger now, splits the PMUs more surely; take a changed split.
            if not growing or verdict.figures.get("island_pmu_buses") == inc.verdict.figures.get("island_pmu_buses"):
                return False
            for name in ("named_islanding_after_s", "first_named"):
                if name in inc.verdict.figures:
                    verdict.figures[name] = inc.verdict.figures[name]
        else:
            verdict.figures["named_islanding_after_s"] = round(now_s - inc.started_s, 2)
            verdict.figures["first_named"] = kind.value
        inc.verdict = verdict
        inc.refined = True
        return True

    def _load_grown_into_decline(self, verdict: Verdict, at_s: float) -> _Incident | None:
        """Return the load increase a voltage decline follows, turned into that decline (None if there is none).

        Loads that grow drag the frequency down first (a load step to the detectors) and the voltage
        after: one disturbance, named by where it leads.
        """
        for inc in reversed(self.incidents):
            if inc.verdict.kind is not IncidentKind.LOAD_STEP:
                continue
            if not inc.started_s <= at_s <= inc.started_s + self.config.decline_watch_s:
                continue
            change = inc.verdict.figures.get("frequency_change_hz")
            if isinstance(change, int | float) and change > 0:  # the frequency rose: load was lost, not added
                continue
            before = inc.verdict
            inc.verdict = verdict
            verdict.figures |= {
                "first_named": before.kind.value,
                "frequency_change_hz": before.figures.get("frequency_change_hz"),
                "load_change_mw": before.figures.get("load_change_mw"),
                "named_decline_after_s": round(at_s - inc.started_s, 2),
            }
            inc.ended = False
            inc.refined = True
            return inc
        return None

    def _measure(self, inc: _Incident, now_s: float) -> Measures | None:
        """Return the measures of an incident's kept snapshots from 2 s before its start to now."""
        window = self.history.window(inc.started_s - 2.0)
        return None if window is None else Measures(window, inc.started_s, now_s)

    def _review_fault(self, inc: _Incident, now_s: float) -> bool:
        """Measure a fault again a second on: whether the voltage recovered and how long it stayed low."""
        m = self._measure(inc, now_s)
        if m is None:
            return False
        pmu = m.deepest()
        if pmu is None:
            return False
        figures = inc.verdict.figures
        figures["recovered"] = bool(np.isfinite(m.v_now[pmu]) and m.v_now[pmu] >= 0.9 * m.v_base[pmu])
        figures["duration_ms"] = round(m.below_ms(pmu))
        return True

    def _refine(self, inc: _Incident, now_s: float) -> bool:
        """Measure a generation/load imbalance again once its frequency has settled."""
        m = self._measure(inc, now_s)
        if m is None:
            return False
        return refine_imbalance(inc.verdict, m, self.topology, self.config.classify)

    def _open(self, group: _Group, now_s: float) -> IncidentReport:
        self.group = None
        window = self.history.window(group.first_s - 2.0)
        verdict = classify(group.symptoms, window, self.topology, group.first_s, now_s, self.config.classify)
        if verdict.kind is IncidentKind.VOLTAGE_DECLINE:
            grown = self._load_grown_into_decline(verdict, group.first_s)
            if grown is not None:
                for det in group.symptoms:
                    self._fold(grown, det)
                return self._report(grown, IncidentPhase.UPDATED, now_s)
        self.count += 1
        started_s = min(group.first_s, verdict.started_s or group.first_s)
        inc = _Incident(self.count, verdict, started_s, [], set(), group.first_s)
        self.incidents.append(inc)
        for det in group.symptoms:
            self._fold(inc, det)
        self.incidents = [i for i in self.incidents if not i.ended or i.number > self.count - 50]
        return self._report(inc, IncidentPhase.OPENED, now_s)

    def _report(self, inc: _Incident, phase: IncidentPhase, now_s: float) -> IncidentReport:
        v = inc.verdict
        return IncidentReport(
            number=inc.number,
            phase=phase,
            kind=v.kind,
            severity=v.severity,
            started_s=inc.started_s,
            detected_s=now_s,
            ended_s=inc.last_clear_s if phase is IncidentPhase.ENDED else None,
            location=v.location,
            figures=dict(v.figures),
            symptoms=tuple(inc.symptoms),
            summary=summarise(v, self.topology),
        )


def summarise(verdict: Verdict, topology: GridTopology) -> str:
    """Return a one-line operator summary of an incident."""
    loc = verdict.location
    place = topology.substation(loc.bus) or (f"bus {loc.bus}" if loc.bus is not None else "")
    where = f" near {place}" if place else ""
    if loc.line:
        where += f" ({loc.line})"
    f = verdict.figures
    kind = verdict.kind.value.replace("_", " ").capitalize()
    if "off_nominal_frequency_hz" in f and "mw_lost_mw" not in f and verdict.kind is not IncidentKind.ISLANDING:
        return (
            f"Sustained off-nominal frequency ({kind.lower()}): {f.get('off_nominal_frequency_hz')} Hz "
            f"beyond {f.get('frequency_limit_hz')} Hz for {f.get('off_nominal_duration_s')} s"
        )
    if "off_limit_voltage_pu" in f and verdict.kind is IncidentKind.VOLTAGE_DECLINE:
        return (
            f"{kind}{where}: {f.get('off_limit_voltage_pu')} pu beyond {f.get('voltage_limit_pu')} pu "
            f"for {f.get('off_limit_duration_s')} s"
        )
    if verdict.kind is IncidentKind.FAULT:
        return f"{kind}{where}, cleared in {f.get('duration_ms')} ms, min {f.get('voltage_min_pu')} pu"
    if verdict.kind is IncidentKind.GENERATOR_TRIP:
        return f"{kind}{where}: {f.get('unit')}, about {f.get('mw_lost_mw')} MW lost"
    if verdict.kind is IncidentKind.OSCILLATION or verdict.kind is IncidentKind.FORCED_OSCILLATION:
        return f"{kind} {f.get('mode_frequency_hz')} Hz, damping {f.get('damping_pct')} %{where}"
    if verdict.kind is IncidentKind.ISLANDING:
        return f"{kind}{where}: island at {f.get('island_frequency_hz')} Hz"
    return f"{kind}{where}"
