"""The whole simulated field: the real-time grid, its C37.118 streams and its IEC 104 RTUs."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from wams.simulator.engine.process import Simulator
from wams.simulator.fleet.rtu import RtuFleet
from wams.simulator.fleet.spec import FleetSpec
from wams.simulator.fleet.streams import InstantSampler, SimulatedStream
from wams.simulator.fleet.tls import ensure_self_signed, server_context

logger = logging.getLogger(__name__)


class Fleet:
    """Start and stop everything together; find a stream to restart, reconfigure or flag.

    Usage (inside a running event loop)::

        sim = SimulatorProcess("ieee39", truth_dir=Path("var/truth"))   # or RealTimeSimulator(...)
        fleet = Fleet(sim, demo_fleet_spec())
        await fleet.start()
        ...
        await fleet.stop()
    """

    def __init__(self, sim: Simulator, spec: FleetSpec, *, tls_dir: Path | None = None) -> None:
        """Prepare the streams and RTUs of `spec` on `sim`."""
        self.sim = sim
        self.spec = spec
        self.sampler = InstantSampler(sim)
        self.tls_files: tuple[Path, Path] | None = None
        context: ssl.SSLContext | None = None
        if any(s.tls for s in spec.streams):
            self.tls_files = ensure_self_signed(tls_dir or Path("var/tls"))
            context = server_context(*self.tls_files)
        self.streams = [SimulatedStream(s, sim, self.sampler, ssl_context=context) for s in spec.streams if s.enabled]
        self.rtus = RtuFleet(sim, spec.rtus) if spec.rtus else None
        self._status_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the grid clock, every stream's paths and every RTU."""
        self.sim.start()
        for stream in self.streams:
            await stream.start()
        if self.rtus is not None:
            self.rtus.start()
            self._status_task = asyncio.get_running_loop().create_task(self._follow_breakers())
        self.sim.set_inventory(
            [s.inventory() for s in self.streams], self.rtus.inventory() if self.rtus is not None else []
        )

    async def _follow_breakers(self) -> None:
        """Report breaker changes made by scenarios on the RTUs' status points."""
        while True:
            await asyncio.sleep(0.2)
            if self.rtus is not None:
                self.rtus.sync_status()

    async def stop(self) -> None:
        """Stop the RTUs, the streams and the grid clock."""
        if self._status_task is not None:
            self._status_task.cancel()
            self._status_task = None
        if self.rtus is not None:
            self.rtus.stop()
        for stream in self.streams:
            await stream.stop()
        self.sim.stop()
        stats = self.sampler.stats
        logger.info(
            "instants served: %d, %d waited for the simulation (longest %.3f s), %d sent as invalid data",
            stats.instants,
            stats.waited,
            stats.max_wait_s,
            stats.invalid,
        )

    def stream(self, key: str | int) -> SimulatedStream:
        """Return a stream by name or IDCODE (of the stream or of one of its PMUs)."""
        for stream in self.streams:
            if stream.spec.name == key or stream.spec.idcode == key:
                return stream
            if any(p.idcode == key for p in stream.spec.pmus):
                return stream
        raise KeyError(f"no stream {key!r}")

    def inventory(self) -> dict[str, Any]:
        """Describe what is served: streams with their path ports, RTUs with their points."""
        return {
            "streams": [s.inventory() for s in self.streams],
            "rtus": self.rtus.inventory() if self.rtus is not None else [],
        }
