"""Historian benchmark: ingest rate, compression and query time on realistic PMU data.

Run: `SECRET_KEY=x python bench/bench_historian.py [--pmus 10] [--minutes 60]` (SQLite in var/) or
with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench` (a test database `test_bench` is
created and dropped). Appends the results to bench/RESULTS-historian.md with `--write`.

`--reuse` keeps the data in the configured database itself (DATABASE_URL, or the SQLite file
var/bench-historian.sqlite3) and ingests only when the benchmark's PMUs are not there yet, so that
`--reuse --query-only` times the queries alone on data stored by an earlier run. The Redis hand-off
part flushes Redis db 12 (`BENCH_REDIS_URL` picks another).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

FPS = 30
BLOCK_S = 5
N_PHASORS = 10  # 4 bus voltages + 6 line currents, float32 polar on the wire
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Fleet:
    """Synthetic but realistic PMU signals: common frequency with ambient noise, per-PMU measurement noise."""

    minutes: int
    seed: int = 0

    def blocks(self, pmu_id: int, index: int):  # type: ignore[no-untyped-def]
        """Yield the PMU's 5 s SampleBlocks, as decoded from float32 polar frames."""
        from wams.historian.blocks import SampleBlock

        rng = np.random.default_rng(self.seed + index)
        n = self.minutes * 60 * FPS
        t_s = np.arange(n) / FPS
        common = np.random.default_rng(self.seed)  # the grid frequency is common to all PMUs
        walk = np.cumsum(common.normal(0, 2e-4, n))
        frequency_hz = 60 + walk - walk.mean() + 0.005 * np.sin(2 * np.pi * 0.3 * t_s) + rng.normal(0, 5e-4, n)
        rocof = np.gradient(frequency_hz, 1 / FPS) * 0.05 + rng.normal(0, 0.01, n)
        angle = np.cumsum((frequency_hz - 60) * 2 * np.pi / FPS) + 0.1 * index
        base = np.array([199_185.0] * 4 + [500.0] * 6)
        load = 1 + 0.01 * np.sin(2 * np.pi * t_s[:, None] / 600 + np.arange(N_PHASORS))
        magnitude = base * load * (1 + rng.normal(0, 1e-4, (n, N_PHASORS)))
        phase = angle[:, None] + np.linspace(0, 0.5, N_PHASORS) + rng.normal(0, 1e-4, (n, N_PHASORS))
        magnitude32 = magnitude.astype(np.float32).astype(np.float64)
        phase32 = np.angle(np.exp(1j * phase)).astype(np.float32).astype(np.float64)
        timestamp_us = int(T0.timestamp() * 1e6) + np.round(np.arange(n) * 1e6 / FPS).astype(np.int64)
        stat = np.zeros(n, dtype=np.uint16)
        digitals = np.full((n, 1), 0x0003, dtype=np.uint16)
        step = BLOCK_S * FPS
        for first in range(0, n, step):
            part = slice(first, first + step)
            yield SampleBlock(
                pmu_id=pmu_id,
                timestamp_us=timestamp_us[part],
                stat=stat[part],
                frequency_hz=frequency_hz[part].astype(np.float32).astype(np.float64),
                rocof_hz_per_s=rocof[part].astype(np.float32).astype(np.float64),
                phasors=magnitude32[part] * np.exp(1j * phase32[part]),
                digitals=digitals[part],
            )


def _setup() -> None:
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()


def _existing_pmus(pmus: int, minutes: int, compression: str) -> list[int] | None:
    """Return the PMU ids of an earlier `--reuse` run with the same data, or None."""
    from django.db.models import Sum

    from wams.grid.models import Organisation, Pmu
    from wams.historian.models import Chunk

    owner = Organisation.objects.filter(code=f"bench-{compression}").first()
    if owner is None:
        return None
    pmu_ids = list(
        Pmu.objects.filter(owner=owner, idcode__lte=pmus)
        .exclude(idcode=999)
        .order_by("idcode")
        .values_list("pk", flat=True)
    )
    samples = Chunk.objects.filter(pmu_id__in=pmu_ids).aggregate(total=Sum("n_samples"))["total"] or 0
    if len(pmu_ids) != pmus or samples != pmus * minutes * 60 * FPS:
        raise SystemExit(f"the database holds other benchmark data for {compression}: drop it or leave out --reuse")
    return pmu_ids


def _measure(
    pmus: int, minutes: int, compression: str, reuse: bool = False, query_only: bool = False, repeat: int = 3
) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection

    from wams.grid.models import Organisation, Pmu, Stream, Substation
    from wams.historian.models import Chunk
    from wams.historian.services import ingest, ingest_many

    settings.WAMS_HISTORIAN_COMPRESSION = compression
    settings.REDIS_URL = None
    existing = _existing_pmus(pmus, minutes, compression) if reuse else None
    if existing is not None:
        return {"database": connection.vendor, **_time_queries(existing, minutes, repeat)}
    if query_only:
        raise SystemExit("--query-only needs the data of an earlier --reuse run")
    owner = Organisation.objects.create(name=f"Bench {compression}", code=f"bench-{compression}", role="tso")
    substation = Substation.objects.create(
        name=f"Bench {compression}",
        code=f"B{compression}",
        voltage_level_kv=345,
        latitude=42,
        longitude=-71,
        owner=owner,
    )
    stream = Stream.objects.create(name=f"Bench {compression}", idcode=1, owner=owner)
    pmu_ids = [
        Pmu.objects.create(stream=stream, idcode=i + 1, station_name=f"B{i}", substation=substation, owner=owner).pk
        for i in range(pmus)
    ]
    fleet = Fleet(minutes)
    blocks = {pmu_id: list(fleet.blocks(pmu_id, i)) for i, pmu_id in enumerate(pmu_ids)}
    samples = sum(len(b) for bs in blocks.values() for b in bs)
    # one transaction per block (embedded writer) for the first PMU, batches of 100 blocks (worker) for the rest
    started = time.perf_counter()
    for block in blocks[pmu_ids[0]]:
        ingest(block)
    single_s = time.perf_counter() - started
    single_samples = sum(len(b) for b in blocks[pmu_ids[0]])
    rest = [b for pmu_id in pmu_ids[1:] for b in blocks[pmu_id]]
    started = time.perf_counter()
    for first in range(0, len(rest), 100):
        ingest_many(rest[first : first + 100])
    batch_s = time.perf_counter() - started
    rows = Chunk.objects.filter(pmu_id__in=pmu_ids)
    stored_bytes = sum(rows.values_list("size_bytes", flat=True))
    values = samples * (2 + 2 * N_PHASORS)  # float values: frequency, ROCOF, magnitude and angle of each phasor
    wire_bytes = samples * (8 + 2 + 4 * (2 + 2 * N_PHASORS) + 2)  # timestamp, STAT, floats, digital word
    timings = _time_queries(pmu_ids, minutes, repeat)
    print(timings, flush=True)  # kept if the hand-off part fails
    handoff_rate = _measure_handoff(stream, substation, owner, fleet)
    return {
        "database": connection.vendor,
        "samples": samples,
        "ingest_single_samples_per_s": single_samples / single_s,
        "ingest_batched_samples_per_s": (samples - single_samples) / batch_s if rest else float("nan"),
        "bytes_per_value": stored_bytes / values,
        "compression_ratio_vs_wire": wire_bytes / stored_bytes,
        "chunks": rows.count(),
        **timings,
        "handoff_samples_per_s": handoff_rate,
    }


def _time_queries(pmu_ids: list[int], minutes: int, repeat: int) -> dict[str, float]:
    """Return the best of `repeat` times (ms) of each benchmark query over the whole stored hour."""
    from wams.historian.query import channel_names, query_traces

    end = T0 + timedelta(minutes=minutes)
    names = channel_names(N_PHASORS, 0, 1)
    samples = minutes * 60 * FPS
    timings = {}
    for label, ids, channels, points in (
        ("query_1pmu_all_channels_2000pts_ms", pmu_ids[:1], names, 2000),
        ("query_1pmu_frequency_2000pts_ms", pmu_ids[:1], ["frequency_hz"], 2000),
        ("query_1pmu_frequency_raw_ms", pmu_ids[:1], ["frequency_hz"], None),
        ("query_all_pmus_all_channels_2000pts_ms", pmu_ids, names, 2000),
    ):
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            traces = query_traces(ids, channels, T0, end, max_points=points, include_recent=False)
            best = min(best, time.perf_counter() - started)
        assert all(len(trace.mean) <= (points or samples) for trace in traces)
        timings[label] = best * 1000
    return timings


def _measure_handoff(stream: Any, substation: Any, owner: Any, fleet: Fleet) -> float:
    """Samples/s through the Redis hand-off (XADD, then XREADGROUP + store + XACK in this process)."""
    import redis
    from django.conf import settings

    from wams.grid.models import Pmu
    from wams.historian.handoff import consume, submit_block

    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")  # flushed: a database of its own
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        return float("nan")
    client.flushdb()
    settings.REDIS_URL = url
    pmu = Pmu.objects.create(stream=stream, idcode=999, station_name="HANDOFF", substation=substation, owner=owner)
    blocks = list(fleet.blocks(pmu.pk, 99))
    try:
        started = time.perf_counter()
        for block in blocks:
            submit_block(block)
        stored = 0
        while stored < sum(len(block) for block in blocks):
            stored += consume("bench", count=100, max_seconds=5.0).samples_stored
        return stored / (time.perf_counter() - started)
    finally:
        settings.REDIS_URL = None
        client.flushdb()


def _cell(value: object) -> str:
    """Format a result: thousands separators for big numbers, 3 significant digits for small ones."""
    if isinstance(value, float):
        return f"{value:,.0f}" if value > 100 else f"{value:.3g}"
    return str(value)


def main() -> None:
    global BLOCK_S
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pmus", type=int, default=10)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--compression", default="zlib,lzma")
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS-historian.md")
    parser.add_argument("--repeat", type=int, default=3, help="time each query this many times, keep the best")
    parser.add_argument("--reuse", action="store_true", help="keep the data in the configured database")
    parser.add_argument("--query-only", action="store_true", help="with --reuse: time the queries alone")
    parser.add_argument("--chunk-seconds", type=int, default=BLOCK_S, help="seconds per ingested block (one chunk)")
    args = parser.parse_args()
    BLOCK_S = args.chunk_seconds
    if args.query_only and not args.reuse:
        parser.error("--query-only needs --reuse")
    if args.reuse:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench-historian.sqlite3'}")
    _setup()
    from django.core.management import call_command
    from django.db import connection

    if args.reuse:
        call_command("migrate", verbosity=0)
    else:
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    lines = []
    try:
        for compression in args.compression.split(","):
            result = _measure(args.pmus, args.minutes, compression, args.reuse, args.query_only, args.repeat)
            if "samples" not in result:  # queries only
                print(result)
                continue
            cells = [_cell(result[key]) for key in list(result)[2:]]
            line = (
                f"| {result['database']} | {compression} | {args.pmus} x {args.minutes} min | "
                + " | ".join(cells)
                + " |"
            )
            print(result)
            lines.append(line)
    finally:
        if not args.reuse:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    if not lines:
        return
    header = (
        "| database | compression | data | samples/s (1 tx per block) | samples/s (100 blocks per tx) | "
        "bytes/value | ratio vs wire | chunks | query 1 PMU all ch. 2000 pts (ms) | query 1 PMU freq 2000 pts (ms) "
        "| query 1 PMU freq raw (ms) | query all PMUs all ch. 2000 pts (ms) | Redis hand-off samples/s |"
    )
    print(header)
    print("\n".join(lines))
    if args.write:
        results = ROOT / "bench" / "RESULTS-historian.md"
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        stamp = (
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores shared, "
            f"load average after the run {load}"
        )
        with results.open("a") as out:
            database = (
                "DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench " if connection.vendor == "postgresql" else ""
            )
            command = f"SECRET_KEY=x {database}python {' '.join(sys.argv)}"
            out.write(f"\n`{command}` ({stamp})\n\n{header}\n|{'---|' * 13}\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
