"""Fleet descriptions without a database: the IEEE 39-bus demo topology and synthetic fleets."""

from __future__ import annotations

from wams.grid import demo
from wams.simulator.fleet.spec import ChannelSpec, FleetSpec, PathSpec, PmuSpec, RtuPointSpec, RtuSpec, StreamSpec


def _pmu(bus: int, idcode: int, lines: tuple[tuple[int, int], ...], phasor_format: str, notation: str) -> PmuSpec:
    station = f"SIM-B{bus}"
    channels = [ChannelSpec("phasor", f"V{bus}", "bus_voltage", bus=bus, unit="V")]
    channels += [ChannelSpec("phasor", f"I{a}-{b}", "line_current", bus=a, line=(a, b), unit="A") for a, b in lines]
    if lines:
        a, b = lines[0]
        channels.append(ChannelSpec("analog", f"P{a}-{b}", "power", bus=a, line=(a, b), unit="MW"))
    return PmuSpec(
        idcode=idcode,
        station_name=station,
        bus=bus,
        phasor_float=phasor_format == "float32",
        polar=notation == "polar",
        freq_float=phasor_format == "float32",
        channels=tuple(channels),
    )


def demo_fleet_spec(
    *,
    host: str = "127.0.0.1",
    pmu_port_base: int = demo.PMU_PORT_BASE,
    path_port_offset: int = demo.PATH_PORT_OFFSET,
    udp_port_base: int = demo.UDP_PORT_BASE,
    rtu_port_base: int = demo.RTU_PORT_BASE,
    rate_fps: int = demo.REPORTING_RATE_FPS,
    with_rtus: bool = True,
) -> FleetSpec:
    """Return the demo fleet as the grid loader lays it out (same IDCODEs, ports and IOAs)."""
    streams: dict[str, list[PmuSpec]] = {}
    for spec in demo.PMUS:
        name = spec.stream or f"PMU bus {spec.bus}"
        streams.setdefault(name, []).append(_pmu(spec.bus, spec.idcode, spec.current_lines, spec.phasor_format,
                                                 spec.notation))  # fmt: skip
    out = []
    for index, (name, pmus) in enumerate(streams.items()):
        idcode = demo.PDC_STREAMS.get(name, pmus[0].idcode)
        primary = pmu_port_base + index
        paths = (
            PathSpec("fibre", host, primary, "tcp"),
            PathSpec("lte", host, primary + path_port_offset, "hybrid", udp_port=udp_port_base + index),
        )
        out.append(StreamSpec(name, idcode, rate_fps, tuple(pmus), paths))
    rtus = _demo_rtus(host, rtu_port_base) if with_rtus else ()
    return FleetSpec(tuple(out), rtus)


def _demo_rtus(host: str, port_base: int) -> tuple[RtuSpec, ...]:
    """Lay out RTUs like the grid loader: one per substation, IOAs from 1001."""
    sub_of = demo.substation_of_bus()
    index: dict[str, int] = {}
    points: dict[str, list[RtuPointSpec]] = {}

    def station(bus: int) -> tuple[str, int]:
        code = sub_of[bus]
        if code not in index:
            index[code] = len(index)
        return code, index[code] + 1

    ioa = 1000
    for name, (a, b) in demo.BREAKERS:
        code, common = station(a)
        ioa += 1
        points.setdefault(code, []).append(RtuPointSpec(name, "breaker", common, ioa, ioa + 1000, line=(a, b), bus=a))
    for name, bus, mw, _owner in demo.LOAD_BLOCKS:
        code, common = station(bus)
        ioa += 1
        points.setdefault(code, []).append(
            RtuPointSpec(name, "load_block", common, ioa, ioa + 1000, bus=bus, load_mw=mw)
        )
    for name, bus in demo.GENERATOR_SETPOINTS:
        code, common = station(bus)
        ioa += 1
        points.setdefault(code, []).append(RtuPointSpec(name, "generator_setpoint", common, ioa, ioa + 1000, bus=bus))
    for name, (a, b) in demo.ISLANDING_BREAKERS:
        code, common = station(a)
        ioa += 1
        points.setdefault(code, []).append(RtuPointSpec(name, "breaker", common, ioa, ioa + 1000, line=(a, b), bus=a))
    return tuple(RtuSpec(host, port_base + index[code], tuple(pts)) for code, pts in points.items())


def synthetic_fleet_spec(
    n_pmus: int,
    *,
    rate_fps: int = 30,
    host: str = "127.0.0.1",
    port_base: int = 0,
    buses: tuple[int, ...] = tuple(range(1, 40)),
    lines_per_pmu: int = 2,
    bus_lines: dict[int, list[tuple[int, int]]] | None = None,
) -> FleetSpec:
    """Return `n_pmus` single-PMU TCP streams spread over `buses` (port 0: pick free ports)."""
    if bus_lines is None:
        bus_lines = {}
        for a, b, _t in demo.BRANCHES:
            bus_lines.setdefault(a, []).append((a, b))
            bus_lines.setdefault(b, []).append((b, a))
    streams = []
    for k in range(n_pmus):
        bus = buses[k % len(buses)]
        lines = tuple(bus_lines.get(bus, [])[:lines_per_pmu])
        pmu = _pmu(bus, 1000 + k, lines, "float32", "polar")
        port = port_base + k if port_base else 0
        streams.append(
            StreamSpec(f"Synthetic {k}", 1000 + k, rate_fps, (pmu,), (PathSpec("fibre", host, port, "tcp"),))
        )
    return FleetSpec(tuple(streams), ())
