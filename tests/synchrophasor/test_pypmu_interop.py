"""Interoperability with pyPMU on loopback sockets, both ways."""

from __future__ import annotations

import asyncio
import math
import socket
from typing import Any

import numpy as np
import pytest

from tests.synchrophasor.helpers import make_config, make_pmu, sample_measurements
from tests.synchrophasor.pypmu import Pdc, Pmu, pypmu_frame, quiet
from wams.synchrophasor import PdcClient, PmuServer

N_FRAMES = 300


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pypmu_streams_300_frames_at_30_fps_into_our_client_with_none_lost() -> None:
    port = _free_tcp_port()
    pmu = quiet(Pmu(pmu_id=7734, data_rate=30, port=port, ip="127.0.0.1"))
    names = ["VA", "VB", "VC", "I1", "AN1"] + [f"BRK{i}" for i in range(16)]
    cfg2 = pypmu_frame.ConfigFrame2(
        7734,
        1_000_000,
        1,
        "Station A",
        7734,
        (True, True, True, False),
        4,
        1,
        1,
        names,
        [(0, "v")] * 3 + [(0, "i")],
        [(1, "pow")],
        [(0x0000, 0xFFFF)],
        50,
        1,
        30,
    )
    pmu.set_configuration(cfg2)
    pmu.set_header("pyPMU under test")
    pmu.run()
    sent = [[(230e3 + k, 0.001 * k), (230e3, -2.0944), (230e3, 2.0944), (1000.0 + k, -0.1)] for k in range(N_FRAMES)]

    async def scenario() -> tuple[list[Any], PdcClient]:
        client = PdcClient("127.0.0.1", port, 7734)
        for _ in range(50):  # pyPMU listens from a thread: give it a moment
            try:
                await client.connect()
                break
            except OSError:
                await asyncio.sleep(0.1)
        assert client.header is not None and client.header.text == "pyPMU under test"
        await client.start()
        for k, phasors in enumerate(sent):
            pmu.send_data(phasors=phasors, analog=[float(k)], digital=[k & 0xFFFF], freq=k % 100, dfreq=k % 7)
        frames = []
        while len(frames) < N_FRAMES:
            _, frame = await client.receive(timeout_s=5.0)
            frames.append(frame)
        await client.close()
        return frames, client

    try:
        frames, client = asyncio.run(asyncio.wait_for(scenario(), 40.0))
    finally:
        pmu.socket.close()
        for proc in pmu.clients:
            proc.terminate()
            proc.join(5)
    assert len(frames) == N_FRAMES
    assert client.rejected == {}
    for k, frame in enumerate(frames):
        (pmu_data,) = frame.pmus
        expected = np.array([m * np.exp(1j * a) for m, a in sent[k]])
        np.testing.assert_allclose(pmu_data.phasors, expected, rtol=1e-6)
        assert pmu_data.digitals == [k]
        assert pmu_data.analogs[0] == float(k)
        # pyPMU takes FREQ as a deviation in mHz and writes nominal + deviation as the float.
        assert pmu_data.frequency_hz == pytest.approx(50.0 + (k % 100) / 1000.0, abs=1e-5)


def _pdc_session(port: int, idcode: int, n: int) -> tuple[Any, Any, list[Any]]:
    """Run pyPMU's PDC (blocking) against our server: header, CFG-2, START, n frames."""
    pdc = quiet(Pdc(pdc_id=idcode, pmu_ip="127.0.0.1", pmu_port=port))
    pdc.run()
    header = pdc.get_header()
    config = pdc.get_config()
    pdc.start()
    frames = []
    for _ in range(n):
        frame = pdc.get()
        if frame is not None:  # pyPMU drops frames when one recv() holds more than one
            frames.append(frame)
    pdc.stop()
    pdc.quit()
    return header, config, frames


@pytest.mark.parametrize("fmt", [(False, False, False), (True, True, False)], ids=["int-rect", "float-polar"])
def test_pypmu_pdc_reads_header_cfg2_and_data_equal_to_what_we_sent(fmt: tuple[bool, bool, bool]) -> None:
    phasor_float, polar, analog_float = fmt
    cfg = make_config(
        [make_pmu(1, 4, 1, 1, phasor_float=phasor_float, polar=polar, freq_float=False, analog_float=analog_float)],
        idcode=7734,
        data_rate=10,
    )
    sent: dict[float, Any] = {}

    def source(soc: int, fraction: int) -> Any:
        data = sample_measurements(cfg, len(sent))
        sent[round(soc + fraction / 1e6, 3)] = data
        return data

    async def scenario() -> tuple[Any, Any, list[Any]]:
        async with PmuServer(cfg, source, header="our PMU") as server:
            return await asyncio.to_thread(_pdc_session, server.ports["tcp"], cfg.idcode, 15)

    header, config, frames = asyncio.run(asyncio.wait_for(scenario(), 30.0))
    assert "our PMU" in str(header.get_header())  # pyPMU returns str(bytes) here
    assert config.get_station_name().strip() == "PMU 1"
    assert config.get_data_rate() == 10
    assert len(frames) >= 10
    for frame in frames:
        measured = frame.get_measurements()
        expected = sent[round(measured["time"], 3)][0]
        (block,) = measured["measurements"]
        got = np.array([m * np.exp(1j * a) for m, a in block["phasors"]])
        if phasor_float:
            np.testing.assert_allclose(got, expected.phasors, rtol=1e-6)
        else:  # 16-bit counts: within half a count of the PHUNIT scale
            scales = np.array([ch.scale for ch in cfg.pmus[0].phasors])
            assert np.all(np.abs(got - expected.phasors) <= scales)
        assert block["frequency"] == pytest.approx(expected.frequency_hz, abs=1e-9)
        assert block["digital"] == expected.digitals
        assert math.isclose(block["analog"][0], expected.analogs[0], abs_tol=1.0 if not analog_float else 1e-6)
