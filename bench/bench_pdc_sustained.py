"""Benchmark the deployed pdc + historian topology for minutes: zero loss, live and storage latency.

Runs the real processes on loopback: a replayer fleet (bench_pdc.py `fleet`: N C37.118 streams of
K PMUs, 10 float polar phasors each, R fps), `manage.py run_pdc`, a Celery worker and Celery beat
as the Procfile runs them (beat triggers `persist_blocks` every second), PostgreSQL and Redis.
After a warm-up (every link streaming) it measures a window of `--seconds`:

- loss: per PMU, the samples stored in the historian for the window's instants against the
  frames the fleet sent (missing, duplicates, off-grid, stored late). Missing means not stored
  when the check runs: once every sample was seen stored, or when nothing new was stored for
  block + 20 s, at most 3 x block + 60 s after the window;
- arrival to live publish: every instant of the live snapshot updates (channel-layer group
  wams.live.GROUP_SNAPSHOTS) as received by this process minus the instant, and the payload's
  `sent_at` minus the instant. The fleet sends each frame at its instant (plus its reported lag),
  so both are upper bounds of arrival-to-publish;
- arrival to stored: Chunk.created_at minus each sample's time stamp, taken the first time a
  sample is seen stored (chunks are polled every second, so later compaction does not hide it);
  an upper bound again;
- CPU of every process (% of one core, sampled each second), link-state deltas, log warnings.

The pdc keeps at most 30 instants a second for the live feed and publishes them WAMS_PDC_LIVE_PUBLISH_HZ
times a second, so the live delays include up to 1 / WAMS_PDC_LIVE_PUBLISH_HZ of batching. --fleets M
splits the streams over M replayer processes (each numbers its streams' IDCODEs from 1000, so
IDCODEs repeat across fleets; the pdc tells streams apart by their database rows). Per-instant
live delays, late samples per second, the Redis hand-off backlog (entries not yet stored) and the
load average go to timeline.json beside the logs, the result to result.json.

The database and the Redis db given are WIPED before and after each run (the pdc serves every
stream of its database, so it must be dedicated to the benchmark; its name must contain "bench").

    createdb -h 127.0.0.1 -U postgres bench_sustained
    python bench/bench_pdc_sustained.py --database-url postgres://postgres@127.0.0.1:5432/bench_sustained \\
        --redis-url redis://127.0.0.1:6379/6 --streams 50 100 200 500 --seconds 300
    python bench/bench_pdc_sustained.py ... --streams 10 --per-stream 100 --seconds 300   # 10 PDCs x 100 PMUs
    python bench/bench_pdc_sustained.py ... --streams 50 --seconds 60 --block-seconds 1  # shorter hand-off blocks

Each run prints one JSON line; a markdown table follows the sweep. Logs of every process go to
--log-dir (default var/bench-sustained/<UTC time>/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
US_PER_S = 1_000_000
NOT_STORED = np.iinfo(np.int32).max
LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def percentiles(values: np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """Return p50/p99/max of `values` times `scale` (NaN when empty)."""
    if len(values) == 0:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": float(p50) * scale, "p99": float(p99) * scale, "max": float(values.max()) * scale}


def instant_us(index: np.ndarray, rate_fps: int) -> np.ndarray:
    """Return the time stamps (us) of reporting instants `index` (instants since 1970) -> same shape."""
    return (2 * index * US_PER_S + rate_fps) // (2 * rate_fps)  # wams.pdc.align.nearest_instant's rounding


def instant_index(timestamp_us: np.ndarray, rate_fps: int) -> np.ndarray:
    """Return the index (since 1970) of the reporting instant nearest each time stamp."""
    return (2 * timestamp_us * rate_fps + US_PER_S) // (2 * US_PER_S)


# processes -----------------------------------------------------------------------------------


class Topology:
    """The fleet, pdc, worker and beat subprocesses of one run; everything is stopped on exit."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}
        self.fleet_totals: list[dict[str, Any]] = []

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None, pipes: bool = False) -> None:
        """Start one process in its own session (so a terminal's Ctrl-C reaches only this script)."""
        log = self.logs[name] = (self.log_dir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env or self.env,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else log,
            stderr=log,
            start_new_session=True,
        )

    def start_fleet(self, index: int, n_streams: int, rate_fps: int, per_stream: int) -> list[int]:
        """Start a replayer fleet and return its ports."""
        env = {k: v for k, v in self.env.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        command = [sys.executable, str(ROOT / "bench" / "bench_pdc.py"), "fleet", "--streams", str(n_streams)]
        command += ["--rate", str(rate_fps), "--per-stream", str(per_stream)]
        self.start(f"fleet{index}", command, env=env, pipes=True)
        stdout = self.procs[f"fleet{index}"].stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"fleet {index} did not start: see {self.log_dir / f'fleet{index}.log'}")
        return [int(port) for port in json.loads(line)]

    def pids(self, prefix: str) -> list[int]:
        """Return the pids of the processes named `prefix*` and all their descendants."""
        found: list[int] = []
        for name, proc in self.procs.items():
            if not name.startswith(prefix) or proc.poll() is not None:
                continue
            found.append(proc.pid)
            with contextlib.suppress(psutil.Error):
                found += [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        return found

    def check_alive(self) -> None:
        """Raise if a process of the topology exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: see {self.log_dir / f'{name}.log'}")

    def stop(self, name: str, timeout_s: float = 30.0) -> None:
        """Stop one process: SIGTERM (a fleet: close its stdin), then SIGKILL its session."""
        proc = self.procs.get(name)
        if proc is None or proc.returncode is not None:
            return
        if name.startswith("fleet") and proc.stdin is not None and proc.stdout is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            reader = threading.Thread(target=self._read_totals, args=(proc,), daemon=True)
            reader.start()
            reader.join(timeout_s)
        elif proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def _read_totals(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip():
            self.fleet_totals.append(json.loads(line))

    def close(self) -> None:
        """Stop the pdc first (it flushes), then the fleets, beat and workers; close the logs."""
        order = sorted(self.procs, key=lambda n: ("pdc", "fleet", "beat", "worker").index(n.rstrip("0123456789")))
        for name in order:
            try:
                self.stop(name)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"could not stop {name}: {exc}", file=sys.stderr)
        for proc in self.procs.values():  # whatever a process left behind in its session
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for log in self.logs.values():
            log.close()

    def log_problems(self) -> dict[str, int]:
        """Return the number of WARNING/ERROR/Traceback lines in each process's log."""
        counts: dict[str, int] = {}
        for name in self.procs:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            counts[name] = sum(1 for line in text.splitlines() if LOG_PROBLEM.search(line))
        return counts


# measurements --------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of groups of processes over a window, sampled each second (pids may come and go)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.base: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.last: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.started = False

    def sample(self) -> None:
        """Read the CPU times of every process of every group."""
        for name, pids in self.groups.items():
            for pid in pids():
                try:
                    times = psutil.Process(pid).cpu_times()
                except psutil.Error:
                    continue
                total = times.user + times.system
                if pid not in self.base[name]:
                    self.base[name][pid] = total if not self.started else 0.0  # born in the window
                self.last[name][pid] = total
        self.started = True

    def percent(self, wall_s: float) -> dict[str, float]:
        """Return each group's CPU over the window in % of one core."""
        return {
            name: round(100 * sum(self.last[name][pid] - self.base[name][pid] for pid in self.last[name]) / wall_s, 1)
            for name in self.groups
        }


def named_pids(name: str) -> list[int]:
    """Return the pids of processes called `name` (read-only look at /proc)."""
    return [p.info["pid"] for p in psutil.process_iter(["pid", "name"]) if p.info["name"] == name]


class LiveRecorder(threading.Thread):
    """Subscribe to the live snapshot group and record, per instant, receive and send delays."""

    def __init__(self, n_pmus: int) -> None:
        super().__init__(name="live-recorder", daemon=True)
        self.n_pmus = n_pmus
        self.instants: list[tuple[float, float, float, bool]] = []  # (instant s, received s, sent_at s, complete)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_sent = False

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from channels.layers import get_channel_layer

        from wams import live

        layer = get_channel_layer()
        assert layer is not None
        self._loop = asyncio.get_running_loop()
        self.channel = await layer.new_channel()
        await layer.group_add(live.GROUP_SNAPSHOTS, self.channel)
        self.ready.set()
        while True:
            message = await layer.receive(self.channel)
            received_s = time.time()
            if message.get("type") == "bench.stop":
                break
            payload = message["payload"]
            pmus = payload["pmus"].values()
            complete_all = len(payload["pmus"]) == self.n_pmus
            for k, instant_s in enumerate(payload["t"]):
                complete = complete_all and all(entry["frequency_hz"][k] is not None for entry in pmus)
                self.instants.append((instant_s, received_s, payload["sent_at"], complete))
        await layer.group_discard(live.GROUP_SNAPSHOTS, self.channel)

    def stop(self) -> None:
        """Ask the subscriber to finish (a message to its own channel) and wait for it."""
        if self._loop is not None and self.is_alive():
            from channels.layers import get_channel_layer

            layer = get_channel_layer()
            assert layer is not None
            future = asyncio.run_coroutine_threadsafe(layer.send(self.channel, {"type": "bench.stop"}), self._loop)
            with contextlib.suppress(Exception):
                future.result(10)
        self.join(10)


class StoredRecorder:
    """Poll new chunks and record when each sample of the window was first stored."""

    def __init__(self, pmu_ids: list[int], t0_s: int, seconds: int, rate_fps: int, rescan_s: float = 30.0) -> None:
        from django.db.models import Max

        from wams.historian.models import Chunk

        self.row = {pmu_id: i for i, pmu_id in enumerate(pmu_ids)}
        self.rate = rate_fps
        self.k0 = t0_s * rate_fps
        self.n = seconds * rate_fps
        self.t0_us = t0_s * US_PER_S
        self.created_ms = np.full((len(pmu_ids), self.n), NOT_STORED, dtype=np.int32)  # after t0
        # Ids come from a sequence, but concurrent transactions commit out of order: rescan a margin.
        self.low_id = Chunk.objects.aggregate(m=Max("id"))["m"] or 0
        self.rescan_s = rescan_s
        self.history: deque[tuple[float, int]] = deque()
        self.seen: set[int] = set()
        self.chunks_seen = 0
        self.last_progress_s = time.monotonic()

    def poll(self) -> None:
        """Read the chunks created since the last polls."""
        from wams.historian import codec
        from wams.historian.models import Chunk, us_from_datetime

        ids = list(Chunk.objects.filter(id__gt=self.low_id).values_list("id", flat=True))
        new = [i for i in ids if i not in self.seen]
        for first in range(0, len(new), 500):
            rows = Chunk.objects.filter(id__in=new[first : first + 500]).values_list(
                "id", "pmu_id", "created_at", "data"
            )
            for chunk_id, pmu_id, created_at, data in rows:
                self.seen.add(chunk_id)
                self.chunks_seen += 1
                row = self.row.get(pmu_id)
                if row is None:
                    continue
                timestamp_us, _, _ = codec.decode_time(data)
                index = instant_index(timestamp_us, self.rate) - self.k0
                ok = (index >= 0) & (index < self.n) & (instant_us(index + self.k0, self.rate) == timestamp_us)
                created_ms = (us_from_datetime(created_at) - self.t0_us) // 1000
                cells = self.created_ms[row, index[ok]]
                self.created_ms[row, index[ok]] = np.minimum(cells, created_ms)
        if new:
            self.last_progress_s = time.monotonic()
        now = time.monotonic()
        self.history.append((now, max(ids, default=self.low_id)))
        while len(self.history) > 1 and self.history[1][0] <= now - self.rescan_s:
            self.history.popleft()
        if self.history[0][0] <= now - self.rescan_s:
            self.low_id = max(self.low_id, self.history[0][1])
            self.seen = {i for i in self.seen if i > self.low_id}

    def complete(self) -> bool:
        """Tell whether every sample of the window has been seen stored."""
        return not (self.created_ms == NOT_STORED).any()

    def latencies_s(self) -> np.ndarray:
        """Return stored-minus-sample-time (s) of every sample seen stored -> (m,) float64."""
        sample_ms = (instant_us(np.arange(self.n) + self.k0, self.rate) - self.t0_us) / 1000.0
        stored = self.created_ms != NOT_STORED
        return ((self.created_ms - sample_ms[np.newaxis, :])[stored]) / 1000.0


def check_stored(pmu_ids: list[int], t0_s: int, seconds: int, rate_fps: int) -> dict[str, Any]:
    """Count each PMU's stored samples per instant of the window: missing, duplicates, off grid, late."""
    from wams.historian import codec
    from wams.historian.services import chunks_in_window

    k0, n = t0_s * rate_fps, seconds * rate_fps
    t0_us, t1_us = t0_s * US_PER_S, (t0_s + seconds) * US_PER_S
    missing = duplicates = off_grid = late = stored = chunks = 0
    missing_by_pmu: dict[int, int] = {}
    late_by_second = np.zeros(seconds, dtype=np.int64)
    for pmu_id in pmu_ids:
        counts = np.zeros(n, dtype=np.int64)
        for _, _, data in chunks_in_window(pmu_id, t0_us, t1_us - 1):
            chunks += 1
            timestamp_us, _, late_flags = codec.decode_time(data)
            inside = (timestamp_us >= t0_us) & (timestamp_us < t1_us)
            index = instant_index(timestamp_us, rate_fps)
            on_grid = instant_us(index, rate_fps) == timestamp_us
            off_grid += int((inside & ~on_grid).sum())
            ok = inside & on_grid
            np.add.at(counts, index[ok] - k0, 1)
            late += int(late_flags[ok].sum())
            np.add.at(late_by_second, (index[ok & late_flags] - k0) // rate_fps, 1)
        lost = int((counts == 0).sum())
        missing += lost
        duplicates += int(np.clip(counts - 1, 0, None).sum())
        stored += int((counts > 0).sum())
        if lost:
            missing_by_pmu[pmu_id] = lost
    worst = dict(sorted(missing_by_pmu.items(), key=lambda item: -item[1])[:10])
    return {
        "stored": stored,
        "chunks_at_end": chunks,
        "missing": missing,
        "duplicates": duplicates,
        "off_grid": off_grid,
        "late_stored": late,
        "pmus_with_missing": len(missing_by_pmu),
        "missing_worst_pmus": worst,
        "late_by_second": late_by_second.tolist(),
    }


def fleet_gaps(totals: list[dict[str, Any]], t0_s: int, seconds: int, rate_fps: int) -> int:
    """Return how many streams the fleets did not send at every instant of the window."""
    gaps = 0
    k0, k1 = t0_s * rate_fps, (t0_s + seconds) * rate_fps - 1
    for total in totals:
        per = total["per_stream"]
        for sent, first_us, last_us in zip(per["sent"], per["first_us"], per["last_us"], strict=True):
            if first_us < 0:
                gaps += 1
                continue
            first = int(instant_index(np.array(first_us, dtype=np.int64), rate_fps))
            last = int(instant_index(np.array(last_us, dtype=np.int64), rate_fps))
            if first > k0 or last < k1 or sent != last - first + 1:
                gaps += 1
    return gaps


def link_counters() -> dict[int, dict[str, int]]:
    """Return the cumulative counters of every LinkState row by stream id."""
    from wams.pdc.models import LinkState

    fields = ("frames_received", "frames_bad", "frames_late", "gaps", "reconnects")
    return {row["stream_id"]: row for row in LinkState.objects.values("stream_id", "state", *fields)}


# grid model ----------------------------------------------------------------------------------


def provision(ports: list[int], rate_fps: int, per_stream: int, fleet_size: int) -> list[int]:
    """Create one stream per port with its PMUs (10 phasors, bus voltage on phasor 0); return PMU ids.

    Fleet f serves streams f * fleet_size onwards with the IDCODEs 1000, 1001, ... of bench_pdc's fleet.
    """
    from bench_pdc import pmu_config

    from wams.grid.models import Bus, Channel, CommunicationPath, Organisation, Pmu, Stream, Substation

    owner = Organisation.objects.create(name="Benchmark", code="bench", role="tso")
    pmus: list[Pmu] = []
    for k, port in enumerate(ports):
        config = pmu_config(1000 + k % fleet_size, rate_fps, per_stream)
        stream = Stream.objects.create(
            name=f"bench-{k}",
            kind=Stream.Kind.PMU if per_stream == 1 else Stream.Kind.PDC,
            idcode=config.idcode,
            owner=owner,
            reporting_rate_fps=rate_fps,
        )
        CommunicationPath.objects.create(stream=stream, name="loopback", host="127.0.0.1", port=port)
        substation = Substation.objects.create(
            name=f"bench-{k}", code=f"b{k}", voltage_level_kv=345.0, latitude=42.0, longitude=-71.0, owner=owner
        )
        bus = Bus.objects.create(number=k + 1, substation=substation, base_kv=345.0)
        pmus += [
            Pmu(
                stream=stream, idcode=b.idcode, station_name=b.station_name, substation=substation, bus=bus, owner=owner
            )
            for b in config.pmus
        ]
    Pmu.objects.bulk_create(pmus)
    channels = []
    for pmu in pmus:
        for order in range(10):
            measures = Channel.Measures.BUS_VOLTAGE if order == 0 else Channel.Measures.OTHER
            channels.append(
                Channel(
                    pmu=pmu,
                    kind=Channel.Kind.PHASOR,
                    order=order,
                    name=f"P{order}",
                    measures=measures,
                    bus=pmu.bus if order == 0 else None,
                    unit="V" if order == 0 else "A",
                )
            )
    Channel.objects.bulk_create(channels)
    return [pmu.id for pmu in pmus]


def wipe(redis_url: str) -> None:
    """Empty the benchmark database and Redis db."""
    import redis
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    redis.Redis.from_url(redis_url).flushdb()


# one run -------------------------------------------------------------------------------------


def wait_streaming(topology: Topology, n_streams: int, timeout_s: float) -> float:
    """Wait until every link's state row says streaming; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        topology.check_alive()
        states = [row["state"] for row in link_counters().values()]
        if len(states) == n_streams and all(state == "streaming" for state in states):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"links not all streaming after {timeout_s:.0f} s")


def sleep_until(moment_s: float, topology: Topology, every: Callable[[], None] | None = None) -> None:
    """Sleep until `moment_s` (time.time()), calling `every` about once a second."""
    while (left := moment_s - time.time()) > 0:
        time.sleep(min(left, 1.0))
        topology.check_alive()
        if every is not None:
            every()


def start_topology(args: argparse.Namespace, n_streams: int, topology: Topology) -> list[int]:
    """Start the fleets, write the grid model, start pdc, workers and beat; return the PMU ids."""
    fleet_size = math.ceil(n_streams / max(1, min(args.fleets, n_streams)))
    ports: list[int] = []
    for f, first in enumerate(range(0, n_streams, fleet_size)):
        ports += topology.start_fleet(f, min(fleet_size, n_streams - first), args.rate, args.per_stream)
    pmu_ids = provision(ports, args.rate, args.per_stream, fleet_size)
    shards = str(args.pdc_shards)
    for shard in range(args.pdc_shards):
        topology.start(
            f"pdc{shard}", [sys.executable, "manage.py", "run_pdc", "--shard", str(shard), "--shards", shards]
        )
    celery = [sys.executable, "-m", "celery", "-A", "wams"]  # the Procfile's `celery -A wams ...`
    for w in range(args.workers):
        worker = [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(args.concurrency)]
        topology.start(f"worker{w}", [*worker, "--without-gossip", "--without-mingle", "-n", f"bench{w}@%h"])
    schedule = str(topology.log_dir / "celerybeat-schedule")
    topology.start("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", schedule])
    return pmu_ids


def cpu_meter(topology: Topology) -> CpuMeter:
    """Return a meter of every process of the topology, Redis and PostgreSQL."""
    from django.db import connection

    def postgres_bench() -> list[int]:
        """Return the backends serving the benchmark database, except this script's own."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [row[0] for row in cursor.fetchall()]

    redis_pids = named_pids("redis-server")
    return CpuMeter(
        {
            "pdc": lambda: topology.pids("pdc"),
            "worker": lambda: topology.pids("worker"),
            "beat": lambda: topology.pids("beat"),
            "fleet": lambda: topology.pids("fleet"),
            "redis": lambda: redis_pids,  # the whole server (other dbs too)
            "postgres_bench_db": postgres_bench,
            "postgres_all": lambda: named_pids("postgres"),  # the whole server (other databases too)
            "bench": lambda: [os.getpid()],
        }
    )


@dataclass
class Window:
    """What was recorded over the measured window of one run."""

    t0_s: int
    t1_s: int
    stored: StoredRecorder
    meter: CpuMeter
    wall_s: float = 0.0
    links_t0: dict[int, dict[str, int]] = field(default_factory=dict)
    links_t1: dict[int, dict[str, int]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    handoff_backlog: list[int] = field(default_factory=list)  # entries in the Redis hand-off stream, each second
    drain_s: float = 0.0


def measure(args: argparse.Namespace, topology: Topology, pmu_ids: list[int]) -> Window:
    """Measure one window from the next whole second after the warm-up, then wait for storage."""
    t0_s = math.ceil(time.time()) + args.warmup
    sleep_until(t0_s - 1.0, topology)
    window = Window(
        t0_s, t0_s + args.seconds, StoredRecorder(pmu_ids, t0_s, args.seconds, args.rate), cpu_meter(topology)
    )
    window.links_t0 = link_counters()  # rows written about once a second: counters about 1 s old
    sleep_until(t0_s, topology)
    window.meter.sample()
    started = time.monotonic()

    from wams.historian import streams

    def tick() -> None:
        window.meter.sample()
        window.stored.poll()
        window.loads.append(os.getloadavg()[0])
        window.handoff_backlog.append(int(streams.get_redis().xlen(streams.HANDOFF_STREAM)))

    sleep_until(window.t1_s, topology, tick)
    window.meter.sample()
    window.wall_s = time.monotonic() - started
    window.links_t1 = link_counters()
    drain_started = time.monotonic()
    while not window.stored.complete() and time.monotonic() - drain_started < 3 * args.block_seconds + 60:
        if time.monotonic() - window.stored.last_progress_s > args.block_seconds + 20:
            break  # nothing new stored for a while: what is missing stays missing
        time.sleep(1.0)
        topology.check_alive()
        window.stored.poll()
    window.drain_s = time.monotonic() - drain_started
    return window


def run(args: argparse.Namespace, n_streams: int, log_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run the topology with `n_streams` streams and measure one window."""
    wipe(args.redis_url)
    run_dir = log_dir / f"streams-{n_streams}x{args.per_stream}"
    run_dir.mkdir(parents=True, exist_ok=True)
    topology = Topology(run_dir, env)
    live_recorder: LiveRecorder | None = None
    try:
        pmu_ids = start_topology(args, n_streams, topology)
        live_recorder = LiveRecorder(len(pmu_ids))
        live_recorder.start()
        live_recorder.ready.wait(30)
        if live_recorder.error is not None:
            raise RuntimeError(f"live subscription failed: {live_recorder.error!r}")
        connect_s = wait_streaming(topology, n_streams, args.connect_timeout)
        window = measure(args, topology, pmu_ids)
        live_recorder.stop()
        checked = check_stored(pmu_ids, window.t0_s, args.seconds, args.rate)
        topology.close()
    finally:
        if live_recorder is not None:
            live_recorder.stop()
        topology.close()
        if not args.keep:
            with contextlib.suppress(Exception):
                wipe(args.redis_url)
    instants = [i for i in live_recorder.instants if window.t0_s <= i[0] < window.t1_s]
    timeline = {"t0_s": window.t0_s, "live": instants, "load_avg_1min": window.loads}
    timeline["handoff_backlog"] = window.handoff_backlog
    timeline["late_by_second"] = checked.pop("late_by_second")
    (run_dir / "timeline.json").write_text(json.dumps(timeline))
    result = {"streams": n_streams, "connect_s": round(connect_s, 1), **summarise(args, pmu_ids, window, topology)}
    result.update(source_state())
    result = {**result, **checked, **live_summary(instants, args.wait_ms), "logs": str(run_dir)}
    result["zero_loss"] = result["missing"] == result["duplicates"] == result["fleet_gap_streams"] == 0
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def live_summary(instants: list[tuple[float, float, float, bool]], wait_ms: int) -> dict[str, Any]:
    """Return the live-publish delays (ms) of the window's instants."""
    times = np.array([i[:3] for i in instants]).reshape(-1, 3)
    received = percentiles(times[:, 1] - times[:, 0], 1e3)
    return {
        "live_instants": len(instants),
        "live_complete_pct": round(100 * sum(i[3] for i in instants) / max(len(instants), 1), 2),
        "live_received_ms": received,
        "live_sent_at_ms": percentiles(times[:, 2] - times[:, 0], 1e3),
        "live_p99_ok": received["p99"] < wait_ms + 50,
    }


def summarise(args: argparse.Namespace, pmu_ids: list[int], window: Window, topology: Topology) -> dict[str, Any]:
    """Return the run's parameters, loss totals from the fleets' view, storage delays, CPU and counters."""
    gaps = fleet_gaps(topology.fleet_totals, window.t0_s, args.seconds, args.rate)
    to_store = percentiles(window.stored.latencies_s())
    links = {
        key: sum(row[key] - window.links_t0.get(s, {}).get(key, 0) for s, row in window.links_t1.items())
        for key in ("frames_received", "frames_bad", "frames_late", "gaps", "reconnects")
    }
    return {
        "pmus_per_stream": args.per_stream,
        "pmus": len(pmu_ids),
        "rate_fps": args.rate,
        "pmu_samples_per_s": len(pmu_ids) * args.rate,
        "seconds": args.seconds,
        "block_s": args.block_seconds,
        "wait_ms": args.wait_ms,
        "live_rate_hz": args.live_rate_hz,
        "fleets": len(topology.fleet_totals),
        "fleet_max_lag_ms": max((t["max_lag_ms"] for t in topology.fleet_totals), default=math.nan),
        "fleet_gap_streams": gaps,
        "expected_samples": len(pmu_ids) * args.seconds * args.rate,
        "seen_stored_while_polling": int((window.stored.created_ms != NOT_STORED).sum()),
        "chunks_seen_while_polling": window.stored.chunks_seen,
        "drain_s": round(window.drain_s, 1),
        "link": links,
        "stored_s": to_store,
        "stored_p99_ok": to_store["p99"] < 2.0,
        "cpu_pct_of_one_core": window.meter.percent(window.wall_s),
        "load_avg_1min_max": max(window.loads, default=math.nan),
        "handoff_backlog_max": max(window.handoff_backlog, default=0),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "log_problem_lines": topology.log_problems(),
    }


def table_row(r: dict[str, Any]) -> str:
    """Return one markdown table row of a run's result."""
    cpu = r["cpu_pct_of_one_core"]
    cells = [
        f"{r['streams']}" + (f" x {r['pmus_per_stream']}" if r["pmus_per_stream"] > 1 else ""),
        f"{r['pmu_samples_per_s']:,}",
        f"{r['seconds']} s",
        f"{r['block_s']} s",
        f"{r['missing']:,} / {r['duplicates']:,}",
        f"{r['late_stored']:,}",
        f"{r['live_received_ms']['p50']:.0f} / {r['live_received_ms']['p99']:.0f} / {r['live_received_ms']['max']:.0f}",
        f"{r['live_sent_at_ms']['p99']:.0f}",
        f"{r['stored_s']['p50']:.2f} / {r['stored_s']['p99']:.2f} / {r['stored_s']['max']:.2f}",
        f"{cpu['pdc']:.0f} / {cpu['worker']:.0f} / {cpu['beat']:.0f} / {cpu['fleet']:.0f}",
        f"{cpu['redis']:.0f} / {cpu['postgres_bench_db']:.0f} ({cpu['postgres_all']:.0f})",
        f"{r['fleet_max_lag_ms']:.0f}",
        " ".join(f"{x:.1f}" for x in r["load_avg"]),
    ]
    return "| " + " | ".join(cells) + " |"


TABLE_HEAD = (
    "| streams | PMU samples/s | window | block | missing / dup | late stored | live recv p50/p99/max ms "
    "| live sent_at p99 ms | stored p50/p99/max s | CPU % pdc/worker/beat/fleet | CPU % redis/pg db (pg all) "
    "| fleet max lag ms | load avg |\n|" + "---|" * 13
)


SETTINGS_OPTIONS = {
    "WAMS_PDC_BLOCK_SECONDS": "block_seconds",
    "WAMS_PDC_WAIT_TIME_MS": "wait_ms",
    "WAMS_PDC_LIVE_PUBLISH_HZ": "live_rate_hz",
}


def environment(args: argparse.Namespace, log_dir: Path) -> dict[str, str]:
    """Return the environment of the run_pdc, worker and beat processes (and this one's Django)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "wams.settings",
            "SECRET_KEY": env.get("SECRET_KEY") or secrets.token_urlsafe(32),
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "WAMS_VAR_DIR": str(log_dir / "var"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, value in SETTINGS_OPTIONS.items():
        if getattr(args, value) is not None:
            env[name] = str(getattr(args, value))
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def source_state() -> dict[str, Any]:
    """Return the commit measured and whether the work tree had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip() or None, "dirty": bool(status.stdout.strip())}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="dedicated, WIPED")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="its db is WIPED")
    parser.add_argument("--streams", type=int, nargs="+", default=[50])
    parser.add_argument("--per-stream", type=int, default=1, help="PMUs per upstream stream (a PDC when > 1)")
    parser.add_argument("--rate", type=int, default=60, help="frames per second")
    parser.add_argument("--seconds", type=int, default=300, help="measured window")
    parser.add_argument("--warmup", type=int, default=5, help="seconds after every link streams")
    parser.add_argument("--block-seconds", type=int, help="WAMS_PDC_BLOCK_SECONDS (default: the project's)")
    parser.add_argument("--wait-ms", type=int, help="WAMS_PDC_WAIT_TIME_MS (default: the project's)")
    parser.add_argument("--live-rate-hz", type=int, help="WAMS_PDC_LIVE_PUBLISH_HZ (default: the project's)")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="per worker (the Procfile's 2)")
    parser.add_argument("--pdc-shards", type=int, default=1, help="run_pdc processes (WAMS_PDC_SHARDS)")
    parser.add_argument("--fleets", type=int, default=1, help="replayer processes sharing the streams")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra setting, repeatable")
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="leave the last run's database and Redis data")
    args = parser.parse_args()
    if not args.database_url or not args.redis_url:
        parser.error("give --database-url and --redis-url (or DATABASE_URL and REDIS_URL): both are wiped")
    if "bench" not in urlparse(args.database_url).path:
        parser.error("the database is wiped: use a dedicated one whose name contains 'bench'")
    return args


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into KeyboardInterrupt so that every subprocess is stopped on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main() -> None:
    args = parse_args()
    log_dir = args.log_dir or ROOT / "var" / "bench-sustained" / datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir.mkdir(parents=True, exist_ok=True)
    env = environment(args, log_dir)
    os.environ.update(
        {k: env[k] for k in env if k.startswith(("DJANGO_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "WAMS_"))}
    )
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for name, value in SETTINGS_OPTIONS.items():  # the values in force, as the processes read them
        setattr(args, value, getattr(settings, name))

    call_command("migrate", interactive=False, verbosity=0)
    rows = []
    with terminate_as_interrupt():
        for n in args.streams:
            try:
                result = run(args, n, log_dir, env)
            except RuntimeError as exc:  # this size failed (a process died, links never all streamed)
                result = {"streams": n, "pmus_per_stream": args.per_stream, "error": str(exc)}
            print(json.dumps(result), flush=True)
            rows.append(result)
    print(TABLE_HEAD)
    for result in rows:
        print(table_row(result) if "error" not in result else f"| {result['streams']} | failed: {result['error']} |")


if __name__ == "__main__":
    main()
