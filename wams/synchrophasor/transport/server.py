"""PMU side: serve a configuration and stream data frames over TCP, UDP, hybrid or TLS."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl as ssl_module
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from wams.synchrophasor.decode import decode_frame
from wams.synchrophasor.encode import encode_cfg3_fragments, encode_frame
from wams.synchrophasor.errors import C37118Error
from wams.synchrophasor.frames import (
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    HeaderFrame,
    PmuData,
)
from wams.synchrophasor.layout import layout_of
from wams.synchrophasor.stream import StreamReader
from wams.synchrophasor.transport.clock import ReportingClock, now_soc_fraction

log = logging.getLogger(__name__)

ServerMode = Literal["tcp", "udp", "hybrid", "spontaneous"]
Measurements = Sequence[PmuData] | DataFrame
DataSource = Callable[[int, int], Measurements | Awaitable[Measurements]] | AsyncIterator[Measurements]
Send = Callable[[bytes], None]
MAX_LAG_PERIODS = 5  # fall further behind than this and the clock jumps to now (frames skipped)
WRITE_BUFFER_LIMIT = 1 << 20  # bytes queued on a slow TCP peer before frames are dropped for it

MAX_COMMAND_FRAME_SIZE = 1024  # command frames with extended data beyond this are refused as malformed


def default_source(config: ConfigFrame) -> Callable[[int, int], list[PmuData]]:
    """Return a source of nominal, constant measurements (phasors 1+0j V/A, nominal frequency)."""

    def source(soc: int, fraction: int) -> list[PmuData]:
        return [
            PmuData(
                stat=0,
                phasors=np.ones(len(p.phasors), dtype=np.complex128),
                frequency_hz=float(p.nominal_hz),
                rocof_hz_per_s=0.0,
                analogs=np.zeros(len(p.analogs)),
                digitals=[0] * len(p.digitals),
            )
            for p in config.pmus
        ]

    return source


class PmuServer:
    """Serve one C37.118 data stream (one IDCODE) the way a PMU or PDC output does.

    Usage::

        server = PmuServer(cfg2, source, header="Substation A PMU", mode="tcp")
        ports = await server.start()          # {"tcp": 4712} (port 0 picks a free port)
        ...
        await server.stop()

    `config` is the CFG-2 (its `cfg_type` is ignored for CFG-1/2/3 answers, which are derived from it
    unless `cfg1` / `cfg3` are given). `source` supplies the measurements of each reporting instant:
    either a callable `source(soc, fraction) -> list[PmuData] | DataFrame` (sync or async), called
    once per instant and shared by every peer, or an async iterator yielding the same; a DataFrame's
    own time stamp is kept when `keep_timestamps` is True, else it is re-stamped to the instant.

    Modes:
    - "tcp": commands and data on one TCP connection per PDC (TLS when `ssl` is an SSLContext).
    - "udp": commands arrive as UDP datagrams on `udp_port`; replies and data go to the sender.
    - "hybrid": commands on TCP; after START, data goes by UDP to the peer's address at
      `udp_data_port` (the PDC's listening port).
    - "spontaneous": no commands; data is sent by UDP to every `udp_targets` address from start.

    With `align_to_wall_clock` the frames are stamped and sent on exact multiples of 1/DATA_RATE
    of the system clock; otherwise every period from the first START, stamped with the send time.
    Commands whose IDCODE differs from the stream's are ignored (counted in `ignored_commands`).
    `on_command(frame, peer)` is called for every accepted command (e.g. EXTENDED frames).
    """

    def __init__(
        self,
        config: ConfigFrame,
        source: DataSource | None = None,
        *,
        header: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        mode: ServerMode = "tcp",
        udp_port: int = 0,
        udp_data_port: int | None = None,
        udp_targets: Sequence[tuple[str, int]] = (),
        ssl: ssl_module.SSLContext | None = None,
        align_to_wall_clock: bool = True,
        keep_timestamps: bool = False,
        cfg1: ConfigFrame | None = None,
        cfg3: ConfigFrame | None = None,
        on_command: Callable[[CommandFrame, Any], None] | None = None,
    ) -> None:
        self.config = replace(config, cfg_type=2) if config.cfg_type != 2 else config
        self.cfg1 = cfg1 or replace(config, cfg_type=1)
        self.cfg3 = cfg3 or replace(config, cfg_type=3, version=2)
        self.header = header
        self.host = host
        self.port = port
        self.mode: ServerMode = mode
        self.udp_port = udp_port
        self.udp_data_port = udp_data_port
        self.udp_targets = list(udp_targets)
        self.ssl = ssl
        self.align_to_wall_clock = align_to_wall_clock
        self.keep_timestamps = keep_timestamps
        self.on_command = on_command
        self._source: DataSource = source if source is not None else default_source(self.config)
        self._layout = layout_of(self.config)
        self._subscribers: dict[Any, Send] = {}
        self._tcp_server: asyncio.Server | None = None
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._peers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.ports: dict[str, int] = {}
        self.frames_sent = 0
        self.frames_skipped = 0
        self.frames_dropped = 0
        self.ignored_commands = 0
        self.commands_received: list[int] = []
        self.source_errors = 0

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> dict[str, int]:
        """Open the listening sockets; return the bound ports, e.g. {"tcp": 40123, "udp": 40124}."""
        loop = asyncio.get_running_loop()
        if self.mode in ("tcp", "hybrid"):
            self._tcp_server = await asyncio.start_server(self._serve_tcp, self.host, self.port, ssl=self.ssl)
            self.ports["tcp"] = self._tcp_server.sockets[0].getsockname()[1]
        if self.mode in ("udp", "hybrid", "spontaneous"):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpCommandProtocol(self), local_addr=(self.host, self.udp_port)
            )
            self._udp_transport = transport
            self.ports["udp"] = transport.get_extra_info("sockname")[1]
        if self.mode == "spontaneous":
            for target in self.udp_targets:
                self._subscribe(("udp", target), self._udp_sender(target))
        return dict(self.ports)

    async def stop(self) -> None:
        """Stop streaming, close every connection and the listening sockets."""
        self._subscribers.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._tcp_server is not None:
            self._tcp_server.close()
        for writer in list(self._writers):
            writer.close()  # the peer's read loop then ends by itself
        if self._peers:
            _, pending = await asyncio.wait(list(self._peers), timeout=2.0)
            for task in pending:
                task.cancel()
        if self._tcp_server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp_server.wait_closed(), 2.0)
            self._tcp_server = None
        if self._udp_transport is not None:
            self._udp_transport.close()
            self._udp_transport = None

    async def __aenter__(self) -> PmuServer:
        """Start the server in an `async with` block."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the server at the end of the `async with` block."""
        await self.stop()

    @property
    def streaming_peers(self) -> int:
        """Return how many peers receive data now."""
        return len(self._subscribers)

    # commands --------------------------------------------------------------------------------
    def _replies(self, command: int) -> list[bytes]:
        """Return the frames answering `command` (header or configuration), time stamped now."""
        soc, fraction = now_soc_fraction(self.config.time_base)
        if command == Command.SEND_HEADER:
            return [encode_frame(HeaderFrame(self.config.idcode, soc, fraction, self.header))]
        if command == Command.SEND_CFG1:
            return [encode_frame(replace(self.cfg1, soc=soc, fracsec=fraction))]
        if command == Command.SEND_CFG2:
            return [encode_frame(replace(self.config, soc=soc, fracsec=fraction))]
        if command == Command.SEND_CFG3:
            return encode_cfg3_fragments(replace(self.cfg3, soc=soc, fracsec=fraction))
        return []

    def handle_command(self, frame: CommandFrame, key: Any, send: Send) -> None:
        """Act on one command from the peer `key` whose frames go out through `send`."""
        if frame.idcode != self.config.idcode:
            self.ignored_commands += 1
            return
        code = int(frame.command)
        self.commands_received.append(code)
        if self.on_command is not None:
            self.on_command(frame, key)
        for reply in self._replies(code):
            send(reply)
        if code == Command.START:
            self._subscribe(key, send)
        elif code == Command.STOP:
            self._subscribers.pop(key, None)

    def _subscribe(self, key: Any, send: Send) -> None:
        """Add a data receiver and make sure the ticker runs."""
        self._subscribers[key] = send
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    # TCP -------------------------------------------------------------------------------------
    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one TCP connection until it closes."""
        task = asyncio.current_task()
        if task is not None:
            self._peers.add(task)
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        key = ("tcp", peer)
        # A PMU hears only command frames (18 bytes plus extended data): a bogus FRAMESIZE up to 65535 would
        # hold the stream until that many bytes came, so resynchronise past anything longer than a command.
        stream = StreamReader(max_frame_size=MAX_COMMAND_FRAME_SIZE)

        def send_tcp(data: bytes) -> None:
            if writer.is_closing():
                self._subscribers.pop(key, None)
                return
            if writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                self.frames_dropped += 1
                return
            writer.write(data)

        data_send: Send = send_tcp
        if self.mode == "hybrid":
            data_port = self.udp_data_port
            udp_target = (peer[0], data_port) if data_port else None
            data_send = self._udp_sender(udp_target) if udp_target else send_tcp
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                for raw in stream.feed(chunk):
                    try:
                        frame = decode_frame(raw)
                    except C37118Error:
                        continue
                    if isinstance(frame, CommandFrame):
                        self._handle_tcp_command(frame, key, send_tcp, data_send)
        except (ConnectionError, OSError):
            pass
        finally:
            self._subscribers.pop(key, None)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if task is not None:
                self._peers.discard(task)

    def _handle_tcp_command(self, frame: CommandFrame, key: Any, reply_send: Send, data_send: Send) -> None:
        """Answer on TCP; stream data on `data_send` (TCP, or UDP in hybrid mode)."""
        if frame.idcode != self.config.idcode:
            self.ignored_commands += 1
            return
        code = int(frame.command)
        if code in (Command.START, Command.STOP):
            self.commands_received.append(code)
            if self.on_command is not None:
                self.on_command(frame, key)
            if code == Command.START:
                self._subscribe(key, data_send)
            else:
                self._subscribers.pop(key, None)
            return
        self.handle_command(frame, key, reply_send)

    # UDP -------------------------------------------------------------------------------------
    def _udp_sender(self, addr: tuple[str, int]) -> Send:
        """Return a function sending frames by UDP to `addr` from the server's UDP socket."""

        def send_udp(data: bytes) -> None:
            if self._udp_transport is not None and not self._udp_transport.is_closing():
                self._udp_transport.sendto(data, addr)

        return send_udp

    # streaming -------------------------------------------------------------------------------
    async def _measurements(self, soc: int, fraction: int) -> Measurements | None:
        """Return the measurements of one instant from the source (None when exhausted)."""
        source = self._source
        if hasattr(source, "__anext__"):
            try:
                return await source.__anext__()
            except StopAsyncIteration:
                return None
        result = source(soc, fraction)  # type: ignore[operator]
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    def _frame_bytes(self, soc: int, fraction: int, measured: Measurements) -> bytes:
        """Encode one data frame stamped (soc, fraction) unless the source's stamp is kept."""
        if isinstance(measured, DataFrame):
            if self.keep_timestamps:
                frame = replace(measured, idcode=self.config.idcode)
            else:
                frame = replace(measured, idcode=self.config.idcode, soc=soc, fracsec=fraction)
        else:
            frame = DataFrame(self.config.idcode, soc, fraction, list(measured), self.config.time_base)
        return self._layout.encode(frame)

    async def _tick(self) -> None:
        """Send one data frame per reporting instant to every subscriber while there are any."""
        cfg = self.config
        clock = ReportingClock(cfg.data_rate, cfg.time_base)
        start_s = time.time()
        clock.seek(start_s)
        sent_index = 0
        while self._subscribers:
            if self.align_to_wall_clock:
                target_s = clock.instant_s()
            else:
                target_s = start_s + sent_index * clock.period_s
            delay = target_s - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_LAG_PERIODS * clock.period_s:
                self.frames_skipped += 1
                clock.seek(time.time())
                start_s, sent_index = time.time(), 0
                continue
            if not self._subscribers:
                break
            if self.align_to_wall_clock:
                soc, fraction = clock.soc, clock.fraction()
            else:
                soc, fraction = now_soc_fraction(cfg.time_base)
            try:
                measured = await self._measurements(soc, fraction)
                if measured is None:
                    break
                data = self._frame_bytes(soc, fraction, measured)
            except C37118Error:
                self.source_errors += 1
                log.exception("data source gave measurements that do not fit the configuration")
                clock.advance()
                sent_index += 1
                continue
            for send in list(self._subscribers.values()):
                send(data)
            self.frames_sent += 1
            clock.advance()
            sent_index += 1


class _UdpCommandProtocol(asyncio.DatagramProtocol):
    """Receive UDP commands for a `PmuServer` and answer to the sender."""

    def __init__(self, server: PmuServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Decode every command in the datagram and act on it."""
        for raw in StreamReader().feed(data):
            try:
                frame = decode_frame(raw)
            except C37118Error:
                continue
            if isinstance(frame, CommandFrame):
                self.server.handle_command(frame, ("udp", addr), self.server._udp_sender(addr))
