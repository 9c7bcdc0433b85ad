"""Fixtures of the historian tests: a Redis database of their own, a clean recent window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from wams.historian.handoff import stop_embedded_writer
from wams.historian.recent import clear_recent_memory

REDIS_TEST_URL = "redis://127.0.0.1:6379/11"  # db 11 belongs to these tests; flushed around each


@pytest.fixture(autouse=True)
def _isolated(settings: Any) -> Iterator[None]:
    """Run embedded unless a test asks for Redis (CI sets REDIS_URL for everyone); start and end clean."""
    settings.REDIS_URL = None
    clear_recent_memory()
    yield
    stop_embedded_writer()
    clear_recent_memory()


@pytest.fixture
def redis_url(settings: Any) -> Iterator[str]:
    """Point REDIS_URL at the tests' own Redis database, empty."""
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    client.flushdb()
    settings.REDIS_URL = REDIS_TEST_URL
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


@pytest.fixture
def embedded(settings: Any) -> None:
    """Say that a test runs embedded (no Redis): the default here, named for readability."""
    settings.REDIS_URL = None
