"""Closed loop with the grid simulator, met only on the wire.

The simulator runs as `manage.py simulate_grid --fleet grid` in a subprocess against this test's
database (the IEEE 39-bus demo placed on free ports); PMU streams are read with the codec's
PdcClient, turned into live snapshot payloads and fed to `evaluate_snapshot`, whose commands
reach the simulator's IEC 104 RTUs through `execute_command`.
"""

from __future__ import annotations

import asyncio
import cmath
import contextlib
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from wams.grid.loaders import DemoPorts, load_demo_topology
from wams.grid.models import CommunicationPath, Pmu, Stream
from wams.synchrophasor import PdcClient

SNAPSHOT_PERIOD_S = 0.1


def ports_free(ports: list[int]) -> bool:
    """Tell whether every TCP and UDP port is free on loopback now."""
    for port in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    return False
    return True


def free_demo_ports(streams: int = 13, rtus: int = 16) -> DemoPorts:
    """Pick port bases for the demo fleet where every port it needs is free."""
    for _ in range(200):
        base = random.randrange(30_000, 55_000, 100)
        ports = DemoPorts(pmu_port_base=base, path_port_offset=100, udp_port_base=base + 200, rtu_port_base=base + 300)
        needed = [base + k for k in range(streams)] + [base + 100 + k for k in range(streams)]
        needed += [base + 200 + k for k in range(streams)] + [base + 300 + k for k in range(rtus)]
        if ports_free(needed):
            return ports
    raise RuntimeError("no free block of ports for the demo fleet")


StreamAddress = tuple[str, int, int, dict[int, int]]  # host, port, IDCODE, PMU id by IDCODE


def watch_streams(bus_numbers: tuple[int, ...]) -> tuple[list[StreamAddress], list[Pmu]]:
    """Load the demo on free ports, keep only the streams of the PMUs at `bus_numbers` (TCP path only).

    Return where to read those streams and the watched PMUs. Loading again for a second run keeps
    the same rows on fresh ports.
    """
    load_demo_topology(free_demo_ports())
    watched = list(Pmu.objects.filter(bus__number__in=bus_numbers).select_related("stream", "bus"))
    keep = {pmu.stream_id for pmu in watched}
    Stream.objects.exclude(pk__in=keep).update(enabled=False)
    CommunicationPath.objects.exclude(name="fibre").update(enabled=False)
    streams: list[StreamAddress] = []
    for stream in Stream.objects.filter(pk__in=keep):
        path = stream.paths.get(name="fibre")
        pmu_ids = {pmu.idcode: pmu.pk for pmu in stream.pmus.all()}
        streams.append((path.host, path.port, stream.idcode, pmu_ids))
    return streams, watched


def database_url() -> str:
    """Return the URL of this test process's database for the simulator subprocess."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    return f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class SimulatorProcess:
    """`manage.py simulate_grid --fleet grid` as a subprocess; ready once it printed its inventory."""

    def __init__(self, var_dir: Path, scenarios: list[str], duration_s: float) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wams.settings",
            "SECRET_KEY": "closed-loop-test",
            "DATABASE_URL": database_url(),
            "WAMS_VAR_DIR": str(var_dir),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)
        command = [
            sys.executable, "manage.py", "simulate_grid", "--fleet", "grid", "--quiet-grid",
            "--truth-dir", str(var_dir / "truth"), "--duration", str(duration_s),
        ]  # fmt: skip
        for scenario in scenarios:
            command += ["--scenario", scenario]
        var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = var_dir / "simulator.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=self.log, start_new_session=True
        )
        self.inventory: dict[str, Any] = {}

    def wait_ready(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Wait for the inventory line (every server listening); return it."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                if self.process.poll() is not None:
                    raise RuntimeError(f"simulator exited ({self.process.returncode}); see {self.log_path}")
                continue
            text = line.decode(errors="replace").strip()
            if text.startswith("{"):
                self.inventory = json.loads(text)
                threading.Thread(target=self._drain, daemon=True).start()
                return self.inventory
        raise RuntimeError(f"simulator not ready in {timeout_s} s; see {self.log_path}")

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def stop(self) -> None:
        """Stop the simulator's process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@dataclass
class Recording:
    """Frequency and voltage angle per PMU id against measurement time, and the payloads fed to the schemes."""

    samples: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    angles_deg: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    payloads: int = 0
    decisions: list[Any] = field(default_factory=list)


class Collector:
    """Read PMU streams (C37.118 over TCP) and feed live snapshot payloads to a callback every 100 ms."""

    def __init__(self, streams: list[tuple[str, int, int, dict[int, int]]], feed: Callable[[dict], list]) -> None:
        """streams: (host, port, idcode, {pmu idcode: pmu id}); feed: e.g. evaluate_snapshot."""
        self.streams = streams
        self.feed = feed
        self.recording = Recording()
        self.pending: dict[float, dict[int, tuple[float, float]]] = {}
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks = [asyncio.run_coroutine_threadsafe(self._read(*s), self.loop) for s in streams]
        self.feeder = asyncio.run_coroutine_threadsafe(self._feed(), self.loop)

    async def _read(self, host: str, port: int, idcode: int, pmu_ids: dict[int, int]) -> None:
        client = PdcClient(host, port, idcode, fetch_header=False, timeout_s=10.0)
        async for frame in client.stream(data_timeout_s=10.0):
            if self.stop_event.is_set():
                break
            t = frame.timestamp_s
            with self.lock:
                row = self.pending.setdefault(t, {})
                for config, data in zip(client.config.pmus if client.config else [], frame.pmus):
                    pmu_id = pmu_ids.get(config.idcode)
                    if pmu_id is not None:
                        # The first phasor is the bus voltage (channel order 0 in the demo).
                        angle_deg = (
                            math.degrees(cmath.phase(complex(data.phasors[0]))) if len(data.phasors) else math.nan
                        )
                        row[pmu_id] = (float(data.frequency_hz), angle_deg)
                        self.recording.samples.setdefault(pmu_id, []).append((t, float(data.frequency_hz)))
                        self.recording.angles_deg.setdefault(pmu_id, []).append((t, angle_deg))
        with contextlib.suppress(Exception):
            await client.close()

    async def _feed(self) -> None:
        while not self.stop_event.is_set():
            await asyncio.sleep(SNAPSHOT_PERIOD_S)
            with self.lock:
                instants = sorted(self.pending)
                rows = [self.pending.pop(t) for t in instants]
            if not instants:
                continue
            pmu_ids = sorted({pmu_id for row in rows for pmu_id in row})
            payload = {
                "t": instants,
                "sent_at": time.time(),
                "pmus": {
                    str(p): {
                        "frequency_hz": [row[p][0] if p in row else None for row in rows],
                        "angle_deg": [_finite(row[p][1]) if p in row else None for row in rows],
                    }
                    for p in pmu_ids
                },
            }
            self.recording.payloads += 1
            self.recording.decisions.extend(self.feed(payload))

    async def _shutdown(self) -> None:
        """Cancel every task of the loop (readers, feeder, the clients' own) and wait for them."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> Recording:
        """Stop reading and feeding; return what was recorded."""
        self.stop_event.set()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        return self.recording


def mean_frequency(recording: Recording) -> tuple[list[float], list[float]]:
    """Return (times, mean frequency over the PMUs) at the instants where every PMU reported."""
    series = [dict(samples) for samples in recording.samples.values()]
    if not series:
        return [], []
    common = sorted(set.intersection(*(set(s) for s in series)))
    return common, [sum(s[t] for s in series) / len(series) for t in common]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def aligned(series: dict[int, list[tuple[float, float]]], pmu_ids: list[int]) -> tuple[list[float], list[list[float]]]:
    """Return (times, one value list per PMU in `pmu_ids`) at the instants where every one of them reported."""
    columns = [dict(series.get(pmu_id, [])) for pmu_id in pmu_ids]
    common = sorted(set.intersection(*(set(c) for c in columns))) if columns else []
    return common, [[c[t] for t in common] for c in columns]
