"""Where the pdc's SampleBlocks go: the historian's hand-off, behind a queue that retries."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from typing import Protocol

from wams.historian.blocks import SampleBlock

logger = logging.getLogger(__name__)

RETRY_BASE_S = 0.2
RETRY_MAX_S = 5.0
BATCH_BLOCKS = 500  # blocks handed over per round trip at most


class BlockSink(Protocol):
    """Receives finished blocks (for storage) and recent samples (for instantaneous queries)."""

    async def submit_many(self, blocks: list[SampleBlock]) -> None:
        """Hand several blocks over at once; raise if they could not all be handed over."""

    async def push_recent(self, blocks: list[SampleBlock]) -> None:
        """Add fresh samples to the recent window."""


class HistorianSink:
    """The historian's hand-off: Redis stream with REDIS_URL, the embedded writer without."""

    async def submit_many(self, blocks: list[SampleBlock]) -> None:
        from wams.historian.handoff import asubmit_blocks

        await asubmit_blocks(blocks)

    async def push_recent(self, blocks: list[SampleBlock]) -> None:
        from wams.historian.recent import apush_recent_many

        await apush_recent_many(blocks)


class MemorySink:
    """Keep everything in lists (tests, benchmarks)."""

    def __init__(self) -> None:
        self.blocks: list[SampleBlock] = []
        self.recent: list[SampleBlock] = []

    async def submit_many(self, blocks: list[SampleBlock]) -> None:
        self.blocks.extend(blocks)

    async def push_recent(self, blocks: list[SampleBlock]) -> None:
        self.recent.extend(blocks)


class SinkQueue:
    """Submit blocks in order from a background task, in batches, retrying with backoff until taken.

    Whatever queued while a batch was in flight goes in the next one (at most BATCH_BLOCKS), so a
    thousand PMUs' blocks cost a few round trips a second, not a thousand. At most `limit` blocks
    wait; beyond that the oldest is dropped (counted in `dropped`) so that a long historian outage
    cannot exhaust the pdc's memory.
    """

    def __init__(self, sink: BlockSink, limit: int = 20_000, batch: int = BATCH_BLOCKS) -> None:
        self.sink = sink
        self.limit = limit
        self.batch = batch
        self.dropped = 0
        self.submitted = 0
        self.failures = 0
        self._queue: deque[SampleBlock] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, block: SampleBlock) -> None:
        """Queue one block (never blocks)."""
        if len(block) == 0:
            return
        if len(self._queue) >= self.limit:
            self._queue.popleft()
            self.dropped += 1
            logger.error("pdc: hand-off queue full, dropped the oldest block")
        self._queue.append(block)
        self._ready.set()

    def _head(self) -> list[SampleBlock]:
        """Return the oldest queued blocks, at most one batch."""
        return list(itertools.islice(self._queue, self.batch))

    def _taken(self, batch: list[SampleBlock]) -> None:
        """Forget the blocks of a batch that was handed over (unless `put` dropped them meanwhile)."""
        for block in batch:
            if self._queue and self._queue[0] is block:
                self._queue.popleft()
        self.submitted += len(batch)

    async def run(self) -> None:
        """Submit queued blocks until cancelled."""
        delay = RETRY_BASE_S
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            batch = self._head()
            try:
                await self.sink.submit_many(batch)
            except Exception as exc:  # noqa: BLE001 - any failure: keep the blocks, retry later
                self.failures += 1
                logger.warning("pdc: hand-off failed (%s), retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_BASE_S
            self._taken(batch)

    async def drain(self, timeout_s: float) -> bool:
        """Submit what is queued (used at shutdown, without the background task); True if all went."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._queue and loop.time() < deadline:
            batch = self._head()
            try:
                await asyncio.wait_for(self.sink.submit_many(batch), max(deadline - loop.time(), 0.01))
            except Exception as exc:  # noqa: BLE001 - report what is left behind
                logger.warning("pdc: hand-off at shutdown failed: %s", exc)
                await asyncio.sleep(RETRY_BASE_S)
                continue
            self._taken(batch)
        if self._queue:
            logger.error("pdc: %d blocks not handed over at shutdown", len(self._queue))
        return not self._queue
