"""Ground truth of a simulation run, written as JSON as it happens."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wams.simulator.engine.dynamics import AppliedEvent
from wams.simulator.engine.modes import Mode, dominant_inter_area_mode


def utc_iso(utc_s: float) -> str:
    """Return an ISO 8601 UTC time stamp with microseconds."""
    return datetime.fromtimestamp(utc_s, tz=UTC).isoformat(timespec="microseconds")


class TruthRecorder:
    """Collect events, scenarios, modes and recorder files of a run; rewrite the JSON file on change.

    File layout (`schema` 1)::

        {"schema": 1, "run_id", "case", "epoch_utc", "speed", "started_utc",
         "scenarios": [{"name", "t_s", "utc", "params", "notes"}],
         "events": [{"t_s", "utc", "kind", "element", "scenario", "detail"}],
         "modes": [{"t_s", "utc", "reason", "dominant_inter_area": Mode|null, "modes": [Mode]}],
         "fault_records": [{"t_s", "utc", "cfg", "dat", "scenario"}],
         "pmus": [...], "rtus": [...]}

    `t_s` is simulated seconds since the run started; `utc` is when that instant is stamped in the
    streams (epoch_utc + t_s / speed).
    """

    def __init__(self, path: Path | None, *, run_id: str, case: str, epoch_utc_s: float, speed: float = 1.0) -> None:
        """Start a record; `path` None keeps it in memory only."""
        self.path = path
        self.epoch_utc_s = epoch_utc_s
        self.speed = speed
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {
            "schema": 1,
            "run_id": run_id,
            "case": case,
            "epoch_utc": utc_iso(epoch_utc_s),
            "epoch_utc_s": epoch_utc_s,
            "speed": speed,
            "started_utc": utc_iso(epoch_utc_s),
            "scenarios": [],
            "events": [],
            "modes": [],
            "fault_records": [],
            "pmus": [],
            "rtus": [],
        }
        self.flush()

    def utc_of(self, t_s: float) -> float:
        """Return the UTC seconds at which simulated time `t_s` is stamped."""
        return self.epoch_utc_s + t_s / self.speed

    def _stamp(self, t_s: float) -> dict[str, Any]:
        return {"t_s": round(t_s, 6), "utc": utc_iso(self.utc_of(t_s))}

    def scenario(self, name: str, t_s: float, params: dict[str, Any], notes: dict[str, Any] | None = None) -> None:
        """Record that a scenario was started."""
        with self._lock:
            self.data["scenarios"].append(
                {"name": name, **self._stamp(t_s), "params": _plain(params), "notes": _plain(notes or {})}
            )
        self.flush()

    def event(self, event: AppliedEvent, scenario: str | None, t_s: float | None = None) -> None:
        """Record an applied action (at `t_s` on the run clock, default the event's own time)."""
        when = event.t_s if t_s is None else t_s
        with self._lock:
            self.data["events"].append(
                {
                    **self._stamp(when),
                    "kind": event.kind,
                    "element": event.element,
                    "scenario": scenario,
                    "detail": _plain(event.detail),
                }
            )
        self.flush()

    def modes(self, t_s: float, modes: list[Mode], reason: str) -> None:
        """Record the electromechanical modes found by eigenvalue analysis at `t_s`."""
        dominant = dominant_inter_area_mode(modes)
        with self._lock:
            self.data["modes"].append(
                {
                    **self._stamp(t_s),
                    "reason": reason,
                    "dominant_inter_area": dominant.to_dict() if dominant else None,
                    "modes": [m.to_dict() for m in modes],
                }
            )
        self.flush()

    def fault_record(self, t_s: float, cfg: Path, dat: Path, scenario: str | None) -> None:
        """Record the COMTRADE files of a fault window starting at `t_s`."""
        with self._lock:
            self.data["fault_records"].append(
                {**self._stamp(t_s), "cfg": str(cfg), "dat": str(dat), "scenario": scenario}
            )
        self.flush()

    def set_inventory(self, pmus: list[dict[str, Any]], rtus: list[dict[str, Any]]) -> None:
        """Record the fleet served in this run (streams, ports, RTU addresses)."""
        with self._lock:
            self.data["pmus"] = _plain(pmus)
            self.data["rtus"] = _plain(rtus)
        self.flush()

    def flush(self) -> None:
        """Write the JSON file atomically (no-op without a path)."""
        if self.path is None:
            return
        with self._lock:
            text = json.dumps(self.data, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)


def _plain(value: Any) -> Any:
    """Return `value` with numpy scalars and other oddities turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
