"""The unit of data handed from the pdc to the historian: a block of samples of one PMU.

The pdc cuts each PMU's aligned frames into blocks (typically one second), serialises them into
the Redis hand-off stream (or passes them in-process in embedded mode), and a worker stores them.
Values are in engineering units; channel k of `phasors` is the PMU's phasor channel with
`order == k` in the grid model (likewise analogs and digital words).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SampleBlock:
    """Samples of one PMU; every array's first axis is time (n samples)."""

    pmu_id: int
    timestamp_us: np.ndarray  # (n,) int64, UTC microseconds since the epoch, strictly increasing
    stat: np.ndarray  # (n,) uint16, the C37.118 STAT word
    frequency_hz: np.ndarray  # (n,) float64
    rocof_hz_per_s: np.ndarray  # (n,) float64
    phasors: np.ndarray  # (n, n_phasors) complex128, volts or amperes
    analogs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n, n_analogs) float64
    digitals: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint16))  # (n, n_words) uint16
    late: np.ndarray | None = None  # (n,) bool: arrived after the pdc's wait time

    def __post_init__(self) -> None:
        n = len(self.timestamp_us)
        self.timestamp_us = np.asarray(self.timestamp_us, dtype=np.int64)
        self.stat = np.asarray(self.stat, dtype=np.uint16)
        self.frequency_hz = np.asarray(self.frequency_hz, dtype=np.float64)
        self.rocof_hz_per_s = np.asarray(self.rocof_hz_per_s, dtype=np.float64)
        self.phasors = np.asarray(self.phasors, dtype=np.complex128).reshape(n, -1)
        self.analogs = np.asarray(self.analogs, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, 0))
        self.digitals = np.asarray(self.digitals, dtype=np.uint16).reshape(n, -1) if n else np.zeros((0, 0), np.uint16)
        if self.late is None:
            self.late = np.zeros(n, dtype=bool)
        self.late = np.asarray(self.late, dtype=bool)
        for name in ("stat", "frequency_hz", "rocof_hz_per_s", "late"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"SampleBlock.{name} has {len(getattr(self, name))} samples, expected {n}")

    def __len__(self) -> int:
        return len(self.timestamp_us)
