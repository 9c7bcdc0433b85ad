"""Publish a synthetic live feed (snapshots and link states) to drive the pages without field devices."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboards.synthetic import SyntheticGrid, link_payloads, run_feed
from wams import live
from wams.grid.models import Pmu


class Command(BaseCommand):
    help = "Publish synthetic PMU snapshots through the channel layer (needs REDIS_URL shared with the web process)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fps", type=int, default=30, help="Reporting rate of the synthetic PMUs.")
        parser.add_argument("--seconds", type=float, default=0.0, help="Stop after this long (0: until Ctrl-C).")
        parser.add_argument("--dip-after", type=float, default=None, help="Start a frequency dip after N seconds.")
        parser.add_argument("--stop-pmu", type=int, action="append", default=[], help="PMU id that sends nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.EMBEDDED:
            raise CommandError("Set REDIS_URL: the in-memory channel layer does not reach another process.")
        pmus = list(Pmu.objects.filter(enabled=True).select_related("stream"))
        if not pmus:
            raise CommandError("No PMU in the database (run load_demo first).")
        grid = SyntheticGrid([pmu.pk for pmu in pmus], rate_fps=options["fps"], stopped=set(options["stop_pmu"]))
        if options["dip_after"] is not None:
            grid.dip_at_s = time.time() + options["dip_after"]
        streams = sorted({(pmu.stream_id, pmu.stream.name) for pmu in pmus})
        asyncio.run(self.run(grid, streams, options["seconds"]))

    async def run(self, grid: SyntheticGrid, streams: list[tuple[int, str]], seconds: float) -> None:
        """Feed snapshots and a link state per stream every second until stopped."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if seconds > 0:
            loop.call_later(seconds, stop.set)
        feed = asyncio.ensure_future(run_feed(grid, stop, wait_time_ms=settings.WAMS_PDC_WAIT_TIME_MS))
        while not stop.is_set():
            for payload in link_payloads(streams, rate_fps=float(grid.rate_fps)):
                await live.apublish(live.GROUP_LINKS, live.EVENT_LINK, payload)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        sent = await feed
        self.stdout.write(f"published {sent} snapshots")
