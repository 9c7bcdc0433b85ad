"""PdcClient bounds and delivery over a real loopback socket: frame size, queue, synchronous sink."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from tests.synchrophasor.helpers import make_config, make_pmu, sample_measurements
from wams.synchrophasor import (
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    LinkClosed,
    PdcClient,
    StreamReader,
    decode_frame,
    encode_frame,
)

TIMEOUT_S = 20.0
SOC = 1_700_000_000


def run(coro: Awaitable[Any]) -> Any:
    """Run a coroutine with an overall bound."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, TIMEOUT_S)

    return asyncio.run(bounded())


def _config() -> ConfigFrame:
    return make_config([make_pmu(1, 2, 1, 1)], idcode=91, data_rate=50)


def _frames(cfg: ConfigFrame, n: int) -> list[bytes]:
    """Return n encoded data frames, 20 ms apart."""
    return [
        encode_frame(DataFrame(cfg.idcode, SOC + k // 50, (k % 50) * 20_000, sample_measurements(cfg, k)), cfg)
        for k in range(n)
    ]


class Device:
    """A loopback device: answers CFG-2, sends `on_start` bytes at START, closes when asked."""

    def __init__(self, cfg: ConfigFrame, on_start: bytes) -> None:
        self.cfg = cfg
        self.on_start = on_start
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        stream = StreamReader()
        try:
            while chunk := await reader.read(4096):
                for raw in stream.feed(chunk):
                    cmd = decode_frame(raw)
                    assert isinstance(cmd, CommandFrame)
                    if cmd.command == Command.SEND_CFG2:
                        writer.write(encode_frame(self.cfg))
                    elif cmd.command == Command.START:
                        writer.write(self.on_start)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _until(condition: Any, what: str, timeout_s: float = 10.0) -> None:
    """Poll `condition()` until it holds; fail naming `what` after `timeout_s`."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for: {what}")


@pytest.mark.parametrize("size", [0, 15, 65536, -1])
def test_max_frame_size_outside_16_to_65535_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        PdcClient("127.0.0.1", 1, 1, max_frame_size=size)
    client = PdcClient("127.0.0.1", 1, 1)
    with pytest.raises(ValueError, match="max_frame_size"):
        client.max_frame_size = size
    assert client.max_frame_size == 65535


def test_queue_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="queue_limit"):
        PdcClient("127.0.0.1", 1, 1, queue_limit=0)


def test_lowered_frame_size_skips_a_false_huge_frame_at_once() -> None:
    cfg = _config()
    frames = _frames(cfg, 3)
    false_start = b"\xaa\x01\x40\x00"  # a data SYNC claiming a 16,384-byte frame
    device = Device(cfg, false_start + b"".join(frames))

    async def scenario() -> None:
        port = await device.start()
        client = PdcClient("127.0.0.1", port, cfg.idcode, fetch_header=False, max_frame_size=1024)
        await client.connect()
        client.max_frame_size = 2 * len(frames[0])  # settable while connected
        await client.start()
        got = [(await client.receive())[1] for _ in range(3)]
        await client.close()
        await device.stop()
        assert [f.fracsec for f in got] == [0, 20_000, 40_000]
        assert client.rejected.get("bad_framesize", 0) >= 1

    run(scenario())


def test_default_frame_size_holds_frames_behind_a_false_huge_frame() -> None:
    cfg = _config()
    frames = _frames(cfg, 3)
    device = Device(cfg, b"\xaa\x01\x40\x00" + b"".join(frames))

    async def scenario() -> None:
        port = await device.start()
        client = PdcClient("127.0.0.1", port, cfg.idcode, fetch_header=False)
        await client.connect()
        await client.start()
        with pytest.raises(TimeoutError):
            await client.receive(timeout_s=0.5)  # the reader waits for 16,384 bytes that never come
        await client.close()
        await device.stop()
        assert client.frames_received == 0

    run(scenario())


def test_full_queue_drops_the_oldest_frames_and_counts_them() -> None:
    cfg = _config()
    n, limit = 40, 10
    device = Device(cfg, b"".join(_frames(cfg, n)))

    async def scenario() -> None:
        port = await device.start()
        client = PdcClient("127.0.0.1", port, cfg.idcode, fetch_header=False, queue_limit=limit)
        await client.connect()
        await client.start()
        await _until(lambda: client.frames_received == n, "every frame decoded")
        assert client.queued == limit
        got = [(await client.receive())[1] for _ in range(limit)]
        await client.close()
        await device.stop()
        assert client.frames_dropped == n - limit
        expected = [((k % 50) * 20_000) for k in range(n - limit, n)]  # the newest survive, in order
        assert [f.fracsec for f in got] == expected

    run(scenario())


def test_sink_gets_queued_then_live_frames_and_wait_closed_reports_the_loss() -> None:
    cfg = _config()
    n = 12
    device = Device(cfg, b"".join(_frames(cfg, n)))

    async def scenario() -> None:
        port = await device.start()
        client = PdcClient("127.0.0.1", port, cfg.idcode, fetch_header=False)
        await client.connect()
        await client.start()
        await _until(lambda: client.frames_received >= 3, "some frames queued")
        seen: list[tuple[float, DataFrame]] = []
        client.sink = lambda arrival_s, frame: seen.append((arrival_s, frame))
        assert client.queued == 0  # the queued frames went to the sink first
        await _until(lambda: len(seen) == n, "every frame delivered")
        await device.stop()
        with pytest.raises(LinkClosed):
            await client.wait_closed()
        await client.close(send_stop=False)
        assert [f.fracsec for _, f in seen] == [(k % 50) * 20_000 for k in range(n)]
        assert all(arrival_s > SOC for arrival_s, _ in seen)
        assert client.frames_dropped == 0

    run(scenario())


def test_failing_sink_is_counted_and_the_link_goes_on() -> None:
    cfg = _config()
    device = Device(cfg, b"".join(_frames(cfg, 6)))
    taken: list[int] = []

    def sink(arrival_s: float, frame: DataFrame) -> None:
        if frame.fracsec == 20_000:
            raise RuntimeError("consumer bug")
        taken.append(frame.fracsec)

    async def scenario() -> None:
        port = await device.start()
        client = PdcClient("127.0.0.1", port, cfg.idcode, fetch_header=False, sink=sink)
        await client.connect()
        await client.start()
        await _until(lambda: client.frames_received == 6, "every frame decoded")
        await client.close()
        await device.stop()
        assert taken == [0, 40_000, 60_000, 80_000, 100_000]
        assert client.rejected.get("sink_error") == 1

    run(scenario())
