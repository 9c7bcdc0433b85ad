"""The recent window, in memory (embedded) and in Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from tests.historian.helpers import assert_blocks_equal, make_block
from wams.historian import codec, recent


class _ShiftedClock:
    """Stand-in for the `time` module, `shift_s` seconds ahead."""

    def __init__(self, shift_s: float) -> None:
        self.shift_s = shift_s

    def monotonic(self) -> float:
        return time.monotonic() + self.shift_s

    def time(self) -> float:
        return time.time() + self.shift_s


def _push_snapshots(block: Any) -> None:
    for i in range(len(block)):
        recent.push_recent(codec.take_samples(block, slice(i, i + 1)))


def test_memory_window_returns_the_newest_seconds(embedded: None) -> None:
    block = make_block(4, n=90, fps=30)
    _push_snapshots(block)
    last_second = recent.read_recent(4, 1.0)
    assert last_second is not None
    np.testing.assert_array_equal(last_second.timestamp_us, block.timestamp_us[59:])
    everything = recent.read_recent(4, 60.0)
    assert everything is not None
    assert_blocks_equal(everything, block)
    assert recent.read_recent(5, 60.0) is None


def test_memory_window_forgets_blocks_past_the_keep_time(
    embedded: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WAMS_HISTORIAN_RECENT_S = 10
    recent.push_recent(make_block(4, n=5))
    monkeypatch.setattr(recent, "time", _ShiftedClock(11.0))
    assert recent.read_recent(4, 60.0) is None


@pytest.mark.redis
def test_redis_window_round_trips_blocks_from_sync_and_async_code(redis_url: str) -> None:
    block = make_block(8, n=60, n_phasors=3)
    recent.push_recent_many([codec.take_samples(block, slice(0, 30))])
    asyncio.run(recent.apush_recent(codec.take_samples(block, slice(30, 60))))
    asyncio.run(recent.apush_recent(codec.take_samples(block, slice(50, 60))))  # a repeat is read once
    window = recent.read_recent(8, 60.0)
    assert window is not None
    assert_blocks_equal(window, block)


@pytest.mark.redis
def test_redis_window_forgets_blocks_past_the_keep_time(
    redis_url: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WAMS_HISTORIAN_RECENT_S = 10
    recent.push_recent(make_block(8, n=5))
    assert recent.read_recent(8, 60.0) is not None
    monkeypatch.setattr(recent, "time", _ShiftedClock(11.0))
    assert recent.read_recent(8, 60.0) is None
