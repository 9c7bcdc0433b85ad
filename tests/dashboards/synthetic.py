"""A fake pdc for the pages: a synthetic live feed in the pdc's snapshot and link formats, no field devices.

Used by the browser tests, the latency benchmark and the screenshots (through `livesite.Feed`). It
lives with the tests: the pages never publish to the channel layer, only `wams.live` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wams import live
from wams.pdc.reports import LinkReport, link_payload

NOMINAL_HZ = 60.0


@dataclass
class SyntheticGrid:
    """A grid whose PMUs swing gently around 60 Hz; PMUs can be stopped and a frequency dip started."""

    pmu_ids: list[int]
    rate_fps: int = 30
    seed: int = 7
    stopped: set[int] = field(default_factory=set)
    dip_at_s: float | None = None  # wall time of a generator trip: frequency falls ~0.3 Hz, recovers
    _phase: np.ndarray = field(init=False)
    _angle_deg: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        n = len(self.pmu_ids)
        self._phase = rng.uniform(0, 2 * math.pi, n)  # (n,) rad
        self._angle_deg = rng.uniform(-40.0, 10.0, n)  # (n,) deg, steady angle relative to the system
        self._magnitude_pu = rng.uniform(0.97, 1.04, n)  # (n,) pu

    def frequency_hz(self, t_s: np.ndarray) -> np.ndarray:
        """Return frequency (n_instants, n_pmus) in Hz at measurement instants t_s (n_instants,)."""
        t = t_s[:, None]
        swing = 0.012 * np.sin(2 * math.pi * 0.07 * t + self._phase) + 0.004 * np.sin(2 * math.pi * 0.6 * t)
        return NOMINAL_HZ + swing + self._dip_hz(t)

    def _dip_hz(self, t: np.ndarray) -> np.ndarray:
        if self.dip_at_s is None:
            return np.zeros_like(t)
        dt = np.clip(t - self.dip_at_s, 0.0, None)
        return -0.3 * (1 - np.exp(-dt / 1.5)) * np.exp(-dt / 30.0)

    def snapshot(self, t_s: np.ndarray) -> dict[str, Any]:
        """Return the live payload for measurement instants t_s (n_instants,) s since the epoch."""
        f = self.frequency_hz(t_s)  # (n_instants, n_pmus) Hz
        rocof = (self.frequency_hz(t_s + 0.01) - self.frequency_hz(t_s - 0.01)) / 0.02  # Hz/s
        common_deg = 360.0 * 0.002 * t_s[:, None]  # slow rotation of the whole system
        angle = (self._angle_deg + common_deg + 180.0) % 360.0 - 180.0
        magnitude = self._magnitude_pu + 0.004 * np.sin(2 * math.pi * 0.05 * t_s[:, None] + self._phase)
        pmus: dict[str, Any] = {}
        for j, pmu_id in enumerate(self.pmu_ids):
            if pmu_id in self.stopped:
                missing: list[Any] = [None] * len(t_s)
                pmus[str(pmu_id)] = {
                    "frequency_hz": missing,
                    "rocof_hz_per_s": missing,
                    "magnitude_pu": missing,
                    "angle_deg": missing,
                    "stat": missing,
                }
                continue
            pmus[str(pmu_id)] = {
                "frequency_hz": [round(float(v), 6) for v in f[:, j]],
                "rocof_hz_per_s": [round(float(v), 5) for v in rocof[:, j]],
                "magnitude_pu": [round(float(v), 5) for v in magnitude[:, j]],
                "angle_deg": [round(float(v), 4) for v in angle[:, j]],
                "stat": [0] * len(t_s),
            }
        return {"t": [float(v) for v in t_s], "sent_at": time.time(), "pmus": pmus}


def instants_between(after_s: float, until_s: float, rate_fps: int) -> np.ndarray:
    """Return the reporting instants in (after_s, until_s] on the rate's grid (n,) s."""
    first = math.floor(after_s * rate_fps) + 1
    last = math.floor(until_s * rate_fps)
    return np.arange(first, last + 1, dtype=np.float64) / rate_fps


async def run_feed(
    grid: SyntheticGrid,
    stop: asyncio.Event,
    *,
    publish_hz: float = 10.0,
    wait_time_ms: float = 100.0,
    publish: Callable[[str, str, dict[str, Any]], Any] = live.apublish,
    on_publish: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Publish snapshots like the pdc: every 1/publish_hz s, the instants older than the wait time; return count."""
    last_s = time.time() - wait_time_ms / 1000.0
    sent = 0
    while not stop.is_set():
        until_s = time.time() - wait_time_ms / 1000.0
        t_s = instants_between(last_s, until_s, grid.rate_fps)
        if len(t_s):
            payload = grid.snapshot(t_s)
            await publish(live.GROUP_SNAPSHOTS, live.EVENT_SNAPSHOT, payload)
            if on_publish is not None:
                on_publish(payload)
            sent += 1
            last_s = float(t_s[-1])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0 / publish_hz)
    return sent


async def publish_link_states(
    streams: Collection[tuple[int, str]],
    stop: asyncio.Event,
    *,
    rate_fps: float = 30.0,
    publish: Callable[[str, str, dict[str, Any]], Any] = live.apublish,
) -> None:
    """Publish a streaming link state per (stream id, name) every second, as the pdc does, until stopped."""
    while not stop.is_set():
        for payload in link_payloads(streams, rate_fps=rate_fps):
            await publish(live.GROUP_LINKS, live.EVENT_LINK, payload)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def feed_live(
    grid: SyntheticGrid,
    streams: Collection[tuple[int, str]],
    stop: asyncio.Event,
    *,
    wait_time_ms: float = 100.0,
    on_publish: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Publish snapshots and link states like the pdc until stopped; return how many snapshots were sent."""
    links = asyncio.ensure_future(publish_link_states(streams, stop, rate_fps=float(grid.rate_fps)))
    sent = await run_feed(grid, stop, wait_time_ms=wait_time_ms, on_publish=on_publish)
    await links
    return sent


def link_payloads(
    streams: Collection[tuple[int, str]], state: str = "streaming", rate_fps: float = 30.0
) -> list[dict[str, Any]]:
    """Return EVENT_LINK payloads for (stream id, name) pairs, built as the pdc builds them."""
    now_s = time.time()
    return [
        link_payload(
            LinkReport(
                stream_id=stream_id,
                stream_name=name,
                state=state,
                path_id=None,
                path_name="fibre",
                rate_fps=rate_fps,
                latency_ms=12.0,
                frames_received=1000,
                frames_bad=0,
                frames_late=0,
                gaps=0,
                reconnects=0,
                last_frame_at_s=now_s,
                last_error="",
            )
        )
        for stream_id, name in streams
    ]
