"""Ground truth, eigenvalue modes, COMTRADE records and noise bounds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.simulator.helpers import matrix_pencil_modes, resample
from wams.simulator.engine.noise import MeasurementNoise
from wams.simulator.engine.realtime import RealTimeSimulator
from wams.simulator.engine.scenarios import parse_scenario_arg

EPOCH = 1_700_000_000.0


@pytest.mark.parametrize("case", ["ieee39", "kundur"])
def test_oscillation_scenario_mode_matches_ground_truth_within_2_percent(case, tmp_path):
    sim = RealTimeSimulator(case, truth_dir=tmp_path, epoch_utc_s=EPOCH)
    sim.schedule("oscillation", 0.5)
    sim.advance_to(20.0)
    truth = json.loads(sim.truth.path.read_text())
    dominant = next(m for m in truth["modes"] if m["reason"] == "oscillation")["dominant_inter_area"]
    assert dominant["damping_ratio"] < 0.03
    # Independent estimate: the ringdown of the two most opposed generators' speed difference.
    shape = np.array(dominant["shape"])
    t = np.arange(3.0, 20.0, 1 / 16)
    snap = sim.buffer.sample(t)
    gens = [sim.dyn.generator_buses[int(np.argmax(shape))], sim.dyn.generator_buses[int(np.argmin(shape))]]
    cols = [sim.dyn.bus_column(b) for b in gens]
    signal = snap.bus_frequency_pu[:, cols[0]] - snap.bus_frequency_pu[:, cols[1]]
    _grid, y = resample(t, signal - signal.mean(), 1 / 16)
    modes = matrix_pencil_modes(y, 1 / 16, order=12)
    measured = min(modes, key=lambda m: abs(m[0] - dominant["frequency_hz"]))
    assert measured[0] == pytest.approx(dominant["frequency_hz"], rel=0.02)
    assert measured[1] == pytest.approx(dominant["damping_ratio"], abs=0.01)


def test_truth_json_lists_scenarios_events_and_the_fault_record(tmp_path):
    sim = RealTimeSimulator("ieee39", truth_dir=tmp_path, epoch_utc_s=EPOCH)
    sim.schedule("fault", 1.0, bus=16, duration_s=0.1)
    sim.schedule("generator_trip", 2.0)
    sim.advance_to(3.0)
    truth = json.loads(sim.truth.path.read_text())
    kinds = [(e["kind"], e["element"], e["t_s"]) for e in truth["events"]]
    assert ("fault_on", "16", 1.0) in kinds
    assert ("fault_off", "16", pytest.approx(1.1)) in kinds
    assert ("generator_trip", "GENROU_5", 2.0) in kinds
    assert truth["events"][0]["utc"] == "2023-11-14T22:13:21.000000+00:00"
    assert truth["modes"][0]["reason"] == "initial"
    inter_area = [m for m in truth["modes"][0]["modes"] if m["inter_area"]]
    assert inter_area[0]["frequency_hz"] == pytest.approx(0.639, abs=0.005)  # New England vs New York
    assert inter_area[0]["damping_ratio"] == pytest.approx(0.188, abs=0.005)
    assert len(truth["fault_records"]) == 1


def test_fault_record_is_comtrade_at_1920_hz_with_the_voltage_dip(tmp_path):
    comtrade = pytest.importorskip("comtrade")
    sim = RealTimeSimulator("ieee39", truth_dir=tmp_path, epoch_utc_s=EPOCH)
    sim.schedule("fault", 1.0, bus=16, duration_s=0.1)
    sim.advance_to(2.5)
    record = json.loads(sim.truth.path.read_text())["fault_records"][0]
    rec = comtrade.Comtrade()
    rec.load(record["cfg"], record["dat"])
    assert rec.cfg.sample_rates[0][0] == pytest.approx(1920.0)
    assert rec.analog_count >= 3 and rec.status_count == 1
    t = np.asarray(rec.time)
    va = np.asarray(rec.analog[0])
    fault = np.asarray(rec.status[0]).astype(bool)
    assert 0.18 < t[fault][0] < 0.22  # the window opens 0.2 s before the fault
    peak_before = np.abs(va[t < 0.15]).max()
    peak_during = np.abs(va[(t > 0.22) & (t < 0.29)]).max()
    peak_after = np.abs(va[t > 0.9]).max()
    assert peak_before == pytest.approx(345e3 * np.sqrt(2 / 3), rel=0.1)
    assert peak_during < 0.05 * peak_before
    assert peak_after > 0.9 * peak_before


def test_measurement_noise_stays_inside_c37118_limits():
    noise = MeasurementNoise(seed=1)
    true = np.full(200_000, 199_000 * np.exp(0.3j))
    measured = noise.phasors(true)
    tve = np.abs(measured - true) / np.abs(true)
    assert tve.max() <= 0.01
    assert 0.0005 < np.median(tve) < 0.005  # real noise, not zero
    freq_err = noise.frequency_hz(np.full(200_000, 60.0)) - 60.0
    assert np.abs(freq_err).max() <= 0.005
    assert freq_err.std() == pytest.approx(0.001, rel=0.1)


def test_noise_settings_beyond_the_limits_are_refused():
    with pytest.raises(ValueError):
        MeasurementNoise(tve_sd=0.01)
    with pytest.raises(ValueError):
        MeasurementNoise(frequency_sd_hz=0.002)


def test_scenario_argument_parses_parameters_and_time():
    assert parse_scenario_arg("fault:bus=16,duration_s=0.08@30") == ("fault", {"bus": 16, "duration_s": 0.08}, 30.0)
    assert parse_scenario_arg("generator-trip") == ("generator_trip", {}, None)
    with pytest.raises(KeyError):
        parse_scenario_arg("earthquake")


def test_samples_fall_on_reporting_instants_and_interpolate_between_steps(tmp_path):
    sim = RealTimeSimulator("ieee39", epoch_utc_s=EPOCH)
    sim.schedule("generator_trip", 0.5)
    sim.advance_to(2.0)
    instants = EPOCH + np.arange(0, 60) / 30.0
    sample = sim.sample_utc(instants)
    f = np.median(sample.snapshot.bus_frequency_pu, axis=1) * 60
    assert np.all(np.abs(np.diff(f)) < 0.05)  # no jumps beyond the trip's angle-step transient
    assert f[-1] < f[0] - 0.03
    np.testing.assert_allclose(sample.snapshot.t_s, np.arange(0, 60) / 30.0, atol=1e-6)
