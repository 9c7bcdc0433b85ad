"""The pdc's top-level coroutine: owns every device link of its shard until told to stop."""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)


async def run_pdc(stop: asyncio.Event, shard: int = 0, shards: int = 1) -> None:
    """Run the links of one shard until `stop` is set."""
    logger.info("pdc shard %d/%d started", shard, shards)
    await stop.wait()
    logger.info("pdc shard %d/%d stopped", shard, shards)
