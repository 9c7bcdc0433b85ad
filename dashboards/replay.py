"""Replay stored measurements through the live views: history cut into live-format frames."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from dashboards import access, history
from dashboards.livefilter import pick_indices
from wams.detection.services import event_payload, redact_event
from wams.grid.services import AnyUser, user_visibility, visible_pmus

SPEEDS = range(1, 11)  # 1x to 10x
MAX_WINDOW_S = 30 * 60.0
EVENT_PRE_S = 30.0
EVENT_POST_S = 60.0
REPLAY_QUANTITIES = ("frequency_hz", "rocof_hz_per_s", "magnitude_pu", "angle_deg", "stat")


class ReplayError(ValueError):
    """A replay request that cannot be served (bad window, no data, historian down)."""


@dataclass(frozen=True)
class Frame:
    """One live-format update of a replay, due when the replay clock reaches `clock_s`."""

    clock_s: float  # measurement time at the end of the frame, s since the epoch
    payload: dict[str, Any]


@dataclass(frozen=True)
class ReplayPlan:
    """Everything a replay sends: frames and the alarms raised in the window."""

    start_s: float
    end_s: float
    speed: int
    frames: list[Frame]
    alarms: list[dict[str, Any]]  # live alarm payloads, `started_at_s` added


def _none_if_nan(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def build_frames(
    windows: list[history.PmuWindow], start_s: float, end_s: float, span_s: float, max_instants: int
) -> list[Frame]:
    """Cut PMU windows into frames of `span_s` measurement seconds, each with at most max_instants instants."""
    timelines = [w.t_s for w in windows if len(w.t_s)]
    if not timelines:
        return []
    # One common timeline (to the microsecond) so PMUs of one instant share a column.
    t_us = np.unique(np.round(np.concatenate(timelines) * 1e6).astype(np.int64))
    t_s = t_us / 1e6
    columns: dict[str, dict[str, np.ndarray]] = {}
    for window in windows:
        position = np.searchsorted(t_us, np.round(window.t_s * 1e6).astype(np.int64))
        series: dict[str, np.ndarray] = {}
        for quantity, values in window.values.items():
            full = np.full(len(t_us), np.nan)  # (n_instants,)
            full[position] = values
            series[quantity] = full
        columns[str(window.pmu_id)] = series
    frames: list[Frame] = []
    n_frames = max(1, int(np.ceil((end_s - start_s) / span_s)))
    edges = np.searchsorted(t_s, start_s + span_s * np.arange(n_frames + 1))
    for k in range(n_frames):
        lo, hi = int(edges[k]), int(edges[k + 1])
        clock_s = min(end_s, start_s + span_s * (k + 1))
        if hi <= lo:
            frames.append(Frame(clock_s, {"t": [], "pmus": {}}))
            continue
        chosen = lo + np.asarray(pick_indices(hi - lo, max_instants))
        payload = {
            "t": [float(v) for v in t_s[chosen]],
            "pmus": {
                pmu_id: {quantity: _none_if_nan(values[chosen]) for quantity, values in series.items()}
                for pmu_id, series in columns.items()
            },
        }
        frames.append(Frame(clock_s, payload))
    return frames


def replay_window(
    user: AnyUser, event_id: int | None, pmu_ids: list[int], start_s: float | None, end_s: float | None
) -> tuple[list[int], float, float]:
    """Resolve what to replay: an event's window (all visible PMUs) or an explicit window."""
    visible = list(access.load_scope(user).pmu_ids)
    if event_id is not None:
        event = access.get_visible_event(user, event_id)
        start = event.started_at - timedelta(seconds=EVENT_PRE_S)
        end = (event.ended_at or event.started_at) + timedelta(seconds=EVENT_POST_S)
        return (pmu_ids or sorted(visible)), start.timestamp(), end.timestamp()
    if start_s is None or end_s is None:
        raise ReplayError("give an event, or a start and an end")
    if not 0 < end_s - start_s <= MAX_WINDOW_S:
        raise ReplayError(f"a replay window lasts between 0 and {MAX_WINDOW_S:.0f} s")
    return (pmu_ids or sorted(visible)), start_s, end_s


def load_plan(
    user: AnyUser,
    *,
    event_id: int | None,
    pmu_ids: list[int],
    start_s: float | None,
    end_s: float | None,
    speed: int,
    frame_interval_s: float,
    points_per_s: int,
) -> ReplayPlan:
    """Read the window from the historian and cut it into frames paced for `speed` (sync, ORM)."""
    if speed not in SPEEDS:
        raise ReplayError("replay speed is 1x to 10x")
    ids, start, end = replay_window(user, event_id, pmu_ids, start_s, end_s)
    pmus = list(visible_pmus(user).filter(pk__in=ids).select_related("bus"))
    if len(pmus) != len(set(ids)):
        raise ReplayError("a PMU of the replay is not visible")
    start_dt, end_dt = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    try:
        windows = history.read_windows(pmus, start_dt, end_dt, REPLAY_QUANTITIES)
    except history.HistoryUnavailable as exc:
        raise ReplayError(str(exc)) from exc
    span_s = frame_interval_s * speed
    frames = build_frames(windows, start, end, span_s, max(1, round(points_per_s * span_s)))
    events = access.visible_events(user).filter(started_at__gte=start_dt, started_at__lt=end_dt)
    visible_keys = {pmu.pk for pmu in pmus}
    visibility = user_visibility(user)
    alarms = []
    for event in events.order_by("started_at").prefetch_related("pmus", "substations"):
        shown = redact_event(event_payload(event), visibility)
        alarms.append(
            {
                **{k: shown[k] for k in ("event_id", "kind", "severity", "state", "summary", "started_at")},
                "started_at_s": event.started_at.timestamp(),
                "pmu_ids": [pk for pk in shown["pmu_ids"] if pk in visible_keys],
                "quantities": shown["quantities"],
            }
        )
    return ReplayPlan(start_s=start, end_s=end, speed=speed, frames=frames, alarms=alarms)
