"""Synthetic PMU signals with known answers, for tests and benchmarks.

Angles carry the oscillation; frequency is nominal plus the angle's derivative / 360, so both
agree as they do in a real PMU.  Noise is at IEEE C37.118.1 steady-state limits: 1% TVE is
about 0.57 deg of angle, and 0.005 Hz of frequency error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from wams.detection.analytics.types import FloatArray

ANGLE_NOISE_DEG = 0.57
FREQUENCY_NOISE_HZ = 0.005


@dataclass(frozen=True)
class SyntheticMode:
    """A mode: damped frequency, damping ratio (%), amplitude (deg) and shape over PMUs."""

    frequency_hz: float
    damping_pct: float
    amplitude_deg: float
    shape: Sequence[float]
    phase_rad: float = 0.3

    def pole_per_s(self) -> complex:
        """Return the continuous-time pole s = -sigma + j omega_d."""
        omega_d = 2.0 * np.pi * self.frequency_hz
        zeta = self.damping_pct / 100.0
        return complex(-zeta * omega_d / np.sqrt(1.0 - zeta * zeta), omega_d)


def ringdown(
    modes: Sequence[SyntheticMode],
    duration_s: float,
    rate_hz: float = 60.0,
    rng: np.random.Generator | None = None,
    *,
    nominal_hz: float = 60.0,
    angle_noise_deg: float = ANGLE_NOISE_DEG,
    frequency_noise_hz: float = FREQUENCY_NOISE_HZ,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return t_s (n_time,), angle_deg and frequency_hz (n_time, n_pmu) of a noisy ringdown."""
    rng = rng or np.random.default_rng(0)
    t_s = np.arange(round(duration_s * rate_hz)) / rate_hz
    n_pmu = len(modes[0].shape)
    angle = np.zeros((t_s.size, n_pmu))
    rate = np.zeros((t_s.size, n_pmu))  # d(angle)/dt in deg/s
    for mode in modes:
        s = mode.pole_per_s()
        envelope = mode.amplitude_deg * np.exp(s.real * t_s)
        phase = s.imag * t_s + mode.phase_rad
        shape = np.asarray(mode.shape, dtype=np.float64)
        angle += np.outer(envelope * np.cos(phase), shape)
        rate += np.outer(envelope * (s.real * np.cos(phase) - s.imag * np.sin(phase)), shape)
    angle_deg = angle + rng.normal(0.0, angle_noise_deg, angle.shape)
    frequency_hz = nominal_hz + rate / 360.0 + rng.normal(0.0, frequency_noise_hz, rate.shape)
    return t_s, angle_deg, frequency_hz


def ambient(
    modes: Sequence[SyntheticMode],
    duration_s: float,
    rate_hz: float = 60.0,
    rng: np.random.Generator | None = None,
    *,
    nominal_hz: float = 60.0,
    angle_noise_deg: float = ANGLE_NOISE_DEG,
    frequency_noise_hz: float = FREQUENCY_NOISE_HZ,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return t_s, angle_deg and frequency_hz of each mode driven by random load noise.

    Each mode is the second-order system with the mode's poles driven by white noise (an AR(2)
    process); amplitude_deg sets its standard deviation in the channel with shape 1.
    """
    rng = rng or np.random.default_rng(0)
    n_time = round(duration_s * rate_hz)
    t_s = np.arange(n_time) / rate_hz
    n_pmu = len(modes[0].shape)
    angle = np.zeros((n_time, n_pmu))
    for mode in modes:
        pole = np.exp(mode.pole_per_s() / rate_hz)
        response = sps.lfilter([1.0], [1.0, -2.0 * pole.real, abs(pole) ** 2], rng.normal(size=n_time))
        response *= mode.amplitude_deg / np.std(response)
        angle += np.outer(response, np.asarray(mode.shape, dtype=np.float64))
    rate = np.asarray(np.gradient(angle, 1.0 / rate_hz, axis=0), dtype=np.float64)
    angle_deg = angle + rng.normal(0.0, angle_noise_deg, angle.shape)
    frequency_hz = nominal_hz + rate / 360.0 + rng.normal(0.0, frequency_noise_hz, rate.shape)
    return t_s, angle_deg, frequency_hz


def stack_channels(angle_deg: FloatArray, frequency_hz: FloatArray) -> FloatArray:
    """Return angles relative to their mean over PMUs beside frequencies: (n_time, 2 n_pmu)."""
    relative = angle_deg - angle_deg.mean(axis=1, keepdims=True)
    return np.hstack([relative, frequency_hz])


def shape_of(values: npt.ArrayLike) -> tuple[float, ...]:
    """Return a mode shape as a tuple of floats."""
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64))
