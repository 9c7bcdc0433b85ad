"""Translate the dashboard's history reads into calls of the historian's query and export services."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import numpy as np

from dashboards.history import EmptyWindow, Export, HistoryUnavailable, PmuWindow, WindowTooLarge, bus_base_v
from wams.grid.models import Pmu

# Dashboard quantity -> historian channel name.
CHANNELS = {
    "frequency_hz": "frequency_hz",
    "rocof_hz_per_s": "rocof_hz_per_s",
    "stat": "stat",
    "magnitude_pu": "phasor_0_magnitude",
    "angle_deg": "phasor_0_angle_deg",
}


def read_windows(
    pmus: list[Pmu], start: datetime, end: datetime, quantities: list[str], max_points: int | None
) -> list[PmuWindow]:
    """Read windows through the historian, phasor 0 magnitudes turned into per-unit."""
    try:
        from wams.historian.query import query_traces
    except ImportError as exc:
        raise HistoryUnavailable("the historian's query service is not installed") from exc
    from wams.historian.budget import BudgetExceeded, ReadersBusy, heavy_read

    by_channel = {CHANNELS[q]: q for q in quantities}
    try:
        with heavy_read():
            traces = query_traces([pmu.pk for pmu in pmus], list(by_channel), start, end, max_points=max_points)
    except BudgetExceeded as exc:
        raise WindowTooLarge(str(exc)) from exc
    except ReadersBusy as exc:
        raise HistoryUnavailable(str(exc)) from exc
    grouped = defaultdict(list)
    for trace in traces:
        grouped[trace.pmu_id].append(trace)
    windows = []
    for pmu in pmus:
        window = PmuWindow(pmu_id=pmu.pk, t_s=np.zeros(0))
        for trace in grouped.get(pmu.pk, []):
            quantity = by_channel[trace.channel]
            scale = 1.0 / bus_base_v(pmu) if quantity == "magnitude_pu" else 1.0
            window.t_s = trace.timestamp_us / 1e6
            window.values[quantity] = np.asarray(trace.mean, dtype=np.float64) * scale
            if trace.decimated:
                window.low[quantity] = np.asarray(trace.minimum, dtype=np.float64) * scale
                window.high[quantity] = np.asarray(trace.maximum, dtype=np.float64) * scale
        windows.append(window)
    return windows


def export_window(pmus: list[Pmu], start: datetime, end: datetime, fmt: str) -> Export:
    """Export through the historian: CSV text, or a zip of the COMTRADE cfg and dat files, both streamed.

    The export is planned and priced here (an empty or over-budget window fails before the first
    byte); its slices are read while the file is written.
    """
    try:
        from wams.historian.budget import BudgetExceeded
        from wams.historian.export import comtrade_files, iter_csv, iter_zip, plan_export
    except ImportError as exc:
        raise HistoryUnavailable("the historian's export service is not installed") from exc
    ids = [pmu.pk for pmu in pmus]
    basename = f"wams-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}"
    try:
        if fmt == "csv":
            plan = plan_export(ids, start, end)
            chunks = (text.encode() for text in iter_csv(ids, start, end, plan=plan))
            return Export(f"{basename}.csv", "text/csv; charset=utf-8", chunks)
        cfg, dat = comtrade_files(ids, start, end)
    except BudgetExceeded as exc:
        raise WindowTooLarge(str(exc)) from exc
    except LookupError as exc:
        raise EmptyWindow(str(exc)) from exc
    return Export(f"{basename}.zip", "application/zip", iter_zip([(f"{basename}.cfg", cfg), (f"{basename}.dat", dat)]))
