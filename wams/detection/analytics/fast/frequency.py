"""Under/over-frequency and ROCOF detectors, vectorised across PMUs."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.fast.base import Output, beyond, severity, single
from wams.detection.analytics.fast.config import FrequencyConfig, RocofConfig
from wams.detection.analytics.history import RowHistory, windowed_slope
from wams.detection.analytics.latch import ConditionLatch, Transition
from wams.detection.analytics.types import Detection, DetectionKind, Severity, SnapshotBlock, per_element


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
    """Raise per PMU when |frequency slope over the window| exceeds the ROCOF limit."""

    def __init__(self, n_pmu: int, config: RocofConfig) -> None:
        """Set per-PMU limits from the config."""
        self.window_s = config.window_s
        self.warning = per_element(config.warning_hz_per_s, n_pmu, "warning_hz_per_s")
        self.alarm = per_element(config.alarm_hz_per_s, n_pmu, "alarm_hz_per_s")
        self.clear = self.warning - per_element(config.hysteresis_hz_per_s, n_pmu, "hysteresis_hz_per_s")
        self.history = RowHistory(config.window_s)
        self.latch = ConditionLatch(n_pmu, config.pickup_s, config.dropout_s, {"rocof_hz_per_s": "absmax"})
        self.outputs = [Output(self.latch, DetectionKind.ROCOF, single, self._quantities, self._severity)]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        valid = block.data_valid() & np.isfinite(block.frequency_hz)
        f = np.where(valid, block.frequency_hz, np.nan)
        t_all, arrays, offset = self.history.extend(block.timestamp_s, {"frequency_hz": f})
        rocof = windowed_slope(t_all, arrays["frequency_hz"], offset, self.window_s)
        known = np.isfinite(rocof)
        magnitude = np.abs(np.where(known, rocof, 0.0))
        transitions = self.latch.step_block(
            block.timestamp_s,
            known & (magnitude > self.warning),
            known & (magnitude < self.clear),
            {"rocof_hz_per_s": rocof},
        )
        return self.outputs[0].build(transitions)

    def _quantities(self, tr: Transition) -> dict[str, float]:
        return {"rocof_hz_per_s": tr.current["rocof_hz_per_s"], "rocof_max_hz_per_s": tr.extreme["rocof_hz_per_s"]}

    def _severity(self, tr: Transition) -> Severity:
        return severity(beyond(abs(tr.extreme["rocof_hz_per_s"]), self.alarm, tr.element, below=False))
