"""Compaction of short chunks into chunks of WAMS_HISTORIAN_CHUNK_SECONDS: lossless, idempotent, under the lock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.conftest import make_pmu
from tests.historian.helpers import T0_US, assert_blocks_equal, make_block
from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.compaction import compact_chunks
from wams.historian.models import Chunk, us_from_datetime
from wams.historian.schedule import BEAT_SCHEDULE
from wams.historian.services import CHUNK_MAX_SAMPLES, encode_chunk, ingest, ingest_many, read_stored
from wams.historian.tasks import compact_chunks as compact_chunks_task

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 30
FPS = 30
SETTLE_S = 10.0


def _seconds(whole: SampleBlock) -> list[SampleBlock]:
    """Cut a block into the 1 s blocks (whole seconds since the epoch) the pdc hands over."""
    second = whole.timestamp_us // 1_000_000
    cuts = np.flatnonzero(np.diff(second)) + 1
    return [codec.take_samples(whole, part) for part in np.split(np.arange(len(whole)), cuts)]


def _ingest_seconds(pmu_id: int, seconds: int, start_us: int = T0_US, seed: int = 0) -> SampleBlock:
    whole = make_block(pmu_id, start_us=start_us, n=FPS * seconds, fps=FPS, n_phasors=3, seed=seed)
    for block in _seconds(whole):
        ingest(block)
    return whole


def _compact(at_s: float, **options: Any) -> Any:
    """Compact as if now were T0 + at_s, looking back over everything."""
    return compact_chunks(T0_US + round(at_s * 1e6), seconds=WINDOW_S, settle_s=SETTLE_S, lookback_s=None, **options)


def _stored(pmu_id: int) -> SampleBlock:
    block = read_stored(pmu_id, 0, 2**62)
    assert block is not None
    return block


def _spans(pmu_id: int) -> list[tuple[int, int, int]]:
    return list(Chunk.objects.filter(pmu_id=pmu_id).order_by("start_us").values_list("start_us", "end_us", "n_samples"))


def test_settled_windows_merge_into_one_chunk_each_bit_exact_and_smaller() -> None:
    pmu = make_pmu()
    whole = make_block(pmu.pk, n=FPS * 60, fps=FPS, n_phasors=3)
    assert whole.late is not None
    whole.late[[5, 700, 1799]] = True
    for block in _seconds(whole):
        ingest(block)
    before = _stored(pmu.pk)
    bytes_before = sum(Chunk.objects.values_list("size_bytes", flat=True))
    assert Chunk.objects.count() == 60
    report = _compact(60 + SETTLE_S)
    assert (report.windows, report.chunks_before, report.chunks_after, report.samples) == (2, 60, 2, 1800)
    assert _spans(pmu.pk) == [
        (int(whole.timestamp_us[0]), int(whole.timestamp_us[899]), 900),
        (int(whole.timestamp_us[900]), int(whole.timestamp_us[1799]), 900),
    ]
    assert_blocks_equal(_stored(pmu.pk), before)
    assert_blocks_equal(_stored(pmu.pk), whole)
    assert list(Chunk.objects.order_by("start_us").values_list("n_late", flat=True)) == [2, 1]
    bytes_after = sum(Chunk.objects.values_list("size_bytes", flat=True))
    assert report.bytes_before == bytes_before and report.bytes_after == bytes_after < bytes_before


def test_a_window_is_left_alone_until_it_ended_settle_time_ago() -> None:
    pmu = make_pmu()
    _ingest_seconds(pmu.pk, 60)
    assert _compact(WINDOW_S + SETTLE_S - 0.001).windows == 0
    assert Chunk.objects.count() == 60
    report = _compact(WINDOW_S + SETTLE_S)
    assert report.windows == 1
    assert [n for _, _, n in _spans(pmu.pk)] == [900] + [30] * 30


def test_running_twice_changes_nothing() -> None:
    pmu = make_pmu()
    _ingest_seconds(pmu.pk, 60)
    _compact(100)
    rows = list(Chunk.objects.order_by("pk").values_list("pk", "start_us", "size_bytes"))
    report = _compact(100)
    assert (report.windows, report.skipped) == (0, 0)
    assert list(Chunk.objects.order_by("pk").values_list("pk", "start_us", "size_bytes")) == rows


def test_late_sample_after_compaction_is_stored_once_and_merged_by_the_next_run() -> None:
    pmu = make_pmu()
    whole = make_block(pmu.pk, n=FPS * 30, fps=FPS, n_phasors=3)
    missing = 451
    present = codec.take_samples(whole, np.arange(len(whole)) != missing)
    for block in _seconds(present):
        ingest(block)
    _compact(WINDOW_S + SETTLE_S)
    assert Chunk.objects.count() == 1
    assert ingest(codec.take_samples(whole, slice(440, 460))) == 1  # only the missing one is new
    assert ingest(codec.take_samples(whole, slice(missing, missing + 1))) == 0
    assert ingest(codec.take_samples(whole, slice(0, 30))) == 0  # the compacted chunk is seen by the check
    assert Chunk.objects.count() == 2
    assert _compact(WINDOW_S + SETTLE_S + 600).windows == 1
    assert Chunk.objects.count() == 1
    assert_blocks_equal(_stored(pmu.pk), whole)


def test_raw_downsampled_and_differently_shaped_chunks_are_never_merged_together() -> None:
    pmu = make_pmu()
    whole = make_block(pmu.pk, n=FPS * 30, fps=FPS, n_phasors=3)
    parts = _seconds(whole)
    for block in parts[:10]:
        ingest(block)
    # Seconds 10-19 kept downsampled at 1 fps (a policy's output), 20-29 with one phasor less (a new CFG).
    for block in parts[10:20]:
        encode_chunk(codec.take_samples(block, slice(0, 1)), downsampled_fps=1).save()
    narrow = make_block(pmu.pk, n=FPS * 30, fps=FPS, n_phasors=2, seed=3)
    for block in _seconds(narrow)[20:]:
        ingest(block)
    before = _stored(pmu.pk)
    report = _compact(100)
    assert (report.windows, report.chunks_before, report.chunks_after) == (3, 30, 3)
    kinds = list(Chunk.objects.order_by("start_us").values_list("downsampled_fps", "n_phasors", "n_samples"))
    assert kinds == [(0, 3, 300), (1, 3, 10), (0, 2, 300)]
    assert_blocks_equal(_stored(pmu.pk), before)


def test_chunk_crossing_a_window_boundary_is_left_alone() -> None:
    pmu = make_pmu()
    whole = make_block(pmu.pk, n=FPS * 60, fps=FPS, n_phasors=3)
    for block in _seconds(codec.take_samples(whole, slice(0, 870))):
        ingest(block)
    ingest(codec.take_samples(whole, slice(870, 930)))  # 29 s .. 31 s
    for block in _seconds(codec.take_samples(whole, slice(930, None))):
        ingest(block)
    assert _compact(100).windows == 2
    assert [n for _, _, n in _spans(pmu.pk)] == [870, 60, 870]
    assert_blocks_equal(_stored(pmu.pk), whole)


def test_a_window_of_more_than_a_chunk_of_samples_merges_into_the_fewest_chunks_once() -> None:
    pmu = make_pmu()
    fps = 240
    whole = make_block(pmu.pk, n=fps * WINDOW_S, fps=fps, n_phasors=1)
    for block in _seconds(whole):
        ingest(block)
    report = _compact(100)
    assert (report.chunks_before, report.chunks_after) == (30, 2)
    assert [n for _, _, n in _spans(pmu.pk)] == [CHUNK_MAX_SAMPLES, fps * WINDOW_S - CHUNK_MAX_SAMPLES]
    assert _compact(100).windows == 0
    assert_blocks_equal(_stored(pmu.pk), whole)


def test_lookback_and_pmu_selection_bound_a_run() -> None:
    first, second = make_pmu(), make_pmu()
    _ingest_seconds(first.pk, 90)
    _ingest_seconds(second.pk, 30, seed=1)
    assert compact_chunks(T0_US + 100_000_000, seconds=WINDOW_S, lookback_s=40, pmu_ids=[first.pk]).windows == 1
    assert [n for _, _, n in _spans(first.pk)] == [30] * 60 + [900]  # only the window in the last 40 s (60-90 s)
    assert Chunk.objects.filter(pmu=second).count() == 30


def test_compaction_keeps_values_exact_even_when_new_chunks_are_stored_lossy(settings: Any) -> None:
    pmu = make_pmu()
    whole = make_block(pmu.pk, n=FPS * 30, fps=FPS, n_phasors=2)
    whole.frequency_hz = whole.frequency_hz + 1e-12  # not float32-exact: the residual must survive
    for block in _seconds(whole):
        ingest(block)
    settings.WAMS_HISTORIAN_LOSSLESS = False
    assert _compact(100).windows == 1
    assert_blocks_equal(_stored(pmu.pk), whole)


def test_beat_task_compacts_recent_windows_with_the_configured_length(settings: Any) -> None:
    entry = BEAT_SCHEDULE["historian-compact-chunks"]
    assert entry["task"] == "wams.historian.tasks.compact_chunks"
    assert 0 < float(entry["schedule"]) <= 30
    settings.WAMS_HISTORIAN_CHUNK_SECONDS = 10
    pmu = make_pmu()
    now_us = us_from_datetime(timezone.now())
    start_us = (now_us - 120_000_000) // 10_000_000 * 10_000_000
    whole = _ingest_seconds(pmu.pk, 60, start_us=start_us)
    assert compact_chunks_task() == 60 - 6  # the task as beat runs it: default lookback and settle time
    assert [n for _, _, n in _spans(pmu.pk)] == [300] * 6
    assert_blocks_equal(_stored(pmu.pk), whole)


@pytest.mark.django_db(transaction=True)
def test_embedded_schedule_runs_compaction(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from wams.historian import compaction
    from wams.periodic import run_schedule

    real = compaction.compact_chunks

    def compact_and_close(*args: Any, **kwargs: Any) -> Any:
        try:
            return real(*args, **kwargs)
        finally:
            connections.close_all()  # the schedule's threads end with the test: leave no session behind

    monkeypatch.setattr(compaction, "compact_chunks", compact_and_close)
    settings.WAMS_HISTORIAN_CHUNK_SECONDS = 10
    pmu = make_pmu()
    now_us = us_from_datetime(timezone.now())
    whole = _ingest_seconds(pmu.pk, 40, start_us=(now_us - 60_000_000) // 10_000_000 * 10_000_000)

    def count() -> int:
        try:
            return Chunk.objects.filter(pmu=pmu).count()
        finally:
            connections.close_all()

    async def run() -> None:
        stop = asyncio.Event()
        schedule = {"compact": {**BEAT_SCHEDULE["historian-compact-chunks"], "schedule": 0.05}}
        runner = asyncio.create_task(run_schedule(stop, schedule))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and await asyncio.to_thread(count) > 4:  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.05)
        stop.set()
        await runner

    asyncio.run(run())
    assert Chunk.objects.filter(pmu=pmu).count() == 4
    assert_blocks_equal(_stored(pmu.pk), whole)


@pytest.mark.django_db(transaction=True)
def test_ingest_while_compacting_the_same_pmu_loses_and_doubles_nothing() -> None:
    pmu = make_pmu()
    whole = make_block(pmu.pk, n=FPS * 120, fps=FPS, n_phasors=3)
    seconds = _seconds(whole)
    late_index = np.arange(3, len(whole), 17)  # every 17th sample arrives late, again and again
    on_time = codec.take_samples(whole, ~np.isin(np.arange(len(whole)), late_index))
    for block in _seconds(on_time):
        ingest(block)
    errors: list[BaseException] = []
    done = threading.Event()

    def ingest_late() -> None:
        try:
            rng = np.random.default_rng(0)
            for _ in range(3):
                for index in rng.permutation(late_index):
                    ingest_many([codec.take_samples(whole, slice(index, index + 1)), seconds[index // FPS]])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()
            done.set()

    writer = threading.Thread(target=ingest_late)
    writer.start()
    runs = 0
    while not done.is_set():
        _compact(200)
        runs += 1
    writer.join()
    assert not errors, errors
    _compact(200)
    stored = _stored(pmu.pk)
    assert len(np.unique(stored.timestamp_us)) == len(stored) == len(whole)
    assert_blocks_equal(stored, whole)
    assert Chunk.objects.filter(pmu=pmu).count() == 4
    assert runs >= 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_compaction_waits_for_the_pmu_ingest_lock() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (DATABASE_URL=postgres://...)")
    import psycopg

    pmu = make_pmu()
    _ingest_seconds(pmu.pk, 30)
    params = connection.settings_dict
    dsn = f"host={params.get('HOST') or '127.0.0.1'} port={params.get('PORT') or 5432} dbname={params['NAME']} "
    dsn += f"user={params.get('USER') or 'postgres'}"
    result: list[Any] = []
    with psycopg.connect(dsn) as locker:
        locker.execute("SELECT id FROM grid_pmu WHERE id = %s FOR NO KEY UPDATE", [pmu.pk])  # as ingest locks

        def run() -> None:
            try:
                result.append(_compact(100))
            finally:
                connections.close_all()

        compactor = threading.Thread(target=run)
        compactor.start()
        time.sleep(1.0)
        assert not result and Chunk.objects.filter(pmu=pmu).count() == 30  # waiting on the lock
        locker.rollback()
    compactor.join(timeout=30)
    assert result and result[0].windows == 1
    assert Chunk.objects.filter(pmu=pmu).count() == 1


def test_a_window_changed_between_reading_and_deleting_is_rolled_back_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = make_pmu(), make_pmu()
    _ingest_seconds(first.pk, 30)
    _ingest_seconds(second.pk, 30, seed=1)
    before = {pmu.pk: _stored(pmu.pk) for pmu in (first, second)}
    from wams.historian import compaction

    real = compaction.codec.decode_block
    victim = Chunk.objects.filter(pmu=first).order_by("start_us").values_list("pk", flat=True)[5]

    def decode_and_lose_one(data: Any, pmu_id: int) -> SampleBlock:
        if pmu_id == first.pk:
            Chunk.objects.filter(pk=victim).delete()  # what a policy deleting meanwhile does
        return real(data, pmu_id)

    monkeypatch.setattr(compaction.codec, "decode_block", decode_and_lose_one)
    report = _compact(100)
    assert (report.windows, report.skipped) == (1, 1)
    assert Chunk.objects.filter(pmu=first).count() == 30  # rolled back, the lost chunk included
    assert Chunk.objects.filter(pmu=second).count() == 1
    for pmu_id, block in before.items():
        assert_blocks_equal(_stored(pmu_id), block)


def test_a_fresh_embedded_process_finds_every_scheduled_task_the_compaction_included() -> None:
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from wams.periodic import load_tasks\n"
        "app = load_tasks()\n"
        "print(sorted(e['task'] for e in settings.CELERY_BEAT_SCHEDULE.values() if e['task'] not in app.tasks))\n"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    environment.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "wams.historian.tasks.compact_chunks" in {e["task"] for e in BEAT_SCHEDULE.values()}


def test_a_run_out_of_time_leaves_the_rest_to_the_next_run() -> None:
    pmus = [make_pmu() for _ in range(3)]
    wholes = [_ingest_seconds(pmu.pk, 30, seed=k) for k, pmu in enumerate(pmus)]
    first = _compact(100, max_seconds=0.0)
    assert first.windows <= 1  # stops starting PMUs once its time is up
    second = _compact(100)
    assert first.windows + second.windows == 3
    for pmu, whole in zip(pmus, wholes, strict=True):
        assert Chunk.objects.filter(pmu=pmu).count() == 1
        assert_blocks_equal(_stored(pmu.pk), whole)
