"""Pure helpers that shape live payloads for one browser: scoping, coalescing, decimation.

A live payload carries measurement instants `t` (float s since the epoch, UTC) and, below its data
keys, lists aligned with `t` (one value or null per instant), possibly nested in dicts:
`{"t": [...], "pmus": {"12": {"frequency_hz": [...], ...}}}`.  Nothing here imports Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence, Set
from typing import Any

Node = dict[str, Any] | list[Any]

# Keys of a payload that are not aligned with `t`.
SCALAR_KEYS = frozenset({"t", "sent_at", "pmu_id", "replay"})


def filter_snapshot(payload: dict[str, Any], allowed_pmu_ids: Set[str]) -> dict[str, Any] | None:
    """Keep only the PMUs the user may see; None when none is left."""
    pmus = payload.get("pmus") or {}
    kept = {pmu_id: values for pmu_id, values in pmus.items() if pmu_id in allowed_pmu_ids}
    if not kept:
        return None
    return {**payload, "pmus": kept}


def _merge_node(parts: Sequence[tuple[Any, int]]) -> Node:
    """Concatenate aligned lists (or dicts of them) of several payloads; pad absent parts with None."""
    if any(isinstance(node, dict) for node, _ in parts):
        keys: list[str] = []
        for node, _ in parts:
            if isinstance(node, dict):
                keys.extend(key for key in node if key not in keys)
        return {
            key: _merge_node([(node.get(key) if isinstance(node, dict) else None, n) for node, n in parts])
            for key in keys
        }
    merged: list[Any] = []
    for node, n in parts:
        merged.extend(node if isinstance(node, list) and len(node) == n else [None] * n)
    return merged


def merge_snapshots(payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Join consecutive payloads into one: instants concatenated, every series padded to match."""
    if len(payloads) == 1:
        return payloads[0]
    sizes = [len(payload.get("t") or []) for payload in payloads]
    merged: dict[str, Any] = {"t": [t for payload in payloads for t in payload.get("t") or []]}
    keys: list[str] = []
    for payload in payloads:
        keys.extend(key for key in payload if key not in SCALAR_KEYS and key not in keys)
    for key in keys:
        merged[key] = _merge_node([(payload.get(key), n) for payload, n in zip(payloads, sizes, strict=True)])
    for key in SCALAR_KEYS - {"t"}:
        if key in payloads[-1]:
            merged[key] = payloads[-1][key]
    return merged


def pick_indices(n: int, max_instants: int) -> list[int]:
    """Choose at most `max_instants` evenly spread indices of n, always ending with the newest."""
    if n <= max_instants:
        return list(range(n))
    if max_instants <= 1:
        return [n - 1]
    step = (n - 1) / (max_instants - 1)
    return sorted({round(i * step) for i in range(max_instants)})


def _select(node: Any, indices: Iterable[int]) -> Any:
    if isinstance(node, dict):
        return {key: _select(value, indices) for key, value in node.items()}
    if isinstance(node, list):
        return [node[i] if i < len(node) else None for i in indices]
    return node


def decimate_snapshot(payload: dict[str, Any], max_instants: int) -> dict[str, Any]:
    """Keep at most `max_instants` instants of a payload (the newest always among them)."""
    t = payload.get("t") or []
    if len(t) <= max_instants:
        return payload
    indices = pick_indices(len(t), max_instants)
    out = {key: (value if key in SCALAR_KEYS else _select(value, indices)) for key, value in payload.items()}
    out["t"] = [t[i] for i in indices]
    return out


def thin_to_grid(
    payload: dict[str, Any], points_per_s: float, last_bucket: int | None
) -> tuple[dict[str, Any], int | None]:
    """Keep the first instant of each 1/points_per_s bucket not sent yet (an evenly spaced grid).

    Returns the thinned payload and the newest bucket sent (to pass to the next call).
    """
    t = payload.get("t") or []
    keep: list[int] = []
    bucket = last_bucket
    for i, instant in enumerate(t):
        current = math.floor(instant * points_per_s + 1e-6)
        if bucket is None or current > bucket:
            keep.append(i)
            bucket = current
    if len(keep) == len(t):
        return payload, bucket
    out = {key: (value if key in SCALAR_KEYS else _select(value, keep)) for key, value in payload.items()}
    out["t"] = [t[i] for i in keep]
    return out, bucket


class Coalescer:
    """Collect payloads between two sends to one browser; hand them out merged, thinned and capped.

    Thinning keeps `points_per_s` evenly spaced instants per second of measurement time (10 resolve
    electromechanical modes up to 2 Hz); `max_instants` caps one update.
    """

    def __init__(self, points_per_s: float, max_instants: int = 50) -> None:
        self.points_per_s = points_per_s
        self.max_instants = max_instants
        self._pending: list[dict[str, Any]] = []
        self._last_bucket: int | None = None

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, payload: dict[str, Any]) -> None:
        """Queue one payload."""
        self._pending.append(payload)

    def take(self) -> dict[str, Any] | None:
        """Return everything queued as one decimated payload, or None when nothing is queued."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, []
        thinned, self._last_bucket = thin_to_grid(merge_snapshots(pending), self.points_per_s, self._last_bucket)
        if not thinned.get("t"):
            return None
        return decimate_snapshot(thinned, self.max_instants)
