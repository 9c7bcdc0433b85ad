"""Cost budgets of reads: every query and export is priced before any sample is decoded.

A read costs the samples it must decode (every PMU's samples in the window, whatever the channels)
and the values it answers (traces x points for a query, samples x channels for an export). Both are
estimated from chunk metadata (one aggregate query) plus the recent window's reporting rate, so an
over-large request is refused in milliseconds with a message that says the limit and how to page.
Heavy reads also take one of a few slots per process, so parallel requests queue instead of
multiplying memory. The memory a read may hold is stated in `memory_budget_bytes`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, Sum

from wams.grid.models import Pmu
from wams.historian.models import Chunk

# Bytes one decoded sample of one channel occupies while a read works on it: the float32 value, its
# float64 copy during reduction, and the time stamp shared by the channels (generous).
BYTES_PER_DECODED_VALUE = 24
# Bytes one answered value (one point of one trace: time, mean, min, max) takes as arrays and JSON.
BYTES_PER_ANSWERED_VALUE = 160


class BudgetExceeded(ValueError):
    """A read would cost more than its budget: the message says the limit and how to page."""


class ReadersBusy(RuntimeError):
    """Every heavy-read slot of this process stayed taken for the whole wait."""

    retry_after_s = 5


@dataclass(frozen=True)
class ReadCost:
    """What a read would cost: samples decoded (all PMUs) and per-PMU sample counts."""

    samples: int
    per_pmu: dict[int, int]


def max_samples() -> int:
    return int(settings.WAMS_QUERY_MAX_SAMPLES)


def max_values() -> int:
    return int(settings.WAMS_QUERY_MAX_VALUES)


def max_export_values() -> int:
    return int(settings.WAMS_EXPORT_MAX_VALUES)


def max_channels() -> int:
    return int(settings.WAMS_QUERY_MAX_CHANNELS)


def slice_bytes() -> int:
    """Return the compressed chunk bytes one read decodes at a time per PMU."""
    return max(1, int(float(settings.WAMS_QUERY_SLICE_MB) * 2**20))


def memory_budget_bytes() -> int:
    """Return the most memory (bytes) one read holds: decoded slices in flight plus the answer.

    A slice of compressed chunk data expands about eightfold when decoded into every channel (2 bytes
    per value stored, 4 as float32, up to 8 more as float64 while reduced); at most three slices are in
    flight (one fetched, two decoding). The answer holds at most `WAMS_QUERY_MAX_VALUES` points.
    """
    return 3 * 8 * slice_bytes() + max_values() * BYTES_PER_ANSWERED_VALUE


def _recent_estimate(pmu_ids: Sequence[int], start_us: int, end_us: int) -> dict[int, int]:
    """Return the most samples of each PMU the recent window can add to [start_us, end_us] (not stored yet)."""
    keep_s = float(settings.WAMS_HISTORIAN_RECENT_S)
    now_us = int(time.time() * 1e6)
    overlap_s = max(0.0, min(end_us, now_us) - max(start_us, now_us - int(keep_s * 1e6))) / 1e6
    if overlap_s <= 0:
        return dict.fromkeys(pmu_ids, 0)
    rates = dict(Pmu.objects.filter(pk__in=pmu_ids).values_list("pk", "stream__reporting_rate_fps"))
    return {pmu_id: int((rates.get(pmu_id) or 60) * overlap_s) + 1 for pmu_id in pmu_ids}


def read_cost(pmu_ids: Sequence[int], start_us: int, end_us: int) -> ReadCost:
    """Return the samples a read of the PMUs over [start_us, end_us] decodes (an upper bound)."""
    rows = (
        Chunk.objects.filter(pmu_id__in=pmu_ids)
        .filter(Q(start_us__lte=end_us) & Q(end_us__gte=start_us))
        .values("pmu_id")
        .annotate(samples=Sum("n_samples"))
        .values_list("pmu_id", "samples")
    )
    per_pmu = dict.fromkeys(pmu_ids, 0)
    for pmu_id, samples in rows:
        per_pmu[pmu_id] = int(samples or 0)
    for pmu_id, extra in _recent_estimate(pmu_ids, start_us, end_us).items():
        per_pmu[pmu_id] += extra
    return ReadCost(sum(per_pmu.values()), per_pmu)


def _paging_hint(window_s: float, share: float) -> str:
    if share <= 0:
        return ""
    return f"; windows of at most {max(1.0, window_s * share):,.0f} s of these PMUs fit"


def check_channels(channels: Sequence[str]) -> list[str]:
    """Return the channels without repeats, or raise when there are more than the limit."""
    unique = list(dict.fromkeys(channels))
    if len(unique) > max_channels():
        raise BudgetExceeded(f"at most {max_channels()} different quantities per request ({len(unique)} asked)")
    return unique


def check_query(
    pmu_ids: Sequence[int], channels: Sequence[str], start_us: int, end_us: int, max_points: int | None
) -> ReadCost:
    """Price a query of traces; raise BudgetExceeded before any decoding when it is over budget."""
    check_channels(channels)
    cost = read_cost(pmu_ids, start_us, end_us)
    window_s = max(1e-6, (end_us - start_us) / 1e6)
    if cost.samples > max_samples():
        raise BudgetExceeded(
            f"this query would read {cost.samples:,} samples (limit {max_samples():,} per request): "
            f"ask fewer PMUs or a shorter window and page through time with start/end"
            + _paging_hint(window_s, max_samples() / cost.samples)
        )
    points = sum(min(n, max_points) if max_points else n for n in cost.per_pmu.values())
    values = points * len(channels)
    if values > max_values():
        raise BudgetExceeded(
            f"the answer would hold up to {values:,} values ({len(pmu_ids)} PMUs x {len(channels)} quantities x "
            f"up to {max_points or 'all'} points; limit {max_values():,}): ask fewer quantities, PMUs or max_points, "
            "or page through time with start/end"
        )
    return cost


def check_export(pmu_ids: Sequence[int], channels_per_pmu: dict[int, int], start_us: int, end_us: int) -> ReadCost:
    """Price an export of raw samples (samples x channels); raise BudgetExceeded when it is over budget."""
    cost = read_cost(pmu_ids, start_us, end_us)
    values = sum(n * channels_per_pmu.get(pmu_id, 1) for pmu_id, n in cost.per_pmu.items())
    if values > max_export_values():
        window_s = max(1e-6, (end_us - start_us) / 1e6)
        raise BudgetExceeded(
            f"this export would write {values:,} values (limit {max_export_values():,} per file): export fewer PMUs "
            "or a shorter window, in several files" + _paging_hint(window_s, max_export_values() / values)
        )
    return cost


class _Slots:
    """A counting semaphore of heavy-read slots, sized from settings at first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphore: threading.BoundedSemaphore | None = None

    def semaphore(self) -> threading.BoundedSemaphore:
        with self._lock:
            if self._semaphore is None:
                self._semaphore = threading.BoundedSemaphore(int(settings.WAMS_QUERY_CONCURRENCY))
            return self._semaphore


_slots = _Slots()


@contextmanager
def heavy_read(wait_s: float | None = None) -> Iterator[None]:
    """Hold one of this process's heavy-read slots (WAMS_QUERY_CONCURRENCY) or raise ReadersBusy."""
    semaphore = _slots.semaphore()
    timeout = float(settings.WAMS_QUERY_WAIT_S) if wait_s is None else wait_s
    if not semaphore.acquire(timeout=timeout):
        raise ReadersBusy(
            f"{settings.WAMS_QUERY_CONCURRENCY} heavy reads are running on this server: retry in a few seconds"
        )
    try:
        yield
    finally:
        semaphore.release()
