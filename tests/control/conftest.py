"""Fixtures for the control tests: a small c104 RTU on a free port, devices addressed to it, a fresh pool."""

# No `from __future__ import annotations`: c104 checks callback annotations as real types.
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import c104
import pytest

from tests.conftest import make_organisation, make_substation, make_user
from wams.control.countermeasures import reset_runtime
from wams.control.iec104 import reset_pool
from wams.grid.models import Bus, ControllableDevice, Line, Organisation

COMMAND_TYPES = {c104.Type.C_SC_NA_1, c104.Type.C_DC_NA_1, c104.Type.C_SE_NC_1}


def free_port() -> int:
    """Return a TCP port free on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class WireMessage:
    """One command-related message on the RTU's wire."""

    direction: str  # "in" (from the control station) or "out"
    type: str
    cot: str
    ioa: int
    select: bool | None
    negative: bool
    at_s: float


class Rtu:
    """A c104 server with select-before-execute command points whose status points follow the commands.

    `mode[ioa]` changes how a command point answers: "ok", "refuse" (negative confirmation),
    "silent" (no answer before the client gives up), "stuck" (confirms but the status stays).
    """

    def __init__(self, common_address: int = 1, travel_s: float = 0.02, time_tagged: bool = False) -> None:
        self.port = free_port()
        self.time_tagged = time_tagged  # status points with CP56Time2a (M_xx_TB_1 / M_ME_TF_1)
        self.common_address = common_address
        self.travel_s = travel_s
        self.server = c104.Server(ip="127.0.0.1", port=self.port, tick_rate_ms=50, select_timeout_ms=5000)
        self.station = self.server.add_station(common_address=common_address)
        self.wire: list[WireMessage] = []
        self.executed: list[tuple[int, object]] = []
        self.mode: dict[int, str] = {}
        self.status_of: dict[int, c104.Point] = {}  # command IOA -> its status point
        self.status_points: dict[int, c104.Point] = {}  # status IOA -> status point
        self.silent_s = 0.0
        self.lock = threading.Lock()
        self.server.on_receive_raw(callable=self._on_in)
        self.server.on_send_raw(callable=self._on_out)

    def _record(self, direction: str, data: bytes) -> None:
        info = c104.explain_bytes_dict(apdu=data)
        if info.get("format") != "I":
            return
        is_command = info.get("type") in COMMAND_TYPES
        is_return = direction == "out" and info.get("cot") == c104.Cot.RETURN_INFO_REMOTE
        if not (is_command or is_return):
            return
        message = WireMessage(
            direction,
            info["type"].name,
            info["cot"].name,
            int(info["firstInformationObjectAddress"]),
            info.get("select"),
            bool(info.get("negative")),
            time.time(),
        )
        with self.lock:
            self.wire.append(message)

    def _on_in(self, server: c104.Server, data: bytes) -> None:
        self._record("in", data)

    def _on_out(self, server: c104.Server, data: bytes) -> None:
        self._record("out", data)

    def _add(self, ioa: int, status_ioa: int, command_type: c104.Type, status_type: c104.Type, value: object) -> None:
        status = self.station.add_point(io_address=status_ioa, type=status_type)
        status.value = value
        command = self.station.add_point(
            io_address=ioa, type=command_type, command_mode=c104.CommandMode.SELECT_AND_EXECUTE
        )
        command.on_receive(callable=self._on_command)
        self.status_of[ioa] = status
        self.status_points[status_ioa] = status
        self.mode[ioa] = "ok"

    def add_breaker(self, ioa: int, status_ioa: int, closed: bool = True) -> None:
        """Add a breaker: double command and double-point status (ON closed, OFF open)."""
        self._add(
            ioa, status_ioa, c104.Type.C_DC_NA_1, c104.Type.M_DP_NA_1, c104.Double.ON if closed else c104.Double.OFF
        )

    def add_load_block(self, ioa: int, status_ioa: int, connected: bool = True) -> None:
        """Add a load block: single command and single-point status (on = connected)."""
        status_type = c104.Type.M_SP_TB_1 if self.time_tagged else c104.Type.M_SP_NA_1
        self._add(ioa, status_ioa, c104.Type.C_SC_NA_1, status_type, connected)

    def add_set_point(self, ioa: int, status_ioa: int, mw: float = 100.0) -> None:
        """Add a generator set point: short-float set-point command and measured value."""
        status_type = c104.Type.M_ME_TF_1 if self.time_tagged else c104.Type.M_ME_NC_1
        self._add(ioa, status_ioa, c104.Type.C_SE_NC_1, status_type, float(mw))

    def _on_command(
        self, point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
    ) -> c104.ResponseState:
        mode = self.mode.get(point.io_address, "ok")
        with self.lock:
            self.executed.append((point.io_address, point.value))
        if mode == "refuse":
            return c104.ResponseState.FAILURE
        if mode == "silent":
            time.sleep(self.silent_s)
        if mode in ("ok", "silent"):
            threading.Timer(self.travel_s, self._follow, args=(point.io_address, point.value)).start()
        return c104.ResponseState.SUCCESS

    def _follow(self, ioa: int, value: object) -> None:
        status = self.status_of[ioa]
        status.value = value
        status.transmit(cause=c104.Cot.RETURN_INFO_REMOTE)

    def state(self, status_ioa: int) -> object:
        """Return a status point's value as the RTU holds it."""
        return self.status_points[status_ioa].value

    def commands_in(self) -> list[WireMessage]:
        """Return the command messages the RTU received."""
        with self.lock:
            return [m for m in self.wire if m.direction == "in"]

    def start(self) -> "Rtu":
        """Start listening (and give the server a moment to accept)."""
        self.server.start()
        deadline = time.monotonic() + 2.0
        while not self.server.is_running and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server."""
        self.server.stop()


@pytest.fixture
def pool() -> Any:
    """Give each test a fresh IEC 104 pool (and close it afterwards)."""
    reset_pool()
    yield
    reset_pool()


@pytest.fixture
def runtime() -> Any:
    """Give each test a fresh countermeasure runtime that carries out decisions inline."""
    runtime = reset_runtime(inline=True)
    yield runtime
    reset_runtime()


@pytest.fixture
def rtu(pool: Any) -> Any:
    """Start an RTU with a breaker (IOA 11, status 1011), a load block (12/1012) and a set point (13/1013)."""
    station = Rtu()
    station.add_breaker(11, 1011, closed=True)
    station.add_load_block(12, 1012, connected=True)
    station.add_set_point(13, 1013, mw=100.0)
    station.start()
    yield station
    reset_pool()
    station.stop()


@pytest.fixture(autouse=True)
def fast_control_timeouts(settings: Any) -> None:
    """Keep device timeouts short so failure paths finish quickly."""
    settings.WAMS_CONTROL_COMMAND_TIMEOUT_MS = 1500
    settings.WAMS_CONTROL_SELECT_TIMEOUT_S = 30


@dataclass
class Grid:
    """A small grid for control tests: one organisation's substation, two buses, a line and devices."""

    org: Organisation
    other: Organisation
    bus_a: Bus
    bus_b: Bus
    line: Line
    breaker: ControllableDevice
    load_block: ControllableDevice
    set_point: ControllableDevice


def make_device(rtu: Rtu | None, kind: str, ioa: int, status_ioa: int | None, **fields: Any) -> ControllableDevice:
    """Create a controllable device addressed to the RTU (or to a port nobody listens on)."""
    port = rtu.port if rtu is not None else free_port()
    values: dict[str, Any] = {
        "name": f"{kind} {ioa} @{port}",
        "kind": kind,
        "iec104_host": "127.0.0.1",
        "iec104_port": port,
        "common_address": rtu.common_address if rtu is not None else 1,
        "ioa": ioa,
        "status_ioa": status_ioa,
    }
    values.update(fields)
    return ControllableDevice.objects.create(**values)


def make_grid(rtu: Rtu | None) -> Grid:
    """Create the organisations, substation, buses, line and three devices on the RTU."""
    org = make_organisation()
    other = make_organisation()
    substation = make_substation(owner=org)
    bus_a = Bus.objects.create(number=9001, substation=substation, base_kv=345.0)
    bus_b = Bus.objects.create(number=9002, substation=substation, base_kv=345.0)
    line = Line.objects.create(name="Line 9001-9002", from_bus=bus_a, to_bus=bus_b, rating_mva=600.0)
    common = {"substation": substation, "owner": org}
    return Grid(
        org=org,
        other=other,
        bus_a=bus_a,
        bus_b=bus_b,
        line=line,
        breaker=make_device(rtu, "breaker", 11, 1011, line=line, bus=bus_a, **common),
        load_block=make_device(rtu, "load_block", 12, 1012, bus=bus_b, load_mw=100.0, **common),
        set_point=make_device(rtu, "generator_setpoint", 13, 1013, bus=bus_a, **common),
    )


@pytest.fixture
def grid(db: Any, rtu: Rtu) -> Grid:
    """A grid whose devices live on the test RTU."""
    return make_grid(rtu)


@pytest.fixture
def operator(django_user_model: Any, grid: Grid) -> Any:
    """An operator of the grid's organisation."""
    return make_user(django_user_model, "operator", grid.org, username="olga")
