"""SampleBlocks cut from each PMU's samples on fixed windows."""

from __future__ import annotations

import numpy as np

from wams.historian.blocks import SampleBlock
from wams.pdc.accumulate import BlockAccumulator
from wams.synchrophasor import PmuData

T0_US = 1_700_000_000 * 1_000_000
STEP_US = 100_000  # 10 fps


def sample(k: int, n_phasors: int = 2) -> PmuData:
    """Return a sample whose values encode k."""
    return PmuData(
        stat=k,
        phasors=np.array([k + 1j * k] * n_phasors),
        frequency_hz=60.0 + k / 1000,
        rocof_hz_per_s=k / 100,
        analogs=np.array([float(k)]),
        digitals=[k & 0xFFFF],
    )


def feed(acc: BlockAccumulator, ks: list[int], late: set[int] = frozenset(), pmu: int = 7) -> list[SampleBlock]:  # type: ignore[assignment]
    blocks: list[SampleBlock] = []
    for k in ks:
        blocks += acc.add(pmu, T0_US + k * STEP_US, sample(k), k in late, now_s=0.0)
    return blocks


def test_window_is_cut_when_the_next_window_begins() -> None:
    acc = BlockAccumulator(block_seconds=1.0)
    blocks = feed(acc, list(range(25)))  # 2.5 s at 10 fps
    assert [len(b) for b in blocks] == [10, 10]
    first = blocks[0]
    np.testing.assert_array_equal(first.timestamp_us, T0_US + np.arange(10) * STEP_US)
    np.testing.assert_allclose(first.frequency_hz, 60.0 + np.arange(10) / 1000)
    np.testing.assert_array_equal(first.phasors.shape, (10, 2))
    np.testing.assert_array_equal(first.digitals[:, 0], np.arange(10))
    assert acc.buffered == 5


def test_late_flags_and_out_of_order_samples_end_up_sorted() -> None:
    acc = BlockAccumulator(block_seconds=1.0)
    feed(acc, [0, 1, 3, 2, 4], late={3})
    (block,) = acc.cut_all()
    np.testing.assert_array_equal(block.timestamp_us, T0_US + np.arange(5) * STEP_US)
    np.testing.assert_array_equal(block.late, [False, False, False, True, False])


def test_same_time_stamp_twice_is_stored_once() -> None:
    acc = BlockAccumulator(block_seconds=1.0)
    feed(acc, [0, 1, 1, 2])
    (block,) = acc.cut_all()
    assert len(block) == 3


def test_idle_window_is_cut_after_idle_time() -> None:
    acc = BlockAccumulator(block_seconds=5.0, idle_s=2.0)
    acc.add(1, T0_US, sample(0), False, now_s=100.0)
    assert acc.cut_idle(101.0) == []
    (block,) = acc.cut_idle(102.0)
    assert block.pmu_id == 1 and len(block) == 1


def test_channel_count_change_cuts_the_window() -> None:
    acc = BlockAccumulator(block_seconds=5.0)
    acc.add(1, T0_US, sample(0, n_phasors=2), False, now_s=0.0)
    blocks = acc.add(1, T0_US + STEP_US, sample(1, n_phasors=3), False, now_s=0.0)
    assert [b.phasors.shape for b in blocks] == [(1, 2)]
    (rest,) = acc.cut_all()
    assert rest.phasors.shape == (1, 3)


def test_windows_are_aligned_to_the_epoch() -> None:
    acc = BlockAccumulator(block_seconds=5.0)
    start = T0_US + 3_000_000  # 3 s into a 5 s window
    blocks = []
    for k in range(40):
        blocks += acc.add(1, start + k * STEP_US, sample(k), False, now_s=0.0)
    assert [len(b) for b in blocks] == [20]
    assert int(blocks[0].timestamp_us[-1]) < T0_US + 5_000_000
