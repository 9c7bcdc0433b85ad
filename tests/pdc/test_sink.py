"""The pdc's hand-off queue: batches in order, retries without loss, bounded memory."""

from __future__ import annotations

import asyncio

from tests.historian.helpers import make_block
from wams.historian.blocks import SampleBlock
from wams.pdc.sink import MemorySink, SinkQueue


class FlakySink(MemorySink):
    """Refuse the first `failures` batches; record the size of every batch it takes."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.batches: list[int] = []

    async def submit_many(self, blocks: list[SampleBlock]) -> None:
        await asyncio.sleep(0.001)  # a round trip, during which more blocks queue up
        if self.failures:
            self.failures -= 1
            raise ConnectionError("historian away")
        self.batches.append(len(blocks))
        await super().submit_many(blocks)


def blocks(n: int) -> list[SampleBlock]:
    return [make_block(1, first=3 * i, n=3, seed=i) for i in range(n)]


def run_queue(queue: SinkQueue, produced: list[SampleBlock], settle_s: float = 0.5) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(queue.run())
        for k, block in enumerate(produced):
            queue.put(block)
            if k % 100 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(settle_s)
        task.cancel()

    asyncio.run(scenario())


def test_blocks_go_over_in_batches_in_order_and_exactly_once() -> None:
    sink = FlakySink()
    queue = SinkQueue(sink, batch=200)
    produced = blocks(1000)

    run_queue(queue, produced)

    assert sink.blocks == produced
    assert max(sink.batches) == 200 and len(sink.batches) < 1000
    assert (queue.submitted, len(queue), queue.dropped) == (1000, 0, 0)


def test_a_failing_historian_is_retried_and_nothing_is_lost_or_repeated() -> None:
    sink = FlakySink(failures=2)
    queue = SinkQueue(sink, batch=50)
    produced = blocks(300)

    run_queue(queue, produced, settle_s=1.5)  # retries after 0.2 s and 0.4 s

    assert queue.failures == 2
    assert sink.blocks == produced


def test_a_full_queue_drops_the_oldest_blocks_and_counts_them() -> None:
    sink = MemorySink()
    queue = SinkQueue(sink, limit=10)
    produced = blocks(25)
    for block in produced:
        queue.put(block)  # no task running: the historian is away

    assert (queue.dropped, len(queue)) == (15, 10)
    assert asyncio.run(queue.drain(5.0))
    assert sink.blocks == produced[15:]
