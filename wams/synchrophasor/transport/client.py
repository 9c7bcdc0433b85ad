"""PDC side: connect to a PMU/PDC, fetch header and configuration, receive data frames."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Literal

from wams.synchrophasor.decode import MIN_FRAME_SIZE, Cfg3Assembler, decode_frame
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
from wams.synchrophasor.layout import DataLayout, layout_of
from wams.synchrophasor.stream import StreamReader
from wams.synchrophasor.transport.clock import now_soc_fraction

logger = logging.getLogger(__name__)

ClientTransport = Literal["tcp", "hybrid", "udp"]
DataSink = Callable[[float, DataFrame], None]
QUEUE_LIMIT = 10_000  # default: data frames held for a slow consumer before the oldest are dropped
MAX_FRAME_SIZE = 0xFFFF  # FRAMESIZE is 16 bits
_DATA = int(FrameType.DATA)
_CFG3 = int(FrameType.CFG3)


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

    `await client.receive()` returns `(arrival_time_s, frame)` for latency work. Reconnecting after a
    lost link is the caller's (the pdc's links do it with back-off and jitter).

    transport: "tcp" (commands and data on TCP), "hybrid" (commands on TCP, data on UDP received on
    local `udp_port`; the device must send to it), "udp" (commands and data by UDP to `port`).
    `on_frame(frame)` is called for every decoded data frame. Rejected bytes and frames are counted
    in `rejected` by reason (stream reasons plus decode reasons such as "config_mismatch").

    Data frames wait in a queue of at most `queue_limit` frames for `receive()`; when a slow
    consumer lets it fill, the oldest frame is dropped and counted in `frames_dropped`. A consumer
    that keeps up with every frame can set `sink` instead (or pass `sink=`): `sink(arrival_s, frame)`
    is then called synchronously as each data frame is decoded, nothing is queued, and `receive()`
    (or `wait_closed()`) only reports the loss of the link. `max_frame_size` (16..65535 bytes) bounds
    the frames the reader accepts; lower it to about the stream's largest frame so that a corrupted
    FRAMESIZE is refused at once instead of holding back the frames behind it.
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
        on_frame: Callable[[DataFrame], None] | None = None,
        sink: DataSink | None = None,
        max_frame_size: int = MAX_FRAME_SIZE,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        if queue_limit < 1:
            raise ValueError(f"queue_limit must be at least 1, not {queue_limit}")
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
        self.on_frame = on_frame
        self.queue_limit = queue_limit
        self.header: HeaderFrame | None = None
        self.frames_received = 0
        self.frames_dropped = 0
        self.rejected: dict[str, int] = {}
        self.last_error: str | None = None
        self._config: ConfigFrame | None = None
        self._layout: DataLayout | None = None
        self._sink: DataSink | None = None
        self._frames: deque[tuple[float, DataFrame]] = deque()
        self._end: BaseException | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._waiters: dict[FrameType, asyncio.Future[ConfigFrame | HeaderFrame]] = {}
        self._tcp: asyncio.Transport | None = None
        self._tcp_protocol: _TcpProtocol | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._cfg3 = Cfg3Assembler()
        self._max_frame_size = MAX_FRAME_SIZE
        self.max_frame_size = max_frame_size
        self._stream = self._new_reader()
        self.local_udp_port: int | None = None
        self.sink = sink

    # settings --------------------------------------------------------------------------------
    @property
    def max_frame_size(self) -> int:
        """Return the largest frame (bytes) the reader accepts."""
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, size: int) -> None:
        """Bound the frames the reader accepts to `size` bytes (16..65535), from the next byte on."""
        if not isinstance(size, int) or not MIN_FRAME_SIZE <= size <= MAX_FRAME_SIZE:
            raise ValueError(
                f"max_frame_size must be an integer within {MIN_FRAME_SIZE}..{MAX_FRAME_SIZE}, not {size!r}"
            )
        self._max_frame_size = size
        stream = getattr(self, "_stream", None)
        if stream is not None:
            stream.max_frame_size = size

    @property
    def config(self) -> ConfigFrame | None:
        """Return the configuration data frames are decoded with (the last CFG-2/CFG-3 received)."""
        return self._config

    @config.setter
    def config(self, config: ConfigFrame | None) -> None:
        """Decode data frames with `config` from now on."""
        self._config = config
        self._layout = None

    @property
    def sink(self) -> DataSink | None:
        """Return the callable data frames are handed to (None: they are queued for `receive()`)."""
        return self._sink

    @sink.setter
    def sink(self, sink: DataSink | None) -> None:
        """Hand data frames to `sink(arrival_s, frame)` as they arrive; frames already queued go first."""
        self._sink = sink
        if sink is not None:
            while self._frames:
                self._deliver(sink, *self._frames.popleft())

    @property
    def queued(self) -> int:
        """Return how many data frames wait for `receive()`."""
        return len(self._frames)

    def _new_reader(self) -> StreamReader:
        """Return a frame reader that counts its rejections in `rejected`."""
        reader = StreamReader(self._max_frame_size)
        reader.rejected = self.rejected  # one dict: no merging per chunk
        return reader

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
        self._stream = self._new_reader()
        self._frames.clear()
        self._end = None
        loop = asyncio.get_running_loop()
        if self.transport in ("tcp", "hybrid"):
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _TcpProtocol(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.server_hostname if self.ssl else None,
                ),
                self.timeout_s,
            )
            self._tcp, self._tcp_protocol = transport, protocol
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
        """Close sockets without sending anything."""
        tcp, protocol = self._tcp, self._tcp_protocol
        self._tcp = self._tcp_protocol = None  # closed on purpose: its end is no link loss
        if tcp is not None and protocol is not None:
            tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(protocol.closed), 1.0)
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    async def close(self, send_stop: bool = True) -> None:
        """Send STOP (best effort) and close the link."""
        if send_stop and (self._tcp is not None or self._udp is not None):
            with contextlib.suppress(Exception):
                await self.send_command(Command.STOP)
        await self._close_link()
        self._finish(LinkClosed("closed"))

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
        if self._tcp is None or self._tcp.is_closing():
            raise LinkClosed("not connected")
        self._tcp.write(raw)  # a few bytes: the transport buffers them, no flow control needed

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
            reader = StreamReader(self._max_frame_size)
            reader.rejected = self.rejected
            frames = reader.feed(chunk)
            if reader.buffered:
                self._reject("truncated")
        else:
            frames = self._stream.feed(chunk)
        for raw in frames:
            self._handle_frame(raw, arrival_s)

    def _handle_frame(self, raw: bytes, arrival_s: float) -> None:
        """Decode one CRC-checked frame (the reader checked it) and route it."""
        frame: DataFrame | ConfigFrame | HeaderFrame | CommandFrame | None
        frame_type = (raw[1] >> 4) & 0x7
        try:
            if frame_type == _DATA and self._config is not None:
                layout = self._layout
                if layout is None:
                    layout = self._layout = layout_of(self._config)
                frame = layout.decode(raw, check_crc=False)
            elif frame_type == _CFG3:
                frame = self._cfg3.feed(raw)
                if frame is None:
                    return
            else:
                frame = decode_frame(raw, self._config)
        except C37118Error as exc:
            self._reject(exc.reason)
            return
        if isinstance(frame, DataFrame):
            self.frames_received += 1
            if self.on_frame is not None:
                self.on_frame(frame)
            sink = self._sink
            if sink is not None:
                self._deliver(sink, arrival_s, frame)
                return
            if len(self._frames) >= self.queue_limit:
                self._frames.popleft()
                self.frames_dropped += 1
            self._frames.append((arrival_s, frame))
            self._wake()
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

    def _deliver(self, sink: DataSink, arrival_s: float, frame: DataFrame) -> None:
        """Hand one data frame to the sink; a failing sink is logged and counted, the link goes on."""
        try:
            sink(arrival_s, frame)
        except Exception:
            self._reject("sink_error")
            logger.exception("data sink of %s:%d failed", self.host, self.port)

    def _wake(self) -> None:
        """Wake a consumer waiting in `receive()`."""
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _finish(self, error: BaseException) -> None:
        """Record that the link ended with `error` and wake the consumer."""
        self._end = error
        self._wake()

    def _tcp_closed(self, protocol: _TcpProtocol, exc: Exception | None) -> None:
        """End the session when its TCP connection closes; fail the pending requests."""
        if protocol is not self._tcp_protocol:
            return  # an earlier connection, or one `_close_link` is closing
        self._tcp = self._tcp_protocol = None
        error: BaseException = LinkClosed("connection closed by peer" if exc is None else str(exc))
        self.last_error = str(error)
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(LinkClosed(str(error)))
        self._finish(error)

    async def receive(self, timeout_s: float | None = None) -> tuple[float, DataFrame]:
        """Return the next data frame with its arrival time (s since 1970); raise on link loss."""
        while not self._frames:
            if self._end is not None:
                error, self._end = self._end, None
                raise error
            wakeup = self._wakeup
            if wakeup is None or wakeup.done():
                wakeup = self._wakeup = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(asyncio.shield(wakeup), timeout_s)  # shared by concurrent receivers
        return self._frames.popleft()

    async def wait_closed(self) -> None:
        """Wait until the link is lost or closed, then raise `LinkClosed` (use with `sink`)."""
        while True:
            await self.receive()

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


class _TcpProtocol(asyncio.Protocol):
    """Feed the bytes of the TCP connection to a `PdcClient` as they arrive."""

    def __init__(self, client: PdcClient) -> None:
        self.client = client
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        """Handle one chunk of the byte stream."""
        self.client.handle_bytes(data, time.time())

    def eof_received(self) -> bool:
        """Close on end of stream (the device closed its side)."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Tell the client the connection ended."""
        if not self.closed.done():
            self.closed.set_result(None)
        self.client._tcp_closed(self, exc)


class _UdpDataProtocol(asyncio.DatagramProtocol):
    """Feed UDP datagrams to a `PdcClient`."""

    def __init__(self, client: PdcClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Handle one datagram of whole frames."""
        self.client.handle_bytes(data, time.time(), datagram=True)
