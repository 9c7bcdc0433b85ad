"""The kept history's angles: referred to one PMU, unwrapped across gaps, unmoved by PMUs dropping out."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.incidents.history import relative_angles

RATE_HZ = 30.0


def rotating(seconds: float, offsets_deg: list[float], off_nominal_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Return times and absolute angles (wrapped to +-180) of PMUs turning together at an off-nominal frequency."""
    t = np.arange(0.0, seconds, 1.0 / RATE_HZ)
    turning = 360.0 * off_nominal_hz * t
    angles = turning[:, None] + np.asarray(offsets_deg)[None, :]
    return t, (angles + 180.0) % 360.0 - 180.0


def test_relative_angles_keep_each_pmus_offset_while_the_grid_turns_off_nominal():
    _, angles = rotating(10.0, [0.0, 30.0, -50.0], off_nominal_hz=-0.12)
    rel = relative_angles(angles)
    np.testing.assert_allclose(rel - rel[:, [0]], np.broadcast_to([0.0, 30.0, -50.0], rel.shape), atol=1e-9)


def test_a_pmu_missing_before_the_event_does_not_shift_the_others():
    t, angles = rotating(6.0, [0.0, 20.0, 40.0, -10.0], off_nominal_hz=0.05)
    angles[t < 3.0, 3] = np.nan  # the fourth PMU came back at 3 s
    rel = relative_angles(angles)
    before, after = t < 2.9, t > 3.1
    for j in range(3):
        assert abs(np.nanmean(rel[after, j]) - np.nanmean(rel[before, j])) < 1e-6
    assert np.isnan(rel[before, 3]).all()


def test_a_gap_in_one_pmu_unwraps_to_its_true_step():
    """A 1.5 s gap while the grid turns at -0.25 Hz (135 deg of rotation): the relative step is still seen right."""
    t, angles = rotating(8.0, [0.0, 10.0, 60.0], off_nominal_hz=-0.25)
    angles[t >= 4.0, 2] -= 9.0  # PMU 2 steps back 9 deg at 4 s (e.g. a unit tripped next to it)
    angles[(t > 3.5) & (t < 5.0), 2] = np.nan
    angles = (angles + 180.0) % 360.0 - 180.0
    rel = relative_angles(angles)
    step = np.nanmean(rel[t > 5.5, 2]) - np.nanmean(rel[t < 3.4, 2])
    assert abs(step - -9.0) < 1e-6


def test_the_reference_missing_for_a_while_is_bridged_from_the_others():
    t, angles = rotating(4.0, [0.0, 25.0, -35.0], off_nominal_hz=0.1)
    angles[(t > 1.0) & (t < 1.5), 1] = np.nan  # PMU 1 has the fewest gaps: it is the reference ...
    angles[(t > 2.0) & (t < 3.0), 0] = np.nan
    angles[(t > 0.2) & (t < 1.2), 2] = np.nan
    rel = relative_angles(angles)
    gap = (t > 1.0) & (t < 1.5)
    assert np.isfinite(rel[gap, 0]).all() and np.isnan(rel[gap, 1]).all()  # ... bridged from PMU 0 while away
    both = np.isfinite(rel[:, 0]) & np.isfinite(rel[:, 2])
    np.testing.assert_allclose((rel[:, 0] - rel[:, 2])[both], 35.0, atol=1e-6)
    np.testing.assert_allclose(rel[~gap & np.isfinite(rel[:, 0]), 0], -25.0, atol=1e-6)


def test_a_voltage_decline_after_a_load_increase_is_that_incident_and_after_a_load_loss_is_not():
    from wams.detection.analytics.incidents import GridTopology, IncidentCorrelator
    from wams.detection.analytics.incidents.classify import Verdict
    from wams.detection.analytics.incidents.correlator import _Incident
    from wams.detection.analytics.incidents.types import IncidentKind, Location

    correlator = IncidentCorrelator(GridTopology(lines=(("L", 1, 2),), pmu_buses=(1, 2)))
    grew = Verdict(IncidentKind.LOAD_STEP, Location(bus=2), {"frequency_change_hz": -0.05, "load_change_mw": 215.0})
    lost = Verdict(IncidentKind.LOAD_STEP, Location(bus=1), {"frequency_change_hz": 0.06, "load_change_mw": -260.0})
    correlator.incidents = [
        _Incident(1, lost, 100.0, [], set(), 100.0, ended=True),
        _Incident(2, grew, 200.0, [], set(), 200.0, ended=True),
    ]
    decline = Verdict(IncidentKind.VOLTAGE_DECLINE, Location(bus=2), {"voltage_min_pu": 0.86})
    grown = correlator._load_grown_into_decline(decline, 215.0)
    assert grown is not None and grown.number == 2 and not grown.ended
    assert grown.verdict.kind is IncidentKind.VOLTAGE_DECLINE
    assert grown.verdict.figures["first_named"] == "load_step" and grown.verdict.figures["load_change_mw"] == 215.0
    correlator.incidents = [_Incident(1, lost, 100.0, [], set(), 100.0)]
    assert correlator._load_grown_into_decline(decline, 110.0) is None  # load lost: the frequency rose
    assert correlator._load_grown_into_decline(decline, 300.0) is None  # too long after
