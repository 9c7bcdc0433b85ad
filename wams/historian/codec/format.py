"""Chunk layout: header, sections, byte transforms and compression (pure numpy, no Django)."""

from __future__ import annotations

import lzma
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import zstandard

MAGIC = b"WHC1"
HEADER_STRUCT = struct.Struct(
    "<4sBBHIHHHH"
)  # magic, version, compression, flags, n, phasors, analogs, digitals, sections
SECTION_STRUCT = struct.Struct("<BII")  # section id, compressed length, raw length

COMPRESSIONS = {"none": 0, "zlib": 1, "lzma": 2, "zstd": 3}

SECTION_TIME = 0  # timestamps, STAT, late flags
SECTION_FREQUENCY = 1  # frequency, ROCOF
SECTION_PHASORS = 2
SECTION_ANALOGS = 3
SECTION_DIGITALS = 4

FLOAT_EXACT = 0  # float32 column only
FLOAT_RESIDUAL = 1  # float32 column + float64 XOR residual
PHASOR_RECT = 0  # real, imag float32
PHASOR_POLAR = 1  # magnitude, angle float32
PHASOR_POLAR_RESIDUAL = 2  # magnitude, angle float32 + complex XOR residual

F64 = npt.NDArray[np.float64]


class ChunkFormatError(ValueError):
    """The bytes are not a chunk this codec can read."""


@dataclass(frozen=True)
class ChunkHeader:
    """What a chunk's header says about its content."""

    compression: int
    n_samples: int
    n_phasors: int
    n_analogs: int
    n_digitals: int
    sections: dict[int, tuple[int, int, int]]  # id -> (offset, compressed length, raw length)


# --- byte-level transforms (on (n, k) matrices: n samples of k columns) ----------------------


def shuffle(matrix: npt.NDArray[np.generic]) -> bytes:
    """Lay the bytes out plane by plane: byte j of every value of column 0, column 1, ... for j = 0, 1, ..."""
    n = matrix.shape[0]
    width = matrix.dtype.itemsize
    planes = np.ascontiguousarray(matrix).view(np.uint8).reshape(n, -1, width)
    return planes.transpose(2, 1, 0).tobytes()


def unshuffle(raw: bytes | memoryview, dtype: npt.DTypeLike, n: int, k: int = 1) -> npt.NDArray[Any]:
    """Undo `shuffle` -> (n, k) of `dtype`."""
    width = np.dtype(dtype).itemsize
    planes = np.frombuffer(raw, dtype=np.uint8, count=width * k * n).reshape(width, k, n)
    return np.ascontiguousarray(planes.transpose(2, 1, 0)).view(dtype).reshape(n, k)


def delta_u32(bits: npt.NDArray[np.uint32]) -> bytes:
    """Encode (n, k) uint32 bit patterns as zigzag deltas along time (mod 2**32), shuffled."""
    delta = bits.copy()
    delta[1:] -= bits[:-1]
    signed = delta.view(np.int32)
    return shuffle(((signed << 1) ^ (signed >> 31)).view(np.uint32))


def undelta_u32(raw: bytes | memoryview, n: int, k: int) -> npt.NDArray[np.uint32]:
    """Decode `delta_u32` -> (n, k) uint32."""
    zigzag = unshuffle(raw, np.uint32, n, k)
    delta = (zigzag >> np.uint32(1)) ^ (np.uint32(0) - (zigzag & np.uint32(1)))
    return np.cumsum(delta, axis=0, dtype=np.uint32)


def delta_i64(values: npt.NDArray[np.int64]) -> bytes:
    """Encode (n,) int64 values as zigzag deltas, shuffled."""
    delta = np.diff(values, prepend=np.int64(0))
    return shuffle(((delta << 1) ^ (delta >> 63)).view(np.uint64).reshape(-1, 1))


def undelta_i64(raw: bytes | memoryview, n: int) -> npt.NDArray[np.int64]:
    """Decode `delta_i64` -> (n,) int64."""
    zigzag = unshuffle(raw, np.uint64, n).reshape(n)
    delta = ((zigzag >> np.uint64(1)) ^ (np.uint64(0) - (zigzag & np.uint64(1)))).view(np.int64)
    return np.cumsum(delta, dtype=np.int64)


def to_float32(values: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Round to float32 without overflow warnings (out-of-range values become inf, kept by the residual)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(np.float32)


def bits(values: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    """Return the bit patterns of a float64 array."""
    return np.ascontiguousarray(values).view(np.uint64)


class Reader:
    """Consume consecutive byte fields of a decompressed section."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.offset = 0

    def take(self, size: int) -> memoryview:
        if self.offset + size > len(self.view):
            raise ChunkFormatError("chunk section is shorter than its header says")
        part = self.view[self.offset : self.offset + size]
        self.offset += size
        return part


# --- sections --------------------------------------------------------------------------------


_zstd_local = threading.local()  # zstandard (de)compressors are not thread-safe: one per thread


def zstd_pair() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_zstd_local, "pair", None)
    if pair is None:
        pair = _zstd_local.pair = (zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor())
    return pair  # type: ignore[no-any-return]


def compress(raw: bytes, compression: int) -> bytes:
    if compression == 3:
        return zstd_pair()[0].compress(raw)
    if compression == 1:
        return zlib.compress(raw, 6)
    if compression == 2:
        return lzma.compress(raw, preset=6)
    return raw


def decompress(data: bytes | memoryview, compression: int) -> bytes:
    if compression == 3:
        return zstd_pair()[1].decompress(data)
    if compression == 1:
        return zlib.decompress(data)
    if compression == 2:
        return lzma.decompress(data)
    return bytes(data)


def read_header(data: bytes | memoryview) -> ChunkHeader:
    """Parse a chunk's header and section table."""
    if len(data) < HEADER_STRUCT.size:
        raise ChunkFormatError("chunk is shorter than its header")
    magic, version, compression, _flags, n, n_phasors, n_analogs, n_digitals, n_sections = HEADER_STRUCT.unpack_from(
        data
    )
    if magic != MAGIC or version != 1:
        raise ChunkFormatError(f"not a version-1 chunk (magic {bytes(magic)!r}, version {version})")
    offset = HEADER_STRUCT.size + n_sections * SECTION_STRUCT.size
    sections = {}
    for index in range(n_sections):
        section_id, length, raw_length = SECTION_STRUCT.unpack_from(
            data, HEADER_STRUCT.size + index * SECTION_STRUCT.size
        )
        sections[section_id] = (offset, length, raw_length)
        offset += length
    if offset != len(data):
        raise ChunkFormatError(f"chunk has {len(data)} bytes, its sections add up to {offset}")
    return ChunkHeader(compression, n, n_phasors, n_analogs, n_digitals, sections)


def section_reader(data: bytes | memoryview, header: ChunkHeader, section_id: int) -> Reader:
    offset, length, raw_length = header.sections[section_id]
    raw = decompress(memoryview(data)[offset : offset + length], header.compression)
    if len(raw) != raw_length:
        raise ChunkFormatError(f"section {section_id} decompressed to {len(raw)} bytes, expected {raw_length}")
    return Reader(raw)
