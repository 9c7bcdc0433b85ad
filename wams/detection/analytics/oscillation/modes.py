"""Oscillation modes and their alarm levels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wams.detection.analytics.types import FloatArray, Severity


@dataclass(frozen=True)
class DampingLevels:
    """Damping below warning_pct warns, below alarm_pct alarms."""

    warning_pct: float = 5.0
    alarm_pct: float = 3.0
    hysteresis_pct: float = 1.0

    def severity(self, damping_pct: float) -> Severity:
        """Return the severity of a mode with this damping."""
        if damping_pct < self.alarm_pct:
            return Severity.ALARM
        if damping_pct < self.warning_pct:
            return Severity.WARNING
        return Severity.INFO


@dataclass(frozen=True, slots=True)
class Mode:
    """One oscillation mode seen in n_channel signals.

    amplitudes (n_channel,) are the initial amplitudes (ringdown) or the relative participation
    (ambient) in the signals' unit; phases_deg (n_channel,) are relative to the channel with the
    largest amplitude, so channels near 0 deg swing together and channels near 180 deg swing
    against them.
    """

    frequency_hz: float
    damping_pct: float
    amplitudes: FloatArray
    phases_deg: FloatArray
    energy_fraction: float  # share of the fitted oscillatory energy

    @property
    def amplitude(self) -> float:
        """Return the largest channel amplitude."""
        return float(np.max(self.amplitudes)) if self.amplitudes.size else 0.0

    @property
    def reference_channel(self) -> int:
        """Return the channel with the largest amplitude."""
        return int(np.argmax(self.amplitudes)) if self.amplitudes.size else -1

    def groups(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return (channels swinging with the reference, channels swinging against it)."""
        relative = self.amplitudes / max(self.amplitude, 1e-300)
        significant = relative >= 0.1
        together = significant & (np.abs(self.phases_deg) <= 90.0)
        against = significant & (np.abs(self.phases_deg) > 90.0)
        return tuple(int(i) for i in np.flatnonzero(together)), tuple(int(i) for i in np.flatnonzero(against))

    def to_dict(self, channel_names: Sequence[str] | None = None) -> dict[str, object]:
        """Return a JSON-ready dict with the mode shape per channel."""
        names = list(channel_names) if channel_names is not None else [str(i) for i in range(self.amplitudes.size)]
        peak = max(self.amplitude, 1e-300)
        together, against = self.groups()
        return {
            "frequency_hz": round(self.frequency_hz, 6),
            "damping_pct": round(self.damping_pct, 4),
            "amplitude": float(self.amplitude),
            "energy_fraction": round(self.energy_fraction, 4),
            "shape": [
                {
                    "channel": names[i],
                    "amplitude": float(self.amplitudes[i]),
                    "relative_magnitude": round(float(self.amplitudes[i] / peak), 4),
                    "phase_deg": round(float(self.phases_deg[i]), 2),
                }
                for i in range(self.amplitudes.size)
            ],
            "swing_together": [names[i] for i in together],
            "swing_against": [names[i] for i in against],
        }
