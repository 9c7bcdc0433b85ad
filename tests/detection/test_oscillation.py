"""Mode estimation on synthetic ringdowns and ambient data with known modes, and the monitor's alarms."""

from __future__ import annotations

import numpy as np
import pytest

from wams.detection.analytics.oscillation import (
    OscillationMonitor,
    detect_forced_oscillations,
    estimate_ambient_modes,
    estimate_ringdown_modes,
)
from wams.detection.analytics.oscillation.modes import Mode
from wams.detection.analytics.synthetic import SyntheticMode, ambient, ringdown, stack_channels
from wams.detection.analytics.types import DetectionKind, DetectionPhase, Severity

RATE_HZ = 60.0
SHAPE = (1.0, -0.6, 0.4)  # PMU 0 swings against PMU 1


def nearest(modes: list[Mode], frequency_hz: float) -> Mode:
    """Return the estimated mode nearest a frequency."""
    assert modes, "no mode estimated"
    return min(modes, key=lambda m: abs(m.frequency_hz - frequency_hz))


@pytest.mark.parametrize("frequency_hz", [0.1, 0.25, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("damping_pct", [1.0, 5.0, 10.0, 15.0])
def test_ringdown_mode_within_1_percent_frequency_and_1_point_damping(frequency_hz: float, damping_pct: float) -> None:
    # A 10 deg ringdown with a second mode beside it, at C37.118.1 noise (0.57 deg, 0.005 Hz).
    other = SyntheticMode(1.3 if frequency_hz < 1.0 else 0.4, 8.0, 4.0, (0.3, 0.5, -1.0))
    modes = [SyntheticMode(frequency_hz, damping_pct, 10.0, SHAPE), other]
    _, angle, frequency = ringdown(modes, 30.0, RATE_HZ, np.random.default_rng(int(frequency_hz * 100 + damping_pct)))
    found = nearest(estimate_ringdown_modes(np.hstack([angle, frequency]), RATE_HZ), frequency_hz)
    assert found.frequency_hz == pytest.approx(frequency_hz, rel=0.01)
    assert found.damping_pct == pytest.approx(damping_pct, abs=1.0)


def test_noise_free_ringdown_is_recovered_exactly() -> None:
    modes = [SyntheticMode(0.37, 4.0, 5.0, SHAPE), SyntheticMode(1.1, 9.0, 2.0, (0.2, 1.0, -0.5))]
    _, angle, _ = ringdown(modes, 20.0, RATE_HZ, angle_noise_deg=0.0, frequency_noise_hz=0.0)
    found = estimate_ringdown_modes(angle, RATE_HZ)
    for mode in modes:
        est = nearest(found, mode.frequency_hz)
        assert est.frequency_hz == pytest.approx(mode.frequency_hz, rel=1e-4)
        assert est.damping_pct == pytest.approx(mode.damping_pct, abs=0.01)


def test_ringdown_mode_shape_tells_who_swings_against_whom() -> None:
    _, angle, _ = ringdown([SyntheticMode(0.6, 5.0, 8.0, SHAPE)], 20.0, RATE_HZ)
    mode = nearest(estimate_ringdown_modes(angle, RATE_HZ), 0.6)
    assert mode.reference_channel == 0
    assert mode.amplitude == pytest.approx(8.0, rel=0.05)
    np.testing.assert_allclose(mode.relative_magnitudes(), [1.0, 0.6, 0.4], atol=0.03)
    np.testing.assert_allclose(np.abs(mode.phases_deg), [0.0, 180.0, 0.0], atol=3.0)
    assert mode.groups() == ((0, 2), (1,))


def test_ambient_modes_are_estimated_from_ten_minutes_of_random_load_noise() -> None:
    modes = [
        SyntheticMode(0.35, 3.0, 1.0, (1.0, 0.8, -0.7, -1.0)),
        SyntheticMode(0.9, 12.0, 0.5, (0.2, -1.0, 0.6, 0.1)),
    ]
    _, angle, frequency = ambient(modes, 600.0, RATE_HZ, np.random.default_rng(11))
    found = estimate_ambient_modes(stack_channels(angle, frequency), RATE_HZ)
    est = nearest(found, 0.35)
    assert est.frequency_hz == pytest.approx(0.35, rel=0.02)
    assert est.damping_pct == pytest.approx(3.0, abs=1.5)  # ambient estimates scatter more than ringdowns
    together, against = est.groups([f"p{i}:angle_deg" for i in range(4)] + [f"p{i}:frequency_hz" for i in range(4)])
    assert set(together) | set(against) >= {0, 3}
    assert (0 in together) != (3 in together)  # PMUs 0 and 3 swing against each other


def run_monitor(angle: np.ndarray, frequency: np.ndarray, block_s: float = 1.0) -> tuple[OscillationMonitor, list]:
    """Feed a monitor one block at a time; return it and every detection."""
    values = stack_channels(angle, frequency)
    n_pmu = angle.shape[1]
    monitor = OscillationMonitor(
        RATE_HZ,
        values.shape[1],
        channel_pmu=list(range(n_pmu)) * 2,
        channel_names=[f"p{i}:angle_deg" for i in range(n_pmu)] + [f"p{i}:frequency_hz" for i in range(n_pmu)],
    )
    t = np.arange(values.shape[0]) / RATE_HZ
    step = int(block_s * RATE_HZ)
    found = []
    for begin in range(0, values.shape[0], step):
        found += monitor.update_block(t[begin : begin + step], values[begin : begin + step])
    return monitor, found


WELL_DAMPED = [
    SyntheticMode(0.35, 10.0, 1.0, (1.0, 0.8, -0.7, -1.0)),
    SyntheticMode(0.9, 12.0, 0.5, (0.2, -1.0, 0.6, 0.1)),
]


def test_ten_minutes_of_well_damped_ambient_data_raise_no_alarm() -> None:
    _, angle, frequency = ambient(WELL_DAMPED, 600.0, RATE_HZ, np.random.default_rng(21))
    monitor, found = run_monitor(angle, frequency)
    assert found == []
    assert sum(e.source == "ambient" for e in monitor.estimates) >= 10  # it did analyse


def test_ringdown_of_a_poorly_damped_mode_alarms_within_10_s() -> None:
    rng = np.random.default_rng(4)
    _, a1, f1 = ambient(WELL_DAMPED, 60.0, RATE_HZ, rng)
    _, a2, f2 = ringdown([SyntheticMode(0.5, 2.0, 8.0, (1.0, -0.8, 0.3, -0.5))], 40.0, RATE_HZ, rng)
    monitor, found = run_monitor(np.vstack([a1, a2]), np.vstack([f1, f2]))
    raised = [d for d in found if d.phase is DetectionPhase.RAISED]
    assert [d.kind for d in raised] == [DetectionKind.POORLY_DAMPED_OSCILLATION]
    (alarm,) = raised
    assert alarm.severity is Severity.ALARM  # 2% < 3%
    assert alarm.detected_time_s - 60.0 <= 10.0
    assert alarm.quantities["mode_frequency_hz"] == pytest.approx(0.5, rel=0.02)
    final = [e for e in monitor.estimates if e.source == "ringdown"]
    assert nearest([e.mode for e in final], 0.5).damping_pct == pytest.approx(2.0, abs=1.0)


def test_a_growing_burst_that_stops_after_5_s_is_not_a_poorly_damped_mode() -> None:
    """One ringdown window fitting a burst is no alarm: consecutive windows must agree (6, 9 and 20 s)."""
    rng = np.random.default_rng(5)
    _, a1, f1 = ambient(WELL_DAMPED, 100.0, RATE_HZ, rng)
    _, a3, f3 = ringdown([SyntheticMode(0.45, -5.0, 4.0, (1.0, -0.8, 0.3, -0.5))], 40.0, RATE_HZ, rng)
    burst = int(5 * RATE_HZ)
    a3[burst:], f3[burst:] = a1[: a3.shape[0] - burst], f1[: f3.shape[0] - burst]
    monitor, found = run_monitor(np.vstack([a1[:3600], a3]), np.vstack([f1[:3600], f3]))
    assert any(e.source.startswith("ringdown") for e in monitor.estimates)  # it was analysed as a ringdown
    assert [d for d in found if d.kind is DetectionKind.POORLY_DAMPED_OSCILLATION] == []


def test_a_ringdown_mode_is_believed_only_above_the_usual_noise_and_at_two_pmus() -> None:
    rng = np.random.default_rng(4)
    _, a1, f1 = ambient(WELL_DAMPED, 60.0, RATE_HZ, rng)
    monitor, _ = run_monitor(a1, f1)
    monitor.trigger_ringdown(60.0)  # as the live system does after a fast detector fired
    usual = monitor._usual_rms
    assert usual is not None and np.isfinite(usual).all()
    shape = np.array([1.0, 0.8, 0.3, 0.5] * 2)

    def mode(amplitude: float, shape: np.ndarray) -> Mode:
        return Mode(0.43, -21.6, amplitude * shape, np.zeros(shape.size), 0.9, reference_channel=0)

    assert monitor.credible(mode(10.0 * usual[0], shape))
    assert not monitor.credible(mode(0.5 * usual[0], shape))  # a fit to the noise
    alone = np.array([1.0, 0.01, 0.01, 0.01] * 2)
    assert not monitor.credible(mode(10.0 * usual[0], alone))  # one PMU: a gap filled or a bad channel


def test_poorly_damped_ambient_mode_alarms_after_confirmation() -> None:
    modes = [SyntheticMode(0.35, 2.0, 1.0, (1.0, 0.8, -0.7, -1.0)), WELL_DAMPED[1]]
    _, angle, frequency = ambient(modes, 420.0, RATE_HZ, np.random.default_rng(8))
    _, found = run_monitor(angle, frequency, block_s=5.0)
    alarms = [d for d in found if d.kind is DetectionKind.POORLY_DAMPED_OSCILLATION]
    assert len(alarms) == 1  # raised once, not once per analysis
    assert alarms[0].quantities["mode_frequency_hz"] == pytest.approx(0.35, rel=0.05)
    assert alarms[0].quantities["damping_pct"] < 5.0


def test_forced_oscillation_is_found_with_its_frequency_and_source() -> None:
    rng = np.random.default_rng(2)
    _, angle, frequency = ambient(WELL_DAMPED, 120.0, RATE_HZ, rng)
    t = np.arange(angle.shape[0]) / RATE_HZ
    tone = np.sin(2 * np.pi * 0.8 * t)
    angle = angle + np.outer(1.0 * tone, [0.2, 0.3, 1.0, 0.5])  # strongest at PMU 2
    frequency = frequency + np.outer(2 * np.pi * 0.8 / 360.0 * np.cos(2 * np.pi * 0.8 * t), [0.2, 0.3, 1.0, 0.5])
    found = detect_forced_oscillations(stack_channels(angle, frequency), RATE_HZ)
    (forced,) = found
    assert forced.frequency_hz == pytest.approx(0.8, abs=0.03)
    assert abs(forced.apparent_damping_pct) < 1.0
    assert forced.reference_channel % 4 == 2


def test_well_damped_ambient_data_has_no_forced_oscillation() -> None:
    for seed in range(3):
        _, angle, frequency = ambient(WELL_DAMPED, 120.0, RATE_HZ, np.random.default_rng(100 + seed))
        assert detect_forced_oscillations(stack_channels(angle, frequency), RATE_HZ) == []
