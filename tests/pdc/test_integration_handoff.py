"""The whole ingest path for real: PMU fleet -> pdc -> Redis stream -> Celery workers -> PostgreSQL.

A fleet streams at 30 fps into the pdc, whose blocks go through the historian's Redis hand-off to
real `celery -A wams worker` processes; one worker is killed mid-run and another takes over its
pending entries. One PMU goes away and comes back; one frame is held back past the wait time.
At the end every frame the fleet sent is stored exactly once, with its values.

Run with PostgreSQL, e.g.:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pdc python -m pytest tests/pdc/test_integration_handoff.py
(the minute-long run is marked slow: add `-m slow`).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from asgiref.sync import sync_to_async
from celery import Celery
from django.db import connection

from tests.pdc.fleet import BASE_V, pmu_block, start_pmu, stream_config, wait_for
from tests.pdc.grid import provision
from tests.pdc.test_runner import Published, run_with
from wams.grid.models import Pmu
from wams.historian import streams
from wams.historian.services import read_stored
from wams.pdc.align import snap_to_grid
from wams.pdc.concentrator import DataPathOptions
from wams.pdc.reports import LinkOptions, State
from wams.pdc.runner import Concentrator, PdcOptions
from wams.synchrophasor import PmuData, PmuServer

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_TEST_URL = "redis://127.0.0.1:6379/12"  # db 12 belongs to these tests; flushed around each
PERSIST = "wams.historian.tasks.persist_blocks"
N_STREAMS = 8
RATE_FPS = 30


def database_url() -> str:
    """Return the URL of the test database (pytest-django's) for worker subprocesses."""
    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{params.get('HOST') or '127.0.0.1'}:{params.get('PORT') or 5432}/{params['NAME']}"
    )


@pytest.fixture
def redis_url(settings: Any) -> Iterator[str]:
    """Point REDIS_URL at this test's own Redis database, empty."""
    if connection.vendor != "postgresql":
        pytest.skip("the hand-off integration test needs PostgreSQL (DATABASE_URL=postgres://...)")
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    client.flushdb()
    settings.REDIS_URL = REDIS_TEST_URL
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start Celery worker processes on the test Redis and database; kill what is left afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, **env: str) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wams.settings",
            "SECRET_KEY": "pdc-integration",
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
            **env,
        }
        log = (tmp_path / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "celery", "-A", "wams", "worker", "-P", "solo", "-n", f"{name}@%h"]
        command += ["--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "WARNING"]
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Device:
    """One PMU server of the fleet and everything it sent: instant (us) -> (frequency, magnitude, angle)."""

    config: Any
    server: PmuServer | None = None
    port: int = 0
    sent: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    hold_next: bool = False
    held_us: int | None = None

    async def source(self, soc: int, fraction: int) -> list[PmuData]:
        t_us = soc * 1_000_000 + fraction
        k = len(self.sent)
        frequency = float(np.float32(60.0 + 0.05 * math.sin(k / 7.0) + self.config.idcode * 1e-4))
        magnitude = float(np.float32(BASE_V * (1.0 + 0.01 * math.cos(k / 5.0))))
        angle = float(np.float32(math.radians((k * 0.37) % 360 - 180)))
        if self.hold_next:  # deliver this frame 350 ms late: past the 100 ms wait time
            self.hold_next = False
            self.held_us = snap_to_grid(t_us, RATE_FPS)
            await asyncio.sleep(0.35)
        self.sent[snap_to_grid(t_us, RATE_FPS)] = (frequency, magnitude, angle)
        phasors = np.array([magnitude * np.exp(1j * angle), 100.0 + 0j])
        return [PmuData(stat=0, phasors=phasors, frequency_hz=frequency, rocof_hz_per_s=0.0)]

    async def start(self) -> None:
        self.server = await start_pmu(self.config, self.source, port=self.port)
        self.port = self.server.ports["tcp"]

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


def run_fleet(duration_s: float, start_worker: Callable[..., subprocess.Popen[bytes]]) -> dict[str, Any]:
    """Stream for `duration_s` with the faults; return what was sent, received and measured."""
    devices = [Device(stream_config(1000 + k, [pmu_block(1000 + k, f"PMU{k}")], RATE_FPS)) for k in range(N_STREAMS)]
    celery = Celery(broker=REDIS_TEST_URL)
    result: dict[str, Any] = {}

    async def scenario() -> None:
        for device in devices:
            await device.start()
        pmus: list[Pmu] = []
        for device in devices:
            pmus.append((await sync_to_async(provision)(device.port, device.config.idcode))[1])
        first = start_worker("first")
        options = PdcOptions(
            data=DataPathOptions(wait_time_ms=100, block_seconds=1.0),
            link=LinkOptions(connect_timeout_s=1.0, try_cfg3=False),
            model_poll_s=1.0,
        )
        concentrator = Concentrator(options=options, publish=Published())
        beat = asyncio.create_task(send_every(celery, 0.5))

        async def body() -> None:
            links = concentrator.links
            assert await wait_for(lambda: len(links) == N_STREAMS, 10)
            assert await wait_for(lambda: all(link.state is State.STREAMING for link in links.values()), 10)
            started = time.monotonic()
            await asyncio.sleep(duration_s * 0.25)
            devices[1].hold_next = True
            # PMU 2 goes away for three seconds and comes back.
            gone = devices[2]
            await gone.stop()
            await asyncio.sleep(3.0)
            await gone.start()
            back = time.monotonic()
            gone_link = next(link for link in links.values() if link.spec.idcode == gone.config.idcode)
            count = gone_link.frames_received
            assert await wait_for(lambda: gone_link.frames_received > count + 3, 10)
            result["recovery_s"] = time.monotonic() - back
            # The worker dies mid-run; another takes over (and reclaims what it left pending).
            await asyncio.sleep(max(duration_s * 0.5 - (time.monotonic() - started), 0.5))
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 10)
            await asyncio.sleep(1.0)
            start_worker("second", WAMS_HISTORIAN_CLAIM_IDLE_MS="1000")
            await asyncio.sleep(max(duration_s - (time.monotonic() - started), 0.0))
            # Stop the fleet first, so that everything it sent has reached the pdc before it stops.
            for device in devices:
                await device.stop()
            await asyncio.sleep(0.5)
            result["frames_late"] = {link.spec.idcode: link.frames_late for link in links.values()}
            result["frames_received"] = {link.spec.idcode: link.frames_received for link in links.values()}

        try:
            await run_with(concentrator, body)
            client = streams.get_redis()
            assert await wait_for(lambda: handoff_drained(client), 60, step_s=0.5)
        finally:
            beat.cancel()
            for device in devices:
                await device.stop()
        result["pmus"] = pmus

    asyncio.run(asyncio.wait_for(scenario(), duration_s + 150))
    celery.close()
    result["devices"] = devices
    return result


async def send_every(celery: Celery, period_s: float) -> None:
    """Do what beat does for the historian: ask a worker to persist hand-off entries."""
    while True:
        await asyncio.to_thread(celery.send_task, PERSIST, kwargs={"max_seconds": 0.9, "claim_idle_ms": 1000})
        await asyncio.sleep(period_s)


def handoff_drained(client: redis.Redis) -> bool:
    """Tell whether every hand-off entry was stored and acknowledged."""
    try:
        pending = int(client.xpending(streams.HANDOFF_STREAM, streams.HANDOFF_GROUP)["pending"])
    except redis.ResponseError:
        return False
    return pending == 0 and client.xlen(streams.HANDOFF_STREAM) == 0


@pytest.mark.parametrize(
    "duration_s", [pytest.param(15.0, id="15s"), pytest.param(60.0, marks=pytest.mark.slow, id="minute")]
)
def test_every_frame_sent_is_stored_exactly_once_across_a_killed_worker(
    duration_s: float, workers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    result = run_fleet(duration_s, workers)
    assert result["recovery_s"] < 5.0  # the PMU that went away streams again within 5 s
    devices: list[Device] = result["devices"]
    for device, pmu in zip(devices, result["pmus"], strict=True):
        sent = device.sent
        assert result["frames_received"][device.config.idcode] == len(sent)  # nothing lost on the wire
        stored = read_stored(pmu.id, 0, 2**62)
        assert stored is not None
        stamps = stored.timestamp_us.tolist()
        assert len(stamps) == len(set(stamps)) == len(sent)  # exactly once
        assert set(stamps) == set(sent)
        expected = np.array([sent[t] for t in stamps])
        np.testing.assert_array_equal(stored.frequency_hz, expected[:, 0])  # float32 on the wire: exact
        # Polar float32 on the wire: within a float32 step of the angle (the encoder recomputes it).
        phasors = expected[:, 1] * np.exp(1j * expected[:, 2])
        np.testing.assert_allclose(stored.phasors[:, 0], phasors, rtol=1e-6)
        late = {int(t) for t, flag in zip(stored.timestamp_us, stored.late) if flag}
        assert len(late) == result["frames_late"][device.config.idcode]
        if device.held_us is not None:
            assert device.held_us in late  # past the wait time: counted late and still stored
    assert devices[1].held_us is not None
