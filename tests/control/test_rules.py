"""The countermeasure rules as a pure function: known inputs, known firing times and modes."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from wams.control.rules import (
    ActionSpec,
    EventInput,
    SchemeSpec,
    SchemeState,
    Series,
    StageSpec,
    evaluate_event,
    evaluate_series,
    parse_live_snapshot,
)

RATE_FPS = 30.0
DT_S = 1.0 / RATE_FPS
T0_S = 1_800_000_000.0

SHED_A = ActionSpec(101, "shed")
SHED_B = ActionSpec(102, "shed")
SHED_C = ActionSpec(103, "shed")


def ufls(**changes: object) -> SchemeSpec:
    """Three-stage under-frequency load shedding: 59.5 / 59.3 / 59.0 Hz, 100 ms each, armed, live."""
    spec = SchemeSpec(
        scheme_id=1,
        name="UFLS",
        stages=(
            StageSpec(1, 59.5, 100.0, (SHED_A,)),
            StageSpec(2, 59.3, 100.0, (SHED_B,)),
            StageSpec(3, 59.0, 100.0, (SHED_C,)),
        ),
        quantity="frequency_hz",
        comparison="below",
        min_pmus=1,
        reset_ms=2000.0,
        rate_limit_count=0,
        armed=True,
        dry_run=False,
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def series(frequency_hz: dict[int, np.ndarray], t0_s: float = T0_S) -> Series:
    """Build a series at 30 fps from per-PMU frequency arrays (n,)."""
    n = len(next(iter(frequency_hz.values())))
    return Series(t0_s + DT_S * np.arange(n), {"frequency_hz": frequency_hz})


def ramp(n: int, start_hz: float, slope_hz_per_s: float) -> np.ndarray:
    """Return a frequency ramp sampled at 30 fps."""
    return start_hz + slope_hz_per_s * DT_S * np.arange(n)


def test_ufls_stages_fire_when_each_threshold_has_held_its_duration():
    # 60 Hz falling at 1 Hz/s: crosses 59.5 at 0.5 s, 59.3 at 0.7 s, 59.0 at 1.0 s (strictly below after).
    f = ramp(60, 60.0, -1.0)
    state, decisions = evaluate_series(ufls(), SchemeState(), series({7: f}))

    assert [d.stage for d in decisions] == [1, 2, 3]
    assert [d.mode for d in decisions] == ["execute"] * 3
    assert [d.actions for d in decisions] == [(SHED_A,), (SHED_B,), (SHED_C,)]
    fire_s = [d.trigger_time_s - T0_S for d in decisions]
    # first sample strictly below the threshold, plus 100 ms, rounded up to the next 1/30 s sample
    expected_s = []
    for threshold in (59.5, 59.3, 59.0):
        first = int(np.argmax(f < threshold))
        expected_s.append(first * DT_S + math.ceil(round(0.1 / DT_S, 6)) * DT_S)
    np.testing.assert_allclose(fire_s, expected_s, rtol=0, atol=1e-6)  # epoch seconds carry ~0.2 us rounding
    assert decisions[0].quantities["frequency_hz"] < 59.5
    assert "59.5" in decisions[0].reason and "100 ms" in decisions[0].reason
    assert state.fired == {1, 2, 3}


def test_a_dip_shorter_than_the_duration_fires_nothing():
    f = np.full(30, 60.0)
    f[10:12] = 59.2  # 67 ms below every threshold but 59.0
    _, decisions = evaluate_series(ufls(), SchemeState(), series({7: f}))
    assert decisions == []


def test_state_carries_across_calls_like_one_long_series():
    f = ramp(60, 60.0, -1.0)
    whole = evaluate_series(ufls(), SchemeState(), series({7: f}))[1]
    state = SchemeState()
    pieces = []
    for start in range(0, 60, 3):  # live updates carry a few instants each
        state, found = evaluate_series(ufls(), state, series({7: f[start : start + 3]}, T0_S + start * DT_S))
        pieces.extend(found)
    assert [d.stage for d in pieces] == [d.stage for d in whole]
    np.testing.assert_allclose([d.trigger_time_s for d in pieces], [d.trigger_time_s for d in whole], rtol=0, atol=1e-6)


def test_min_pmus_ignores_a_single_low_pmu_and_missing_values():
    low = np.full(30, 59.0)
    normal = np.full(30, 60.0)
    missing = np.full(30, np.nan)
    spec = ufls(min_pmus=2)

    assert evaluate_series(spec, SchemeState(), series({1: low, 2: normal, 3: missing}))[1] == []
    decisions = evaluate_series(spec, SchemeState(), series({1: low, 2: low.copy(), 3: missing}))[1]
    assert [d.stage for d in decisions] == [1, 2]  # 59.0 is not below 59.0


def test_only_the_configured_pmus_count():
    low = np.full(30, 59.0)
    spec = ufls(pmu_ids=frozenset({2}))
    assert evaluate_series(spec, SchemeState(), series({1: low, 2: np.full(30, 60.0)}))[1] == []


def test_fired_stages_rearm_only_after_the_condition_stayed_clear_for_reset_ms():
    dip = np.full(15, 59.4)  # 0.5 s at 59.4 Hz: stage 1
    clear_short = np.full(30, 60.0)  # 1 s clear < 2 s reset
    clear_long = np.full(75, 60.0)  # 2.5 s clear > 2 s reset
    spec = ufls()
    f = np.concatenate([dip, clear_short, dip, clear_long, dip])
    _, decisions = evaluate_series(spec, SchemeState(), series({7: f}))
    assert [d.stage for d in decisions] == [1, 1]
    second_dip_start_s = (15 + 30 + 15 + 75) * DT_S
    assert decisions[1].trigger_time_s - T0_S == pytest.approx(second_dip_start_s + 3 * DT_S)


def test_rate_limit_suppresses_firings_beyond_the_count_in_the_window():
    dip = np.full(15, 59.4)
    clear = np.full(75, 60.0)
    spec = ufls(rate_limit_count=1, rate_limit_window_s=600.0)
    f = np.concatenate([dip, clear, dip])
    _, decisions = evaluate_series(spec, SchemeState(), series({7: f}))
    assert [d.mode for d in decisions] == ["execute", "rate_limited"]


@pytest.mark.parametrize(
    ("changes", "mode"),
    [({"dry_run": True}, "dry_run"), ({"blocked": True}, "blocked"), ({"blocked": True, "dry_run": True}, "blocked")],
)
def test_dry_run_and_supervisory_block_tag_the_firings(changes, mode):
    _, decisions = evaluate_series(ufls(**changes), SchemeState(), series({7: np.full(10, 59.4)}))
    assert [(d.stage, d.mode) for d in decisions] == [(1, mode)]


def test_disarmed_scheme_decides_nothing_and_forgets_durations():
    state, decisions = evaluate_series(ufls(armed=False), SchemeState(), series({7: np.full(10, 59.4)}))
    assert decisions == [] and state.fired == set() and state.condition_since_s == {}


def test_event_gate_requires_an_active_event_of_the_kinds():
    spec = ufls(event_kinds=frozenset({"generator_trip"}))
    low = series({7: np.full(10, 59.4)})
    assert evaluate_series(spec, SchemeState(), low)[1] == []

    state, _ = evaluate_event(spec, SchemeState(), EventInput("generator_trip", "raised", "g1", T0_S))
    state, decisions = evaluate_series(spec, state, low)
    assert [d.stage for d in decisions] == [1]

    state, _ = evaluate_event(spec, state, EventInput("generator_trip", "cleared", "g1", T0_S + 1))
    assert state.active_events == set()


def islanding(**changes: object) -> SchemeSpec:
    """Open tie lines on an angle-separation event of at least 40 degrees (stage 1) or 60 (stage 2)."""
    spec = SchemeSpec(
        scheme_id=2,
        name="Islanding",
        stages=(
            StageSpec(1, 40.0, 0.0, (ActionSpec(201, "open"),)),
            StageSpec(2, 60.0, 0.0, (ActionSpec(202, "open"),)),
        ),
        event_kinds=frozenset({"angle_separation"}),
        event_quantity="angle_separation_deg",
        comparison="above",
        armed=True,
        dry_run=False,
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def test_event_only_scheme_fires_the_stages_whose_threshold_the_event_exceeds():
    event = EventInput("angle_separation", "raised", "a1", T0_S, {"angle_separation_deg": 52.0})
    state, decisions = evaluate_event(islanding(), SchemeState(), event)
    assert [d.stage for d in decisions] == [1]
    assert decisions[0].quantities == {"threshold": 40.0, "angle_separation_deg": 52.0}

    # the same event acknowledged, or raised again while active, fires nothing new
    assert evaluate_event(islanding(), state, replace(event, state="acknowledged"))[1] == []
    worse = EventInput("angle_separation", "raised", "a2", T0_S + 1, {"angle_separation_deg": 65.0})
    state, decisions = evaluate_event(islanding(), state, worse)
    assert [d.stage for d in decisions] == [2]

    for key in ("a1", "a2"):
        state, _ = evaluate_event(islanding(), state, EventInput("angle_separation", "cleared", key, T0_S + 2))
    assert state.fired == set()  # all clear: re-armed


def test_event_of_other_kinds_or_pmus_is_ignored():
    event = EventInput("rocof", "raised", "r", T0_S, {"angle_separation_deg": 90.0})
    assert evaluate_event(islanding(), SchemeState(), event)[1] == []
    elsewhere = EventInput("angle_separation", "raised", "x", T0_S, {"angle_separation_deg": 90.0}, frozenset({9}))
    assert evaluate_event(islanding(pmu_ids=frozenset({1, 2})), SchemeState(), elsewhere)[1] == []


def test_corridor_angle_separation_wraps_around_180_degrees():
    spec = SchemeSpec(
        scheme_id=3,
        name="Corridor",
        stages=(StageSpec(1, 30.0, 100.0, (ActionSpec(301, "open"),)),),
        quantity="angle_separation_deg",
        comparison="above",
        corridor=(1, 2),
        armed=True,
        dry_run=False,
    )
    n = 10
    t = T0_S + DT_S * np.arange(n)
    near = Series(t, {"angle_deg": {1: np.full(n, 179.0), 2: np.full(n, -179.0)}})  # 2 degrees apart
    assert evaluate_series(spec, SchemeState(), near)[1] == []
    apart = Series(t, {"angle_deg": {1: np.full(n, 170.0), 2: np.full(n, -150.0)}})  # 40 degrees apart
    decisions = evaluate_series(spec, SchemeState(), apart)[1]
    assert len(decisions) == 1
    assert decisions[0].quantities["angle_separation_deg"] == pytest.approx(40.0)


def test_live_snapshot_payload_is_parsed_with_missing_values_as_nan():
    payload = {
        "t": [T0_S, T0_S + 0.1],
        "sent_at": T0_S + 0.2,
        "pmus": {
            "4": {"frequency_hz": [59.9, None], "angle_deg": [10.0, 11.0], "magnitude_pu": [1.0, 1.0]},
            "5": {"frequency_hz": [60.0, 60.1]},
        },
    }
    parsed = parse_live_snapshot(payload)
    np.testing.assert_allclose(parsed.t_s, [T0_S, T0_S + 0.1])
    np.testing.assert_array_equal(parsed.values["frequency_hz"][4], [59.9, np.nan])
    np.testing.assert_array_equal(parsed.values["frequency_hz"][5], [60.0, 60.1])
    assert 5 not in parsed.values["angle_deg"]
