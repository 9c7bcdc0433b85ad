"""Known sample blocks for the historian tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from wams.historian.blocks import SampleBlock

T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def times_us(start_us: int, n: int, fps: int = 30) -> np.ndarray:
    """Return n reporting instants at `fps` from start_us (rounded to whole microseconds)."""
    return start_us + np.round(np.arange(n) * 1e6 / fps).astype(np.int64)


def make_block(
    pmu_id: int,
    start_us: int = T0_US,
    n: int = 150,
    fps: int = 30,
    n_phasors: int = 2,
    n_analogs: int = 1,
    n_digitals: int = 1,
    seed: int = 0,
    first: int = 0,
) -> SampleBlock:
    """Return a block of realistic PMU data as decoded from float32 polar frames.

    Samples are instants first .. first + n - 1 of the `fps` grid starting at start_us.
    """
    rng = np.random.default_rng(seed)
    t_s = np.arange(n) / fps
    frequency_hz = 60 + 0.02 * np.sin(2 * np.pi * 0.1 * t_s) + rng.normal(0, 5e-4, n)
    angle_rad = np.cumsum((frequency_hz - 60) * 2 * np.pi / fps)
    magnitude = 199_185.0 * (1 + rng.normal(0, 1e-4, (n, n_phasors)))
    phase = angle_rad[:, None] + 0.2 * np.arange(n_phasors)[None, :] + rng.normal(0, 1e-4, (n, n_phasors))
    magnitude32 = magnitude.astype(np.float32).astype(np.float64)
    phase32 = np.angle(np.exp(1j * phase)).astype(np.float32).astype(np.float64)
    return SampleBlock(
        pmu_id=pmu_id,
        timestamp_us=times_us(start_us, first + n, fps)[first:],
        stat=np.zeros(n, dtype=np.uint16),
        frequency_hz=frequency_hz.astype(np.float32).astype(np.float64),
        rocof_hz_per_s=rng.normal(0, 0.01, n).astype(np.float32).astype(np.float64),
        phasors=magnitude32 * np.exp(1j * phase32),
        analogs=rng.normal(100.0, 1.0, (n, n_analogs)).astype(np.float32).astype(np.float64),
        digitals=rng.integers(0, 2**16, (n, n_digitals)).astype(np.uint16),
    )


def assert_blocks_equal(actual: SampleBlock, expected: SampleBlock) -> None:
    """Assert two blocks hold bit-identical samples."""
    assert actual.pmu_id == expected.pmu_id
    for name in ("timestamp_us", "stat", "frequency_hz", "rocof_hz_per_s", "phasors", "analogs", "digitals", "late"):
        a, b = getattr(actual, name), getattr(expected, name)
        assert a.dtype == b.dtype, name
        assert a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), name
