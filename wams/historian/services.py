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


def encode_chunk(block: SampleBlock, downsampled_fps: int = 0) -> Chunk:
    """Return an unsaved chunk holding all of `block`'s samples."""
    data = codec.encode_block(block, chunk_compression(), bool(settings.WAMS_HISTORIAN_LOSSLESS))
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
    if not list(Pmu.objects.select_for_update(no_key=True).filter(pk=pmu_id).values_list("pk", flat=True)):
        raise UnknownPmuError(f"PMU {pmu_id} does not exist")


def stored_timestamps(pmu_id: int, start_us: int, end_us: int) -> np.ndarray:
    """Return the timestamps (us) already stored for a PMU within [start_us, end_us] -> (m,) int64."""
    found = [
        codec.decode_time(data)[0] for data in overlapping(pmu_id, start_us, end_us).values_list("data", flat=True)
    ]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _ingest_locked(block: SampleBlock) -> int:
    """Store the samples of `block` not stored yet; the caller holds a transaction."""
    if len(block) == 0:
        return 0
    _lock_pmu(block.pmu_id)
    block = codec.unique_samples(block)
    timestamps = block.timestamp_us
    stored = stored_timestamps(block.pmu_id, int(timestamps[0]), int(timestamps[-1]))
    if len(stored):
        fresh = ~np.isin(timestamps, stored)
        if not fresh.any():
            return 0
        block = codec.take_samples(block, fresh)
    Chunk.objects.bulk_create([encode_chunk(piece) for piece in split_block(block)])
    return len(block)


def ingest(block: SampleBlock) -> int:
    """Store a block's samples that are not stored yet (safe to repeat); return how many were new."""
    with transaction.atomic():
        return _ingest_locked(block)


def ingest_many(blocks: Iterable[SampleBlock]) -> int:
    """Store several blocks in one transaction; return the number of new samples."""
    with transaction.atomic():
        return sum(_ingest_locked(block) for block in blocks)


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
