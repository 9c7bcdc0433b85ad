"""Compaction: merge each PMU's short chunks into chunks of WAMS_HISTORIAN_CHUNK_SECONDS once they settle.

The pdc hands over short blocks (WAMS_PDC_BLOCK_SECONDS) so that samples are stored soon after they
arrive; short chunks compress worse and make many rows. Compaction merges the chunks lying wholly
inside one window of the absolute time grid (multiples of the chunk length since the epoch) into
one chunk, once the window ended `settle_s` ago. Merging is lossless (decoded, joined and encoded
bit-exact) and runs under the PMU's ingest lock, re-reading the window under it, so an ingest at
the same time neither loses nor doubles a sample. A window holding one chunk is left alone, so a
second run changes nothing. A sample arriving after its window was compacted is stored by ingest
as a chunk of its own (the duplicate check reads compacted chunks like any other) and merged by
the next run that looks that far back. Raw and downsampled chunks, and chunks of different channel
counts, are never merged together; a merge that would not shrink the window is not made.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet, Sum
from django.utils import timezone

from wams.historian import codec
from wams.historian.models import Chunk, us_from_datetime
from wams.historian.services import CHUNK_MAX_SAMPLES, UnknownPmuError, _lock_pmu, encode_chunk, split_block

logger = logging.getLogger(__name__)

US_PER_S = 1_000_000
COMPACT_SETTLE_S = 10.0  # a window is merged this long after it ended: late samples have arrived by then
COMPACT_LOOKBACK_S = 3600.0  # how far back a run looks for windows to merge (None: everything)
COMPACT_MAX_WINDOWS = 5000  # windows merged per run; the next run goes on
# A beat run stops starting PMUs after this long, so that it holds a worker (and the hand-off entries
# queued behind it) only briefly; windows settle all at once every chunk length, and the next runs go on.
COMPACT_TASK_SECONDS = 0.5

# (pmu id, downsampled fps, n_phasors, n_analogs, n_digitals): chunks merged together share all of these
Kind = tuple[int, int, int, int, int]


@dataclass
class CompactionReport:
    """What one compaction run did."""

    windows: int = 0  # windows merged
    chunks_before: int = 0  # chunks replaced
    chunks_after: int = 0  # chunks written in their place
    bytes_before: int = 0
    bytes_after: int = 0
    samples: int = 0  # samples moved
    skipped: int = 0  # windows changed meanwhile, or not smaller once merged


class _WindowChanged(Exception):
    """A window's chunks changed between reading and deleting them (a policy deleted some)."""


def chunk_seconds() -> int:
    """Return the length of a compacted chunk (WAMS_HISTORIAN_CHUNK_SECONDS)."""
    return int(settings.WAMS_HISTORIAN_CHUNK_SECONDS)


def windows_to_compact(
    window_us: int,
    before_us: int,
    since_us: int | None = None,
    pmu_ids: list[int] | None = None,
    limit: int = COMPACT_MAX_WINDOWS,
) -> list[tuple[Kind, int]]:
    """Return (kind, window index) of windows before `before_us` whose chunks merge into fewer, oldest first."""
    rows = Chunk.objects.filter(start_us__lt=before_us)
    if since_us is not None:
        rows = rows.filter(start_us__gte=since_us)
    if pmu_ids is not None:
        rows = rows.filter(pmu_id__in=pmu_ids)
    grouped = (
        rows.annotate(window=F("start_us") / window_us, last_window=F("end_us") / window_us)
        .filter(window=F("last_window"))  # wholly inside one window
        .values("pmu_id", "downsampled_fps", "n_phasors", "n_analogs", "n_digitals", "window")
        .annotate(chunks=Count("pk"), samples=Sum("n_samples"))
        # fewer chunks once merged: a window of more than CHUNK_MAX_SAMPLES samples needs several
        .filter(chunks__gt=(F("samples") + CHUNK_MAX_SAMPLES - 1) / CHUNK_MAX_SAMPLES)
        .order_by("window", "pmu_id")
    )
    return [
        (
            (row["pmu_id"], row["downsampled_fps"], row["n_phasors"], row["n_analogs"], row["n_digitals"]),
            int(row["window"]),
        )
        for row in grouped[:limit]
    ]


def _window_chunks(kind: Kind, window: int, window_us: int) -> QuerySet[Chunk]:
    """Return the chunks of one kind lying wholly inside one window."""
    pmu_id, downsampled_fps, n_phasors, n_analogs, n_digitals = kind
    start_us, end_us = window * window_us, (window + 1) * window_us
    return Chunk.objects.filter(
        pmu_id=pmu_id,
        downsampled_fps=downsampled_fps,
        n_phasors=n_phasors,
        n_analogs=n_analogs,
        n_digitals=n_digitals,
        start_us__gte=start_us,
        start_us__lt=end_us,
        end_us__lt=end_us,
    )


def _merge_window(kind: Kind, window: int, window_us: int, report: CompactionReport) -> None:
    """Replace one window's chunks by the fewest chunks holding the same samples; the caller holds the lock."""
    rows = list(_window_chunks(kind, window, window_us).order_by("start_us").values_list("pk", "size_bytes", "data"))
    if len(rows) < 2:
        return
    pmu_id, downsampled_fps = kind[0], kind[1]
    block = codec.unique_samples(codec.concat_blocks([codec.decode_block(data, pmu_id) for _, _, data in rows]))
    # Always lossless: the samples were stored as they are, whatever WAMS_HISTORIAN_LOSSLESS says now.
    merged = [encode_chunk(piece, downsampled_fps=downsampled_fps, lossless=True) for piece in split_block(block)]
    bytes_before = sum(size for _, size, _ in rows)
    bytes_after = sum(chunk.size_bytes for chunk in merged)
    if len(merged) >= len(rows) or bytes_after > bytes_before:
        report.skipped += 1
        return
    pks = [pk for pk, _, _ in rows]
    deleted, _ = Chunk.objects.filter(pk__in=pks).delete()
    if deleted != len(pks):
        raise _WindowChanged
    Chunk.objects.bulk_create(merged)
    report.windows += 1
    report.chunks_before += len(rows)
    report.chunks_after += len(merged)
    report.bytes_before += bytes_before
    report.bytes_after += bytes_after
    report.samples += len(block)


def _compact_pmu(pmu_id: int, windows: list[tuple[Kind, int]], window_us: int, report: CompactionReport) -> None:
    """Merge a PMU's windows in one transaction under its ingest lock."""
    with transaction.atomic():
        try:
            _lock_pmu(pmu_id)
        except UnknownPmuError:
            return  # deleted meanwhile, with its chunks
        for kind, window in windows:
            try:
                with transaction.atomic():  # a savepoint: a changed window is rolled back alone
                    _merge_window(kind, window, window_us, report)
            except _WindowChanged:
                report.skipped += 1


def compact_chunks(
    now_us: int | None = None,
    *,
    seconds: int | None = None,
    settle_s: float = COMPACT_SETTLE_S,
    lookback_s: float | None = COMPACT_LOOKBACK_S,
    pmu_ids: list[int] | None = None,
    max_windows: int = COMPACT_MAX_WINDOWS,
    max_seconds: float | None = None,
) -> CompactionReport:
    """Merge the chunks of each window of `seconds` (default WAMS_HISTORIAN_CHUNK_SECONDS) that ended `settle_s` ago."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    now_us = us_from_datetime(timezone.now()) if now_us is None else now_us
    window_us = (seconds or chunk_seconds()) * US_PER_S
    before_us = (now_us - round(settle_s * US_PER_S)) // window_us * window_us  # ended windows only
    since_us = None if lookback_s is None else (now_us - round(lookback_s * US_PER_S)) // window_us * window_us
    per_pmu: dict[int, list[tuple[Kind, int]]] = defaultdict(list)
    for kind, window in windows_to_compact(window_us, before_us, since_us, pmu_ids, max_windows):
        per_pmu[kind[0]].append((kind, window))
    report = CompactionReport()
    for pmu_id, windows in per_pmu.items():
        if deadline is not None and time.monotonic() > deadline:
            break  # the next run goes on
        _compact_pmu(pmu_id, windows, window_us, report)
    if report.windows:
        logger.debug(
            "historian: compacted %d windows, %d chunks into %d, %d bytes into %d",
            report.windows,
            report.chunks_before,
            report.chunks_after,
            report.bytes_before,
            report.bytes_after,
        )
    return report
