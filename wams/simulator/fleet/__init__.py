"""The simulated field devices: C37.118 streams behind impaired paths, and IEC 104 RTUs."""

from wams.simulator.fleet.demo import demo_fleet_spec, synthetic_fleet_spec
from wams.simulator.fleet.fleet import Fleet
from wams.simulator.fleet.meter import PmuFlags, StreamMeter
from wams.simulator.fleet.relay import Impairment, PathRelay
from wams.simulator.fleet.rtu import RtuFleet
from wams.simulator.fleet.spec import ChannelSpec, FleetSpec, PathSpec, PmuSpec, RtuPointSpec, RtuSpec, StreamSpec
from wams.simulator.fleet.streams import InstantSampler, SamplerStats, SimulatedStream

__all__ = [
    "ChannelSpec",
    "Fleet",
    "FleetSpec",
    "Impairment",
    "InstantSampler",
    "PathRelay",
    "PathSpec",
    "PmuFlags",
    "PmuSpec",
    "RtuFleet",
    "RtuPointSpec",
    "RtuSpec",
    "SamplerStats",
    "SimulatedStream",
    "StreamMeter",
    "StreamSpec",
    "demo_fleet_spec",
    "synthetic_fleet_spec",
]
