"""Run the whole system in one process: web (Daphne), pdc and in-process tasks; the simulator beside it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from wams import welcome

logger = logging.getLogger(__name__)


def manifest_of(line: str) -> dict[str, Any] | None:
    """Return the simulator's start line (one JSON object with its run id and inventory) parsed, else None."""
    if not line.startswith("{"):
        return None
    try:
        manifest = json.loads(line)
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) and "run_id" in manifest else None


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest as indented JSON, replacing the previous run's in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(path)


def forward_simulator_output(lines: IO[bytes], write: Callable[[str], None], manifest: Path) -> None:
    """Copy the simulator's output lines, its manifest line replaced by a file and a short line naming it.

    The short line stays one JSON object with the run id and the ground-truth file, which scripts
    read from the log. Runs until the simulator closes its output, whatever goes wrong on the way
    (a simulator whose output nobody reads would block).
    """
    for raw in iter(lines.readline, b""):
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        try:
            for line in _shortened(text, manifest):
                write(line)
        except Exception:  # keep reading, or the simulator blocks on a full pipe
            logger.warning("could not copy a line of the simulator's output", exc_info=True)


def _shortened(text: str, manifest: Path) -> list[str]:
    """Return what to print for one simulator line: the manifest line becomes a file and two short lines."""
    found = manifest_of(text)
    if found is None:
        return [text]
    try:
        write_manifest(manifest, found)
    except OSError as exc:
        logger.warning("could not write the simulator manifest to %s: %s", manifest, exc)
        return [text]
    streams, rtus = len(found.get("streams", [])), len(found.get("rtus", []))
    short = {"run_id": found["run_id"], "truth": found.get("truth"), "manifest": str(manifest)}
    return [f"Simulator up: {streams} streams, {rtus} RTUs; manifest with their ports in {manifest}", json.dumps(short)]


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
        base_url = f"http://{options['host']}:{options['port']}/"
        lines = welcome.banner(
            base_url,
            scenario_command='manage.py run_embedded --sim-args "--scenario line_trip@60"',
            manifest=None if sim is None else welcome.manifest_path(),
        )
        self.stdout.write(self.style.SUCCESS(lines[0]))
        self.stdout.write("\n".join(lines[1:]))
        self.stdout.flush()
        try:
            server.run()
        finally:
            if sim is not None:
                self.stop_simulator(sim)
            stop_embedded_writer()  # store what the pdc handed over before the process ends

    def start_simulator(self, extra: str) -> subprocess.Popen[bytes]:
        """Start `manage.py simulate_grid` as a child in its own process group, its output copied by a thread."""
        manage = Path(settings.BASE_DIR) / "manage.py"
        command = [sys.executable, str(manage), "simulate_grid", *extra.split()]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # its lines arrive as written, not when a buffer fills
        sim = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE)
        assert sim.stdout is not None
        copier = threading.Thread(
            target=forward_simulator_output,
            args=(sim.stdout, self._write_line, welcome.manifest_path()),
            name="simulator output",
            daemon=True,
        )
        copier.start()
        return sim

    def _write_line(self, text: str) -> None:
        """Write one line and flush it (the log may be a file that is read while the system runs)."""
        self.stdout.write(text)
        self.stdout.flush()

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
