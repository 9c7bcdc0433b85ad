"""Physics of the live IEEE 39-bus simulation: each scenario's signature, a few seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from wams.simulator.engine.dynamics import GridDynamics
from wams.simulator.engine.scenarios import plan_scenario

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
