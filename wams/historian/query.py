"""Queries: channels of PMUs over a time window, stored chunks merged with the recent window,
decimated to at most N buckets (min/max/mean) for plotting.

Channel names: `frequency_hz`, `rocof_hz_per_s`, `stat`, `phasor_<k>_magnitude` (V or A),
`phasor_<k>_angle_deg`, `analog_<k>`, `digital_<k>` (k = the channel's `order`). Callers check
access (e.g. `wams.grid.services.visible_pmus`) before passing PMU ids.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db.models import Max

from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.models import us_from_datetime
from wams.historian.read import (
    chunk_rows,
    column_sources,
    finish_partials,
    merge_partials,
    part_sources,
    reduce_segment,
    source_column,
    stored_parts,
)
from wams.historian.recent import read_recent
from wams.historian.services import overlapping, read_stored

F64 = npt.NDArray[np.float64]
DECODE_THREADS = 2  # PMUs decoded at once: decompression and numpy release the GIL
I64 = npt.NDArray[np.int64]

_CHANNEL = re.compile(
    r"^(?:(frequency_hz|rocof_hz_per_s|stat)|phasor_(\d+)_(magnitude|angle_deg)|(analog|digital)_(\d+))$"
)


@dataclass(frozen=True)
class ChannelSpec:
    """A parsed channel name: which column of a PMU's samples it reads."""

    name: str
    kind: str  # frequency_hz, rocof_hz_per_s, stat, magnitude, angle_deg, analog, digital
    index: int = 0


def parse_channel(name: str) -> ChannelSpec:
    """Parse a channel name, failing with ValueError on an unknown one."""
    match = _CHANNEL.match(name)
    if match is None:
        raise ValueError(
            f"unknown channel {name!r}: use frequency_hz, rocof_hz_per_s, stat, phasor_<k>_magnitude, "
            "phasor_<k>_angle_deg, analog_<k> or digital_<k>"
        )
    simple, phasor, part, kind, index = match.groups()
    if simple:
        return ChannelSpec(name, simple)
    if phasor is not None:
        return ChannelSpec(name, part, int(phasor))
    return ChannelSpec(name, kind, int(index))


def channel_names(n_phasors: int, n_analogs: int = 0, n_digitals: int = 0) -> list[str]:
    """Return every channel name of a PMU with the given channel counts."""
    names = ["frequency_hz", "rocof_hz_per_s", "stat"]
    for k in range(n_phasors):
        names += [f"phasor_{k}_magnitude", f"phasor_{k}_angle_deg"]
    names += [f"analog_{k}" for k in range(n_analogs)]
    names += [f"digital_{k}" for k in range(n_digitals)]
    return names


def _column(matrix: npt.NDArray[Any], index: int, fill: float = np.nan) -> F64:
    """Return column `index` of an (n, k) matrix as float64, or `fill` when the PMU lacks it."""
    if index < matrix.shape[1]:
        return matrix[:, index].astype(np.float64)
    return np.full(matrix.shape[0], fill)


def block_columns(block: SampleBlock, specs: Sequence[ChannelSpec]) -> dict[str, F64]:
    """Return the columns `specs` name from a block -> name -> (n,) values."""
    columns: dict[str, F64] = {}
    for spec in specs:
        if spec.kind == "stat":
            columns[spec.name] = block.stat.astype(np.float64)
        elif spec.kind == "frequency_hz":
            columns[spec.name] = block.frequency_hz
        elif spec.kind == "rocof_hz_per_s":
            columns[spec.name] = block.rocof_hz_per_s
        elif spec.kind == "magnitude":
            columns[spec.name] = np.abs(_complex_column(block.phasors, spec.index))
        elif spec.kind == "angle_deg":
            columns[spec.name] = np.degrees(np.angle(_complex_column(block.phasors, spec.index)))
        elif spec.kind == "analog":
            columns[spec.name] = _column(block.analogs, spec.index)
        else:
            columns[spec.name] = _column(block.digitals, spec.index, fill=0.0)
    return columns


def _complex_column(phasors: npt.NDArray[np.complex128], index: int) -> npt.NDArray[np.complex128]:
    if index < phasors.shape[1]:
        return phasors[:, index]
    return np.full(phasors.shape[0], complex(np.nan, np.nan))


def _segments(
    pmu_id: int,
    specs: Sequence[ChannelSpec],
    start_us: int,
    end_us: int,
    include_recent: bool,
    rows: Sequence[tuple[int, int, bytes | memoryview]] | None,
) -> tuple[codec.ChunkParts | None, SampleBlock | None]:
    """Return a PMU's stored samples in the window and the recent samples in it not stored yet (each time-ordered)."""
    if rows is None:
        rows = chunk_rows(pmu_id, start_us, end_us)
    stored = stored_parts(rows, specs, start_us, end_us)
    recent = _recent_not_stored(pmu_id, start_us, end_us, stored) if include_recent else None
    return stored, recent


def _merged_columns(
    stored: codec.ChunkParts | None, recent: SampleBlock | None, specs: Sequence[ChannelSpec]
) -> tuple[I64, dict[str, F64]]:
    """Join the stored and recent segments into float64 columns, time-ordered."""
    times: list[I64] = []
    parts: dict[str, list[F64]] = {spec.name: [] for spec in specs}
    if stored is not None:
        times.append(stored.timestamp_us)
        for spec, source in zip(specs, part_sources(stored, specs), strict=True):
            parts[spec.name].append(source_column(source, len(stored)))
    if recent is not None:
        times.append(recent.timestamp_us)
        for name, values in block_columns(recent, specs).items():
            parts[name].append(values)
    if not times:
        return np.zeros(0, dtype=np.int64), {spec.name: np.zeros(0) for spec in specs}
    timestamp_us = np.concatenate(times) if len(times) > 1 else times[0]
    columns = {name: np.concatenate(values) if len(values) > 1 else values[0] for name, values in parts.items()}
    if len(timestamp_us) > 1 and not bool(np.all(np.diff(timestamp_us) > 0)):
        order = np.argsort(timestamp_us, kind="stable")
        timestamp_us = timestamp_us[order]
        columns = {name: values[order] for name, values in columns.items()}
    return timestamp_us, columns


def read_columns(
    pmu_id: int,
    specs: Sequence[ChannelSpec],
    start_us: int,
    end_us: int,
    include_recent: bool = True,
    rows: Sequence[tuple[int, int, bytes | memoryview]] | None = None,
) -> tuple[I64, dict[str, F64]]:
    """Return a PMU's columns over [start_us, end_us], stored and recent merged, time-ordered.

    Phasor magnitude and angle of stored samples are the stored float32 values (the C37.118 wire
    precision); use `read_samples` for the exact complex values. `rows` are the PMU's chunks in the
    window if already fetched (then no database access happens here).
    """
    stored, recent = _segments(pmu_id, specs, start_us, end_us, include_recent, rows)
    return _merged_columns(stored, recent, specs)


def _recent_not_stored(pmu_id: int, start_us: int, end_us: int, stored: codec.ChunkParts | None) -> SampleBlock | None:
    """Return the recent window's samples in the range that are not stored yet, or None."""
    recent = read_recent(pmu_id, seconds=1e9)
    if recent is None:
        return None
    keep = (recent.timestamp_us >= start_us) & (recent.timestamp_us <= end_us)
    if keep.any() and stored is not None and len(stored):
        stamps = stored.timestamp_us
        keep &= ~np.isin(recent.timestamp_us, stamps[stamps >= recent.timestamp_us[0]])
    if not keep.any():
        return None
    return codec.take_samples(recent, keep)


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


def query_traces(
    pmu_ids: Sequence[int],
    channels: Sequence[str],
    start: datetime,
    end: datetime,
    max_points: int | None = 2000,
    include_recent: bool = True,
) -> list[Trace]:
    """Return one trace per (PMU, channel) over [start, end], decimated when longer than `max_points`."""
    specs = [parse_channel(name) for name in channels]
    start_us, end_us = us_from_datetime(start), us_from_datetime(end)
    if end_us < start_us:
        raise ValueError("the window ends before it starts")
    if len(pmu_ids) == 1:
        return _pmu_traces(pmu_ids[0], specs, start_us, end_us, max_points, include_recent, None)
    # Fetch in this thread (database connections are per thread); decode DECODE_THREADS PMUs at a time:
    # decompression and numpy release the GIL.
    traces: list[Trace] = []
    pending: deque[Future[list[Trace]]] = deque()
    with ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="historian-query") as pool:
        for pmu_id in pmu_ids:
            if len(pending) > DECODE_THREADS:  # bound the chunks held in memory at once
                traces += pending.popleft().result()
            rows = chunk_rows(pmu_id, start_us, end_us)  # fetched while the pool decodes earlier PMUs
            pending.append(pool.submit(_pmu_traces, pmu_id, specs, start_us, end_us, max_points, include_recent, rows))
        while pending:
            traces += pending.popleft().result()
    return traces


def _pmu_traces(
    pmu_id: int,
    specs: Sequence[ChannelSpec],
    start_us: int,
    end_us: int,
    max_points: int | None,
    include_recent: bool,
    rows: Sequence[tuple[int, int, bytes | memoryview]] | None,
) -> list[Trace]:
    """Return the traces of one PMU, decimated when longer than `max_points`."""
    stored, recent = _segments(pmu_id, specs, start_us, end_us, include_recent, rows)
    n_samples = (len(stored) if stored is not None else 0) + (len(recent) if recent is not None else 0)
    if max_points is None or n_samples <= max_points:
        timestamp_us, columns = _merged_columns(stored, recent, specs)
        ones = np.ones(len(timestamp_us), dtype=np.int64)
        return [
            Trace(pmu_id, spec.name, timestamp_us, columns[spec.name], columns[spec.name], columns[spec.name], ones)
            for spec in specs
        ]
    width_us = bucket_width_us(start_us, end_us, max_points)
    found = []
    if stored is not None and len(stored):
        found.append(reduce_segment(stored.timestamp_us, part_sources(stored, specs), start_us, width_us))
    if recent is not None:
        columns = block_columns(recent, specs)
        found.append(reduce_segment(recent.timestamp_us, column_sources(columns, specs), start_us, width_us))
    partials = found[0] if len(found) == 1 else merge_partials(found[0], found[1])
    mean_time_us, mean, minimum, maximum = finish_partials(partials, start_us)
    return [
        Trace(pmu_id, spec.name, mean_time_us, mean[i], minimum[i], maximum[i], partials.count, width_us)
        for i, spec in enumerate(specs)
    ]


def channel_counts(pmu_id: int, start_us: int, end_us: int, include_recent: bool = True) -> tuple[int, int, int]:
    """Return the most phasors, analogs and digital words a PMU reported over the window."""
    totals = overlapping(pmu_id, start_us, end_us).aggregate(
        phasors=Max("n_phasors"), analogs=Max("n_analogs"), digitals=Max("n_digitals")
    )
    phasors, analogs, digitals = totals["phasors"] or 0, totals["analogs"] or 0, totals["digitals"] or 0
    recent = read_recent(pmu_id, seconds=1e9) if include_recent else None
    if recent is not None:
        phasors = max(phasors, recent.phasors.shape[1])
        analogs = max(analogs, recent.analogs.shape[1])
        digitals = max(digitals, recent.digitals.shape[1])
    return phasors, analogs, digitals


def read_samples(pmu_id: int, start: datetime, end: datetime, include_recent: bool = True) -> SampleBlock | None:
    """Return a PMU's raw samples over [start, end] (stored and recent merged), or None if there are none."""
    start_us, end_us = us_from_datetime(start), us_from_datetime(end)
    blocks = []
    stored = read_stored(pmu_id, start_us, end_us)
    if stored is not None:
        blocks.append(stored)
    recent = read_recent(pmu_id, seconds=1e9) if include_recent else None
    if recent is not None:
        keep = (recent.timestamp_us >= start_us) & (recent.timestamp_us <= end_us)
        if stored is not None:
            keep &= ~np.isin(recent.timestamp_us, stored.timestamp_us)
        if keep.any():
            blocks.append(codec.take_samples(recent, keep))
    return codec.concat_blocks(blocks) if blocks else None
