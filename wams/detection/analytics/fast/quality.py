"""Data quality detector: sync loss and invalid data from STAT bits, stale (missing) data."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.fast.base import Output, single
from wams.detection.analytics.fast.config import DataQualityConfig
from wams.detection.analytics.latch import ConditionLatch, Transition
from wams.detection.analytics.types import (
    STAT_DATA_ERROR_MASK,
    STAT_DATA_MODIFIED_BIT,
    STAT_SYNC_ERROR_BIT,
    Detection,
    DetectionKind,
    Severity,
    SnapshotBlock,
)


class DataQualityDetector:
    """Raise per PMU on lost sync, invalid data or no data for stale_after_s."""

    def __init__(self, n_pmu: int, config: DataQualityConfig) -> None:
        """Create one latch per condition."""
        self.sync = ConditionLatch(n_pmu, config.sync_pickup_s, config.dropout_s)
        self.invalid = ConditionLatch(n_pmu, config.invalid_pickup_s, config.dropout_s)
        self.stale = ConditionLatch(n_pmu, config.stale_after_s, config.dropout_s)
        self.outputs = [
            Output(self.sync, DetectionKind.SYNC_LOSS, single, _stat, _warning),
            Output(self.invalid, DetectionKind.INVALID_DATA, single, _stat, _warning),
            Output(self.stale, DetectionKind.STALE_DATA, single, _nothing, _warning),
        ]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        present = block.present
        stat = block.stat
        values = {"stat": stat.astype(np.float64)}
        sync_error = present & ((stat & STAT_SYNC_ERROR_BIT) != 0)
        sync_ok = present & ((stat & STAT_SYNC_ERROR_BIT) == 0)
        data_error = present & ((stat & STAT_DATA_ERROR_MASK) != 0)
        data_ok = present & ((stat & STAT_DATA_ERROR_MASK) == 0)
        t = block.timestamp_s
        sync, invalid, stale = self.outputs
        return (
            sync.build(self.sync.step_block(t, sync_error, sync_ok, values))
            + invalid.build(self.invalid.step_block(t, data_error, data_ok, values))
            + stale.build(self.stale.step_block(t, ~present, present, values))
        )


def _stat(tr: Transition) -> dict[str, float]:
    """Report the STAT word of the row and its data-modified bit."""
    stat = tr.current["stat"]
    modified = float((int(stat) & STAT_DATA_MODIFIED_BIT) != 0) if np.isfinite(stat) else float("nan")
    return {"stat_word": stat, "data_modified": modified}


def _nothing(tr: Transition) -> dict[str, float]:
    """Report no quantity beyond the duration."""
    return {}


def _warning(tr: Transition) -> Severity:
    """Rate data-quality conditions as warnings."""
    return Severity.WARNING
