"""Device links over real loopback sockets: configuration, failover, reconnects, bad bytes, stale data."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.pdc.fleet import ScriptedPmu, free_port, pmu_block, start_pmu, stream_config, wait_for
from wams.pdc.link import STAT_CONFIG_CHANGE, Link
from wams.pdc.reports import LinkOptions, State
from wams.pdc.specs import PathSpec, PmuSpec, StreamSpec
from wams.synchrophasor import ConfigFrame, DataFrame

FAST = LinkOptions(connect_timeout_s=1.0, stale_reconnect_s=1.5, try_cfg3=False)


class Recorder:
    """A LinkConsumer that keeps what it is given."""

    def __init__(self) -> None:
        self.configs: list[ConfigFrame] = []
        self.frames: list[tuple[float, int, DataFrame]] = []
        self.states: list[str] = []

    def on_config(self, link: Link, config: ConfigFrame) -> None:
        self.configs.append(config)

    def on_frame(self, link: Link, arrival_s: float, timestamp_us: int, frame: DataFrame) -> None:
        self.frames.append((arrival_s, timestamp_us, frame))

    def on_state(self, link: Link) -> None:
        self.states.append(link.state.value)


def spec(*ports: int, idcode: int = 7, policy: str = "priority", pmu_idcodes: tuple[int, ...] = (7,)) -> StreamSpec:
    paths = tuple(
        PathSpec(id=k + 1, name=f"path{k + 1}", host="127.0.0.1", port=port, priority=k + 1)
        for k, port in enumerate(ports)
    )
    pmus = tuple(PmuSpec(id=100 + k, idcode=code, station_name=f"P{code}") for k, code in enumerate(pmu_idcodes))
    return StreamSpec(id=1, name="test stream", idcode=idcode, reporting_rate_fps=30, paths=paths, pmus=pmus)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 40))


async def with_link(link: Link, body: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.create_task(link.run())
    try:
        await body()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_link_fetches_the_configuration_starts_and_maps_pmus_by_idcode() -> None:
    async def scenario() -> None:
        config = stream_config(900, [pmu_block(11, "A"), pmu_block(12, "B")])
        server = await start_pmu(config)
        recorder = Recorder()
        link = Link(spec(server.ports["tcp"], idcode=900, pmu_idcodes=(12, 11)), recorder, FAST)

        async def body() -> None:
            assert await wait_for(lambda: len(recorder.frames) >= 10, 5)
            assert link.state is State.STREAMING
            assert link.pmu_ids == [101, 100]  # block order of the CFG, ids of the model
            report = link.report(time.time())
            assert report.frames_received >= 10 and report.frames_bad == 0 and report.path_name == "path1"
            assert report.latency_ms is not None and 0 <= report.latency_ms < 1000

        await with_link(link, body)
        await server.stop()
        assert recorder.states[:2] == ["configuring", "streaming"]  # from the initial "connecting"

    run(scenario)


def test_link_fails_over_to_the_next_path_when_the_preferred_one_is_down() -> None:
    async def scenario() -> None:
        server = await start_pmu(stream_config(7, [pmu_block(7, "A")]))
        recorder = Recorder()
        link = Link(spec(free_port(), server.ports["tcp"]), recorder, FAST)

        async def body() -> None:
            assert await wait_for(lambda: len(recorder.frames) >= 5, 5)
            assert link.path is not None and link.path.name == "path2"
            assert "path1" in link.last_error

        await with_link(link, body)
        await server.stop()

    run(scenario)


def test_path_policy_latency_prefers_the_fastest_path() -> None:
    async def scenario() -> None:
        slow = await start_pmu(stream_config(7, [pmu_block(7, "A")]))
        fast = await start_pmu(stream_config(7, [pmu_block(7, "A")]))
        base = spec(slow.ports["tcp"], fast.ports["tcp"], policy="latency")
        paths = (
            PathSpec(
                id=1, name="satellite", host="127.0.0.1", port=slow.ports["tcp"], nominal_latency_ms=600, priority=1
            ),
            PathSpec(id=2, name="fibre", host="127.0.0.1", port=fast.ports["tcp"], nominal_latency_ms=5, priority=2),
        )
        recorder = Recorder()
        link = Link(StreamSpec(**{**_fields(base), "paths": paths, "path_policy": "latency"}), recorder, FAST)

        async def body() -> None:
            assert await wait_for(lambda: len(recorder.frames) >= 3, 5)
            assert link.path is not None and link.path.name == "fibre"

        await with_link(link, body)
        await slow.stop()
        await fast.stop()

    run(scenario)


def _fields(s: StreamSpec) -> dict[str, object]:
    return {name: getattr(s, name) for name in s.__dataclass_fields__}


def test_device_that_goes_away_and_comes_back_is_streaming_again_within_5_s() -> None:
    async def scenario() -> None:
        config = stream_config(7, [pmu_block(7, "A")])
        server = await start_pmu(config)
        port = server.ports["tcp"]
        recorder = Recorder()
        link = Link(spec(port), recorder, FAST)

        async def body() -> None:
            assert await wait_for(lambda: link.state is State.STREAMING, 5)
            await server.stop()
            assert await wait_for(lambda: link.state is State.BACKING_OFF, 3)
            await asyncio.sleep(4.0)  # long enough for the backoff to reach its cap
            back = await start_pmu(config, port=port)
            returned_s = time.monotonic()
            count = len(recorder.frames)
            assert await wait_for(lambda: len(recorder.frames) > count + 3, 8)
            assert time.monotonic() - returned_s < 5.0
            assert link.state is State.STREAMING
            assert link.reconnects >= 1
            assert link.gaps > 30  # about four seconds of missed instants
            await back.stop()

        await with_link(link, body)

    run(scenario)


def test_malformed_frames_are_counted_without_dropping_the_link() -> None:
    async def scenario() -> None:
        device = ScriptedPmu(stream_config(7, [pmu_block(7, "A")]))

        def corrupt(k: int, raw: bytes) -> bytes:
            if k == 10:
                return raw[:-1] + bytes([raw[-1] ^ 0xFF])  # bad CRC
            if k == 20:
                return b"\x00garbage\xaa\x01" + raw  # junk before a good frame
            if k == 30:
                return raw[:20]  # truncated: the next frame's SYNC resynchronises the reader
            return raw

        device.chunk_of = corrupt
        await device.start()
        recorder = Recorder()
        link = Link(spec(device.port), recorder, FAST)

        async def body() -> None:
            assert await wait_for(lambda: device.frames_sent >= 45, 5)
            await asyncio.sleep(0.2)
            assert link.state is State.STREAMING
            assert link.reconnects == 0
            assert link.frames_bad >= 3
            # Frames 10 and 30 are lost; 20 survives its junk; everything else arrives.
            assert device.frames_sent - 2 - 2 <= link.frames_received <= device.frames_sent - 2

        await with_link(link, body)
        await device.stop()

    run(scenario)


def test_stat_config_change_bit_makes_the_link_fetch_the_new_configuration() -> None:
    async def scenario() -> None:
        old = stream_config(7, [pmu_block(7, "A", n_phasors=2, cfgcnt=1)])
        new = stream_config(7, [pmu_block(7, "A", n_phasors=3, cfgcnt=2)])
        device = ScriptedPmu(old, stat_of=lambda k: STAT_CONFIG_CHANGE if 5 <= k < 15 else 0)
        await device.start()
        recorder = Recorder()
        link = Link(spec(device.port), recorder, FAST)

        async def body() -> None:
            assert await wait_for(lambda: len(recorder.frames) >= 3, 5)
            device.pending_config = new  # the device changes at the next configuration request
            assert await wait_for(lambda: link.config is not None and link.config.pmus[0].cfgcnt == 2, 5)
            assert link.config_changes == 1
            count = len(recorder.frames)
            assert await wait_for(lambda: len(recorder.frames) > count + 5, 3)
            assert len(recorder.frames[-1][2].pmus[0].phasors) == 3

        await with_link(link, body)
        await device.stop()

    run(scenario)


def test_silent_device_is_marked_stale_then_reconnected() -> None:
    async def scenario() -> None:
        device = ScriptedPmu(stream_config(7, [pmu_block(7, "A")]))
        silent = False
        device.chunk_of = lambda k, raw: b"" if silent else raw
        await device.start()
        recorder = Recorder()
        link = Link(spec(device.port), recorder, FAST)

        async def body() -> None:
            nonlocal silent
            assert await wait_for(lambda: link.state is State.STREAMING, 5)
            silent = True
            while link.state is State.STREAMING:
                link.check(time.time())
                await asyncio.sleep(0.02)
            assert link.state is State.STALE
            deadline = time.monotonic() + 5
            while "no data" not in link.last_error and time.monotonic() < deadline:
                link.check(time.time())
                await asyncio.sleep(0.05)
            assert "no data" in link.last_error  # the silent connection was dropped
            silent = False
            assert await wait_for(lambda: link.state is State.STREAMING, 5)
            assert link.reconnects == 1

        await with_link(link, body)
        await device.stop()

    run(scenario)


def link_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wams.pdc.link"]


def test_a_link_still_coming_up_logs_its_refused_connections_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wams.pdc.link")

    async def scenario() -> None:
        link = Link(spec(free_port(), free_port()), Recorder(), FAST)  # nobody listens: every try is refused
        await with_link(link, lambda: asyncio.sleep(1.5))

    run(scenario)
    records = link_records(caplog)
    assert len(records) >= 4  # two paths, tried again after each backoff
    assert {r.levelno for r in records} == {logging.DEBUG}
    assert all("path" in r.getMessage() and "Connect" in r.getMessage() for r in records)


def test_a_link_down_a_while_logs_each_paths_failure_once_and_says_when_it_streams(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="wams.pdc.link")
    options = LinkOptions(connect_timeout_s=1.0, try_cfg3=False, backoff_max_s=0.3, report_down_after_s=0.5)

    async def scenario() -> None:
        port1, port2 = free_port(), free_port()
        link = Link(spec(port1, port2), Recorder(), options)

        async def body() -> None:
            await asyncio.sleep(2.5)  # several rounds of retries past report_down_after_s
            server = await start_pmu(stream_config(7, [pmu_block(7, "A")]), port=port2)
            assert await wait_for(lambda: link.state is State.STREAMING, 5)
            await server.stop()

        await with_link(link, body)

    run(scenario)
    warnings = [r.getMessage() for r in link_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # once per path, however many retries
    assert {w.split("; ")[1].split(":")[0] for w in warnings} == {"path1", "path2"}
    assert all(w.startswith("stream test stream: no data for ") for w in warnings)
    infos = [r.getMessage() for r in link_records(caplog) if r.levelno == logging.INFO]
    assert any(m.startswith("stream test stream: streaming on path2 after ") for m in infos), infos


def test_disabled_stream_does_not_connect() -> None:
    async def scenario() -> None:
        server = await start_pmu(stream_config(7, [pmu_block(7, "A")]))
        link = Link(StreamSpec(**{**_fields(spec(server.ports["tcp"])), "enabled": False}), Recorder(), FAST)

        async def body() -> None:
            await asyncio.sleep(0.5)
            assert link.state is State.DISABLED
            assert server.commands_received == []

        await with_link(link, body)
        await server.stop()

    run(scenario)


def test_link_uses_cfg3_where_the_device_offers_it_and_cfg2_where_it_does_not() -> None:
    async def scenario() -> None:
        config = stream_config(7, [pmu_block(7, "A")])
        server = await start_pmu(config)
        device = ScriptedPmu(config)  # answers CFG-2 only
        await device.start()
        options = LinkOptions(connect_timeout_s=1.0, try_cfg3=True, cfg3_timeout_s=0.2)
        with_cfg3, without = Recorder(), Recorder()
        link3 = Link(spec(server.ports["tcp"]), with_cfg3, options)
        link2 = Link(spec(device.port), without, options)

        async def body() -> None:
            assert await wait_for(lambda: len(with_cfg3.frames) >= 3 and len(without.frames) >= 3, 8)
            assert link3.config is not None and link3.config.cfg_type == 3
            assert link2.config is not None and link2.config.cfg_type == 2

        await with_link(link2, lambda: with_link(link3, body))
        await server.stop()
        await device.stop()

    run(scenario)


def test_hybrid_path_takes_commands_on_tcp_and_data_on_udp() -> None:
    async def scenario() -> None:
        udp_port = free_udp_port()
        server = await start_pmu(stream_config(7, [pmu_block(7, "A")]), mode="hybrid", udp_data_port=udp_port)
        path = PathSpec(1, "lte", "127.0.0.1", server.ports["tcp"], transport="hybrid", udp_port=udp_port)
        recorder = Recorder()
        link = Link(StreamSpec(**{**_fields(spec(1)), "paths": (path,)}), recorder, FAST)

        async def body() -> None:
            assert await wait_for(lambda: len(recorder.frames) >= 10, 5)
            assert link.state is State.STREAMING

        await with_link(link, body)
        await server.stop()

    run(scenario)


def test_tls_link_verifies_the_device_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)

    async def scenario() -> None:
        server = await start_pmu(stream_config(7, [pmu_block(7, "A")]), ssl=server_context)
        tls_spec = StreamSpec(**{**_fields(spec(server.ports["tcp"])), "tls": True})
        trusted, untrusted = Recorder(), Recorder()
        good = Link(tls_spec, trusted, LinkOptions(connect_timeout_s=1.0, try_cfg3=False, tls_ca_file=str(cert_file)))
        bad = Link(tls_spec, untrusted, FAST)  # system CAs only: the self-signed device is refused

        async def body() -> None:
            assert await wait_for(lambda: len(trusted.frames) >= 5, 5)
            assert untrusted.frames == []
            assert "CERTIFICATE_VERIFY_FAILED" in bad.last_error

        await with_link(bad, lambda: with_link(good, body))
        await server.stop()

    run(scenario)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test PMU")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "pmu.pem", directory / "pmu.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
