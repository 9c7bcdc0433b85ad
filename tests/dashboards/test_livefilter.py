import pytest

from dashboards.livefilter import (
    Coalescer,
    decimate_snapshot,
    filter_snapshot,
    merge_snapshots,
    pick_indices,
    thin_to_grid,
)
from tests.dashboards.synthetic import SyntheticGrid, instants_between


def payload(t, pmus):
    return {"t": t, "sent_at": 0.0, "pmus": {pmu: {"frequency_hz": [60.0 + i for i in range(len(t))]} for pmu in pmus}}


def test_filter_keeps_only_allowed_pmus_and_drops_empty_payloads():
    data = payload([1.0], ["1", "2", "3"])
    assert set(filter_snapshot(data, {"1", "3"})["pmus"]) == {"1", "3"}
    assert filter_snapshot(data, {"9"}) is None


def test_merge_pads_a_pmu_missing_from_one_payload_with_nulls():
    merged = merge_snapshots([payload([1.0, 2.0], ["1"]), payload([3.0], ["1", "2"])])
    assert merged["t"] == [1.0, 2.0, 3.0]
    assert merged["pmus"]["1"]["frequency_hz"] == [60.0, 61.0, 60.0]
    assert merged["pmus"]["2"]["frequency_hz"] == [None, None, 60.0]


def test_pick_indices_spreads_evenly_and_keeps_the_newest():
    assert pick_indices(10, 4) == [0, 3, 6, 9]
    assert pick_indices(10, 1) == [9]
    assert pick_indices(3, 5) == [0, 1, 2]


def test_decimate_selects_the_same_instants_in_every_series():
    data = payload([0.0, 1.0, 2.0, 3.0, 4.0], ["1"])
    out = decimate_snapshot(data, 3)
    assert out["t"] == [0.0, 2.0, 4.0]
    assert out["pmus"]["1"]["frequency_hz"] == [60.0, 62.0, 64.0]


def test_thinning_keeps_the_first_instant_of_each_tenth_of_a_second():
    t = [1000.0, 1000.0 + 1 / 30, 1000.0 + 2 / 30, 1000.1, 1000.1 + 1 / 30]
    out, bucket = thin_to_grid(payload(t, ["1"]), 10.0, None)
    assert out["t"] == pytest.approx([1000.0, 1000.1])
    assert out["pmus"]["1"]["frequency_hz"] == [60.0, 63.0]
    assert bucket == 10001
    # A later update continues from the last bucket sent.
    out, _ = thin_to_grid(payload([1000.1 + 2 / 30, 1000.2], ["1"]), 10.0, bucket)
    assert out["t"] == pytest.approx([1000.2])


def test_thinning_at_four_points_a_second_keeps_one_instant_in_a_quarter_second():
    t = [1000.0 + k / 30 for k in range(30)]
    out, _ = thin_to_grid(payload(t, ["1"]), 4.0, None)
    assert out["t"] == pytest.approx([1000.0, 1000.0 + 8 / 30, 1000.5, 1000.0 + 23 / 30])


def test_coalescer_hands_out_everything_queued_once():
    coalescer = Coalescer(points_per_s=10.0)
    assert coalescer.take() is None
    coalescer.add(payload([1.0], ["1"]))
    coalescer.add(payload([1.5], ["1"]))
    assert coalescer.take()["t"] == [1.0, 1.5]
    assert not coalescer


def test_synthetic_instants_lie_on_the_reporting_grid():
    t = instants_between(100.0, 100.1, 30)
    assert t == pytest.approx([100 + 1 / 30, 100 + 2 / 30, 100.1])


def test_synthetic_grid_marks_a_stopped_pmu_missing():
    grid = SyntheticGrid([1, 2])
    grid.stopped.add(2)
    data = grid.snapshot(instants_between(100.0, 100.1, 30))
    assert data["pmus"]["2"]["frequency_hz"] == [None, None, None]
    assert all(59.9 < f < 60.1 for f in data["pmus"]["1"]["frequency_hz"])
