"""IEC 60870-5-104 RTUs (c104 servers) whose commands act on the running simulation.

Point types (select-before-execute on every command point):

=====================  ====================  ===============================================
device                 command IOA           status IOA
=====================  ====================  ===============================================
breaker                C_DC_NA_1 (double):   M_DP_TB_1 (double point, CP56Time2a):
                       ON = close, OFF = open  ON = closed, OFF = open
load block             C_SC_NA_1 (single):   M_SP_TB_1 (single point, CP56Time2a):
                       True = connect,       True = connected, False = shed
                       False = shed
generator set point    C_SE_NC_1 (float MW)  M_ME_TF_1 (float MW, CP56Time2a): set point
=====================  ====================  ===============================================

A command is applied at the simulation's next step boundary; the RTU answers ACT_CON positive
once the simulation took it (negative on failure) and reports the new status spontaneously.
"""

import logging
from dataclasses import dataclass
from typing import Any

import c104

from wams.simulator.engine.process import Simulator
from wams.simulator.fleet.spec import RtuPointSpec, RtuSpec

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 2.0


@dataclass
class _Device:
    spec: RtuPointSpec
    element: Any  # ANDES line, load or generator idx
    status: c104.Point | None
    state: Any


class RtuFleet:
    """Serve every RTU of the fleet; keep their status points in step with the simulation."""

    def __init__(self, sim: Simulator, rtus: tuple[RtuSpec, ...], *, select_timeout_ms: int = 10_000) -> None:
        """Create one c104 server per RTU (nothing listens until `start`)."""
        self.sim = sim
        self.specs = rtus
        self.servers: list[c104.Server] = []
        self.devices: dict[tuple[int, int, int], _Device] = {}  # (port, common address, command IOA)
        self.commands_applied = 0
        self.commands_refused = 0
        for rtu in rtus:
            server = c104.Server(ip=rtu.host, port=rtu.port, tick_rate_ms=100, select_timeout_ms=select_timeout_ms)
            stations: dict[int, c104.Station] = {}
            for point in rtu.points:
                if not point.enabled:
                    continue
                if point.common_address not in stations:
                    added = server.add_station(common_address=point.common_address)
                    if added is None:
                        raise ValueError(f"cannot add station {point.common_address} on port {rtu.port}")
                    stations[point.common_address] = added
                self._add_device(rtu, stations[point.common_address], point)
            self.servers.append(server)

    def _add_device(self, rtu: RtuSpec, station: c104.Station, spec: RtuPointSpec) -> None:
        grid = self.sim.grid
        mode = c104.CommandMode.SELECT_AND_EXECUTE
        status: c104.Point | None = None
        if spec.kind == "breaker":
            assert spec.line is not None
            element = grid.line_between(*spec.line)
            command = station.add_point(io_address=spec.ioa, type=c104.Type.C_DC_NA_1, command_mode=mode)
            if spec.status_ioa:
                status = station.add_point(io_address=spec.status_ioa, type=c104.Type.M_DP_TB_1)
            state: Any = bool(self.sim.latest_line_closed()[grid.line_position(element)])
        elif spec.kind == "load_block":
            loads = grid.loads_at_bus(spec.bus)
            if not loads:
                raise KeyError(f"no load at bus {spec.bus} for {spec.name}")
            element = loads[0]
            command = station.add_point(io_address=spec.ioa, type=c104.Type.C_SC_NA_1, command_mode=mode)
            if spec.status_ioa:
                status = station.add_point(io_address=spec.status_ioa, type=c104.Type.M_SP_TB_1)
            state = True
        else:
            element = grid.generator_at_bus(spec.bus)
            command = station.add_point(io_address=spec.ioa, type=c104.Type.C_SE_NC_1, command_mode=mode)
            if spec.status_ioa:
                status = station.add_point(io_address=spec.status_ioa, type=c104.Type.M_ME_TF_1)
            state = float(grid.generator_p0_mw[grid.generator_ids.index(element)])
        if command is None:
            raise ValueError(f"cannot add IOA {spec.ioa} for {spec.name}")
        device = _Device(spec, element, status, state)
        self._write_status(device)
        command.on_receive(callable=self._handler(device))
        self.devices[(rtu.port, spec.common_address, spec.ioa)] = device

    def _handler(self, device: _Device) -> Any:
        # c104 checks the callback's parameter names and (evaluated) annotations exactly.
        def on_command(
            point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
        ) -> c104.ResponseState:
            if message.is_select_command:  # c104 itself keeps the selection; accept it
                return c104.ResponseState.SUCCESS
            try:
                self._apply(device, point.value)
            except Exception:  # the RTU answers negatively; the grid keeps running
                logger.exception("command on %s failed", device.spec.name)
                self.commands_refused += 1
                return c104.ResponseState.FAILURE
            self.commands_applied += 1
            return c104.ResponseState.SUCCESS

        return on_command

    def _apply(self, device: _Device, value: Any) -> None:
        spec = device.spec
        if spec.kind == "breaker":
            if value not in (c104.Double.ON, c104.Double.OFF):
                raise ValueError(f"breaker command must be ON or OFF, not {value}")
            closed = value == c104.Double.ON
            self.sim.call("set_line_status", device.element, closed).result(COMMAND_TIMEOUT_S)
            device.state = closed
        elif spec.kind == "load_block":
            connected = bool(value)
            device.state = connected
            fraction = self._shed_fraction(device.element)
            self.sim.call("shed_load", device.element, fraction).result(COMMAND_TIMEOUT_S)
        else:
            power_mw = float(value)
            self.sim.call("set_generator_setpoint", device.element, power_mw).result(COMMAND_TIMEOUT_S)
            device.state = power_mw
        self._write_status(device, transmit=True)

    def _shed_fraction(self, load: Any) -> float:
        """Return the share of `load` disconnected by its shed blocks."""
        grid = self.sim.grid
        base_mw = float(grid.load_base_mw[grid.load_ids.index(load)])
        shed_mw = sum(
            float(d.spec.load_mw or 0.0)
            for d in self.devices.values()
            if d.spec.kind == "load_block" and d.element == load and d.state is False
        )
        return min(shed_mw / base_mw, 1.0) if base_mw > 0 else 0.0

    def _write_status(self, device: _Device, transmit: bool = False) -> None:
        if device.status is None:
            return
        if device.spec.kind == "breaker":
            device.status.value = c104.Double.ON if device.state else c104.Double.OFF
        elif device.spec.kind == "load_block":
            device.status.value = bool(device.state)
        else:
            device.status.value = float(device.state)
        if transmit:
            device.status.transmit(cause=c104.Cot.SPONTANEOUS)

    def sync_status(self) -> None:
        """Bring breaker status points in line with the simulation (e.g. after a scenario trip)."""
        status = self.sim.latest_line_closed()
        for device in self.devices.values():
            if device.spec.kind != "breaker":
                continue
            closed = bool(status[self.sim.grid.line_position(device.element)])
            if closed != device.state:
                device.state = closed
                self._write_status(device, transmit=True)

    def start(self) -> None:
        """Start every RTU server."""
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        """Stop every RTU server."""
        for server in self.servers:
            server.stop()

    def inventory(self) -> list[dict[str, Any]]:
        """Describe the RTUs as served (host, port, points)."""
        return [
            {
                "host": rtu.host,
                "port": rtu.port,
                "points": [
                    {"name": p.name, "kind": p.kind, "common_address": p.common_address, "ioa": p.ioa,
                     "status_ioa": p.status_ioa}
                    for p in rtu.points
                ],
            }
            for rtu in self.specs
        ]  # fmt: skip
