"""The hand-off: embedded writer thread, Redis stream + consumer group, ack only after commit."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest
import redis
from django.db import OperationalError

from tests.conftest import make_pmu
from tests.historian.helpers import T0_US, make_block
from wams.historian import handoff, streams
from wams.historian.models import Chunk
from wams.historian.services import read_stored
from wams.historian.tasks import persist_blocks

pytestmark = pytest.mark.django_db(transaction=True)


def _stored_count(pmu_id: int) -> int:
    block = read_stored(pmu_id, T0_US, T0_US + 3_600_000_000)
    return 0 if block is None else len(block)


def _pending(client: redis.Redis) -> int:
    return int(client.xpending(streams.HANDOFF_STREAM, streams.HANDOFF_GROUP)["pending"])


def _blocks(pmu_id: int, count: int) -> list[Any]:
    return [make_block(pmu_id, first=150 * i, n=150, seed=i) for i in range(count)]


def test_embedded_submit_stores_in_the_writer_thread(embedded: None) -> None:
    pmu = make_pmu()
    first, second = _blocks(pmu.pk, 2)
    future = handoff.submit_block(first)
    assert future is not None and future.result(timeout=10) == 150
    asyncio.run(handoff.asubmit_block(second))
    handoff.flush_embedded()
    assert _stored_count(pmu.pk) == 300
    assert persist_blocks() == 0  # nothing to do without Redis
    lost = handoff.submit_block(make_block(987_654))
    assert lost is not None and lost.result(timeout=10) == 0  # a PMU deleted meanwhile: logged, not raised


@pytest.mark.redis
def test_redis_entries_are_stored_acked_and_removed(redis_url: str) -> None:
    pmu = make_pmu()
    blocks = _blocks(pmu.pk, 3)
    handoff.submit_block(blocks[0])
    asyncio.run(handoff.asubmit_block(blocks[1]))
    handoff.submit_block(blocks[2])
    client = streams.get_redis()
    assert client.xlen(streams.HANDOFF_STREAM) == 3
    assert persist_blocks(max_seconds=2.0) == 450
    assert _stored_count(pmu.pk) == 450
    assert _pending(client) == 0
    assert client.xlen(streams.HANDOFF_STREAM) == 0


@pytest.mark.redis
def test_entries_are_not_acked_when_the_commit_fails(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pmu = make_pmu()
    for block in _blocks(pmu.pk, 2):
        handoff.submit_block(block)
    client = streams.get_redis()

    def database_down(*args: Any, **kwargs: Any) -> int:
        raise OperationalError("database is down")

    monkeypatch.setattr(handoff, "ingest_many", database_down)
    monkeypatch.setattr(handoff, "ingest", database_down)
    report = handoff.consume("worker-a", max_seconds=1.0)
    assert report.entries == 0 and len(report.failed_ids) == 2
    assert _pending(client) == 2
    assert not Chunk.objects.exists()
    monkeypatch.undo()
    time.sleep(0.05)
    report = handoff.consume("worker-a", max_seconds=1.0, claim_idle_ms=10)
    assert report.claimed == 2 and report.samples_stored == 300
    assert _pending(client) == 0


@pytest.mark.redis
def test_entries_of_a_dead_consumer_are_reclaimed_and_stored_once(redis_url: str) -> None:
    pmu = make_pmu()
    blocks = _blocks(pmu.pk, 4)
    for block in blocks:
        handoff.submit_block(block)
    client = streams.get_redis()
    handoff.ensure_group(client)
    taken = client.xreadgroup(streams.HANDOFF_GROUP, "dead", {streams.HANDOFF_STREAM: ">"}, count=4)
    assert len(taken[0][1]) == 4
    handoff.ingest_many(blocks[:2])  # it committed two blocks, then died before acknowledging anything
    report = handoff.consume("alive", max_seconds=1.0, claim_idle_ms=60_000)
    assert report.claimed == 0 and _pending(client) == 4  # not idle long enough yet
    time.sleep(0.05)
    report = handoff.consume("alive", max_seconds=1.0, claim_idle_ms=10)
    assert report.claimed == 4
    assert report.samples_stored == 300  # the two committed blocks stored nothing twice
    assert _stored_count(pmu.pk) == 600
    stored = read_stored(pmu.pk, T0_US, T0_US + 3_600_000_000)
    assert stored is not None and len(np.unique(stored.timestamp_us)) == 600
    assert _pending(client) == 0


@pytest.mark.redis
def test_block_of_an_unknown_pmu_is_dead_lettered_without_blocking_the_others(redis_url: str) -> None:
    pmu = make_pmu()
    handoff.submit_block(make_block(pmu.pk))
    handoff.submit_block(make_block(987_654))
    client = streams.get_redis()
    client.xadd(streams.HANDOFF_STREAM, {streams.FIELD_BLOCK: b"garbage"})
    report = handoff.consume("worker", max_seconds=1.0)
    assert report.samples_stored == 150
    assert report.dead_lettered == 2
    assert client.xlen(streams.DEAD_LETTER_STREAM) == 2
    assert _pending(client) == 0


@pytest.mark.redis
def test_a_waiting_consumer_stores_a_block_handed_over_after_it_started(redis_url: str) -> None:
    pmu = make_pmu()
    first, later = _blocks(pmu.pk, 2)
    handoff.submit_block(first)
    timer = threading.Timer(0.5, handoff.submit_block, args=(later,))
    timer.start()
    try:
        report = handoff.consume("waiting", max_seconds=3.0, wait=True)  # the later block arrives meanwhile
    finally:
        timer.join()
    assert report.samples_stored == 300 and report.entries == 2
    assert _pending(streams.get_redis()) == 0
    timer = threading.Timer(0.3, handoff.submit_block, args=(make_block(pmu.pk, first=300, seed=9),))
    timer.start()
    try:
        assert handoff.consume("polling", max_seconds=3.0).samples_stored == 0  # without wait: returns at once
    finally:
        timer.join()


def test_embedded_batch_is_stored_and_an_unknown_pmu_loses_only_its_own_block(embedded: None) -> None:
    pmu = make_pmu()
    first, second = _blocks(pmu.pk, 2)
    asyncio.run(handoff.asubmit_blocks([first, make_block(987_654), second]))
    handoff.flush_embedded()
    assert _stored_count(pmu.pk) == 300


@pytest.mark.redis
def test_redis_batch_is_one_pipeline_of_entries_stored_once(redis_url: str) -> None:
    pmu = make_pmu()
    blocks = _blocks(pmu.pk, 4)
    asyncio.run(handoff.asubmit_blocks(blocks[:3]))
    asyncio.run(handoff.asubmit_blocks(blocks[2:]))  # a retried batch overlaps the one before
    client = streams.get_redis()
    assert client.xlen(streams.HANDOFF_STREAM) == 5
    assert persist_blocks(max_seconds=2.0) == 600
    assert _stored_count(pmu.pk) == 600
