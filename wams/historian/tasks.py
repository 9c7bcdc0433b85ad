"""Celery tasks of the historian: thin adapters around the hand-off consumer and the policy service."""

from __future__ import annotations

import logging

from celery import shared_task

from wams.historian import streams
from wams.historian.handoff import consume
from wams.historian.policies import enforce_all_policies

logger = logging.getLogger(__name__)


@shared_task(name="wams.historian.tasks.persist_blocks", ignore_result=True)
def persist_blocks(max_seconds: float = 0.9, claim_idle_ms: int | None = None) -> int:
    """Store hand-off entries from Redis for up to `max_seconds`; return the new samples stored."""
    if not streams.redis_url():
        return 0  # embedded mode stores blocks as they are submitted
    report = consume(max_seconds=max_seconds, claim_idle_ms=claim_idle_ms)
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
