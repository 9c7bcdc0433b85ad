"""The simulator in its own process: mirrored trajectory, calls and scenarios across the pipe."""

from __future__ import annotations

import time

import numpy as np
import pytest

from wams.simulator.engine.process import SimulatorProcess

pytestmark = pytest.mark.timeout(120)


def test_child_simulator_streams_its_trajectory_and_takes_calls_and_scenarios(tmp_path):
    sim = SimulatorProcess("ieee39", lookahead_s=0.2, truth_dir=tmp_path)
    try:
        sim.start()
        assert sim.buffer.covers(sim.sim_time_at(time.time()))  # `start` returns once caught up
        ahead = sim.sample_utc(np.array([time.time(), sim.utc_at(sim.buffer.end_s + 5.0)]))
        assert ahead.simulated.tolist() == [True, False]  # flagged, not held
        line = sim.grid.line_between(3, 4)
        event = sim.call("set_line_status", line, False).result(timeout=10)
        assert event.kind == "line_open" and event.element == line
        plan = sim.schedule("generator_trip").result(timeout=10)
        assert plan.name == "generator_trip"
        deadline = time.time() + 20
        while sim.buffer.end_s < plan.t_start_s + 4.0 and time.time() < deadline:
            time.sleep(0.1)
        t = np.linspace(plan.t_start_s - 0.5, plan.t_start_s + 4.0, 50)
        snap = sim.buffer.sample(t)
        f = np.median(snap.bus_frequency_pu, axis=1) * 60
        assert f[-1] < f[0] - 0.03
        assert not sim.latest_line_closed()[sim.grid.line_position(line)]
        with pytest.raises(AttributeError):
            sim.call("no_such_action").result(timeout=10)
    finally:
        sim.stop()
    assert sim.truth_path is not None and sim.truth_path.exists()
