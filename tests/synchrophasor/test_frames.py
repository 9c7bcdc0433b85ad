"""Frame types beyond the Annex D examples: commands, headers, CFG-3 fragments, STAT, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.synchrophasor.helpers import VECTORS, make_config, make_pmu, requires_vectors, sample_measurements
from wams.synchrophasor import (
    C37118Error,
    Cfg3Assembler,
    Command,
    CommandFrame,
    ConfigFrame,
    CrcError,
    DataFrame,
    FrameSizeError,
    HeaderFrame,
    MissingConfigError,
    Stat,
    decode_frame,
    decode_stat_array,
    encode_cfg3_fragments,
    encode_frame,
    make_fracsec,
    make_stat,
)
from wams.synchrophasor.pcap import iter_capture_frames


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6, 8, 0x0123, 0x0F00])
def test_every_command_code_round_trips(code: int) -> None:
    frame = CommandFrame(7734, 1_149_591_600, make_fracsec(770_000, 0x0F), code)
    again = decode_frame(encode_frame(frame))
    assert isinstance(again, CommandFrame)
    assert int(again.command) == code
    assert isinstance(again.command, Command) == (code in {1, 2, 3, 4, 5, 6, 8})


def test_extended_command_frame_carries_its_data() -> None:
    frame = CommandFrame(9, 1, 2, Command.EXTENDED, b"\x00\x01\xbe\xef")
    raw = encode_frame(frame)
    assert len(raw) == 18 + 4
    assert decode_frame(raw) == frame


def test_header_frame_round_trips_utf8_text() -> None:
    frame = HeaderFrame(17, 1_700_000_000, 5, "PMU Süd 400 kV, P class, 50 fps", version=2)
    assert decode_frame(encode_frame(frame)) == frame


def test_cfg3_split_in_fragments_is_joined_back() -> None:
    cfg = make_config([make_pmu(i, 8, 2, 2) for i in range(1, 6)], version=2)
    cfg.cfg_type = 3
    cfg.pmus[0].latitude_deg, cfg.pmus[0].longitude_deg, cfg.pmus[0].elevation_m = 47.5, 8.25, 410.0
    frames = encode_cfg3_fragments(cfg, max_frame_size=300)
    assert len(frames) > 3
    assert [int.from_bytes(f[14:16], "big") for f in frames][:2] == [1, 2]
    assert int.from_bytes(frames[-1][14:16], "big") == 0xFFFF
    assembler = Cfg3Assembler()
    results = [assembler.feed(f) for f in frames]
    assert results[:-1] == [None] * (len(frames) - 1)
    joined = results[-1]
    # The same as the configuration sent in one frame (CFG-3 floats and fields as on the wire).
    assert isinstance(joined, ConfigFrame) and joined == decode_frame(encode_frame(cfg))
    assert joined.pmus[0].latitude_deg == 47.5
    with pytest.raises(C37118Error) as exc:
        decode_frame(frames[0])
    assert exc.value.reason == "cfg3_fragment"


def test_stat_word_fields_round_trip_and_vectorise() -> None:
    word = make_stat(
        data_error=2,
        pmu_sync=False,
        sorting=1,
        trigger=True,
        config_change=True,
        data_modified=True,
        time_quality=5,
        unlock_time=2,
        trigger_reason=7,
    )
    assert word == 0b10_1_1_1_1_1_101_10_0111
    flags = Stat.from_word(word)
    assert (flags.data_error, flags.pmu_sync, flags.sorting, flags.trigger_reason) == (2, False, 1, 7)
    assert flags.time_quality_max_error_s == pytest.approx(1e-3) and not flags.data_valid
    assert flags.to_word() == word
    arrays = decode_stat_array(np.array([[word, 0]], dtype=np.uint16))
    assert arrays["time_quality"].tolist() == [[5, 0]] and arrays["pmu_sync"].tolist() == [[False, True]]


def test_bad_input_errors_carry_their_reason() -> None:
    cfg = make_config([make_pmu(1, 2)])
    raw = encode_frame(DataFrame(cfg.idcode, 1, 0, sample_measurements(cfg)), cfg)
    with pytest.raises(MissingConfigError):
        decode_frame(raw)
    with pytest.raises(FrameSizeError):
        decode_frame(raw, make_config([make_pmu(1, 3)]))
    corrupted = bytearray(raw)
    corrupted[20] ^= 4
    with pytest.raises(CrcError) as exc:
        decode_frame(bytes(corrupted), cfg)
    assert exc.value.reason == "bad_crc"
    with pytest.raises(C37118Error) as exc:
        decode_frame(b"\x55" * 20)
    assert exc.value.reason == "bad_sync"


@requires_vectors
def test_user_defined_anunit_type_is_kept_and_decodes() -> None:
    configs = [
        decode_frame(cf.data)
        for cf in iter_capture_frames(VECTORS / "pcaps" / "C37.118_4in1PMU_TCP.pcap")
        if cf.data[1] == 0x31
    ]
    cfg = configs[0]
    assert isinstance(cfg, ConfigFrame) and len(cfg.pmus) == 4
    assert 70 in {a.kind for p in cfg.pmus for a in p.analogs}
    assert encode_frame(cfg) == next(
        cf.data for cf in iter_capture_frames(VECTORS / "pcaps" / "C37.118_4in1PMU_TCP.pcap") if cf.data[1] == 0x31
    )
