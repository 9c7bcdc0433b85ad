"""Websocket consumers: forward what the pdc and workers publish, scoped to what the user may see.

Every consumer refuses the handshake (HTTP 403) for anonymous users, users without a role and
requests naming a PMU the user may not see.  Snapshots are coalesced and decimated so a browser
gets at most `WAMS_LIVE_RATE_HZ` updates a second, however fast the producers publish.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import Http404

from dashboards import access, incidents, livefilter, replay
from wams import live
from wams.detection.services import redact_event
from wams.grid.services import Visibility, user_visibility

# Refresh a socket's scope (sharing may change while a page is open) at most this often.
SCOPE_REFRESH_S = 30.0
# Live decimation: instants of measurement time kept per second per PMU (enough for 0.1-2 Hz modes).
LIVE_POINTS_PER_S = 10
# Topics a page may ask for (`?topics=alarms,links`); all by default.
TOPICS = {
    "snapshots": live.GROUP_SNAPSHOTS,
    "links": live.GROUP_LINKS,
    "alarms": live.GROUP_ALARMS,
    "control": live.GROUP_CONTROL,
}
# Incidents travel with the alarms: a page asking for alarms gets them too (their own group once
# wams.live names one; until then they arrive on the alarm group, see dashboards.apps).
GROUP_INCIDENTS: str | None = getattr(live, "GROUP_INCIDENTS", None)
if GROUP_INCIDENTS is not None and GROUP_INCIDENTS != live.GROUP_ALARMS:
    TOPICS["incidents"] = GROUP_INCIDENTS
# Close codes sent after the handshake (before it, a refusal is an HTTP 403).
CLOSE_FORBIDDEN = 4403


def stale_after_s() -> float:
    """Return how old the newest measurement may be before a page calls it stale."""
    return settings.WAMS_PDC_WAIT_TIME_MS / 1000.0 + 1.5


def parse_ids(raw: str) -> list[int] | None:
    """Parse a comma-separated id list; None when malformed."""
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            return None
        ids.append(int(part))
    return ids


class LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Forward live snapshots, link states, alarms and control progress for the user's PMUs."""

    access: access.Scope
    pmu_keys: frozenset[str]
    stream_ids: frozenset[int]
    selection: list[int]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(access.can_view_pages)(user):
            await self.close()
            return
        self.access = await database_sync_to_async(access.load_scope)(user)
        self.scope_loaded_at = time.monotonic()
        selection = self.requested_pmus()
        if selection is None or not self.access.allows_pmus(selection):
            await self.close()
            return
        self.selection = selection
        self.apply_scope()
        if not await self.prepare():
            await self.close()
            return
        rate_hz = max(1, settings.WAMS_LIVE_RATE_HZ)
        self.interval_s = 1.0 / rate_hz
        points_per_s = self.points_per_s()
        self.snapshots = livefilter.Coalescer(points_per_s)
        self.channels_buffer = livefilter.Coalescer(points_per_s)
        self.last_flush = 0.0
        self.flush_task: asyncio.Task[None] | None = None
        self.joined: list[str] = []
        for group in self.groups_to_join():
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        await self.send_json(self.hello(rate_hz))
        await self.started()

    async def prepare(self) -> bool:
        """Do what a subclass needs before accepting; False refuses the socket."""
        return True

    async def started(self) -> None:
        """Do what a subclass needs once the socket is open."""

    def query(self, name: str) -> str:
        """Return one query-string parameter ('' when absent)."""
        return parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name, [""])[0]

    def points_per_s(self) -> int:
        """Return the instants per second of measurement time the page asks for (1 to 10; 10 by default)."""
        raw = self.query("points")
        return min(LIVE_POINTS_PER_S, max(1, int(raw))) if raw.isdigit() else LIVE_POINTS_PER_S

    def requested_pmus(self) -> list[int] | None:
        """Return the PMU ids the page asks for (empty: all visible), or None when malformed."""
        return parse_ids(self.query("pmus"))

    def apply_scope(self) -> None:
        """Derive the PMU keys and streams this socket forwards."""
        ids = set(self.selection) if self.selection else set(self.access.pmu_ids)
        ids &= self.access.pmu_ids
        self.pmu_keys = frozenset(str(pmu_id) for pmu_id in ids)
        self.stream_ids = frozenset(self.access.pmu_streams[pmu_id] for pmu_id in ids)

    def groups_to_join(self) -> list[str]:
        """Return the channel-layer groups this socket listens to (all, or the `topics` asked for)."""
        topics = {topic for topic in self.query("topics").split(",") if topic}
        if "alarms" in topics:
            topics.add("incidents")
        return [group for topic, group in TOPICS.items() if not topics or topic in topics]

    def hello(self, rate_hz: int) -> dict[str, Any]:
        """Return the first message: what this socket carries and how to judge staleness."""
        return {
            "type": "hello",
            "server_time": time.time(),
            "rate_hz": rate_hz,
            "points_per_s": self.snapshots.points_per_s,
            "stale_after_s": stale_after_s(),
            "pmus": sorted(int(key) for key in self.pmu_keys),
            "replay": None,
        }

    async def disconnect(self, code: int) -> None:
        task = getattr(self, "flush_task", None)
        if task is not None:
            task.cancel()
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def refresh_scope(self) -> None:
        """Re-read what the user may see when the cached scope is old; close if the selection is gone."""
        if time.monotonic() - self.scope_loaded_at < SCOPE_REFRESH_S:
            return
        self.scope_loaded_at = time.monotonic()
        self.access = await database_sync_to_async(access.load_scope)(self.scope["user"])
        if self.selection and not self.access.allows_pmus(self.selection):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.apply_scope()

    # Channel-layer handlers (event type 'live.x' -> method 'live_x').

    async def live_snapshot(self, event: dict[str, Any]) -> None:
        await self.refresh_scope()
        payload = event["payload"]
        if "channels" in payload:
            if str(payload.get("pmu_id")) in self.pmu_keys:
                self.channels_buffer.add(payload)
                await self.schedule_flush()
            return
        filtered = livefilter.filter_snapshot(payload, self.pmu_keys)
        if filtered is not None:
            self.snapshots.add(filtered)
            await self.schedule_flush()

    async def live_link(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if payload.get("stream_id") in self.stream_ids:
            await self.send_json({"type": "link", **payload})

    async def live_incident(self, event: dict[str, Any]) -> None:
        """Forward an incident as this user may see it (redacted, with its page and map highlight)."""
        shown = await database_sync_to_async(incidents.live_incident)(self.scope["user"], event["payload"])
        if shown is not None:
            await self.send_json({"type": "incident", **shown})

    async def live_alarm(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if "incident_id" in payload and "event_id" not in payload:  # an incident on the alarm group
            await self.live_incident(event)
            return
        pmu_ids = [pmu_id for pmu_id in payload.get("pmu_ids") or [] if str(pmu_id) in self.pmu_keys]
        if not pmu_ids:
            if payload.get("pmu_ids"):
                return
            # An event naming no PMU: ask the database, as the events page does.
            allowed = await database_sync_to_async(access.event_visible)(self.scope["user"], payload.get("event_id"))
            if not allowed:
                return
        shown = redact_event(payload, await self.visibility())
        await self.send_json({"type": "alarm", **shown, "pmu_ids": pmu_ids})

    async def visibility(self) -> Visibility:
        """Return what the user may see for alarm redaction, re-read as often as the scope."""
        cached = getattr(self, "_visibility", None)
        if cached is None or time.monotonic() - cached[1] >= SCOPE_REFRESH_S:
            cached = (await database_sync_to_async(user_visibility)(self.scope["user"]), time.monotonic())
            self._visibility = cached
        return cached[0]

    async def live_control(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if payload.get("device_id") in self.access.device_ids:
            await self.send_json({"type": "control", **payload})

    # Rate limiting: send at once when the last update is older than the interval, else later.

    async def schedule_flush(self) -> None:
        """Send queued data now or at the next free slot of the update rate."""
        if self.flush_task is not None:
            return
        wait_s = self.last_flush + self.interval_s - time.monotonic()
        if wait_s <= 0:
            await self.flush()
        else:
            self.flush_task = asyncio.ensure_future(self.flush_later(wait_s))

    async def flush_later(self, wait_s: float) -> None:
        """Sleep until the next slot, then send."""
        await asyncio.sleep(wait_s)
        self.flush_task = None
        await self.flush()

    async def flush(self) -> None:
        """Send everything queued as at most one snapshot and one channel update."""
        self.last_flush = time.monotonic()
        snapshot = self.snapshots.take()
        if snapshot is not None:
            await self.send_json({"type": "snapshot", **snapshot, "server_time": time.time()})
        channels = self.channels_buffer.take()
        if channels is not None:
            await self.send_json({"type": "channels", **channels, "server_time": time.time()})


class PmuConsumer(LiveConsumer):
    """Live data of one PMU (every channel when the pdc publishes them), its link and its alarms."""

    def requested_pmus(self) -> list[int] | None:
        return [int(self.scope["url_route"]["kwargs"]["pmu_id"])]

    def groups_to_join(self) -> list[str]:
        return [*super().groups_to_join(), live.group_pmu(self.selection[0])]


class ReplayConsumer(LiveConsumer):
    """Send a stored window (or an event's) in the live format, paced at 1x-10x; joins no live group."""

    plan: replay.ReplayPlan

    async def prepare(self) -> bool:
        try:
            event_id = int(self.query("event")) if self.query("event") else None
            start_s = float(self.query("start")) if self.query("start") else None
            end_s = float(self.query("end")) if self.query("end") else None
            speed = int(self.query("speed") or "1")
        except ValueError:
            return False
        rate_hz = max(1, settings.WAMS_LIVE_RATE_HZ)
        try:
            self.plan = await database_sync_to_async(replay.load_plan)(
                self.scope["user"],
                event_id=event_id,
                pmu_ids=self.selection,
                start_s=start_s,
                end_s=end_s,
                speed=speed,
                frame_interval_s=1.0 / rate_hz,
                points_per_s=self.points_per_s(),
            )
        except (replay.ReplayError, Http404):
            return False
        return True

    def groups_to_join(self) -> list[str]:
        return []

    def hello(self, rate_hz: int) -> dict[str, Any]:
        message = super().hello(rate_hz)
        message["replay"] = {"start": self.plan.start_s, "end": self.plan.end_s, "speed": self.plan.speed}
        return message

    async def started(self) -> None:
        self.flush_task = asyncio.ensure_future(self.play())

    async def play(self) -> None:
        """Send each frame when its wall-clock slot comes, alarms when the replay clock passes them."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        alarms = list(self.plan.alarms)
        frame_wall_s = 1.0 / max(1, settings.WAMS_LIVE_RATE_HZ)
        for k, frame in enumerate(self.plan.frames):
            await asyncio.sleep(max(0.0, started + (k + 1) * frame_wall_s - loop.time()))
            replay_state = {"clock": frame.clock_s, "speed": self.plan.speed}
            if frame.payload["t"]:
                await self.send_json(
                    {"type": "snapshot", **frame.payload, "server_time": time.time(), "replay": replay_state}
                )
            while alarms and alarms[0]["started_at_s"] <= frame.clock_s:
                await self.send_json({"type": "alarm", **alarms.pop(0), "replay": replay_state})
        await self.send_json({"type": "replay_end", "clock": self.plan.end_s})
