"""Debounce, deduplicate and clear conditions, vectorised across elements (PMUs, pairs, groups).

A condition raises once when it has held for `pickup_s`, and clears once its clear test
(usually a threshold with hysteresis) has held for `dropout_s`; in between it stays raised, so
the same condition is never raised twice.  Rows where neither test holds (missing or invalid
data) leave the state as it is, except that a pending pickup starts again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from wams.detection.analytics.types import BoolArray, DetectionPhase, FloatArray, per_element

Reducer = Literal["min", "max", "absmax"]
_EPS_S = 1e-9


@dataclass(frozen=True, slots=True)
class Transition:
    """One element raising or clearing, with the tracked quantities."""

    phase: DetectionPhase
    element: int
    start_time_s: float
    detected_time_s: float
    end_time_s: float | None
    current: dict[str, float] = field(default_factory=dict)  # tracked values in that row
    extreme: dict[str, float] = field(default_factory=dict)  # extremes from pickup until clearly clear


class ConditionLatch:
    """Per-element raise/clear state machine with pickup and dropout durations."""

    def __init__(
        self,
        n_elements: int,
        pickup_s: float | npt.ArrayLike,
        dropout_s: float | npt.ArrayLike,
        tracked: dict[str, Reducer] | None = None,
    ) -> None:
        """Create the latch for n_elements; durations are scalars or shape (n_elements,)."""
        self.n_elements = n_elements
        self.pickup_s = per_element(pickup_s, n_elements, "pickup_s")
        self.dropout_s = per_element(dropout_s, n_elements, "dropout_s")
        self.tracked: dict[str, Reducer] = dict(tracked or {})
        self.raised: BoolArray = np.zeros(n_elements, dtype=bool)
        self.pending_since_s: FloatArray = np.full(n_elements, np.nan)
        self.start_time_s: FloatArray = np.full(n_elements, np.nan)
        self.clear_since_s: FloatArray = np.full(n_elements, np.nan)
        self.extreme: dict[str, FloatArray] = {k: np.full(n_elements, np.nan) for k in self.tracked}
        self._last_time_s = float("nan")
        self._last_current: dict[str, FloatArray] = {}

    def busy(self) -> bool:
        """Return True while any element is raised or pending."""
        return bool(self.raised.any() or np.isfinite(self.pending_since_s).any())

    def step_block(
        self,
        timestamp_s: FloatArray,
        on: BoolArray,
        off: BoolArray,
        values: dict[str, FloatArray] | None = None,
        instant: BoolArray | None = None,
    ) -> list[Transition]:
        """Advance through rows; timestamps (n_time,), on/off/values (n_time, n_elements).

        Where `instant` (n_time, n_elements) holds, a condition that is on raises at once, without
        waiting for its pickup time (e.g. a sag deep enough that only a fault gives it).
        """
        values = values or {}
        active_rows = np.flatnonzero(on.any(axis=1))
        transitions: list[Transition] = []
        row = 0
        n_time = timestamp_s.shape[0]
        while row < n_time:
            if not self.busy():
                k = int(np.searchsorted(active_rows, row))
                if k >= active_rows.shape[0]:
                    break
                row = int(active_rows[k])
            current = {name: arr[row] for name, arr in values.items()}
            now = instant[row] if instant is not None else None
            transitions.extend(self._step(float(timestamp_s[row]), on[row], off[row], current, now))
            row += 1
        return transitions

    def _step(
        self, t: float, on: BoolArray, off: BoolArray, current: dict[str, FloatArray], instant: BoolArray | None = None
    ) -> list[Transition]:
        """Advance one row."""
        self._last_time_s, self._last_current = t, current
        out: list[Transition] = []
        was_raised = self.raised.copy()
        idle = ~was_raised & np.isnan(self.pending_since_s)
        starting = idle & on
        if starting.any():
            self.pending_since_s[starting] = t
            for name in self.tracked:
                self.extreme[name][starting] = current[name][starting]
        pending = ~was_raised & np.isfinite(self.pending_since_s)
        lost = pending & ~on
        if lost.any():
            self.pending_since_s[lost] = np.nan
            for name in self.tracked:
                self.extreme[name][lost] = np.nan
        self._track((was_raised & ~off) | (pending & on), current)
        due = t - self.pending_since_s >= self.pickup_s - _EPS_S
        if instant is not None:
            due = due | instant
        fire = pending & on & due
        for element in np.flatnonzero(fire):
            self.raised[element] = True
            self.start_time_s[element] = self.pending_since_s[element]
            self.pending_since_s[element] = np.nan
            out.append(self._transition(DetectionPhase.RAISED, int(element), t, None, current))
        if was_raised.any():
            out.extend(self._clear(t, was_raised, off, current))
        return out

    def open_transitions(self) -> list[Transition]:
        """Return the raised elements as of the last row processed, with their extremes so far."""
        return [
            self._transition(DetectionPhase.RAISED, int(e), self._last_time_s, None, self._last_current)
            for e in np.flatnonzero(self.raised)
        ]

    def _clear(
        self, t: float, was_raised: BoolArray, off: BoolArray, current: dict[str, FloatArray]
    ) -> list[Transition]:
        """Start, continue or abandon the dropout of raised elements."""
        out: list[Transition] = []
        clearing = was_raised & off
        self.clear_since_s[was_raised & ~off] = np.nan
        self.clear_since_s[clearing & np.isnan(self.clear_since_s)] = t
        done = clearing & (t - self.clear_since_s >= self.dropout_s - _EPS_S)
        for element in np.flatnonzero(done):
            end = float(self.clear_since_s[element])
            out.append(self._transition(DetectionPhase.CLEARED, int(element), t, end, current))
            self.raised[element] = False
            self.start_time_s[element] = np.nan
            self.clear_since_s[element] = np.nan
            for name in self.tracked:
                self.extreme[name][element] = np.nan
        return out

    def _track(self, mask: BoolArray, current: dict[str, FloatArray]) -> None:
        """Update the extremes of tracked quantities where mask holds (nan values are ignored)."""
        if not mask.any():
            return
        for name, reducer in self.tracked.items():
            ext = self.extreme[name]
            value = current[name]
            if reducer == "min":
                ext[mask] = np.fmin(ext[mask], value[mask])
            elif reducer == "max":
                ext[mask] = np.fmax(ext[mask], value[mask])
            else:
                better = mask & np.isfinite(value) & ~(np.abs(ext) >= np.abs(value))
                ext[better] = value[better]

    def _transition(
        self, phase: DetectionPhase, element: int, t: float, end: float | None, current: dict[str, FloatArray]
    ) -> Transition:
        """Build the record of one transition."""
        return Transition(
            phase=phase,
            element=element,
            start_time_s=float(self.start_time_s[element]),
            detected_time_s=t,
            end_time_s=end,
            current={name: float(arr[element]) for name, arr in current.items()} if current else {},
            extreme={name: float(arr[element]) for name, arr in self.extreme.items()},
        )
