"""Helpers for simulator tests: a mode estimator independent of the engine."""

from __future__ import annotations

import numpy as np


def matrix_pencil_modes(signal: np.ndarray, dt_s: float, order: int) -> list[tuple[float, float]]:
    """Return (frequency_hz, damping_ratio) of the oscillatory modes in a uniformly sampled signal."""
    y = np.asarray(signal, dtype=np.float64)
    n = y.size
    pencil = n // 2
    hankel = np.array([y[i : i + pencil + 1] for i in range(n - pencil)])
    _u, _s, vh = np.linalg.svd(hankel, full_matrices=False)
    v = vh[:order].conj().T
    z = np.linalg.eigvals(np.linalg.pinv(v[:-1]) @ v[1:])
    lam = np.log(z.astype(np.complex128)) / dt_s
    return sorted((float(root.imag / (2 * np.pi)), float(-root.real / abs(root))) for root in lam if root.imag > 1e-6)


def resample(t_s: np.ndarray, values: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Return values linearly interpolated on a uniform grid of step `dt_s`."""
    grid = np.arange(t_s[0], t_s[-1], dt_s)
    return grid, np.interp(grid, t_s, values)
