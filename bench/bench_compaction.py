"""Compaction benchmark: ingest of 1 s blocks, then bytes/value and cost of compacting to longer chunks.

Run: `SECRET_KEY=x python bench/bench_compaction.py [--pmus 500] [--minutes 1] [--fps 60] [--chunk-seconds 5,10,30]`
(SQLite in var/) or with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench` (a test database is created
and dropped). The data are bench_historian's fleet (10 float32 polar phasors, realistic noise) cut into
1 s blocks and ingested second by second across the PMUs, as the worker receives them, in
`ingest_many` batches of `--batch` blocks; then `compact_chunks` merges them into each chunk length in turn.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import bench_historian  # noqa: E402 - after the path is set


def _usage(pmu_ids: list[int]) -> tuple[int, int]:
    """Return (chunks, bytes) stored for the PMUs."""
    from django.db.models import Count, Sum

    from wams.historian.models import Chunk

    totals = Chunk.objects.filter(pmu_id__in=pmu_ids).aggregate(chunks=Count("pk"), size=Sum("size_bytes"))
    return totals["chunks"], totals["size"] or 0


def run(pmus: int, minutes: int, fps: int, batch: int, lengths: list[int]) -> None:
    """Ingest, then compact to each chunk length in turn, printing what each step did."""
    from django.conf import settings
    from django.db import connection

    from wams.grid.models import Organisation, Pmu, Stream, Substation
    from wams.historian.compaction import compact_chunks
    from wams.historian.services import ingest, ingest_many

    settings.REDIS_URL = None
    bench_historian.FPS, bench_historian.BLOCK_S = fps, 1
    owner = Organisation.objects.create(name="Bench", code="bench", role="tso")
    substation = Substation.objects.create(
        name="Bench", code="B", voltage_level_kv=345, latitude=42, longitude=-71, owner=owner
    )
    stream = Stream.objects.create(name="Bench", idcode=1, owner=owner)
    pmu_ids = [
        Pmu.objects.create(stream=stream, idcode=i + 1, station_name=f"B{i}", substation=substation, owner=owner).pk
        for i in range(pmus)
    ]
    fleet = bench_historian.Fleet(minutes)
    per_pmu = [list(fleet.blocks(pmu_id, i)) for i, pmu_id in enumerate(pmu_ids)]
    arrival = [per_pmu[k][s] for s in range(len(per_pmu[0])) for k in range(pmus)]  # second by second
    samples = sum(len(block) for block in arrival)
    values = samples * (2 + 2 * bench_historian.N_PHASORS)
    print(f"{connection.vendor}: {pmus} PMUs x {minutes} min at {fps} fps, 1 s blocks: {samples:,} samples")
    single = arrival[: min(len(arrival), 1000)]
    started = time.perf_counter()
    for block in single:
        ingest(block)
    elapsed = time.perf_counter() - started
    print(
        f"ingest, 1 transaction per block: {len(single)} blocks in {elapsed:.2f} s = "
        f"{sum(len(b) for b in single) / elapsed:,.0f} samples/s ({len(single) / elapsed:,.0f} blocks/s)"
    )
    rest = arrival[len(single) :]
    started = time.perf_counter()
    for first in range(0, len(rest), batch):
        ingest_many(rest[first : first + batch])
    elapsed = time.perf_counter() - started
    if rest:
        print(
            f"ingest, {batch} blocks per transaction: {len(rest)} blocks in {elapsed:.2f} s = "
            f"{sum(len(b) for b in rest) / elapsed:,.0f} samples/s ({len(rest) / elapsed:,.0f} blocks/s)"
        )
    chunks, size = _usage(pmu_ids)
    print(f"1 s chunks: {chunks} chunks, {size / values:.3f} bytes/value")
    end_us = int(arrival[-1].timestamp_us[-1])
    for seconds in lengths:
        started = time.perf_counter()
        report = compact_chunks(end_us + 3_600_000_000, seconds=seconds, lookback_s=None, max_windows=10**9)
        elapsed = time.perf_counter() - started
        chunks, size = _usage(pmu_ids)
        print(
            f"compacted to {seconds} s: {report.chunks_before} chunks into {report.chunks_after} in {elapsed:.2f} s "
            f"({report.samples / elapsed:,.0f} samples/s, {report.chunks_before / elapsed:,.0f} chunks/s); "
            f"now {chunks} chunks, {size / values:.3f} bytes/value"
        )
        started = time.perf_counter()
        idle = compact_chunks(end_us + 3_600_000_000, seconds=seconds, lookback_s=None)
        print(f"  a second run finds {idle.windows} windows in {1000 * (time.perf_counter() - started):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pmus", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=1)
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=100, help="blocks per ingest_many transaction")
    parser.add_argument("--chunk-seconds", default="5,10,30", help="compacted chunk lengths, in turn")
    args = parser.parse_args()
    import django

    django.setup()
    from django.db import connection

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        run(args.pmus, args.minutes, args.fps, args.batch, [int(s) for s in args.chunk_seconds.split(",")])
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print("load average:", ", ".join(f"{value:.1f}" for value in os.getloadavg()))


if __name__ == "__main__":
    main()
