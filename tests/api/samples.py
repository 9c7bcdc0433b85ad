"""Measurements with known values, stored in the historian for the detection and API tests."""

from __future__ import annotations

import datetime as dt

import numpy as np

from wams.historian.blocks import SampleBlock
from wams.historian.services import ingest

BASE_V = 345e3 / np.sqrt(3.0)  # phase-to-neutral base of a 345 kV bus


def store_series(
    pmu_id: int,
    t_s: np.ndarray,
    frequency_hz: np.ndarray,
    angle_deg: np.ndarray,
    magnitude_pu: np.ndarray | float = 1.0,
    block_s: float = 5.0,
) -> int:
    """Store (n,) epoch times, frequency, angle (and magnitude) of one PMU as 5-s blocks; return samples stored."""
    stamps = np.round(np.asarray(t_s) * 1e6).astype(np.int64)
    magnitude = np.broadcast_to(np.asarray(magnitude_pu, dtype=np.float64), stamps.shape) * BASE_V
    phasors = (magnitude * np.exp(1j * np.deg2rad(angle_deg)))[:, None]
    stored = 0
    edges = np.arange(stamps[0], stamps[-1] + 1, int(block_s * 1e6))
    for first_us in edges:
        keep = (stamps >= first_us) & (stamps < first_us + int(block_s * 1e6))
        if not keep.any():
            continue
        n = int(keep.sum())
        stored += ingest(
            SampleBlock(
                pmu_id=pmu_id,
                timestamp_us=stamps[keep],
                stat=np.zeros(n, np.uint16),
                frequency_hz=np.asarray(frequency_hz)[keep],
                rocof_hz_per_s=np.zeros(n),
                phasors=phasors[keep],
            )
        )
    return stored


def steady(
    pmu_id: int, start: dt.datetime, seconds: float, rate_hz: float = 30.0, frequency_hz: float = 60.0
) -> np.ndarray:
    """Store a steady signal of one PMU from start; return its times (epoch s)."""
    t_s = start.timestamp() + np.arange(round(seconds * rate_hz)) / rate_hz
    n = t_s.size
    store_series(pmu_id, t_s, np.full(n, frequency_hz), np.full(n, 10.0))
    return t_s
