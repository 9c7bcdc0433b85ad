"""Synthetic streams with known answers for the detection tests."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.types import FloatArray

EPOCH_S = 1_700_000_000.0  # streams start at this epoch time
RATE_HZ = 60.0


def times(duration_s: float, rate_hz: float = RATE_HZ) -> FloatArray:
    """Return epoch timestamps (n_time,) of a stream of duration_s."""
    return EPOCH_S + np.arange(round(duration_s * rate_hz)) / rate_hz


def noisy(shape: tuple[int, int], level: float, std: float, seed: int = 0) -> FloatArray:
    """Return a (n_time, n_pmu) array of level plus white noise."""
    return level + np.random.default_rng(seed).normal(0.0, std, shape)


def angles_for(frequency_hz: FloatArray, nominal_hz: float = 60.0, rate_hz: float = RATE_HZ) -> FloatArray:
    """Return the phase angles (deg, wrapped) that a PMU reports for these frequencies."""
    return (np.cumsum(360.0 * (frequency_hz - nominal_hz) / rate_hz, axis=0) + 180.0) % 360.0 - 180.0
