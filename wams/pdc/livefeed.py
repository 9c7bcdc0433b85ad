"""Snapshots as arrays over the shard's PMUs, and the decimated live payload built from them (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wams.pdc.accumulate import Measured
from wams.pdc.align import US_PER_S, Snapshot

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SnapshotView:
    """One aligned snapshot as arrays (n_pmu,) over `pmu_ids`; what snapshot handlers receive.

    Field names follow the detection analytics' Snapshot. Where a PMU is not `present` its floats
    are NaN and its stat 0. `snapshot.samples[pmu_id]` holds the full decoded block (all phasors,
    analogs, digital words) of each present PMU.
    """

    timestamp_s: float
    pmu_ids: npt.NDArray[np.int64]
    present: npt.NDArray[np.bool_]
    frequency_hz: FloatArray
    rocof_hz_per_s: FloatArray
    voltage_magnitude_pu: FloatArray  # |phasor 0| / phase-to-neutral base voltage
    voltage_angle_deg: FloatArray  # absolute angle of phasor 0
    stat: npt.NDArray[np.uint16]
    snapshot: Snapshot[Measured]

    @property
    def timestamp_us(self) -> int:
        """Return the instant in integer microseconds since 1970."""
        return self.snapshot.timestamp_us


class PmuTable:
    """The PMUs of this shard in a fixed order, with the base voltages for per-unit magnitudes."""

    def __init__(self, base_voltage_v: dict[int, float]) -> None:
        self.pmu_ids = np.array(sorted(base_voltage_v), dtype=np.int64)
        self.index = {int(pmu_id): i for i, pmu_id in enumerate(self.pmu_ids)}
        self.base_voltage_v = np.array([base_voltage_v[int(p)] for p in self.pmu_ids], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.pmu_ids)

    def view(self, snapshot: Snapshot[Measured]) -> SnapshotView:
        """Return the snapshot as arrays over this table's PMUs."""
        n = len(self.pmu_ids)
        present = np.zeros(n, dtype=bool)
        frequency = np.full(n, np.nan)
        rocof = np.full(n, np.nan)
        voltage = np.full(n, np.nan + 0j, dtype=np.complex128)
        stat = np.zeros(n, dtype=np.uint16)
        index = self.index
        for pmu_id, sample in snapshot.samples.items():
            i = index.get(pmu_id)
            if i is None:
                continue
            present[i] = True
            frequency[i] = sample.frequency_hz
            rocof[i] = sample.rocof_hz_per_s
            stat[i] = sample.stat
            if len(sample.phasors):
                voltage[i] = sample.phasors[0]
        return SnapshotView(
            timestamp_s=snapshot.timestamp_us / US_PER_S,
            pmu_ids=self.pmu_ids,
            present=present,
            frequency_hz=frequency,
            rocof_hz_per_s=rocof,
            voltage_magnitude_pu=np.abs(voltage) / self.base_voltage_v,
            voltage_angle_deg=np.degrees(np.angle(voltage)),
            stat=stat,
            snapshot=snapshot,
        )


def _number(value: float) -> float | None:
    """Return a JSON number, or None for NaN and infinities."""
    return float(value) if math.isfinite(value) else None


class LiveBuffer:
    """Keep the snapshots of the live grid (at most `points_hz` a second) until the next live update."""

    def __init__(self, points_hz: float) -> None:
        self.bucket_us = max(1, round(US_PER_S / points_hz))
        self._last_bucket: int | None = None
        self._views: list[SnapshotView] = []

    def add(self, view: SnapshotView) -> bool:
        """Keep `view` if it opens a new bucket of the live grid; return whether it was kept."""
        bucket = view.timestamp_us // self.bucket_us
        if self._last_bucket is not None and bucket <= self._last_bucket:
            return False
        self._last_bucket = bucket
        self._views.append(view)
        return True

    def take_payload(self, sent_at_s: float) -> dict[str, Any] | None:
        """Return the EVENT_SNAPSHOT payload of the kept views and forget them (None when empty)."""
        views, self._views = self._views, []
        if not views:
            return None
        return live_payload(views, sent_at_s)


def live_payload(views: Iterable[SnapshotView], sent_at_s: float) -> dict[str, Any]:
    """Return the wams.live snapshot payload: per PMU id, lists over the instants, null where missing."""
    views = list(views)
    pmus: dict[str, dict[str, list[Any]]] = {}
    quantities = ("frequency_hz", "rocof_hz_per_s", "magnitude_pu", "angle_deg", "stat")
    all_ids = sorted({int(p) for view in views for p in view.pmu_ids})
    for pmu_id in all_ids:
        pmus[str(pmu_id)] = {q: [None] * len(views) for q in quantities}
    for k, view in enumerate(views):
        for i, pmu_id in enumerate(view.pmu_ids):
            if not view.present[i]:
                continue
            entry = pmus[str(int(pmu_id))]
            entry["frequency_hz"][k] = _number(view.frequency_hz[i])
            entry["rocof_hz_per_s"][k] = _number(view.rocof_hz_per_s[i])
            entry["magnitude_pu"][k] = _number(view.voltage_magnitude_pu[i])
            entry["angle_deg"][k] = _number(view.voltage_angle_deg[i])
            entry["stat"][k] = int(view.stat[i])
    return {"t": [view.timestamp_s for view in views], "sent_at": sent_at_s, "pmus": pmus}
