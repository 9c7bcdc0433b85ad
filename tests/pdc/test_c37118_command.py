"""The engineer's `c37118` command: decode files and test live connections."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.synchrophasor.helpers import VECTORS, make_config, make_pmu, requires_vectors
from wams.synchrophasor import PmuServer, encode_frame


def _run(*args: str, stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> list[dict[str, Any]]:
    out = io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    call_command("c37118", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


@requires_vectors
def test_decode_hex_prints_annex_d_configuration_as_json() -> None:
    (cfg,) = _run("decode", str(VECTORS / "annexD_cfg2.hex"))
    assert cfg["frame_type"] == "CFG2" and cfg["idcode"] == 7734 and cfg["data_rate"] == 30
    assert cfg["time_quality"]["leap_second_pending"] is True and cfg["time_quality"]["code"] == 6
    assert [p["name"] for p in cfg["pmus"][0]["phasors"]] == ["VA", "VB", "VC", "I1"]


@requires_vectors
def test_decode_pcap_prints_every_frame_with_scaled_values_and_units() -> None:
    objs = _run("decode", str(VECTORS / "pcaps" / "c37_1100_clean_tcp.pcap"))
    data = [o for o in objs if o.get("frame_type") == "DATA"]
    assert len(data) == 422
    assert {o["frame_type"] for o in objs} == {"DATA", "CFG2", "HEADER", "COMMAND"}
    pmu = data[0]["pmus"][0]
    assert pmu["stat"]["pmu_sync"] is False and pmu["stat"]["time_quality"] == 7
    assert pmu["phasors"][5]["name"] == "VA P" and pmu["phasors"][5]["unit"] == "V"
    assert pmu["phasors"][5]["magnitude"] == pytest.approx(190060.125, abs=1e-3)  # Wireshark: 190060.125V
    assert pmu["frequency_hz"] == pytest.approx(60.0283, abs=1e-4)
    assert pmu["digitals"] == ["0x0000", "0x0000", "0x000d"]
    assert not [o for o in objs if "error" in o]


@requires_vectors
def test_decode_stdin_raw_bytes_and_garbage_gives_error_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = bytes.fromhex((VECTORS / "annexD_cmd_start.hex").read_text())
    bad = bytearray(frame)
    bad[-1] ^= 1
    objs = _run("decode", "-", stdin=b"junk" + frame + bytes(bad), monkeypatch=monkeypatch)
    assert objs[0]["frame_type"] == "COMMAND" and objs[0]["command"] == "START"
    reasons = {o["error"]["reason"] for o in objs if "error" in o}
    assert {"garbage", "bad_crc"} <= reasons


def test_decode_data_frame_without_configuration_is_an_error_object(tmp_path: Path) -> None:
    cfg = make_config([make_pmu(1, 2)])
    from tests.synchrophasor.helpers import sample_measurements
    from wams.synchrophasor import DataFrame

    raw = encode_frame(DataFrame(cfg.idcode, 1, 0, sample_measurements(cfg)), cfg)
    path = tmp_path / "one.hex"
    path.write_text(raw.hex())
    (obj,) = _run("decode", str(path))
    assert obj["error"]["reason"] == "no_config"


def test_decode_missing_file_is_a_command_error() -> None:
    with pytest.raises(CommandError):
        _run("decode", "/nonexistent/file.pcap")


@pytest.fixture
def pmu_on_loopback() -> Iterator[tuple[int, int]]:
    """Run a PmuServer in a background event loop; yield (port, idcode)."""
    cfg = make_config([make_pmu(1, 3)], idcode=321, data_rate=50)
    loop = asyncio.new_event_loop()
    server = PmuServer(cfg, header="bench PMU")
    ready = threading.Event()
    ports: dict[str, int] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        ports.update(loop.run_until_complete(server.start()))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield ports["tcp"], cfg.idcode
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_connect_reports_rate_latency_and_no_gaps(pmu_on_loopback: tuple[int, int]) -> None:
    port, idcode = pmu_on_loopback
    out = io.StringIO()
    call_command("c37118", "connect", "127.0.0.1", str(port), "--idcode", str(idcode), "--frames", "25", stdout=out)
    report = json.loads(out.getvalue())
    assert report["connected"] and report["error"] is None
    assert report["header"] == "bench PMU" and report["data_rate"] == 50
    assert report["frames_received"] == 25
    assert report["gaps"] == 0 and report["missing_frames"] == 0 and report["duplicates"] == 0
    assert report["bad_frames"] == {}
    assert report["measured_rate_hz"] > 0 and "p95" in report["latency_ms"]


def test_connect_to_closed_port_fails_with_a_report() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "c37118", "connect", "127.0.0.1", str(port), "--idcode", "1", "--frames", "2", "--timeout", "1", stdout=out
        )
    assert json.loads(out.getvalue())["connected"] is False


def test_gap_and_late_frame_analysis_counts_known_losses() -> None:
    from tests.synchrophasor.helpers import sample_measurements
    from wams.synchrophasor import DataFrame
    from wams.synchrophasor.tester import LinkReport, analyse_frames

    cfg = make_config([make_pmu(1, 2)], data_rate=50)
    ticks = [0, 1, 2, 5, 6, 6, 9]  # 2 gaps (3 + 2 frames missing), one duplicate
    received = []
    for k in ticks:
        frame = DataFrame(cfg.idcode, 100, k * 20_000, sample_measurements(cfg), cfg.time_base)
        latency_s = 2.0 if k == 9 else 0.01
        received.append((frame.timestamp_s + latency_s, frame))
    report = LinkReport("h", 1, 1, "tcp")
    analyse_frames(report, cfg, received, late_after_ms=1000.0)
    assert (report.gaps, report.missing_frames, report.duplicates, report.late_frames) == (2, 4, 1, 1)
    assert report.latency_ms["max"] == pytest.approx(2000.0, abs=1e-3)
