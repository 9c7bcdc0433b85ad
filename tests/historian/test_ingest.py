"""Idempotent ingest of SampleBlocks into compressed chunks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_pmu
from tests.historian.helpers import T0_US, assert_blocks_equal, make_block
from wams.historian import codec
from wams.historian.models import Chunk
from wams.historian.services import (
    CHUNK_MAX_SAMPLES,
    CHUNK_MAX_SPAN_US,
    UnknownPmuError,
    ingest,
    ingest_many,
    read_stored,
)

pytestmark = pytest.mark.django_db


def test_stored_block_reads_back_bit_exact() -> None:
    pmu = make_pmu()
    block = make_block(pmu.pk, n=150, n_phasors=4)
    assert ingest(block) == 150
    chunk = Chunk.objects.get()
    assert (chunk.start_us, chunk.end_us, chunk.n_samples, chunk.n_phasors) == (
        block.timestamp_us[0],
        block.timestamp_us[-1],
        150,
        4,
    )
    assert chunk.size_bytes == len(bytes(chunk.data))
    stored = read_stored(pmu.pk, T0_US, T0_US + 10_000_000)
    assert stored is not None
    assert_blocks_equal(stored, block)


def test_ingesting_the_same_block_twice_stores_nothing_the_second_time() -> None:
    pmu = make_pmu()
    block = make_block(pmu.pk)
    assert ingest(block) == 150
    assert ingest(block) == 0
    assert Chunk.objects.count() == 1


def test_overlapping_block_stores_only_new_samples() -> None:
    pmu = make_pmu()
    first = make_block(pmu.pk, n=150)
    ingest(first)
    overlapping = make_block(pmu.pk, first=100, n=150, seed=1)
    assert ingest(overlapping) == 100
    stored = read_stored(pmu.pk, T0_US, T0_US + 60_000_000)
    assert stored is not None
    assert len(stored) == 250
    assert np.all(np.diff(stored.timestamp_us) > 0)
    np.testing.assert_array_equal(stored.frequency_hz[:150], first.frequency_hz)


def test_late_sample_in_a_later_block_is_stored_once_in_time_order() -> None:
    pmu = make_pmu()
    block = make_block(pmu.pk, n=30)
    missing = 10
    ingest(codec.take_samples(block, np.arange(30) != missing))
    late = codec.take_samples(block, slice(missing, missing + 1))
    late.late[:] = True
    assert ingest(late) == 1
    assert ingest(late) == 0
    stored = read_stored(pmu.pk, T0_US, T0_US + 10_000_000)
    assert stored is not None
    np.testing.assert_array_equal(stored.timestamp_us, block.timestamp_us)
    assert stored.late.tolist() == [i == missing for i in range(30)]
    assert Chunk.objects.filter(n_late=1).count() == 1


def test_long_block_is_split_into_chunks() -> None:
    pmu = make_pmu()
    n = CHUNK_MAX_SAMPLES + 10
    assert ingest(make_block(pmu.pk, n=n, n_phasors=1)) == n
    assert list(Chunk.objects.order_by("start_us").values_list("n_samples", flat=True)) == [CHUNK_MAX_SAMPLES, 10]


def test_block_of_an_unknown_pmu_is_refused() -> None:
    with pytest.raises(UnknownPmuError):
        ingest(make_block(999_999))
    assert not Chunk.objects.exists()


def test_duplicate_timestamps_inside_a_block_are_stored_once() -> None:
    pmu = make_pmu()
    block = make_block(pmu.pk, n=10)
    doubled = codec.concat_blocks([block, block])
    assert ingest(doubled) == 10


def test_block_spanning_more_than_a_chunk_span_is_split_and_found_again() -> None:
    pmu = make_pmu()
    block = make_block(pmu.pk, n=4, fps=1)
    block.timestamp_us = np.array([0, 1, 2, 3], dtype=np.int64) * 400_000_000 + T0_US  # 400 s apart
    assert ingest(block) == 4
    spans = list(Chunk.objects.order_by("start_us").values_list("start_us", "end_us"))
    assert all(end - start < CHUNK_MAX_SPAN_US for start, end in spans)
    assert len(spans) == 2  # [0 s, 400 s] and [800 s, 1200 s]
    assert ingest(block) == 0  # every sample is found again by the bounded window lookup
    stored = read_stored(pmu.pk, T0_US + 500_000_000, T0_US + 1_300_000_000)
    assert stored is not None
    np.testing.assert_array_equal(stored.timestamp_us, block.timestamp_us[2:])


def test_a_batch_of_several_pmus_stores_each_sample_once_even_when_blocks_of_the_batch_overlap() -> None:
    pmus = [make_pmu() for _ in range(3)]
    wholes = [make_block(pmu.pk, n=90, seed=k) for k, pmu in enumerate(pmus)]
    ingest(codec.take_samples(wholes[0], slice(0, 30)))  # stored before the batch
    batch = []
    for whole in reversed(wholes):  # PMUs in descending id order: locks are still taken in id order
        batch += [codec.take_samples(whole, slice(60, 90)), codec.take_samples(whole, slice(0, 45))]
        batch += [codec.take_samples(whole, slice(30, 75)), codec.take_samples(whole, slice(60, 90))]
    assert ingest_many(batch) == 3 * 90 - 30
    assert ingest_many(batch) == 0
    for pmu, whole in zip(pmus, wholes, strict=True):
        stored = read_stored(pmu.pk, T0_US, T0_US + 10_000_000)
        assert stored is not None
        assert_blocks_equal(stored, whole)
    assert Chunk.objects.filter(pmu=pmus[1]).count() == 3  # [60, 90), [0, 45), [45, 60)


def test_a_batch_naming_an_unknown_pmu_stores_nothing() -> None:
    pmu = make_pmu()
    with pytest.raises(UnknownPmuError):
        ingest_many([make_block(pmu.pk), make_block(999_999)])
    assert not Chunk.objects.exists()
