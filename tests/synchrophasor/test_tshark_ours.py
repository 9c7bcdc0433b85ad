"""Wireshark decodes a loopback capture of our server's output exactly as we do."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.synchrophasor.compare import compare_capture
from tests.synchrophasor.helpers import make_config, make_pmu, requires_tshark, sample_measurements
from wams.synchrophasor import ConfigFrame, PdcClient, PmuServer

pytestmark = requires_tshark

FRAMES_PER_STREAM = 10


def _streams() -> list[tuple[ConfigFrame, int]]:
    """Return (configuration, CFG type the client asks for) covering versions, formats, NUM_PMU."""
    int_rect = make_config(
        [make_pmu(1, 4, 2, 1, phasor_float=False, polar=False, freq_float=False, analog_float=False, nominal_hz=60)],
        idcode=11,
        version=1,
    )
    float_polar = make_config([make_pmu(2, 6, 1, 2, nominal_hz=50)], idcode=12, version=2)
    multi = make_config(
        [
            make_pmu(3, 3, 0, 1, phasor_float=False, polar=True, freq_float=True, analog_float=True),
            make_pmu(4, 2, 2, 0, phasor_float=True, polar=False, freq_float=False, analog_float=False, nominal_hz=60),
            make_pmu(5, 5, 1, 1, phasor_float=False, polar=False, freq_float=False, analog_float=True),
        ],
        idcode=13,
        version=1,
    )
    cfg3_int_polar = make_config(
        [make_pmu(6, 4, 1, 1, phasor_float=False, polar=True, freq_float=False, analog_float=True)],
        idcode=14,
        version=2,
    )
    return [(int_rect, 2), (float_polar, 2), (multi, 2), (cfg3_int_polar, 3)]


def _start_capture(path: Path, ports: list[int]) -> subprocess.Popen[bytes]:
    """Start tshark on the loopback interface for `ports`; return once it captures."""
    flt = " or ".join(f"tcp port {p}" for p in ports)
    proc = subprocess.Popen(
        ["tshark", "-i", "lo", "-f", flt, "-w", str(path), "-a", "duration:60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    line = b""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if b"Capturing on" in line or not line:
            break
    if b"Capturing on" not in line:
        proc.kill()
        pytest.skip(f"cannot capture on loopback: {line.decode(errors='replace').strip()}")
    # The capture starts a little after tshark says so: knock until the file shows packets.
    start_size = path.stat().st_size if path.exists() else 0
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=2):
            pass
        time.sleep(0.2)
        if path.exists() and path.stat().st_size > start_size + 200:
            return proc
    proc.kill()
    pytest.fail("tshark captured nothing on loopback")


def test_wireshark_decodes_our_server_output_like_we_do(tmp_path: Path) -> None:
    capture = tmp_path / "ours.pcapng"
    streams = _streams()

    async def scenario() -> list[int]:
        servers = [
            PmuServer(cfg, lambda s, f, c=cfg: sample_measurements(c, f // 1000), header="t") for cfg, _ in streams
        ]
        ports = [(await s.start())["tcp"] for s in servers]
        proc = await asyncio.to_thread(_start_capture, capture, ports)
        try:
            for (cfg, cfg_type), port in zip(streams, ports, strict=True):
                client = PdcClient("127.0.0.1", port, cfg.idcode, cfg_type=cfg_type)
                await client.connect()
                await client.start()
                for _ in range(FRAMES_PER_STREAM):
                    await client.receive(timeout_s=5.0)
                await client.close()
            await asyncio.sleep(0.5)  # let the last segments reach the capture
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.to_thread(proc.wait, 30)
            for s in servers:
                await s.stop()
        return ports

    ports = asyncio.run(asyncio.wait_for(scenario(), 120.0))
    assert capture.exists() and os.path.getsize(capture) > 0
    result = compare_capture(capture, tuple(ports))
    bad = [f.frame_number for f in result.wireshark if f.malformed or not f.checksum_ok]
    assert bad == []
    assert result.missing == []
    assert result.diffs[:20] == []
    # Every stream's data frames were decoded by Wireshark (it needs the CFG-2/3 first).
    for cfg, _ in streams:
        decoded = [f for f in result.wireshark if f.idcode == cfg.idcode and f.frame_type == 0 and f.pmus]
        assert len(decoded) >= FRAMES_PER_STREAM, cfg.idcode
        assert all(len(f.pmus) == len(cfg.pmus) for f in decoded)
