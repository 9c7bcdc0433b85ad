"""Measurement timestamp to drawn in the browser, and the browser tab's CPU, on the overview page.

A synthetic pdc publishes N PMUs x 30 frames/s through the Redis channel layer the way the pdc does
(every 100 ms, the instants older than the wait time); Daphne serves the overview to headless
Debian chromium.  The page records, for every redraw (one per animation frame at most), the wall
clock when Plotly has redrawn minus the measurement timestamp of the newest (and oldest) instant drawn.

    python bench/bench_dashboard_latency.py [--seconds 30] [--warmup 125] [--pmus 10 50] [--out bench/RESULTS-dashboard.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VAR = Path(tempfile.mkdtemp(prefix="wams-bench-dashboard-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ["WAMS_VAR_DIR"] = str(VAR)
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402

from tests.dashboards import livesite  # noqa: E402
from tests.dashboards.synthetic import SyntheticGrid  # noqa: E402
from wams.grid.models import Organisation, Pmu, Stream, Substation  # noqa: E402


def make_fleet(n_pmus: int) -> tuple[str, list[int], list[tuple[int, str]]]:
    """Create an organisation with n PMUs (10 per stream) and an operator who sees exactly those.

    Returns the operator's username, the PMU ids and the (stream id, name) pairs.
    """
    from django.contrib.auth import get_user_model

    from wams.grid.models import Membership
    from wams.grid.services import ensure_role_groups

    code = f"bench{n_pmus}"
    org, _ = Organisation.objects.get_or_create(code=code, defaults={"name": f"Bench TSO {n_pmus}", "role": "tso"})
    pmus = list(Pmu.objects.filter(owner=org).select_related("stream"))
    for i in range(len(pmus), n_pmus):
        substation = Substation.objects.create(
            name=f"{code} site {i}", code=f"{code}s{i}", voltage_level_kv=345.0,
            latitude=41.0 + (i % 10) * 0.25, longitude=-73.5 + (i // 10) * 0.6, owner=org,
        )  # fmt: skip
        stream, _ = Stream.objects.get_or_create(
            name=f"{code} PDC {i // 10}", defaults={"idcode": 900 + i // 10, "owner": org}
        )
        pmus.append(
            Pmu.objects.create(
                stream=stream, idcode=100 + i, station_name=f"PMU{i:02d}", substation=substation, owner=org
            )
        )
    ensure_role_groups()
    user, created = get_user_model().objects.get_or_create(username=code)
    if created:
        user.set_password(livesite.PASSWORD)
        user.save()
        user.groups.add(Group.objects.get(name="operator"))
        Membership.objects.create(user=user, organisation=org)
    return code, [pmu.pk for pmu in pmus], sorted({(pmu.stream_id, pmu.stream.name) for pmu in pmus})


def renderer_cpu_s() -> float:
    """Return the CPU seconds (user + system) used so far by chromium's renderer processes."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"chromium" not in cmdline or b"--type=renderer" not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(
    browser: Any, server: livesite.Server, username: str, n_pmus: int, seconds: float, warmup_s: float
) -> dict[str, float]:
    """Open the overview, let its window fill, then measure latency and CPU for `seconds`."""
    page = livesite.login(browser, server.base_url, username)
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=20_000)
    time.sleep(warmup_s)  # a full 120 s window of points: the steady state
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def task_s() -> float:
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return float(metrics["TaskDuration"])

    page.evaluate(
        "WAMS.metrics.latency_s.length = 0; WAMS.metrics.oldest_latency_s.length = 0; WAMS.metrics.updates = 0"
    )
    wall0, task0, cpu0 = time.monotonic(), task_s(), renderer_cpu_s()
    time.sleep(seconds)
    wall1, task1, cpu1 = time.monotonic(), task_s(), renderer_cpu_s()
    newest = np.array(page.evaluate("WAMS.metrics.latency_s"))
    oldest = np.array(page.evaluate("WAMS.metrics.oldest_latency_s"))
    updates = page.evaluate("WAMS.metrics.updates")
    received = np.array(page.evaluate("WAMS.metrics.received_s"))
    sent = np.array(page.evaluate("WAMS.metrics.sent_s"))
    points = page.evaluate("document.getElementById('frequency').data.reduce((n, t) => n + t.x.length, 0)")
    page.context.close()
    wall = wall1 - wall0
    return {
        "pmus": n_pmus,
        "updates_per_s": updates / wall,
        "newest_p50_ms": float(np.percentile(newest, 50) * 1000),
        "newest_p99_ms": float(np.percentile(newest, 99) * 1000),
        "oldest_p50_ms": float(np.percentile(oldest, 50) * 1000),
        "oldest_p99_ms": float(np.percentile(oldest, 99) * 1000),
        "samples": len(newest),
        "sent_p50_ms": float(np.percentile(sent, 50) * 1000),
        "sent_p99_ms": float(np.percentile(sent, 99) * 1000),
        "received_p50_ms": float(np.percentile(received, 50) * 1000),
        "received_p99_ms": float(np.percentile(received, 99) * 1000),
        "main_thread_cores": (task1 - task0) / wall,
        "load_average": os.getloadavg()[0],
        "renderer_cores": (cpu1 - cpu0) / wall,
        "points_on_figure": points,
    }


def run(sizes: list[int], seconds: float, warmup_s: float) -> list[dict[str, float]]:
    """Run every fleet size against one server and browser."""
    call_command("migrate", verbosity=0)
    rows = []
    with livesite.redis_channel_layer():
        server = livesite.Server(VAR)
        try:
            with livesite.chromium() as browser:
                for n in sizes:
                    username, pmu_ids, streams = livesite.off_loop(make_fleet, n)  # no ORM beside Playwright's loop
                    grid = SyntheticGrid(pmu_ids, rate_fps=30)
                    feed = livesite.Feed(grid, streams, settings.WAMS_PDC_WAIT_TIME_MS)
                    try:
                        rows.append(measure(browser, server, username, n, seconds, warmup_s))
                    finally:
                        feed.stop()
                    print(rows[-1], flush=True)
        finally:
            server.stop()
    return rows


def report(rows: list[dict[str, float]], seconds: float) -> str:
    """Return the results as Markdown."""
    wait_ms = settings.WAMS_PDC_WAIT_TIME_MS
    lines = [
        "# Dashboard latency: measurement timestamp to drawn in the browser",
        "",
        f"`python bench/bench_dashboard_latency.py --seconds {seconds:g}` (after a 125 s warm-up that fills "
        f"the 120 s window) on {platform.node()} "
        f"({os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
        f"headless Debian chromium, software rendering). Overview page, 1600x1000; "
        f"{wait_ms} ms pdc wait time, 30 frames/s per PMU, updates published at 10 Hz through Redis, "
        "forwarded at most 10 times a second; the overview keeps 10 points/s per PMU on its 120 s window, "
        "fewer with many PMUs (a budget of 8,000 points per figure: 6/s at 10 PMUs, 1/s at 50), and "
        "redraws ROCOF at most twice a second.",
        "",
        "Latency = wall clock when `Plotly.extendTraces` has redrawn the figure (in the animation frame "
        "that paints it) minus the measurement "
        "timestamp; 'newest' is the newest instant of an update, 'oldest' the oldest instant it carries. "
        f"It includes the {wait_ms} ms wait time. Goal: p99 below wait time + 200 ms = {wait_ms + 200} ms; "
        "the tab below one core.",
        "",
        "Where the time goes: 'sent' = the server's clock when the consumer sends the update, 'received' = "
        "the browser's clock when the page receives it (same machine, same clock), both minus the newest "
        "measurement timestamp. The renderer process CPU (from /proc) is the tab's CPU; the main thread's "
        "busy time is wall time and counts time spent waiting for a core on a loaded machine.",
        "",
        "| PMUs | drawn/s | newest p50 (ms) | newest p99 (ms) | oldest p50 (ms) | oldest p99 (ms) "
        "| sent p50 / p99 (ms) | received p50 / p99 (ms) | samples | renderer process (cores) "
        "| main thread busy (cores) | points on the frequency figure | machine load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pmus']} | {r['updates_per_s']:.1f} | {r['newest_p50_ms']:.0f} | {r['newest_p99_ms']:.0f} "
            f"| {r['oldest_p50_ms']:.0f} | {r['oldest_p99_ms']:.0f} "
            f"| {r['sent_p50_ms']:.0f} / {r['sent_p99_ms']:.0f} | {r['received_p50_ms']:.0f} / {r['received_p99_ms']:.0f} "
            f"| {r['samples']} | {r['renderer_cores']:.2f} | {r['main_thread_cores']:.2f} | {r['points_on_figure']} "
            f"| {r['load_average']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=125.0, help="Seconds before measuring (fills the window).")
    parser.add_argument("--pmus", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--out", type=Path, default=None, help="Write the Markdown table here too.")
    args = parser.parse_args()
    if not livesite.redis_available():
        sys.exit("Redis is not running on 127.0.0.1:6379")
    text = report(run(args.pmus, args.seconds, args.warmup), args.seconds)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
