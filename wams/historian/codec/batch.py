"""Decode many chunks of one PMU at once for queries (one numpy pass per run of same-shape chunks).

Matrices here are channel-major, (k, n): row j is channel j over time, contiguous, which is what a
query reads. Magnitude and angle are the stored float32 values (the C37.118 wire precision).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wams.historian.codec.chunk import decode_floats
from wams.historian.codec.format import (
    F64,
    PHASOR_RECT,
    SECTION_ANALOGS,
    SECTION_DIGITALS,
    SECTION_FREQUENCY,
    SECTION_PHASORS,
    SECTION_TIME,
    ChunkFormatError,
    ChunkHeader,
    Reader,
    decompress,
    read_header,
)


@dataclass
class ChunkParts:
    """Decoded parts of a run of chunks (None: not asked for); matrices are channel-major."""

    timestamp_us: npt.NDArray[np.int64]  # (n,)
    stat: npt.NDArray[np.uint16]  # (n,)
    frequency: F64 | None = None  # (2, n): frequency Hz, ROCOF Hz/s
    magnitude: F64 | None = None  # (n_phasors, n) V or A
    angle_rad: F64 | None = None  # (n_phasors, n)
    analogs: F64 | None = None  # (n_analogs, n)
    digitals: npt.NDArray[np.uint16] | None = None  # (n_digitals, n)

    def select(self, index: npt.NDArray[np.bool_]) -> ChunkParts:
        """Return the samples picked by a (n,) mask."""

        def pick(matrix: npt.NDArray[Any] | None) -> npt.NDArray[Any] | None:
            return None if matrix is None else matrix[:, index]

        return ChunkParts(
            self.timestamp_us[index],
            self.stat[index],
            pick(self.frequency),
            pick(self.magnitude),
            pick(self.angle_rad),
            pick(self.analogs),
            pick(self.digitals),
        )


def _sections(datas: Sequence[bytes | memoryview], headers: Sequence[ChunkHeader], section_id: int) -> list[bytes]:
    """Decompress one section of every chunk of a run."""
    raws = []
    for data, header in zip(datas, headers, strict=True):
        offset, length, raw_length = header.sections[section_id]
        raw = decompress(memoryview(data)[offset : offset + length], header.compression)
        if len(raw) != raw_length:
            raise ChunkFormatError(f"section {section_id} decompressed to {len(raw)} bytes, expected {raw_length}")
        raws.append(raw)
    return raws


def _planes(buffer: bytes | npt.NDArray[np.uint8], m: int, width: int, k: int, n: int, dtype: npt.DTypeLike) -> Any:
    """Undo the byte shuffle of m chunks at once: m * width * k * n bytes -> (m, k, n) of `dtype`."""
    planes = np.frombuffer(buffer, dtype=np.uint8).reshape(m, width, k * n)
    out = np.empty((m, k * n, width), dtype=np.uint8)
    for byte in range(width):  # plane by plane: much faster than a transposed copy of single bytes
        out[:, :, byte] = planes[:, byte]
    return out.view(dtype).reshape(m, k, n)


def _undelta_runs(buffer: bytes, m: int, k: int, n: int) -> npt.NDArray[np.uint32]:
    """Undo the zigzag delta of m chunks -> (m, k, n) uint32."""
    zigzag = _planes(buffer, m, 4, k, n, np.uint32)
    delta = (zigzag >> np.uint32(1)) ^ (np.uint32(0) - (zigzag & np.uint32(1)))
    return np.cumsum(delta, axis=2, dtype=np.uint32)


def _channel_major(values: npt.NDArray[Any], dtype: npt.DTypeLike) -> Any:
    """Turn (m, k, n) into (k, m * n) of `dtype`."""
    m, k, n = values.shape
    return values.transpose(1, 0, 2).astype(dtype).reshape(k, m * n)


def _floats(raws: list[bytes], n: int, k: int) -> F64:
    """Decode float sections of m chunks -> (k, m * n)."""
    m = len(raws)
    main = b"".join(raw[k : k + 4 * n * k] for raw in raws)
    values: F64 = _channel_major(_undelta_runs(main, m, k, n).view(np.float32), np.float64)
    for index, raw in enumerate(raws):
        if len(raw) > k + 4 * n * k:  # this chunk has float64 residuals: decode it alone
            values[:, index * n : (index + 1) * n] = decode_floats(Reader(raw), n, k).T
    return values


def _phasors(raws: list[bytes], n: int, k: int) -> tuple[F64, F64]:
    """Decode magnitude and angle (stored precision) of phasor sections of m chunks -> 2 x (k, m * n)."""
    m = len(raws)
    main = b"".join(raw[k : k + 8 * n * k] for raw in raws)
    pairs: F64 = _channel_major(_undelta_runs(main, m, 2 * k, n).view(np.float32), np.float64)
    first, second = pairs[0::2], pairs[1::2]
    rect = np.frombuffer(b"".join(raw[:k] for raw in raws), dtype=np.uint8).reshape(m, k).T == PHASOR_RECT
    if not rect.any():
        return first, second
    rows = np.repeat(rect, n, axis=1)  # (k, m * n): stored rectangular, so turn into polar
    return np.where(rows, np.hypot(first, second), first), np.where(rows, np.arctan2(second, first), second)


def _decode_run(
    datas: Sequence[bytes | memoryview], headers: Sequence[ChunkHeader], wanted: tuple[bool, bool, bool, bool]
) -> ChunkParts:
    """Decode chunks of identical shape (samples, channel counts) at once."""
    frequency, phasors, analogs, digitals = wanted
    m, first = len(datas), headers[0]
    n = first.n_samples
    times = np.frombuffer(b"".join(_sections(datas, headers, SECTION_TIME)), dtype=np.uint8).reshape(m, -1)
    zigzag = _planes(np.ascontiguousarray(times[:, : 8 * n]), m, 8, 1, n, np.uint64)
    delta = ((zigzag >> np.uint64(1)) ^ (np.uint64(0) - (zigzag & np.uint64(1)))).view(np.int64)
    stat = _planes(np.ascontiguousarray(times[:, 8 * n : 10 * n]), m, 2, 1, n, np.uint16)
    parts = ChunkParts(timestamp_us=np.cumsum(delta, axis=2).reshape(m * n), stat=stat.reshape(m * n))
    if frequency:
        parts.frequency = _floats(_sections(datas, headers, SECTION_FREQUENCY), n, 2)
    if phasors:
        k = first.n_phasors
        if k:
            parts.magnitude, parts.angle_rad = _phasors(_sections(datas, headers, SECTION_PHASORS), n, k)
        else:
            parts.magnitude = parts.angle_rad = np.empty((0, m * n))
    if analogs:
        k = first.n_analogs
        parts.analogs = _floats(_sections(datas, headers, SECTION_ANALOGS), n, k) if k else np.empty((0, m * n))
    if digitals:
        k = first.n_digitals
        parts.digitals = (
            _channel_major(
                _planes(b"".join(_sections(datas, headers, SECTION_DIGITALS)), m, 2, k, n, np.uint16), np.uint16
            )
            if k
            else np.empty((0, m * n), dtype=np.uint16)
        )
    return parts


def _shape(header: ChunkHeader) -> tuple[int, int, int, int]:
    return header.n_samples, header.n_phasors, header.n_analogs, header.n_digitals


def decode_parts_many(
    datas: Sequence[bytes | memoryview],
    frequency: bool = False,
    phasors: bool = False,
    analogs: bool = False,
    digitals: bool = False,
) -> list[ChunkParts]:
    """Decode the time section and the asked sections of many chunks -> one ChunkParts per run of same-shape chunks."""
    headers = [read_header(data) for data in datas]
    wanted = (frequency, phasors, analogs, digitals)
    runs: list[ChunkParts] = []
    start = 0
    for index in range(1, len(datas) + 1):
        if index == len(datas) or _shape(headers[index]) != _shape(headers[start]):
            runs.append(_decode_run(datas[start:index], headers[start:index], wanted))
            start = index
    return runs
