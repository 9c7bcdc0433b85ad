"""The aligner: snapshots per reporting instant, wait time, late and duplicate samples."""

from __future__ import annotations

import pytest

from wams.pdc.align import Aligner, Arrival, on_grid, snap_to_grid, timestamp_us_of

T0_US = 1_700_000_000 * 1_000_000  # a whole second
PERIOD_US = 33_333  # 30 fps: instant k of a second is at round(k * 1e6 / 30) us


def instant(k: int) -> int:
    """Return the k-th 30 fps instant after T0 in microseconds."""
    second, index = divmod(k, 30)
    return T0_US + second * 1_000_000 + (index * 1_000_000 + 15) // 30


def make(wait_ms: float = 100.0, pmus: tuple[int, ...] = (1, 2, 3)) -> Aligner[str]:
    aligner: Aligner[str] = Aligner(wait_ms)
    for pmu in pmus:
        aligner.register(pmu, 30)
    return aligner


def test_complete_instant_is_released_without_waiting() -> None:
    aligner = make()
    t = instant(1)
    arrival = t / 1e6 + 0.02
    for pmu in (1, 2, 3):
        assert aligner.add(pmu, t, arrival, f"s{pmu}") is Arrival.ON_TIME
    snapshots = aligner.release(arrival)
    assert [s.timestamp_us for s in snapshots] == [t]
    assert snapshots[0].samples == {1: "s1", 2: "s2", 3: "s3"}
    assert snapshots[0].complete


def test_incomplete_instant_waits_for_the_wait_time_and_marks_the_missing_pmu() -> None:
    aligner = make(wait_ms=100.0)
    t = instant(2)
    arrival = t / 1e6 + 0.01
    aligner.add(1, t, arrival, "a")
    aligner.add(2, t, arrival + 0.005, "b")
    assert aligner.release(arrival + 0.099) == []
    (snapshot,) = aligner.release(arrival + 0.100)
    assert snapshot.missing == (3,)
    assert set(snapshot.samples) == {1, 2}


def test_sample_after_wait_time_is_late_and_in_no_snapshot() -> None:
    aligner = make(wait_ms=100.0)
    t = instant(3)
    arrival = t / 1e6
    aligner.add(1, t, arrival, "a")
    aligner.add(2, t, arrival, "b")
    # PMU 3 arrives 150 ms after the first sample: past the wait time, even before release ran.
    assert aligner.add(3, t, arrival + 0.150, "c") is Arrival.LATE
    (snapshot,) = aligner.release(arrival + 0.150)
    assert snapshot.missing == (3,)
    assert aligner.stats.late == 1


def test_sample_of_an_already_released_instant_is_late() -> None:
    aligner = make(wait_ms=50.0)
    t1, t2 = instant(4), instant(5)
    aligner.add(1, t1, t1 / 1e6, "a")
    aligner.add(1, t2, t2 / 1e6, "b")
    released = aligner.release(t2 / 1e6 + 0.06)
    assert [s.timestamp_us for s in released] == [t1, t2]
    assert aligner.add(2, t1, t2 / 1e6 + 0.07, "late") is Arrival.LATE
    # An instant nobody reported before, older than one released, is late too.
    assert aligner.add(3, instant(3), t2 / 1e6 + 0.07, "older") is Arrival.LATE


def test_duplicate_sample_is_dropped() -> None:
    aligner = make()
    t = instant(6)
    assert aligner.add(1, t, t / 1e6, "a") is Arrival.ON_TIME
    assert aligner.add(1, t, t / 1e6, "again") is Arrival.DUPLICATE
    aligner.release(t / 1e6 + 1.0)
    assert aligner.add(1, t, t / 1e6 + 2.0, "after release") is Arrival.DUPLICATE
    assert aligner.stats.duplicate == 2


def test_snapshots_leave_in_time_order_even_when_a_later_instant_completes_first() -> None:
    aligner = make(wait_ms=100.0)
    t1, t2 = instant(7), instant(8)
    now = t1 / 1e6
    aligner.add(1, t1, now, "a1")
    for pmu in (1, 2, 3):
        aligner.add(pmu, t2, now + 0.03, f"{pmu}")
    assert aligner.release(now + 0.05) == []  # t2 is complete but t1 still waits
    released = aligner.release(now + 0.10)
    assert [s.timestamp_us for s in released] == [t1, t2]
    assert released[0].missing == (2, 3)
    assert released[1].complete


def test_time_stamps_a_few_microseconds_apart_meet_on_the_same_instant() -> None:
    aligner = make(pmus=(1, 2))
    soc = T0_US // 1_000_000
    # Instant 1/30 s: TIME_BASE 1e6, fraction 33333; a device with TIME_BASE 2^24-1 stamping 559200.
    a = timestamp_us_of(soc, 33_333, 1_000_000)
    b = timestamp_us_of(soc, 559_200, 16_777_215)
    assert b == a - 2
    aligner.add(1, a, soc + 0.05, "a")
    aligner.add(2, b, soc + 0.05, "b")
    (snapshot,) = aligner.release(soc + 0.05)
    assert snapshot.complete
    assert snapshot.timestamp_us == instant(1)


def test_pmus_at_different_rates_are_expected_only_on_their_own_instants() -> None:
    aligner: Aligner[str] = Aligner(100.0)
    aligner.register(1, 60)
    aligner.register(2, 30)
    odd = T0_US + round(1_000_000 / 60)  # a 60 fps instant that is not a 30 fps one
    aligner.add(1, odd, odd / 1e6, "a")
    (snapshot,) = aligner.release(odd / 1e6)  # nothing else expected there: released at once
    assert snapshot.complete


def test_pmu_of_a_link_that_is_down_does_not_delay_release_but_is_marked_missing() -> None:
    aligner = make()
    aligner.set_expected(3, False)
    t = instant(9)
    aligner.add(1, t, t / 1e6, "a")
    aligner.add(2, t, t / 1e6, "b")
    (snapshot,) = aligner.release(t / 1e6)
    assert snapshot.missing == (3,)


def test_sample_stamped_far_in_the_future_is_dropped() -> None:
    aligner = make()
    t = instant(10)
    assert aligner.add(1, t + 60_000_000, t / 1e6, "x") is Arrival.FUTURE
    assert aligner.pending == 0


def test_unregistered_pmu_is_dropped() -> None:
    aligner = make(pmus=(1,))
    assert aligner.add(9, instant(1), instant(1) / 1e6, "x") is Arrival.UNKNOWN_PMU


def test_too_many_pending_instants_force_the_oldest_out() -> None:
    aligner: Aligner[str] = Aligner(10_000.0, max_pending=3)
    aligner.register(1, 30)
    aligner.register(2, 30)
    for k in range(5):
        aligner.add(1, instant(k), instant(0) / 1e6, "a")
    released = aligner.release(instant(0) / 1e6)
    assert [s.timestamp_us for s in released] == [instant(0), instant(1)]
    assert aligner.stats.forced_releases == 2


@pytest.mark.parametrize(
    ("timestamp_us", "data_rate", "expected"),
    [
        (T0_US + 33_333, 30, T0_US + 33_333),
        (T0_US + 33_334, 30, T0_US + 33_333),
        (T0_US + 16_667, 60, T0_US + 16_667),
        (T0_US + 20_000, 50, T0_US + 20_000),
        (T0_US + 5_000, 30, T0_US + 5_000),  # far from any instant: kept as stamped
        (T0_US + 4_999_800, -5, T0_US + 5_000_000),  # one frame every 5 s
    ],
)
def test_snap_to_grid(timestamp_us: int, data_rate: int, expected: int) -> None:
    assert snap_to_grid(timestamp_us, data_rate) == expected


def test_on_grid_tells_instants_of_a_rate() -> None:
    assert on_grid(T0_US + 100_000, 10)
    assert on_grid(T0_US + 100_000, 30)
    assert not on_grid(T0_US + 33_333, 10)


def test_registry_changes_keep_pending_expectations_as_a_fresh_computation_would() -> None:
    import random

    rng = random.Random(7)
    aligner: Aligner[str] = Aligner(1e6)  # nothing times out: instants stay pending
    rates = {pmu: rng.choice((10, 30, 50, -1)) for pmu in range(12)}
    for pmu, rate in rates.items():
        aligner.register(pmu, rate)
    base_s = T0_US / 1e6 + 0.001
    for step in range(400):
        pmu = rng.randrange(14)  # 12 and 13 are sometimes unregistered, sometimes not
        action = rng.random()
        if action < 0.15:
            aligner.register(pmu, rng.choice((10, 30, 50, -1)))
        elif action < 0.2:
            aligner.unregister(pmu)
        elif action < 0.45:
            aligner.set_expected(pmu, rng.random() < 0.5)
        else:
            aligner.add(pmu, T0_US + rng.randrange(40) * 100_000, base_s + step * 1e-4, f"{pmu}")
        active = {p for p, r in aligner.registered.items() if p not in aligner._inactive}
        for pending in aligner._pending.values():
            fresh = {p for p in active if on_grid(pending.key, aligner.registered[p])}
            assert pending.expected == fresh
            assert pending.expected_present == len(fresh & pending.samples.keys())
    snapshots = aligner.flush(base_s + 1)
    assert snapshots, "the sequence left pending instants to check"
    for snapshot in snapshots:
        on_grid_all = {p for p, r in aligner.registered.items() if on_grid(snapshot.timestamp_us, r)}
        assert set(snapshot.missing) == on_grid_all - snapshot.samples.keys()
