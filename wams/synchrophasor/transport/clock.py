"""Reporting instants: SOC/FRACSEC arithmetic aligned to wall-clock boundaries."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


def now_soc_fraction(time_base: int, now_s: float | None = None) -> tuple[int, int]:
    """Return (SOC, 24-bit fraction count) of `now_s` (default: the system clock)."""
    t = time.time() if now_s is None else now_s
    soc = math.floor(t)
    fraction = min(round((t - soc) * time_base), time_base - 1)
    return soc, fraction


@dataclass(slots=True)
class ReportingClock:
    """Successive reporting instants of a stream at `data_rate` (C37.118 DATA_RATE semantics).

    DATA_RATE > 0: instants k / rate within each second (k = 0 .. rate-1), so the time stamps fall
    exactly on the second boundaries. DATA_RATE < 0: one instant every -DATA_RATE seconds, on SOC
    multiples of that period.
    """

    data_rate: int
    time_base: int
    soc: int = 0
    index: int = 0

    def __post_init__(self) -> None:
        if self.data_rate == 0:
            raise ValueError("DATA_RATE 0 has no reporting instants")

    @property
    def period_s(self) -> float:
        """Return the time between instants in seconds."""
        return 1.0 / self.data_rate if self.data_rate > 0 else float(-self.data_rate)

    def fraction(self) -> int:
        """Return the FRACSEC fraction count of the current instant."""
        if self.data_rate > 0:
            return (self.index * self.time_base) // self.data_rate
        return 0

    def instant_s(self) -> float:
        """Return the current instant in seconds since 1970."""
        if self.data_rate > 0:
            return self.soc + self.index / self.data_rate
        return float(self.soc)

    def seek(self, t_s: float) -> None:
        """Move to the first instant at or after `t_s`."""
        if self.data_rate > 0:
            soc = math.floor(t_s)
            index = math.ceil((t_s - soc) * self.data_rate - 1e-9)
            if index >= self.data_rate:
                soc, index = soc + 1, 0
            self.soc, self.index = soc, index
        else:
            period = -self.data_rate
            self.soc = math.ceil(t_s / period - 1e-9) * period
            self.index = 0

    def advance(self) -> None:
        """Move to the next instant."""
        if self.data_rate > 0:
            self.index += 1
            if self.index >= self.data_rate:
                self.index = 0
                self.soc += 1
        else:
            self.soc += -self.data_rate
