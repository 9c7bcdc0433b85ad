"""Storage policies on known data: bytes and age limits, downsampling, the usage report."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command

from tests.conftest import make_pmu
from tests.historian.helpers import T0, T0_US, assert_blocks_equal, make_block
from wams.grid.models import DeviceGroup, StoragePolicy
from wams.historian import codec
from wams.historian.compaction import compact_chunks
from wams.historian.models import Chunk
from wams.historian.policies import apply_storage_policy, enforce_all_policies
from wams.historian.services import ingest, ingest_many, read_stored
from wams.historian.tasks import enforce_storage_policies

pytestmark = pytest.mark.django_db

CHUNKS = 20  # 5 s chunks of 150 samples at 30 fps: chunk i covers [5 i, 5 i + 4.967] s


def _fill(pmu_id: int, seed: int = 0) -> list[object]:
    whole = make_block(pmu_id, n=150 * CHUNKS, n_phasors=3, seed=seed)
    for i in range(CHUNKS):
        ingest(codec.take_samples(whole, slice(150 * i, 150 * (i + 1))))
    return whole  # type: ignore[return-value]


def _sizes(pmu_id: int) -> list[int]:
    return list(Chunk.objects.filter(pmu_id=pmu_id).order_by("start_us").values_list("size_bytes", flat=True))


def test_byte_limit_removes_oldest_chunks_only_as_far_as_needed_and_keeps_the_rest_intact() -> None:
    pmu = make_pmu()
    whole = _fill(pmu.pk)
    sizes = _sizes(pmu.pk)
    max_bytes = sum(sizes) - sum(sizes[:5]) - 1  # the 5 oldest are not quite enough: 6 must go
    policy = StoragePolicy.objects.create(name="small", max_bytes=max_bytes)
    policy.pmus.add(pmu)
    report = apply_storage_policy(policy.pk)
    assert report.chunks_deleted == 6
    assert report.bytes_freed == sum(sizes[:6])
    assert report.bytes_after == sum(sizes[6:]) <= max_bytes
    assert _sizes(pmu.pk) == sizes[6:]
    kept = read_stored(pmu.pk, T0_US, T0_US + 200_000_000)
    assert kept is not None
    assert_blocks_equal(kept, codec.take_samples(whole, slice(6 * 150, None)))  # type: ignore[arg-type]
    assert apply_storage_policy(policy.pk).chunks_deleted == 0


def test_byte_limit_through_a_device_group_spares_pmus_outside_it() -> None:
    inside, outside = make_pmu(), make_pmu()
    _fill(inside.pk)
    _fill(outside.pk, seed=1)
    before = _sizes(inside.pk)
    limit = sum(before) // 3
    group = DeviceGroup.objects.create(name="feeders")
    group.pmus.add(inside)
    policy = StoragePolicy.objects.create(name="grouped", max_bytes=limit)
    policy.groups.add(group)
    assert enforce_storage_policies() > 0
    after = _sizes(inside.pk)
    removed = CHUNKS - len(after)
    assert after == before[removed:]  # oldest first
    assert sum(after) <= limit < sum(after) + before[removed - 1]  # and no further than needed
    assert len(_sizes(outside.pk)) == CHUNKS


def test_age_limit_removes_chunks_whose_last_sample_is_older() -> None:
    pmu = make_pmu()
    _fill(pmu.pk)
    policy = StoragePolicy.objects.create(name="one day", max_age_days=1.0)
    policy.pmus.add(pmu)
    now = T0 + timedelta(days=1, seconds=50)
    report = apply_storage_policy(policy.pk, now=now)
    assert report.chunks_deleted == 10
    first = Chunk.objects.filter(pmu=pmu).order_by("start_us").first()
    assert first is not None and first.start_us == T0_US + 50_000_000


def test_downsampling_replaces_old_chunks_by_one_sample_per_interval() -> None:
    pmu = make_pmu()
    whole = _fill(pmu.pk)
    before = sum(_sizes(pmu.pk))
    policy = StoragePolicy.objects.create(name="thin", downsample_after_days=1.0, downsample_rate_fps=1)
    policy.pmus.add(pmu)
    now = T0 + timedelta(days=1, seconds=30)
    report = apply_storage_policy(policy.pk, now=now)
    assert report.chunks_downsampled == 6
    old = Chunk.objects.get(pmu=pmu, downsampled_fps=1)
    assert old.n_samples == 30
    assert Chunk.objects.filter(pmu=pmu, downsampled_fps=0).count() == CHUNKS - 6
    stored = read_stored(pmu.pk, T0_US, T0_US + 200_000_000)
    assert stored is not None
    expected_index = np.concatenate([np.arange(0, 900, 30), np.arange(900, 150 * CHUNKS)])
    assert_blocks_equal(stored, codec.take_samples(whole, expected_index))  # type: ignore[arg-type]
    assert sum(_sizes(pmu.pk)) < before
    assert apply_storage_policy(policy.pk, now=now).chunks_downsampled == 0


def test_storage_usage_command_reports_each_policy() -> None:
    covered, loose = make_pmu(), make_pmu()
    _fill(covered.pk)
    ingest(make_block(loose.pk, n=30))
    policy = StoragePolicy.objects.create(name="archive", max_bytes=10**9)
    policy.pmus.add(covered)
    out = io.StringIO()
    call_command("storage_usage", "--json", stdout=out)
    rows = {row["policy"]: row for row in json.loads(out.getvalue())}
    assert rows["archive"]["chunks"] == CHUNKS
    assert rows["archive"]["bytes"] == sum(_sizes(covered.pk))
    assert rows["archive"]["oldest"] == "2026-01-01T00:00:00+00:00"
    assert rows["(no policy)"]["chunks"] == 1
    table = io.StringIO()
    call_command("storage_usage", stdout=table)
    assert "archive" in table.getvalue() and "(no policy)" in table.getvalue()


def test_a_failing_policy_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    pmu = make_pmu()
    _fill(pmu.pk)
    StoragePolicy.objects.create(name="a broken one", max_bytes=1)
    good = StoragePolicy.objects.create(name="b good", max_bytes=1)
    good.pmus.add(pmu)
    from wams.historian import policies

    real = policies.policy_pmu_ids

    def flaky(policy: StoragePolicy) -> list[int]:
        if policy.name.startswith("a"):
            raise RuntimeError("boom")
        return real(policy)

    monkeypatch.setattr(policies, "policy_pmu_ids", flaky)
    reports = enforce_all_policies()
    assert [r.policy_id for r in reports] == [good.pk]
    assert not Chunk.objects.exists()


def test_byte_limit_holds_within_one_chunk_while_short_chunks_arrive_and_get_compacted() -> None:
    pmu = make_pmu()
    seconds = 150
    whole = make_block(pmu.pk, n=30 * seconds, n_phasors=3)
    max_bytes = 40_000  # about two compacted 30 s chunks and a few dozen 1 s ones
    policy = StoragePolicy.objects.create(name="tight", max_bytes=max_bytes)
    policy.pmus.add(pmu)
    compactions = mixed = 0
    for second in range(seconds):
        ingest(codec.take_samples(whole, slice(30 * second, 30 * (second + 1))))
        newest = Chunk.objects.filter(pmu=pmu).order_by("-start_us").values_list("size_bytes", flat=True)[0]
        assert sum(_sizes(pmu.pk)) <= max_bytes + newest  # exceeded by at most the chunk just written
        if second % 30 == 10:
            total = sum(_sizes(pmu.pk))
            compactions += compact_chunks(T0_US + second * 1_000_000, seconds=30, lookback_s=None).windows
            assert sum(_sizes(pmu.pk)) <= total
        sizes = _sizes(pmu.pk)
        report = apply_storage_policy(policy.pk)
        after = _sizes(pmu.pk)
        assert report.bytes_after == sum(after) <= max_bytes
        if report.chunks_deleted:
            assert after == sizes[report.chunks_deleted :]  # oldest first
            assert sum(after) + sizes[report.chunks_deleted - 1] > max_bytes  # and no further than needed
        mixed += max(after) > 10 * min(after)  # a compacted chunk beside short ones
    assert compactions == 4
    assert mixed > 30
    kept = read_stored(pmu.pk, T0_US, T0_US + seconds * 1_000_000)
    assert kept is not None
    assert_blocks_equal(kept, codec.take_samples(whole, slice(len(whole) - len(kept), None)))  # the newest, exact


def test_downsampling_short_chunks_makes_runs_of_at_most_ten_minutes() -> None:
    pmu = make_pmu()
    fps, seconds = 10, 700
    whole = make_block(pmu.pk, n=fps * seconds, fps=fps, n_phasors=1)
    blocks = [codec.take_samples(whole, slice(fps * s, fps * (s + 1))) for s in range(seconds)]
    for first in range(0, seconds, 100):
        ingest_many(blocks[first : first + 100])
    policy = StoragePolicy.objects.create(name="thin", downsample_after_days=1.0, downsample_rate_fps=1)
    policy.pmus.add(pmu)
    report = apply_storage_policy(policy.pk, now=T0 + timedelta(days=1, seconds=seconds + 1))
    assert report.chunks_downsampled == seconds
    spans = list(Chunk.objects.filter(pmu=pmu).order_by("start_us").values_list("start_us", "end_us", "n_samples"))
    assert [n for _, _, n in spans] == [600, 100]
    assert all(end - start < 600_000_000 for start, end, _ in spans)
    stored = read_stored(pmu.pk, T0_US, T0_US + seconds * 1_000_000)
    assert stored is not None
    assert_blocks_equal(stored, codec.take_samples(whole, np.arange(0, fps * seconds, fps)))
