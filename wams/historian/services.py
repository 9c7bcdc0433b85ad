"""Store and read samples: idempotent ingest of SampleBlocks into compressed chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet

from wams.grid.models import Pmu
from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.models import Chunk

CHUNK_MAX_SAMPLES = 3600  # a longer block is split: at 60 fps one chunk holds at most a minute
# No chunk spans more than this, so a window lookup is an index range on (pmu, start_us) of bounded length.
CHUNK_MAX_SPAN_US = 600_000_000


class UnknownPmuError(LookupError):
    """The block names a PMU that is not (or no longer) in the grid model."""


def chunk_compression() -> str:
    """Return the configured chunk compression, failing loudly on a bad value."""
    name: str = settings.WAMS_HISTORIAN_COMPRESSION
    if name not in codec.COMPRESSIONS:
        raise ImproperlyConfigured(
            f"WAMS_HISTORIAN_COMPRESSION={name!r}: use one of {', '.join(sorted(codec.COMPRESSIONS))}"
        )
    return name


def encode_chunk(block: SampleBlock, downsampled_fps: int = 0, lossless: bool | None = None) -> Chunk:
    """Return an unsaved chunk holding all of `block`'s samples (lossless: None follows the setting)."""
    exact = bool(settings.WAMS_HISTORIAN_LOSSLESS) if lossless is None else lossless
    data = codec.encode_block(block, chunk_compression(), exact)
    assert block.late is not None
    return Chunk(
        pmu_id=block.pmu_id,
        start_us=int(block.timestamp_us[0]),
        end_us=int(block.timestamp_us[-1]),
        n_samples=len(block),
        n_late=int(block.late.sum()),
        n_phasors=block.phasors.shape[1],
        n_analogs=block.analogs.shape[1],
        n_digitals=block.digitals.shape[1],
        downsampled_fps=downsampled_fps,
        size_bytes=len(data),
        data=data,
    )


def split_block(
    block: SampleBlock, max_samples: int = CHUNK_MAX_SAMPLES, max_span_us: int = CHUNK_MAX_SPAN_US
) -> Iterator[SampleBlock]:
    """Yield consecutive pieces of a time-ordered block, each of at most `max_samples` samples spanning < `max_span_us`."""
    timestamps = block.timestamp_us
    if len(block) <= max_samples and timestamps[-1] - timestamps[0] < max_span_us:
        yield block
        return
    first = 0
    while first < len(block):
        span_end = int(np.searchsorted(timestamps, timestamps[first] + max_span_us, side="left"))
        last = min(span_end, first + max_samples)
        yield codec.take_samples(block, slice(first, last))
        first = last


def overlapping(pmu_id: int, start_us: int, end_us: int) -> QuerySet[Chunk]:
    """Return a PMU's chunks holding samples that may lie in [start_us, end_us]."""
    return Chunk.objects.filter(
        pmu_id=pmu_id, start_us__gt=start_us - CHUNK_MAX_SPAN_US, start_us__lte=end_us, end_us__gte=start_us
    )


def _lock_pmu(pmu_id: int) -> None:
    """Serialise writers of one PMU until the transaction ends (no-op on SQLite, which serialises writes)."""
    _lock_pmus([pmu_id])


def _lock_pmus(pmu_ids: Iterable[int]) -> None:
    """Serialise writers of these PMUs until the transaction ends, locking in id order (no deadlock)."""
    wanted = sorted(set(pmu_ids))
    locked = (
        Pmu.objects.select_for_update(no_key=True).filter(pk__in=wanted).order_by("pk").values_list("pk", flat=True)
    )
    missing = set(wanted) - set(locked)
    if missing:
        raise UnknownPmuError(f"PMU {min(missing)} does not exist")


def stored_timestamps(pmu_id: int, start_us: int, end_us: int) -> np.ndarray:
    """Return the timestamps (us) already stored for a PMU within [start_us, end_us] -> (m,) int64."""
    return _stored_timestamps_many({pmu_id: (start_us, end_us)}).get(pmu_id, np.zeros(0, dtype=np.int64))


def _stored_timestamps_many(spans: dict[int, tuple[int, int]]) -> dict[int, np.ndarray]:
    """Return per PMU the timestamps (us) of chunks that may overlap its [start_us, end_us]."""
    if not spans:
        return {}
    # One plain range query over the whole batch (a filter per PMU costs more to build than to run),
    # then each PMU's own span; only the chunks that overlap are fetched with their data.
    low_us = min(start_us for start_us, _ in spans.values())
    high_us = max(end_us for _, end_us in spans.values())
    candidates = (
        Chunk.objects.filter(
            pmu_id__in=list(spans), start_us__gt=low_us - CHUNK_MAX_SPAN_US, start_us__lte=high_us, end_us__gte=low_us
        )
        .order_by()
        .values_list("pk", "pmu_id", "start_us", "end_us")
    )
    wanted = [
        pk
        for pk, pmu_id, start_us, end_us in candidates
        if start_us > spans[pmu_id][0] - CHUNK_MAX_SPAN_US
        and start_us <= spans[pmu_id][1]
        and end_us >= spans[pmu_id][0]
    ]
    found: dict[int, list[np.ndarray]] = {}
    if wanted:
        for pmu_id, data in Chunk.objects.filter(pk__in=wanted).order_by().values_list("pmu_id", "data"):
            found.setdefault(pmu_id, []).append(codec.decode_time(data)[0])
    return {pmu_id: np.concatenate(parts) for pmu_id, parts in found.items()}


def _ingest_locked(blocks: list[SampleBlock]) -> int:
    """Store the samples of `blocks` not stored yet; the caller holds a transaction."""
    blocks = [codec.unique_samples(block) for block in blocks if len(block)]
    if not blocks:
        return 0
    _lock_pmus(block.pmu_id for block in blocks)
    spans: dict[int, tuple[int, int]] = {}
    for block in blocks:
        first, last = int(block.timestamp_us[0]), int(block.timestamp_us[-1])
        low, high = spans.get(block.pmu_id, (first, last))
        spans[block.pmu_id] = (min(low, first), max(high, last))
    stored = _stored_timestamps_many(spans)
    chunks: list[Chunk] = []
    new_samples = 0
    for block in blocks:  # in order: a sample repeated in a later block of the batch is a duplicate too
        seen = stored.get(block.pmu_id)
        if seen is not None and len(seen):
            fresh = ~np.isin(block.timestamp_us, seen)
            if not fresh.any():
                continue
            if not fresh.all():
                block = codec.take_samples(block, fresh)
            stored[block.pmu_id] = np.concatenate((seen, block.timestamp_us))
        else:
            stored[block.pmu_id] = block.timestamp_us
        chunks.extend(encode_chunk(piece) for piece in split_block(block))
        new_samples += len(block)
    Chunk.objects.bulk_create(chunks)
    return new_samples


def ingest(block: SampleBlock) -> int:
    """Store a block's samples that are not stored yet (safe to repeat); return how many were new."""
    with transaction.atomic():
        return _ingest_locked([block])


def ingest_many(blocks: Iterable[SampleBlock]) -> int:
    """Store several blocks in one transaction (one lock, lookup and insert); return the number of new samples."""
    with transaction.atomic():
        return _ingest_locked(list(blocks))


def chunks_in_window(pmu_id: int, start_us: int, end_us: int) -> list[tuple[int, int, bytes | memoryview]]:
    """Return (start_us, end_us, data) of a PMU's chunks overlapping [start_us, end_us], oldest first."""
    rows = overlapping(pmu_id, start_us, end_us).order_by("start_us").values_list("start_us", "end_us", "data")
    return list(rows)  # one round trip: a server-side cursor fetching in batches is several times slower here


def read_stored(pmu_id: int, start_us: int, end_us: int) -> SampleBlock | None:
    """Return a PMU's stored samples with start_us <= timestamp <= end_us (None if there are none)."""
    blocks = []
    for _, _, data in chunks_in_window(pmu_id, start_us, end_us):
        block = codec.decode_block(data, pmu_id)
        inside = (block.timestamp_us >= start_us) & (block.timestamp_us <= end_us)
        if inside.all():
            blocks.append(block)
        elif inside.any():
            blocks.append(codec.take_samples(block, inside))
    return codec.concat_blocks(blocks) if blocks else None
