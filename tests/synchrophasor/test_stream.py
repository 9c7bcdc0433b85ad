"""The streaming reader: arbitrary chunks, garbage, absurd sizes and bad CRCs."""

from __future__ import annotations

import random

from tests.synchrophasor.helpers import make_config, make_pmu, sample_measurements
from wams.synchrophasor import DataFrame, StreamReader, encode_frame


def _frames(n: int) -> tuple[list[bytes], object]:
    cfg = make_config([make_pmu(1, 4)])
    frames = [
        encode_frame(
            DataFrame(cfg.idcode, 1_700_000_000 + k // 50, (k % 50) * 20_000, sample_measurements(cfg, k)), cfg
        )
        for k in range(n)
    ]
    return frames, cfg


def test_frames_split_at_every_byte_boundary_come_out_whole() -> None:
    frames, _ = _frames(5)
    stream = b"".join(frames)
    reader = StreamReader()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += reader.feed(stream[i : i + 1])
    assert out == frames
    assert reader.rejected == {}
    assert reader.buffered == 0


def test_several_frames_in_one_read_all_come_out() -> None:
    frames, _ = _frames(20)
    reader = StreamReader()
    assert reader.feed(b"".join(frames)) == frames
    assert reader.frames_ok == 20


def test_garbage_before_sync_is_skipped_and_counted() -> None:
    frames, _ = _frames(2)
    reader = StreamReader()
    out = reader.feed(b"\x00\x01hello\xaa" + frames[0] + b"junk" + frames[1])
    assert out == frames
    assert reader.rejected.get("garbage", 0) >= 2
    assert reader.bytes_skipped >= len(b"\x00\x01hello") + len(b"junk")


def test_absurd_framesize_is_rejected_and_next_frame_recovered() -> None:
    frames, _ = _frames(2)
    bad = bytearray(frames[0])
    bad[2:4] = (5).to_bytes(2, "big")  # smaller than any frame
    reader = StreamReader()
    assert reader.feed(bytes(bad) + frames[1]) == [frames[1]]
    assert reader.rejected["bad_framesize"] >= 1


def test_framesize_above_limit_is_rejected_without_waiting() -> None:
    frames, _ = _frames(1)
    bad = bytearray(frames[0])
    bad[2:4] = (60000).to_bytes(2, "big")
    reader = StreamReader(max_frame_size=1000)
    assert reader.feed(bytes(bad) + frames[0]) == [frames[0]]
    assert reader.rejected["bad_framesize"] == 1


def test_bad_crc_is_counted_and_link_goes_on() -> None:
    frames, _ = _frames(3)
    bad = bytearray(frames[1])
    bad[20] ^= 0xFF
    reader = StreamReader()
    out = reader.feed(frames[0] + bytes(bad) + frames[2])
    assert out == [frames[0], frames[2]]
    assert reader.rejected["bad_crc"] == 1


def test_buffer_stays_bounded_under_endless_garbage() -> None:
    rng = random.Random(3)
    reader = StreamReader(max_frame_size=2000)
    frames, _ = _frames(1)
    for _ in range(300):
        chunk = bytes(rng.getrandbits(8) for _ in range(997))
        reader.feed(chunk)
        assert reader.buffered <= 2000
    assert reader.feed(b"\x00" * 4000 + frames[0])[-1:] == frames
