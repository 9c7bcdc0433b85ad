"""Read budgets: costs priced from chunk metadata, and a query's memory bounded by its slice, not its window."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import timedelta

import pytest

from tests.conftest import make_pmu
from tests.historian.helpers import T0, T0_US, make_block
from wams.historian import budget
from wams.historian.query import channel_names, query_traces
from wams.historian.services import ingest_many

pytestmark = pytest.mark.django_db

FPS = 30
BLOCK_S = 5


def _store(pmu_id: int, minutes: int) -> None:
    n = BLOCK_S * FPS
    blocks = [
        make_block(pmu_id, start_us=T0_US + k * BLOCK_S * 1_000_000, n=n, n_phasors=10, seed=k)
        for k in range(minutes * 60 // BLOCK_S)
    ]
    ingest_many(blocks)


def test_read_cost_counts_stored_samples_of_the_window_per_pmu() -> None:
    one, two = make_pmu(), make_pmu()
    _store(one.pk, 1)
    cost = budget.read_cost([one.pk, two.pk], T0_US, T0_US + 30_000_000)
    assert cost.per_pmu == {one.pk: 900 + 150, two.pk: 0}  # chunks overlapping [0, 30 s]: six whole, one touching
    assert cost.samples == 1050


def _peak_bytes(pmu_id: int, minutes: int) -> int:
    channels = channel_names(10, 1, 1)
    gc.collect()
    tracemalloc.start()
    try:
        traces = query_traces([pmu_id], channels, T0, T0 + timedelta(minutes=minutes), max_points=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(traces) == len(channels) and traces[0].decimated
    return peak


def test_query_memory_is_bounded_by_the_slice_and_the_answer_not_the_window(settings) -> None:
    settings.WAMS_QUERY_SLICE_MB = 0.05  # about 1,000 samples of 10 phasors per slice
    settings.WAMS_QUERY_MAX_VALUES = 10_000
    pmu = make_pmu()
    _store(pmu.pk, 12)  # 21,600 samples x 26 channels, ~1 MB compressed: about twenty slices
    short, long = _peak_bytes(pmu.pk, 3), _peak_bytes(pmu.pk, 12)
    assert long < 1.5 * short, f"peak {long:,} B over 12 min vs {short:,} B over 3 min: grows with the window"
    assert long < budget.memory_budget_bytes(), f"peak {long:,} B over the stated {budget.memory_budget_bytes():,} B"


def test_without_slices_the_same_query_holds_the_whole_window(settings) -> None:
    pmu = make_pmu()
    _store(pmu.pk, 12)
    settings.WAMS_QUERY_SLICE_MB = 1024  # one slice: the window decoded at once
    whole = _peak_bytes(pmu.pk, 12)
    settings.WAMS_QUERY_SLICE_MB = 0.05
    sliced = _peak_bytes(pmu.pk, 12)
    assert sliced * 3 < whole, f"slicing saved too little: {sliced:,} B vs {whole:,} B"
