"""Countermeasure rules: a pure function of (scheme configuration, scheme state, input) to decisions.

No Django, no sockets: `evaluate_series` takes measurement series (the live snapshot contract's
instants), `evaluate_event` a detector event, and both return the next state and the stage
firings to carry out.  A stage fires when its condition has held for its duration on the
measurement clock; it fires once until the condition has stayed clear for `reset_ms`.
Each firing is tagged with what should happen to it: "execute", "dry_run" (log only), "blocked"
(supervisory block) or "rate_limited".  A disarmed scheme yields nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Comparison = Literal["below", "above"]
Mode = Literal["execute", "dry_run", "blocked", "rate_limited"]
FloatArray = np.ndarray

SNAPSHOT_QUANTITIES = ("frequency_hz", "rocof_hz_per_s", "magnitude_pu")
# Epoch timestamps near 1.8e9 s carry about 0.2 us of rounding: durations compare with this slack.
TIME_SLACK_MS = 0.01
ANGLE_SEPARATION = "angle_separation_deg"


@dataclass(frozen=True)
class ActionSpec:
    """One command a stage sends."""

    device_id: int
    action: str
    value: float | None = None


@dataclass(frozen=True)
class StageSpec:
    """One stage: threshold (in the scheme's quantity unit), hold time, actions."""

    number: int
    threshold: float | None
    duration_ms: float
    actions: tuple[ActionSpec, ...]


@dataclass(frozen=True)
class SchemeSpec:
    """Everything the rules need to know about one scheme."""

    scheme_id: int
    name: str
    stages: tuple[StageSpec, ...]
    quantity: str = ""  # "", one of SNAPSHOT_QUANTITIES, or ANGLE_SEPARATION
    comparison: Comparison = "below"
    pmu_ids: frozenset[int] = frozenset()  # empty: every PMU of the snapshot
    corridor: tuple[int, int] | None = None  # (from PMU id, to PMU id) for angle separation
    min_pmus: int = 1
    event_kinds: frozenset[str] = frozenset()
    event_quantity: str = ""
    reset_ms: float = 5000.0
    rate_limit_count: int = 0  # 0: no limit
    rate_limit_window_s: float = 600.0
    armed: bool = False
    blocked: bool = False
    dry_run: bool = True


@dataclass
class SchemeState:
    """What a scheme remembers between inputs."""

    condition_since_s: dict[int, float] = field(default_factory=dict)  # stage -> condition start
    fired: set[int] = field(default_factory=set)
    clear_since_s: float | None = None
    firing_times_s: list[float] = field(default_factory=list)
    active_events: set[str] = field(default_factory=set)

    def copy(self) -> SchemeState:
        """Return an independent copy."""
        return SchemeState(
            dict(self.condition_since_s),
            set(self.fired),
            self.clear_since_s,
            list(self.firing_times_s),
            set(self.active_events),
        )


@dataclass(frozen=True)
class Decision:
    """One stage firing: its actions and what to do with them."""

    scheme_id: int
    scheme_name: str
    stage: int
    mode: Mode
    actions: tuple[ActionSpec, ...]
    trigger_time_s: float
    reason: str
    quantities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Series:
    """Measurement instants: t_s (n,) epoch seconds; values[quantity][pmu_id] (n,) with NaN where missing."""

    t_s: FloatArray
    values: Mapping[str, Mapping[int, FloatArray]]


@dataclass(frozen=True)
class EventInput:
    """A detector event as the rules see it."""

    kind: str
    state: str  # raised, acknowledged, cleared
    key: str
    time_s: float
    quantities: Mapping[str, float] = field(default_factory=dict)
    pmu_ids: frozenset[int] = frozenset()


def parse_live_snapshot(payload: Mapping[str, object]) -> Series:
    """Turn a live snapshot payload ({"t": [...], "pmus": {"<id>": {quantity: [...]}}}) into a Series."""
    t_raw = payload.get("t") or []
    t_s = np.asarray(t_raw, dtype=np.float64).reshape(-1)
    n = t_s.shape[0]
    values: dict[str, dict[int, FloatArray]] = {q: {} for q in (*SNAPSHOT_QUANTITIES, "angle_deg")}
    pmus = payload.get("pmus") or {}
    if not isinstance(pmus, Mapping):
        return Series(t_s, values)
    for key, series in pmus.items():
        if not isinstance(series, Mapping):
            continue
        pmu_id = int(key)
        for quantity, per_pmu in values.items():
            raw = series.get(quantity)
            if isinstance(raw, Sequence) and len(raw) == n:
                per_pmu[pmu_id] = np.array([math.nan if v is None else float(v) for v in raw], dtype=np.float64)
    return Series(t_s, values)


def condition_values(spec: SchemeSpec, series: Series) -> FloatArray:
    """Return the watched values, shape (n instants, k elements): k PMUs, or 1 for a corridor separation."""
    n = series.t_s.shape[0]
    if spec.quantity == ANGLE_SEPARATION:
        if spec.corridor is None:
            return np.full((n, 0), np.nan)
        angles = series.values.get("angle_deg", {})
        a, b = (angles.get(pmu_id) for pmu_id in spec.corridor)
        if a is None or b is None:
            return np.full((n, 1), np.nan)
        return np.abs((a - b + 180.0) % 360.0 - 180.0).reshape(n, 1)
    per_pmu = series.values.get(spec.quantity, {})
    ids = sorted(per_pmu if not spec.pmu_ids else spec.pmu_ids & per_pmu.keys())
    if not ids:
        return np.full((n, 0), np.nan)
    return np.column_stack([per_pmu[pmu_id] for pmu_id in ids])


def _meets(values: FloatArray, threshold: FloatArray | float, comparison: Comparison) -> FloatArray:
    """Return where values (any shape) meet the threshold; NaN never does."""
    with np.errstate(invalid="ignore"):
        return values < threshold if comparison == "below" else values > threshold


def evaluate_series(spec: SchemeSpec, state: SchemeState, series: Series) -> tuple[SchemeState, list[Decision]]:
    """Advance a scheme through measurement instants; return the new state and the stage firings."""
    if not spec.armed:
        return SchemeState(active_events=set(state.active_events)), []
    if not spec.quantity:
        return state, []
    state = state.copy()
    values = condition_values(spec, series)  # (n, k)
    stages = [s for s in spec.stages if s.threshold is not None]
    if values.shape[1] == 0 or not stages:
        return state, []
    thresholds = np.array([s.threshold for s in stages], dtype=np.float64)
    # meets[i, s, k]: element k meets stage s's threshold at instant i
    meets = _meets(values[:, None, :], thresholds[None, :, None], spec.comparison)
    holding = meets.sum(axis=2) >= spec.min_pmus  # (n, stages)
    if spec.event_kinds and not state.active_events:
        holding[:] = False
    decisions: list[Decision] = []
    for i, t in enumerate(series.t_s.tolist()):
        for j, stage in enumerate(stages):
            if not holding[i, j]:
                state.condition_since_s.pop(stage.number, None)
                continue
            since = state.condition_since_s.setdefault(stage.number, t)
            if stage.number not in state.fired and (t - since) * 1000.0 >= stage.duration_ms - TIME_SLACK_MS:
                worst = _worst(values[i][meets[i, j]], spec.comparison)
                decisions.append(_fire(spec, state, stage, t, _series_reason(spec, stage, worst), worst))
        _track_reset(spec, state, t, bool(holding[i].any()))
    return state, decisions


def evaluate_event(spec: SchemeSpec, state: SchemeState, event: EventInput) -> tuple[SchemeState, list[Decision]]:
    """Take one detector event: open or close the event gate, or fire event-only stages."""
    if event.kind not in spec.event_kinds:
        return state, []
    if spec.pmu_ids and event.pmu_ids and not (spec.pmu_ids & event.pmu_ids):
        return state, []
    state = state.copy()
    if event.state == "cleared":
        state.active_events.discard(event.key)
        if not spec.quantity and not state.active_events:
            state.fired.clear()
        return state, []
    is_new = event.key not in state.active_events
    state.active_events.add(event.key)
    if spec.quantity or not spec.armed or not is_new or event.state != "raised":
        return state, []
    observed = event.quantities.get(spec.event_quantity) if spec.event_quantity else None
    decisions = []
    for stage in spec.stages:
        if stage.number in state.fired:
            continue
        if stage.threshold is not None and spec.event_quantity and not _event_meets(observed, stage, spec):
            continue
        reason = f"{event.kind} event" + (
            f": {spec.event_quantity} {observed:g} {spec.comparison} {stage.threshold:g}"
            if observed is not None and stage.threshold is not None
            else ""
        )
        decisions.append(_fire(spec, state, stage, event.time_s, reason, observed))
    return state, decisions


def _event_meets(observed: float | None, stage: StageSpec, spec: SchemeSpec) -> bool:
    """Tell whether an event quantity meets a stage threshold."""
    if observed is None or stage.threshold is None:
        return False
    return bool(_meets(np.asarray(observed, dtype=np.float64), stage.threshold, spec.comparison))


def _fire(
    spec: SchemeSpec, state: SchemeState, stage: StageSpec, t: float, reason: str, observed: float | None
) -> Decision:
    """Mark a stage fired and decide what happens to its actions."""
    state.fired.add(stage.number)
    window_start = t - spec.rate_limit_window_s
    state.firing_times_s = [f for f in state.firing_times_s if f > window_start]
    mode: Mode
    if spec.blocked:
        mode = "blocked"
    elif spec.rate_limit_count and len(state.firing_times_s) >= spec.rate_limit_count:
        mode = "rate_limited"
    else:
        mode = "dry_run" if spec.dry_run else "execute"
        state.firing_times_s.append(t)
    quantities = {"threshold": float(stage.threshold)} if stage.threshold is not None else {}
    if observed is not None:
        quantities[spec.quantity or spec.event_quantity or "observed"] = float(observed)
    return Decision(
        spec.scheme_id, spec.name, stage.number, mode, stage.actions, t, f"{spec.name} stage {stage.number}: {reason}",
        quantities,
    )  # fmt: skip


def _track_reset(spec: SchemeSpec, state: SchemeState, t: float, any_holding: bool) -> None:
    """Re-arm fired stages once no stage's condition has held for reset_ms."""
    if any_holding:
        state.clear_since_s = None
        return
    if state.clear_since_s is None:
        state.clear_since_s = t
    if state.fired and (t - state.clear_since_s) * 1000.0 >= spec.reset_ms - TIME_SLACK_MS:
        state.fired.clear()


def _worst(values: FloatArray, comparison: Comparison) -> float:
    """Return the most extreme value among those meeting the condition."""
    return float(values.min() if comparison == "below" else values.max())


def _series_reason(spec: SchemeSpec, stage: StageSpec, worst: float) -> str:
    """Describe why a stage fired."""
    where = "corridor" if spec.quantity == ANGLE_SEPARATION else f"{spec.min_pmus} PMU(s)"
    return f"{spec.quantity} {worst:.4g} {spec.comparison} {stage.threshold:g} for {stage.duration_ms:g} ms at {where}"
