"""Control over real sockets: a c104 client operates RTU points with select-before-execute."""

import asyncio
import time

import c104
import numpy as np
import pytest

from tests.simulator.conftest import free_port
from wams.simulator.engine.realtime import RealTimeSimulator
from wams.simulator.fleet import ChannelSpec, Fleet, FleetSpec, PathSpec, PmuSpec, RtuPointSpec, RtuSpec, StreamSpec
from wams.synchrophasor import PdcClient

pytestmark = pytest.mark.timeout(90)


def fleet_spec(rtu_port: int) -> FleetSpec:
    channels = (
        ChannelSpec("phasor", "V4", "bus_voltage", bus=4, unit="V"),
        ChannelSpec("phasor", "I4-3", "line_current", bus=4, line=(4, 3), unit="A"),
        ChannelSpec("phasor", "I4-14", "line_current", bus=4, line=(4, 14), unit="A"),
    )
    pmu = PmuSpec(idcode=104, station_name="T4", bus=4, channels=channels)
    stream = StreamSpec("S104", 104, 30, (pmu,), (PathSpec("fibre", "127.0.0.1", 0, "tcp"),))
    points = (
        RtuPointSpec("Breaker 3-4", "breaker", 1, 1001, 2001, line=(3, 4), bus=3),
        RtuPointSpec("Load block 4", "load_block", 1, 1002, 2002, bus=4, load_mw=200.0),
    )
    return FleetSpec((stream,), (RtuSpec("127.0.0.1", rtu_port, points),))


def operate(port: int, ioa: int, kind: c104.Type, value: object, status_ioa: int, status_kind: c104.Type) -> tuple:
    """Select and execute one command as a SCADA master would; return (accepted, status value)."""
    client = c104.Client(tick_rate_ms=50, command_timeout_ms=6000)  # generous: CI machines are loaded
    connection = client.add_connection(ip="127.0.0.1", port=port, init=c104.Init.ALL)
    station = connection.add_station(common_address=1)
    command = station.add_point(io_address=ioa, type=kind, command_mode=c104.CommandMode.SELECT_AND_EXECUTE)
    status = station.add_point(io_address=status_ioa, type=status_kind)
    sent: list[str] = []

    def on_send(connection: c104.Connection, data: bytes) -> None:
        sent.append(c104.explain_bytes(apdu=data))

    connection.on_send_raw(callable=on_send)
    client.start()
    try:
        deadline = time.monotonic() + 5.0
        while not connection.is_connected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # let the master finish its start-up (STARTDT, interrogation, clock sync)
        command.value = value
        transmitted_at = time.time()
        accepted = command.transmit(cause=c104.Cot.ACTIVATION)
        time.sleep(0.3)
        status.read()
        commands = [line for line in sent if kind.name in line and "ACTIVATION" in line]
        return accepted, status.value, commands, transmitted_at
    finally:
        client.stop()


def test_opening_a_breaker_and_shedding_a_block_show_in_pmu_data_within_1_s():
    rtu_port = free_port()

    async def main():
        sim = RealTimeSimulator("ieee39", lookahead_s=0.2)
        fleet = Fleet(sim, fleet_spec(rtu_port))
        await fleet.start()
        client = PdcClient("127.0.0.1", fleet.stream(104).relays["fibre"].listen_port, idcode=104)
        await client.connect()
        await client.start()
        try:
            before = (await client.receive(timeout_s=3))[1]
            accepted, state, commands, sent = await asyncio.to_thread(
                operate, rtu_port, 1001, c104.Type.C_DC_NA_1, c104.Double.OFF, 2001, c104.Type.M_DP_TB_1
            )
            opened_at = None
            # The master may return long after sending (it can wait out its command timeout): give
            # the frames 3 s from then; the time stamps are checked against the send time below.
            deadline = time.time() + 3.0
            while time.time() < deadline:
                _arrival, frame = await client.receive(timeout_s=3)
                if abs(frame.pmus[0].phasors[1]) < 1.0 and frame.timestamp_s >= sent:
                    opened_at = frame.timestamp_s
                    break
            i414_open = abs((await client.receive(timeout_s=3))[1].pmus[0].phasors[2])
            shed_ok, shed_state, _, shed_sent = await asyncio.to_thread(
                operate, rtu_port, 1002, c104.Type.C_SC_NA_1, False, 2002, c104.Type.M_SP_TB_1
            )
            shed_seen = None
            deadline = time.time() + 3.0
            while time.time() < deadline:
                _arrival, frame = await client.receive(timeout_s=3)
                if abs(abs(frame.pmus[0].phasors[2]) - i414_open) > 0.05 * i414_open and frame.timestamp_s >= shed_sent:
                    shed_seen = frame.timestamp_s
                    break
            return (
                before,
                (accepted, commands),
                state,
                sent,
                opened_at,
                shed_ok,
                shed_state,
                shed_sent,
                shed_seen,
                fleet,
                sim,
            )
        finally:
            await client.close()
            await fleet.stop()

    before, accepted, state, sent, opened_at, shed_ok, shed_state, shed_sent, shed_seen, fleet, sim = asyncio.run(
        main()
    )
    assert abs(before.pmus[0].phasors[1]) > 50.0  # line 3-4 carries current before
    accepted, commands = accepted
    qualifiers = [int(c.rstrip(" )").split()[-1], 16) for c in commands]
    assert qualifiers == [0x81, 0x01]  # select "open", then execute "open"
    assert accepted and state == c104.Double.OFF
    assert opened_at is not None and opened_at - sent < 1.0
    assert shed_ok and shed_state is False
    assert shed_seen is not None and shed_seen - shed_sent < 1.0
    assert fleet.rtus.commands_applied == 2
    kinds = [e["kind"] for e in sim.truth.data["events"]]
    assert "line_open" in kinds and "load_shed" in kinds
    np.testing.assert_allclose(sim.dyn.load_shed_fraction("PQ_2"), 200.0 / 450.0, rtol=1e-6)
