"""The last seconds of snapshots, kept so a closing incident can be measured before and after its start."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from wams.detection.analytics.types import FloatArray, Snapshot


@dataclass(frozen=True)
class Window:
    """Rows of the kept history: times (n_time,), every other array (n_time, n_pmu); angles unwrapped, deg."""

    time_s: FloatArray
    frequency_hz: FloatArray
    voltage_pu: FloatArray
    angle_deg: FloatArray  # unwrapped in time, minus the mean over the PMUs (common rotation removed)

    def rows(self, start_s: float, stop_s: float) -> np.ndarray:
        """Return a boolean mask of the rows with start_s <= t < stop_s."""
        return np.asarray((self.time_s >= start_s) & (self.time_s < stop_s), dtype=bool)

    def mean(self, values: FloatArray, start_s: float, stop_s: float) -> FloatArray:
        """Return the per-PMU mean of `values` over [start_s, stop_s) (nan where nothing was measured)."""
        mask = self.rows(start_s, stop_s)
        if not mask.any():
            return np.full(values.shape[1], np.nan)
        chosen = values[mask]
        count = np.isfinite(chosen).sum(axis=0)
        total = np.nansum(chosen, axis=0)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class SnapshotHistory:
    """Keep `keep_s` seconds of frequency, voltage magnitude and angle per PMU."""

    def __init__(self, keep_s: float = 30.0) -> None:
        """Start empty."""
        self.keep_s = keep_s
        self.rows: deque[tuple[float, FloatArray, FloatArray, FloatArray]] = deque()

    def append(self, snapshot: Snapshot) -> None:
        """Keep one snapshot's values (absent or invalid PMUs as nan); forget rows older than keep_s."""
        valid = np.asarray(snapshot.present, dtype=bool) & ((np.asarray(snapshot.stat) & 0xC000) == 0)

        def pick(values: FloatArray) -> FloatArray:
            return np.where(valid, np.asarray(values, dtype=np.float64), np.nan)

        if self.rows and len(self.rows[-1][1]) != len(valid):
            self.rows.clear()
        self.rows.append(
            (
                float(snapshot.timestamp_s),
                pick(snapshot.frequency_hz),
                pick(snapshot.voltage_magnitude_pu),
                pick(snapshot.voltage_angle_deg),
            )
        )
        while self.rows and self.rows[0][0] < snapshot.timestamp_s - self.keep_s:
            self.rows.popleft()

    def window(self, since_s: float) -> Window | None:
        """Return the rows from since_s on, or None when there are none."""
        rows = [r for r in self.rows if r[0] >= since_s]
        if not rows:
            return None
        t = np.array([r[0] for r in rows])
        f = np.array([r[1] for r in rows])
        v = np.array([r[2] for r in rows])
        a = np.array([r[3] for r in rows])
        return Window(t, f, v, relative_angles(a))


def relative_angles(angle_deg: FloatArray) -> FloatArray:
    """Return (n_time, n_pmu) angles referred to one PMU and unwrapped in time (nan where not measured).

    The reference is the PMU measured in most rows; in a row it is missing from, its angle is taken
    from the others' angles and their usual offsets to it. Referring to one PMU rather than to the
    mean of the PMUs present keeps a PMU dropping out or coming back from shifting everyone else's
    angle, and relative angles move slowly, so they unwrap across gaps where the absolute angles,
    turning with the frequency, cannot. Steps are compared across PMUs after removing their mean
    (`incidents.classify.Measures`).
    """
    finite = np.isfinite(angle_deg)
    out = np.full(angle_deg.shape, np.nan)
    if not finite.any():
        return out
    ref = int(np.argmax(finite.sum(axis=0)))
    z = np.exp(1j * np.radians(angle_deg))
    z_ref = z[:, ref].copy()
    with np.errstate(all="ignore"):
        offset = np.nanmean(z * np.conj(z_ref)[:, None], axis=0)
        offset = offset / np.abs(offset)
        absent = ~finite[:, ref]
        if absent.any():
            estimate = np.nanmean(z[absent] * np.conj(offset)[None, :], axis=1)
            z_ref[absent] = estimate / np.abs(estimate)
        relative = np.angle(z * np.conj(z_ref)[:, None], deg=True)
    for j in range(relative.shape[1]):
        good = np.isfinite(relative[:, j])
        if good.any():
            out[good, j] = np.degrees(np.unwrap(np.radians(relative[good, j])))
    return np.asarray(out, dtype=np.float64)
