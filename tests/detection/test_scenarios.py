"""The detectors on every simulator scenario: the right kind, at the right place, in time, and nothing else.

Each scenario is simulated once per module (IEEE 39-bus, ambient load noise, the demo PMUs at
30 frames/s through the C37.118 codec) and fed to the analytics snapshot by snapshot, as the
live path does; `scenario_cases` holds the expectations and the physically legitimate
secondary detections of each scenario, with the reasons.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.detection.scenario_cases import CASES, FAST_BAR_S, OSCILLATION_BAR_S, Verdict, ambient_case, first_raised
from tests.detection.scenario_runner import ScenarioRun, run_scenario
from wams.detection.analytics.types import DetectionKind, Severity

Outcome = tuple[ScenarioRun, Verdict]


@pytest.fixture(scope="module")
def outcome() -> Callable[[str], Outcome]:
    """Return a function that simulates a scenario once and evaluates it (cached for the module)."""
    done: dict[str, Outcome] = {}

    def get(name: str) -> Outcome:
        if name not in done:
            case = CASES[name]
            run = run_scenario(case.events, case.duration_s)
            done[name] = (run, case.evaluate(run))
        return done[name]

    return get


def assert_passed(verdict: Verdict) -> None:
    """Fail with every reason the evaluation found."""
    assert verdict.failures == [], "\n".join(verdict.failures)


def test_generator_trip_raises_grid_rocof_at_every_pmu_within_500_ms(outcome: Callable[[str], Outcome]) -> None:
    run, verdict = outcome("generator_trip")
    assert run.restarts == 0
    assert verdict.raised.startswith("rocof")
    assert verdict.place == f"all {run.layout.n_pmu} PMUs"
    assert verdict.delay_ms is not None and 0.0 <= verdict.delay_ms <= 1000 * FAST_BAR_S
    # Legitimate secondary: the unit's breaker steps the voltage angle at the PMU two buses away.
    assert set(verdict.secondaries) <= {"line_trip@19"}
    assert_passed(verdict)


def test_line_trip_raises_a_current_trip_alarm_at_the_pmu_measuring_the_line(outcome: Callable[[str], Outcome]) -> None:
    run, verdict = outcome("line_trip")
    (trip,) = [d for d in first_raised(run) if d.kind is DetectionKind.LINE_TRIP]
    assert [run.layout.buses[i] for i in trip.pmu_indices] == [16]  # the PMU at bus 16 measures line 16-17
    assert trip.severity is Severity.ALARM
    assert trip.quantities["current_after_a"] < 0.1 * trip.quantities["current_before_a"]
    assert verdict.delay_ms is not None and verdict.delay_ms <= 1000 * FAST_BAR_S
    assert verdict.secondaries == []
    assert_passed(verdict)


def test_fault_sags_deepest_at_the_faulted_bus_within_500_ms(outcome: Callable[[str], Outcome]) -> None:
    run, verdict = outcome("fault")
    sag = next(d for d in first_raised(run) if d.kind is DetectionKind.VOLTAGE_SAG and d.pmu_indices == (7,))
    assert run.layout.buses[7] == 16
    assert sag.severity is Severity.ALARM
    assert verdict.delay_ms is not None and verdict.delay_ms <= 1000 * FAST_BAR_S
    # No line was opened: the phase jumps and current swings of the fault raise no line trip.
    assert not any(label.startswith(("line_trip", "islanding")) for label in verdict.secondaries)
    assert_passed(verdict)


def test_small_load_step_raises_nothing_and_large_one_a_grid_frequency_event(
    outcome: Callable[[str], Outcome],
) -> None:
    run, verdict = outcome("load_step")
    assert verdict.raised.startswith("rocof")
    assert verdict.place == f"all {run.layout.n_pmu} PMUs"
    assert verdict.delay_ms is not None and verdict.delay_ms <= 1000 * FAST_BAR_S
    assert set(verdict.secondaries) <= {"line_trip@23"}  # the load's own bus: its switching steps the angle
    assert_passed(verdict)


def test_islanding_is_raised_for_the_separated_group_within_500_ms(outcome: Callable[[str], Outcome]) -> None:
    run, verdict = outcome("islanding")
    (island,) = [d for d in first_raised(run) if d.kind is DetectionKind.ISLANDING]
    # Opening areas 1 and 2 of the case separates buses 14-24, 28, 29 (and units 33-36, 38); the
    # demo's "central" group (PMUs at 3, 16, 19, 22, 23) has most of its PMUs on that side.
    assert [run.layout.buses[i] for i in island.pmu_indices] == [3, 16, 19, 22, 23]
    assert verdict.delay_ms is not None and verdict.delay_ms <= 1000 * FAST_BAR_S
    assert_passed(verdict)


def test_poorly_damped_inter_area_mode_alarms_within_10_s_near_its_eigenvalue(
    outcome: Callable[[str], Outcome],
) -> None:
    run, verdict = outcome("oscillation")
    truth = run.dominant_mode("oscillation")
    alarm = next(d for d in first_raised(run) if d.kind is DetectionKind.POORLY_DAMPED_OSCILLATION)
    assert alarm.quantities["mode_frequency_hz"] == pytest.approx(truth["frequency_hz"], rel=0.05)  # 6 s estimate
    assert alarm.quantities["damping_pct"] < 5.0  # truth 2.6 %: below the warning level
    assert run.monitor is not None
    final = [e.mode for e in run.monitor.estimates if e.source == "ringdown"]  # over 20 s
    best = min(final, key=lambda m: abs(m.frequency_hz - truth["frequency_hz"]))
    assert best.frequency_hz == pytest.approx(truth["frequency_hz"], rel=0.02)
    assert best.damping_pct == pytest.approx(100 * truth["damping_ratio"], abs=1.5)
    assert verdict.delay_ms is not None and verdict.delay_ms <= 1000 * OSCILLATION_BAR_S
    assert not any(d.kind is DetectionKind.FORCED_OSCILLATION for d in run.oscillation)
    assert_passed(verdict)


def test_forced_oscillation_is_raised_within_10_s_at_the_injected_frequency(
    outcome: Callable[[str], Outcome],
) -> None:
    run, verdict = outcome("forced_oscillation")
    (forced,) = [d for d in first_raised(run) if d.kind is DetectionKind.FORCED_OSCILLATION]
    assert forced.quantities["frequency_hz"] == pytest.approx(1.25, rel=0.02)
    assert run.layout.buses[int(forced.quantities["source_pmu"])] == 25  # the modulated load is at bus 25
    assert verdict.delay_ms is not None and verdict.delay_ms <= 1000 * OSCILLATION_BAR_S
    assert not any(d.kind is DetectionKind.POORLY_DAMPED_OSCILLATION for d in run.oscillation)
    assert_passed(verdict)


def test_slow_voltage_decline_raises_sags_as_each_bus_crosses_0_9_pu(outcome: Callable[[str], Outcome]) -> None:
    run, verdict = outcome("voltage_decline")
    sagged = {run.layout.buses[d.pmu_indices[0]] for d in first_raised(run) if d.kind is DetectionKind.VOLTAGE_SAG}
    assert {16, 23} <= sagged <= {14, 16, 19, 22, 23, 29}  # the PMUs of the loaded area (buses 14-24, 28, 29)
    assert_passed(verdict)


def test_two_minutes_of_ambient_data_raise_nothing(outcome: Callable[[str], Outcome]) -> None:
    run, verdict = outcome("ambient 2 min")
    assert run.fast == [] and run.oscillation == []
    assert_passed(verdict)


@pytest.mark.slow
def test_ten_minutes_of_ambient_data_raise_no_alarm() -> None:
    case = ambient_case(600.0)
    run = run_scenario(case.events, case.duration_s)
    assert run.restarts == 0
    assert run.fast == [] and run.oscillation == []
    assert run.monitor is not None
    assert sum(e.source == "ambient" for e in run.monitor.estimates) > 0  # the ambient analysis did run
