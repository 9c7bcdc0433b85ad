"""Read-side helpers of queries: stored chunks to channel matrices, and per-bucket reductions.

Decimation reduces each time-ordered segment (the stored chunks, the recent window) to per-bucket
partial sums, counts, minima and maxima straight from the stored float32 matrices, then merges the
segments' partials: no float64 copy of whole columns, and segments need not be joined or sorted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from django.db import connections
from django.db.models import QuerySet

from wams.historian import codec
from wams.historian.models import Chunk
from wams.historian.services import overlapping

if TYPE_CHECKING:
    from wams.historian.query import ChannelSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Rows = Sequence[tuple[int, int, bytes | memoryview]]

DEG_PER_RAD = 180.0 / np.pi


def chunk_rows(pmu_id: int, start_us: int, end_us: int) -> list[tuple[int, int, bytes | memoryview]]:
    """Return (start_us, end_us, data) of a PMU's chunks overlapping [start_us, end_us], oldest first."""
    rows = overlapping(pmu_id, start_us, end_us).order_by("start_us").values_list("start_us", "end_us", "data")
    return fetch_binary(rows)


def chunk_row_groups(pmu_id: int, start_us: int, end_us: int, max_bytes: int) -> Iterator[Rows]:
    """Yield a PMU's chunk rows overlapping the window, oldest first, in groups of at most `max_bytes` of data.

    One metadata query finds the chunks; each group's data is fetched when the group is asked for, so a
    long window never holds more than one group of compressed data per consumer.
    """
    meta = overlapping(pmu_id, start_us, end_us).order_by("start_us").values_list("pk", "size_bytes")
    group: list[int] = []
    size = 0
    for pk, n_bytes in list(meta):
        if group and size + n_bytes > max_bytes:
            yield _rows_of(group)
            group, size = [], 0
        group.append(pk)
        size += n_bytes
    if group:
        yield _rows_of(group)


def _rows_of(chunk_ids: Sequence[int]) -> Rows:
    rows = Chunk.objects.filter(pk__in=chunk_ids).order_by("start_us").values_list("start_us", "end_us", "data")
    return fetch_binary(rows)


def fetch_binary(rows: QuerySet[Any, Any]) -> list[Any]:
    """Return a queryset's rows in one round trip; on PostgreSQL in the binary protocol.

    bytea in the text protocol travels hex-encoded and is decoded in the client: three times
    slower for chunk data than raw bytes.
    """
    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        return list(rows)  # one round trip: a server-side cursor fetching in batches is several times slower here
    import psycopg

    sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:  # server-side binding: binary results allowed
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def stored_parts(rows: Rows, specs: Sequence[ChannelSpec], start_us: int, end_us: int) -> codec.ChunkParts | None:
    """Decode what `specs` need from a PMU's chunk rows (start_us, end_us, data), time-ordered, within the window."""
    if not rows:
        return None
    kinds = {spec.kind for spec in specs}
    parts = codec.decode_parts_many(
        [data for _, _, data in rows],
        frequency=bool(kinds & {"frequency_hz", "rocof_hz_per_s"}),
        phasors=bool(kinds & {"magnitude", "angle_deg"}),
        analogs="analog" in kinds,
        digitals="digital" in kinds,
    )
    timestamp_us = parts.timestamp_us
    if len(timestamp_us) > 1 and not bool(np.all(timestamp_us[1:] > timestamp_us[:-1])):
        order = np.argsort(timestamp_us, kind="stable")  # late samples stored in a later chunk
        inside = (timestamp_us[order] >= start_us) & (timestamp_us[order] <= end_us)
        return parts.select(order[inside])
    first = int(np.searchsorted(timestamp_us, start_us, side="left"))
    last = int(np.searchsorted(timestamp_us, end_us, side="right"))
    return parts if (first, last) == (0, len(timestamp_us)) else parts.select(slice(first, last))


@dataclass(frozen=True)
class Source:
    """Where a channel's values are in a segment: row `row` of `matrix`, or absent (`fill` throughout)."""

    matrix: npt.NDArray[Any] | None  # (k, n) channel-major
    row: int
    fill: float
    degrees: bool = False  # values in rad, the channel in degrees


def part_sources(parts: codec.ChunkParts, specs: Sequence[ChannelSpec]) -> list[Source]:
    """Return the source of each spec's values in decoded stored parts."""
    sources = []
    for spec in specs:
        matrix: npt.NDArray[Any] | None
        row, fill = spec.index, np.nan
        if spec.kind == "stat":
            matrix, row = parts.stat[None, :], 0
        elif spec.kind in ("frequency_hz", "rocof_hz_per_s"):
            matrix, row = parts.frequency, 0 if spec.kind == "frequency_hz" else 1
        elif spec.kind in ("magnitude", "angle_deg"):
            matrix = parts.magnitude if spec.kind == "magnitude" else parts.angle_rad
        elif spec.kind == "analog":
            matrix = parts.analogs
        else:
            matrix, fill = parts.digitals, 0.0
        if matrix is None or row >= matrix.shape[0]:
            matrix = None
        sources.append(Source(matrix, row, fill, spec.kind == "angle_deg"))
    return sources


def column_sources(columns: dict[str, F64], specs: Sequence[ChannelSpec]) -> list[Source]:
    """Return sources for (n,) float64 columns by channel name."""
    return [Source(columns[spec.name][None, :], 0, np.nan) for spec in specs]


def source_column(source: Source, n: int) -> F64:
    """Return a source's values as a (n,) float64 column (the channel's unit)."""
    if source.matrix is None:
        return np.full(n, source.fill)
    values = source.matrix[source.row].astype(np.float64)
    return np.degrees(values, out=values) if source.degrees else values


@dataclass
class Partials:
    """Per-bucket partial reductions of one segment: enough to merge segments, then finish."""

    bucket: I64  # (m,) bucket numbers, ascending
    count: I64  # (m,) samples
    time_sum_us: I64  # (m,) sum of sample time - window start
    total: F64  # (c, m) sum of the non-NaN values of each channel
    valid: I64  # (c, m) non-NaN values
    minimum: F64  # (c, m)
    maximum: F64  # (c, m)


def _reduce_matrix(matrix: npt.NDArray[Any], starts: npt.NDArray[np.intp]) -> tuple[F64, I64, F64, F64]:
    """Return per-bucket (sum, valid count, min, max) of each row, NaN ignored -> four (k, m) arrays."""
    total = np.add.reduceat(matrix, starts, axis=1, dtype=np.float64)
    count = np.diff(np.append(starts, matrix.shape[1]))
    valid = np.repeat(count[None, :], matrix.shape[0], axis=0).astype(np.int64)
    if matrix.dtype.kind == "f":
        for row in np.flatnonzero(np.isnan(total).any(axis=1)):  # NaN samples (or +inf with -inf): redo the row
            values = matrix[row]
            finite = ~np.isnan(values)
            valid[row] = np.add.reduceat(finite, starts, dtype=np.int64)
            total[row] = np.add.reduceat(np.where(finite, values, 0.0), starts, dtype=np.float64)
    minimum = np.fmin.reduceat(matrix, starts, axis=1).astype(np.float64)
    maximum = np.fmax.reduceat(matrix, starts, axis=1).astype(np.float64)
    return total, valid, minimum, maximum


def reduce_segment(timestamp_us: I64, sources: Sequence[Source], start_us: int, width_us: int) -> Partials:
    """Reduce one segment's sorted samples to per-bucket partials, bucket b = [start + b w, start + (b + 1) w)."""
    offset_us = timestamp_us - start_us
    bucket = offset_us // width_us
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    count = np.diff(np.append(starts, len(bucket))).astype(np.int64)
    m, c = len(starts), len(sources)
    total, minimum, maximum = np.empty((c, m)), np.empty((c, m)), np.empty((c, m))
    valid = np.empty((c, m), dtype=np.int64)
    by_matrix: dict[int, list[int]] = {}
    for channel, source in enumerate(sources):
        if source.matrix is None:
            total[channel] = 0.0 if source.fill == 0 else np.nan
            valid[channel] = count if source.fill == 0 else 0
            minimum[channel] = maximum[channel] = source.fill
        else:
            by_matrix.setdefault(id(source.matrix), []).append(channel)
    for channels in by_matrix.values():
        matrix = sources[channels[0]].matrix
        assert matrix is not None
        rows = [sources[channel].row for channel in channels]
        if 2 * len(set(rows)) >= matrix.shape[0]:  # most rows wanted: one pass over the whole matrix
            found = _reduce_matrix(matrix, starts)
            for channel, row in zip(channels, rows, strict=True):
                total[channel], valid[channel], minimum[channel], maximum[channel] = (part[row] for part in found)
        else:
            for channel, row in zip(channels, rows, strict=True):
                found = _reduce_matrix(matrix[row : row + 1], starts)
                total[channel], valid[channel], minimum[channel], maximum[channel] = (part[0] for part in found)
    for channel, source in enumerate(sources):
        if source.degrees:  # degrees of rad sums and extremes: the scale is monotonic, extremes stay exact
            for part in (total, minimum, maximum):
                np.degrees(part[channel], out=part[channel])
    time_sum = np.add.reduceat(offset_us, starts) if m else np.zeros(0, dtype=np.int64)
    return Partials(bucket[starts], count, time_sum, total, valid, minimum, maximum)


def merge_partials(first: Partials, second: Partials) -> Partials:
    """Combine the partials of two segments of the same window and channels."""
    bucket = np.union1d(first.bucket, second.bucket)
    at_first, at_second = np.searchsorted(bucket, first.bucket), np.searchsorted(bucket, second.bucket)
    c, m = first.total.shape[0], len(bucket)

    def added(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> Any:
        out = np.zeros((*a.shape[:-1], m), dtype=a.dtype)
        out[..., at_first] += a
        out[..., at_second] += b
        return out

    def extreme(a: F64, b: F64, pick: Any) -> F64:
        out = np.full((c, m), np.nan)
        out[:, at_first] = a
        out[:, at_second] = pick(out[:, at_second], b)
        return out

    return Partials(
        bucket,
        added(first.count, second.count),
        added(first.time_sum_us, second.time_sum_us),
        added(first.total, second.total),
        added(first.valid, second.valid),
        extreme(first.minimum, second.minimum, np.fmin),
        extreme(first.maximum, second.maximum, np.fmax),
    )


def finish_partials(partials: Partials, start_us: int) -> tuple[I64, F64, F64, F64]:
    """Return (mean time us (m,), mean (c, m), min (c, m), max (c, m)); channels with no valid value give NaN."""
    mean_time_us = start_us + partials.time_sum_us // np.maximum(partials.count, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = partials.total / partials.valid
    return mean_time_us.astype(np.int64), mean, partials.minimum, partials.maximum
