"""One simulated C37.118 stream: a server per communication path, each behind its relay."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from wams.simulator.engine.process import Simulator
from wams.simulator.engine.realtime import GridSample
from wams.simulator.fleet.meter import PmuFlags, StreamMeter
from wams.simulator.fleet.relay import Impairment, PathRelay
from wams.simulator.fleet.spec import PathSpec, StreamSpec
from wams.synchrophasor import PmuData, PmuServer

logger = logging.getLogger(__name__)


#: How long after its time stamp an instant may wait for the simulation before it is sent as invalid.
MAX_WAIT_S = 5.0
#: At most one warning about unsimulated instants per this many seconds.
WARN_INTERVAL_S = 10.0


@dataclass
class SamplerStats:
    """What the simulation's lag did to the reporting instants served."""

    instants: int = 0  #: distinct instants sampled
    waited: int = 0  #: instants that had to wait for the simulation (sent late, or invalid after the bound)
    invalid: int = 0  #: instants still unsimulated after the wait (sent flagged "data invalid")
    max_wait_s: float = 0.0  #: longest wait of an instant


class InstantSampler:
    """Share one grid sample per reporting instant among every stream (small LRU).

    An instant the simulation has not reached yet is waited for (asynchronously) until `max_wait_s`
    after its time stamp: the frame then leaves late with the true values. If it is still not
    simulated it is returned flagged (`GridSample.simulated` False), never with held values.
    """

    def __init__(self, sim: Simulator, keep: int = 16, *, max_wait_s: float = MAX_WAIT_S) -> None:
        """Sample `sim`, remembering the last `keep` instants."""
        self.sim = sim
        self.keep = keep
        self.max_wait_s = max_wait_s
        self.stats = SamplerStats()
        self._cache: OrderedDict[int, GridSample] = OrderedDict()
        self._sampling: dict[int, asyncio.Future[GridSample]] = {}
        self._invalid_since_warning = 0
        self._warned_at_s = -float("inf")

    async def at(self, soc: int, fraction: int, time_base: int) -> GridSample:
        """Return the grid at SOC + fraction / time_base, waiting for the simulation if needed."""
        key = soc * 1_000_000 + (fraction * 1_000_000) // time_base
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        task = self._sampling.get(key)
        if task is None:
            # One sampling per instant, however many streams ask; a stream stopping does not cancel it.
            task = asyncio.ensure_future(self._sample(key, soc + fraction / time_base))
            self._sampling[key] = task
            task.add_done_callback(lambda _done: self._sampling.pop(key, None))
        return await asyncio.shield(task)

    async def _sample(self, key: int, utc_s: float) -> GridSample:
        t_s = self.sim.sim_time_at(utc_s)
        if not self.sim.buffer.covers(t_s):
            began_s = time.time()
            await self.sim.buffer.wait_covered(t_s, utc_s + self.max_wait_s - began_s)
            self.stats.waited += 1
            self.stats.max_wait_s = max(self.stats.max_wait_s, time.time() - began_s)
        sample = self.sim.sample_utc(np.array([utc_s]))
        self.stats.instants += 1
        if not sample.simulated[0]:
            self._count_invalid(utc_s, t_s)
        self._cache[key] = sample
        while len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return sample

    def _count_invalid(self, utc_s: float, t_s: float) -> None:
        self.stats.invalid += 1
        self._invalid_since_warning += 1
        now_s = time.time()
        if now_s - self._warned_at_s >= WARN_INTERVAL_S:
            logger.warning(
                "simulation %.3f s behind instant %.3f after waiting: sent as invalid data "
                "(%d such instant(s) since the last warning, %d in all)",
                t_s - self.sim.buffer.end_s,
                utc_s,
                self._invalid_since_warning,
                self.stats.invalid,
            )
            self._warned_at_s = now_s
            self._invalid_since_warning = 0


class SimulatedStream:
    """Serve one stream on every enabled path; restart, reconfigure and flag on demand."""

    def __init__(
        self,
        spec: StreamSpec,
        sim: Simulator,
        sampler: InstantSampler,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Prepare the stream (nothing listens until `start`)."""
        self.spec = spec
        self.sim = sim
        self.sampler = sampler
        self.ssl_context = ssl_context if spec.tls else None
        self.meter = StreamMeter(spec, sim)
        self.servers: dict[str, PmuServer] = {}
        self.relays: dict[str, PathRelay] = {}
        self.paths = {p.name: p for p in spec.paths if p.enabled}

    async def _source(self, soc: int, fraction: int) -> list[PmuData]:
        return self.meter.measure(await self.sampler.at(soc, fraction, self.meter.config.time_base))

    def _server_for(self, path: PathSpec, udp_data_port: int | None) -> PmuServer:
        return PmuServer(
            self.meter.config,
            self._source,
            header=self.meter.header_text(),
            host="127.0.0.1",
            port=0,
            mode=path.transport,
            udp_data_port=udp_data_port,
            ssl=self.ssl_context,
        )

    async def start(self) -> None:
        """Open every path: start its relay on the path's port, then the server behind it."""
        for name, path in self.paths.items():
            relay = PathRelay(
                path.host,
                path.port,
                "127.0.0.1",
                0,
                transport=path.transport,
                impairment=Impairment(path.delay_ms, path.jitter_ms, path.loss_pct, path.outage),
                udp_out_port=path.udp_port,
                frame_aware=self.ssl_context is None,
                seed=self.spec.idcode,
            )
            await relay.start()
            self.relays[name] = relay
            await self._start_server(name)

    async def _start_server(self, name: str) -> None:
        path, relay = self.paths[name], self.relays[name]
        server = self._server_for(path, relay.udp_in_port)
        ports = await server.start()
        relay.retarget("127.0.0.1", ports.get("udp" if path.transport == "udp" else "tcp", 0))
        self.servers[name] = server

    async def stop(self) -> None:
        """Close every server and relay."""
        for server in self.servers.values():
            await server.stop()
        for relay in self.relays.values():
            await relay.stop()
        self.servers.clear()
        self.relays.clear()

    async def restart(self) -> None:
        """Restart the device: connections drop, the paths stay, the (new) configuration is served."""
        for name, server in list(self.servers.items()):
            await server.stop()
            self.relays[name].cut()
            await self._start_server(name)

    async def reconfigure(self, *, rate_fps: int | None = None, **pmu_fields: Any) -> None:
        """Change the rate or PMU formats (phasor_float, polar, freq_float, analog_float); restart.

        CFGCNT goes up and every PMU flags "configuration change" in STAT until the next change.
        """
        if rate_fps is not None:
            self.meter.rate_fps = rate_fps
        if pmu_fields:
            self.meter.pmu_specs = [replace(p, **pmu_fields) for p in self.meter.pmu_specs]
            flags = [plan.flags for plan in self.meter.plans]
            self.meter.plans = [self.meter._plan(p) for p in self.meter.pmu_specs]
            for plan, old in zip(self.meter.plans, flags):
                plan.flags = old
        self.meter.cfgcnt += 1
        for plan in self.meter.plans:
            plan.flags.config_changed = True
        self.meter.config = self.meter.build_config()
        await self.restart()

    def flags(self, idcode: int | None = None) -> PmuFlags:
        """Return the injectable STAT conditions of one PMU (default: the first)."""
        if idcode is None:
            return self.meter.plans[0].flags
        return self.meter.flags_of(idcode)

    def set_path(self, name: str, **impairment: Any) -> None:
        """Change a path's delay_ms, jitter_ms, loss_pct or outage while running."""
        relay = self.relays[name]
        outage = impairment.pop("outage", None)
        for key, value in impairment.items():
            setattr(relay.impairment, key, value)
        if outage is not None:
            relay.set_outage(bool(outage))

    def inventory(self) -> dict[str, Any]:
        """Describe the stream as served: IDCODE, rate, PMUs and every path's ports."""
        return {
            "name": self.spec.name,
            "idcode": self.spec.idcode,
            "rate_fps": self.meter.rate_fps,
            "cfgcnt": self.meter.cfgcnt,
            "tls": self.ssl_context is not None,
            "pmus": [
                {"idcode": p.spec.idcode, "station": p.spec.station_name, "bus": p.spec.bus} for p in self.meter.plans
            ],
            "paths": [
                {
                    "name": name,
                    "host": path.host,
                    "port": self.relays[name].listen_port if name in self.relays else path.port,
                    "transport": path.transport,
                    "udp_port": path.udp_port,
                    "device_port": self.servers[name].ports if name in self.servers else None,
                }
                for name, path in self.paths.items()
            ],
        }
