"""What the simulated fleet serves: plain descriptions, built from the grid model or the demo data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Transport = Literal["tcp", "udp", "hybrid"]


@dataclass(frozen=True)
class ChannelSpec:
    """One channel of a PMU, in configuration order within its kind."""

    kind: Literal["phasor", "analog", "digital"]
    name: str
    measures: str  #: bus_voltage, line_current, power, status, other
    bus: int | None = None  #: bus measured (voltage) or the measuring end (current, power)
    line: tuple[int, int] | None = None  #: the line's two bus numbers
    unit: str = ""
    scale: float = 1.0  #: engineering units per count for 16-bit phasors (0 or 1: chosen here)
    base_kv: float | None = None  #: voltage base of the bus (line-to-line kV) if the model gives one


@dataclass(frozen=True)
class PmuSpec:
    """One PMU block of a stream."""

    idcode: int
    station_name: str
    bus: int
    nominal_hz: int = 60
    phasor_float: bool = True
    polar: bool = True
    freq_float: bool = True
    analog_float: bool = True
    channels: tuple[ChannelSpec, ...] = ()
    enabled: bool = True
    latitude_deg: float | None = None
    longitude_deg: float | None = None


@dataclass(frozen=True)
class PathSpec:
    """One way to reach a stream: a listening port with its own impairments."""

    name: str
    host: str
    port: int
    transport: Transport = "tcp"
    udp_port: int | None = None  #: hybrid: where the PDC listens for UDP data
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    outage: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class StreamSpec:
    """One C37.118 data stream (one IDCODE): a PMU, or a PDC carrying several PMUs."""

    name: str
    idcode: int
    rate_fps: int
    pmus: tuple[PmuSpec, ...]
    paths: tuple[PathSpec, ...]
    tls: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class RtuPointSpec:
    """One controllable device on an RTU: a command IOA and its status IOA."""

    name: str
    kind: Literal["breaker", "load_block", "generator_setpoint"]
    common_address: int
    ioa: int
    status_ioa: int | None
    line: tuple[int, int] | None = None
    bus: int | None = None
    load_mw: float | None = None
    enabled: bool = True


@dataclass(frozen=True)
class RtuSpec:
    """One IEC 60870-5-104 server (an RTU) and its points."""

    host: str
    port: int
    points: tuple[RtuPointSpec, ...]


@dataclass(frozen=True)
class FleetSpec:
    """Every stream and RTU the simulator serves."""

    streams: tuple[StreamSpec, ...] = ()
    rtus: tuple[RtuSpec, ...] = field(default_factory=tuple)
