"""Route a command to its protocol: IEC 60870-5-104 for controllable devices, C37.118 for streams."""

from __future__ import annotations

from django.conf import settings

from wams.control.c37118 import StreamAddress, send_stream_command
from wams.control.iec104 import PointCommand, WireResult, get_pool
from wams.control.models import Command
from wams.grid.models import CommunicationPath, ControllableDevice, Stream

__all__ = ["WireResult", "describe_route", "point_command", "send", "stream_address"]


def timeout_s() -> float:
    """Return how long a device has to answer a command."""
    return float(settings.WAMS_CONTROL_COMMAND_TIMEOUT_MS) / 1000.0


def point_command(device: ControllableDevice, action: str, value: float | None) -> PointCommand:
    """Address a device command on the wire."""
    return PointCommand(
        host=device.iec104_host,
        port=device.iec104_port,
        common_address=device.common_address,
        ioa=device.ioa,
        status_ioa=device.status_ioa,
        kind=device.kind,
        action=action,
        value=value,
    )


def stream_address(stream: Stream) -> StreamAddress | None:
    """Return where a stream takes commands: its preferred enabled path with a TCP side."""
    paths = stream.paths.filter(enabled=True).exclude(transport=Stream.Transport.UDP).order_by("priority", "pk")
    path: CommunicationPath | None = paths.first()
    if path is None:
        return None
    return StreamAddress(path.host, path.port, stream.idcode)


def describe_route(command: Command) -> str:
    """Say where a command goes, for the log."""
    if command.device is not None:
        d = command.device
        status = f", status IOA {d.status_ioa}" if d.status_ioa else ""
        return f"IEC 104 {d.iec104_host}:{d.iec104_port} CA {d.common_address} IOA {d.ioa}{status}, select-execute"
    if command.stream is not None:
        address = stream_address(command.stream)
        where = f"{address.host}:{address.port}" if address else "no TCP path"
        return f"C37.118 {where} IDCODE {command.stream.idcode}"
    return ""


def send(command: Command) -> WireResult:
    """Send a command and return the device's answer (blocking)."""
    if command.device is not None:
        return get_pool().operate(point_command(command.device, command.action, command.value), timeout_s())
    if command.stream is not None:
        address = stream_address(command.stream)
        if address is None:
            return WireResult("failed", f"{command.stream.name} has no enabled TCP path for commands")
        return send_stream_command(address, command.action, timeout_s())
    return WireResult("failed", "the command has no target")
