"""The fleet built from the grid model, and admin requests applied to a running fleet."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time

import pytest

from wams.grid.loaders import DemoPorts, load_demo_topology
from wams.simulator import services
from wams.simulator.engine.realtime import SCENARIO_LEAD_S, RealTimeSimulator
from wams.simulator.fleet import Fleet, FleetSpec
from wams.simulator.models import SimulatorRequest
from wams.synchrophasor import PdcClient, Stat

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(90)]


def _all_free(ports: list[tuple[int, int]]) -> bool:
    for port, kind in ports:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def demo_ports() -> DemoPorts:
    """Return demo ports below the ephemeral range, every one of them free right now."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(10_000, 30_000, 10)
        wanted = [(base + k, socket.SOCK_STREAM) for k in range(16)]
        wanted += [(base + 100 + k, socket.SOCK_STREAM) for k in range(16)]
        wanted += [(base + 200 + k, socket.SOCK_DGRAM) for k in range(16)]
        wanted += [(base + 300 + k, socket.SOCK_STREAM) for k in range(40)]
        if _all_free(wanted):
            return DemoPorts(
                pmu_port_base=base, path_port_offset=100, udp_port_base=base + 200, rtu_port_base=base + 300
            )
    raise RuntimeError("no free port block")


def test_fleet_from_grid_model_has_every_stream_with_two_paths_and_the_rtus():
    load_demo_topology(demo_ports())
    spec = services.fleet_spec_from_grid()
    assert len(spec.streams) == 13
    assert all(len(s.paths) == 2 for s in spec.streams)
    assert {p.transport for s in spec.streams for p in s.paths} == {"tcp", "hybrid"}
    pdc = next(s for s in spec.streams if s.idcode == 900)
    assert [p.idcode for p in pdc.pmus] == [122, 123]
    bus39 = next(p for s in spec.streams for p in s.pmus if p.idcode == 139)
    currents = [c for c in bus39.channels if c.measures == "line_current"]
    assert [c.line for c in currents] == [(39, 1), (39, 9)]  # oriented from the PMU's bus
    kinds = sorted({p.kind for r in spec.rtus for p in r.points})
    assert kinds == ["breaker", "generator_setpoint", "load_block"]


def test_rtus_from_the_grid_model_match_the_database_free_demo_layout():
    from wams.simulator.fleet.demo import demo_fleet_spec

    load_demo_topology()
    from_grid = {(r.port, p.name, p.kind, p.common_address, p.ioa, p.status_ioa, p.line, p.bus)
                 for r in services.fleet_spec_from_grid().rtus for p in r.points}  # fmt: skip
    from_demo = {(r.port, p.name, p.kind, p.common_address, p.ioa, p.status_ioa, p.line, p.bus)
                 for r in demo_fleet_spec().rtus for p in r.points}  # fmt: skip
    assert from_grid == from_demo
    cut = {p[1]: p[4] for p in from_grid if p[1] in ("Breaker 26-28 Scobie", "Breaker 26-29 Scobie")}
    assert cut == {"Breaker 26-28 Scobie": 1015, "Breaker 26-29 Scobie": 1016}  # after every earlier IOA


def test_admin_requests_start_a_scenario_and_flag_a_pmu_on_the_running_fleet():
    load_demo_topology(demo_ports())
    full = services.fleet_spec_from_grid()
    spec = FleetSpec(tuple(s for s in full.streams if s.idcode == 139), ())
    trip = SimulatorRequest.objects.create(
        action="scenario", scenario="generator_trip", params={"generator": "GENROU_5"}
    )
    flag = SimulatorRequest.objects.create(action="pmu_flags", target="139", params={"sync_lost": True})
    bad = SimulatorRequest.objects.create(action="pmu_flags", target="139", params={"no_such_flag": True})
    requests = services.pending_requests()

    async def main():
        sim = RealTimeSimulator("ieee39", lookahead_s=0.2)
        fleet = Fleet(sim, spec)
        await fleet.start()
        outcomes = []
        try:
            for request in requests:
                try:
                    outcomes.append((request, True, await services.apply_request(fleet, request)))
                except (KeyError, ValueError) as exc:
                    outcomes.append((request, False, str(exc)))
            port = fleet.stream(139).relays["fibre"].listen_port
            client = PdcClient("127.0.0.1", port, idcode=139)
            await client.connect()
            await client.start()
            _arrival, frame = await client.receive(timeout_s=3)
            await client.close()
            # The scenario starts SCENARIO_LEAD_S after the request: wait for the trip to be simulated.
            for _ in range(round((SCENARIO_LEAD_S + 8.0) / 0.1)):
                if any(e["kind"] == "generator_trip" for e in sim.truth.data["events"]):
                    break
                await asyncio.sleep(0.1)
            return outcomes, frame, sim.truth.data["events"]
        finally:
            await fleet.stop()

    outcomes, frame, events = asyncio.run(main())
    for request, ok, message in outcomes:
        services.finish_request(request, ok=ok, message=message, run_id="test")
    trip.refresh_from_db()
    flag.refresh_from_db()
    bad.refresh_from_db()
    assert trip.status == "applied" and flag.status == "applied" and bad.status == "failed"
    assert not Stat.from_word(frame.pmus[0].stat).pmu_sync
    assert any(e["kind"] == "generator_trip" and e["scenario"] == "generator_trip" for e in events)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_the_fleet_stream_with_no_bad_checksum(tmp_path):
    load_demo_topology(demo_ports())
    full = services.fleet_spec_from_grid()
    spec = FleetSpec(tuple(s for s in full.streams if s.idcode in (139, 110, 900)), ())
    pcap = tmp_path / "fleet.pcapng"

    async def main():
        sim = RealTimeSimulator("ieee39", lookahead_s=0.2)
        fleet = Fleet(sim, spec)
        await fleet.start()
        ports = [s.relays["fibre"].listen_port for s in fleet.streams]
        bpf = " or ".join(f"tcp port {p}" for p in ports)
        capture = subprocess.Popen(  # noqa: ASYNC220 - starts at once; waited for in a thread
            ["tshark", "-i", "lo", "-f", bpf, "-a", "duration:8", "-w", str(pcap)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert capture.stderr is not None
        line = ""
        while "Capturing on" not in line:  # tshark says so once packets are being recorded
            line = await asyncio.wait_for(asyncio.to_thread(capture.stderr.readline), 20)
            assert line, "tshark ended before capturing"
        await asyncio.sleep(0.5)
        clients = []
        try:
            for stream, port in zip(fleet.streams, ports):
                client = PdcClient("127.0.0.1", port, idcode=stream.spec.idcode)
                await client.connect()
                await client.start()
                clients.append(client)
            deadline = time.time() + 2.0
            while time.time() < deadline:
                for client in clients:
                    await client.receive(timeout_s=2)
            for client in clients:
                await client.close()
        finally:
            await asyncio.to_thread(capture.wait, 15)
            await fleet.stop()
        return ports

    ports = asyncio.run(main())
    decode = [arg for p in ports for arg in ("-d", f"tcp.port=={p},synphasor")]
    fields = subprocess.run(
        ["tshark", "-r", str(pcap), *decode, "-Y", "synphasor", "-T", "fields", "-e", "synphasor.frtype",
         "-e", "synphasor.checksum.status"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    types, status = [int(t, 16) for t in fields[0::2]], fields[1::2]
    assert types.count(0) > 30  # data frames decoded (after each CFG-2)
    assert 3 in types  # CFG-2
    assert set(status) == {"1"}  # every checksum good
    malformed = subprocess.run(
        ["tshark", "-r", str(pcap), *decode, "-Y", "_ws.malformed"], capture_output=True, text=True, check=True
    ).stdout
    assert malformed.strip() == ""
