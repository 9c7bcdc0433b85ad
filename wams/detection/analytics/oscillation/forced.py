"""Forced oscillation detection: sustained narrowband energy with near-zero apparent damping.

A forced oscillation (a cyclic load, a hunting controller) is a sinusoid added to the ambient
response: a spectral line standing far above the local noise floor, whose correlation does not
decay.  A lightly damped natural mode also makes a peak, but a wider one whose correlation
decays; the apparent damping tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy import signal as sps

from wams.detection.analytics.oscillation.ambient import AmbientConfig, band_amplitude, estimate_ambient_modes
from wams.detection.analytics.oscillation.modes import Mode
from wams.detection.analytics.oscillation.pencil import PencilConfig, detrend_linear, fill_gaps, noise_levels
from wams.detection.analytics.types import FloatArray


@dataclass(frozen=True)
class ForcedOscillationConfig:
    """Spectral and damping tests of a forced oscillation."""

    segment_s: float = 40.0  # Welch segment length: frequency resolution 1 / segment_s
    min_frequency_hz: float = 0.05
    max_frequency_hz: float = 4.0
    peak_ratio: float = 30.0  # peak PSD over the local median floor (14.8 dB)
    floor_half_width_hz: float = 0.5
    max_apparent_damping_pct: float = 1.0
    # A mode of a triggered (ringdown) analysis whose amplitude in the second half of the window
    # keeps at least this share of the first half, with apparent damping within
    # +-sustained_max_damping_pct, is sustained: a forced oscillation, found seconds after its
    # onset.  A 2.6 % mode at 0.64 Hz keeps about 0.75 over a 6 s window (0.8-0.95 under ambient
    # load noise, when short-window damping estimates scatter from 0 to 2.5 %); a forced
    # oscillation builds up over its first cycles, so it keeps 1 or more.
    min_envelope_ratio: float = 1.0
    sustained_max_damping_pct: float = 2.0
    # A tone next to a natural mode must not be merged into it.
    damping: AmbientConfig = field(
        default_factory=lambda: AmbientConfig(merge_fraction=0.02, pencil=PencilConfig(min_energy_fraction=0.02))
    )


@dataclass(frozen=True, slots=True)
class ForcedOscillation:
    """A sustained narrowband oscillation; amplitudes and phases per channel (n_channel,)."""

    frequency_hz: float
    peak_to_floor_db: float
    apparent_damping_pct: float
    amplitudes: FloatArray  # sinusoid amplitude in each channel's unit
    phases_deg: FloatArray  # relative to the reference channel
    reference_channel: int  # the channel where it stands out most: a first hint at the source

    @property
    def amplitude(self) -> float:
        """Return the amplitude in the reference channel."""
        return float(self.amplitudes[self.reference_channel])

    def to_dict(self, channel_names: list[str] | None = None) -> dict[str, object]:
        """Return a JSON-ready dict."""
        names = channel_names or [str(i) for i in range(self.amplitudes.size)]
        return {
            "frequency_hz": round(self.frequency_hz, 5),
            "peak_to_floor_db": round(self.peak_to_floor_db, 2),
            "apparent_damping_pct": round(self.apparent_damping_pct, 3),
            "amplitude": self.amplitude,
            "amplitude_channel": names[self.reference_channel],
            "shape": [
                {
                    "channel": names[i],
                    "amplitude": float(self.amplitudes[i]),
                    "phase_deg": round(float(self.phases_deg[i]), 2),
                }
                for i in range(self.amplitudes.size)
            ],
        }


def narrowband_peaks(samples: FloatArray, rate_hz: float, config: ForcedOscillationConfig) -> list[tuple[float, float]]:
    """Return (frequency_hz, peak-to-floor ratio) of spectral lines in (n_time, n_channel) samples.

    Each channel's PSD is divided by its own local median floor, so every channel counts alike
    whatever its unit, and the largest ratio over channels is kept: a forced oscillation is
    often seen by a few PMUs only.
    """
    n_segment = min(int(config.segment_s * rate_hz), samples.shape[0])
    freq_hz, psd = sps.welch(samples, fs=rate_hz, nperseg=n_segment, axis=0, detrend="linear")
    bin_hz = float(freq_hz[1] - freq_hz[0])
    size = max(int(2 * config.floor_half_width_hz / bin_hz) | 1, 3)
    floor = ndimage.median_filter(psd, size=(size, 1), mode="nearest")
    ratio = np.max(psd / np.maximum(floor, 1e-300), axis=1)
    band = (freq_hz >= config.min_frequency_hz) & (freq_hz <= config.max_frequency_hz)
    peaks, _ = sps.find_peaks(np.where(band, ratio, 0.0), height=config.peak_ratio)
    return [(float(freq_hz[k]), float(ratio[k])) for k in peaks]


def detect_forced_oscillations(
    samples: FloatArray, rate_hz: float, config: ForcedOscillationConfig | None = None
) -> list[ForcedOscillation]:
    """Find forced oscillations in (n_time, n_channel) samples at rate_hz (a window of a minute or so)."""
    config = config or ForcedOscillationConfig()
    x = detrend_linear(fill_gaps(np.asarray(samples, dtype=np.float64).reshape(samples.shape[0], -1)))
    found: list[ForcedOscillation] = []
    peaks = narrowband_peaks(x, rate_hz, config)
    modes = estimate_ambient_modes(x, rate_hz, config.damping) if peaks else []
    for frequency_hz, ratio in peaks:
        half_width_hz = max(0.1, 0.2 * frequency_hz)
        low_hz = max(frequency_hz - half_width_hz, 0.01)
        high_hz = min(frequency_hz + half_width_hz, 0.45 * rate_hz)
        sos = sps.butter(4, [low_hz, high_hz], btype="bandpass", fs=rate_hz, output="sos")
        narrow = sps.sosfiltfilt(sos, x, axis=0)
        near = [
            m for m in modes if abs(m.frequency_hz - frequency_hz) <= max(2.0 / config.segment_s, 0.05 * frequency_hz)
        ]
        damping_pct = max(near, key=lambda m: m.energy_fraction).damping_pct if near else float("nan")
        if not (damping_pct <= config.max_apparent_damping_pct):
            continue
        amplitudes = np.array([band_amplitude(x[:, c], rate_hz, frequency_hz, 0.0) for c in range(x.shape[1])])
        noise = np.std(x - narrow, axis=0)
        reference = int(np.argmax(amplitudes / np.maximum(noise, 1e-300)))
        phases = _phases_deg(narrow, reference)
        found.append(
            ForcedOscillation(
                frequency_hz=frequency_hz,
                peak_to_floor_db=float(10.0 * np.log10(ratio)),
                apparent_damping_pct=float(damping_pct),
                amplitudes=amplitudes,
                phases_deg=phases,
                reference_channel=reference,
            )
        )
    return found


def envelope_ratio(samples: FloatArray, rate_hz: float, frequency_hz: float) -> float:
    """Return the amplitude at frequency_hz in the second half of (n_time, n_channel) samples over the first half.

    Each half of each channel is fitted by least squares with a cosine and a sine at the
    frequency plus a line; channels are weighed by their noise level and summed in quadrature.
    A ringdown gives exp(-sigma T / 2) over a window of T seconds, a sustained oscillation about
    1 (or more while it builds up).
    """
    x = fill_gaps(np.asarray(samples, dtype=np.float64).reshape(samples.shape[0], -1))
    x = x / noise_levels(x)
    half = x.shape[0] // 2
    if half < 4:
        return float("nan")
    energies = []
    for part in (x[:half], x[half : 2 * half]):
        t_s = np.arange(part.shape[0]) / rate_hz
        phase = 2.0 * np.pi * frequency_hz * t_s
        design = np.column_stack([np.cos(phase), np.sin(phase), np.ones_like(t_s), t_s - t_s.mean()])
        coefficients, *_ = np.linalg.lstsq(design, part, rcond=None)  # (4, n_channel)
        energies.append(float(np.sum(coefficients[:2] ** 2)))
    return float(np.sqrt(energies[1] / max(energies[0], 1e-300)))


def is_sustained(mode: Mode, samples: FloatArray, rate_hz: float, config: ForcedOscillationConfig) -> bool:
    """Tell whether a mode fitted to a triggered window is a sustained oscillation rather than a ringdown."""
    if not abs(mode.damping_pct) <= config.sustained_max_damping_pct:
        return False
    return bool(envelope_ratio(samples, rate_hz, mode.frequency_hz) >= config.min_envelope_ratio)


def forced_from_mode(mode: Mode) -> ForcedOscillation:
    """Return a sustained mode as a forced oscillation (its spectral line was not measured: nan dB)."""
    return ForcedOscillation(
        frequency_hz=mode.frequency_hz,
        peak_to_floor_db=float("nan"),
        apparent_damping_pct=mode.damping_pct,
        amplitudes=mode.amplitudes,
        phases_deg=mode.phases_deg,
        reference_channel=mode.reference_channel,
    )


def _phases_deg(narrow: FloatArray, reference: int) -> FloatArray:
    """Return each channel's phase relative to the reference, from narrowband analytic signals."""
    analytic = sps.hilbert(narrow, axis=0)
    cross = np.sum(analytic * np.conj(analytic[:, reference])[:, None], axis=0)
    return np.asarray(np.angle(cross, deg=True), dtype=np.float64)
