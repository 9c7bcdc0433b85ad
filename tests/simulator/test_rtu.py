"""Control over real sockets: a c104 client operates RTU points with select-before-execute."""

import asyncio
import time

import numpy as np
import pytest

from tests.simulator.conftest import free_port
from wams.control.iec104.points import PointCommand, WireResult
from wams.control.iec104.pool import Iec104Pool
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


def operate(port: int, ioa: int, kind: str, action: str, status_ioa: int) -> WireResult:
    """Select and execute one command as the control app's SCADA master does (blocking)."""
    command = PointCommand("127.0.0.1", port, 1, ioa, status_ioa, kind, action)
    for _attempt in range(3):  # like a SCADA master, try a fresh link when c104 never starts one
        result = Iec104Pool(command_timeout_ms=6000).operate(command)  # generous: CI machines are loaded
        if not (result.state == "failed" and "unreachable" in result.detail):
            break
    return result


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
            opened = await asyncio.to_thread(operate, rtu_port, 1001, "breaker", "open", 2001)
            sent = opened.sent_at_s
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
            shed = await asyncio.to_thread(operate, rtu_port, 1002, "load_block", "shed", 2002)
            shed_sent = shed.sent_at_s
            shed_seen = None
            deadline = time.time() + 3.0
            while time.time() < deadline:
                _arrival, frame = await client.receive(timeout_s=3)
                if abs(abs(frame.pmus[0].phasors[2]) - i414_open) > 0.05 * i414_open and frame.timestamp_s >= shed_sent:
                    shed_seen = frame.timestamp_s
                    break
            return before, opened, opened_at, shed, shed_seen, fleet, sim
        finally:
            await client.close()
            await fleet.stop()

    before, opened, opened_at, shed, shed_seen, fleet, sim = asyncio.run(main())
    assert abs(before.pmus[0].phasors[1]) > 50.0  # line 3-4 carries current before
    # Select-before-execute: the RTU confirmed the selection, then the execution, then reported the state.
    assert opened.state == "completed", opened.detail
    # The RTU's points accept an execute only after a confirmed select, so a completed command
    # proves the sequence; the master does not always catch the select confirmation's timestamp.
    assert opened.confirmed_at_s is not None and opened.sent_at_s <= opened.confirmed_at_s
    if opened.select_confirmed_at_s is not None:
        assert opened.sent_at_s <= opened.select_confirmed_at_s <= opened.confirmed_at_s
    assert opened.device_state == "open"
    assert opened_at is not None and opened_at - opened.sent_at_s < 1.0
    assert shed.state == "completed", shed.detail
    # The RTU's points accept an execute only after a confirmed select, so a completed command
    # proves the sequence; the master does not always catch the select confirmation's timestamp.
    assert shed.confirmed_at_s is not None and shed.sent_at_s <= shed.confirmed_at_s
    if shed.select_confirmed_at_s is not None:
        assert shed.sent_at_s <= shed.select_confirmed_at_s <= shed.confirmed_at_s
    assert shed.device_state == "shed"
    assert shed_seen is not None and shed_seen - shed.sent_at_s < 1.0
    assert fleet.rtus.commands_applied == 2
    kinds = [e["kind"] for e in sim.truth.data["events"]]
    assert "line_open" in kinds and "load_shed" in kinds
    np.testing.assert_allclose(sim.dyn.load_shed_fraction("PQ_2"), 200.0 / 450.0, rtol=1e-6)
