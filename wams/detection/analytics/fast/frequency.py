"""Under/over-frequency and ROCOF detectors, vectorised across PMUs."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.fast.base import Output, beyond, severity, single
from wams.detection.analytics.fast.config import FrequencyConfig, RocofConfig
from wams.detection.analytics.history import RowHistory, windowed_slope
from wams.detection.analytics.latch import ConditionLatch, Transition
from wams.detection.analytics.types import (
    BoolArray,
    Detection,
    DetectionKind,
    DetectionPhase,
    FloatArray,
    Severity,
    SnapshotBlock,
    nanmedian,
    per_element,
)


class FrequencyDetector:
    """Raise under- and over-frequency per PMU when the deviation holds for the pickup time."""

    def __init__(self, n_pmu: int, nominal_hz: float, config: FrequencyConfig) -> None:
        """Set per-PMU limits from the config."""
        warn = per_element(config.warning_deviation_hz, n_pmu, "warning_deviation_hz")
        alarm = per_element(config.alarm_deviation_hz, n_pmu, "alarm_deviation_hz")
        hyst = per_element(config.hysteresis_hz, n_pmu, "hysteresis_hz")
        self.under_warning_hz = nominal_hz - warn
        self.under_alarm_hz = nominal_hz - alarm
        self.under_clear_hz = nominal_hz - warn + hyst
        self.over_warning_hz = nominal_hz + warn
        self.over_alarm_hz = nominal_hz + alarm
        self.over_clear_hz = nominal_hz + warn - hyst
        self.under = ConditionLatch(n_pmu, config.pickup_s, config.dropout_s, {"frequency_hz": "min"})
        self.over = ConditionLatch(n_pmu, config.pickup_s, config.dropout_s, {"frequency_hz": "max"})
        self.outputs = [
            Output(self.under, DetectionKind.UNDER_FREQUENCY, single, self._under_quantities, self._under_severity),
            Output(self.over, DetectionKind.OVER_FREQUENCY, single, self._over_quantities, self._over_severity),
        ]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        valid = block.data_valid() & np.isfinite(block.frequency_hz)
        f = np.where(valid, block.frequency_hz, np.nan)
        values = {"frequency_hz": f}
        with np.errstate(invalid="ignore"):
            under = self.under.step_block(
                block.timestamp_s, valid & (f < self.under_warning_hz), valid & (f > self.under_clear_hz), values
            )
            over = self.over.step_block(
                block.timestamp_s, valid & (f > self.over_warning_hz), valid & (f < self.over_clear_hz), values
            )
        return self.outputs[0].build(under) + self.outputs[1].build(over)

    def _under_quantities(self, tr: Transition) -> dict[str, float]:
        return {"frequency_hz": tr.current["frequency_hz"], "frequency_nadir_hz": tr.extreme["frequency_hz"]}

    def _over_quantities(self, tr: Transition) -> dict[str, float]:
        return {"frequency_hz": tr.current["frequency_hz"], "frequency_peak_hz": tr.extreme["frequency_hz"]}

    def _under_severity(self, tr: Transition) -> Severity:
        return severity(beyond(tr.extreme["frequency_hz"], self.under_alarm_hz, tr.element, below=True))

    def _over_severity(self, tr: Transition) -> Severity:
        return severity(beyond(tr.extreme["frequency_hz"], self.over_alarm_hz, tr.element, below=False))


class RocofDetector:
    """Raise per PMU on a large local frequency slope, and grid-wide on a modest median slope."""

    def __init__(self, n_pmu: int, config: RocofConfig) -> None:
        """Set per-PMU and grid-wide limits from the config."""
        self.n_pmu = n_pmu
        self.window_s = config.window_s
        self.warning = per_element(config.warning_hz_per_s, n_pmu, "warning_hz_per_s")
        self.alarm = per_element(config.alarm_hz_per_s, n_pmu, "alarm_hz_per_s")
        self.clear = self.warning - per_element(config.hysteresis_hz_per_s, n_pmu, "hysteresis_hz_per_s")
        self.grid_warning = float(config.grid_warning_hz_per_s)
        self.grid_alarm = float(config.grid_alarm_hz_per_s)
        self.grid_clear = self.grid_warning - float(config.grid_hysteresis_hz_per_s)
        self.grid_min_pmus = int(config.grid_min_pmus)
        self.history = RowHistory(config.window_s)
        self.latch = ConditionLatch(n_pmu, config.pickup_s, config.dropout_s, {"rocof_hz_per_s": "absmax"})
        self.grid_latch = ConditionLatch(1, config.grid_pickup_s, config.dropout_s, {"rocof_hz_per_s": "absmax"})
        self.grid_pmus: tuple[int, ...] = ()
        self.outputs = [
            Output(self.latch, DetectionKind.ROCOF, single, self._quantities, self._severity),
            Output(
                self.grid_latch, DetectionKind.ROCOF, self._grid_pmus, self._quantities, self._grid_severity, "grid@"
            ),
        ]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        valid = block.data_valid() & np.isfinite(block.frequency_hz)
        f = np.where(valid, block.frequency_hz, np.nan)
        t_all, arrays, offset = self.history.extend(block.timestamp_s, {"frequency_hz": f})
        rocof = windowed_slope(t_all, arrays["frequency_hz"], offset, self.window_s)  # (n_time, n_pmu)
        known = np.isfinite(rocof)
        magnitude = np.abs(np.where(known, rocof, 0.0))
        transitions = self.latch.step_block(
            block.timestamp_s,
            known & (magnitude > self.warning),
            known & (magnitude < self.clear),
            {"rocof_hz_per_s": rocof},
        )
        found = self.outputs[0].build(transitions)
        if self.n_pmu >= self.grid_min_pmus:
            found += self._grid(block, rocof, known)
        return found

    def _grid(self, block: SnapshotBlock, rocof: FloatArray, known: BoolArray) -> list[Detection]:
        """Run the grid-wide condition on the median slope of the rows with enough PMUs."""
        enough = known.sum(axis=1) >= self.grid_min_pmus
        median = np.where(enough, nanmedian(rocof, axis=1), np.nan)[:, None]  # (n_time, 1)
        magnitude = np.abs(np.where(enough[:, None], median, 0.0))
        transitions = self.grid_latch.step_block(
            block.timestamp_s,
            enough[:, None] & (magnitude > self.grid_warning),
            enough[:, None] & (magnitude < self.grid_clear),
            {"rocof_hz_per_s": median},
        )
        if any(tr.phase is DetectionPhase.RAISED for tr in transitions):
            # The PMUs reporting when it was raised name the condition until it clears (its key).
            self.grid_pmus = tuple(int(i) for i in np.flatnonzero(known.any(axis=0)))
        return self.outputs[1].build(transitions)

    def _grid_pmus(self, element: int) -> tuple[int, ...]:
        """Return the PMUs of the grid-wide condition: those reporting when it was raised."""
        return self.grid_pmus

    def _quantities(self, tr: Transition) -> dict[str, float]:
        return {"rocof_hz_per_s": tr.current["rocof_hz_per_s"], "rocof_max_hz_per_s": tr.extreme["rocof_hz_per_s"]}

    def _severity(self, tr: Transition) -> Severity:
        return severity(beyond(abs(tr.extreme["rocof_hz_per_s"]), self.alarm, tr.element, below=False))

    def _grid_severity(self, tr: Transition) -> Severity:
        return severity(bool(abs(tr.extreme["rocof_hz_per_s"]) > self.grid_alarm))
