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
    noise_margin: float = 1.25  # signal singular values stand this far above the noise edge
    over_order: int = 4  # poles added beyond the signal count to absorb noise
    default_order: int = 12  # used when the noise level is unknown (correlation functions)
    pencil_fraction: float = 0.5  # pencil parameter L as a fraction of the samples
    max_channels: int = 16  # more channels are reduced to this many principal components first
    min_energy_fraction: float = 0.02  # weaker modes are dropped as noise
    max_damping_pct: float = 40.0
    decay_constants: float = 5.0  # refit each mode over this many decay time constants...
    min_cycles: float = 4.0  # ...but over at least this many cycles
    min_samples: int = 60  # short windows are analysed at a higher rate to keep this many samples


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


def fit_poles(
    samples: FloatArray, rate_hz: float, weight: FloatArray, config: PencilConfig, noise_std: float | None = None
) -> PoleFit:
    """Fit common poles and per-channel residues to (n_time, n_channel) samples.

    weight (n_channel,) divides each channel before the subspace step; noise_std is then the
    white-noise std of every weighted channel, if known, and sets the model order.
    """
    n_time, n_channel = samples.shape
    normalised = samples / weight
    if n_channel > config.max_channels:
        # Principal components carry every mode that matters in far fewer channels.
        u, s, _ = np.linalg.svd(normalised, full_matrices=False)
        normalised = u[:, : config.max_channels] * s[: config.max_channels]
    pencil = max(int(n_time * config.pencil_fraction), 4)
    # (n_channel * (n_time - pencil), pencil + 1) stacked Hankel matrix
    hankel = sliding_window_view(normalised, pencil + 1, axis=0).reshape(-1, pencil + 1)
    singular, vh = right_singular(hankel)
    if noise_std is None:
        order = min(config.default_order, singular.size - 1)
    else:
        rows, cols = hankel.shape
        order = choose_order(singular, noise_std * (np.sqrt(rows) + np.sqrt(cols)), config)
    v = vh[:order].conj().T  # (pencil + 1, order)
    poles = np.linalg.eigvals(np.linalg.pinv(v[:-1]) @ v[1:])
    # Poles growing a millionfold over the window, or dead at once, are numerical debris that
    # would swamp the Vandermonde fit.
    growth = n_time * np.log(np.maximum(np.abs(poles), 1e-300))
    poles = poles[(growth < np.log(1e6)) & (np.abs(poles) > 1e-6)]
    vandermonde = poles[None, :] ** np.arange(n_time)[:, None]  # (n_time, order)
    residues, *_ = np.linalg.lstsq(vandermonde, samples.astype(np.complex128), rcond=None)
    return PoleFit(poles=poles, residues=residues, rate_hz=rate_hz)


def right_singular(matrix: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return the singular values and right singular vectors (rows) of a tall matrix.

    Through the eigenvectors of the small Gram matrix: far cheaper than an SVD of the tall
    matrix, and accurate enough for the leading subspace that the pencil needs.
    """
    eigenvalues, vectors = np.linalg.eigh(matrix.T @ matrix)
    order = np.argsort(eigenvalues)[::-1]
    return np.sqrt(np.maximum(eigenvalues[order], 0.0)), vectors[:, order].T


def detrend_linear(samples: FloatArray) -> FloatArray:
    """Remove each channel's least-squares line from (n_time, n_channel) samples."""
    n_time = samples.shape[0]
    ramp = np.arange(n_time, dtype=np.float64) - (n_time - 1) / 2.0
    centred = samples - samples.mean(axis=0)
    slope = ramp @ centred / max(float(ramp @ ramp), 1e-300)
    return np.asarray(centred - np.outer(ramp, slope), dtype=np.float64)


def choose_order(singular: FloatArray, noise_edge: float, config: PencilConfig) -> int:
    """Return the count of singular values above the noise edge plus over_order, within bounds.

    noise_edge is the largest singular value that white noise alone would give a Hankel matrix
    of this shape: std * (sqrt(rows) + sqrt(cols)).
    """
    signal = int(np.count_nonzero(singular > config.noise_margin * noise_edge))
    return int(np.clip(signal + config.over_order, 2, min(config.max_order, singular.size - 1)))


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
        reference = int(np.argmax(amplitudes / scale))  # the channel that sees it best
        phases = np.angle(residue * np.conj(residue[reference]), deg=True)
        modes.append(
            Mode(
                frequency_hz=float(frequency_hz[k]),
                damping_pct=float(100.0 * damping[k]),
                amplitudes=amplitudes,
                phases_deg=phases,
                energy_fraction=min(fraction, 1.0),
                reference_channel=reference,
            )
        )
    modes.sort(key=lambda m: -m.energy_fraction)
    return modes


def _pole_energy(pole: complex, residue: ComplexArray, n_time: int) -> float:
    """Return the summed energy over n_time samples of one pole's term in every channel."""
    ratio = abs(pole) ** 2
    decay = n_time if abs(ratio - 1.0) < 1e-12 else (1.0 - ratio**n_time) / (1.0 - ratio)
    return float(np.sum(np.abs(residue) ** 2) * decay)


def noise_levels(samples: FloatArray) -> FloatArray:
    """Estimate the white-noise std of each channel of (n_time, n_channel) from second differences.

    Modes below a few hertz barely change the second difference at PMU rates, so its robust
    spread (median absolute deviation) is set by the measurement noise: var(d2) = 6 var(noise).
    """
    d2 = np.diff(samples, n=2, axis=0)
    mad = np.median(np.abs(d2 - np.median(d2, axis=0)), axis=0)
    noise = 1.4826 * mad / np.sqrt(6.0)
    spread = np.std(samples, axis=0)
    return np.asarray(np.maximum(noise, 1e-6 * np.maximum(spread, 1e-300)), dtype=np.float64)


def estimate_ringdown_modes(samples: FloatArray, rate_hz: float, config: PencilConfig | None = None) -> list[Mode]:
    """Estimate modes of a ringdown in (n_time, n_channel) samples taken at rate_hz.

    The window should start just after the disturbance.  Channels are weighed by their noise
    level, so angle and frequency channels can be mixed.
    """
    config = config or PencilConfig()
    x = fill_gaps(np.asarray(samples, dtype=np.float64).reshape(samples.shape[0], -1))
    x = x - x.mean(axis=0)
    return estimate_modes(x, rate_hz, noise_levels(x), config, white_noise=True)


def estimate_modes(
    x: FloatArray, rate_hz: float, weight: FloatArray, config: PencilConfig, *, white_noise: bool
) -> list[Mode]:
    """Estimate the modes of decaying (n_time, n_channel) signals, each refitted on its own window.

    weight (n_channel,) divides each channel (its noise level when white_noise is True, which
    lets the noise set the model order).  Samples after a mode has died out carry only noise,
    so each strong mode is estimated again over a window matched to its decay.
    """
    modes = _estimate(x, rate_hz, weight, config, white_noise)
    duration_s = x.shape[0] / rate_hz
    refined: list[Mode] = []
    for mode in modes:
        window_s = matched_window_s(mode, config)
        if window_s < 0.8 * duration_s:
            n = int(window_s * rate_hz)
            part = x[:n] - x[:n].mean(axis=0) if white_noise else x[:n]
            again = _estimate(part, rate_hz, weight, config, white_noise)
            near = [m for m in again if abs(m.frequency_hz - mode.frequency_hz) < 0.1 * mode.frequency_hz]
            if near:
                mode = max(near, key=lambda m: m.energy_fraction)
        refined.append(mode)
    return refined


def matched_window_s(mode: Mode, config: PencilConfig) -> float:
    """Return the window over which a mode stays above the noise: decay_constants / sigma."""
    omega = 2.0 * np.pi * mode.frequency_hz
    zeta = min(max(mode.damping_pct / 100.0, 1e-6), 0.99)
    sigma_per_s = zeta * omega / np.sqrt(1.0 - zeta * zeta)
    return float(max(config.decay_constants / sigma_per_s, config.min_cycles / mode.frequency_hz))


def _estimate(x: FloatArray, rate_hz: float, weight: FloatArray, config: PencilConfig, white_noise: bool) -> list[Mode]:
    """Decimate, fit poles and return the in-band modes of (n_time, n_channel) samples."""
    duration_s = x.shape[0] / rate_hz
    target_rate_hz = max(config.analysis_rate_hz, config.min_samples / duration_s)
    decimated, analysis_rate_hz = decimate(x, rate_hz, target_rate_hz)
    if decimated.shape[0] < 12:
        return []
    # Weighted channels carry unit-std white noise; the low-pass filter of decimation keeps
    # 1/factor of its power.
    noise_std = float(np.sqrt(analysis_rate_hz / rate_hz)) if white_noise else None
    fit = fit_poles(decimated, analysis_rate_hz, weight, config, noise_std)
    return modes_from_fit(fit, decimated.shape[0], weight, config)
