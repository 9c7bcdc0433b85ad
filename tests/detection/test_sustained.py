"""Sustained off-nominal states: 59.88 Hz for 60 s is one alarm, a short dip none, clearing with hysteresis."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.incidents import GridTopology, IncidentCorrelator, IncidentKind, IncidentReport
from wams.detection.analytics.incidents.sustained import SustainedConfig
from wams.detection.analytics.types import Snapshot

RATE_FPS = 30
N_PMU = 3
T0_S = 1_800_000_000.0


def snapshot(t_s: float, frequency_hz: float, voltage_pu: float = 1.0) -> Snapshot:
    """Return a quiet snapshot of three PMUs at one frequency and voltage."""
    n = N_PMU
    return Snapshot(
        timestamp_s=T0_S + t_s,
        frequency_hz=np.full(n, frequency_hz),
        rocof_hz_per_s=np.zeros(n),
        voltage_magnitude_pu=np.array([1.0, 1.0, voltage_pu]),
        voltage_angle_deg=np.zeros(n),
        stat=np.zeros(n, dtype=np.uint16),
        present=np.ones(n, dtype=bool),
    )


def run(profile: list[tuple[float, float, float]], nominal_hz: float = 60.0) -> list[IncidentReport]:
    """Feed (duration s, frequency Hz, voltage pu of PMU 2) segments at 30 fps; return the reports."""
    topology = GridTopology(lines=(("L1", 1, 2), ("L2", 2, 3)), pmu_buses=(1, 2, 3), nominal_hz=nominal_hz)
    correlator = IncidentCorrelator(topology)
    reports: list[IncidentReport] = []
    t = 0.0
    for duration_s, f_hz, v_pu in profile:
        for _ in range(round(duration_s * RATE_FPS)):
            reports += correlator.update(snapshot(t, f_hz, v_pu))
            t += 1.0 / RATE_FPS
    return reports


def test_sustained_59_88_hz_for_60_s_raises_exactly_one_generation_deficit_alarm() -> None:
    reports = run([(5.0, 60.0, 1.0), (75.0, 59.88, 1.0)])
    opened = [r for r in reports if r.phase.value == "opened"]
    assert len(opened) == 1, reports
    (incident,) = opened
    assert incident.kind is IncidentKind.GENERATOR_TRIP and incident.severity == "alarm"
    assert incident.figures["off_nominal_frequency_hz"] == 59.88
    assert 59.9 <= incident.detected_s - incident.started_s <= 61.0  # picked up after the 60 s delay
    assert not [r for r in reports if r.phase.value == "ended"]  # still outside the band


def test_a_dip_shorter_than_the_delay_raises_nothing() -> None:
    reports = run([(5.0, 60.0, 1.0), (30.0, 59.85, 1.0), (40.0, 60.0, 1.0), (30.0, 59.85, 1.0), (10.0, 60.0, 1.0)])
    assert reports == []


def test_the_alarm_clears_with_hysteresis_and_the_incident_ends_once() -> None:
    # 59.895 Hz is inside the band but not past the 0.02 Hz hysteresis: still raised.
    reports = run([(62.0, 59.87, 1.0), (30.0, 59.895, 1.0), (20.0, 60.0, 1.0)])
    phases = [r.phase.value for r in reports]
    assert phases == ["opened", "ended"], phases
    assert reports[1].ended_s is not None and reports[1].ended_s >= T0_S + 62.0 + 30.0


def test_a_50_hz_grid_scales_the_band() -> None:
    assert run([(70.0, 49.92, 1.0)], nominal_hz=50.0) == []  # 0.08 Hz off: inside the scaled 0.1 Hz band
    (opened,) = run([(70.0, 49.89, 1.0)], nominal_hz=50.0)
    assert opened.kind is IncidentKind.GENERATOR_TRIP and opened.figures["frequency_limit_hz"] == 49.9


def test_a_voltage_below_limits_for_long_is_one_voltage_decline_at_that_pmu() -> None:
    reports = run([(5.0, 60.0, 1.0), (70.0, 60.0, 0.93)])
    (opened,) = reports
    assert opened.kind is IncidentKind.VOLTAGE_DECLINE and opened.location.bus == 3
    assert opened.figures["off_limit_voltage_pu"] == 0.93


def test_an_imbalance_incident_is_held_and_escalated_instead_of_a_new_one() -> None:
    topology = GridTopology(lines=(), pmu_buses=(1, 2, 3))
    correlator = IncidentCorrelator(topology)
    from wams.detection.analytics.incidents.classify import Verdict
    from wams.detection.analytics.incidents.correlator import _Incident
    from wams.detection.analytics.incidents.types import Location

    trip = _Incident(1, Verdict(IncidentKind.GENERATOR_TRIP, Location(bus=2)), T0_S, [], set(), T0_S, refined=True)
    correlator.incidents.append(trip)
    correlator.count = 1
    reports: list[IncidentReport] = []
    for i in range(round(80 * RATE_FPS)):
        reports += correlator.update(snapshot(i / RATE_FPS, 59.88))
    assert [(r.number, r.phase.value) for r in reports] == [(1, "updated")]  # held: no end, no new incident
    assert reports[0].severity == "alarm" and reports[0].figures["off_nominal_frequency_hz"] == 59.88


def test_sustained_monitoring_can_be_switched_off() -> None:
    topology = GridTopology(lines=(), pmu_buses=(1, 2, 3))
    from wams.detection.analytics.incidents import CorrelatorConfig

    correlator = IncidentCorrelator(topology, CorrelatorConfig(sustained=SustainedConfig(enabled=False)))
    assert not [r for i in range(70 * RATE_FPS) for r in correlator.update(snapshot(i / RATE_FPS, 59.8))]
