"""Detector behaviour that the simulator scenarios called for, on synthetic streams with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.detection.helpers import EPOCH_S, RATE_HZ, angles_for, noisy, times
from wams.detection.analytics.fast import FastDetectorBank, FastDetectorConfig, LineTripConfig
from wams.detection.analytics.oscillation import OscillationMonitor
from wams.detection.analytics.oscillation.forced import envelope_ratio
from wams.detection.analytics.synthetic import SyntheticMode, ambient, ringdown, stack_channels
from wams.detection.analytics.types import Detection, DetectionKind, DetectionPhase, Severity, make_block

FREQ_NOISE_HZ = 0.005
WELL_DAMPED = [
    SyntheticMode(0.35, 10.0, 1.0, (1.0, 0.8, -0.7, -1.0)),
    SyntheticMode(0.9, 12.0, 0.5, (0.2, -1.0, 0.6, 0.1)),
]


def raised(found: list[Detection], kind: DetectionKind) -> list[Detection]:
    """Return the raised detections of one kind."""
    return [d for d in found if d.kind is kind and d.phase is DetectionPhase.RAISED]


def test_grid_wide_slope_of_0_08_hz_per_s_raises_one_rocof_naming_every_pmu() -> None:
    t = times(10.0)
    f = noisy((t.size, 6), 60.0, FREQ_NOISE_HZ)
    elapsed = t - EPOCH_S
    f -= np.where(elapsed >= 4.0, 0.08 * (elapsed - 4.0), 0.0).clip(max=0.3)[:, None]  # a generator lost
    found = FastDetectorBank(6).update_block(make_block(t, f))
    (grid,) = raised(found, DetectionKind.ROCOF)  # no PMU passes the local 0.2 Hz/s
    assert grid.pmu_indices == (0, 1, 2, 3, 4, 5)
    assert grid.key.startswith("rocof:grid@")
    assert grid.severity is Severity.WARNING
    # The 0.5 s slope passes 0.05 Hz/s 0.31 s into the ramp; the pickup adds 0.1 s.
    assert 0.3 <= grid.detected_time_s - (EPOCH_S + 4.0) <= 0.5


def test_grid_rocof_clears_under_its_raised_key_when_a_pmu_stops_reporting() -> None:
    t = times(12.0)
    f = noisy((t.size, 6), 60.0, FREQ_NOISE_HZ)
    elapsed = t - EPOCH_S
    f -= np.where(elapsed >= 4.0, 0.08 * (elapsed - 4.0), 0.0).clip(max=0.2)[:, None]  # falls for 2.5 s
    present = np.ones(f.shape, dtype=bool)
    present[elapsed >= 5.0, 5] = False  # PMU 5 lost while the frequency still falls
    found = FastDetectorBank(6).update_block(make_block(t, f, present=present))
    grid = [d for d in found if d.kind is DetectionKind.ROCOF and d.key.startswith("rocof:grid@")]
    assert [d.phase for d in grid] == [DetectionPhase.RAISED, DetectionPhase.CLEARED]
    assert grid[0].key == grid[1].key
    assert grid[1].pmu_indices == (0, 1, 2, 3, 4, 5)


def test_swings_of_opposite_sign_raise_no_grid_rocof() -> None:
    t = times(12.0)
    f = noisy((t.size, 6), 60.0, FREQ_NOISE_HZ)
    swing = 0.03 * np.sin(2 * np.pi * 0.7 * (t - EPOCH_S))  # +-0.13 Hz/s at each PMU after a line switching
    f[:, :3] += swing[:, None]
    f[:, 3:] -= swing[:, None]
    found = FastDetectorBank(6).update_block(make_block(t, f))
    assert raised(found, DetectionKind.ROCOF) == []


def test_one_frame_frequency_spike_of_a_phase_jump_raises_no_rocof() -> None:
    t = times(6.0)
    f = noisy((t.size, 3), 60.0, FREQ_NOISE_HZ)
    f[150, 1] += 0.5  # a PMU's frequency across a 5 deg phase jump: one frame
    found = FastDetectorBank(3).update_block(make_block(t, f))
    assert raised(found, DetectionKind.ROCOF) == []


def fault_stream(clear_by_opening: bool) -> list[Detection]:
    """Return the detections of a 0.1 s fault seen by one current channel, cleared with or without opening it."""
    t = times(6.0)
    elapsed = t - EPOCH_S
    during = (elapsed >= 3.0) & (elapsed < 3.1)
    v = noisy((t.size, 2), 1.0, 0.002)
    v[during, 0] = 0.3
    current = noisy((t.size, 1), 400.0, 2.0)
    current[during, 0] = 4000.0  # fault current
    if clear_by_opening:
        current[elapsed >= 3.1, 0] = 0.5
    f = np.full((t.size, 2), 60.0)
    config = FastDetectorConfig(line_trip=LineTripConfig(current_pmu_index=[0]))
    block = make_block(t, f, voltage_magnitude_pu=v, current_magnitude_a=current)
    return FastDetectorBank(2, config).update_block(block)


def test_fault_current_and_its_clearing_raise_no_line_trip() -> None:
    found = fault_stream(clear_by_opening=False)
    assert raised(found, DetectionKind.LINE_TRIP) == []
    assert [d.pmu_indices for d in raised(found, DetectionKind.VOLTAGE_SAG)] == [(0,)]


def test_line_opened_to_clear_a_fault_is_a_trip_from_the_pre_fault_current() -> None:
    (trip,) = raised(fault_stream(clear_by_opening=True), DetectionKind.LINE_TRIP)
    assert trip.severity is Severity.ALARM
    assert trip.quantities["current_before_a"] == pytest.approx(400.0, abs=10.0)  # not the fault current
    assert 0.0 <= trip.detected_time_s - (EPOCH_S + 3.1) <= 0.1


def test_phase_jump_during_a_voltage_sag_is_no_line_trip() -> None:
    t = times(6.0)
    f = noisy((t.size, 2), 60.0, FREQ_NOISE_HZ)
    angle = angles_for(f)
    elapsed = t - EPOCH_S
    v = np.ones_like(f)
    v[(elapsed >= 2.5) & (elapsed < 2.6), 0] = 0.4
    angle[(elapsed >= 2.5) & (elapsed < 2.6), 0] += 25.0  # jumps in at the fault, back at its clearing
    found = FastDetectorBank(2).update_block(
        make_block(t, f, voltage_angle_deg=(angle + 180.0) % 360.0 - 180.0, voltage_magnitude_pu=v)
    )
    assert raised(found, DetectionKind.LINE_TRIP) == []


def run_monitor(values: np.ndarray, n_pmu: int) -> tuple[OscillationMonitor, list[Detection]]:
    """Feed a monitor relative angles and frequencies one second at a time."""
    names = [f"p{i}:angle_deg" for i in range(n_pmu)] + [f"p{i}:frequency_hz" for i in range(n_pmu)]
    monitor = OscillationMonitor(RATE_HZ, values.shape[1], channel_pmu=list(range(n_pmu)) * 2, channel_names=names)
    t = np.arange(values.shape[0]) / RATE_HZ
    step = int(RATE_HZ)
    found: list[Detection] = []
    for begin in range(0, values.shape[0], step):
        found += monitor.update_block(t[begin : begin + step], values[begin : begin + step])
    return monitor, found


def test_envelope_ratio_of_a_ringdown_is_its_decay_over_half_the_window() -> None:
    mode = SyntheticMode(0.64, 2.6, 1.0, (1.0, -0.5, 0.3))
    _, angle, _ = ringdown([mode], 6.0, RATE_HZ, np.random.default_rng(1), angle_noise_deg=0.01)
    sigma_per_s = -mode.pole_per_s().real
    assert envelope_ratio(angle, RATE_HZ, 0.64) == pytest.approx(np.exp(-sigma_per_s * 3.0), abs=0.03)  # 0.73
    t = np.arange(angle.shape[0]) / RATE_HZ
    tone = np.outer(np.sin(2 * np.pi * 1.1 * t), [1.0, 0.4, -0.2]) + np.random.default_rng(2).normal(
        0, 0.01, angle.shape
    )
    assert envelope_ratio(tone, RATE_HZ, 1.1) == pytest.approx(1.0, abs=0.03)


QUIET = [  # ambient modes of a grid with P-class PMUs (0.1 deg, 1 mHz noise)
    SyntheticMode(0.35, 10.0, 0.2, (1.0, 0.8, -0.7, -1.0)),
    SyntheticMode(0.9, 12.0, 0.1, (0.2, -1.0, 0.6, 0.1)),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sustained_oscillation_starting_is_a_forced_oscillation_within_10_s_at_its_largest_pmu(seed: int) -> None:
    rng = np.random.default_rng(seed)
    _, angle, frequency = ambient(QUIET, 60.0, RATE_HZ, rng, angle_noise_deg=0.1, frequency_noise_hz=0.001)
    t = np.arange(angle.shape[0]) / RATE_HZ
    on = t >= 40.0
    # The grid's response to a periodic injection builds up over its modes' time constants (~1 s).
    wave = 2.0 * (1.0 - np.exp(-(t[on] - 40.0))) * np.sin(2 * np.pi * 1.1 * (t[on] - 40.0))
    weights = np.array([0.3, 0.2, 1.0, 0.6])  # largest at PMU 2
    angle[on] += np.outer(wave, weights)
    frequency[on] += np.outer(np.gradient(wave, 1.0 / RATE_HZ) / 360.0, weights)
    _, found = run_monitor(stack_channels(angle, frequency), 4)
    (forced,) = raised(found, DetectionKind.FORCED_OSCILLATION)
    assert forced.quantities["frequency_hz"] == pytest.approx(1.1, rel=0.02)
    assert forced.quantities["source_pmu"] == 2.0
    assert forced.detected_time_s - 40.0 <= 10.0
    assert raised(found, DetectionKind.POORLY_DAMPED_OSCILLATION) == []


def test_islands_drifting_apart_raise_no_oscillation() -> None:
    _, angle, frequency = ambient(WELL_DAMPED, 60.0, RATE_HZ, np.random.default_rng(5))
    t = np.arange(angle.shape[0]) / RATE_HZ
    apart_hz = np.where(t >= 40.0, 0.3 * (1.0 - np.exp(-(t - 40.0) / 2.0)), 0.0)  # island 2-3 speeds up
    angle[:, 2:] += np.cumsum(360.0 * apart_hz / RATE_HZ)[:, None]
    frequency[:, 2:] += apart_hz[:, None]
    _, found = run_monitor(stack_channels(angle, frequency), 4)
    assert found == []
