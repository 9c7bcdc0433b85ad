"""Run the pdc process: the device links of one shard, alignment, live feed, outputs, hand-off."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from wams.pdc.runner import run_event_loop, run_pdc


class Command(BaseCommand):
    help = "Run the phasor data concentrator for one shard until SIGINT or SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shard", type=int, default=settings.WAMS_PDC_SHARD, help="Default WAMS_PDC_SHARD.")
        parser.add_argument("--shards", type=int, default=settings.WAMS_PDC_SHARDS, help="Default WAMS_PDC_SHARDS.")

    def handle(self, *args: Any, **options: Any) -> None:
        shard, shards = options["shard"], options["shards"]
        if shards < 1 or not 0 <= shard < shards:
            raise CommandError(f"shard {shard} of {shards}: need 0 <= shard < shards")
        run_event_loop(self.serve(shard, shards), settings.WAMS_PDC_EVENT_LOOP)

    async def serve(self, shard: int, shards: int) -> None:
        """Run the pdc until a signal asks it to stop."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        loop_name = type(loop).__module__.split(".")[0]
        self.stdout.write(f"pdc shard {shard}/{shards} running on {loop_name} (SIGINT or SIGTERM stops)")
        await run_pdc(stop, shard, shards)
        self.stdout.write("pdc stopped")
