"""Ringdown mode estimation with the multichannel matrix pencil method.

The signals are sums of damped sinusoids sharing poles z_k = exp(s_k dt).  Stacking the Hankel
matrices of every channel, the leading right singular vectors span the signal subspace; the
shift between their first and last rows gives the poles, and a least-squares fit of the
Vandermonde matrix gives each channel's complex amplitude (mode shape).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal as sps

from wams.detection.analytics.oscillation.modes import Mode
from wams.detection.analytics.types import FloatArray

ComplexArray = np.ndarray


@dataclass(frozen=True)
class PencilConfig:
    """Band, model order and preprocessing of the mode estimators."""

    min_frequency_hz: float = 0.05
    max_frequency_hz: float = 3.0
    analysis_rate_hz: float = 10.0  # signals are low-pass filtered and decimated to about this rate
    max_order: int = 24  # largest number of poles kept from the SVD
    singular_value_ratio: float = 3.0  # signal singular values stand this far above the noise floor
    pencil_fraction: float = 1.0 / 3.0  # pencil parameter L as a fraction of the samples
    max_channels: int = 16  # more channels are reduced to this many principal components first
    min_energy_fraction: float = 0.02  # weaker modes are dropped as noise
    max_damping_pct: float = 40.0


@dataclass(frozen=True, slots=True)
class PoleFit:
    """Poles and complex amplitudes fitted to (n_time, n_channel) samples at rate_hz."""

    poles: ComplexArray  # (order,) discrete-time poles z
    residues: ComplexArray  # (order, n_channel) complex amplitudes at sample 0
    rate_hz: float


def fill_gaps(samples: FloatArray) -> FloatArray:
    """Return (n_time, n_channel) with nan gaps linearly interpolated per channel (all-nan -> 0)."""
    out = np.array(samples, dtype=np.float64, copy=True)
    index = np.arange(out.shape[0])
    for c in range(out.shape[1]):
        column = out[:, c]
        known = np.isfinite(column)
        if known.all():
            continue
        out[:, c] = np.interp(index, index[known], column[known]) if known.any() else 0.0
    return out


def decimate(samples: FloatArray, rate_hz: float, target_rate_hz: float) -> tuple[FloatArray, float]:
    """Low-pass (zero phase) and decimate (n_time, n_channel) samples to about target_rate_hz."""
    factor = int(rate_hz // target_rate_hz)
    if factor <= 1:
        return samples, rate_hz
    if samples.shape[0] < 3 * 20 * factor:
        # Too short for the FIR filter: average blocks of `factor` samples instead.
        n = samples.shape[0] // factor * factor
        return samples[:n].reshape(-1, factor, samples.shape[1]).mean(axis=1), rate_hz / factor
    filtered = sps.decimate(samples, factor, ftype="fir", axis=0, zero_phase=True)
    return np.asarray(filtered, dtype=np.float64), rate_hz / factor


def fit_poles(samples: FloatArray, rate_hz: float, config: PencilConfig) -> PoleFit:
    """Fit a common set of poles and per-channel residues to (n_time, n_channel) samples."""
    n_time, n_channel = samples.shape
    scale = np.std(samples, axis=0)
    scale[scale <= 0] = 1.0
    normalised = samples / scale
    if n_channel > config.max_channels:
        # Principal components carry every mode that matters in far fewer channels.
        u, s, _ = np.linalg.svd(normalised, full_matrices=False)
        normalised = u[:, : config.max_channels] * s[: config.max_channels]
    pencil = max(int(n_time * config.pencil_fraction), 4)
    # (n_channel * (n_time - pencil), pencil + 1) stacked Hankel matrix
    hankel = sliding_window_view(normalised, pencil + 1, axis=0).reshape(-1, pencil + 1)
    _, singular, vh = np.linalg.svd(hankel, full_matrices=False)
    order = choose_order(singular, config)
    v = vh[:order].conj().T  # (pencil + 1, order)
    poles = np.linalg.eigvals(np.linalg.pinv(v[:-1]) @ v[1:])
    vandermonde = poles[None, :] ** np.arange(n_time)[:, None]  # (n_time, order)
    residues, *_ = np.linalg.lstsq(vandermonde, samples.astype(np.complex128), rcond=None)
    return PoleFit(poles=poles, residues=residues, rate_hz=rate_hz)


def choose_order(singular: FloatArray, config: PencilConfig) -> int:
    """Count the singular values that stand above the noise floor (at least 2, at most max_order)."""
    tail = singular[min(config.max_order * 2, singular.size - 1) :]
    floor = float(np.median(tail)) if tail.size else 0.0
    above = int(np.count_nonzero(singular > config.singular_value_ratio * floor)) if floor > 0 else singular.size
    return int(np.clip(above, 2, min(config.max_order, singular.size - 1)))


def modes_from_fit(fit: PoleFit, n_time: int, scale: FloatArray, config: PencilConfig) -> list[Mode]:
    """Turn poles within the band into modes, strongest first, dropping weak ones.

    scale (n_channel,) weighs each channel's energy so that every channel counts alike.
    """
    dt_s = 1.0 / fit.rate_hz
    s_per_s = np.log(fit.poles.astype(np.complex128)) / dt_s
    frequency_hz = s_per_s.imag / (2.0 * np.pi)
    damping = -s_per_s.real / np.maximum(np.abs(s_per_s), 1e-300)
    in_band = (frequency_hz >= config.min_frequency_hz) & (frequency_hz <= config.max_frequency_hz)
    in_band &= damping * 100.0 <= config.max_damping_pct
    energy = np.array([_pole_energy(fit.poles[k], fit.residues[k] / scale, n_time) for k in range(fit.poles.size)])
    oscillatory = np.abs(frequency_hz) >= config.min_frequency_hz
    total = float(energy[oscillatory].sum()) or 1.0
    modes: list[Mode] = []
    for k in np.flatnonzero(in_band):
        fraction = 2.0 * energy[k] / total  # the conjugate pole carries the same energy
        if fraction < config.min_energy_fraction:
            continue
        residue = fit.residues[k]
        amplitudes = 2.0 * np.abs(residue)
        reference = int(np.argmax(amplitudes / scale))
        phases = np.angle(residue * np.conj(residue[reference]), deg=True)
        modes.append(
            Mode(
                frequency_hz=float(frequency_hz[k]),
                damping_pct=float(100.0 * damping[k]),
                amplitudes=amplitudes,
                phases_deg=phases,
                energy_fraction=min(fraction, 1.0),
            )
        )
    modes.sort(key=lambda m: -m.energy_fraction)
    return modes


def _pole_energy(pole: complex, residue: ComplexArray, n_time: int) -> float:
    """Return the summed energy over n_time samples of one pole's term in every channel."""
    ratio = abs(pole) ** 2
    decay = n_time if abs(ratio - 1.0) < 1e-12 else (1.0 - ratio**n_time) / (1.0 - ratio)
    return float(np.sum(np.abs(residue) ** 2) * decay)


def estimate_ringdown_modes(samples: FloatArray, rate_hz: float, config: PencilConfig | None = None) -> list[Mode]:
    """Estimate modes of a ringdown in (n_time, n_channel) samples taken at rate_hz.

    The window should start just after the disturbance; the mean of each channel is removed
    and the mean and any slow drift are fitted as non-oscillatory poles.
    """
    config = config or PencilConfig()
    x = fill_gaps(np.asarray(samples, dtype=np.float64).reshape(samples.shape[0], -1))
    x = x - x.mean(axis=0)
    x, analysis_rate_hz = decimate(x, rate_hz, config.analysis_rate_hz)
    if x.shape[0] < 12:
        return []
    scale = np.std(x, axis=0)
    scale[scale <= 0] = 1.0
    fit = fit_poles(x, analysis_rate_hz, config)
    return modes_from_fit(fit, x.shape[0], scale, config)
