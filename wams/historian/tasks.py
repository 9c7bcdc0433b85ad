"""Celery tasks of the historian: thin adapters around the hand-off consumer, compaction and policies."""

from __future__ import annotations

import logging

from celery import shared_task

from wams.historian import compaction, streams
from wams.historian.handoff import consume
from wams.historian.policies import enforce_all_policies

logger = logging.getLogger(__name__)


@shared_task(name="wams.historian.tasks.persist_blocks", ignore_result=True)
def persist_blocks(max_seconds: float = 0.9, claim_idle_ms: int | None = None) -> int:
    """Store hand-off entries from Redis as they arrive, for `max_seconds`; return the new samples stored."""
    if not streams.redis_url():
        return 0  # embedded mode stores blocks as they are submitted
    # Waiting on the stream (not polling once per beat) stores a block within milliseconds of its hand-off.
    report = consume(max_seconds=max_seconds, claim_idle_ms=claim_idle_ms, wait=True)
    if report.entries or report.dead_lettered:
        logger.debug(
            "historian: %d entries, %d new samples, %d reclaimed, %d dead-lettered",
            report.entries,
            report.samples_stored,
            report.claimed,
            report.dead_lettered,
        )
    return report.samples_stored


@shared_task(name="wams.historian.tasks.enforce_storage_policies", ignore_result=True)
def enforce_storage_policies() -> int:
    """Apply every storage policy; return the bytes freed."""
    return sum(report.bytes_freed for report in enforce_all_policies())


@shared_task(name="wams.historian.tasks.compact_chunks", ignore_result=True)
def compact_chunks() -> int:
    """Merge settled short chunks into chunks of WAMS_HISTORIAN_CHUNK_SECONDS; return the chunks removed."""
    report = compaction.compact_chunks(max_seconds=compaction.COMPACT_TASK_SECONDS)
    return report.chunks_before - report.chunks_after
