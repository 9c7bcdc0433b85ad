"""The standard's own frames (Annex D), its CRC examples (Annex B) and frames cut from captures."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tests.synchrophasor.helpers import VECTORS, read_hex, requires_vectors
from wams.synchrophasor import (
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    HeaderFrame,
    MessageTimeQuality,
    crc_ccitt,
    decode_frame,
    encode_frame,
)

pytestmark = requires_vectors


def test_annex_b_crc_examples_hold() -> None:
    lines = [line.split() for line in (VECTORS / "crc_annexB.txt").read_text().splitlines()]
    examples = [(bytes.fromhex(a), int(b, 16)) for a, b in (line for line in lines if line and line[0] != "#")]
    assert len(examples) == 3
    for data, crc in examples:
        assert crc_ccitt(data) == crc
    assert crc_ccitt(b"ABCD") == 0xBFFA


def test_annex_d_cfg2_decodes_to_table_d2() -> None:
    cfg = decode_frame(read_hex("annexD_cfg2.hex"))
    assert isinstance(cfg, ConfigFrame)
    assert (cfg.cfg_type, cfg.version, cfg.idcode, cfg.soc) == (2, 1, 7734, 1_149_577_200)
    assert cfg.time_base == 1_000_000 and cfg.data_rate == 30
    tq = MessageTimeQuality.from_byte(cfg.fracsec >> 24)
    assert tq.leap_second_pending and tq.leap_second_direction == 1 and not tq.leap_second_occurred
    assert tq.code == 6
    assert (cfg.fracsec & 0xFFFFFF) / cfg.time_base == pytest.approx(0.463, abs=1e-6)
    (pmu,) = cfg.pmus
    assert pmu.station_name == "Station A" and pmu.idcode == 7734 and pmu.cfgcnt == 22
    assert (pmu.phasor_float, pmu.polar, pmu.freq_float, pmu.analog_float) == (False, False, False, True)
    assert [p.name for p in pmu.phasors] == ["VA", "VB", "VC", "I1"]
    assert [p.kind for p in pmu.phasors] == ["V", "V", "V", "A"]
    assert pmu.phasors[0].scale == pytest.approx(915527e-5)
    assert pmu.phasors[3].scale == pytest.approx(45776e-5)
    assert [a.kind for a in pmu.analogs] == [0, 1, 2]
    assert pmu.digitals[0].names[0] == "BREAKER 1 STATUS" and pmu.digitals[0].names[15] == "BREAKER G STATUS"
    assert (pmu.digitals[0].normal_mask, pmu.digitals[0].valid_mask) == (0x0000, 0xFFFF)
    assert pmu.nominal_hz == 60
    assert cfg.data_frame_size == 52


def test_annex_d_data_frame_decodes_to_table_d1() -> None:
    cfg = decode_frame(read_hex("annexD_cfg2.hex"))
    assert isinstance(cfg, ConfigFrame)
    frame = decode_frame(read_hex("annexD_data.hex"), cfg)
    assert isinstance(frame, DataFrame)
    assert (frame.idcode, frame.soc, frame.fraction) == (7734, 1_149_580_800, 16817)
    assert frame.timestamp_s == pytest.approx(1_149_580_800.016817, abs=1e-6)
    (pmu,) = frame.pmus
    assert pmu.stat == 0 and pmu.stat_flags.pmu_sync and pmu.stat_flags.data_error == 0
    # Table D.1: 134.0 kV at 0, -120, +120 degrees and 500 A at 0 degrees (16-bit counts x PHUNIT).
    np.testing.assert_allclose(np.abs(pmu.phasors[:3]), 134.0e3, rtol=1e-3)
    np.testing.assert_allclose(np.degrees(np.angle(pmu.phasors)), [0, -120, 120, 0], atol=0.01)
    assert abs(pmu.phasors[3]) == pytest.approx(500.0, rel=1e-3)
    assert pmu.phasors[0].real == pytest.approx(14635 * 9.15527, rel=1e-12)
    assert pmu.frequency_hz == pytest.approx(62.5)
    assert pmu.rocof_hz_per_s == 0.0
    np.testing.assert_array_equal(pmu.analogs, [100.0, 1000.0, 10000.0])
    assert pmu.digitals == [0x3C12]


def test_annex_d_frames_reencode_byte_for_byte() -> None:
    cfg_raw, data_raw, cmd_raw = (read_hex(n) for n in ("annexD_cfg2.hex", "annexD_data.hex", "annexD_cmd_start.hex"))
    cfg = decode_frame(cfg_raw)
    assert isinstance(cfg, ConfigFrame)
    assert encode_frame(cfg) == cfg_raw
    assert encode_frame(decode_frame(data_raw, cfg), cfg) == data_raw
    cmd = decode_frame(cmd_raw)
    assert isinstance(cmd, CommandFrame) and cmd.command is Command.START and cmd.idcode == 7734
    assert encode_frame(cmd) == cmd_raw
    assert cmd_raw[-2:] == b"\xce\x00" and data_raw[-2:] == b"\xd4\x3f" and cfg_raw[-2:] == b"\xd5\xd1"


def _hex_frames() -> list[str]:
    return sorted(p.name for p in (VECTORS / "frames").glob("*.hex")) if VECTORS.is_dir() else []


@pytest.mark.parametrize("name", _hex_frames())
def test_capture_frame_decodes_and_reencodes_identically(name: str) -> None:
    raw = bytes.fromhex((VECTORS / "frames" / name).read_text().strip())
    if "_data_" in name:
        cfg_name = re.sub(r"_data_\d+\.hex$", "_cfg2_0.hex", name)
        cfg_raw = bytes.fromhex((VECTORS / "frames" / cfg_name).read_text())
        cfg = decode_frame(cfg_raw)
        assert isinstance(cfg, ConfigFrame)
        frame = decode_frame(raw, cfg)
        assert isinstance(frame, DataFrame)
        assert encode_frame(frame, cfg) == raw
        return
    frame = decode_frame(raw)
    assert isinstance(frame, ConfigFrame | CommandFrame | HeaderFrame)
    assert encode_frame(frame) == raw


def test_pypmu_made_frames_decode() -> None:
    cfg = decode_frame(read_hex("pypmu_cfg2_2pmu.hex"))
    assert isinstance(cfg, ConfigFrame) and len(cfg.pmus) == 2
    frame = decode_frame(read_hex("pypmu_data_2pmu.hex"), cfg)
    assert isinstance(frame, DataFrame) and len(frame.pmus) == 2
    assert encode_frame(frame, cfg) == read_hex("pypmu_data_2pmu.hex")
    header = decode_frame(read_hex("pypmu_header.hex"))
    assert isinstance(header, HeaderFrame) and header.text
    assert not math.isnan(frame.pmus[0].frequency_hz)
