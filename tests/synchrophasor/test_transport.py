"""asyncio transports on loopback: TCP, UDP, hybrid, spontaneous, TLS, commands."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.synchrophasor.helpers import make_config, make_pmu, sample_measurements
from wams.synchrophasor import (
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    PdcClient,
    PmuServer,
    StreamReader,
    decode_frame,
    encode_frame,
)

TIMEOUT_S = 20.0


def run(coro: Awaitable[Any]) -> Any:
    """Run a coroutine with an overall bound."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, TIMEOUT_S)

    return asyncio.run(bounded())


def _config(rate: int = 50, **fmt: bool) -> ConfigFrame:
    return make_config([make_pmu(1, 4, 2, 1, **fmt), make_pmu(2, 2, 0, 2, **fmt)], idcode=77, data_rate=rate)


class Recorder:
    """A data source that remembers what it produced for each instant."""

    def __init__(self, config: ConfigFrame) -> None:
        self.config = config
        self.sent: dict[tuple[int, int], list[Any]] = {}

    def __call__(self, soc: int, fraction: int) -> list[Any]:
        data = sample_measurements(self.config, len(self.sent))
        self.sent[(soc, fraction)] = data
        return data


def _assert_values_equal(frame: DataFrame, sent: list[Any]) -> None:
    for got, exp in zip(frame.pmus, sent, strict=True):
        np.testing.assert_allclose(got.phasors, exp.phasors, rtol=1e-6)
        assert got.frequency_hz == pytest.approx(exp.frequency_hz, rel=1e-6)
        assert got.rocof_hz_per_s == pytest.approx(exp.rocof_hz_per_s, rel=1e-6, abs=1e-7)
        np.testing.assert_allclose(got.analogs, exp.analogs, rtol=1e-6)
        assert got.digitals == exp.digitals


async def _take(client: PdcClient, n: int) -> list[DataFrame]:
    frames = []
    async for frame in client:
        frames.append(frame)
        if len(frames) == n:
            break
    return frames


def test_tcp_client_gets_header_config_and_aligned_data_equal_to_source() -> None:
    cfg = _config()
    source = Recorder(cfg)

    async def scenario() -> None:
        async with PmuServer(cfg, source, header="Substation A") as server:
            client = PdcClient("127.0.0.1", server.ports["tcp"], cfg.idcode)
            got_cfg = await client.connect()
            assert client.header is not None and client.header.text == "Substation A"
            assert got_cfg.pmus == cfg.pmus and got_cfg.data_rate == 50 and got_cfg.cfg_type == 2
            await client.start()
            frames = await _take(client, 12)
            await client.close()
        for frame in frames:
            _assert_values_equal(frame, source.sent[(frame.soc, frame.fracsec)])
            assert frame.fraction % 20_000 == 0  # on the 1/50 s grid of the second
        ticks_us = [f.soc * 1_000_000 + f.fraction for f in frames]
        assert set(np.diff(ticks_us).tolist()) == {20_000}  # one frame per period, none skipped

    run(scenario())


def test_stop_command_ends_the_stream_and_start_resumes_it() -> None:
    cfg = _config(rate=50)

    async def scenario() -> None:
        async with PmuServer(cfg) as server:
            client = PdcClient("127.0.0.1", server.ports["tcp"], cfg.idcode, fetch_header=False)
            await client.connect()
            await client.start()
            await _take(client, 3)
            await client.stop()
            for _ in range(100):
                if server.streaming_peers == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.streaming_peers == 0
            await client.start()
            assert len(await _take(client, 3)) == 3
            await client.close()
            assert Command.STOP in server.commands_received

    run(scenario())


def test_command_with_foreign_idcode_is_ignored() -> None:
    cfg = _config()

    async def scenario() -> None:
        async with PmuServer(cfg) as server:
            client = PdcClient("127.0.0.1", server.ports["tcp"], idcode=999, timeout_s=0.3, fetch_header=False)
            with pytest.raises(TimeoutError):
                await client.connect()
            assert server.ignored_commands >= 1
            await client.close(send_stop=False)

    run(scenario())


def test_cfg1_and_cfg3_requests_answer_with_the_same_channels() -> None:
    cfg = _config(phasor_float=False, polar=False)

    async def scenario() -> None:
        async with PmuServer(cfg) as server:
            client = PdcClient("127.0.0.1", server.ports["tcp"], cfg.idcode, cfg_type=3)
            cfg3 = await client.connect()
            assert cfg3.cfg_type == 3 and cfg3.version == 2
            assert [[p.name for p in pmu.phasors] for pmu in cfg3.pmus] == [
                [p.name for p in pmu.phasors] for pmu in cfg.pmus
            ]
            cfg1 = await client.request_config(1)
            assert cfg1.cfg_type == 1 and cfg1.pmus == cfg.pmus
            assert client.config is cfg3  # CFG-1 is never adopted for decoding
            await client.start()
            frames = await _take(client, 3)
            assert all(len(f.pmus) == 2 for f in frames)
            await client.close()

    run(scenario())


def test_udp_mode_commands_and_data_by_datagram() -> None:
    cfg = _config(rate=25)
    source = Recorder(cfg)

    async def scenario() -> None:
        async with PmuServer(cfg, source, mode="udp", header="udp pmu") as server:
            client = PdcClient("127.0.0.1", server.ports["udp"], cfg.idcode, transport="udp")
            await client.connect()
            assert client.header is not None and client.header.text == "udp pmu"
            await client.start()
            frames = await _take(client, 5)
            await client.close()
        for frame in frames:
            _assert_values_equal(frame, source.sent[(frame.soc, frame.fracsec)])

    run(scenario())


def test_hybrid_mode_commands_on_tcp_data_on_udp() -> None:
    cfg = _config(rate=25)

    async def scenario() -> None:
        receiver = PdcClient("127.0.0.1", 0, cfg.idcode, transport="hybrid")
        # Bind the client's UDP port first so the device can be told where to send.
        loop_port = await _free_udp_port()
        async with PmuServer(cfg, mode="hybrid", udp_data_port=loop_port) as server:
            receiver.port = server.ports["tcp"]
            receiver.udp_port = loop_port
            receiver.udp_host = "127.0.0.1"
            await receiver.connect()
            await receiver.start()
            frames = await _take(receiver, 4)
            assert receiver.local_udp_port == loop_port
            await receiver.close()
        assert len(frames) == 4

    run(scenario())


async def _free_udp_port() -> int:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    port = int(transport.get_extra_info("sockname")[1])
    transport.close()
    return port


def test_spontaneous_udp_streams_without_commands() -> None:
    cfg = _config(rate=50)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                received.put_nowait(data)

        sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        target = ("127.0.0.1", sink.get_extra_info("sockname")[1])
        async with PmuServer(cfg, mode="spontaneous", udp_targets=[target]):
            datagrams = [await received.get() for _ in range(3)]
        sink.close()
        for raw in datagrams:
            assert isinstance(decode_frame(raw, cfg), DataFrame)

    run(scenario())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_link_carries_commands_and_data(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=pmu.test",
            "-addext",
            "subjectAltName=DNS:pmu.test",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    cfg = _config()

    async def scenario() -> None:
        async with PmuServer(cfg, ssl=server_ctx) as server:
            client = PdcClient("127.0.0.1", server.ports["tcp"], cfg.idcode, ssl=client_ctx, server_hostname="pmu.test")
            await client.connect()
            await client.start()
            assert len(await _take(client, 3)) == 3
            await client.close()
            # A client that does not trust the certificate never gets a configuration.
            untrusting = PdcClient(
                "127.0.0.1",
                server.ports["tcp"],
                cfg.idcode,
                ssl=ssl.create_default_context(),
                server_hostname="pmu.test",
                timeout_s=2.0,
            )
            with pytest.raises(ssl.SSLError):
                await untrusting.connect()

    run(scenario())


def test_client_counts_bad_frames_and_keeps_decoding() -> None:
    cfg = _config(rate=50)
    frames = [
        encode_frame(DataFrame(cfg.idcode, 1_700_000_000, k * 20_000, sample_measurements(cfg, k)), cfg)
        for k in range(4)
    ]
    bad = bytearray(frames[1])
    bad[-1] ^= 0xFF

    async def device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = StreamReader()
        while chunk := await reader.read(4096):
            for raw in stream.feed(chunk):
                cmd = decode_frame(raw)
                assert isinstance(cmd, CommandFrame)
                if cmd.command == Command.SEND_CFG2:
                    writer.write(encode_frame(cfg))
                elif cmd.command == Command.START:
                    writer.write(b"noise" + frames[0] + bytes(bad) + b"\xaa\x01\x00\x03" + frames[2] + frames[3])
            await writer.drain()
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(device, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = PdcClient("127.0.0.1", port, cfg.idcode, fetch_header=False)
        await client.connect()
        await client.start()
        got = await _take(client, 3)
        await client.close()
        server.close()
        assert [f.fracsec for f in got] == [0, 40_000, 60_000]
        assert client.rejected.get("bad_crc") == 1
        assert client.rejected.get("garbage", 0) >= 1
        assert client.rejected.get("bad_framesize", 0) >= 1

    run(scenario())


def test_async_source_and_iterator_sources_are_streamed() -> None:
    cfg = _config(rate=50)

    async def async_source(soc: int, fraction: int) -> list[Any]:
        await asyncio.sleep(0)
        return sample_measurements(cfg, 5)

    async def iterator() -> Any:
        for k in range(3):
            yield sample_measurements(cfg, k)

    async def scenario(source: Callable[..., Any] | Any, n: int) -> list[DataFrame]:
        async with PmuServer(cfg, source) as server:
            client = PdcClient("127.0.0.1", server.ports["tcp"], cfg.idcode, fetch_header=False)
            await client.connect()
            await client.start()
            frames = await _take(client, n)
            await client.close()
            return frames

    assert len(run(scenario(async_source, 3))) == 3
    frames = run(scenario(iterator(), 3))
    assert [f.pmus[0].digitals for f in frames] == [[0], [1], [2]]


def test_a_bogus_frame_size_does_not_hold_the_command_stream() -> None:
    cfg = _config()

    async def scenario() -> ConfigFrame:
        async with PmuServer(cfg) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
            writer.write(bytes([0xAA, 0x41, 0xFF, 0xFF]) + bytes(200))  # a command header claiming 65,535 bytes
            await writer.drain()
            async with PdcClient("127.0.0.1", server.ports["tcp"], cfg.idcode, timeout_s=5.0, fetch_header=False) as ok:
                found = await ok.connect()  # other connections are served meanwhile
            writer.write(encode_frame(CommandFrame(cfg.idcode, 1_700_000_000, 0, Command.SEND_CFG2)))
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4), timeout=5.0)  # the same connection resynchronised
            writer.close()
            assert answer[:1] == b"\xaa"
            return found

    assert run(scenario()).idcode == cfg.idcode
