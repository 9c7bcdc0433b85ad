"""Load the demo topology into the database, idempotently (natural keys, update_or_create)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from wams.grid import demo
from wams.grid.models import (
    Bus,
    Channel,
    CommunicationPath,
    ControllableDevice,
    Corridor,
    DeviceGroup,
    Line,
    Organisation,
    Pmu,
    StoragePolicy,
    Stream,
    Substation,
)


@dataclass(frozen=True)
class DemoPorts:
    """Where the demo fleet listens: PMU streams (two paths each) and RTUs."""

    host: str = "127.0.0.1"
    pmu_port_base: int = demo.PMU_PORT_BASE
    path_port_offset: int = demo.PATH_PORT_OFFSET
    udp_port_base: int = demo.UDP_PORT_BASE
    rtu_port_base: int = demo.RTU_PORT_BASE


def line_name(a: int, b: int) -> str:
    """Return the demo name of the branch between two buses."""
    return f"Line {min(a, b)}-{max(a, b)}"


@transaction.atomic
def load_demo_topology(ports: DemoPorts | None = None) -> dict[str, int]:
    """Create or update the IEEE 39-bus demo topology; return how many of each object exist."""
    ports = ports or DemoPorts()
    orgs = {
        code: Organisation.objects.update_or_create(code=code, defaults={"name": name, "role": role})[0]
        for code, name, role in demo.ORGANISATIONS
    }
    buses = _load_substations_and_buses(orgs)
    lines = _load_lines(buses)
    pmus = _load_pmus(orgs, buses, lines, ports)
    _load_corridors(pmus)
    _load_controllables(orgs, buses, lines, ports)
    _load_groups_and_policies(pmus)
    return {
        "organisations": Organisation.objects.count(),
        "substations": Substation.objects.count(),
        "buses": Bus.objects.count(),
        "lines": Line.objects.count(),
        "streams": Stream.objects.count(),
        "pmus": Pmu.objects.count(),
        "channels": Channel.objects.count(),
        "paths": CommunicationPath.objects.count(),
        "controllable_devices": ControllableDevice.objects.count(),
    }


def _load_substations_and_buses(orgs: dict[str, Organisation]) -> dict[int, Bus]:
    buses: dict[int, Bus] = {}
    for code, name, lat, lon, area, owner, numbers in demo.SUBSTATIONS:
        substation, _ = Substation.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "latitude": lat,
                "longitude": lon,
                "area": area,
                "owner": orgs[owner],
                "voltage_level_kv": 345.0,
            },
        )
        for number in numbers:
            buses[number], _ = Bus.objects.update_or_create(
                number=number,
                defaults={
                    "name": f"{name} {number}",
                    "substation": substation,
                    "base_kv": demo.BASE_KV_OVERRIDES.get(number, 345.0),
                },
            )
    return buses


def _load_lines(buses: dict[int, Bus]) -> dict[frozenset[int], Line]:
    areas = demo.area_of_bus()
    lines: dict[frozenset[int], Line] = {}
    for a, b, transformer in demo.BRANCHES:
        lines[frozenset((a, b))], _ = Line.objects.update_or_create(
            name=line_name(a, b),
            defaults={
                "from_bus": buses[a],
                "to_bus": buses[b],
                "rating_mva": 1000.0 if transformer else 600.0,
                "is_transformer": transformer,
                "is_tie_line": areas[a] != areas[b],
            },
        )
    return lines


def _load_pmus(
    orgs: dict[str, Organisation], buses: dict[int, Bus], lines: dict[frozenset[int], Line], ports: DemoPorts
) -> dict[int, Pmu]:
    pmus: dict[int, Pmu] = {}
    streams: dict[str, Stream] = {}
    for index, spec in enumerate(demo.PMUS):
        bus = buses[spec.bus]
        substation = bus.substation
        stream_name = spec.stream or f"PMU {substation.name} {spec.bus}"
        if stream_name not in streams:
            stream_index = len(streams)
            streams[stream_name] = _load_stream(
                stream_name, spec, substation.owner, stream_index, ports, pdc=spec.stream is not None
            )
        stream = streams[stream_name]
        pmu, _ = Pmu.objects.update_or_create(
            stream=stream,
            idcode=spec.idcode,
            defaults={
                "station_name": f"{substation.code}-B{spec.bus}",
                "substation": substation,
                "bus": bus,
                "owner": substation.owner,
                "nominal_frequency_hz": 60,
                "phasor_format": spec.phasor_format,
                "phasor_notation": spec.notation,
                "frequency_format": "float32" if spec.phasor_format == "float32" else "int16",
                "analog_format": "float32",
                "enabled": True,
            },
        )
        if index % 5 == 0 and substation.owner.code == "netso":
            pmu.shared_with.add(orgs["pvdso"])
        if substation.owner.code == "pvdso":
            pmu.shared_with.add(orgs["netso"])
        _load_channels(pmu, bus, spec, lines)
        pmus[spec.bus] = pmu
    return pmus


def _load_stream(name: str, spec: demo.PmuSpec, owner: Organisation, index: int, ports: DemoPorts, pdc: bool) -> Stream:
    idcode = demo.PDC_STREAMS[name] if pdc else spec.idcode
    stream, _ = Stream.objects.update_or_create(
        name=name,
        defaults={
            "kind": Stream.Kind.PDC if pdc else Stream.Kind.PMU,
            "idcode": idcode,
            "owner": owner,
            "reporting_rate_fps": demo.REPORTING_RATE_FPS,
            "transport": Stream.Transport.TCP,
            "tls": False,
            "enabled": True,
        },
    )
    primary = ports.pmu_port_base + index
    CommunicationPath.objects.update_or_create(
        stream=stream,
        name="fibre",
        defaults={
            "host": ports.host,
            "port": primary,
            "transport": Stream.Transport.TCP,
            "medium": CommunicationPath.Medium.FIBRE,
            "nominal_latency_ms": 5.0,
            "bandwidth_kbps": 100_000.0,
            "reliability_pct": 99.99,
            "cost_per_gb": 0.0,
            "priority": 1,
        },
    )
    CommunicationPath.objects.update_or_create(
        stream=stream,
        name="lte",
        defaults={
            "host": ports.host,
            "port": primary + ports.path_port_offset,
            "udp_port": ports.udp_port_base + index,
            "transport": Stream.Transport.HYBRID,
            "medium": CommunicationPath.Medium.LTE,
            "nominal_latency_ms": 40.0,
            "bandwidth_kbps": 5_000.0,
            "reliability_pct": 99.5,
            "cost_per_gb": 2.0,
            "priority": 2,
        },
    )
    return stream


def _load_channels(pmu: Pmu, bus: Bus, spec: demo.PmuSpec, lines: dict[frozenset[int], Line]) -> None:
    Channel.objects.update_or_create(
        pmu=pmu,
        kind=Channel.Kind.PHASOR,
        order=0,
        defaults={"name": f"V{spec.bus}", "measures": Channel.Measures.BUS_VOLTAGE, "bus": bus, "unit": "V"},
    )
    for order, (a, b) in enumerate(spec.current_lines, start=1):
        Channel.objects.update_or_create(
            pmu=pmu,
            kind=Channel.Kind.PHASOR,
            order=order,
            defaults={
                "name": f"I{a}-{b}",
                "measures": Channel.Measures.LINE_CURRENT,
                "line": lines[frozenset((a, b))],
                "unit": "A",
            },
        )


def _load_corridors(pmus: dict[int, Pmu]) -> None:
    for name, a, b, limit in demo.CORRIDORS:
        Corridor.objects.update_or_create(
            name=name, defaults={"from_pmu": pmus[a], "to_pmu": pmus[b], "angle_limit_deg": limit}
        )


def _load_controllables(
    orgs: dict[str, Organisation], buses: dict[int, Bus], lines: dict[frozenset[int], Line], ports: DemoPorts
) -> None:
    rtu_index: dict[str, int] = {}

    def address(substation: Substation) -> tuple[int, int]:
        if substation.code not in rtu_index:
            rtu_index[substation.code] = len(rtu_index)
        index = rtu_index[substation.code]
        return ports.rtu_port_base + index, index + 1

    def device(name: str, kind: str, bus_number: int, owner: Organisation, ioa: int, **fields: Any) -> None:
        """Create or update one RTU-controlled device at a bus's substation, on command address `ioa`."""
        substation = buses[bus_number].substation
        port, common = address(substation)
        ControllableDevice.objects.update_or_create(
            name=name,
            defaults={
                "kind": kind,
                "substation": substation,
                "owner": owner,
                "bus": buses[bus_number],
                "iec104_host": ports.host,
                "iec104_port": port,
                "common_address": common,
                "ioa": ioa,
                "status_ioa": ioa + 1000,
                **fields,
            },
        )

    def breakers(items: list[tuple[str, tuple[int, int]]], ioa: int) -> int:
        for name, (a, b) in items:
            ioa += 1
            kind = ControllableDevice.Kind.BREAKER
            device(name, kind, a, buses[a].substation.owner, ioa, line=lines[frozenset((a, b))])
        return ioa

    ioa = breakers(demo.BREAKERS, 1000)
    for name, bus_number, mw, owner in demo.LOAD_BLOCKS:
        ioa += 1
        device(name, ControllableDevice.Kind.LOAD_BLOCK, bus_number, orgs[owner], ioa, load_mw=mw)
    for name, bus_number in demo.GENERATOR_SETPOINTS:
        ioa += 1
        kind = ControllableDevice.Kind.GENERATOR_SETPOINT
        device(name, kind, bus_number, buses[bus_number].substation.owner, ioa)
    breakers(demo.ISLANDING_BREAKERS, ioa)


def _load_groups_and_policies(pmus: dict[int, Pmu]) -> None:
    areas = demo.area_of_bus()
    for area in sorted(set(areas.values())):
        group, _ = DeviceGroup.objects.update_or_create(
            name=f"Area {area}", defaults={"description": f"PMUs in the {area} control area."}
        )
        group.pmus.set([pmu for bus, pmu in pmus.items() if areas[bus] == area])
    policy, _ = StoragePolicy.objects.update_or_create(
        name="Transmission default",
        defaults={
            "max_bytes": 2 * 1024**3,
            "max_age_days": 90.0,
            "downsample_after_days": 7.0,
            "downsample_rate_fps": 1,
        },
    )
    policy.groups.set(DeviceGroup.objects.filter(name__startswith="Area "))
