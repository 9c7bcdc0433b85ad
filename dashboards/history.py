"""The dashboard's window onto stored measurements: reads and exports through the historian.

Pages and the replay call `read_windows` and `export_window`; only this module knows the
historian's query API, so the pages keep working while it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from wams.grid.models import Pmu

# Quantities the pages plot, with their axis labels.
QUANTITIES: dict[str, str] = {
    "frequency_hz": "Frequency (Hz)",
    "rocof_hz_per_s": "ROCOF (Hz/s)",
    "magnitude_pu": "Voltage magnitude (pu)",
    "angle_deg": "Voltage angle (deg)",
}
EXPORT_FORMATS = ("csv", "comtrade")


class HistoryUnavailable(Exception):
    """The historian cannot answer (not installed, or the query failed)."""


class EmptyWindow(LookupError):
    """The historian holds no samples of the window."""


@dataclass
class PmuWindow:
    """Stored samples of one PMU over a window: arrays share the first axis (n instants)."""

    pmu_id: int
    t_s: np.ndarray  # (n,) float64, s since the epoch UTC
    values: dict[str, np.ndarray] = field(default_factory=dict)  # quantity -> (n,) float64, NaN = missing
    low: dict[str, np.ndarray] = field(default_factory=dict)  # quantity -> (n,) bucket minimum when decimated
    high: dict[str, np.ndarray] = field(default_factory=dict)  # quantity -> (n,) bucket maximum when decimated


class WindowTooLarge(HistoryUnavailable):
    """The window would cost more than the historian's read budget: the message says the limit."""


@dataclass(frozen=True)
class Export:
    """A file for download, written piece by piece as `chunks` are iterated (once)."""

    filename: str
    content_type: str
    chunks: Iterable[bytes]

    @property
    def content(self) -> bytes:
        """Return the whole file (small exports and tests)."""
        return b"".join(self.chunks)


def bus_base_v(pmu: Pmu) -> float:
    """Return the PMU's phase-to-neutral base voltage (V) for per-unit magnitudes (the grid model's one rule)."""
    return pmu.base_voltage_v()


def read_windows(
    pmus: Sequence[Pmu], start: datetime, end: datetime, quantities: Sequence[str], max_points: int | None = None
) -> list[PmuWindow]:
    """Read the quantities of several PMUs over [start, end), decimated to at most max_points when given."""
    from dashboards import historian_adapter

    return historian_adapter.read_windows(list(pmus), start, end, list(quantities), max_points)


def export_window(pmus: Sequence[Pmu], start: datetime, end: datetime, fmt: str) -> Export:
    """Export the raw samples of several PMUs over [start, end) as CSV or COMTRADE."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    from dashboards import historian_adapter

    return historian_adapter.export_window(list(pmus), start, end, fmt)
