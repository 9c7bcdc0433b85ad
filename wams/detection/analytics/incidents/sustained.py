"""Sustained off-nominal states: frequency outside a band, voltages outside limits, each for a time.

A condition picks up when it has held for `*_delay_s` without a break (a short dip never raises)
and clears only once the measurement is back inside the band narrowed by the hysteresis for
`clear_delay_s`. The check runs at most every `check_interval_s` of data time, so the per-snapshot
cost is a comparison and, a few times a second, one median and one min/max over the PMUs.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from wams.detection.analytics.types import Snapshot

#: The PMUs' frequency accuracy: a grid sitting at the limit (59.88 Hz measured as 59.8805) is at it.
FREQUENCY_TOLERANCE_HZ = 0.001


@dataclass(frozen=True)
class SustainedConfig:
    """Limits and times of the sustained off-nominal alarms (frequency band given for 60 Hz, scaled)."""

    frequency_band_hz_at_60: float = 0.12  # 59.88-60.12 Hz on a 60 Hz grid, 49.90-50.10 Hz on 50 Hz
    frequency_delay_s: float = 60.0
    frequency_hysteresis_hz: float = 0.02
    voltage_low_pu: float = 0.95
    voltage_high_pu: float = 1.10  # the IEEE 39-bus case runs PMU buses at up to 1.075 pu
    voltage_delay_s: float = 60.0
    voltage_hysteresis_pu: float = 0.01
    clear_delay_s: float = 5.0
    check_interval_s: float = 0.2
    enabled: bool = True

    def band_hz(self, nominal_hz: float) -> float:
        """Return the frequency band half-width on a grid of this nominal frequency."""
        return self.frequency_band_hz_at_60 * nominal_hz / 60.0


class Quantity(enum.StrEnum):
    """What a sustained condition is about."""

    FREQUENCY = "frequency"
    VOLTAGE = "voltage"


class Change(enum.StrEnum):
    """What happened to a sustained condition at a check."""

    PENDING = "pending"  # outside the limits, not yet for long enough
    RAISED = "raised"
    CLEARED = "cleared"
    DROPPED = "dropped"  # back inside before it was raised (a short excursion)


@dataclass(frozen=True, slots=True)
class SustainedChange:
    """One change of a sustained condition, with its figures (units in the names)."""

    quantity: Quantity
    change: Change
    since_s: float  # when the measurement first left the limits
    at_s: float
    figures: dict[str, object]
    direction: int = 0  # -1 low, +1 high
    pmu_index: int | None = None  # the worst PMU (voltage)


@dataclass
class _Condition:
    quantity: Quantity
    since_s: float = math.nan  # outside the limits since (NaN: inside)
    raised: bool = False
    inside_since_s: float = math.nan  # back inside the hysteresis band since (while raised)
    direction: int = 0
    worst: float = math.nan
    worst_index: int | None = None
    last_value: float = math.nan
    n_out: int = 0


class SustainedMonitor:
    """Follow the grid frequency (median over the PMUs) and every PMU's voltage against their limits."""

    def __init__(self, nominal_hz: float, config: SustainedConfig | None = None) -> None:
        """Start with both conditions inside their limits."""
        self.nominal_hz = float(nominal_hz)
        self.config = config or SustainedConfig()
        self.band_hz = self.config.band_hz(self.nominal_hz)
        self.next_check_s = -math.inf
        self.frequency = _Condition(Quantity.FREQUENCY)
        self.voltage = _Condition(Quantity.VOLTAGE)

    def update(self, snapshot: Snapshot) -> list[SustainedChange]:
        """Check one snapshot (a few times a second of data time); return what changed."""
        t = float(snapshot.timestamp_s)
        if not self.config.enabled or t < self.next_check_s:
            return []
        self.next_check_s = t + self.config.check_interval_s
        present = np.asarray(snapshot.present, dtype=bool)
        out = []
        f = np.asarray(snapshot.frequency_hz, dtype=np.float64)[present]
        f = f[np.isfinite(f)]
        if f.size:
            out += self._frequency(float(np.median(f)), t)
        v = np.where(present, np.asarray(snapshot.voltage_magnitude_pu, dtype=np.float64), np.nan)
        if np.isfinite(v).any():
            out += self._voltage(v, t)
        return out

    def _frequency(self, f_hz: float, t: float) -> list[SustainedChange]:
        c = self.frequency
        deviation = f_hz - self.nominal_hz
        outside = abs(deviation) >= self.band_hz - FREQUENCY_TOLERANCE_HZ
        back = abs(deviation) < self.band_hz - self.config.frequency_hysteresis_hz
        direction = -1 if deviation < 0 else 1
        c.last_value = f_hz
        if outside and (math.isnan(c.worst) or abs(f_hz - self.nominal_hz) > abs(c.worst - self.nominal_hz)):
            c.worst = f_hz
        return self._step(c, outside, back, direction, t, self.config.frequency_delay_s)

    def _voltage(self, v_pu: np.ndarray, t: float) -> list[SustainedChange]:
        cfg = self.config
        c = self.voltage
        with np.errstate(invalid="ignore"):
            low = v_pu <= cfg.voltage_low_pu
            high = v_pu >= cfg.voltage_high_pu
            back = bool(
                np.all((v_pu > cfg.voltage_low_pu + cfg.voltage_hysteresis_pu) | ~np.isfinite(v_pu))
                & np.all((v_pu < cfg.voltage_high_pu - cfg.voltage_hysteresis_pu) | ~np.isfinite(v_pu))
            )
        outside = bool(low.any() or high.any())
        if outside:
            deviation = np.where(low | high, np.abs(np.nan_to_num(v_pu, nan=1.0) - 1.0), -1.0)
            index = int(np.argmax(deviation))
            value = float(v_pu[index])
            c.n_out = max(c.n_out, int(low.sum() + high.sum()))
            if math.isnan(c.worst) or abs(value - 1.0) > abs(c.worst - 1.0):
                c.worst, c.worst_index = value, index
            direction = -1 if low[index] else 1
            c.last_value = value
        else:
            direction = c.direction
        return self._step(c, outside, back, direction, t, cfg.voltage_delay_s)

    def _step(
        self, c: _Condition, outside: bool, back: bool, direction: int, t: float, delay_s: float
    ) -> list[SustainedChange]:
        """Advance one condition's pickup and clearing timers."""
        if not c.raised:
            if not outside:
                if math.isnan(c.since_s):
                    return []
                change = self._change(c, Change.DROPPED, t)
                self._reset(c)
                return [change]
            if math.isnan(c.since_s) or direction != c.direction:
                c.since_s, c.direction = t, direction
                return [self._change(c, Change.PENDING, t)]
            if t - c.since_s >= delay_s:
                c.raised = True
                return [self._change(c, Change.RAISED, t)]
            return []
        if not back:
            c.inside_since_s = math.nan
            return []
        if math.isnan(c.inside_since_s):
            c.inside_since_s = t
        if t - c.inside_since_s >= self.config.clear_delay_s:
            change = self._change(c, Change.CLEARED, t)
            self._reset(c)
            return [change]
        return []

    def _reset(self, c: _Condition) -> None:
        c.since_s = math.nan
        c.raised = False
        c.inside_since_s = math.nan
        c.direction = 0
        c.worst = math.nan
        c.worst_index = None
        c.n_out = 0

    def _change(self, c: _Condition, change: Change, t: float) -> SustainedChange:
        duration_s = round(t - c.since_s, 1) if math.isfinite(c.since_s) else 0.0
        if c.quantity is Quantity.FREQUENCY:
            figures: dict[str, object] = {
                "off_nominal_frequency_hz": _round(c.worst),
                "frequency_limit_hz": round(self.nominal_hz + c.direction * self.band_hz, 3),
                "off_nominal_duration_s": duration_s,
            }
        else:
            limit = self.config.voltage_low_pu if c.direction < 0 else self.config.voltage_high_pu
            figures = {
                "off_limit_voltage_pu": _round(c.worst),
                "voltage_limit_pu": limit,
                "off_limit_duration_s": duration_s,
                "off_limit_pmus": c.n_out,
            }
        return SustainedChange(c.quantity, change, c.since_s, t, figures, c.direction, c.worst_index)


def _round(value: float, digits: int = 4) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None
