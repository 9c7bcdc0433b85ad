"""The hand-off from the pdc to the historian, and the worker side that stores and acknowledges.

With REDIS_URL the pdc appends each SampleBlock to a Redis stream read by a consumer group of
Celery workers (`persist_blocks`); a worker acknowledges an entry only after the database commit
that stored it, and entries left pending by a dead worker are claimed by another after
WAMS_HISTORIAN_CLAIM_IDLE_MS. Ingest is idempotent, so an entry stored and then re-delivered
(worker killed between commit and ack) stores nothing twice. Without REDIS_URL (embedded) blocks
are stored in-process by a single writer thread, so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import close_old_connections, connections, transaction

from wams.historian import codec, streams
from wams.historian.blocks import SampleBlock
from wams.historian.services import UnknownPmuError, ingest, ingest_many

logger = logging.getLogger(__name__)

# --- producer side (pdc) -----------------------------------------------------------------------


def _entry(block: SampleBlock) -> dict[bytes, bytes]:
    """Return a stream entry for a block (raw packed arrays, no serialiser: ~100x faster than numpy .npz)."""
    return {streams.FIELD_PMU: str(block.pmu_id).encode(), streams.FIELD_BLOCK: codec.pack_block(block)}


_writer: ThreadPoolExecutor | None = None
_writer_lock = threading.Lock()


def _embedded_writer() -> ThreadPoolExecutor:
    """Return the one thread that stores blocks in embedded mode (one writer suits SQLite)."""
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="historian-writer")
        return _writer


def _store_embedded(block: SampleBlock) -> int:
    """Store one block from the writer thread."""
    close_old_connections()
    try:
        return ingest(block)
    except UnknownPmuError:
        logger.warning("historian: dropped a block of PMU %s, which is no longer in the grid model", block.pmu_id)
        return 0
    except Exception:
        logger.exception("historian: could not store a block of PMU %s", block.pmu_id)
        raise
    finally:
        close_old_connections()


def _store_embedded_many(blocks: Sequence[SampleBlock]) -> int:
    """Store a batch of blocks from the writer thread in one transaction (block by block if one is refused)."""
    close_old_connections()
    try:
        return ingest_many(blocks)
    except UnknownPmuError:
        return sum(_store_embedded(block) for block in blocks)  # keeps the others, drops the unknown PMU's
    except Exception:
        logger.exception("historian: could not store a batch of %d blocks", len(blocks))
        raise
    finally:
        close_old_connections()


def submit_block(block: SampleBlock) -> Future[int] | None:
    """Hand a block to the historian without waiting for storage (Redis XADD, or the embedded writer).

    Returns the embedded writer's future (number of new samples), or None with Redis.
    """
    if len(block) == 0:
        return None
    if streams.redis_url():
        streams.get_redis().xadd(streams.HANDOFF_STREAM, _entry(block))  # type: ignore[arg-type]
        return None
    return _embedded_writer().submit(_store_embedded, block)


async def asubmit_block(block: SampleBlock) -> None:
    """Hand a block to the historian from async code; embedded mode waits for the writer thread."""
    if len(block) == 0:
        return
    if streams.redis_url():
        await streams.get_async_redis().xadd(streams.HANDOFF_STREAM, _entry(block))  # type: ignore[arg-type]
        return
    await asyncio.wrap_future(_embedded_writer().submit(_store_embedded, block))


async def asubmit_blocks(blocks: Sequence[SampleBlock]) -> None:
    """Hand several blocks over in one round trip (a Redis pipeline, or one embedded transaction).

    A failure part-way may leave some blocks handed over; submitting them again is harmless, since
    ingest stores each sample once.
    """
    blocks = [block for block in blocks if len(block)]
    if not blocks:
        return
    if streams.redis_url():
        async with streams.get_async_redis().pipeline(transaction=False) as pipe:
            for block in blocks:
                pipe.xadd(streams.HANDOFF_STREAM, _entry(block))  # type: ignore[arg-type]
            await pipe.execute()
        return
    await asyncio.wrap_future(_embedded_writer().submit(_store_embedded_many, blocks))


def flush_embedded(timeout_s: float = 30.0) -> None:
    """Wait until the embedded writer has stored everything submitted so far."""
    if _writer is not None:
        _writer.submit(lambda: None).result(timeout=timeout_s)


def stop_embedded_writer(timeout_s: float = 30.0) -> None:
    """Store what is queued, close the writer thread's database connection and stop the thread."""
    global _writer
    with _writer_lock:
        writer, _writer = _writer, None
    if writer is not None:
        writer.submit(connections.close_all).result(timeout=timeout_s)
        writer.shutdown(wait=True)


# --- consumer side (workers) -------------------------------------------------------------------


@dataclass
class ConsumeReport:
    """What one `consume` call did."""

    entries: int = 0  # entries handled (stored or found already stored)
    samples_stored: int = 0  # new samples written
    claimed: int = 0  # entries reclaimed from idle consumers
    dead_lettered: int = 0  # entries that can never be stored
    failed_ids: list[str] = field(default_factory=list)  # left pending for a later retry


def ensure_group(client: redis.Redis) -> None:
    """Create the stream and its consumer group if they do not exist."""
    try:
        client.xgroup_create(streams.HANDOFF_STREAM, streams.HANDOFF_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _finish(client: redis.Redis, ids: Sequence[bytes]) -> None:
    """Acknowledge and delete entries (called after the database commit)."""
    if ids:
        pipe = client.pipeline(transaction=False)
        pipe.xack(streams.HANDOFF_STREAM, streams.HANDOFF_GROUP, *ids)
        pipe.xdel(streams.HANDOFF_STREAM, *ids)
        pipe.execute()


def _dead_letter(client: redis.Redis, entry_id: bytes, fields: dict[bytes, bytes], reason: str) -> None:
    """Move an entry that can never be stored aside, keeping its data and why."""
    logger.error("historian: dead-lettering hand-off entry %s: %s", entry_id.decode(), reason)
    kept = {**fields, streams.FIELD_REASON: reason.encode()}
    client.xadd(streams.DEAD_LETTER_STREAM, kept)  # type: ignore[arg-type]
    _finish(client, [entry_id])


def _store_entries(client: redis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]], report: ConsumeReport) -> None:
    """Store entries in one transaction and ack them after commit; fall back to one by one on failure."""
    decoded: list[tuple[bytes, SampleBlock]] = []
    for entry_id, fields in entries:
        try:
            decoded.append((entry_id, codec.unpack_block(fields[streams.FIELD_BLOCK])))
        except (KeyError, ValueError) as exc:
            _dead_letter(client, entry_id, fields, f"undecodable block: {exc}")
            report.dead_lettered += 1
    if not decoded:
        return
    ids = [entry_id for entry_id, _ in decoded]
    try:
        with transaction.atomic():
            stored = ingest_many(block for _, block in decoded)
            transaction.on_commit(lambda: _finish(client, ids))
        report.samples_stored += stored
        report.entries += len(ids)
        return
    except Exception:
        logger.warning("historian: batch of %d entries failed; storing them one by one", len(ids), exc_info=True)
    fields_of = dict(entries)
    for entry_id, block in decoded:
        try:
            with transaction.atomic():
                stored = ingest(block)
                transaction.on_commit(lambda entry_id=entry_id: _finish(client, [entry_id]))  # type: ignore[misc]
            report.samples_stored += stored
            report.entries += 1
        except UnknownPmuError as exc:
            _dead_letter(client, entry_id, fields_of[entry_id], str(exc))
            report.dead_lettered += 1
        except Exception:
            logger.exception("historian: entry %s left pending for a retry", entry_id.decode())
            report.failed_ids.append(entry_id.decode())


def _claim_idle(client: redis.Redis, consumer: str, idle_ms: int, count: int) -> list[Any]:
    """Take over entries pending longer than `idle_ms` in other (dead) consumers."""
    claimed: list[Any] = []
    cursor: bytes | str = "0-0"
    while len(claimed) < count:
        reply = client.xautoclaim(
            streams.HANDOFF_STREAM, streams.HANDOFF_GROUP, consumer, idle_ms, start_id=cursor, count=count
        )
        cursor, entries = reply[0], reply[1]
        claimed.extend(entry for entry in entries if entry[1] is not None)
        if cursor in (b"0-0", "0-0"):
            break
    return claimed


def consume(
    consumer: str | None = None,
    *,
    count: int = 100,
    max_seconds: float = 0.9,
    claim_idle_ms: int | None = None,
    wait: bool = False,
) -> ConsumeReport:
    """Store hand-off entries for up to `max_seconds`: first reclaimed idle ones, then new ones.

    With `wait`, an empty stream is waited on until `max_seconds` are up, so an entry is stored as
    soon as it arrives rather than at the next call; without, the call returns once the stream is empty.
    """
    client = streams.get_redis()
    consumer = consumer or streams.consumer_name()
    idle_ms = int(settings.WAMS_HISTORIAN_CLAIM_IDLE_MS if claim_idle_ms is None else claim_idle_ms)
    ensure_group(client)
    report = ConsumeReport()
    deadline = time.monotonic() + max_seconds
    claimed = _claim_idle(client, consumer, idle_ms, count)
    if claimed:
        report.claimed += len(claimed)
        logger.info("historian: %s reclaimed %d idle hand-off entries", consumer, len(claimed))
        _store_entries(client, claimed, report)
    while (remaining_s := deadline - time.monotonic()) > 0:
        block_ms = max(1, int(remaining_s * 1000)) if wait else None
        reply = client.xreadgroup(
            streams.HANDOFF_GROUP, consumer, {streams.HANDOFF_STREAM: ">"}, count=count, block=block_ms
        )
        entries = reply[0][1] if reply else []
        if not entries:
            if wait:
                continue
            break
        _store_entries(client, entries, report)
    return report
