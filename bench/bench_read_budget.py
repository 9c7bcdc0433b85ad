"""Read budgets at their defaults: the abusive request refused fast, the heaviest allowed reads timed and measured.

Run: `SECRET_KEY=x python bench/bench_read_budget.py [--hours 24] [--write]`. Data: 14 PMUs (the demo's count)
with two float phasors, an analog-free 30 fps stream each, stored in 30 s chunks in the SQLite file
var/bench-budget.sqlite3 (kept between runs; `DATABASE_URL` picks another database). Each measurement runs in a
child process of its own so that its peak resident memory (ru_maxrss) is its own; the figure reported is the
peak minus the child's resident memory before the read.

Measured: the probe's request (14 PMUs, one day, max_points=100000, one quantity repeated 300 times), the same
with 10 different quantities, and the heaviest allowed API query, CSV export and COMTRADE export.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

N_PMUS = 14
FPS = 30
CHUNK_S = 30
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _setup() -> None:
    import django

    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench-budget.sqlite3'}")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _seed(hours: int) -> list[int]:
    """Return the benchmark PMUs, storing their data first when it is not there yet."""
    from django.db.models import Sum

    from tests.conftest import make_organisation, make_pmu, make_stream
    from tests.historian.helpers import make_block
    from wams.grid.models import Channel, Organisation, Pmu
    from wams.historian.models import Chunk
    from wams.historian.services import ingest_many

    organisation = Organisation.objects.filter(code="benchbudget").first()
    if organisation is not None:
        ids = list(Pmu.objects.filter(owner=organisation).order_by("pk").values_list("pk", flat=True))
        stored = Chunk.objects.filter(pmu_id__in=ids).aggregate(n=Sum("n_samples"))["n"] or 0
        if stored >= N_PMUS * hours * 3600 * FPS:
            return ids
        Pmu.objects.filter(owner=organisation).delete()
    organisation = organisation or make_organisation("benchbudget")
    stream = make_stream(owner=organisation, reporting_rate_fps=FPS)
    pmus = [make_pmu(stream=stream, station_name=f"BENCH{k}") for k in range(N_PMUS)]
    for pmu in pmus:
        Channel.objects.create(pmu=pmu, kind="phasor", order=0, name="VA", unit="V", measures="voltage")
        Channel.objects.create(pmu=pmu, kind="phasor", order=1, name="IA", unit="A", measures="current")
    start_us = int(T0.timestamp() * 1e6)
    for index, pmu in enumerate(pmus):
        for first in range(0, hours * 3600, 600):  # ten minutes of chunks per transaction
            ingest_many(
                make_block(
                    pmu.pk,
                    start_us=start_us + (first + k) * 1_000_000,
                    n=CHUNK_S * FPS,
                    n_phasors=2,
                    n_analogs=0,
                    n_digitals=0,
                    seed=index * 10_000 + first + k,
                )
                for k in range(0, 600, CHUNK_S)
            )
        print(f"seeded PMU {index + 1}/{N_PMUS}", flush=True)
    return [pmu.pk for pmu in pmus]


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _api_get(ids: list[int], params: dict[str, Any]) -> tuple[int, int]:
    from django.test import Client

    from tests.api.conftest import make_application
    from wams.api.models import Application
    from wams.grid.models import Organisation

    Application.objects.filter(name="bench-budget").delete()
    _, token = make_application(Organisation.objects.get(code="benchbudget"), name="bench-budget")
    response = Client().get(
        "/api/v1/data", {"pmu": ",".join(map(str, ids)), **params}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    size = sum(len(piece) for piece in response.streaming_content) if response.streaming else len(response.content)
    return response.status_code, size


def _window(seconds: float) -> dict[str, str]:
    return {"start": T0.isoformat(), "end": (T0 + timedelta(seconds=seconds)).isoformat()}


def _measure(name: str, ids: list[int]) -> dict[str, Any]:
    """Run one measurement in this (child) process."""
    from django.conf import settings

    from wams.historian.export import comtrade_files, iter_csv, iter_zip

    per_instant_values = N_PMUS * (3 + 2 * 2)
    export_s = settings.WAMS_EXPORT_MAX_VALUES / per_instant_values / FPS * 0.99
    query_s = settings.WAMS_QUERY_MAX_SAMPLES / N_PMUS / FPS * 0.99
    before = _rss_kib()
    started = time.perf_counter()
    status, size = 200, 0
    if name == "probe: 14 PMUs, 1 day, max_points=100000, quantity x 300":
        status, size = _api_get(ids, {"quantity": ["frequency_hz"] * 300, "max_points": "100000", **_window(86_400)})
    elif name == "probe: 14 PMUs, 1 day, max_points=100000, 10 quantities":
        quantities = "frequency_hz,rocof_hz_per_s,stat,phasor_0_magnitude,phasor_0_angle_deg,phasor_1_magnitude,"
        quantities += "phasor_1_angle_deg,angle_deg,magnitude,frequency_hz"
        status, size = _api_get(ids, {"quantity": quantities, "max_points": "100000", **_window(86_400)})
    elif name == "heaviest allowed API query (samples budget, 1 quantity, 2000 points)":
        status, size = _api_get(ids, {"quantity": "frequency_hz", "max_points": "2000", **_window(query_s)})
    elif name == "heaviest allowed API query (values budget, 3 quantities)":
        points = settings.WAMS_QUERY_MAX_VALUES // (N_PMUS * 3)
        window = _window(min(query_s, points / FPS))
        status, size = _api_get(
            ids, {"quantity": "frequency_hz,angle_deg,magnitude", "max_points": str(points), **window}
        )
    elif name == "heaviest allowed CSV export":
        end = T0 + timedelta(seconds=export_s)
        size = sum(len(text) for text in iter_csv(ids, T0, end))
    elif name == "heaviest allowed COMTRADE export (zip)":
        end = T0 + timedelta(seconds=export_s)
        cfg, dat = comtrade_files(ids, T0, end)
        size = sum(len(piece) for piece in iter_zip([("r.cfg", cfg), ("r.dat", dat)]))
    else:
        raise SystemExit(f"unknown measurement {name!r}")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"name": name, "status": status, "bytes": size, "s": seconds, "peak_growth_mib": (peak - before) / 1024}


MEASUREMENTS = [
    "probe: 14 PMUs, 1 day, max_points=100000, quantity x 300",
    "probe: 14 PMUs, 1 day, max_points=100000, 10 quantities",
    "heaviest allowed API query (samples budget, 1 quantity, 2000 points)",
    "heaviest allowed API query (values budget, 3 quantities)",
    "heaviest allowed CSV export",
    "heaviest allowed COMTRADE export (zip)",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if args.measure:
        from wams.grid.models import Pmu

        ids = list(Pmu.objects.filter(owner__code="benchbudget").order_by("pk").values_list("pk", flat=True))
        print(json.dumps(_measure(args.measure, ids)))
        return
    _seed(args.hours)
    rows = []
    for name in MEASUREMENTS:
        done = subprocess.run(
            [sys.executable, __file__, "--hours", str(args.hours), "--measure", name],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(result, flush=True)
        rows.append(
            f"| {name} | {result['status']} | {result['bytes']:,} | {result['s']:.2f} | {result['peak_growth_mib']:.0f} |"
        )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    table = "\n".join(
        [
            "| request | status | bytes answered | seconds | peak memory growth (MiB) |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if args.write:
        stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, load {load}"
        with (ROOT / "BENCHMARKS.md").open("a") as out:
            out.write(f"\n`SECRET_KEY=x python bench/bench_read_budget.py --hours {args.hours}` ({stamp})\n\n{table}\n")


if __name__ == "__main__":
    main()
