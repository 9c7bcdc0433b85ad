"""Traces: channels of PMUs over a window, decimated to at most N buckets (min/max/mean) for plotting.

A query reads each PMU's chunks in groups of at most `WAMS_QUERY_SLICE_MB` of compressed data,
decodes a few groups at a time on a small thread pool (decompression and numpy release the GIL)
and folds each group into per-bucket partial sums as it arrives, so its memory is bounded by the
slice size and the answer, never by the window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from wams.historian import budget, codec
from wams.historian.blocks import SampleBlock
from wams.historian.models import us_from_datetime
from wams.historian.query.channels import ChannelSpec, block_columns, parse_channel
from wams.historian.query.columns import merged_columns, recent_not_stored
from wams.historian.read import (
    Partials,
    chunk_row_groups,
    column_sources,
    finish_partials,
    merge_partials,
    part_sources,
    reduce_segment,
    stored_parts,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DECODE_THREADS = 2  # groups decoded at once


@dataclass
class Trace:
    """One channel of one PMU over a window: raw samples, or per-bucket min/max/mean."""

    pmu_id: int
    channel: str
    timestamp_us: I64  # (m,) sample times, or the mean sample time of each bucket
    mean: F64  # (m,) the samples themselves when not decimated
    minimum: F64  # (m,)
    maximum: F64  # (m,)
    count: npt.NDArray[np.int64]  # (m,) samples per bucket (1 when not decimated)
    bucket_us: int = 0  # bucket width; 0: not decimated

    @property
    def decimated(self) -> bool:
        return self.bucket_us > 0

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times in float s since the epoch, NaN as None)."""

        def values(array: F64) -> list[float | None]:
            return [None if math.isnan(v) else v for v in array.tolist()]

        return {
            "pmu_id": self.pmu_id,
            "channel": self.channel,
            "t": (self.timestamp_us / 1e6).tolist(),
            "mean": values(self.mean),
            "min": values(self.minimum),
            "max": values(self.maximum),
            "bucket_s": self.bucket_us / 1e6,
        }


@dataclass(frozen=True)
class Buckets:
    """Equal-width time buckets over a window, as found in sorted sample times (empty buckets left out)."""

    starts: npt.NDArray[np.intp]  # (m,) index of each bucket's first sample
    count: npt.NDArray[np.int64]  # (m,) samples per bucket
    mean_time_us: I64  # (m,) mean sample time of each bucket
    width_us: int


def bucket_width_us(start_us: int, end_us: int, max_points: int) -> int:
    """Return the width of equal buckets that split [start_us, end_us] into at most `max_points`."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    return max(1, -(-(end_us - start_us + 1) // max_points))  # ceiling division


def make_buckets(timestamp_us: I64, start_us: int, end_us: int, max_points: int) -> Buckets:
    """Split [start_us, end_us] into at most `max_points` buckets and find them in sorted `timestamp_us`."""
    width = bucket_width_us(start_us, end_us, max_points)
    if len(timestamp_us) == 0:
        return Buckets(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), width)
    bucket = (timestamp_us - start_us) // width
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    count = np.diff(np.append(starts, len(bucket))).astype(np.int64)
    mean_time = start_us + np.add.reduceat(timestamp_us - start_us, starts) // count
    return Buckets(starts, count, mean_time.astype(np.int64), width)


def reduce_buckets(values: F64, buckets: Buckets) -> tuple[F64, F64, F64]:
    """Return (mean, min, max) of `values` per bucket, NaN samples ignored (only-NaN buckets give NaN)."""
    if len(buckets.starts) == 0:
        empty = np.zeros(0)
        return empty, empty, empty
    valid = ~np.isnan(values)
    n_valid = np.add.reduceat(valid.astype(np.int64), buckets.starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(np.where(valid, values, 0.0), buckets.starts) / n_valid
    return mean, np.fmin.reduceat(values, buckets.starts), np.fmax.reduceat(values, buckets.starts)


def decimate(
    timestamp_us: I64, values: F64, start_us: int, end_us: int, max_points: int
) -> tuple[I64, F64, F64, F64, npt.NDArray[np.int64], int]:
    """Reduce sorted samples to at most `max_points` equal-width time buckets over [start_us, end_us].

    Returns (mean time us, mean, min, max, count, bucket width us), each array (m,) with m <= max_points;
    empty buckets are left out and NaN samples are ignored (a bucket of only NaN gives NaN).
    """
    buckets = make_buckets(timestamp_us, start_us, end_us, max_points)
    mean, minimum, maximum = reduce_buckets(values, buckets)
    return buckets.mean_time_us, mean, minimum, maximum, buckets.count, buckets.width_us


@dataclass
class _PmuTraces:
    """One PMU's traces being built: raw segments while they fit in `max_points`, per-bucket partials after."""

    pmu_id: int
    specs: Sequence[ChannelSpec]
    start_us: int
    end_us: int
    max_points: int | None
    include_recent: bool
    raw: list[codec.ChunkParts] = field(default_factory=list)
    raw_n: int = 0
    partials: Partials | None = None
    recent: SampleBlock | None = None  # the recent window's samples in the window (stored ones removed at the end)
    stored_tail_us: list[I64] = field(default_factory=list)  # stored times the recent window may repeat
    pending: int = 0  # groups submitted and not added yet
    submitted: bool = False  # every group submitted

    def __post_init__(self) -> None:
        self.width_us = bucket_width_us(self.start_us, self.end_us, self.max_points) if self.max_points else 0
        if self.include_recent:
            self.recent = recent_not_stored(self.pmu_id, self.start_us, self.end_us, None)

    @property
    def done(self) -> bool:
        return self.submitted and self.pending == 0

    def add(self, parts: codec.ChunkParts | None) -> None:
        """Fold one decoded group of stored samples in."""
        self.pending -= 1
        if parts is None or not len(parts):
            return
        stamps = parts.timestamp_us
        if self.recent is not None and stamps[-1] >= self.recent.timestamp_us[0]:
            self.stored_tail_us.append(stamps[stamps >= self.recent.timestamp_us[0]])
        if self.partials is None and (self.max_points is None or self.raw_n + len(parts) <= self.max_points):
            self.raw.append(parts)
            self.raw_n += len(parts)
            return
        self.raw.append(parts)
        self._reduce_raw()

    def _reduce_raw(self) -> None:
        """Fold the raw segments held so far into the partials (the window no longer fits in max_points)."""
        held, self.raw = self.raw, []
        for segment in held:
            self._reduce(segment.timestamp_us, part_sources(segment, self.specs))

    def _reduce(self, timestamp_us: I64, sources: Sequence[Any]) -> None:
        found = reduce_segment(timestamp_us, sources, self.start_us, self.width_us)
        self.partials = found if self.partials is None else merge_partials(self.partials, found)

    def _recent_not_stored(self) -> SampleBlock | None:
        if self.recent is None or not self.stored_tail_us:
            return self.recent
        keep = ~np.isin(self.recent.timestamp_us, np.concatenate(self.stored_tail_us))
        return codec.take_samples(self.recent, keep) if keep.any() else None

    def finish(self) -> list[Trace]:
        """Add the recent window's samples not stored yet and return one trace per channel."""
        recent = self._recent_not_stored()
        n_recent = len(recent) if recent is not None else 0
        if self.partials is None and (self.max_points is None or self.raw_n + n_recent <= self.max_points):
            timestamp_us, columns = merged_columns(self.raw, recent, self.specs)
            ones = np.ones(len(timestamp_us), dtype=np.int64)
            return [
                Trace(self.pmu_id, s.name, timestamp_us, columns[s.name], columns[s.name], columns[s.name], ones)
                for s in self.specs
            ]
        self._reduce_raw()
        if recent is not None:
            self._reduce(recent.timestamp_us, column_sources(block_columns(recent, self.specs), self.specs))
        assert self.partials is not None
        mean_time_us, mean, minimum, maximum = finish_partials(self.partials, self.start_us)
        count = self.partials.count
        return [
            Trace(self.pmu_id, s.name, mean_time_us, mean[i], minimum[i], maximum[i], count, self.width_us)
            for i, s in enumerate(self.specs)
        ]


def query_traces(
    pmu_ids: Sequence[int],
    channels: Sequence[str],
    start: datetime,
    end: datetime,
    max_points: int | None = 2000,
    include_recent: bool = True,
    check_budget: bool = True,
) -> list[Trace]:
    """Return one trace per (PMU, channel) over [start, end], decimated when longer than `max_points`.

    Repeated PMUs and channels are answered once. With `check_budget` the query is priced first and
    refused with `budget.BudgetExceeded` when over its limits (`wams.historian.budget`).
    """
    specs = [parse_channel(name) for name in dict.fromkeys(channels)]
    ids = list(dict.fromkeys(pmu_ids))
    start_us, end_us = us_from_datetime(start), us_from_datetime(end)
    if end_us < start_us:
        raise ValueError("the window ends before it starts")
    if check_budget:
        budget.check_query(ids, [spec.name for spec in specs], start_us, end_us, max_points)
    done: dict[int, list[Trace]] = {}
    building: dict[int, _PmuTraces] = {}
    pending: deque[tuple[int, Future[codec.ChunkParts | None]]] = deque()

    def settle_one() -> None:
        pmu_id, future = pending.popleft()
        traces = building[pmu_id]
        traces.add(future.result())
        if traces.done:
            done[pmu_id] = building.pop(pmu_id).finish()

    # Groups are fetched in this thread (database connections are per thread) while the pool decodes the
    # previous ones: at most DECODE_THREADS + 1 groups are in flight, and only their PMUs are being built.
    with ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="historian-query") as pool:
        for pmu_id in ids:
            traces = building[pmu_id] = _PmuTraces(pmu_id, specs, start_us, end_us, max_points, include_recent)
            for rows in chunk_row_groups(pmu_id, start_us, end_us, budget.slice_bytes()):
                while len(pending) > DECODE_THREADS:
                    settle_one()
                traces.pending += 1
                pending.append((pmu_id, pool.submit(stored_parts, rows, specs, start_us, end_us)))
            traces.submitted = True
            if traces.done:
                done[pmu_id] = building.pop(pmu_id).finish()
        while pending:
            settle_one()
    return [trace for pmu_id in ids for trace in done[pmu_id]]
