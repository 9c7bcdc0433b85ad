"""All fast detectors of one stream, fed one snapshot or one block at a time."""

from __future__ import annotations

from typing import Protocol

from wams.detection.analytics.fast.base import Output
from wams.detection.analytics.fast.config import FastDetectorConfig
from wams.detection.analytics.fast.frequency import FrequencyDetector, RocofDetector
from wams.detection.analytics.fast.islanding import IslandingDetector
from wams.detection.analytics.fast.line_trip import LineTripDetector
from wams.detection.analytics.fast.quality import DataQualityDetector
from wams.detection.analytics.fast.voltage import AngleSeparationDetector, VoltageDetector
from wams.detection.analytics.types import Detection, Snapshot, SnapshotBlock


class BlockDetector(Protocol):
    """A stateful detector that consumes consecutive blocks of one stream."""

    outputs: list[Output]

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Advance through a block and return what was raised or cleared."""
        ...


class FastDetectorBank:
    """Run every fast detector on a stream of aligned snapshots of n_pmu PMUs."""

    def __init__(self, n_pmu: int, config: FastDetectorConfig | None = None) -> None:
        """Build the detectors; thresholds may be per PMU, per pair or per group (see config)."""
        self.n_pmu = n_pmu
        self.config = config or FastDetectorConfig()
        self.detectors: list[BlockDetector] = []
        self.reset()

    def reset(self) -> None:
        """Forget all state (history, pending and raised conditions)."""
        cfg = self.config
        n = self.n_pmu
        self.detectors = [
            DataQualityDetector(n, cfg.quality),
            FrequencyDetector(n, cfg.nominal_hz, cfg.frequency),
            RocofDetector(n, cfg.rocof),
            VoltageDetector(n, cfg.voltage),
            AngleSeparationDetector(n, cfg.angle),
            LineTripDetector(n, cfg.nominal_hz, cfg.line_trip),
            IslandingDetector(n, cfg.islanding),
        ]
        self.last_timestamp_s = float("-inf")

    def update(self, snapshot: Snapshot) -> list[Detection]:
        """Consume one snapshot; return the detections it raised or cleared."""
        return self.update_block(snapshot.as_block())

    def update_block(self, block: SnapshotBlock) -> list[Detection]:
        """Consume consecutive snapshots; return detections ordered by detection time."""
        if block.n_pmu != self.n_pmu:
            raise ValueError(f"block has {block.n_pmu} PMUs, bank expects {self.n_pmu}")
        if block.n_time == 0:
            return []
        if block.timestamp_s[0] <= self.last_timestamp_s or (
            block.n_time > 1 and (block.timestamp_s[1:] <= block.timestamp_s[:-1]).any()
        ):
            raise ValueError("snapshot timestamps must increase strictly")
        self.last_timestamp_s = float(block.timestamp_s[-1])
        found: list[Detection] = []
        for detector in self.detectors:
            found.extend(detector.update_block(block))
        found.sort(key=lambda d: d.detected_time_s)
        return found

    def open_detections(self) -> list[Detection]:
        """Return every condition raised now, with its extremes so far (e.g. at the end of a record)."""
        return [det for detector in self.detectors for output in detector.outputs for det in output.open()]
