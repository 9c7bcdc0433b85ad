"""Plain, immutable descriptions of what the pdc serves, read from the grid model (no Django here).

The pdc polls the database for these and compares them with what runs: a changed connection
restarts a link, a changed PMU list only remaps it, an unchanged spec leaves it alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PATH_POLICIES = ("priority", "latency", "reliability", "cost", "bandwidth")


@dataclass(frozen=True, slots=True)
class PathSpec:
    """One way of reaching a stream (a CommunicationPath row)."""

    id: int
    name: str
    host: str
    port: int
    transport: str = "tcp"  # tcp | udp | hybrid
    udp_port: int | None = None
    nominal_latency_ms: float = 10.0
    bandwidth_kbps: float = 10_000.0
    reliability_pct: float = 99.9
    cost_per_gb: float = 0.0
    priority: int = 1


@dataclass(frozen=True, slots=True)
class PmuSpec:
    """One PMU the pdc expects in a stream; `base_voltage_v` turns phasor 0 into per unit."""

    id: int
    idcode: int
    station_name: str
    base_voltage_v: float = math.nan  # phase-to-neutral base of the bus voltage (base_kv * 1000 / sqrt 3)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One C37.118 stream of this shard with its paths and its enabled PMUs."""

    id: int
    name: str
    idcode: int
    reporting_rate_fps: int
    enabled: bool = True
    tls: bool = False
    path_policy: str = "priority"
    paths: tuple[PathSpec, ...] = ()
    pmus: tuple[PmuSpec, ...] = ()

    @property
    def connection(self) -> tuple[object, ...]:
        """Return what a running link depends on: a change here restarts the link."""
        return (self.idcode, self.tls, self.path_policy, self.paths, self.enabled)


@dataclass(frozen=True, slots=True)
class OutputChannelSpec:
    """One phasor, analog or digital channel of a PMU in an output stream's configuration."""

    name: str
    kind: str = "V"  # phasors: V | A; analogs and digitals: ""


@dataclass(frozen=True, slots=True)
class OutputPmuSpec:
    """One PMU block of an output stream, described from the model."""

    id: int
    idcode: int
    station_name: str
    nominal_hz: int = 60
    phasors: tuple[OutputChannelSpec, ...] = ()
    analogs: tuple[OutputChannelSpec, ...] = ()
    digitals: tuple[OutputChannelSpec, ...] = ()
    latitude_deg: float = math.inf
    longitude_deg: float = math.inf
    input_rate_fps: int = 30


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """A concentrated C37.118 output stream served to downstream PDCs."""

    id: int
    name: str
    idcode: int
    host: str
    port: int
    reporting_rate_fps: int
    pmus: tuple[OutputPmuSpec, ...] = ()


def order_paths(paths: tuple[PathSpec, ...] | list[PathSpec], policy: str) -> list[PathSpec]:
    """Return the paths best first under a path policy; ties go to priority, then name."""
    keys = {
        "priority": lambda p: (p.priority, p.name),
        "latency": lambda p: (p.nominal_latency_ms, p.priority, p.name),
        "reliability": lambda p: (-p.reliability_pct, p.priority, p.name),
        "cost": lambda p: (p.cost_per_gb, p.priority, p.name),
        "bandwidth": lambda p: (-p.bandwidth_kbps, p.priority, p.name),
    }
    if policy not in keys:
        raise ValueError(f"unknown path policy {policy!r} (use one of {', '.join(PATH_POLICIES)})")
    return sorted(paths, key=keys[policy])
