"""Test devices for the pdc: PMU configurations, data sources and a scripted raw-bytes PMU."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from wams.synchrophasor import (
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    PhasorChannel,
    PmuConfig,
    PmuData,
    PmuServer,
    StreamReader,
    decode_frame,
    encode_frame,
)
from wams.synchrophasor.transport import now_soc_fraction

BASE_KV = 345.0
BASE_V = BASE_KV * 1000 / math.sqrt(3)


def free_port() -> int:
    """Return a TCP port free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pmu_block(idcode: int, station: str, n_phasors: int = 2, cfgcnt: int = 0) -> PmuConfig:
    """Return a float polar PMU block with one voltage and n-1 current phasors."""
    phasors = [PhasorChannel("V1", "V")] + [PhasorChannel(f"I{k}", "A") for k in range(1, n_phasors)]
    return PmuConfig(
        station_name=station,
        idcode=idcode,
        phasor_float=True,
        polar=True,
        freq_float=True,
        analog_float=True,
        phasors=phasors,
        nominal_hz=60,
        cfgcnt=cfgcnt,
    )


def stream_config(idcode: int, blocks: list[PmuConfig], rate_fps: int = 30) -> ConfigFrame:
    """Return the CFG-2 of a stream carrying `blocks`."""
    return ConfigFrame(idcode=idcode, time_base=1_000_000, data_rate=rate_fps, pmus=blocks)


def measurements(config: ConfigFrame, magnitude_pu: float = 1.0, angle_deg: float = 0.0) -> list[PmuData]:
    """Return one instant of steady measurements for every block of `config`."""
    out = []
    for k, block in enumerate(config.pmus):
        phasors = np.full(len(block.phasors), 100.0 + 0j)
        phasors[0] = magnitude_pu * BASE_V * np.exp(1j * np.radians(angle_deg + 5 * k))
        out.append(PmuData(stat=0, phasors=phasors, frequency_hz=60.0 - 0.01 * k, rocof_hz_per_s=0.0))
    return out


def steady_source(config: ConfigFrame) -> Callable[[int, int], list[PmuData]]:
    """Return a source whose frequency encodes the fraction of second (value checks)."""

    def source(soc: int, fraction: int) -> list[PmuData]:
        data = measurements(config)
        for block in data:
            block.frequency_hz = 60.0 + fraction / config.time_base / 10  # 60.0 .. 60.1 Hz within a second
        return data

    return source


async def start_pmu(config: ConfigFrame, source: object = None, port: int = 0, **kw: object) -> PmuServer:
    """Start a PMU server on 127.0.0.1 stamping on the reporting grid."""
    server = PmuServer(config, source, host="127.0.0.1", port=port, align_to_wall_clock=True, **kw)  # type: ignore[arg-type]
    await server.start()
    return server


async def wait_for(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes; return whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(step_s)
    return condition()


class ScriptedPmu:
    """A raw TCP PMU answering CFG-2/START/STOP, whose data bytes a test controls.

    `chunk_of(k, frame_bytes)` may rewrite the bytes of the k-th data frame (garbage, bad CRC...).
    `config` may be swapped at run time (it is served on the next SEND_CFG2 and used for data).
    """

    def __init__(self, config: ConfigFrame, stat_of: Callable[[int], int] | None = None) -> None:
        self.config = config
        self.stat_of = stat_of or (lambda k: 0)
        self.chunk_of: Callable[[int, bytes], bytes] = lambda k, raw: raw
        self.pending_config: ConfigFrame | None = None
        self.frames_sent = 0
        self.commands: list[int] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._senders: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        for task in list(self._senders):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = StreamReader()
        sender: asyncio.Task[None] | None = None
        try:
            while chunk := await reader.read(4096):
                for raw in stream.feed(chunk):
                    frame = decode_frame(raw)
                    if not isinstance(frame, CommandFrame):
                        continue
                    self.commands.append(int(frame.command))
                    if frame.command == Command.SEND_CFG2:
                        if self.pending_config is not None:
                            self.config, self.pending_config = self.pending_config, None
                        soc, fraction = now_soc_fraction(1_000_000)
                        writer.write(encode_frame(replace(self.config, soc=soc, fracsec=fraction)))
                    elif frame.command == Command.START and sender is None:
                        sender = asyncio.get_running_loop().create_task(self._send(writer))
                        self._senders.add(sender)
                    elif frame.command == Command.STOP and sender is not None:
                        sender.cancel()
                        sender = None
        except (ConnectionError, OSError):
            pass
        finally:
            if sender is not None:
                sender.cancel()
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        period = 1.0 / self.config.data_rate
        k = 0
        next_s = time.time()
        while not writer.is_closing():
            soc, fraction = now_soc_fraction(1_000_000)
            data = measurements(self.config)
            for block in data:
                block.stat = self.stat_of(k)
            raw = encode_frame(DataFrame(self.config.idcode, soc, fraction, data, 1_000_000), self.config)
            writer.write(self.chunk_of(k, raw))
            self.frames_sent += 1
            k += 1
            next_s += period
            await asyncio.sleep(max(next_s - time.time(), 0))
