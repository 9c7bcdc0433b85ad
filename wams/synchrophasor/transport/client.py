"""PDC side: connect to a PMU/PDC, fetch header and configuration, receive data frames."""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

from wams.synchrophasor.decode import Cfg3Assembler, decode_frame, peek_header
from wams.synchrophasor.encode import encode_frame
from wams.synchrophasor.errors import C37118Error
from wams.synchrophasor.frames import (
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    FrameType,
    HeaderFrame,
)
from wams.synchrophasor.stream import StreamReader
from wams.synchrophasor.transport.clock import now_soc_fraction

ClientTransport = Literal["tcp", "hybrid", "udp"]
QUEUE_LIMIT = 10_000  # data frames held for a slow consumer before the oldest are dropped


class LinkClosed(ConnectionError):
    """The connection to the device closed."""


class PdcClient:
    """Connect to one C37.118 data stream as a PDC does.

    Usage::

        client = PdcClient("10.0.0.5", 4712, idcode=7734)          # TCP; ssl=ctx for TLS
        config = await client.connect()        # connects, asks header (optional) and CFG-2
        await client.start()                   # START: data frames begin
        async for frame in client:             # DataFrame objects, decoded with `config`
            ...
        await client.close()                   # sends STOP and closes

    or, with reconnects handled: ``async for frame in client.stream(): ...`` (connects, starts,
    and on a lost link waits `reconnect_delay_s` (doubling up to `max_reconnect_delay_s`) and does it
    all again). `await client.receive()` returns `(arrival_time_s, frame)` for latency work.

    transport: "tcp" (commands and data on TCP), "hybrid" (commands on TCP, data on UDP received on
    local `udp_port`; the device must send to it), "udp" (commands and data by UDP to `port`).
    `on_frame(frame)` is called for every decoded data frame. Rejected bytes and frames are counted
    in `rejected` by reason (stream reasons plus decode reasons such as "config_mismatch").
    """

    def __init__(
        self,
        host: str,
        port: int,
        idcode: int,
        *,
        transport: ClientTransport = "tcp",
        udp_port: int = 0,
        udp_host: str = "0.0.0.0",
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        cfg_type: int = 2,
        fetch_header: bool = True,
        timeout_s: float = 5.0,
        reconnect_delay_s: float = 1.0,
        max_reconnect_delay_s: float = 30.0,
        on_frame: Callable[[DataFrame], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.idcode = idcode
        self.transport: ClientTransport = transport
        self.udp_port = udp_port
        self.udp_host = udp_host
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.cfg_type = cfg_type
        self.fetch_header = fetch_header
        self.timeout_s = timeout_s
        self.reconnect_delay_s = reconnect_delay_s
        self.max_reconnect_delay_s = max_reconnect_delay_s
        self.on_frame = on_frame
        self.config: ConfigFrame | None = None
        self.header: HeaderFrame | None = None
        self.frames_received = 0
        self.frames_dropped = 0
        self.reconnects = 0
        self.rejected: dict[str, int] = {}
        self.last_error: str | None = None
        self._queue: asyncio.Queue[tuple[float, DataFrame] | BaseException] = asyncio.Queue()
        self._waiters: dict[FrameType, asyncio.Future[ConfigFrame | HeaderFrame]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._cfg3 = Cfg3Assembler()
        self._stream = StreamReader()
        self.local_udp_port: int | None = None

    # connection ------------------------------------------------------------------------------
    async def connect(self) -> ConfigFrame:
        """Open the link, fetch the header (if asked) and the configuration; return the latter."""
        await self._open()
        if self.fetch_header:
            try:
                self.header = await self.request_header()
            except TimeoutError:
                self.header = None
        return await self.request_config(self.cfg_type)

    async def _open(self) -> None:
        """Open the TCP connection and/or the UDP socket."""
        await self._close_link()
        self._stream = StreamReader()
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        if self.transport in ("tcp", "hybrid"):
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.server_hostname if self.ssl else None,
                ),
                self.timeout_s,
            )
            self._writer = writer
            self._reader_task = loop.create_task(self._read_tcp(reader))
        if self.transport == "hybrid":
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpDataProtocol(self), local_addr=(self.udp_host, self.udp_port)
            )
            self._udp = udp
            self.local_udp_port = udp.get_extra_info("sockname")[1]
        elif self.transport == "udp":
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpDataProtocol(self),
                remote_addr=(self.host, self.port),
                local_addr=(self.udp_host, self.udp_port) if self.udp_port else None,
            )
            self._udp = udp
            self.local_udp_port = udp.get_extra_info("sockname")[1]

    async def _close_link(self) -> None:
        """Close sockets and the reader task without sending anything."""
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
            self._reader_task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            self._writer = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    async def close(self, send_stop: bool = True) -> None:
        """Send STOP (best effort) and close the link."""
        if send_stop and (self._writer is not None or self._udp is not None):
            with contextlib.suppress(Exception):
                await self.send_command(Command.STOP)
        await self._close_link()
        self._queue.put_nowait(LinkClosed("closed"))

    async def __aenter__(self) -> PdcClient:
        """Connect in an `async with` block."""
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close at the end of the `async with` block."""
        await self.close()

    # commands --------------------------------------------------------------------------------
    async def send_command(self, command: Command | int, extended: bytes = b"") -> None:
        """Send one command frame (time stamped now) to the device."""
        soc, fraction = now_soc_fraction(1_000_000)
        raw = encode_frame(CommandFrame(self.idcode, soc, fraction, command, extended))
        if self.transport == "udp":
            if self._udp is None:
                raise LinkClosed("not connected")
            self._udp.sendto(raw)
            return
        if self._writer is None or self._writer.is_closing():
            raise LinkClosed("not connected")
        self._writer.write(raw)
        await self._writer.drain()

    async def _request(self, command: Command, answer: FrameType) -> ConfigFrame | HeaderFrame:
        """Send `command` and wait for the frame of type `answer`, retrying twice."""
        last: Exception = TimeoutError()
        for _ in range(3):
            fut: asyncio.Future[ConfigFrame | HeaderFrame] = asyncio.get_running_loop().create_future()
            self._waiters[answer] = fut
            await self.send_command(command)
            try:
                return await asyncio.wait_for(fut, self.timeout_s)
            except TimeoutError as exc:
                last = exc
            finally:
                self._waiters.pop(answer, None)
        raise last

    async def request_header(self) -> HeaderFrame:
        """Ask for the header frame and return it."""
        frame = await self._request(Command.SEND_HEADER, FrameType.HEADER)
        assert isinstance(frame, HeaderFrame)
        return frame

    async def request_config(self, cfg_type: int = 2) -> ConfigFrame:
        """Ask for CFG-1, CFG-2 or CFG-3, adopt it for decoding data (CFG-2/3), and return it."""
        command = {1: Command.SEND_CFG1, 2: Command.SEND_CFG2, 3: Command.SEND_CFG3}[cfg_type]
        answer = {1: FrameType.CFG1, 2: FrameType.CFG2, 3: FrameType.CFG3}[cfg_type]
        frame = await self._request(command, answer)
        assert isinstance(frame, ConfigFrame)
        return frame

    async def start(self) -> None:
        """Send START (turn on data transmission)."""
        await self.send_command(Command.START)

    async def stop(self) -> None:
        """Send STOP (turn off data transmission)."""
        await self.send_command(Command.STOP)

    # receiving -------------------------------------------------------------------------------
    def _reject(self, reason: str) -> None:
        """Count one bad frame."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def handle_bytes(self, chunk: bytes, arrival_s: float, datagram: bool = False) -> None:
        """Cut `chunk` into frames and handle each (TCP stream bytes or one UDP datagram)."""
        if datagram:
            reader = StreamReader()
            frames = reader.feed(chunk)
            for reason, count in reader.rejected.items():
                self.rejected[reason] = self.rejected.get(reason, 0) + count
            if reader.buffered:
                self._reject("truncated")
        else:
            before = dict(self._stream.rejected)
            frames = self._stream.feed(chunk)
            for reason, count in self._stream.rejected.items():
                if count != before.get(reason, 0):
                    self.rejected[reason] = self.rejected.get(reason, 0) + count - before.get(reason, 0)
        for raw in frames:
            self._handle_frame(raw, arrival_s)

    def _handle_frame(self, raw: bytes, arrival_s: float) -> None:
        """Decode one CRC-checked frame and route it."""
        frame: DataFrame | ConfigFrame | HeaderFrame | CommandFrame | None
        try:
            head = peek_header(raw)
            if head.frame_type is FrameType.CFG3:
                frame = self._cfg3.feed(raw)
                if frame is None:
                    return
            else:
                frame = decode_frame(raw, self.config)
        except C37118Error as exc:
            self._reject(exc.reason)
            return
        if isinstance(frame, DataFrame):
            self.frames_received += 1
            if self._queue.qsize() >= QUEUE_LIMIT:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()
                self.frames_dropped += 1
            self._queue.put_nowait((arrival_s, frame))
            if self.on_frame is not None:
                self.on_frame(frame)
            return
        if isinstance(frame, ConfigFrame):
            if frame.cfg_type >= 2:
                self.config = frame  # CFG-1 lists capabilities, not what is sent: never adopt it
            fut = self._waiters.get(frame.frame_type)
        elif isinstance(frame, HeaderFrame):
            fut = self._waiters.get(FrameType.HEADER)
        else:
            return
        if fut is not None and not fut.done():
            fut.set_result(frame)

    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        """Read the TCP stream until it closes; then wake the consumer with LinkClosed."""
        error: BaseException = LinkClosed("connection closed by peer")
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                self.handle_bytes(chunk, time.time())
        except (ConnectionError, OSError) as exc:
            error = LinkClosed(str(exc))
        self.last_error = str(error)
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(LinkClosed(str(error)))
        self._queue.put_nowait(error)

    async def receive(self, timeout_s: float | None = None) -> tuple[float, DataFrame]:
        """Return the next data frame with its arrival time (s since 1970); raise on link loss."""
        item = await asyncio.wait_for(self._queue.get(), timeout_s)
        if isinstance(item, BaseException):
            raise item
        return item

    def __aiter__(self) -> AsyncIterator[DataFrame]:
        """Iterate over data frames until the link closes."""
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[DataFrame]:
        """Yield data frames until the link closes."""
        while True:
            try:
                _, frame = await self.receive()
            except LinkClosed:
                return
            yield frame

    async def stream(self, data_timeout_s: float = 10.0) -> AsyncIterator[DataFrame]:
        """Yield data frames forever: connect, START, and reconnect after any loss or silence."""
        delay = self.reconnect_delay_s
        while True:
            try:
                await self.connect()
                await self.start()
                delay = self.reconnect_delay_s
                while True:
                    _, frame = await self.receive(data_timeout_s)
                    yield frame
            except (ConnectionError, OSError, TimeoutError, C37118Error) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.reconnects += 1
                await self._close_link()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_reconnect_delay_s)


class _UdpDataProtocol(asyncio.DatagramProtocol):
    """Feed UDP datagrams to a `PdcClient`."""

    def __init__(self, client: PdcClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Handle one datagram of whole frames."""
        self.client.handle_bytes(data, time.time(), datagram=True)
