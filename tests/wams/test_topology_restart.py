"""The Procfile topology for real under `manage.py run_topology`: killed web and worker come back, nothing is lost.

web (Daphne), pdc (run_pdc), worker (Celery, prefork) and beat run under supervisord on a PostgreSQL
database created for this test and on Redis db 13; a fleet of PMU servers in this process streams into
the pdc. Mid-stream the web process and the worker are SIGKILLed. Both come back with new pids,
/healthz answers 200 again, the new worker's pool joins the hand-off consumer group and stores, and every
frame the fleet sent is stored exactly once (the dead worker's pending entries are reclaimed after
WAMS_HISTORIAN_CLAIM_IDLE_MS). Run with PostgreSQL and Redis, e.g.:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        python -m pytest tests/wams/test_topology_restart.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import redis
from django.db import connection

from tests.pdc.fleet import free_port, pmu_block, stream_config
from tests.pdc.test_integration_handoff import Device, handoff_drained
from tests.wams.supervised import ROOT, Topology, group_members, parent_of, poll
from wams.historian import streams

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(400)]

REDIS_TEST_URL = "redis://127.0.0.1:6379/13"  # db 13 belongs to this test; flushed around it
N_STREAMS = 4
RATE_FPS = 30
START_TIMEOUT_S = 180  # a loaded 2-core machine takes long to import five Django processes


def server_url(database: str) -> str:
    """Return the URL of `database` on the test run's PostgreSQL server, with its credentials."""
    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{params.get('HOST') or '127.0.0.1'}:{params.get('PORT') or 5432}/{database}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Return this test's own Redis database, empty."""
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    client.flushdb()
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"SECRET_KEY": "topology-restart-test", "WAMS_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)})
    return env


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """Create a database of this test's own, migrated; drop it afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("the topology restart test needs PostgreSQL (DATABASE_URL=postgres://...)")
    name = f"wams_topology_{os.getpid()}"
    with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server_url(name)
    try:
        env = {**base_env(tmp_path), "DATABASE_URL": url}
        command = [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"]
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        yield url
    finally:
        with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def in_database(env: dict[str, str], *args: str) -> Any:
    """Run tests/wams/topology_db.py in the test's database and return its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.wams.topology_db", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(done.stdout)


class Fleet:
    """PMU servers streaming from an event loop in a thread, while the test drives the topology."""

    def __init__(self) -> None:
        self.devices = [
            Device(stream_config(3000 + k, [pmu_block(3000 + k, f"TOPO{k}")], RATE_FPS)) for k in range(N_STREAMS)
        ]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def start(self) -> None:
        for device in self.devices:
            self.run(device.start())

    def stop(self) -> None:
        for device in self.devices:
            self.run(device.stop())

    def sent(self) -> int:
        """Return the frames of the device that sent fewest."""
        return min(len(self.run(self._sent(device))) for device in self.devices)

    @staticmethod
    async def _sent(device: Device) -> dict[int, Any]:
        return dict(device.sent)  # copied on the loop's thread

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def healthz(port: int) -> bool:
    """Tell whether /healthz answers 200 with status up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status == 200 and json.load(response)["status"] == "up"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def pool_consumers(client: redis.Redis, worker_pid: int) -> list[str]:
    """Return the hand-off consumers that are processes of the Celery worker `worker_pid` (its pool)."""
    try:
        consumers = client.xinfo_consumers(streams.HANDOFF_STREAM, streams.HANDOFF_GROUP)
    except redis.ResponseError:
        return []
    names = [c["name"].decode() for c in consumers]
    return [name for name in names if parent_of(int(name.rsplit(":", 1)[1])) == worker_pid]


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    fleet = Fleet()
    yield fleet
    fleet.close()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Topology]:
    run = Topology(tmp_path / "run", tmp_path / "topology.log", {})
    yield run
    run.stop(timeout_s=60)
    assert not run.kill_leftovers(), "processes outlived supervisord"


def test_killed_web_and_worker_are_restarted_and_every_frame_is_stored_once(
    tmp_path: Path, redis_url: str, database_url: str, fleet: Fleet, supervised: Topology
) -> None:
    port = free_port()
    env = {**base_env(tmp_path), "DATABASE_URL": database_url, "REDIS_URL": redis_url, "PORT": str(port)}
    env["WAMS_HISTORIAN_CLAIM_IDLE_MS"] = "2000"  # a dead worker's entries are taken over 2 s later
    fleet.start()
    pairs = [f"{device.port}:{device.config.idcode}" for device in fleet.devices]
    pmu_ids: dict[str, int] = in_database(env, "provision", *pairs)
    supervised.env = env
    supervised.start("web", "pdc", "worker", "beat", "--start-seconds", "3", "--stop-seconds", "30")
    names = ["web", "pdc", "worker", "beat"]
    first = supervised.wait_running(names, START_TIMEOUT_S)
    client = redis.Redis.from_url(redis_url)
    assert poll(lambda: healthz(port), START_TIMEOUT_S), supervised.log_tail()
    assert poll(lambda: pool_consumers(client, first["worker"]), START_TIMEOUT_S), supervised.log_tail()
    assert poll(lambda: fleet.sent() > 2 * RATE_FPS, 60), "the pdc does not stream from the fleet"

    for name in ("web", "worker"):
        os.kill(first[name], signal.SIGKILL)
    again = supervised.wait_running(["web", "worker"], START_TIMEOUT_S, not_pids=first)
    assert again["web"] != first["web"] and again["worker"] != first["worker"]
    assert poll(lambda: healthz(port), START_TIMEOUT_S), supervised.log_tail()
    # The new worker's pool reads the hand-off stream (a new consumer: host and pid of a pool process).
    assert poll(lambda: pool_consumers(client, again["worker"]), START_TIMEOUT_S), supervised.log_tail()
    # The killed worker's pool died with it (pdeathsig) or was ended: nothing of its group is left.
    assert poll(lambda: group_members(first["worker"]) == [], 30)
    sent_at_restart = fleet.sent()
    assert poll(lambda: fleet.sent() > sent_at_restart + 2 * RATE_FPS, 60)

    fleet.stop()  # then stop the pdc, which hands over everything it holds
    time.sleep(0.5)
    assert supervised.rpc().stopProcess("pdc", True)
    assert poll(lambda: handoff_drained(client), 90, step_s=0.5), supervised.log_tail()
    assert supervised.running("beat") == first["beat"]  # untouched processes were left alone
    assert supervised.stop() == 0
    client.close()

    log = supervised.log_tail(2_000_000)
    assert "exited: web (terminated by SIGKILL; not expected)" in log
    assert "exited: worker (terminated by SIGKILL; not expected)" in log
    stored = in_database(env, "stored", *(str(pmu_id) for pmu_id in pmu_ids.values()))
    for device in fleet.devices:
        sent = device.sent
        data = stored[str(pmu_ids[str(device.config.idcode)])]
        stamps = data["t"]
        assert len(sent) > 5 * RATE_FPS
        assert len(stamps) == len(set(stamps)) == len(sent)  # exactly once
        assert set(stamps) == set(sent)
        expected = np.array([sent[t][0] for t in stamps])
        np.testing.assert_array_equal(np.array(data["f"]), expected)  # float32 on the wire: exact
