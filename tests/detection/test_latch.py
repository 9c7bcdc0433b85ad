"""The raise/clear state machine: pickup, dropout, hysteresis, deduplication."""

from __future__ import annotations

import numpy as np
import pytest

from wams.detection.analytics.latch import ConditionLatch
from wams.detection.analytics.types import DetectionPhase

T = np.arange(20) * 0.1  # 10 rows per second


def column(values: list[int]) -> np.ndarray:
    """Return a (n_time, 1) boolean column."""
    return np.array(values, dtype=bool)[:, None]


def test_condition_raises_once_after_pickup_and_clears_after_dropout() -> None:
    latch = ConditionLatch(1, pickup_s=0.2, dropout_s=0.3, tracked={"x": "min"})
    on = column([0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    values = {"x": -np.arange(20, dtype=float)[:, None]}
    out = latch.step_block(T, on, ~on, values)
    assert [tr.phase for tr in out] == [DetectionPhase.RAISED, DetectionPhase.CLEARED]
    raised, cleared = out
    assert raised.start_time_s == pytest.approx(0.1)
    assert raised.detected_time_s == pytest.approx(0.3)
    assert cleared.end_time_s == pytest.approx(0.7)
    assert cleared.detected_time_s == pytest.approx(1.0)
    assert cleared.extreme["x"] == -6.0  # lowest value while the condition held


def test_condition_shorter_than_pickup_is_not_raised() -> None:
    latch = ConditionLatch(1, pickup_s=0.3, dropout_s=0.1)
    on = column([0, 1, 1, 0, 1, 1, 0] + [0] * 13)
    assert latch.step_block(T, on, ~on) == []


def test_chatter_inside_hysteresis_band_does_not_clear_or_raise_again() -> None:
    latch = ConditionLatch(1, pickup_s=0.0, dropout_s=0.3)
    on = column([1, 0, 1, 0, 1, 0, 1, 0, 1, 0] + [0] * 10)
    off = column([0] * 10 + [1] * 10)  # the clear test only holds from row 10
    out = latch.step_block(T, on, off)
    assert [tr.phase for tr in out] == [DetectionPhase.RAISED, DetectionPhase.CLEARED]
    assert out[1].detected_time_s == pytest.approx(1.3)


def test_rows_of_unknown_data_hold_a_raised_condition() -> None:
    latch = ConditionLatch(1, pickup_s=0.0, dropout_s=0.2)
    on = column([1] + [0] * 19)
    off = column([0] * 19 + [1])  # neither test holds on rows 1..18
    out = latch.step_block(T, on, off)
    assert [tr.phase for tr in out] == [DetectionPhase.RAISED]
    assert bool(latch.raised[0])


def test_block_and_row_by_row_feeding_give_the_same_transitions() -> None:
    rng = np.random.default_rng(3)
    on = rng.random((200, 5)) < 0.3
    off = ~on & (rng.random((200, 5)) < 0.8)
    t = np.arange(200) * 0.05
    whole = ConditionLatch(5, pickup_s=[0.0, 0.05, 0.1, 0.1, 0.2], dropout_s=0.1).step_block(t, on, off)
    rows = ConditionLatch(5, pickup_s=[0.0, 0.05, 0.1, 0.1, 0.2], dropout_s=0.1)
    stepped = [tr for k in range(200) for tr in rows.step_block(t[k : k + 1], on[k : k + 1], off[k : k + 1])]
    key = [(tr.phase, tr.element, tr.start_time_s, tr.detected_time_s) for tr in whole]
    assert key == [(tr.phase, tr.element, tr.start_time_s, tr.detected_time_s) for tr in stepped]
    assert len(whole) > 10
