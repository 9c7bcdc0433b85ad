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
    (ambient), each in its channel's unit; phases_deg (n_channel,) are relative to the reference
    channel, so channels near 0 deg swing with it and channels near 180 deg swing against it.
    """

    frequency_hz: float
    damping_pct: float
    amplitudes: FloatArray
    phases_deg: FloatArray
    energy_fraction: float  # share of the fitted oscillatory energy
    reference_channel: int = 0  # the channel that sees the mode best (largest amplitude over noise)

    @property
    def amplitude(self) -> float:
        """Return the amplitude in the reference channel, in that channel's unit."""
        return float(self.amplitudes[self.reference_channel]) if self.amplitudes.size else 0.0

    def relative_magnitudes(self, channel_names: Sequence[str] | None = None) -> FloatArray:
        """Return (n_channel,) amplitudes relative to the largest channel of the same quantity.

        Channel names `<pmu>:<quantity>` group the channels by quantity; without names all
        channels are taken to share one unit.
        """
        quantities = [n.rsplit(":", 1)[-1] for n in channel_names] if channel_names else [""] * self.amplitudes.size
        relative = np.zeros_like(self.amplitudes)
        for quantity in set(quantities):
            members = np.array([q == quantity for q in quantities])
            peak = float(np.max(self.amplitudes[members]))
            relative[members] = self.amplitudes[members] / peak if peak > 0 else 0.0
        return relative

    def groups(self, channel_names: Sequence[str] | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return (channels swinging with the reference, channels swinging against it).

        With channel names only channels of the reference channel's quantity are compared.
        """
        relative = self.relative_magnitudes(channel_names)
        significant = relative >= 0.1
        if channel_names:
            quantity = channel_names[self.reference_channel].rsplit(":", 1)[-1]
            significant &= np.array([n.rsplit(":", 1)[-1] == quantity for n in channel_names])
        together = significant & (np.abs(self.phases_deg) <= 90.0)
        against = significant & (np.abs(self.phases_deg) > 90.0)
        return tuple(int(i) for i in np.flatnonzero(together)), tuple(int(i) for i in np.flatnonzero(against))

    def to_dict(self, channel_names: Sequence[str] | None = None) -> dict[str, object]:
        """Return a JSON-ready dict with the mode shape per channel."""
        names = list(channel_names) if channel_names is not None else [str(i) for i in range(self.amplitudes.size)]
        relative = self.relative_magnitudes(names)
        together, against = self.groups(names)
        return {
            "frequency_hz": round(self.frequency_hz, 6),
            "damping_pct": round(self.damping_pct, 4),
            "amplitude": float(self.amplitude),
            "amplitude_channel": names[self.reference_channel] if names else None,
            "energy_fraction": round(self.energy_fraction, 4),
            "shape": [
                {
                    "channel": names[i],
                    "amplitude": float(self.amplitudes[i]),
                    "relative_magnitude": round(float(relative[i]), 4),
                    "phase_deg": round(float(self.phases_deg[i]), 2),
                }
                for i in range(self.amplitudes.size)
            ],
            "swing_together": [names[i] for i in together],
            "swing_against": [names[i] for i in against],
        }
