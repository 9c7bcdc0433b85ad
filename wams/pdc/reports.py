"""What a link is and reports: its states, its tuning and its statistics (no Django)."""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


class State(enum.StrEnum):
    """Link states; the values are those of LinkState.State."""

    CONNECTING = "connecting"
    CONFIGURING = "configuring"
    STREAMING = "streaming"
    STALE = "stale"
    BACKING_OFF = "backing_off"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """Timing of connection, stale detection and reconnection."""

    connect_timeout_s: float = 2.0  # per request; the client retries a request three times
    stale_periods: int = 5  # no frame for this many reporting periods: stale
    stale_reconnect_s: float = 3.0  # no frame for this long: drop the connection and reconnect
    backoff_base_s: float = 0.25
    backoff_max_s: float = 3.0  # keeps a returning device streaming again within seconds
    backoff_jitter: float = 0.2  # +-20 %: links that failed together do not retry together
    try_cfg3: bool = True
    cfg3_timeout_s: float = 0.5
    tls_ca_file: str = ""
    report_down_after_s: float = 30.0  # a link not streaming yet logs its failures at DEBUG until then


@dataclass(frozen=True, slots=True)
class LinkReport:
    """The statistics of one link over the last reporting interval, ready for LinkState."""

    stream_id: int
    stream_name: str
    state: str
    path_id: int | None
    path_name: str
    rate_fps: float
    latency_ms: float | None
    frames_received: int
    frames_bad: int
    frames_late: int
    gaps: int
    reconnects: int
    last_frame_at_s: float | None
    last_error: str


def link_payload(report: LinkReport) -> dict[str, object]:
    """Return what is shown of one link (the EVENT_LINK payload): pages, the API and websockets all use it."""
    last_frame_at = report.last_frame_at_s
    return {
        "stream_id": report.stream_id,
        "stream": report.stream_name,
        "state": report.state,
        "path": report.path_name or None,
        "rate_fps": round(report.rate_fps, 2),
        "latency_ms": None if report.latency_ms is None else round(report.latency_ms, 2),
        "frames_received": report.frames_received,
        "frames_bad": report.frames_bad,
        "frames_late": report.frames_late,
        "gaps": report.gaps,
        "reconnects": report.reconnects,
        "last_frame_at": None if last_frame_at is None else datetime.fromtimestamp(last_frame_at, tz=UTC).isoformat(),
        "last_error": report.last_error,
    }


# How links are counted in the summary: the states of a link on its way up count as connecting.
SUMMARY_GROUPS = {
    State.STREAMING: "streaming",
    State.CONNECTING: "connecting",
    State.CONFIGURING: "connecting",
    State.BACKING_OFF: "connecting",
    State.STALE: "stale",
    State.DISABLED: "disabled",
}
SUMMARY_ORDER = ("streaming", "connecting", "stale", "disabled")


def summarize_states(states: Iterable[str]) -> tuple[str, bool]:
    """Return a count of link states ("13 links: 9 streaming, 4 connecting") and whether every enabled one streams."""
    counts = Counter(SUMMARY_GROUPS[State(state)] for state in states)
    total = sum(counts.values())
    if not total:
        return "", False
    parts = [f"{counts[group]} {group}" for group in SUMMARY_ORDER if counts[group]]
    all_streaming = counts["streaming"] > 0 and counts["streaming"] + counts["disabled"] == total
    return f"{total} link{'s' if total != 1 else ''}: " + ", ".join(parts), all_streaming


class LinkSummary:
    """Decide when to log the link count: while links come up, every `interval_s`; then when it changes.

    During start-up (until every enabled link has streamed at once, or `startup_s` has passed) the
    same count is repeated every `interval_s`, so the operator sees the system is still coming up.
    Afterwards a count is logged only when it changes (at most every `interval_s` while it is not
    back to all streaming), the "all streaming" count at once and once.
    """

    def __init__(self, started_s: float, interval_s: float = 5.0, startup_s: float = 120.0) -> None:
        self.started_s = started_s
        self.interval_s = interval_s
        self.startup_s = startup_s
        self.settled = False  # every enabled link has streamed at the same time
        self._last_line = ""
        self._last_s = -math.inf

    def update(self, states: Iterable[str], now_s: float) -> str | None:
        """Return the line to log now for these link states, or None."""
        line, all_streaming = summarize_states(states)
        if not line:
            return None
        due = now_s - self._last_s >= self.interval_s
        if line == self._last_line:
            starting = not self.settled and now_s - self.started_s < self.startup_s
            if all_streaming or not starting or not due:
                return None
        elif not all_streaming and not due:
            return None
        self.settled = self.settled or all_streaming
        self._last_line, self._last_s = line, now_s
        return line
