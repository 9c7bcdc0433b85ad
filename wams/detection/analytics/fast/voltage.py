"""Voltage sag/swell and angle separation detectors, vectorised across PMUs and pairs."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.fast.base import Output, beyond, severity, single
from wams.detection.analytics.fast.config import AngleSeparationConfig, VoltageConfig
from wams.detection.analytics.latch import ConditionLatch, Transition
from wams.detection.analytics.types import (
    Detection,
    DetectionKind,
    Severity,
    SnapshotBlock,
    per_element,
    wrap_deg,
)


class VoltageDetector:
    """Raise sags and swells per PMU when the magnitude stays beyond its limit for the pickup time.

    A sag below the alarm level raises at once (an instantaneous element, as protection has).
    """

    def __init__(self, n_pmu: int, config: VoltageConfig) -> None:
        """Set per-PMU limits from the config."""
        hyst = per_element(config.hysteresis_pu, n_pmu, "hysteresis_pu")
        self.sag_warning = per_element(config.sag_warning_pu, n_pmu, "sag_warning_pu")
        self.sag_alarm = per_element(config.sag_alarm_pu, n_pmu, "sag_alarm_pu")
        self.swell_warning = per_element(config.swell_warning_pu, n_pmu, "swell_warning_pu")
        self.swell_alarm = per_element(config.swell_alarm_pu, n_pmu, "swell_alarm_pu")
        self.sag_clear = self.sag_warning + hyst
        self.swell_clear = self.swell_warning - hyst
        self.sag = ConditionLatch(n_pmu, config.pickup_s, config.dropout_s, {"voltage_pu": "min"})
        self.swell = ConditionLatch(n_pmu, config.pickup_s, config.dropout_s, {"voltage_pu": "max"})
        self.outputs = [
            Output(self.sag, DetectionKind.VOLTAGE_SAG, single, self._sag_quantities, self._sag_severity),
            Output(self.swell, DetectionKind.VOLTAGE_SWELL, single, self._swell_quantities, self._swell_severity),
        ]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        valid = block.data_valid() & np.isfinite(block.voltage_magnitude_pu)
        v = np.where(valid, block.voltage_magnitude_pu, np.nan)
        values = {"voltage_pu": v}
        with np.errstate(invalid="ignore"):
            # A sag below the alarm level raises on its first frame: a fault cleared in three cycles
            # lasts two frames at 30 frames/s, shorter than the pickup time.
            sag = self.sag.step_block(
                block.timestamp_s,
                valid & (v < self.sag_warning),
                valid & (v > self.sag_clear),
                values,
                instant=valid & (v < self.sag_alarm),
            )
            swell = self.swell.step_block(
                block.timestamp_s, valid & (v > self.swell_warning), valid & (v < self.swell_clear), values
            )
        return self.outputs[0].build(sag) + self.outputs[1].build(swell)

    def _sag_quantities(self, tr: Transition) -> dict[str, float]:
        low = tr.extreme["voltage_pu"]
        return {"voltage_pu": tr.current["voltage_pu"], "voltage_min_pu": low, "sag_depth_pu": 1.0 - low}

    def _swell_quantities(self, tr: Transition) -> dict[str, float]:
        high = tr.extreme["voltage_pu"]
        return {"voltage_pu": tr.current["voltage_pu"], "voltage_max_pu": high, "swell_height_pu": high - 1.0}

    def _sag_severity(self, tr: Transition) -> Severity:
        return severity(beyond(tr.extreme["voltage_pu"], self.sag_alarm, tr.element, below=True))

    def _swell_severity(self, tr: Transition) -> Severity:
        return severity(beyond(tr.extreme["voltage_pu"], self.swell_alarm, tr.element, below=False))


class AngleSeparationDetector:
    """Raise per configured pair when |angle(first) - angle(second)| stays above its limit."""

    def __init__(self, n_pmu: int, config: AngleSeparationConfig) -> None:
        """Check the pairs and set per-pair limits from the config."""
        pairs = np.asarray(config.pairs, dtype=np.intp).reshape(-1, 2)
        if pairs.size and (pairs.min() < 0 or pairs.max() >= n_pmu):
            raise ValueError(f"angle pairs must index PMUs 0..{n_pmu - 1}")
        self.pairs = pairs
        n_pair = pairs.shape[0]
        self.warning = per_element(config.warning_deg, n_pair, "warning_deg")
        self.alarm = per_element(config.alarm_deg, n_pair, "alarm_deg")
        self.clear = self.warning - per_element(config.hysteresis_deg, n_pair, "hysteresis_deg")
        self.latch = ConditionLatch(n_pair, config.pickup_s, config.dropout_s, {"angle_separation_deg": "absmax"})
        self.outputs = [
            Output(self.latch, DetectionKind.ANGLE_SEPARATION, self._pmus, self._quantities, self._severity)
        ]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        if self.pairs.shape[0] == 0:
            return []
        usable = block.data_valid() & ~block.sync_error() & np.isfinite(block.voltage_angle_deg)
        first, second = self.pairs[:, 0], self.pairs[:, 1]
        known = usable[:, first] & usable[:, second]
        separation = wrap_deg(block.voltage_angle_deg[:, first] - block.voltage_angle_deg[:, second])
        separation = np.where(known, separation, np.nan)
        magnitude = np.abs(np.where(known, separation, 0.0))
        transitions = self.latch.step_block(
            block.timestamp_s,
            known & (magnitude > self.warning),
            known & (magnitude < self.clear),
            {"angle_separation_deg": separation},
        )
        return self.outputs[0].build(transitions)

    def _pmus(self, element: int) -> tuple[int, ...]:
        return (int(self.pairs[element, 0]), int(self.pairs[element, 1]))

    def _quantities(self, tr: Transition) -> dict[str, float]:
        return {
            "angle_separation_deg": tr.current["angle_separation_deg"],
            "angle_separation_max_deg": tr.extreme["angle_separation_deg"],
        }

    def _severity(self, tr: Transition) -> Severity:
        return severity(beyond(abs(tr.extreme["angle_separation_deg"]), self.alarm, tr.element, below=False))
