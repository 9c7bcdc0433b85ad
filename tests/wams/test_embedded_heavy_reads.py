"""The embedded system under the heaviest reads it allows: the pdc keeps streaming, memory stays bounded.

Runs the whole system as `make demo` does (demo topology, simulator, `run_embedded` on SQLite) with
stored history sized to the export budget, downloads the largest allowed CSV export and plots the
longest allowed history window as an operator would, while a downstream PDC reads the pdc's C37.118
output server; then checks the frames kept coming and the process's peak memory.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.error
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.wams.embedded import free_port, manage, prepare, running, watch_output

pytestmark = pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="about the embedded single process")

EXPORT_VALUES = 4_000_000  # the budget the site runs with: the export below is just under it
MEMORY_GROWTH_MIB = 300  # stated bound on the process's peak growth for the heaviest allowed export


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _download(opener, url: str) -> tuple[int, int, float, float]:  # type: ignore[no-untyped-def]
    """Stream a download; return (status, lines, start, end) with monotonic times."""
    started = time.monotonic()
    lines = 0
    with opener.open(url, timeout=300) as answer:
        status = answer.status
        while piece := answer.read(1 << 16):
            lines += piece.count(b"\n")
    return status, lines, started, time.monotonic()


def _check_streaming(watch, start: float, end: float, wall_start: float, fps: int = 30) -> None:  # type: ignore[no-untyped-def]
    """Check the output stream never stalled and delivered the instants stamped while the read ran.

    Frames may come a little late on a loaded machine; what must not happen is a stall of the event
    loop (no frame for seconds) or instants skipped because the pdc could not keep up.
    """
    time.sleep(3.0)  # frames of the last instants may still be on their way
    frames = watch.between(start - 1.0, end + 3.0)
    assert frames, "no output frame while the read ran"
    gaps = [(b - a, a - start) for a, b in itertools.pairwise(frames)]
    worst, at = max(gaps, default=(0.0, 0.0))
    assert worst < 2.0, f"the output stream stalled for {worst:.2f} s, {at:.1f} s into a {end - start:.1f} s read"
    first_s, last_s = wall_start, wall_start + (end - start)
    stamps = watch.stamps_between(first_s, last_s)
    expected = fps * (last_s - first_s)
    assert len(set(stamps)) >= 0.95 * expected, f"{len(set(stamps))} of ~{expected:.0f} instants delivered"


def test_heaviest_allowed_export_and_plot_leave_the_pdc_streaming(tmp_path: Path) -> None:
    port, output_port = free_port(), free_port()
    env = prepare(tmp_path, port, {"WAMS_EXPORT_MAX_VALUES": str(EXPORT_VALUES)})
    seeded = manage(
        env,
        "shell",
        "-c",
        f"from tests.wams.embedded_seed import seed; seed({output_port}, {int(EXPORT_VALUES * 0.95)})",
    )
    window = json.loads(seeded.strip().splitlines()[-1])
    with running(env, tmp_path) as site:
        watch = watch_output(output_port, 9001)
        try:
            watch.wait_for_frames(90, timeout_s=120)
            before = site.memory_kib()
            opener = site.login("admin")
            query = {"pmus": window["pmus"], "start": _utc(window["start_s"]), "end": _utc(window["end_s"])}
            export = f"{site.url}/history/export/?" + urllib.parse.urlencode({**query, "format": "csv"}, doseq=True)
            wall_start = time.time()
            status, lines, start, end = _download(opener, export)
            assert status == 200 and lines == window["instants"] + 1  # header + one row per instant
            _check_streaming(watch, start, end, wall_start)
            after = site.memory_kib()
            growth_mib = (after["VmHWM"] - before["VmRSS"]) / 1024
            assert growth_mib < MEMORY_GROWTH_MIB, f"peak memory grew {growth_mib:.0f} MiB during the export"

            over = dict(query, end=_utc(time.time()))  # with the live minutes since: over the budget
            with pytest.raises(urllib.error.HTTPError) as refused:
                opener.open(
                    f"{site.url}/history/export/?" + urllib.parse.urlencode({**over, "format": "csv"}, doseq=True)
                )
            assert refused.value.code == 400 and b"limit 4,000,000 per file" in refused.value.read()

            plot = f"{site.url}/history/?" + urllib.parse.urlencode({**query, "quantity": "frequency_hz"}, doseq=True)
            wall_start = time.time()
            status, _, start, end = _download(opener, plot)
            assert status == 200
            _check_streaming(watch, start, end, wall_start)
            assert site.process.poll() is None
            print(f"export of {window['values']:,} values: peak memory growth {growth_mib:.0f} MiB")
        finally:
            watch.stop()
