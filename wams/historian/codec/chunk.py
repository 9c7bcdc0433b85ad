"""Encode a SampleBlock into one chunk and decode it back, section by section."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from wams.historian.blocks import SampleBlock
from wams.historian.codec.format import (
    COMPRESSIONS,
    F64,
    FLOAT_EXACT,
    FLOAT_RESIDUAL,
    HEADER_STRUCT,
    MAGIC,
    PHASOR_POLAR,
    PHASOR_POLAR_RESIDUAL,
    PHASOR_RECT,
    SECTION_ANALOGS,
    SECTION_DIGITALS,
    SECTION_FREQUENCY,
    SECTION_PHASORS,
    SECTION_STRUCT,
    SECTION_TIME,
    Reader,
    bits,
    compress,
    delta_i64,
    delta_u32,
    read_header,
    section_reader,
    shuffle,
    to_float32,
    undelta_i64,
    undelta_u32,
    unshuffle,
)

# --- column groups ---------------------------------------------------------------------------


def encode_floats(matrix: F64, lossless: bool) -> bytes:
    """Encode (n, k) float64 columns: k kind bytes, float32 deltas, XOR residuals of inexact columns."""
    single = to_float32(matrix)
    parts = [b"", delta_u32(single.view(np.uint32))]
    kinds = np.full(matrix.shape[1], FLOAT_EXACT, dtype=np.uint8)
    if lossless:
        residual = bits(matrix) ^ bits(single.astype(np.float64))
        inexact = residual.any(axis=0)
        if inexact.any():
            kinds[inexact] = FLOAT_RESIDUAL
            parts.append(shuffle(residual[:, inexact]))
    parts[0] = kinds.tobytes()
    return b"".join(parts)


def decode_floats(reader: Reader, n: int, k: int) -> F64:
    """Decode `encode_floats` -> (n, k) float64."""
    kinds = np.frombuffer(reader.take(k), dtype=np.uint8)
    values = undelta_u32(reader.take(4 * n * k), n, k).view(np.float32).astype(np.float64)
    inexact = kinds == FLOAT_RESIDUAL
    if inexact.any():
        residual = unshuffle(reader.take(8 * n * int(inexact.sum())), np.uint64, n, int(inexact.sum()))
        values[:, inexact] = (bits(values[:, inexact]) ^ residual).view(np.float64)
    return values


def polar_to_complex(magnitude: F64, angle_rad: F64) -> npt.NDArray[np.complex128]:
    """Rebuild complex values the way the C37.118 decoder does: magnitude * exp(j angle)."""
    with np.errstate(all="ignore"):  # inf and NaN inputs are legal; the residual restores them exactly
        return magnitude * np.exp(1j * angle_rad)  # type: ignore[no-any-return]


def encode_phasors(values: npt.NDArray[np.complex128], lossless: bool) -> bytes:
    """Encode (n, k) complex columns: k kind bytes, (n, 2k) float32 deltas, XOR residuals of inexact columns.

    A column is rectangular float32 when both parts are exact float32s, else polar float32
    (magnitude, angle rad) with the XOR residual of the rebuilt complex value when that differs.
    """
    n, k = values.shape
    pairs = np.ascontiguousarray(values).view(np.float64).reshape(n, 2 * k)  # re0, im0, re1, im1, ...
    rect32 = to_float32(pairs)
    mismatch = (bits(pairs) ^ bits(rect32.astype(np.float64))).reshape(n, k, 2)
    rect = np.asarray(~mismatch.any(axis=(0, 2)), dtype=bool)
    main = rect32.reshape(n, k, 2)
    kinds = np.full(k, PHASOR_RECT, dtype=np.uint8)
    residual_parts = b""
    if not rect.all():
        with np.errstate(all="ignore"):
            polar = np.stack((to_float32(np.abs(values)), to_float32(np.angle(values))), axis=2)
        main = np.where(rect[None, :, None], main, polar)
        kinds[~rect] = PHASOR_POLAR
        if lossless:
            rebuilt = polar_to_complex(polar[..., 0].astype(np.float64), polar[..., 1].astype(np.float64))
            residual = (bits(pairs) ^ bits(rebuilt.view(np.float64).reshape(n, 2 * k))).reshape(n, k, 2)
            inexact = ~rect & residual.any(axis=(0, 2))
            if inexact.any():
                kinds[inexact] = PHASOR_POLAR_RESIDUAL
                residual_parts = shuffle(residual[:, inexact, :].reshape(n, -1))
    return kinds.tobytes() + delta_u32(np.ascontiguousarray(main).view(np.uint32).reshape(n, 2 * k)) + residual_parts


def decode_phasor_columns(
    reader: Reader, n: int, k: int, exact: bool
) -> tuple[npt.NDArray[np.complex128] | None, F64, F64]:
    """Decode `encode_phasors` -> (complex (n, k) or None, magnitude (n, k), angle rad (n, k)).

    Without `exact` the complex values are not rebuilt and the magnitude and angle of polar
    columns are the stored float32 values (the C37.118 wire precision).
    """
    kinds = np.frombuffer(reader.take(k), dtype=np.uint8)
    main = undelta_u32(reader.take(8 * n * k), n, 2 * k).view(np.float32).astype(np.float64).reshape(n, k, 2)
    first, second = main[..., 0], main[..., 1]
    rect = kinds == PHASOR_RECT
    inexact = kinds == PHASOR_POLAR_RESIDUAL
    residual = None
    if inexact.any():
        count = int(inexact.sum())
        residual = unshuffle(reader.take(16 * n * count), np.uint64, n, 2 * count)
    if not exact and not rect.any():
        return None, first, second
    values = np.empty((n, k), dtype=np.complex128)
    values[:, rect] = main[:, rect, :].copy().view(np.complex128).reshape(n, -1)
    magnitude, angle_rad = first.copy(), second.copy()
    with np.errstate(all="ignore"):
        magnitude[:, rect] = np.abs(values[:, rect])
        angle_rad[:, rect] = np.angle(values[:, rect])
    if not exact:
        return None, magnitude, angle_rad
    values[:, ~rect] = polar_to_complex(first[:, ~rect], second[:, ~rect])
    if residual is not None:
        fixed = bits(np.ascontiguousarray(values[:, inexact]).view(np.float64)).reshape(n, -1) ^ residual
        values[:, inexact] = fixed.view(np.float64).view(np.complex128).reshape(n, -1)
        with np.errstate(all="ignore"):
            magnitude[:, inexact] = np.abs(values[:, inexact])
            angle_rad[:, inexact] = np.angle(values[:, inexact])
    return values, magnitude, angle_rad


def encode_block(block: SampleBlock, compression: str = "zstd", lossless: bool = True) -> bytes:
    """Encode one block's samples (n >= 1) into a compressed chunk."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r} (use one of {sorted(COMPRESSIONS)})")
    if len(block) == 0:
        raise ValueError("a chunk holds at least one sample")
    code = COMPRESSIONS[compression]
    assert block.late is not None
    sections: dict[int, bytes] = {
        SECTION_TIME: delta_i64(block.timestamp_us)
        + shuffle(block.stat.reshape(-1, 1))
        + np.packbits(block.late).tobytes(),
        SECTION_FREQUENCY: encode_floats(np.stack((block.frequency_hz, block.rocof_hz_per_s), axis=1), lossless),
    }
    if block.phasors.shape[1]:
        sections[SECTION_PHASORS] = encode_phasors(block.phasors, lossless)
    if block.analogs.shape[1]:
        sections[SECTION_ANALOGS] = encode_floats(block.analogs, lossless)
    if block.digitals.shape[1]:
        sections[SECTION_DIGITALS] = shuffle(block.digitals)
    header = HEADER_STRUCT.pack(
        MAGIC,
        1,
        code,
        0,
        len(block),
        block.phasors.shape[1],
        block.analogs.shape[1],
        block.digitals.shape[1],
        len(sections),
    )
    table = b""
    bodies = []
    for section_id, raw in sections.items():
        body = compress(raw, code)
        table += SECTION_STRUCT.pack(section_id, len(body), len(raw))
        bodies.append(body)
    return header + table + b"".join(bodies)


def decode_time(
    data: bytes | memoryview,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint16], npt.NDArray[np.bool_]]:
    """Decode a chunk's timestamps (us), STAT words and late flags -> three (n,) arrays."""
    header = read_header(data)
    n = header.n_samples
    reader = section_reader(data, header, SECTION_TIME)
    timestamp_us = undelta_i64(reader.take(8 * n), n)
    stat = unshuffle(reader.take(2 * n), np.uint16, n).reshape(n)
    late = np.unpackbits(np.frombuffer(reader.take((n + 7) // 8), dtype=np.uint8), count=n).astype(bool)
    return timestamp_us, stat, late


def decode_frequency(data: bytes | memoryview) -> tuple[F64, F64]:
    """Decode a chunk's frequency (Hz) and ROCOF (Hz/s) -> two (n,) arrays."""
    header = read_header(data)
    values = decode_floats(section_reader(data, header, SECTION_FREQUENCY), header.n_samples, 2)
    return values[:, 0], values[:, 1]


def decode_phasors(data: bytes | memoryview, exact: bool = True) -> tuple[npt.NDArray[np.complex128], F64, F64]:
    """Decode a chunk's phasors -> complex (n, n_phasors), magnitude (n, n_phasors), angle rad (n, n_phasors).

    Without `exact` the complex array is empty (0, n_phasors) and magnitude/angle of polar columns are
    the stored float32 values.
    """
    header = read_header(data)
    n, k = header.n_samples, header.n_phasors
    if not k:
        empty = np.empty((n, 0))
        return np.empty((n, 0), dtype=np.complex128), empty, empty
    values, magnitude, angle_rad = decode_phasor_columns(section_reader(data, header, SECTION_PHASORS), n, k, exact)
    return (values if values is not None else np.empty((0, k), dtype=np.complex128)), magnitude, angle_rad


def decode_analogs(data: bytes | memoryview) -> F64:
    """Decode a chunk's analog values -> (n, n_analogs)."""
    header = read_header(data)
    n, k = header.n_samples, header.n_analogs
    return decode_floats(section_reader(data, header, SECTION_ANALOGS), n, k) if k else np.empty((n, 0))


def decode_digitals(data: bytes | memoryview) -> npt.NDArray[np.uint16]:
    """Decode a chunk's digital status words -> (n, n_digitals) uint16."""
    header = read_header(data)
    n, k = header.n_samples, header.n_digitals
    if not k:
        return np.empty((n, 0), dtype=np.uint16)
    return unshuffle(section_reader(data, header, SECTION_DIGITALS).take(2 * n * k), np.uint16, n, k)


def decode_block(data: bytes | memoryview, pmu_id: int) -> SampleBlock:
    """Decode a whole chunk back into the block it was made from (bit-exact when lossless)."""
    timestamp_us, stat, late = decode_time(data)
    frequency_hz, rocof_hz_per_s = decode_frequency(data)
    return SampleBlock(
        pmu_id=pmu_id,
        timestamp_us=timestamp_us,
        stat=stat,
        frequency_hz=frequency_hz,
        rocof_hz_per_s=rocof_hz_per_s,
        phasors=decode_phasors(data)[0],
        analogs=decode_analogs(data),
        digitals=decode_digitals(data),
        late=late,
    )
