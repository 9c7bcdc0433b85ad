"""C37.118 commands to PMUs and PDCs: start/stop transmission, send header or configuration.

Each command runs on a connection of its own (the codec's `PdcClient`), so START and STOP act on
that session; the pdc's links are switched on and off by the pdc itself.  The answer is the
device's: the header or configuration frame it sends back, or data frames starting and stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from wams.control.iec104.points import WireResult
from wams.synchrophasor import C37118Error, ConfigFrame, PdcClient

CFG_TYPES = {"send_cfg1": 1, "send_cfg2": 2, "send_cfg3": 3}


@dataclass(frozen=True)
class StreamAddress:
    """Where a C37.118 stream takes commands (TCP)."""

    host: str
    port: int
    idcode: int


def describe_config(config: ConfigFrame) -> str:
    """Return a one-line summary of a configuration frame."""
    names = ", ".join(pmu.station_name.strip() for pmu in config.pmus[:6])
    more = f" and {len(config.pmus) - 6} more" if len(config.pmus) > 6 else ""
    rate = f"{config.data_rate} fps" if config.data_rate > 0 else f"1 frame per {-config.data_rate} s"
    return f"CFG-{config.cfg_type}: {len(config.pmus)} PMU(s) ({names}{more}), {rate}"


def send_stream_command(address: StreamAddress, action: str, timeout_s: float) -> WireResult:
    """Send one command to a stream and return what it answered (blocking; not from a running loop)."""
    try:
        return asyncio.run(asyncio.wait_for(_send(address, action, timeout_s), timeout_s + 2.0))
    except TimeoutError:
        return WireResult("timeout", f"no answer from {address.host}:{address.port} within {timeout_s:.1f} s")
    except (ConnectionError, OSError, C37118Error) as exc:
        return WireResult("failed", f"{address.host}:{address.port}: {type(exc).__name__}: {exc}")


async def _send(address: StreamAddress, action: str, timeout_s: float) -> WireResult:
    client = PdcClient(address.host, address.port, address.idcode, fetch_header=False, timeout_s=timeout_s)
    sent_at = time.time()
    try:
        config = await client.connect()  # asks CFG-2: data frames cannot be read without it
        if action == "send_header":
            header = await client.request_header()
            return _answered(f"header: {header.text.strip()[:200]}", sent_at)
        if action in CFG_TYPES:
            if CFG_TYPES[action] != 2:
                config = await client.request_config(CFG_TYPES[action])
            return _answered(describe_config(config), sent_at)
        if action == "start":
            await client.start()
            arrival_s, frame = await client.receive(timeout_s)
            return _answered(f"data flowing (first frame stamped {frame.timestamp_s:.3f})", sent_at, arrival_s)
        if action == "stop":
            return await _stop(client, config, sent_at, timeout_s)
        raise ValueError(f"unknown stream action {action!r}")
    finally:
        with contextlib.suppress(Exception):
            await client.close(send_stop=False)


async def _stop(client: PdcClient, config: ConfigFrame, sent_at: float, timeout_s: float) -> WireResult:
    """Start, see data, send STOP, and confirm that data stops within a few reporting periods."""
    await client.start()
    await client.receive(timeout_s)
    await client.stop()
    stopped_at = time.time()
    period_s = 1.0 / config.data_rate if config.data_rate > 0 else float(-config.data_rate)
    quiet_s = 3 * period_s + 0.2
    last_s = stopped_at
    deadline = stopped_at + timeout_s
    while time.time() < deadline:
        try:
            arrival_s, _ = await client.receive(quiet_s)
        except TimeoutError:
            return _answered(f"transmission stopped (no data for {quiet_s * 1000:.0f} ms)", sent_at, last_s)
        last_s = arrival_s
    return WireResult("timeout", "data kept arriving after STOP", sent_at_s=sent_at)


def _answered(detail: str, sent_at: float, at_s: float | None = None) -> WireResult:
    at_s = time.time() if at_s is None else at_s
    return WireResult("completed", detail, sent_at_s=sent_at, confirmed_at_s=at_s, status_at_s=at_s)
