"""Measurement noise bounded by IEEE C37.118.1 steady-state limits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wams.simulator.engine.trajectory import ComplexArray, FloatArray

#: C37.118.1-2011 steady-state limits this noise stays well inside.
TVE_LIMIT = 0.01
FREQUENCY_ERROR_LIMIT_HZ = 0.005
ROCOF_ERROR_LIMIT_HZ_PER_S = 0.01


@dataclass
class MeasurementNoise:
    """Add Gaussian errors, clipped at 3 sd, with every sd a fraction of the standard's limits."""

    tve_sd: float = 0.001  #: relative error of each phasor component (1 sd); 3 sd gives TVE < 0.43 %
    frequency_sd_hz: float = 0.001  #: 3 sd = 0.003 Hz < 0.005 Hz
    rocof_sd_hz_per_s: float = 0.002  #: 3 sd = 0.006 Hz/s < 0.01 Hz/s
    seed: int | None = None

    def __post_init__(self) -> None:
        """Check the settings keep errors inside the limits and seed the generator."""
        if 3.0 * self.tve_sd * np.sqrt(2.0) > TVE_LIMIT:
            raise ValueError("phasor noise could exceed TVE 1 %")
        if 3.0 * self.frequency_sd_hz > FREQUENCY_ERROR_LIMIT_HZ:
            raise ValueError("frequency noise could exceed 0.005 Hz")
        if 3.0 * self.rocof_sd_hz_per_s > ROCOF_ERROR_LIMIT_HZ_PER_S:
            raise ValueError("ROCOF noise could exceed 0.01 Hz/s")
        self.rng = np.random.default_rng(self.seed)

    def _bounded(self, shape: tuple[int, ...], sd: float) -> FloatArray:
        return np.clip(self.rng.standard_normal(shape), -3.0, 3.0) * sd

    def phasors(self, values: ComplexArray) -> ComplexArray:
        """Return phasors (any shape) with relative complex errors of TVE well below 1 %."""
        shape = np.shape(values)
        rel = self._bounded(shape, self.tve_sd) + 1j * self._bounded(shape, self.tve_sd)
        return np.asarray(values * (1.0 + rel), dtype=np.complex128)

    def frequency_hz(self, values: FloatArray) -> FloatArray:
        """Return frequencies (any shape) with errors below 0.005 Hz."""
        return np.asarray(values + self._bounded(np.shape(values), self.frequency_sd_hz), dtype=np.float64)

    def rocof_hz_per_s(self, values: FloatArray) -> FloatArray:
        """Return ROCOF values (any shape) with errors below 0.01 Hz/s."""
        return np.asarray(values + self._bounded(np.shape(values), self.rocof_sd_hz_per_s), dtype=np.float64)
