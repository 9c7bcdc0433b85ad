"""The chunk codec: bit-exact round trips and compact storage (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.historian.helpers import T0_US, assert_blocks_equal, make_block, times_us
from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.codec.format import HEADER_STRUCT, SECTION_STRUCT


@pytest.mark.parametrize("compression", ["zstd", "zlib", "lzma", "none"])
def test_round_trip_of_float32_polar_data_is_bit_exact(compression: str) -> None:
    block = make_block(7, n=300, n_phasors=10, n_analogs=3, n_digitals=2)
    block.late[::7] = True
    assert_blocks_equal(codec.decode_block(codec.encode_block(block, compression), 7), block)


def test_round_trip_of_values_that_are_not_float32_is_bit_exact() -> None:
    rng = np.random.default_rng(3)
    n = 200
    block = SampleBlock(
        pmu_id=1,
        timestamp_us=times_us(T0_US, n, 60),
        stat=rng.integers(0, 2**16, n),
        frequency_hz=60 + rng.integers(-500, 500, n) / 1000,  # int16 FREQ in mHz: not float32s
        rocof_hz_per_s=rng.normal(0, 1, n),
        phasors=(rng.integers(-32767, 32767, (n, 3)) + 1j * rng.integers(-32767, 32767, (n, 3))) * 0.0915527,
        analogs=np.array([[1e300], [-np.inf], [np.nan], [-0.0], [5e-324]] * 40),
        digitals=np.zeros((n, 0), dtype=np.uint16),
    )
    block.phasors[10, 1] = complex(np.nan, np.nan)
    assert_blocks_equal(codec.decode_block(codec.encode_block(block), 1), block)


def test_rectangular_float32_phasors_are_stored_without_residual() -> None:
    block = make_block(1, n=120)
    block.phasors = (block.phasors.real.astype(np.float32) + 1j * block.phasors.imag.astype(np.float32)).astype(
        np.complex128
    )
    data = codec.encode_block(block)
    assert_blocks_equal(codec.decode_block(data, 1), block)
    # two float32 columns of 120 values per phasor at most before compression
    assert codec.read_header(data).sections[codec.SECTION_PHASORS][2] == 2 + 2 * 2 * 4 * 120


def test_lossy_mode_keeps_float32_precision() -> None:
    rng = np.random.default_rng(5)
    block = make_block(1, n=100)
    block.frequency_hz = 60 + rng.normal(0, 0.01, 100)  # float64 noise
    decoded = codec.decode_block(codec.encode_block(block, lossless=False), 1)
    np.testing.assert_allclose(decoded.frequency_hz, block.frequency_hz, rtol=6e-8, atol=0)
    np.testing.assert_array_equal(decoded.timestamp_us, block.timestamp_us)


def test_realistic_data_compresses_below_three_bytes_per_value() -> None:
    block = make_block(1, n=1800, n_phasors=10, n_analogs=0, n_digitals=0)
    values = len(block) * (2 + 2 * 10)  # frequency, ROCOF, magnitude and angle of 10 phasors
    data = codec.encode_block(block)
    assert len(data) / values < 3.0


def test_sections_decode_independently() -> None:
    block = make_block(2, n=60, n_phasors=3)
    data = codec.encode_block(block)
    timestamp_us, stat, late = codec.decode_time(data)
    np.testing.assert_array_equal(timestamp_us, block.timestamp_us)
    np.testing.assert_array_equal(stat, block.stat)
    np.testing.assert_array_equal(late, block.late)
    _, magnitude, angle_rad = codec.decode_phasors(data, exact=False)
    np.testing.assert_allclose(magnitude, np.abs(block.phasors), rtol=1e-7)
    np.testing.assert_allclose(angle_rad, np.angle(block.phasors), atol=1e-6)


def test_corrupt_chunk_is_refused() -> None:
    data = codec.encode_block(make_block(1, n=30))
    with pytest.raises(codec.ChunkFormatError):
        codec.read_header(b"XXXX" + data[4:])
    with pytest.raises(codec.ChunkFormatError):
        codec.read_header(data[:-3])


def test_pack_block_round_trip_is_exact_and_truncation_is_refused() -> None:
    block = make_block(9, n=1, n_phasors=4, n_analogs=0, n_digitals=3)
    packed = codec.pack_block(block)
    assert_blocks_equal(codec.unpack_block(packed), block)
    with pytest.raises(ValueError):
        codec.unpack_block(packed[:-1])
    with pytest.raises(ValueError):
        codec.unpack_block(b"short")


def test_concat_pads_missing_channels_and_sorts_by_time() -> None:
    later = make_block(1, start_us=T0_US + 10_000_000, n=5, n_phasors=3)
    earlier = make_block(1, start_us=T0_US, n=5, n_phasors=2)
    joined = codec.concat_blocks([later, earlier])
    assert joined.phasors.shape == (10, 3)
    assert np.all(np.diff(joined.timestamp_us) > 0)
    assert np.isnan(joined.phasors[:5, 2]).all()


@settings(max_examples=40, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(allow_nan=True, allow_infinity=True)),
    lossless_phasor=hnp.arrays(np.complex128, 1, elements=st.complex_numbers(allow_nan=True, allow_infinity=True)),
)
def test_any_float64_values_round_trip_exactly(values: np.ndarray, lossless_phasor: np.ndarray) -> None:
    n = len(values)
    with np.errstate(all="ignore"):
        phasors = np.repeat(lossless_phasor, n) * values
    block = SampleBlock(
        pmu_id=1,
        timestamp_us=T0_US + np.arange(n, dtype=np.int64) * 20_000,
        stat=np.arange(n),
        frequency_hz=values,
        rocof_hz_per_s=values[::-1].copy(),
        phasors=phasors,
        analogs=values[:, None],
    )
    assert_blocks_equal(codec.decode_block(codec.encode_block(block), 1), block)


def _assert_parts_equal_block(parts: codec.ChunkParts, block: SampleBlock) -> None:
    """Check batch-decoded parts against a block (magnitude and angle at float32 precision)."""
    np.testing.assert_array_equal(parts.timestamp_us, block.timestamp_us)
    np.testing.assert_array_equal(parts.stat, block.stat)
    assert parts.frequency is not None and parts.magnitude is not None and parts.angle_rad is not None
    np.testing.assert_array_equal(parts.frequency[0], block.frequency_hz)  # residuals applied
    np.testing.assert_array_equal(parts.frequency[1], block.rocof_hz_per_s)
    np.testing.assert_allclose(parts.magnitude, np.abs(block.phasors).T, rtol=1e-7)
    np.testing.assert_allclose(parts.angle_rad, np.angle(block.phasors).T, rtol=0, atol=1e-6)
    assert parts.analogs is not None and parts.digitals is not None
    np.testing.assert_array_equal(parts.analogs, block.analogs.T)
    np.testing.assert_array_equal(parts.digitals, block.digitals.T)


def test_batch_decode_matches_single_chunk_decode_across_shapes_and_residuals() -> None:
    plain = [make_block(1, first=30 * i, n=30, n_phasors=3, n_analogs=2, n_digitals=1, seed=i) for i in range(3)]
    odd = make_block(1, first=90, n=30, n_phasors=3, n_analogs=2, n_digitals=1, seed=9)
    odd.frequency_hz = odd.frequency_hz + 1e-9  # not float32s: this chunk carries residuals
    odd.analogs[:, 1] += 1e-9  # one of two analog columns inexact
    odd.phasors[:, 0] = odd.phasors[:, 0].real.astype(np.float32) + 1j * odd.phasors[:, 0].imag.astype(np.float32)
    short = make_block(1, first=120, n=10, n_phasors=1, n_analogs=0, n_digitals=2, seed=4)
    blocks = [*plain, odd, short]
    datas = [codec.encode_block(block) for block in blocks]
    parts = codec.decode_parts_many(datas, frequency=True, phasors=True, analogs=True, digitals=True)
    joined = codec.concat_blocks(blocks)  # channels a chunk lacks: NaN, digitals 0
    assert len(parts) == 130
    _assert_parts_equal_block(parts, joined)
    assert parts.frequency is not None and parts.frequency.dtype == np.float64  # residuals need float64


def test_batch_decode_keeps_float32_and_joins_interleaved_lengths_and_compressions() -> None:
    lengths = [30, 30, 900, 30, 45, 30, 900, 30]  # 1 s blocks between compacted ones, interleaved shapes
    firsts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    blocks = [
        make_block(1, first=int(first), n=n, n_phasors=3, n_analogs=1, n_digitals=1, seed=i)
        for i, (first, n) in enumerate(zip(firsts, lengths, strict=True))
    ]
    datas = [codec.encode_block(block, "zlib" if i in (3, 4) else "zstd") for i, block in enumerate(blocks)]
    parts = codec.decode_parts_many(datas, frequency=True, phasors=True, analogs=True, digitals=True)
    _assert_parts_equal_block(parts, codec.concat_blocks(blocks))
    assert parts.frequency is not None and parts.magnitude is not None
    assert parts.frequency.dtype == np.float32 and parts.magnitude.dtype == np.float32  # no float64 copies
    header = codec.read_header(datas[0])
    table = HEADER_STRUCT.size + (len(header.sections) - 1) * SECTION_STRUCT.size  # the last section's entry
    section_id, length, raw_length = SECTION_STRUCT.unpack_from(datas[0], table)
    corrupt = bytearray(datas[0])
    SECTION_STRUCT.pack_into(corrupt, table, section_id, length, raw_length + 1)
    with pytest.raises(codec.ChunkFormatError, match="lengths"):
        codec.decode_parts_many([bytes(corrupt)], digitals=True)


def test_batch_decode_of_rectangular_phasors_gives_polar_values() -> None:
    block = make_block(1, n=60, n_phasors=2)
    real, imag = (part.astype(np.float32).astype(np.float64) for part in (block.phasors.real, block.phasors.imag))
    block.phasors = real + 1j * imag  # rectangular float32 on the wire
    parts = codec.decode_parts_many([codec.encode_block(block)], phasors=True)
    assert parts.magnitude is not None and parts.angle_rad is not None
    np.testing.assert_allclose(parts.magnitude, np.abs(block.phasors).T, rtol=1e-15)
    np.testing.assert_allclose(parts.angle_rad, np.angle(block.phasors).T, rtol=1e-15)
