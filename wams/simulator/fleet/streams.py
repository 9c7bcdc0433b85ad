"""One simulated C37.118 stream: a server per communication path, each behind its relay."""

from __future__ import annotations

import logging
import ssl
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np

from wams.simulator.engine.process import Simulator
from wams.simulator.engine.realtime import GridSample
from wams.simulator.fleet.meter import PmuFlags, StreamMeter
from wams.simulator.fleet.relay import Impairment, PathRelay
from wams.simulator.fleet.spec import PathSpec, StreamSpec
from wams.synchrophasor import PmuData, PmuServer

logger = logging.getLogger(__name__)


class InstantSampler:
    """Share one grid sample per reporting instant among every stream (small LRU)."""

    def __init__(self, sim: Simulator, keep: int = 16) -> None:
        """Sample `sim`, remembering the last `keep` instants."""
        self.sim = sim
        self.keep = keep
        self._cache: OrderedDict[int, GridSample] = OrderedDict()
        self.lateness_s: list[float] = []  # how far the simulation lagged each instant asked for

    def at(self, soc: int, fraction: int, time_base: int) -> GridSample:
        """Return the grid at SOC + fraction / time_base."""
        key = soc * 1_000_000 + (fraction * 1_000_000) // time_base
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        utc = soc + fraction / time_base
        sample = self.sim.sample_utc(np.array([utc]))
        behind = self.sim.sim_time_at(utc) - self.sim.buffer.end_s
        if behind > 0:
            self.lateness_s.append(behind)
        self._cache[key] = sample
        while len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return sample


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

    def _source(self, soc: int, fraction: int) -> list[PmuData]:
        return self.meter.measure(self.sampler.at(soc, fraction, self.meter.config.time_base))

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
