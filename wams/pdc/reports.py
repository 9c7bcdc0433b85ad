"""What a link is and reports: its states, its tuning and its statistics (no Django)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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

    def payload(self) -> dict[str, object]:
        """Return the EVENT_LINK payload of wams.live."""
        return {
            "stream_id": self.stream_id,
            "stream": self.stream_name,
            "state": self.state,
            "path": self.path_name or None,
            "rate_fps": round(self.rate_fps, 2),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "frames_received": self.frames_received,
            "frames_bad": self.frames_bad,
            "frames_late": self.frames_late,
            "gaps": self.gaps,
        }
