"""Run the real-time grid simulation with its PMU and RTU fleet until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from wams.simulator import services
from wams.simulator.engine.cases import CASES
from wams.simulator.engine.process import SimulatorProcess
from wams.simulator.engine.scenarios import parse_scenario_arg, scenario_names
from wams.simulator.fleet.demo import demo_fleet_spec
from wams.simulator.fleet.fleet import Fleet
from wams.simulator.fleet.spec import FleetSpec

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0


class Command(BaseCommand):
    help = (
        "Simulate the grid in real time (ANDES) and serve its PMUs (C37.118, one server per path) and "
        "RTUs (IEC 60870-5-104) from the grid model. Scenarios: " + ", ".join(scenario_names())
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--case", choices=sorted(CASES), default="ieee39")
        parser.add_argument(
            "--scenario",
            action="append",
            default=[],
            metavar="NAME[:k=v,...][@T_SECONDS]",
            help="Start a scenario, optionally with parameters, T seconds after the start (repeatable).",
        )
        parser.add_argument("--quiet-grid", action="store_true", help="No ambient load variation by default.")
        parser.add_argument("--truth-dir", default=None, help="Ground-truth JSON and COMTRADE directory.")
        parser.add_argument("--speed", type=float, default=1.0, help="Simulated seconds per wall-clock second.")
        parser.add_argument("--duration", type=float, default=None, help="Stop after this many seconds.")
        parser.add_argument(
            "--fleet",
            choices=("grid", "demo"),
            default="grid",
            help="grid: PMUs and RTUs from the database; demo: the built-in IEEE 39-bus layout.",
        )
        parser.add_argument("--no-rtus", action="store_true", help="Serve no IEC 104 RTUs.")

    def handle(self, *args: Any, **options: Any) -> None:
        scenarios = []
        try:
            for text in options["scenario"]:
                scenarios.append(parse_scenario_arg(text))
        except (KeyError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if not options["quiet_grid"] and not any(name == "ambient" for name, _p, _t in scenarios):
            scenarios.insert(0, ("ambient", {}, 0.0))
        truth_dir = Path(options["truth_dir"] or Path(getattr(settings, "VAR_DIR", "var")) / "truth")
        spec = self._fleet_spec(options)
        if options["case"] != "ieee39" and options["fleet"] == "grid":
            self.stderr.write("The grid model is the IEEE 39-bus demo; serving RTUs only where buses exist.")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._run(options, spec, truth_dir, scenarios))

    def _fleet_spec(self, options: dict[str, Any]) -> FleetSpec:
        if options["fleet"] == "demo":
            spec = demo_fleet_spec(with_rtus=not options["no_rtus"])
        else:
            spec = services.fleet_spec_from_grid()
            if not spec.streams:
                self.stderr.write("No enabled streams in the grid model; load it with `manage.py load_demo`.")
        if options["no_rtus"]:
            spec = FleetSpec(spec.streams, ())
        return spec

    async def _run(
        self, options: dict[str, Any], spec: FleetSpec, truth_dir: Path, scenarios: list[tuple[str, dict, Any]]
    ) -> None:
        sim = SimulatorProcess(options["case"], speed=options["speed"], truth_dir=truth_dir)
        for name, params, at_s in scenarios:
            sim.schedule(name, at_s, **params)
        fleet = Fleet(sim, spec, tls_dir=truth_dir.parent / "tls")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await fleet.start()
        self.stdout.write(json.dumps({"run_id": sim.run_id, "truth": str(sim.truth_path), **fleet.inventory()}))
        self.stdout.write(f"Simulating {options['case']}; Ctrl-C to stop.")
        poller = loop.create_task(self._poll_requests(fleet))
        try:
            if options["duration"]:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), options["duration"])
            else:
                await stop.wait()
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await fleet.stop()
            self.stdout.write(f"Stopped; ground truth in {sim.truth_path}")

    async def _poll_requests(self, fleet: Fleet) -> None:
        """Apply requests made in the admin while running."""
        while True:
            try:
                requests = await sync_to_async(services.pending_requests)()
            except Exception:  # database away: keep simulating
                logger.exception("cannot read simulator requests")
                requests = []
            for request in requests:
                try:
                    message = await services.apply_request(fleet, request)
                    ok = True
                except Exception as exc:  # noqa: BLE001 - reported on the request; the grid keeps running
                    message, ok = f"{type(exc).__name__}: {exc}", False
                await sync_to_async(services.finish_request)(request, ok=ok, message=message, run_id=fleet.sim.run_id)
            await asyncio.sleep(POLL_INTERVAL_S)
