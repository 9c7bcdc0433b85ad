"""Raw columns of one PMU over a window: stored chunks merged with the recent window, time-ordered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
from django.db.models import Max

from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.models import us_from_datetime
from wams.historian.query.channels import ChannelSpec, block_columns
from wams.historian.read import chunk_rows, part_sources, source_column, stored_parts
from wams.historian.recent import read_recent
from wams.historian.services import overlapping, read_stored

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


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


def merged_columns(
    stored: Sequence[codec.ChunkParts], recent: SampleBlock | None, specs: Sequence[ChannelSpec]
) -> tuple[I64, dict[str, F64]]:
    """Join stored segments and the recent one into float64 columns, time-ordered."""
    times: list[I64] = []
    parts: dict[str, list[F64]] = {spec.name: [] for spec in specs}
    for segment in stored:
        times.append(segment.timestamp_us)
        for spec, source in zip(specs, part_sources(segment, specs), strict=True):
            parts[spec.name].append(source_column(source, len(segment)))
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
    return merged_columns([stored] if stored is not None else [], recent, specs)


def _recent_not_stored(pmu_id: int, start_us: int, end_us: int, stored: codec.ChunkParts | None) -> SampleBlock | None:
    """Return the recent window's samples in the range that are not stored yet, or None."""
    return recent_not_stored(pmu_id, start_us, end_us, stored.timestamp_us if stored is not None else None)


def recent_not_stored(pmu_id: int, start_us: int, end_us: int, stored_us: I64 | None) -> SampleBlock | None:
    """Return the recent window's samples in the range whose times are not in `stored_us`, or None."""
    recent = read_recent(pmu_id, seconds=1e9)
    if recent is None:
        return None
    keep = (recent.timestamp_us >= start_us) & (recent.timestamp_us <= end_us)
    if keep.any() and stored_us is not None and len(stored_us):
        stamps = stored_us
        keep &= ~np.isin(recent.timestamp_us, stamps[stamps >= recent.timestamp_us[0]])
    if not keep.any():
        return None
    return codec.take_samples(recent, keep)


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
