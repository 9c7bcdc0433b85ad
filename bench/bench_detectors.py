"""Cost of the fast detectors per aligned snapshot at 100 and 500 PMUs x 60 frames/s.

Every detector is on: frequency, ROCOF, voltage, angle separation (one pair per two PMUs),
line trip (two current channels per PMU), islanding (10 groups), data quality.  Measured
snapshot by snapshot (the pdc path) on a quiet grid and during a grid-wide frequency event
(every PMU raised, the latch's slow path), and in one-second blocks.

    python bench/bench_detectors.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wams.detection.analytics.fast import (
    AngleSeparationConfig,
    FastDetectorBank,
    FastDetectorConfig,
    IslandingConfig,
    LineTripConfig,
)
from wams.detection.analytics.types import SnapshotBlock, make_block

RATE_HZ = 60.0


def stream(n_pmu: int, seconds: float, event: bool, seed: int = 0) -> SnapshotBlock:
    """Return a noisy stream; with event, every PMU sits at 59.6 Hz from the second second on."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    t = 1.7e9 + np.arange(n) / RATE_HZ
    f = 60.0 + rng.normal(0.0, 0.005, (n, n_pmu))
    if event:
        f[int(RATE_HZ) :] -= 0.4
    angle = (np.cumsum(360.0 * (f - 60.0) / RATE_HZ, axis=0) + rng.normal(0.0, 0.57, f.shape) + 180.0) % 360.0 - 180.0
    current = 400.0 + rng.normal(0.0, 2.0, (n, 2 * n_pmu))
    return make_block(
        t,
        f,
        rocof_hz_per_s=rng.normal(0.0, 0.05, f.shape),
        voltage_magnitude_pu=1.0 + rng.normal(0.0, 0.005, f.shape),
        voltage_angle_deg=angle,
        current_magnitude_a=current,
    )


def config(n_pmu: int) -> FastDetectorConfig:
    """Return a configuration with every detector busy."""
    return FastDetectorConfig(
        angle=AngleSeparationConfig(pairs=[(2 * k, 2 * k + 1) for k in range(n_pmu // 2)]),
        line_trip=LineTripConfig(current_pmu_index=[p for p in range(n_pmu) for _ in range(2)]),
        islanding=IslandingConfig(groups=[list(range(g, n_pmu, 10)) for g in range(10)]),
    )


def per_snapshot_us(n_pmu: int, block: SnapshotBlock, rows: int) -> float:
    """Return the mean cost (us) of feeding the block `rows` snapshots at a time."""
    bank = FastDetectorBank(n_pmu, config(n_pmu))
    bank.update_block(block.slice(0, int(RATE_HZ)))  # warm up: fill the windows
    started = time.perf_counter()
    for begin in range(int(RATE_HZ), block.n_time, rows):
        bank.update_block(block.slice(begin, begin + rows))
    return 1e6 * (time.perf_counter() - started) / (block.n_time - int(RATE_HZ))


def main() -> None:
    """Print the cost table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} python {platform.python_version()} numpy {np.__version__}")
    budget_us = 1e6 / RATE_HZ
    print("| PMUs | stream | fed | us per snapshot | share of one core at 60 fps |")
    print("|---|---|---|---|---|")
    for n_pmu in (100, 500):
        for event in (False, True):
            block = stream(n_pmu, args.seconds, event)
            for rows, label in ((1, "1 snapshot"), (int(RATE_HZ), "1 s blocks")):
                us = per_snapshot_us(n_pmu, block, rows)
                kind = "frequency event (all raised)" if event else "quiet"
                print(f"| {n_pmu} | {kind} | {label} | {us:.0f} | {100.0 * us / budget_us:.1f}% |")


if __name__ == "__main__":
    main()
