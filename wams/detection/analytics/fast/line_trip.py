"""Line trip detector: steps in current magnitude, or voltage angle steps, vectorised."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.fast.base import Output, severity, single
from wams.detection.analytics.fast.config import LineTripConfig
from wams.detection.analytics.history import RowHistory, forward_fill, lookback_rows
from wams.detection.analytics.latch import ConditionLatch, Transition
from wams.detection.analytics.types import (
    BoolArray,
    Detection,
    DetectionKind,
    FloatArray,
    Severity,
    SnapshotBlock,
    per_element,
    wrap_deg,
)


class LineTripDetector:
    """Raise on a current step (per current channel) or a voltage angle step (per PMU)."""

    def __init__(self, n_pmu: int, nominal_hz: float, config: LineTripConfig) -> None:
        """Set limits; current channels map to PMUs through config.current_pmu_index."""
        self.n_pmu = n_pmu
        self.nominal_hz = nominal_hz
        self.config = config
        self.lookback_s = config.lookback_s
        self.angle_step_deg = per_element(config.angle_step_deg, n_pmu, "angle_step_deg")
        self.min_voltage_pu = per_element(config.min_voltage_pu, n_pmu, "min_voltage_pu")
        self.last_sag_time_s: FloatArray = np.full(n_pmu, np.nan)
        self.last_reference_a: FloatArray = np.empty(0)
        self.last_reference_time_s: FloatArray = np.empty(0)
        self.angle_history = RowHistory(config.lookback_s)
        self.angle_latch = ConditionLatch(n_pmu, 0.0, config.hold_s, {"angle_step_deg": "absmax"})
        self.current_history = RowHistory(config.lookback_s)
        self.current_latch: ConditionLatch | None = None
        self.current_pmu: np.ndarray = np.asarray(config.current_pmu_index, dtype=np.intp)
        self.outputs = [
            Output(
                self.angle_latch,
                DetectionKind.LINE_TRIP,
                single,
                self._angle_quantities,
                self._angle_severity,
                "angle@",
            )
        ]

    def _current_latch(self, n_current: int) -> ConditionLatch:
        """Create the per-channel state on the first block that carries currents."""
        if self.current_latch is None or self.current_latch.n_elements != n_current:
            if self.current_pmu.size == 0:
                self.current_pmu = np.arange(n_current, dtype=np.intp)
            if self.current_pmu.shape[0] != n_current:
                raise ValueError(f"current_pmu_index has {self.current_pmu.shape[0]} entries, block has {n_current}")
            self.open_fraction = per_element(self.config.open_fraction, n_current, "open_fraction")
            self.step_fraction = per_element(self.config.step_fraction, n_current, "step_fraction")
            self.min_current_a = per_element(self.config.min_current_a, n_current, "min_current_a")
            self.current_latch = ConditionLatch(n_current, 0.0, self.config.hold_s, {"current_ratio": "min"})
            self.outputs = [
                self.outputs[0],
                Output(
                    self.current_latch,
                    DetectionKind.LINE_TRIP,
                    self._pmu_of_current,
                    self._current_quantities,
                    self._current_severity,
                    lambda element: f"current{element}@",
                ),
            ]
            self.current_history.reset()
            self.last_reference_a = np.full(n_current, np.nan)
            self.last_reference_time_s = np.full(n_current, np.nan)
        return self.current_latch

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        out = self._angle_steps(block)
        if block.current_magnitude_a is not None:
            out += self._current_steps(block, block.current_magnitude_a)
        return out

    def _sagged(self, block: SnapshotBlock) -> BoolArray:
        """Return (n_time, n_pmu): the voltage is measured and below min_voltage_pu (a fault nearby)."""
        v = np.where(block.data_valid(), block.voltage_magnitude_pu, np.nan)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.isfinite(v) & (v < self.min_voltage_pu), dtype=bool)

    def _angle_steps(self, block: SnapshotBlock) -> list[Detection]:
        """Detect angle steps beyond the rotation explained by the frequency offset (none during or just after a sag)."""
        usable = block.data_valid() & ~block.sync_error()
        angle = np.where(usable, block.voltage_angle_deg, np.nan)
        frequency = np.where(usable, block.frequency_hz, np.nan)
        sag_time = np.where(self._sagged(block), block.timestamp_s[:, None], np.nan)
        last_sag_s = forward_fill(sag_time, self.last_sag_time_s)  # (n_time, n_pmu)
        self.last_sag_time_s = last_sag_s[-1]
        t_all, arrays, offset = self.angle_history.extend(
            block.timestamp_s, {"angle_deg": angle, "frequency_hz": frequency}
        )
        rows = lookback_rows(t_all, offset, self.lookback_s)
        known_row = rows >= 0
        back = np.where(known_row, rows, 0)
        dt_s = (t_all[offset:] - t_all[back])[:, None]
        rotation_deg = 360.0 * (arrays["frequency_hz"][back] - self.nominal_hz) * dt_s
        step = wrap_deg(arrays["angle_deg"][offset:] - arrays["angle_deg"][back] - rotation_deg)
        step[~known_row] = np.nan
        # A fault's phase jumps and the fast swings right after its clearing are no line trip.
        step[block.timestamp_s[:, None] - last_sag_s <= self.lookback_s + self.config.after_sag_s] = np.nan
        known = np.isfinite(step)
        on = known & (np.abs(np.where(known, step, 0.0)) > self.angle_step_deg)
        transitions = self.angle_latch.step_block(block.timestamp_s, on, ~on, {"angle_step_deg": step})
        return self.outputs[0].build(transitions)

    def _current_steps(self, block: SnapshotBlock, current_a: FloatArray) -> list[Detection]:
        """Detect a current falling towards zero from its pre-disturbance level (trip), or a large step."""
        latch = self._current_latch(current_a.shape[1])
        valid = block.data_valid()[:, self.current_pmu] & np.isfinite(current_a)
        current = np.where(valid, current_a, np.nan)
        healthy = ~self._sagged(block)[:, self.current_pmu]
        usable = healthy & np.isfinite(current)
        reference = forward_fill(np.where(usable, current, np.nan), self.last_reference_a)
        reference_time = forward_fill(np.where(usable, block.timestamp_s[:, None], np.nan), self.last_reference_time_s)
        self.last_reference_a, self.last_reference_time_s = reference[-1], reference_time[-1]
        t_all, arrays, offset = self.current_history.extend(
            block.timestamp_s,
            {"reference_a": reference, "reference_time_s": reference_time},
        )
        rows = lookback_rows(t_all, offset, self.lookback_s)
        back = np.where(rows >= 0, rows, 0)
        before = arrays["reference_a"][back]
        too_old = (
            t_all[offset:, None] - arrays["reference_time_s"][back] > self.lookback_s + self.config.reference_max_age_s
        )
        before[(rows < 0)[:, None] | too_old | ~np.isfinite(arrays["reference_time_s"][back])] = np.nan
        after = np.where(healthy, current, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = after / before
            trip = (before >= self.min_current_a) & (after < self.open_fraction * before)
            step = np.abs(after - before) > self.step_fraction * np.fmax(before, self.min_current_a)
        on = trip | step
        values = {"current_ratio": ratio, "current_before_a": before, "current_after_a": after}
        transitions = latch.step_block(block.timestamp_s, on, ~on, values)
        return self.outputs[1].build(transitions)

    def _pmu_of_current(self, element: int) -> tuple[int, ...]:
        return (int(self.current_pmu[element]),)

    def _angle_quantities(self, tr: Transition) -> dict[str, float]:
        return {"angle_step_deg": tr.extreme["angle_step_deg"]}

    def _angle_severity(self, tr: Transition) -> Severity:
        return Severity.WARNING

    def _current_quantities(self, tr: Transition) -> dict[str, float]:
        return {
            "current_channel": float(tr.element),
            "current_before_a": tr.current["current_before_a"],
            "current_after_a": tr.current["current_after_a"],
            "current_ratio_min": tr.extreme["current_ratio"],
        }

    def _current_severity(self, tr: Transition) -> Severity:
        ratio = tr.extreme["current_ratio"]
        return severity(bool(np.isfinite(ratio) and ratio < self.open_fraction[tr.element]))
