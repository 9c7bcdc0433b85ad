"""Offline analysis of a recorded CSV with the same detectors and monitor as the live path.

CSV layout: first column `time_s`, then `<pmu>:<quantity>` columns with quantity one of
`frequency_hz`, `rocof_hz_per_s`, `magnitude_pu`, `angle_deg`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wams.detection.analytics.events import summarize_detections
from wams.detection.analytics.fast import FastDetectorBank, FastDetectorConfig
from wams.detection.analytics.oscillation import OscillationConfig, OscillationMonitor, estimate_ringdown_modes
from wams.detection.analytics.oscillation.pencil import fill_gaps
from wams.detection.analytics.types import Detection, FloatArray, SnapshotBlock, make_block

QUANTITIES = ("frequency_hz", "rocof_hz_per_s", "magnitude_pu", "angle_deg")


@dataclass(frozen=True)
class SignalTable:
    """Recorded signals: time_s (n_time,), and per quantity an (n_time, n_pmu) array (nan = absent)."""

    time_s: FloatArray
    pmus: list[str]
    signals: dict[str, FloatArray]

    @property
    def rate_hz(self) -> float:
        """Return the sample rate: from the whole span when steps are even (immune to rounded times)."""
        if self.time_s.size < 2:
            return 1.0
        by_median = 1.0 / float(np.median(np.diff(self.time_s)))
        by_span = (self.time_s.size - 1) / float(self.time_s[-1] - self.time_s[0])
        return by_span if abs(by_span / by_median - 1.0) < 0.05 else by_median

    def to_block(self) -> SnapshotBlock:
        """Return the table as one snapshot block (absent quantities are nan)."""
        present = np.zeros((self.time_s.size, len(self.pmus)), dtype=bool)
        for values in self.signals.values():
            present |= np.isfinite(values)
        return make_block(
            self.time_s,
            self.signals["frequency_hz"],
            rocof_hz_per_s=self.signals["rocof_hz_per_s"],
            voltage_magnitude_pu=self.signals["magnitude_pu"],
            voltage_angle_deg=self.signals["angle_deg"],
            present=present,
        )


def parse_signal_csv(lines: Iterable[str]) -> SignalTable:
    """Parse CSV lines into a signal table; raise ValueError on a bad header or value."""
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    if not header or header[0] != "time_s":
        raise ValueError("the first column must be time_s")
    columns: list[tuple[str, str]] = []
    for name in header[1:]:
        pmu, sep, quantity = name.rpartition(":")
        if not sep or not pmu or quantity not in QUANTITIES:
            raise ValueError(f"column {name!r} is not <pmu>:<quantity> with quantity in {', '.join(QUANTITIES)}")
        columns.append((pmu, quantity))
    rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    try:
        data = np.array([[float(c) if c.strip() else np.nan for c in row] for row in rows], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"non-numeric value in CSV: {exc}") from exc
    if data.ndim != 2 or data.shape[1] != len(header) or data.shape[0] < 2:
        raise ValueError("the CSV needs at least two rows, each with one value per column")
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    if (np.diff(data[:, 0]) <= 0).any():
        raise ValueError("time_s values must be distinct")
    pmus = list(dict.fromkeys(p for p, _ in columns))
    signals = {q: np.full((data.shape[0], len(pmus)), np.nan) for q in QUANTITIES}
    for k, (pmu, quantity) in enumerate(columns):
        signals[quantity][:, pmus.index(pmu)] = data[:, k + 1]
    return SignalTable(time_s=data[:, 0], pmus=pmus, signals=signals)


def oscillation_channels(table: SignalTable) -> tuple[FloatArray, list[str], list[int]]:
    """Return (n_time, n_channel) signals for mode analysis, their names and PMU indices.

    Angles are unwrapped and taken relative to the mean over PMUs (removing the common rotation
    at the system frequency) when at least two PMUs report angles; frequencies are used as is.
    """
    columns: list[FloatArray] = []
    names: list[str] = []
    owners: list[int] = []
    angle = table.signals["angle_deg"]
    with_angle = [p for p in range(len(table.pmus)) if np.isfinite(angle[:, p]).any()]
    if len(with_angle) >= 2:
        unwrapped = np.rad2deg(np.unwrap(np.deg2rad(fill_gaps(angle[:, with_angle])), axis=0))
        relative = unwrapped - unwrapped.mean(axis=1, keepdims=True)
        for k, p in enumerate(with_angle):
            columns.append(relative[:, k])
            names.append(f"{table.pmus[p]}:angle_deg")
            owners.append(p)
    frequency = table.signals["frequency_hz"]
    for p in range(len(table.pmus)):
        if np.isfinite(frequency[:, p]).any():
            columns.append(frequency[:, p])
            names.append(f"{table.pmus[p]}:frequency_hz")
            owners.append(p)
    values = np.column_stack(columns) if columns else np.empty((table.time_s.size, 0))
    return values, names, owners


def analyze_table(
    table: SignalTable,
    nominal_hz: float = 60.0,
    fast_config: FastDetectorConfig | None = None,
    oscillation_config: OscillationConfig | None = None,
) -> dict[str, Any]:
    """Run the fast detectors and the oscillation monitor over a table; return a JSON-ready dict."""
    fast_config = fast_config or FastDetectorConfig(nominal_hz=nominal_hz)
    bank = FastDetectorBank(len(table.pmus), fast_config)
    detections: list[Detection] = bank.update_block(table.to_block())
    # Conditions still raised when the record ends are reported with their extremes so far.
    detections += bank.open_detections()
    values, names, owners = oscillation_channels(table)
    modes_out: list[dict[str, Any]] = []
    forced_out: list[dict[str, Any]] = []
    if values.shape[1]:
        monitor = OscillationMonitor(table.rate_hz, values.shape[1], oscillation_config, owners, names)
        step = max(round(table.rate_hz), 1)
        for begin in range(0, table.time_s.size, step):
            detections += monitor.update_block(table.time_s[begin : begin + step], values[begin : begin + step])
        for est in monitor.estimates:
            modes_out.append(
                {"source": est.source, "window_start_s": est.window_start_s, "window_end_s": est.window_end_s}
                | est.mode.to_dict(names)
            )
        for at_s, forced in monitor.forced:
            forced_out.append({"detected_time_s": at_s} | forced.to_dict(names))
        if not any(m["source"].startswith("ringdown") for m in modes_out):
            # A record that starts at the disturbance has no quiet lead-in to trigger on:
            # analyse the whole record as a ringdown.
            for mode in estimate_ringdown_modes(values, table.rate_hz, monitor.config.pencil):
                modes_out.append(
                    {
                        "source": "record",
                        "window_start_s": float(table.time_s[0]),
                        "window_end_s": float(table.time_s[-1]),
                    }
                    | mode.to_dict(names)
                )
    return json_ready(
        {
            "nominal_hz": nominal_hz,
            "sample_rate_hz": round(table.rate_hz, 6),
            "start_time_s": float(table.time_s[0]),
            "end_time_s": float(table.time_s[-1]),
            "pmus": table.pmus,
            "events": [_event_dict(e, table.pmus) for e in summarize_detections(detections)],
            "detections": [d.to_dict() | {"pmus": [table.pmus[i] for i in d.pmu_indices]} for d in detections],
            "oscillation_modes": modes_out,
            "forced_oscillations": forced_out,
        }
    )


def json_ready(value: Any) -> Any:
    """Return value with every non-finite float replaced by None, recursively."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _event_dict(event: Any, pmus: list[str]) -> dict[str, Any]:
    """Return an event summary as a JSON-ready dict with PMU names."""
    return {
        "kind": event.kind.value,
        "severity": event.severity.label,
        "start_time_s": event.start_time_s,
        "detected_time_s": event.detected_time_s,
        "end_time_s": event.end_time_s,
        "pmus": [pmus[i] for i in event.pmu_indices],
        "quantities": {k: (float(v) if np.isfinite(v) else None) for k, v in event.quantities.items()},
    }


def analyze_csv(path: str | Path, nominal_hz: float = 60.0) -> dict[str, Any]:
    """Read a signal CSV and analyse it."""
    with open(path, newline="", encoding="utf-8") as handle:
        table = parse_signal_csv(handle)
    return {"file": str(path)} | analyze_table(table, nominal_hz)
