"""Run the whole system in one process: web (Daphne), pdc and in-process tasks; the simulator beside it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run web, pdc and tasks in one process (embedded default), with the grid simulator as a child."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.WAMS_HTTP_PORT)
        parser.add_argument("--no-sim", action="store_true", help="Do not start the grid simulator.")
        parser.add_argument("--sim-args", default="", help="Extra arguments for simulate_grid.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.EMBEDDED:
            raise CommandError("REDIS_URL is set: run the Procfile topology (manage.py run_topology) instead.")
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server, twisted_loop  # importing installs the asyncio reactor
        from twisted.internet import reactor

        from wams.asgi import application
        from wams.historian.handoff import stop_embedded_writer
        from wams.pdc.runner import run_pdc
        from wams.periodic import run_schedule

        sim = None if options["no_sim"] else self.start_simulator(options["sim_args"])
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []

        def start_background() -> None:
            tasks.append(twisted_loop.create_task(run_pdc(stop)))
            tasks.append(twisted_loop.create_task(run_schedule(stop)))

        def stop_background() -> Any:
            """Stop the pdc and the schedule, and let Twisted wait until they have finished."""
            from twisted.internet.defer import Deferred

            stop.set()
            pending = [task for task in tasks if not task.done()]
            if not pending:
                return None
            gathered = asyncio.gather(*pending, return_exceptions=True)
            return Deferred.fromFuture(asyncio.ensure_future(asyncio.wait_for(gathered, timeout=15), loop=twisted_loop))

        reactor.callWhenRunning(start_background)  # type: ignore[attr-defined]
        reactor.addSystemEventTrigger("before", "shutdown", stop_background)  # type: ignore[attr-defined,arg-type]
        server = Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=options["host"], port=options["port"]),
            signal_handlers=True,
            http_timeout=None,
            websocket_handshake_timeout=10,
        )
        self.stdout.write(self.style.SUCCESS(f"WAMS on http://{options['host']}:{options['port']}/ (Ctrl-C stops)"))
        try:
            server.run()
        finally:
            if sim is not None:
                self.stop_simulator(sim)
            stop_embedded_writer()  # store what the pdc handed over before the process ends

    def start_simulator(self, extra: str) -> subprocess.Popen[bytes]:
        """Start `manage.py simulate_grid` as a child in its own process group."""
        manage = Path(settings.BASE_DIR) / "manage.py"
        command = [sys.executable, str(manage), "simulate_grid", *extra.split()]
        return subprocess.Popen(command, env=os.environ.copy(), start_new_session=True)

    def stop_simulator(self, sim: subprocess.Popen[bytes]) -> None:
        """Stop the simulator's process group, forcefully after 10 s."""
        if sim.poll() is not None:
            return
        os.killpg(sim.pid, signal.SIGTERM)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(sim.pid, signal.SIGKILL)
            sim.wait()
