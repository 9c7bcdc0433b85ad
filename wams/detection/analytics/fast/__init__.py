"""Fast per-snapshot detectors."""

from wams.detection.analytics.fast.bank import FastDetectorBank
from wams.detection.analytics.fast.config import (
    AngleSeparationConfig,
    DataQualityConfig,
    FastDetectorConfig,
    FrequencyConfig,
    IslandingConfig,
    LineTripConfig,
    RocofConfig,
    VoltageConfig,
)

__all__ = [
    "AngleSeparationConfig",
    "DataQualityConfig",
    "FastDetectorBank",
    "FastDetectorConfig",
    "FrequencyConfig",
    "IslandingConfig",
    "LineTripConfig",
    "RocofConfig",
    "VoltageConfig",
]
