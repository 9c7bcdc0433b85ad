"""Islanding detector: a group of PMUs whose frequency diverges from the rest of the grid."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.fast.base import Output, beyond, severity
from wams.detection.analytics.fast.config import IslandingConfig
from wams.detection.analytics.history import RowHistory, windowed_slope
from wams.detection.analytics.latch import ConditionLatch, Transition
from wams.detection.analytics.types import Detection, DetectionKind, Severity, SnapshotBlock, nanmedian, per_element


class IslandingDetector:
    """Raise per group when its frequency and ROCOF diverge from the reference together."""

    def __init__(self, n_pmu: int, config: IslandingConfig) -> None:
        """Index the groups (padded to one width) and set per-group limits."""
        self.groups = [tuple(int(i) for i in g) for g in config.groups]
        n_group = len(self.groups)
        width = max((len(g) for g in self.groups), default=0)
        self.member = np.full((n_group, width), -1, dtype=np.intp)
        for k, group in enumerate(self.groups):
            if not group or min(group) < 0 or max(group) >= n_pmu:
                raise ValueError(f"islanding group {k} must list PMUs within 0..{n_pmu - 1}")
            self.member[k, : len(group)] = group
        self.reference_group = config.reference_group
        self.rocof_window_s = config.rocof_window_s
        self.divergence = per_element(config.divergence_hz, n_group, "divergence_hz")
        self.alarm = per_element(config.alarm_divergence_hz, n_group, "alarm_divergence_hz")
        self.clear = self.divergence - per_element(config.hysteresis_hz, n_group, "hysteresis_hz")
        self.rocof_divergence = per_element(config.rocof_divergence_hz_per_s, n_group, "rocof_divergence_hz_per_s")
        self.history = RowHistory(config.rocof_window_s)
        self.latch = ConditionLatch(
            n_group,
            config.pickup_s,
            config.dropout_s,
            {"frequency_divergence_hz": "absmax", "rocof_divergence_hz_per_s": "absmax"},
        )
        self.outputs = [Output(self.latch, DetectionKind.ISLANDING, self._pmus, self._quantities, self._severity)]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        if not self.groups:
            return []
        valid = block.data_valid() & np.isfinite(block.frequency_hz)
        f = np.where(valid, block.frequency_hz, np.nan)  # (n_time, n_pmu)
        gathered = np.where(self.member >= 0, f[:, np.maximum(self.member, 0)], np.nan)  # (n_time, n_group, width)
        group_hz = nanmedian(gathered, axis=2)  # (n_time, n_group)
        if self.reference_group is None:
            reference_hz = nanmedian(f, axis=1)
        else:
            reference_hz = group_hz[:, self.reference_group]
        divergence = group_hz - reference_hz[:, None]
        t_all, arrays, offset = self.history.extend(block.timestamp_s, {"divergence_hz": divergence})
        rocof_divergence = windowed_slope(t_all, arrays["divergence_hz"], offset, self.rocof_window_s)
        known = np.isfinite(divergence)
        size = np.abs(np.where(known, divergence, 0.0))
        diverging = np.nan_to_num(rocof_divergence * np.sign(divergence)) > self.rocof_divergence
        on = known & (size > self.divergence) & diverging
        off = known & (size < self.clear)
        values = {"frequency_divergence_hz": divergence, "rocof_divergence_hz_per_s": rocof_divergence}
        transitions = self.latch.step_block(block.timestamp_s, on, off, values)
        return self.outputs[0].build(transitions)

    def _pmus(self, element: int) -> tuple[int, ...]:
        return self.groups[element]

    def _quantities(self, tr: Transition) -> dict[str, float]:
        return {
            "group_index": float(tr.element),
            "frequency_divergence_hz": tr.current["frequency_divergence_hz"],
            "frequency_divergence_max_hz": tr.extreme["frequency_divergence_hz"],
            "rocof_divergence_max_hz_per_s": tr.extreme["rocof_divergence_hz_per_s"],
        }

    def _severity(self, tr: Transition) -> Severity:
        return severity(beyond(abs(tr.extreme["frequency_divergence_hz"]), self.alarm, tr.element, below=False))
