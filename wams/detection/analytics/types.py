"""Snapshots in, detections out: the data types shared by every detector."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
UInt16Array = npt.NDArray[np.uint16]

# C37.118.2 STAT word bits.
STAT_DATA_ERROR_MASK = 0xC000  # bits 15-14: nonzero means the data is invalid
STAT_SYNC_ERROR_BIT = 0x2000  # bit 13: 1 = PMU not synchronised to UTC
STAT_DATA_MODIFIED_BIT = 0x0200  # bit 9: data modified by a post-processing device


class DetectionKind(enum.StrEnum):
    """What a detection is about."""

    UNDER_FREQUENCY = "under_frequency"
    OVER_FREQUENCY = "over_frequency"
    ROCOF = "rocof"
    VOLTAGE_SAG = "voltage_sag"
    VOLTAGE_SWELL = "voltage_swell"
    ANGLE_SEPARATION = "angle_separation"
    LINE_TRIP = "line_trip"
    ISLANDING = "islanding"
    SYNC_LOSS = "sync_loss"
    INVALID_DATA = "invalid_data"
    STALE_DATA = "stale_data"
    POORLY_DAMPED_OSCILLATION = "poorly_damped_oscillation"
    FORCED_OSCILLATION = "forced_oscillation"


class DetectionPhase(enum.StrEnum):
    """Whether a detection opens or closes a condition."""

    RAISED = "raised"
    CLEARED = "cleared"


class Severity(enum.IntEnum):
    """How urgent a condition is; ordered so that max() gives the worst."""

    INFO = 0
    WARNING = 1
    ALARM = 2

    @property
    def label(self) -> str:
        """Return the lower-case name used in JSON."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Detection:
    """One raised or cleared condition at one place (a PMU, a pair, a group or a mode)."""

    kind: DetectionKind
    phase: DetectionPhase
    severity: Severity
    pmu_indices: tuple[int, ...]
    start_time_s: float  # epoch seconds at which the condition began
    detected_time_s: float  # epoch seconds of the snapshot that raised or cleared it
    end_time_s: float | None = None  # epoch seconds at which the condition ended (cleared only)
    quantities: dict[str, float] = field(default_factory=dict)
    key: str = ""  # identity for deduplication: a cleared detection repeats its raised key

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {
            "kind": self.kind.value,
            "phase": self.phase.value,
            "severity": self.severity.label,
            "pmu_indices": list(self.pmu_indices),
            "start_time_s": self.start_time_s,
            "detected_time_s": self.detected_time_s,
            "end_time_s": self.end_time_s,
            "quantities": {k: _json_float(v) for k, v in self.quantities.items()},
            "key": self.key,
        }


def _json_float(value: float) -> float | None:
    """Return value, or None where JSON has no number for it (nan, inf)."""
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One time-aligned set of measurements, one entry per PMU (shapes (n_pmu,))."""

    timestamp_s: float
    frequency_hz: FloatArray
    rocof_hz_per_s: FloatArray
    voltage_magnitude_pu: FloatArray
    voltage_angle_deg: FloatArray
    stat: UInt16Array
    present: BoolArray
    current_magnitude_a: FloatArray | None = None  # (n_current,), see LineTripConfig
    current_angle_deg: FloatArray | None = None  # (n_current,)

    def as_block(self) -> SnapshotBlock:
        """Return this snapshot as a block of one row."""
        return SnapshotBlock(
            timestamp_s=np.array([self.timestamp_s], dtype=np.float64),
            frequency_hz=np.asarray(self.frequency_hz, dtype=np.float64)[None, :],
            rocof_hz_per_s=np.asarray(self.rocof_hz_per_s, dtype=np.float64)[None, :],
            voltage_magnitude_pu=np.asarray(self.voltage_magnitude_pu, dtype=np.float64)[None, :],
            voltage_angle_deg=np.asarray(self.voltage_angle_deg, dtype=np.float64)[None, :],
            stat=np.asarray(self.stat, dtype=np.uint16)[None, :],
            present=np.asarray(self.present, dtype=bool)[None, :],
            current_magnitude_a=_row(self.current_magnitude_a),
            current_angle_deg=_row(self.current_angle_deg),
        )


def _row(values: FloatArray | None) -> FloatArray | None:
    """Return values as a (1, n) float array, or None."""
    return None if values is None else np.asarray(values, dtype=np.float64)[None, :]


@dataclass(frozen=True, slots=True)
class SnapshotBlock:
    """Consecutive snapshots: timestamps (n_time,), every other array (n_time, n_pmu)."""

    timestamp_s: FloatArray
    frequency_hz: FloatArray
    rocof_hz_per_s: FloatArray
    voltage_magnitude_pu: FloatArray
    voltage_angle_deg: FloatArray
    stat: UInt16Array
    present: BoolArray
    current_magnitude_a: FloatArray | None = None  # (n_time, n_current)
    current_angle_deg: FloatArray | None = None  # (n_time, n_current)

    @property
    def n_time(self) -> int:
        """Return the number of snapshots."""
        return int(self.timestamp_s.shape[0])

    @property
    def n_pmu(self) -> int:
        """Return the number of PMUs."""
        return int(self.frequency_hz.shape[1])

    def data_valid(self) -> BoolArray:
        """Return (n_time, n_pmu): present and without a STAT data error."""
        return self.present & ((self.stat & STAT_DATA_ERROR_MASK) == 0)

    def sync_error(self) -> BoolArray:
        """Return (n_time, n_pmu): present and flagged not synchronised."""
        return self.present & ((self.stat & STAT_SYNC_ERROR_BIT) != 0)

    def slice(self, start: int, stop: int) -> SnapshotBlock:
        """Return rows start..stop-1 as a new block."""
        sel = slice(start, stop)
        return SnapshotBlock(
            timestamp_s=self.timestamp_s[sel],
            frequency_hz=self.frequency_hz[sel],
            rocof_hz_per_s=self.rocof_hz_per_s[sel],
            voltage_magnitude_pu=self.voltage_magnitude_pu[sel],
            voltage_angle_deg=self.voltage_angle_deg[sel],
            stat=self.stat[sel],
            present=self.present[sel],
            current_magnitude_a=None if self.current_magnitude_a is None else self.current_magnitude_a[sel],
            current_angle_deg=None if self.current_angle_deg is None else self.current_angle_deg[sel],
        )


def make_block(
    timestamp_s: npt.ArrayLike,
    frequency_hz: npt.ArrayLike,
    *,
    rocof_hz_per_s: npt.ArrayLike | None = None,
    voltage_magnitude_pu: npt.ArrayLike | None = None,
    voltage_angle_deg: npt.ArrayLike | None = None,
    stat: npt.ArrayLike | None = None,
    present: npt.ArrayLike | None = None,
    current_magnitude_a: npt.ArrayLike | None = None,
    current_angle_deg: npt.ArrayLike | None = None,
) -> SnapshotBlock:
    """Build a block from (n_time, n_pmu) arrays; unmeasured quantities are nan (ignored by detectors)."""
    t = np.asarray(timestamp_s, dtype=np.float64).reshape(-1)
    f = np.asarray(frequency_hz, dtype=np.float64).reshape(t.shape[0], -1)
    shape = f.shape

    def floats(values: npt.ArrayLike | None, fill: float) -> FloatArray:
        if values is None:
            return np.full(shape, fill, dtype=np.float64)
        return np.broadcast_to(np.asarray(values, dtype=np.float64), shape).copy()

    def optional(values: npt.ArrayLike | None) -> FloatArray | None:
        if values is None:
            return None
        return np.asarray(values, dtype=np.float64).reshape(t.shape[0], -1)

    return SnapshotBlock(
        timestamp_s=t,
        frequency_hz=f,
        rocof_hz_per_s=floats(rocof_hz_per_s, np.nan),
        voltage_magnitude_pu=floats(voltage_magnitude_pu, np.nan),
        voltage_angle_deg=floats(voltage_angle_deg, np.nan),
        stat=np.zeros(shape, np.uint16) if stat is None else np.broadcast_to(np.asarray(stat, np.uint16), shape).copy(),
        present=np.ones(shape, bool) if present is None else np.broadcast_to(np.asarray(present, bool), shape).copy(),
        current_magnitude_a=optional(current_magnitude_a),
        current_angle_deg=optional(current_angle_deg),
    )


def per_element(values: float | npt.ArrayLike, n: int, name: str) -> FloatArray:
    """Broadcast a scalar or per-element threshold to a float array of shape (n,)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] not in (1, n)):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got {arr.shape}")
    return np.broadcast_to(arr, (n,)).astype(np.float64)


def wrap_deg(angle_deg: npt.NDArray[np.float64]) -> FloatArray:
    """Wrap angles in degrees into [-180, 180)."""
    return np.asarray((angle_deg + 180.0) % 360.0 - 180.0, dtype=np.float64)


def nanmedian(values: FloatArray, axis: int) -> FloatArray:
    """Return the median ignoring nan along axis, nan where a slice has no value.

    Sorting puts nan last, so the median sits at the middle of the finite prefix; much
    cheaper than np.nanmedian on the small slices here.
    """
    ordered = np.sort(values, axis=axis)
    count = np.sum(np.isfinite(values), axis=axis, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0), axis=axis)
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0), axis=axis)
    median = np.where(count > 0, 0.5 * (low + high), np.nan)
    return np.asarray(np.squeeze(median, axis=axis), dtype=np.float64)
