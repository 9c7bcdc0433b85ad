"""Carry the recent rows of a stream across blocks, for windowed quantities."""

from __future__ import annotations

import numpy as np

from wams.detection.analytics.types import FloatArray, IntArray


class RowHistory:
    """Keep enough past rows of (n_time, n) arrays to look back span_s seconds."""

    def __init__(self, span_s: float) -> None:
        """Create an empty history that covers span_s seconds."""
        self.span_s = span_s
        self.timestamp_s: FloatArray = np.empty(0)
        self.arrays: dict[str, FloatArray] = {}

    def extend(
        self, timestamp_s: FloatArray, arrays: dict[str, FloatArray]
    ) -> tuple[FloatArray, dict[str, FloatArray], int]:
        """Append rows; return all timestamps, all arrays and the index of the first new row."""
        offset = int(self.timestamp_s.shape[0])
        if offset and set(arrays) == set(self.arrays):
            t_all = np.concatenate([self.timestamp_s, timestamp_s])
            all_arrays = {k: np.concatenate([self.arrays[k], v]) for k, v in arrays.items()}
        else:
            offset = 0
            t_all = np.asarray(timestamp_s, dtype=np.float64)
            all_arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
        # Keep one row at or before (last - span) so a full look-back stays available.
        keep = max(int(np.searchsorted(t_all, t_all[-1] - self.span_s, side="right")) - 1, 0)
        self.timestamp_s = t_all[keep:]
        self.arrays = {k: v[keep:] for k, v in all_arrays.items()}
        return t_all, all_arrays, offset

    def reset(self) -> None:
        """Forget every row."""
        self.timestamp_s = np.empty(0)
        self.arrays = {}


def lookback_rows(timestamp_s: FloatArray, offset: int, window_s: float) -> IntArray:
    """Return, for each row from offset on, the last row at least window_s older (-1 if none)."""
    targets = timestamp_s[offset:] - window_s + 1e-9
    return np.searchsorted(timestamp_s, targets, side="right").astype(np.intp) - 1


def windowed_slope(timestamp_s: FloatArray, values: FloatArray, offset: int, window_s: float) -> FloatArray:
    """Return (x[i] - x[j]) / (t[i] - t[j]) for new rows i and j window_s back; nan where unknown."""
    rows = lookback_rows(timestamp_s, offset, window_s)
    valid = rows >= 0
    back = np.where(valid, rows, 0)
    dt = timestamp_s[offset:] - timestamp_s[back]
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (values[offset:] - values[back]) / dt[:, None]
    slope[~valid | (dt <= 0)] = np.nan
    return np.asarray(slope, dtype=np.float64)


def forward_fill(values: FloatArray, carry: FloatArray) -> FloatArray:
    """Return (n_time, n) values with each nan replaced by the last finite value above it.

    carry (n,) is the last finite value of each column before these rows (nan if none).
    """
    n_time = values.shape[0]
    latest = np.where(np.isfinite(values), np.arange(n_time)[:, None], -1)
    latest = np.maximum.accumulate(latest, axis=0)
    taken = np.take_along_axis(values, np.maximum(latest, 0), axis=0)
    return np.asarray(np.where(latest >= 0, taken, carry[None, :]), dtype=np.float64)
