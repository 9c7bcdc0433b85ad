"""Ambient mode estimation: covariance-driven subspace identification.

Under random load changes the grid is a linear system driven by (nearly) white noise, and the
correlation function of its response, R(k) = E[x(n + k) x_ref(n)], decays as a sum of damped
sinusoids with the system's own poles; the residues across channels are the mode shape.  So
the correlation functions, from lag 1 on (measurement noise only touches lag 0), go through
the same matrix pencil as a ringdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import signal as sps

from wams.detection.analytics.oscillation.modes import Mode
from wams.detection.analytics.oscillation.pencil import (
    PencilConfig,
    decimate,
    detrend_linear,
    estimate_modes,
    fill_gaps,
)
from wams.detection.analytics.types import FloatArray


@dataclass(frozen=True)
class AmbientConfig:
    """Correlation lags, references and the pencil settings used on them."""

    max_lag_s: float = 20.0
    n_references: int = 3  # principal components used as correlation references
    lag_window_per_s: float = 0.3  # exponential lag window; its decay is added back to each pole
    merge_fraction: float = 0.15  # of modes closer than this share of frequency, keep the strongest
    pencil: PencilConfig = field(default_factory=lambda: PencilConfig(min_energy_fraction=0.05))


def correlation_functions(x: FloatArray, n_lags: int, references: FloatArray) -> FloatArray:
    """Return unbiased cross-correlations of (n_time, n_channel) x with (n_time, n_ref) references.

    The result has shape (n_lags, n_channel * n_ref), lags 1..n_lags, column c * n_ref + r.
    """
    n_time = x.shape[0]
    size = int(2 ** np.ceil(np.log2(2 * n_time)))
    fx = np.fft.rfft(x, size, axis=0)
    fr = np.fft.rfft(references, size, axis=0)
    cross = np.fft.irfft(fx[:, :, None] * np.conj(fr[:, None, :]), size, axis=0)[1 : n_lags + 1]
    counts = (n_time - np.arange(1, n_lags + 1)).astype(np.float64)
    return np.asarray(cross.reshape(n_lags, -1) / counts[:, None], dtype=np.float64)


def estimate_ambient_modes(samples: FloatArray, rate_hz: float, config: AmbientConfig | None = None) -> list[Mode]:
    """Estimate modes from ambient (n_time, n_channel) samples at rate_hz (minutes of data).

    Mode amplitudes are the sinusoid-equivalent amplitudes (sqrt(2) x RMS) of each mode in each
    channel; phases are relative to the channel that sees the mode best.
    """
    config = config or AmbientConfig()
    pencil = config.pencil
    x = fill_gaps(np.asarray(samples, dtype=np.float64).reshape(samples.shape[0], -1))
    x = detrend_linear(x)
    x, analysis_rate_hz = decimate(x, rate_hz, pencil.analysis_rate_hz)
    n_time, n_channel = x.shape
    n_lags = min(int(config.max_lag_s * analysis_rate_hz), n_time // 4)
    if n_lags < 12:
        return []
    scale = np.std(x, axis=0)
    scale[scale <= 0] = 1.0
    normalised = x / scale
    u, s, _ = np.linalg.svd(normalised, full_matrices=False)
    n_ref = min(config.n_references, n_channel)
    references = u[:, :n_ref] * s[:n_ref] / np.sqrt(n_time)
    correlations = correlation_functions(normalised, n_lags, references)  # (n_lags, n_channel * n_ref)
    # Long lags of an estimated correlation are mostly estimation noise that the pencil would
    # fit as undamped tones; an exponential window damps them, and moves every pole by exactly
    # -lag_window_per_s, which is corrected below.
    lags_s = np.arange(1, n_lags + 1) / analysis_rate_hz
    correlations = correlations * np.exp(-config.lag_window_per_s * lags_s)[:, None]
    weight = np.std(correlations, axis=0)
    weight[weight <= 0] = 1.0
    found = estimate_modes(correlations, analysis_rate_hz, weight, pencil, white_noise=False)
    found = [_unwindow(mode, config.lag_window_per_s) for mode in found]
    return [_channel_mode(mode, x, analysis_rate_hz, n_ref, scale) for mode in merge_close_modes(found, config)]


def _unwindow(mode: Mode, lag_window_per_s: float) -> Mode:
    """Remove the decay that the exponential lag window added to a mode's pole."""
    omega_d = 2.0 * np.pi * mode.frequency_hz
    zeta = mode.damping_pct / 100.0
    sigma_per_s = zeta * omega_d / np.sqrt(max(1.0 - zeta * zeta, 1e-12)) - lag_window_per_s
    damping_pct = 100.0 * sigma_per_s / np.hypot(sigma_per_s, omega_d)
    return replace(mode, damping_pct=float(damping_pct))


def merge_close_modes(modes: list[Mode], config: AmbientConfig) -> list[Mode]:
    """Keep, among modes within merge_fraction of each other in frequency, the strongest one."""
    kept: list[Mode] = []
    for mode in sorted(modes, key=lambda m: -m.energy_fraction):
        if all(abs(mode.frequency_hz - k.frequency_hz) > config.merge_fraction * k.frequency_hz for k in kept):
            kept.append(mode)
    return kept


def _channel_mode(mode: Mode, x: FloatArray, rate_hz: float, n_ref: int, scale: FloatArray) -> Mode:
    """Fold per-(channel, reference) residues into a per-channel shape with amplitudes in units.

    The residue of R(c, r) is phi_c * gamma_r, so over channels it follows the mode shape phi_c.
    The amplitude level comes from the reference channel band-passed around the mode
    (sinusoid-equivalent: sqrt(2) x RMS).
    """
    n_channel = x.shape[1]
    residues = mode.amplitudes.reshape(n_channel, n_ref)
    phases = mode.phases_deg.reshape(n_channel, n_ref)
    best_ref = int(np.argmax(np.sum(residues**2, axis=0)))
    shape = residues[:, best_ref] * scale  # in channel units, up to one factor
    reference = int(np.argmax(residues[:, best_ref]))
    relative_phase = (phases[:, best_ref] - phases[reference, best_ref] + 180.0) % 360.0 - 180.0
    level = band_amplitude(x[:, reference], rate_hz, mode.frequency_hz, mode.damping_pct)
    amplitudes = shape / max(float(shape[reference]), 1e-300) * level
    return Mode(
        frequency_hz=mode.frequency_hz,
        damping_pct=mode.damping_pct,
        amplitudes=np.asarray(amplitudes, dtype=np.float64),
        phases_deg=np.asarray(relative_phase, dtype=np.float64),
        energy_fraction=mode.energy_fraction,
        reference_channel=reference,
    )


def band_amplitude(x: FloatArray, rate_hz: float, frequency_hz: float, damping_pct: float) -> float:
    """Return sqrt(2) x RMS of (n_time,) x band-passed around a mode (half-power band, at least +-10%)."""
    half_width = max(0.1, 2.0 * abs(damping_pct) / 100.0) * frequency_hz
    low_hz = max(frequency_hz - half_width, 1e-3)
    high_hz = min(frequency_hz + half_width, 0.45 * rate_hz)
    if high_hz <= low_hz:
        return float("nan")
    sos = sps.butter(2, [low_hz, high_hz], btype="bandpass", fs=rate_hz, output="sos")
    return float(np.sqrt(2.0) * np.std(sps.sosfiltfilt(sos, x)))
