"""The one place naming the historian's Redis keys, streams and consumer group, and handing out clients."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

HANDOFF_STREAM = "wams:historian:blocks"  # SampleBlocks from the pdc, one entry per block
HANDOFF_GROUP = "historian"  # the consumer group of the persisting workers
DEAD_LETTER_STREAM = "wams:historian:dead"  # entries that can never be stored, with the reason
RECENT_PREFIX = "wams:historian:recent:"  # + PMU id: a stream of recent packed blocks

FIELD_BLOCK = b"block"
FIELD_PMU = b"pmu"
FIELD_REASON = b"reason"


def recent_key(pmu_id: int) -> str:
    """Return the Redis key of one PMU's recent window."""
    return f"{RECENT_PREFIX}{pmu_id}"


def redis_url() -> str | None:
    """Return the Redis URL in force (None: embedded mode)."""
    url: str | None = settings.REDIS_URL
    return url


_clients: dict[str, redis.Redis] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def get_redis() -> redis.Redis:
    """Return a process-wide client for REDIS_URL (thread-safe connection pool)."""
    url = redis_url()
    if not url:
        raise RuntimeError("REDIS_URL is not set: the historian runs embedded")
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return client


def get_async_redis() -> aioredis.Redis:
    """Return an asyncio client for REDIS_URL bound to the running event loop."""
    url = redis_url()
    if not url:
        raise RuntimeError("REDIS_URL is not set: the historian runs embedded")
    per_loop = _async_clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        client = per_loop[url] = aioredis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    return client


def consumer_name() -> str:
    """Name this process in the consumer group (host and pid: a restarted worker is a new consumer)."""
    return f"{socket.gethostname()}:{os.getpid()}"
