"""A real Celery worker against real Redis and PostgreSQL: ack after commit, reclaim after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from celery import Celery
from django.db import connection

from tests.conftest import make_pmu
from tests.historian.helpers import T0_US, assert_blocks_equal, make_block
from wams.historian import codec, handoff, streams
from wams.historian.models import Chunk
from wams.historian.services import read_stored

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
TASK = "wams.historian.tasks.persist_blocks"


def _database_url() -> str:
    """Return a URL of the test database (pytest-django's, e.g. test_test) for a subprocess."""
    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{params.get('HOST') or '127.0.0.1'}:{params.get('PORT') or 5432}/{params['NAME']}"
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `celery -A wams worker -P solo` processes on the test Redis and database; kill them after."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker test needs PostgreSQL (DATABASE_URL=postgres://...)")
    workers: list[subprocess.Popen[bytes]] = []

    def start(name: str, **env: str) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wams.settings",
            "SECRET_KEY": "worker-test",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": redis_url,
            **env,
        }
        log = (tmp_path / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "celery", "-A", "wams", "worker", "-P", "solo", "-n", f"{name}@%h"]
        command += ["--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "INFO"]
        worker = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)


@pytest.fixture
def send_task(redis_url: str) -> Iterator[Callable[..., None]]:
    """Send a task to the workers through the test Redis."""
    client = Celery(broker=redis_url)

    def send(name: str, **kwargs: Any) -> None:
        client.send_task(name, kwargs=kwargs)

    yield send
    client.close()


def test_worker_acks_only_after_commit_and_a_killed_workers_entries_are_reclaimed(
    start_worker: Callable[..., subprocess.Popen[bytes]], send_task: Callable[..., None]
) -> None:
    pmu = make_pmu()
    blocks = [make_block(pmu.pk, first=150 * i, n=150, n_phasors=4, seed=i) for i in range(6)]
    for block in blocks:
        handoff.submit_block(block)
    client = streams.get_redis()
    handoff.ensure_group(client)
    # A consumer that commits two blocks and dies before acknowledging them.
    client.xreadgroup(streams.HANDOFF_GROUP, "died-after-commit", {streams.HANDOFF_STREAM: ">"}, count=2)
    handoff.ingest_many(blocks[:2])

    def pending() -> int:
        return int(client.xpending(streams.HANDOFF_STREAM, streams.HANDOFF_GROUP)["pending"])

    # Hold the PMU's row lock: the worker's ingest transaction waits on it after reading the entries.
    with psycopg.connect(_database_url().replace("postgres://", "postgresql://")) as locker:
        locker.execute("SELECT id FROM grid_pmu WHERE id = %s FOR UPDATE", [pmu.pk])
        first = start_worker("first")
        send_task(TASK, max_seconds=30.0)
        _wait_for(lambda: pending() == 6, 60, "the first worker to read the four remaining entries")
        time.sleep(0.5)
        assert Chunk.objects.count() == 2  # only the dead consumer's commit: nothing of the first worker's
        assert pending() == 6  # read but not acknowledged: the worker's commit has not happened
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        locker.rollback()

    consumers = {
        c["name"].decode(): c["pending"] for c in client.xinfo_consumers(streams.HANDOFF_STREAM, streams.HANDOFF_GROUP)
    }
    assert consumers["died-after-commit"] == 2 and sum(consumers.values()) == 6
    start_worker("second", WAMS_HISTORIAN_CLAIM_IDLE_MS="500")
    for _ in range(3):
        send_task(TASK, max_seconds=2.0)
    _wait_for(lambda: pending() == 0, 60, "the second worker to reclaim and store every entry")

    stored = read_stored(pmu.pk, T0_US, T0_US + 3_600_000_000)
    assert stored is not None
    assert_blocks_equal(stored, codec.concat_blocks(blocks))  # every sample once, values bit-exact
    assert len(np.unique(stored.timestamp_us)) == 900
    assert client.xlen(streams.HANDOFF_STREAM) == 0
