"""Physics of the live IEEE 39-bus simulation: each scenario's signature, a few seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from wams.simulator.engine.dynamics import GridDynamics
from wams.simulator.engine.scenarios import parse_scenario_arg, plan_scenario

F0 = 60.0


def run_plan(dyn: GridDynamics, name: str, t0: float, t_end: float, **params):
    """Run scenario `name` from `t0` to `t_end`; return the trajectory from `t0` on (one chunk list)."""
    plan = plan_scenario(dyn, name, t0, **params)
    before = dyn.advance_to(t0)
    chunks = []
    for action in sorted(plan.actions, key=lambda a: a.t_s):
        if action.t_s > t_end:
            break
        chunks.append(dyn.advance_to(action.t_s))
        action.apply(dyn)
    chunks.append(dyn.advance_to(t_end))
    after = [c for c in chunks if c.n_steps]
    t = np.concatenate([c.t_s for c in after])
    return before, after, t


def stack(chunks, field):
    return np.vstack([getattr(c, field) for c in chunks])


def test_resuming_ieee39_in_short_chunks_keeps_a_flat_steady_state(ieee39):
    for k in range(1, 31):
        chunk = ieee39.advance_to(0.1 * k)
        assert chunk.n_steps > 0
    assert ieee39.t_s == pytest.approx(3.0, abs=1e-9)
    final = ieee39.current_state()
    np.testing.assert_allclose(final.bus_frequency_pu * F0, F0, atol=1e-4)


def test_generator_trip_frequency_falls_and_governors_arrest_it(ieee39):
    _before, after, t = run_plan(ieee39, "generator_trip", 1.0, 12.0)
    f = stack(after, "bus_frequency_pu").mean(axis=1) * F0
    nadir = int(np.argmin(f))
    assert f.min() < F0 - 0.05  # a 539 MW unit lost: a clear dip
    assert f.min() > F0 - 0.5
    assert t[nadir] < 11.0  # the fall is arrested before the end
    late = f[t > 10.0]
    assert np.ptp(late) < 0.01  # settled: governors hold the new frequency (droop offset)
    assert late.mean() < F0 - 0.02


def test_line_trip_steps_the_angle_difference_across_the_corridor(ieee39):
    a, b = ieee39.bus_column(16), ieee39.bus_column(17)
    before, after, _t = run_plan(ieee39, "line_trip", 1.0, 4.0, line="Line_21")
    pre = np.degrees(before.bus_angle_rad[-1, a] - before.bus_angle_rad[-1, b])
    post = np.degrees(stack(after, "bus_angle_rad")[-1, a] - stack(after, "bus_angle_rad")[-1, b])
    assert abs(post - pre) > 2.0  # the flow of line 16-17 reroutes: the angle across the corridor steps


def test_fault_sags_voltage_at_its_bus_and_less_further_away(ieee39):
    _before, after, t = run_plan(ieee39, "fault", 1.0, 2.0, bus=16, duration_s=0.1)
    v = stack(after, "bus_magnitude_pu")
    during = (t > 1.01) & (t < 1.09)
    faulted = v[during, ieee39.bus_column(16)].max()
    neighbour = v[during, ieee39.bus_column(17)].max()
    far = v[during, ieee39.bus_column(30)].min()
    assert faulted < 0.05
    assert faulted < neighbour < far
    assert v[t > 1.9, ieee39.bus_column(16)].min() > 0.9  # recovered after clearing


def test_islanding_separates_the_areas_angles_and_frequencies(ieee39):
    _before, after, _t = run_plan(ieee39, "islanding", 1.0, 6.0)
    angle = stack(after, "bus_angle_rad")
    freq = stack(after, "bus_frequency_pu") * F0
    west, east = ieee39.bus_column(39), ieee39.bus_column(38)
    separation = np.degrees(angle[:, east] - angle[:, west])
    assert abs(separation[-1] - separation[0]) > 90.0
    assert abs(freq[-1, east] - freq[-1, west]) > 0.1


def test_load_step_lowers_frequency(ieee39):
    _before, after, _t = run_plan(ieee39, "load_step", 1.0, 5.0, step_pct=20.0)
    f = stack(after, "bus_frequency_pu").mean(axis=1) * F0
    assert f[-1] < F0 - 0.005


def test_forced_oscillation_appears_at_its_frequency(ieee39):
    _before, after, t = run_plan(ieee39, "forced_oscillation", 0.5, 8.5, frequency_hz=1.25, amplitude_mw=60.0)
    f = stack(after, "bus_frequency_pu")[:, ieee39.bus_column(27)] * F0
    grid = np.arange(1.5, 8.5, 1 / 32)
    x = np.interp(grid, t, f)
    x = (x - x.mean()) * np.hanning(x.size)
    spectrum = np.abs(np.fft.rfft(x, 8 * x.size))
    freqs = np.fft.rfftfreq(8 * x.size, 1 / 32)
    band = freqs > 0.3
    assert freqs[band][np.argmax(spectrum[band])] == pytest.approx(1.25, abs=0.05)


def test_voltage_decline_lowers_the_area_voltages_slowly(ieee39):
    _before, after, _t = run_plan(
        ieee39, "voltage_decline", 0.5, 8.5, q_pct_per_min=600.0, p_pct_per_min=60.0, duration_s=8.0
    )
    v = stack(after, "bus_magnitude_pu")
    loads = [ieee39.bus_column(b) for b in (15, 16, 21, 24)]
    drop = v[0, loads] - v[-1, loads]
    assert np.all(drop > 0.01)
    assert np.max(np.abs(np.diff(v[:, loads], axis=0))) < 0.01  # a ramp, no step


def separation_deg(dyn: GridDynamics, chunks, a: int = 39, b: int = 29) -> np.ndarray:
    """Return the unwrapped angle of bus `b` behind bus `a` in degrees (positive: `b` leads)."""
    angle = stack(chunks, "bus_angle_rad")
    return np.degrees(angle[:, dyn.bus_column(b)] - angle[:, dyn.bus_column(a)])


def test_angle_separation_ramp_drives_the_seabrook_pocket_out_of_step(ieee39):
    _before, after, t = run_plan(
        ieee39, "angle_separation", 1.0, 20.0, rate_mw_per_s=60.0, duration_s=15.0, ramp_delay_s=1.0
    )
    sep = separation_deg(ieee39, after)
    f_pocket = stack(after, "bus_frequency_pu")[:, ieee39.bus_column(29)] * F0
    early = (t > 2.5) & (t < 8.0)
    assert np.all(np.diff(sep[early]) > -0.5)  # the ramp opens the angle steadily
    assert sep[early][-1] - sep[early][0] > 10.0
    assert sep.max() > 360.0  # at least one pole slipped
    assert f_pocket.max() > F0 + 1.0  # the pocket runs away from the grid


def test_opening_the_cut_set_at_40_degrees_with_a_runback_keeps_both_islands_near_nominal(ieee39):
    plan = plan_scenario(ieee39, "angle_separation", 1.0, rate_mw_per_s=60.0, duration_s=15.0, ramp_delay_s=1.0)
    assert plan.params["pocket_buses"] == [28, 29, 38]
    actions = sorted(plan.actions, key=lambda a: a.t_s)
    chunks, islanded_s = [], None
    while ieee39.t_s < 20.0 - 1e-9:
        while actions and actions[0].t_s <= ieee39.t_s + 1e-9:
            actions.pop(0).apply(ieee39)
        chunk = ieee39.advance_to(ieee39.t_s + 0.125)
        chunks.append(chunk)
        a = np.degrees(chunk.bus_angle_rad[-1])
        if islanded_s is None and abs(a[ieee39.bus_column(29)] - a[ieee39.bus_column(39)]) > 40.0:
            for line in plan.params["cut_lines"]:
                if ieee39.line_closed[ieee39.uid("Line", line)]:
                    ieee39.set_line_status(line, False)
            ieee39.set_generator_setpoint(plan.params["generator"], 500.0)
            islanded_s = ieee39.t_s
    assert islanded_s is not None
    t = np.concatenate([c.t_s for c in chunks])
    f = stack(chunks, "bus_frequency_pu") * F0
    after = t > islanded_s
    pocket, grid = f[after, ieee39.bus_column(29)], f[after, ieee39.bus_column(39)]
    assert np.abs(pocket - F0).max() < 1.0 and np.abs(grid - F0).max() < 1.0
    late = t > 17.0
    assert np.ptp(f[late, ieee39.bus_column(29)]) < 0.1  # settled: no slipping in the island


def test_angle_separation_takes_its_cut_set_from_the_command_line_and_records_the_pocket(ieee39):
    name, params, at_s = parse_scenario_arg("angle-separation:cut_lines=Line_32+Line_33,rate_mw_per_s=30@5")
    plan = plan_scenario(ieee39, name, at_s, **params)

    assert plan.params["cut_lines"] == ["Line_32", "Line_33"] and plan.params["trip_line"] == "Line_33"
    assert plan.params["pocket_buses"] == [28, 29, 38] and plan.params["ramp_start_s"] == 7.0
    assert plan.notes["initial_export_mw"] == pytest.approx(764.8 - 283.5 - 206.0, abs=0.2)
    with pytest.raises(ValueError, match="do not cut"):
        plan_scenario(ieee39, "angle_separation", 1.0, cut_lines="Line_32")
