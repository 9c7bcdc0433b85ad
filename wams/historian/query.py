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
from wams.historian.recent import read_recent
from wams.historian.services import chunks_in_window, overlapping, read_stored

F64 = npt.NDArray[np.float64]
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


def _stack(parts: list[npt.NDArray[Any]], fill: float) -> npt.NDArray[Any]:
    """Join channel-major (k_i, n_i) matrices along time, widening narrower ones with `fill` -> (k, sum n_i)."""
    if len(parts) == 1:
        return parts[0]
    width = max(part.shape[0] for part in parts)
    if all(part.shape[0] == width for part in parts):
        return np.concatenate(parts, axis=1)
    out = np.full((width, sum(part.shape[1] for part in parts)), fill, dtype=np.result_type(*parts, np.float64))
    column = 0
    for part in parts:
        out[: part.shape[0], column : column + part.shape[1]] = part
        column += part.shape[1]
    return out


def _row(matrix: npt.NDArray[Any], index: int, fill: float = np.nan) -> F64:
    """Return channel `index` of a channel-major (k, n) matrix as float64, or `fill` when the PMU lacks it."""
    if index < matrix.shape[0]:
        return matrix[index].astype(np.float64, copy=False)
    return np.full(matrix.shape[1], fill)


def _stored_columns(
    rows: Sequence[tuple[int, int, bytes | memoryview]], specs: Sequence[ChannelSpec], start_us: int, end_us: int
) -> tuple[I64, dict[str, F64]] | None:
    """Decode what `specs` need from a PMU's chunk rows (start_us, end_us, data) -> (timestamps, columns) or None."""
    kinds = {spec.kind for spec in specs}
    wanted = {
        "frequency": bool(kinds & {"frequency_hz", "rocof_hz_per_s"}),
        "phasors": bool(kinds & {"magnitude", "angle_deg"}),
        "analogs": "analog" in kinds,
        "digitals": "digital" in kinds,
    }
    if not rows:
        return None
    decoded = codec.decode_parts_many([data for _, _, data in rows], **wanted)
    if any(first < start_us or last > end_us for first, last, _ in rows):
        decoded = [parts.select((parts.timestamp_us >= start_us) & (parts.timestamp_us <= end_us)) for parts in decoded]
    timestamp_us = np.concatenate([parts.timestamp_us for parts in decoded])
    matrices: dict[str, npt.NDArray[Any]] = {"stat": np.concatenate([p.stat for p in decoded])}
    for name, fill in (("frequency", np.nan), ("magnitude", np.nan), ("angle_rad", np.nan), ("analogs", np.nan)):
        if getattr(decoded[0], name) is not None:
            matrices[name] = _stack([getattr(p, name) for p in decoded], fill)
    if decoded[0].digitals is not None:
        matrices["digitals"] = _stack([p.digitals for p in decoded if p.digitals is not None], 0)
    columns: dict[str, F64] = {}
    for spec in specs:
        if spec.kind == "stat":
            columns[spec.name] = matrices["stat"].astype(np.float64)
        elif spec.kind in ("frequency_hz", "rocof_hz_per_s"):
            columns[spec.name] = matrices["frequency"][0 if spec.kind == "frequency_hz" else 1]
        elif spec.kind == "magnitude":
            columns[spec.name] = _row(matrices["magnitude"], spec.index)
        elif spec.kind == "angle_deg":
            columns[spec.name] = np.degrees(_row(matrices["angle_rad"], spec.index))
        elif spec.kind == "analog":
            columns[spec.name] = _row(matrices["analogs"], spec.index)
        else:
            columns[spec.name] = _row(matrices["digitals"], spec.index, fill=0.0)
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
    times: list[I64] = []
    parts: dict[str, list[F64]] = {spec.name: [] for spec in specs}
    if rows is None:
        rows = chunks_in_window(pmu_id, start_us, end_us)
    stored = _stored_columns(rows, specs, start_us, end_us)
    if stored is not None:
        times.append(stored[0])
        for name, values in stored[1].items():
            parts[name].append(values)
    if include_recent:
        _append_recent(pmu_id, specs, start_us, end_us, times, parts)
    if not times:
        return np.zeros(0, dtype=np.int64), {spec.name: np.zeros(0) for spec in specs}
    timestamp_us = np.concatenate(times) if len(times) > 1 else times[0]
    columns = {name: np.concatenate(values) if len(values) > 1 else values[0] for name, values in parts.items()}
    if len(timestamp_us) > 1 and not bool(np.all(np.diff(timestamp_us) > 0)):
        order = np.argsort(timestamp_us, kind="stable")  # late samples stored in a later chunk
        timestamp_us = timestamp_us[order]
        columns = {name: values[order] for name, values in columns.items()}
    return timestamp_us, columns


def _append_recent(
    pmu_id: int,
    specs: Sequence[ChannelSpec],
    start_us: int,
    end_us: int,
    times: list[I64],
    parts: dict[str, list[F64]],
) -> None:
    """Add the recent window's samples in the range that are not stored yet."""
    recent = read_recent(pmu_id, seconds=1e9)
    if recent is None:
        return
    keep = (recent.timestamp_us >= start_us) & (recent.timestamp_us <= end_us)
    if keep.any() and times:
        stored = np.concatenate(times)
        keep &= ~np.isin(recent.timestamp_us, stored[stored >= recent.timestamp_us[0]])
    if not keep.any():
        return
    recent = codec.take_samples(recent, keep)
    times.append(recent.timestamp_us)
    for name, values in block_columns(recent, specs).items():
        parts[name].append(values)


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


def make_buckets(timestamp_us: I64, start_us: int, end_us: int, max_points: int) -> Buckets:
    """Split [start_us, end_us] into at most `max_points` buckets and find them in sorted `timestamp_us`."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    width = max(1, -(-(end_us - start_us + 1) // max_points))  # ceiling division
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
    # Fetch in this thread (database connections are per thread); decode two PMUs at a time:
    # decompression and numpy release the GIL.
    traces: list[Trace] = []
    pending: deque[Future[list[Trace]]] = deque()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="historian-query") as pool:
        for pmu_id in pmu_ids:
            if len(pending) >= 3:  # bound the chunks held in memory at once
                traces += pending.popleft().result()
            rows = chunks_in_window(pmu_id, start_us, end_us)  # fetched while the pool decodes earlier PMUs
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
    timestamp_us, columns = read_columns(pmu_id, specs, start_us, end_us, include_recent, rows)
    if max_points is None or len(timestamp_us) <= max_points:
        ones = np.ones(len(timestamp_us), dtype=np.int64)
        return [
            Trace(pmu_id, spec.name, timestamp_us, columns[spec.name], columns[spec.name], columns[spec.name], ones)
            for spec in specs
        ]
    buckets = make_buckets(timestamp_us, start_us, end_us, max_points)
    traces = []
    for spec in specs:
        mean, minimum, maximum = reduce_buckets(columns[spec.name], buckets)
        traces.append(
            Trace(pmu_id, spec.name, buckets.mean_time_us, mean, minimum, maximum, buckets.count, buckets.width_us)
        )
    return traces


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
