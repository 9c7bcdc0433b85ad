"""Communication paths: an asyncio relay per path adding delay, jitter, loss and outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

from wams.synchrophasor import StreamReader

logger = logging.getLogger(__name__)


@dataclass
class Impairment:
    """What a path does to the traffic it carries (changeable while running)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0  #: whole C37.118 frames dropped (TCP: device to PDC only; UDP: datagrams)
    outage: bool = False  #: path down: connections cut, new ones closed at once, datagrams dropped

    def hold_s(self, rng: random.Random) -> float:
        """Return how long to hold one frame, in seconds."""
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms > 0 else 0.0
        return max(0.0, self.delay_ms + jitter) / 1000.0

    def lose(self, rng: random.Random) -> bool:
        """Return True when the next frame is lost."""
        return self.loss_pct > 0 and rng.uniform(0.0, 100.0) < self.loss_pct


class PathRelay:
    """Listen on a path's port and forward to the device behind it, impairing the traffic.

    TCP: every client connection gets its own upstream connection; bytes from the client go up
    unchanged, frames from the device are cut with a `StreamReader` and each is delayed (order kept)
    or dropped. UDP (hybrid data): datagrams arriving on `udp_in_port` from the device go to the last
    TCP client's host at `udp_out_port`; UDP command transport: datagrams on `listen_port` go to
    the device's UDP port and replies come back to the sender.
    """

    def __init__(
        self,
        listen_host: str,
        listen_port: int,
        target_host: str,
        target_port: int,
        *,
        transport: str = "tcp",
        impairment: Impairment | None = None,
        udp_out_port: int | None = None,
        frame_aware: bool = True,
        seed: int | None = None,
    ) -> None:
        """Describe the relay; nothing listens until `start`."""
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.target_host = target_host
        self.target_port = target_port
        self.transport = transport
        self.impairment = impairment or Impairment()
        self.udp_out_port = udp_out_port
        self.frame_aware = frame_aware  # False for TLS: bytes are opaque, delayed per chunk, never dropped
        self.rng = random.Random(seed)
        self.udp_in_port: int | None = None
        self.frames_forwarded = 0
        self.frames_lost = 0
        self._server: asyncio.Server | None = None
        self._udp_in: asyncio.DatagramTransport | None = None
        self._udp_listen: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._last_client_host: str | None = None

    async def start(self) -> int:
        """Start listening; return the bound listening port."""
        loop = asyncio.get_running_loop()
        if self.transport in ("tcp", "hybrid"):
            self._server = await asyncio.start_server(self._serve, self.listen_host, self.listen_port)
            self.listen_port = self._server.sockets[0].getsockname()[1]
        if self.transport == "hybrid":
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramForwarder(self, self._hybrid_target), local_addr=("127.0.0.1", 0)
            )
            self._udp_in = transport
            self.udp_in_port = transport.get_extra_info("sockname")[1]
        if self.transport == "udp":
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpCommandRelay(self), local_addr=(self.listen_host, self.listen_port)
            )
            self._udp_listen = transport
            self.listen_port = transport.get_extra_info("sockname")[1]
        return self.listen_port

    def retarget(self, host: str, port: int) -> None:
        """Send new connections to another device port (e.g. after a device restart)."""
        self.target_host, self.target_port = host, port

    def cut(self) -> None:
        """Close every relayed connection now (the path stays open for new ones)."""
        for writer in list(self._writers):
            writer.close()

    def set_outage(self, outage: bool) -> None:
        """Take the path down (cutting live connections) or bring it back."""
        self.impairment.outage = outage
        if outage:
            self.cut()

    async def stop(self) -> None:
        """Stop listening and close every relayed connection."""
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        for transport in (self._udp_in, self._udp_listen):
            if transport is not None:
                transport.close()
        self._udp_in = self._udp_listen = None

    # ------------------------------------------------------------------------------- TCP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        if self.impairment.outage:
            writer.close()
            if task is not None:
                self._tasks.discard(task)
            return
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        self._last_client_host = peer[0] if peer else None
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            return
        self._writers.add(up_writer)
        pumps = [
            asyncio.create_task(self._pump_up(reader, up_writer)),
            asyncio.create_task(self._pump_down(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)
            if task is not None:
                self._tasks.discard(task)

    async def _pump_up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                if self.impairment.outage:
                    return
                writer.write(chunk)
                await writer.drain()

    async def _pump_down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = StreamReader()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send_in_order(queue, writer))
        last_due = 0.0
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await reader.read(65536):
                    if self.impairment.outage:
                        return
                    for frame in frames.feed(chunk) if self.frame_aware else [chunk]:
                        if self.frame_aware and self.impairment.lose(self.rng):
                            self.frames_lost += 1
                            continue
                        due = max(last_due, loop.time() + self.impairment.hold_s(self.rng))
                        last_due = due
                        queue.put_nowait((due, frame))
        finally:
            await queue.put((-1.0, b""))
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(sender, 2.0)

    async def _send_in_order(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                due, frame = await queue.get()
                if due < 0:
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if writer.is_closing():
                    return
                writer.write(frame)
                self.frames_forwarded += 1

    # ------------------------------------------------------------------------------- UDP

    def _hybrid_target(self) -> tuple[str, int] | None:
        if self._last_client_host is None or self.udp_out_port is None:
            return None
        return self._last_client_host, self.udp_out_port

    def forward_datagram(self, transport: asyncio.DatagramTransport, data: bytes, addr: tuple[str, int]) -> None:
        """Send one datagram to `addr` after the path's delay, unless lost or out."""
        if self.impairment.outage or self.impairment.lose(self.rng):
            self.frames_lost += 1
            return
        hold = self.impairment.hold_s(self.rng)
        loop = asyncio.get_running_loop()

        def send() -> None:
            if not transport.is_closing():
                transport.sendto(data, addr)
                self.frames_forwarded += 1

        if hold > 0:
            loop.call_later(hold, send)
        else:
            send()


class _DatagramForwarder(asyncio.DatagramProtocol):
    """Forward datagrams from the device to the relay's current UDP target."""

    def __init__(self, relay: PathRelay, target: object) -> None:
        self.relay = relay
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to send from."""
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Forward to where the PDC listens."""
        target = self.relay._hybrid_target()
        if target is not None and self.transport is not None:
            self.relay.forward_datagram(self.transport, data, target)


class _UdpCommandRelay(asyncio.DatagramProtocol):
    """Relay a UDP-only stream: commands to the device, data and replies back to the sender."""

    def __init__(self, relay: PathRelay) -> None:
        self.relay = relay
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: dict[tuple[str, int], asyncio.DatagramTransport] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the listening transport to answer from."""
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Open (once) an upstream socket for this client and pass the datagram up."""
        if self.relay.impairment.outage:
            return
        upstream = self.upstream.get(addr)
        if upstream is None:
            asyncio.get_running_loop().create_task(self._open_upstream(addr, data))
            return
        upstream.sendto(data, (self.relay.target_host, self.relay.target_port))

    async def _open_upstream(self, client: tuple[str, int], first: bytes) -> None:
        loop = asyncio.get_running_loop()
        relay_back = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if relay_back.transport is not None:
                    relay_back.relay.forward_datagram(relay_back.transport, data, client)

        transport, _ = await loop.create_datagram_endpoint(Back, local_addr=("127.0.0.1", 0))
        self.upstream[client] = transport
        transport.sendto(first, (self.relay.target_host, self.relay.target_port))
