"""Decode many chunks of one PMU at once for queries: one numpy pass per group of same-shape chunks.

Matrices here are channel-major, (k, n): row j is channel j over time, contiguous, which is what a
query reads. Float matrices stay float32 (the stored precision, no float64 copy) unless some chunk
carries float64 residuals or rectangular phasors; magnitude and angle are the stored float32 values.
A section of all chunks is decompressed into one buffer (zstd frames in one pass), grouped so that
chunks of the same shape lie side by side; the chunk length does not matter (1 s or 30 s chunks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import zstandard

from wams.historian.codec.format import (
    FLOAT_RESIDUAL,
    HEADER_STRUCT,
    MAGIC,
    PHASOR_RECT,
    SECTION_ANALOGS,
    SECTION_DIGITALS,
    SECTION_FREQUENCY,
    SECTION_PHASORS,
    SECTION_STRUCT,
    SECTION_TIME,
    ChunkFormatError,
    decompress,
    read_header,
    zstd_pair,
)

ZSTD = 3
FloatMatrix = npt.NDArray[np.floating[Any]]
U8 = npt.NDArray[np.uint8]
Index = npt.NDArray[np.intp]


@dataclass
class ChunkParts:
    """Decoded parts of many chunks (None: not asked for); matrices are channel-major (k, n)."""

    timestamp_us: npt.NDArray[np.int64]  # (n,)
    stat: npt.NDArray[np.uint16]  # (n,)
    frequency: FloatMatrix | None = None  # (2, n): frequency Hz, ROCOF Hz/s
    magnitude: FloatMatrix | None = None  # (n_phasors, n) V or A
    angle_rad: FloatMatrix | None = None  # (n_phasors, n)
    analogs: FloatMatrix | None = None  # (n_analogs, n)
    digitals: npt.NDArray[np.uint16] | None = None  # (n_digitals, n)

    def __len__(self) -> int:
        return len(self.timestamp_us)

    def select(self, index: npt.NDArray[np.bool_] | Index | slice) -> ChunkParts:
        """Return the samples picked by a (n,) mask, indices or a slice (a slice keeps views)."""

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


_MAX_SECTIONS = 5
_PREFIX = np.dtype(
    [
        ("magic", "S4"),
        ("version", "u1"),
        ("compression", "u1"),
        ("flags", "<u2"),
        ("n", "<u4"),
        ("phasors", "<u2"),
        ("analogs", "<u2"),
        ("digitals", "<u2"),
        ("n_sections", "<u2"),
        ("sections", [("id", "u1"), ("length", "<u4"), ("raw_length", "<u4")], (_MAX_SECTIONS,)),
    ]
)  # HEADER_STRUCT then SECTION_STRUCT entries, packed


@dataclass(frozen=True)
class _Headers:
    """The headers of many chunks as arrays (m,) and section tables (m, sections)."""

    compression: npt.NDArray[np.uint8]
    n_samples: npt.NDArray[np.int64]
    counts: dict[str, npt.NDArray[np.int64]]  # phasors, analogs, digitals
    section_id: npt.NDArray[np.int16]  # (m, 5), -1 past a chunk's last section
    offset: npt.NDArray[np.int64]  # (m, 5) where each section's compressed bytes start
    length: npt.NDArray[np.int64]
    raw_length: npt.NDArray[np.int64]


def _read_headers(datas: Sequence[bytes | memoryview]) -> _Headers:
    """Parse the headers and section tables of many chunks at once (errors as `read_header` gives them)."""
    size = _PREFIX.itemsize
    prefix = b"".join([bytes(data[:size]).ljust(size, b"\0") for data in datas])
    table = np.frombuffer(prefix, dtype=_PREFIX)
    n_sections = table["n_sections"].astype(np.int64)
    present = np.arange(_MAX_SECTIONS) < n_sections[:, None]
    sections = table["sections"]
    length = np.where(present, sections["length"], 0).astype(np.int64)
    table_end = HEADER_STRUCT.size + SECTION_STRUCT.size * n_sections
    offset = table_end[:, None] + np.cumsum(length, axis=1) - length
    sizes = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas))
    valid = (
        (table["magic"] == MAGIC)
        & (table["version"] == 1)
        & (n_sections <= _MAX_SECTIONS)
        & (table_end + length.sum(axis=1) == sizes)
    )
    if not valid.all():
        read_header(datas[int(np.argmin(valid))])  # raises the reason
        raise ChunkFormatError("chunk header is not one this codec reads")
    return _Headers(
        compression=table["compression"],
        n_samples=table["n"].astype(np.int64),
        counts={name: table[name].astype(np.int64) for name in ("phasors", "analogs", "digitals")},
        section_id=np.where(present, sections["id"], -1).astype(np.int16),
        offset=offset,
        length=length,
        raw_length=np.where(present, sections["raw_length"], 0).astype(np.int64),
    )


@dataclass(frozen=True)
class _Group:
    """Same-shape chunks of one section, their raw bytes side by side in the section buffer."""

    chunks: Index  # (m,) chunk numbers, ascending
    raw: U8  # (m, raw length) view into the section buffer
    n: int  # samples per chunk
    k: int  # columns per chunk


def _zstd_into(source: U8, out: U8) -> None:
    """Decompress concatenated zstd frames into `out`, which they must fill exactly."""
    view = out.data
    filled = 0
    try:
        with zstd_pair()[1].stream_reader(source.data, read_across_frames=True) as reader:
            while filled < len(out):
                count = reader.readinto(view[filled:])
                if not count:
                    break
                filled += count
            extra = reader.read(1)
    except zstandard.ZstdError as exc:
        raise ChunkFormatError(f"chunk section does not decompress: {exc}") from exc
    if filled != len(out) or extra:
        raise ChunkFormatError("chunk sections decompressed to other lengths than their headers say")


def _decompress_into(frames: Sequence[U8], compressions: npt.NDArray[np.uint8], raw_lengths: Index) -> U8:
    """Decompress sections one after the other into one buffer (each run of zstd frames in one call)."""
    ends = np.cumsum(raw_lengths)
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    bounds = [0, *(np.flatnonzero(compressions[1:] != compressions[:-1]) + 1).tolist(), len(frames)]
    for first, last in pairwise(bounds):
        start = int(ends[first - 1]) if first else 0
        if compressions[first] == ZSTD:
            _zstd_into(np.concatenate(frames[first:last]), out[start : int(ends[last - 1])])
            continue
        for index in range(first, last):  # zlib, lzma, none: slower anyway, one call per section
            raw = decompress(frames[index].data, int(compressions[index]))
            if len(raw) != raw_lengths[index]:
                raise ChunkFormatError(f"section decompressed to {len(raw)} bytes, expected {raw_lengths[index]}")
            out[start : start + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
            start += len(raw)
    return out


def _section_groups(
    arrays: Sequence[U8], headers: _Headers, section_id: int, widths: npt.NDArray[np.int64]
) -> list[_Group]:
    """Decompress one section of every chunk that has it, grouped by (samples, columns, raw length)."""
    where = headers.section_id == section_id
    have = np.flatnonzero(where.any(axis=1))
    if not len(have):
        return []
    column = np.argmax(where[have], axis=1)
    keys = np.stack(
        (
            headers.n_samples[have],
            widths[have],
            headers.raw_length[have, column],
            headers.offset[have, column],
            headers.length[have, column],
        ),
        axis=1,
    )
    order = np.lexsort(keys[:, 2::-1].T)  # by (samples, columns, raw length), stable within a group
    chunks, keys = have[order], keys[order]
    frames = [  # numpy views, not memoryviews: those are tracked by the garbage collector, which then runs often
        arrays[index][offset : offset + length]
        for index, offset, length in zip(chunks.tolist(), keys[:, 3].tolist(), keys[:, 4].tolist(), strict=True)
    ]
    buffer = _decompress_into(frames, headers.compression[chunks], keys[:, 2])
    groups = []
    bounds = (np.flatnonzero(np.any(keys[1:, :3] != keys[:-1, :3], axis=1)) + 1).tolist()
    position = 0
    for first, last in zip([0, *bounds], [*bounds, len(chunks)], strict=True):
        n, k, raw_length = (int(value) for value in keys[first, :3])
        m = last - first
        raw = buffer[position : position + m * raw_length].reshape(m, raw_length)
        groups.append(_Group(chunks[first:last], raw, n, k))
        position += m * raw_length
    return groups


def _columns(group: _Group, first_sample: Index) -> Index | slice:
    """Return where the group's samples go in the joined (.., n) arrays: a slice when they are adjacent."""
    chunks = group.chunks
    start = int(first_sample[chunks[0]])
    if int(chunks[-1]) - int(chunks[0]) == len(chunks) - 1:
        return slice(start, start + len(chunks) * group.n)
    return (first_sample[chunks][:, None] + np.arange(group.n)).reshape(-1)


def _unshuffle_into(raw: U8, width: int, out: npt.NDArray[Any]) -> Any:
    """Undo the byte shuffle of m chunks: (m, width * k * n) bytes into `out` (k, m, n), channel-major."""
    k, m, n = out.shape
    planes = raw.reshape(m, width, k, n)
    target = out.view(np.uint8).reshape(k, m, n, width)
    for byte in range(width):  # plane by plane: much faster than a transposed copy of single bytes
        target[..., byte] = planes[:, byte].transpose(1, 0, 2)
    return out


def _unshuffle(raw: U8, width: int, k: int, n: int, dtype: npt.DTypeLike) -> Any:
    """Undo the byte shuffle of m chunks: (m, width * k * n) bytes -> new (k, m, n) of `dtype`."""
    return _unshuffle_into(raw, width, np.empty((k, raw.shape[0], n), dtype=dtype))


def _target(out: npt.NDArray[Any], group: _Group, columns: Index | slice, k: int) -> npt.NDArray[Any] | None:
    """Return the (k, m, n) view of `out` the group fills when its chunks are adjacent, else None."""
    if not isinstance(columns, slice):
        return None
    return out[:k, columns].reshape(k, len(group.chunks), group.n, copy=False)


def _undelta(zigzag: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """Undo the zigzag delta along the last axis, in place (mod 2**32)."""
    sign = zigzag & np.uint32(1)
    np.negative(sign, out=sign)
    np.right_shift(zigzag, np.uint32(1), out=zigzag)
    np.bitwise_xor(zigzag, sign, out=zigzag)
    return np.cumsum(zigzag, axis=-1, dtype=np.uint32, out=zigzag)


def _place(out: npt.NDArray[Any], columns: Index | slice, values: npt.NDArray[Any]) -> None:
    """Write a group's (k, m, n) values into the first k rows of the joined (rows, total) matrix."""
    out[: values.shape[0], columns] = values.reshape(values.shape[0], -1)


def _time(
    groups: list[_Group], first_sample: Index, total: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint16]]:
    """Decode timestamps (us) and STAT words of every chunk -> two (total,) arrays."""
    timestamp_us = np.empty(total, dtype=np.int64)
    stat = np.empty(total, dtype=np.uint16)
    for group in groups:
        n, columns = group.n, _columns(group, first_sample)
        zigzag = _unshuffle(group.raw[:, : 8 * n], 8, 1, n, np.uint64)[0]  # (m, n)
        delta = ((zigzag >> np.uint64(1)) ^ (np.uint64(0) - (zigzag & np.uint64(1)))).view(np.int64)
        timestamp_us[columns] = np.cumsum(delta, axis=1).reshape(-1)
        stat[columns] = _unshuffle(group.raw[:, 8 * n : 10 * n], 2, 1, n, np.uint16)[0].reshape(-1)
    return timestamp_us, stat


def _float_bits(groups: list[_Group], first_sample: Index, total: int, rows: int, width: int) -> Any:
    """Decode the float32 bit patterns of float sections -> (rows, total) uint32, NaN where a chunk lacks a column."""
    full = all(group.k * width == rows for group in groups) and sum(len(g.chunks) * g.n for g in groups) == total
    out = np.empty((rows, total), np.uint32) if full else np.full((rows, total), np.nan, np.float32).view(np.uint32)
    for group in groups:
        k, n, columns = group.k, group.n, _columns(group, first_sample)
        main = group.raw[:, k : k + 4 * n * k * width]
        target = _target(out, group, columns, k * width)
        if target is not None:
            _undelta(_unshuffle_into(main, 4, target))
        else:
            _place(out, columns, _undelta(_unshuffle(main, 4, k * width, n, np.uint32)))
    return out


def _floats(groups: list[_Group], first_sample: Index, total: int, rows: int) -> FloatMatrix:
    """Decode float sections (frequency, analogs) -> (rows, total), float64 only when some chunk has residuals."""
    values: FloatMatrix = _float_bits(groups, first_sample, total, rows, 1).view(np.float32)
    exact = [group for group in groups if group.raw.shape[1] > group.k + 4 * group.n * group.k]
    if not exact:
        return values
    values = values.astype(np.float64)
    bits = values.view(np.uint64)
    for group in exact:  # chunks whose values are not all float32s: XOR in the float64 residuals
        k, n, m = group.k, group.n, len(group.chunks)
        inexact = group.raw[:, :k] == FLOAT_RESIDUAL  # (m, k), as many per chunk within a group
        count = int(inexact[0].sum())
        start = k + 4 * n * k
        residual = _unshuffle(group.raw[:, start : start + 8 * n * count], 8, count, n, np.uint64)  # (count, m, n)
        rows_hit = np.nonzero(inexact)[1].reshape(m, count).T  # (count, m)
        cols = first_sample[group.chunks][:, None] + np.arange(n)  # (m, n)
        bits[rows_hit[:, :, None], cols[None, :, :]] ^= residual
    return values


def _phasors(groups: list[_Group], first_sample: Index, total: int, rows: int) -> tuple[FloatMatrix, FloatMatrix]:
    """Decode phasor sections -> magnitude and angle rad, (rows, total) each; rectangular columns made polar."""
    pairs = _float_bits(groups, first_sample, total, 2 * rows, 2).view(np.float32)
    first, second = pairs[0::2], pairs[1::2]
    rect = np.zeros((rows, total), dtype=bool)
    for group in groups:
        kinds = group.raw[:, : group.k] == PHASOR_RECT  # (m, k)
        if kinds.any():
            rect[: group.k, _columns(group, first_sample)] = np.repeat(kinds.T, group.n, axis=1)
    if not rect.any():
        return first, second
    real, imag = first.astype(np.float64), second.astype(np.float64)
    magnitude, angle_rad = real.copy(), imag.copy()
    magnitude[rect] = np.hypot(real[rect], imag[rect])
    angle_rad[rect] = np.arctan2(imag[rect], real[rect])
    return magnitude, angle_rad


def _digitals(groups: list[_Group], first_sample: Index, total: int, rows: int) -> npt.NDArray[np.uint16]:
    """Decode digital sections -> (rows, total) uint16, 0 where a chunk lacks a word."""
    out = np.zeros((rows, total), dtype=np.uint16)
    for group in groups:
        values = _unshuffle(group.raw[:, : 2 * group.k * group.n], 2, group.k, group.n, np.uint16)
        _place(out, _columns(group, first_sample), values)
    return out


def decode_parts_many(
    datas: Sequence[bytes | memoryview],
    frequency: bool = False,
    phasors: bool = False,
    analogs: bool = False,
    digitals: bool = False,
) -> ChunkParts:
    """Decode the time section and the asked sections of many chunks, joined in the order given.

    Chunks may differ in length and channel counts: a channel a chunk lacks reads NaN (digitals 0).
    """
    headers = _read_headers(datas)
    arrays = [np.frombuffer(data, dtype=np.uint8) for data in datas]
    lengths = headers.n_samples
    first_sample = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp)
    total = int(lengths.sum())
    ones = np.ones(len(datas), dtype=np.int64)
    timestamp_us, stat = _time(_section_groups(arrays, headers, SECTION_TIME, ones), first_sample, total)
    parts = ChunkParts(timestamp_us=timestamp_us, stat=stat)

    def groups(section_id: int, counts: npt.NDArray[np.int64]) -> tuple[list[_Group], int]:
        return _section_groups(arrays, headers, section_id, counts), int(counts.max(initial=0))

    if frequency:
        found, _ = groups(SECTION_FREQUENCY, ones * 2)
        parts.frequency = _floats(found, first_sample, total, 2)
    if phasors:
        found, rows = groups(SECTION_PHASORS, headers.counts["phasors"])
        parts.magnitude, parts.angle_rad = _phasors(found, first_sample, total, rows)
    if analogs:
        found, rows = groups(SECTION_ANALOGS, headers.counts["analogs"])
        parts.analogs = _floats(found, first_sample, total, rows)
    if digitals:
        found, rows = groups(SECTION_DIGITALS, headers.counts["digitals"])
        parts.digitals = _digitals(found, first_sample, total, rows)
    return parts
