"""Benchmark the C37.118 codec side by side with pyPMU on the same frames, in one run.

Run: python bench/bench_codec.py [--frames 10000] [--repeat 5]
Prints a Markdown table (frames/s, best of --repeat) for 1 PMU x 4 phasors and 10 PMUs x 10 phasors.
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]  # pyPMU needs this on 3.10+

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synchrophasor.frame import CommonFrame  # noqa: E402

from wams.synchrophasor import (  # noqa: E402
    AnalogChannel,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    decode_data_batch,
    decode_frame,
    encode_frame,
    layout_of,
)


def make_stream(n_pmu: int, n_phasors: int, n_frames: int) -> tuple[ConfigFrame, list[bytes]]:
    """Return a CFG-2 (float polar phasors, 16-bit FREQ, 1 float analog, 1 digital per PMU) and its frames."""
    pmus = [
        PmuConfig(
            station_name=f"PMU{i}",
            idcode=i + 1,
            phasor_float=True,
            polar=True,
            freq_float=False,  # pyPMU rejects real float FREQ values (it reads them as a deviation)
            analog_float=True,
            phasors=[PhasorChannel(f"PH{k}", "V" if k < 3 else "A") for k in range(n_phasors)],
            analogs=[AnalogChannel("AN")],
            digitals=[DigitalWord([f"D{b}" for b in range(16)])],
            nominal_hz=50,
        )
        for i in range(n_pmu)
    ]
    cfg = ConfigFrame(idcode=7734, time_base=1_000_000, data_rate=50, pmus=pmus)
    rng = np.random.default_rng(1)
    frames = []
    for k in range(n_frames):
        data = [
            PmuData(
                stat=0,
                phasors=rng.uniform(100, 200e3, n_phasors) * np.exp(1j * rng.uniform(-np.pi, np.pi, n_phasors)),
                frequency_hz=50.0 + round(rng.normal(0, 0.01), 3),
                rocof_hz_per_s=round(rng.normal(0, 0.1), 2),
                analogs=np.array([rng.normal()]),
                digitals=[k & 0xFFFF],
            )
            for _ in range(n_pmu)
        ]
        frames.append(encode_frame(DataFrame(cfg.idcode, 1_700_000_000 + k // 50, (k % 50) * 20_000, data), cfg))
    return cfg, frames


def best_rate(fn: Callable[[], int], repeat: int) -> float:
    """Return the best frames/s over `repeat` runs of `fn` (which returns the frames it decoded)."""
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
    return best


def bench_shape(n_pmu: int, n_phasors: int, n_frames: int, repeat: int) -> dict[str, float]:
    """Measure pyPMU per-frame, ours per-frame and ours batch on one stream shape."""
    cfg, frames = make_stream(n_pmu, n_phasors, n_frames)
    pypmu_cfg = CommonFrame.convert2frame(encode_frame(cfg))
    layout_of(cfg)  # compiled once per configuration, as a link does
    joined = b"".join(frames)
    # Check both decoders agree on the values before timing them.
    theirs = CommonFrame.convert2frame(frames[0], pypmu_cfg).get_measurements()["measurements"][0]["phasors"]
    ours = decode_frame(frames[0], cfg).pmus[0].phasors  # type: ignore[union-attr]
    np.testing.assert_allclose(np.abs(ours), [m for m, _ in theirs], rtol=1e-6)

    def run_pypmu() -> int:
        for raw in frames:
            CommonFrame.convert2frame(raw, pypmu_cfg)
        return len(frames)

    def run_ours() -> int:
        for raw in frames:
            decode_frame(raw, cfg)
        return len(frames)

    def run_batch() -> int:
        batch = decode_data_batch(cfg, joined)
        assert batch.ok.all()
        return len(batch)

    return {
        "frame_bytes": len(frames[0]),
        "pypmu": best_rate(run_pypmu, repeat),
        "ours": best_rate(run_ours, repeat),
        "batch": best_rate(run_batch, repeat),
    }


def main() -> None:
    """Run both shapes and print the Markdown section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for n_pmu, n_ph in ((1, 4), (10, 10)):
        r = bench_shape(n_pmu, n_ph, args.frames, args.repeat)
        rows.append((f"{n_pmu} PMU x {n_ph} phasors ({int(r['frame_bytes'])} B)", r))
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"Frames: {args.frames} per shape, float polar phasors, 16-bit FREQ/DFREQ, 1 float analog, 1 digital per PMU; best of {args.repeat}."
    )
    print()
    print(
        f"| stream | pyPMU per-frame (frames/s) | ours per-frame (frames/s) | speed-up | ours batch of {args.frames} (frames/s) | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['pypmu']:,.0f} | {r['ours']:,.0f} | {r['ours'] / r['pypmu']:.1f}x "
            f"| {r['batch']:,.0f} | {r['batch'] / r['pypmu']:.0f}x |"
        )


if __name__ == "__main__":
    main()
