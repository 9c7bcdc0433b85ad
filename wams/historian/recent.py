"""The recent window: each PMU's newest samples for instantaneous queries, in Redis or (embedded) memory.

The pdc pushes blocks (down to single snapshots) as they are aligned; entries older than
WAMS_HISTORIAN_RECENT_S seconds of arrival time are dropped, so a PMU that stops reporting
leaves nothing behind that could be mistaken for live data.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.conf import settings

from wams.historian import codec, streams
from wams.historian.blocks import SampleBlock


def keep_seconds() -> int:
    """Return how long (arrival time) the window keeps a block."""
    return int(settings.WAMS_HISTORIAN_RECENT_S)


class _MemoryWindow:
    """Per-PMU deques of (arrival monotonic s, block), shared by the threads of one process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocks: dict[int, deque[tuple[float, SampleBlock]]] = {}

    def push(self, block: SampleBlock, keep_s: float) -> None:
        now = time.monotonic()
        with self.lock:
            queue = self.blocks.setdefault(block.pmu_id, deque())
            queue.append((now, block))
            while queue and queue[0][0] < now - keep_s:
                queue.popleft()

    def read(self, pmu_id: int, keep_s: float) -> list[SampleBlock]:
        cutoff = time.monotonic() - keep_s
        with self.lock:
            return [block for arrived, block in self.blocks.get(pmu_id, ()) if arrived >= cutoff]

    def clear(self) -> None:
        with self.lock:
            self.blocks.clear()


_memory = _MemoryWindow()


def _xadd_args(block: SampleBlock, keep_ms: int) -> tuple[str, dict[bytes, bytes], str]:
    """Return (key, fields, minid) for adding a block to its PMU's Redis stream."""
    minid = f"{max(int(time.time() * 1000) - keep_ms, 0)}-0"
    return streams.recent_key(block.pmu_id), {streams.FIELD_BLOCK: codec.pack_block(block)}, minid


def _push_memory(blocks: Iterable[SampleBlock], keep_s: int) -> None:
    """Add blocks to the in-process recent windows (embedded mode)."""
    for block in blocks:
        if len(block):
            _memory.push(block, keep_s)


def _queue_blocks(pipe: Any, blocks: Iterable[SampleBlock], keep_s: int) -> None:
    """Queue each block's XADD (trimmed to the window) and key expiry on a sync or async pipeline."""
    for block in blocks:
        if len(block):
            key, fields, minid = _xadd_args(block, keep_s * 1000)
            pipe.xadd(key, fields, minid=minid, approximate=True)
            pipe.expire(key, keep_s + 10)


def push_recent_many(blocks: Iterable[SampleBlock]) -> None:
    """Add blocks to their PMUs' recent windows (one Redis round trip)."""
    keep_s = keep_seconds()
    if not streams.redis_url():
        _push_memory(blocks, keep_s)
        return
    pipe = streams.get_redis().pipeline(transaction=False)
    _queue_blocks(pipe, blocks, keep_s)
    pipe.execute()


def push_recent(block: SampleBlock) -> None:
    """Add one block to its PMU's recent window."""
    push_recent_many([block])


async def apush_recent_many(blocks: Iterable[SampleBlock]) -> None:
    """Add blocks to the recent windows from async code (never blocks the event loop)."""
    keep_s = keep_seconds()
    if not streams.redis_url():
        _push_memory(blocks, keep_s)
        return
    pipe = streams.get_async_redis().pipeline(transaction=False)
    _queue_blocks(pipe, blocks, keep_s)
    await pipe.execute()


async def apush_recent(block: SampleBlock) -> None:
    """Add one block to its PMU's recent window from async code."""
    await apush_recent_many([block])


ARRIVAL_SLACK_S = 10.0  # samples arrive this much after their timestamp at most, for a window read


def _recent_blocks(pmu_id: int, seconds: float) -> list[SampleBlock]:
    """Return the blocks of a PMU's window that arrived within `seconds` (+ slack), in arrival order."""
    span_s = min(float(keep_seconds()), seconds + ARRIVAL_SLACK_S)
    if not streams.redis_url():
        return _memory.read(pmu_id, span_s)
    since = f"{max(int((time.time() - span_s) * 1000), 0)}-0"
    entries = streams.get_redis().xrange(streams.recent_key(pmu_id), min=since)
    return [codec.unpack_block(fields[streams.FIELD_BLOCK]) for _, fields in entries]


def read_recent(pmu_id: int, seconds: float) -> SampleBlock | None:
    """Return the PMU's samples within `seconds` of its newest one, time-ordered and unique (None: nothing recent)."""
    blocks = _recent_blocks(pmu_id, seconds)
    if not blocks:
        return None
    joined = codec.unique_samples(codec.concat_blocks(blocks))
    newest = int(joined.timestamp_us[-1])
    first = int(np.searchsorted(joined.timestamp_us, newest - int(seconds * 1_000_000), side="left"))
    return codec.take_samples(joined, slice(first, None)) if first else joined


def clear_recent_memory() -> None:
    """Forget the in-memory window (tests, embedded restarts)."""
    _memory.clear()
