"""The PMU fleet over real sockets: CFG/header/data, formats, paths, flags, restarts, TLS."""

from __future__ import annotations

import asyncio
import socket
import time

import numpy as np
import pytest

from tests.simulator.conftest import free_port
from wams.simulator.engine.realtime import RealTimeSimulator
from wams.simulator.fleet import ChannelSpec, Fleet, FleetSpec, PathSpec, PmuSpec, StreamSpec
from wams.simulator.fleet.tls import client_context
from wams.synchrophasor import Command, PdcClient, Stat

pytestmark = pytest.mark.timeout(60)


def pmu(bus: int, idcode: int, **fmt) -> PmuSpec:
    channels = (
        ChannelSpec("phasor", f"V{bus}", "bus_voltage", bus=bus, unit="V"),
        ChannelSpec("phasor", "I16-17", "line_current", bus=16, line=(16, 17), unit="A"),
        ChannelSpec("analog", "P16-17", "power", bus=16, line=(16, 17), unit="MW"),
    )
    return PmuSpec(idcode=idcode, station_name=f"T{bus}", bus=bus, channels=channels, **fmt)


def stream(idcode: int, *, rate: int = 30, tls: bool = False, **fmt) -> StreamSpec:
    paths = (
        PathSpec("fibre", "127.0.0.1", 0, "tcp"),
        PathSpec("lte", "127.0.0.1", 0, "hybrid", udp_port=free_port(socket.SOCK_DGRAM)),
    )
    return StreamSpec(f"S{idcode}", idcode, rate, (pmu(16, idcode, **fmt),), paths, tls=tls)


def port_of(fleet: Fleet, idcode: int, path: str) -> int:
    return fleet.stream(idcode).relays[path].listen_port


async def frames(client: PdcClient, n: int) -> list:
    out = []
    for _ in range(n):
        out.append(await client.receive(timeout_s=3.0))
    return out


def run(coro):
    return asyncio.run(coro)


def with_fleet(specs, body, tmp_path=None):
    async def main():
        sim = RealTimeSimulator("ieee39", lookahead_s=0.2)
        fleet = Fleet(sim, FleetSpec(tuple(specs)), tls_dir=tmp_path)
        await fleet.start()
        try:
            return await body(fleet)
        finally:
            await fleet.stop()

    return run(main())


def test_stream_answers_header_and_cfg2_and_sends_data_on_reporting_boundaries():
    async def body(fleet):
        client = PdcClient("127.0.0.1", port_of(fleet, 501, "fibre"), idcode=501)
        cfg = await client.connect()
        header = await client.request_header()
        await client.start()
        got = await frames(client, 15)
        await client.close()
        return cfg, header, got

    cfg, header, got = with_fleet([stream(501)], body)
    assert cfg.data_rate == 30 and cfg.pmus[0].station_name == "T16"
    assert [p.name for p in cfg.pmus[0].phasors] == ["V16", "I16-17"]
    assert "T16 (bus 16)" in header.text
    for arrival, frame in got:
        fraction = frame.fracsec & 0xFFFFFF
        assert (fraction * 30) % cfg.time_base == 0  # FRACSEC a multiple of 1/30 s
        assert arrival - frame.timestamp_s < 0.5
    v = np.array([abs(f.pmus[0].phasors[0]) for _a, f in got])
    np.testing.assert_allclose(v / (345e3 / np.sqrt(3)), 1.04, atol=0.03)  # bus 16 near 1.04 pu
    freq = np.array([f.pmus[0].frequency_hz for _a, f in got])
    assert np.all(np.abs(freq - 60.0) < 0.005)
    p_mw = np.array([f.pmus[0].analogs[0] for _a, f in got])
    assert np.all(np.abs(p_mw) > 10.0)


def test_int16_rectangular_stream_carries_the_same_values_as_float_polar():
    async def body(fleet):
        results = []
        for idcode in (511, 512):
            client = PdcClient("127.0.0.1", port_of(fleet, idcode, "fibre"), idcode=idcode)
            cfg = await client.connect()
            await client.start()
            results.append((cfg, await frames(client, 5)))
            await client.close()
        return results

    (_cfg_a, got_a), (cfg_b, got_b) = with_fleet(
        [stream(511), stream(512, phasor_float=False, polar=False, freq_float=False)], body
    )
    assert not cfg_b.pmus[0].phasor_float and not cfg_b.pmus[0].polar
    va = np.mean([abs(f.pmus[0].phasors[0]) for _a, f in got_a])
    vb = np.mean([abs(f.pmus[0].phasors[0]) for _a, f in got_b])
    assert vb == pytest.approx(va, rel=0.005)
    assert np.mean([f.pmus[0].frequency_hz for _a, f in got_b]) == pytest.approx(60.0, abs=0.005)


def test_hybrid_path_sends_data_by_udp_and_delay_shows_in_arrival_times():
    spec = stream(521)
    lte = spec.paths[1]

    async def body(fleet):
        fleet.stream(521).set_path("lte", delay_ms=150.0)
        client = PdcClient(
            "127.0.0.1", port_of(fleet, 521, "lte"), idcode=521, transport="hybrid", udp_port=lte.udp_port
        )
        await client.connect()
        await client.start()
        got = await frames(client, 10)
        await client.close()
        return got

    got = with_fleet([spec], body)
    latency = np.array([arrival - frame.timestamp_s for arrival, frame in got])
    assert np.median(latency) > 0.14


def test_outage_cuts_a_path_while_the_other_keeps_streaming():
    async def body(fleet):
        main = PdcClient("127.0.0.1", port_of(fleet, 531, "fibre"), idcode=531)
        await main.connect()
        await main.start()
        await frames(main, 3)
        fleet.stream(531).set_path("fibre", outage=True)
        with pytest.raises((ConnectionError, TimeoutError, OSError)):
            await frames(main, 30)
        await main.close(send_stop=False)
        backup = PdcClient(
            "127.0.0.1", port_of(fleet, 531, "lte"), idcode=531, transport="hybrid",
            udp_port=fleet.stream(531).paths["lte"].udp_port,
        )  # fmt: skip
        await backup.connect()
        await backup.start()
        got = await frames(backup, 3)
        await backup.close()
        return got

    assert len(with_fleet([stream(531)], body)) == 3


def test_sync_loss_and_invalid_data_flags_show_in_stat():
    async def body(fleet):
        client = PdcClient("127.0.0.1", port_of(fleet, 541, "fibre"), idcode=541)
        await client.connect()
        await client.start()
        before = (await frames(client, 2))[-1][1]
        fleet.stream(541).flags().sync_lost = True
        fleet.stream(541).flags().data_invalid = True
        await frames(client, 2)
        after = (await frames(client, 2))[-1][1]
        await client.close()
        return before, after

    before, after = with_fleet([stream(541)], body)
    s0, s1 = Stat.from_word(before.pmus[0].stat), Stat.from_word(after.pmus[0].stat)
    assert s0.pmu_sync and s0.data_error == 0
    assert not s1.pmu_sync and s1.data_error == 3


def test_reconfigure_changes_rate_and_cfgcnt_and_flags_the_change():
    async def body(fleet):
        s = fleet.stream(551)
        await s.reconfigure(rate_fps=60, polar=False)
        client = PdcClient("127.0.0.1", port_of(fleet, 551, "fibre"), idcode=551)
        cfg = await client.connect()
        await client.start()
        got = await frames(client, 12)
        await client.close()
        return cfg, got

    cfg, got = with_fleet([stream(551)], body)
    assert cfg.data_rate == 60 and cfg.pmus[0].cfgcnt == 1 and not cfg.pmus[0].polar
    stamps = np.array([f.timestamp_s for _a, f in got])
    np.testing.assert_allclose(np.diff(stamps), 1 / 60, atol=1e-5)
    assert Stat.from_word(got[-1][1].pmus[0].stat).config_change


@pytest.mark.parametrize("rate", [10, 120])
def test_rates_from_10_to_120_fps_are_served(rate):
    async def body(fleet):
        client = PdcClient("127.0.0.1", port_of(fleet, 560 + rate, "fibre"), idcode=560 + rate)
        await client.connect()
        await client.start()
        got = await frames(client, 6)
        await client.close()
        return got

    got = with_fleet([stream(560 + rate, rate=rate)], body)
    stamps = np.array([f.timestamp_s for _a, f in got])
    np.testing.assert_allclose(np.diff(stamps), 1 / rate, atol=1e-5)


def test_restart_drops_the_connection_and_serves_again():
    async def body(fleet):
        client = PdcClient("127.0.0.1", port_of(fleet, 571, "fibre"), idcode=571)
        await client.connect()
        await client.start()
        await frames(client, 2)
        await fleet.stream(571).restart()
        with pytest.raises((ConnectionError, TimeoutError, OSError)):
            await frames(client, 60)
        await client.close(send_stop=False)
        again = PdcClient("127.0.0.1", port_of(fleet, 571, "fibre"), idcode=571)
        await again.connect()
        await again.start()
        got = await frames(again, 2)
        await again.send_command(Command.STOP)
        await again.close()
        return got

    assert len(with_fleet([stream(571)], body)) == 2


def test_tls_stream_serves_through_its_paths(tmp_path):
    async def body(fleet):
        cert, _key = fleet.tls_files
        client = PdcClient(
            "127.0.0.1", port_of(fleet, 581, "fibre"), idcode=581, ssl=client_context(cert),
            server_hostname="localhost",
        )  # fmt: skip
        cfg = await client.connect()
        await client.start()
        got = await frames(client, 3)
        await client.close()
        return cfg, got

    cfg, got = with_fleet([stream(581, tls=True)], body, tmp_path)
    assert cfg.idcode == 581 and len(got) == 3


def test_frames_leave_close_to_their_time_stamps():
    async def body(fleet):
        client = PdcClient("127.0.0.1", port_of(fleet, 591, "fibre"), idcode=591)
        await client.connect()
        await client.start()
        got = await frames(client, 30)
        await client.close()
        return got

    got = with_fleet([stream(591)], body)
    lateness = np.array([a - f.timestamp_s for a, f in got])
    assert np.median(lateness) < 0.05
    assert time.time() > got[-1][1].timestamp_s
