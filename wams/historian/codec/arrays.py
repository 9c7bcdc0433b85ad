"""SampleBlock helpers: fast uncompressed packing (recent window), selecting, joining, de-duplicating."""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from wams.historian.blocks import SampleBlock

_PACK = struct.Struct("<qIHHH")  # pmu id, n, phasors, analogs, digitals


def pack_block(block: SampleBlock) -> bytes:
    """Serialise a block uncompressed and fast (for the short-lived recent window)."""
    assert block.late is not None
    head = _PACK.pack(block.pmu_id, len(block), block.phasors.shape[1], block.analogs.shape[1], block.digitals.shape[1])
    return b"".join(
        (
            head,
            block.timestamp_us.tobytes(),
            block.stat.tobytes(),
            block.frequency_hz.tobytes(),
            block.rocof_hz_per_s.tobytes(),
            np.ascontiguousarray(block.phasors).tobytes(),
            np.ascontiguousarray(block.analogs).tobytes(),
            np.ascontiguousarray(block.digitals).tobytes(),
            block.late.tobytes(),
        )
    )


def unpack_block(data: bytes | memoryview) -> SampleBlock:
    """Rebuild a block serialised by `pack_block`."""
    if len(data) < _PACK.size:
        raise ValueError(f"packed block of {len(data)} bytes is shorter than its header")
    pmu_id, n, n_phasors, n_analogs, n_digitals = _PACK.unpack_from(data)
    expected = _PACK.size + n * (8 + 2 + 8 + 8 + 16 * n_phasors + 8 * n_analogs + 2 * n_digitals + 1)
    if len(data) != expected:
        raise ValueError(f"packed block has {len(data)} bytes, its header says {expected}")
    offset = _PACK.size

    def take(dtype: npt.DTypeLike, count: int) -> npt.NDArray[np.generic]:
        nonlocal offset
        array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        offset += array.nbytes
        return array

    timestamp_us = take(np.int64, n)
    stat = take(np.uint16, n)
    frequency_hz = take(np.float64, n)
    rocof_hz_per_s = take(np.float64, n)
    phasors = take(np.complex128, n * n_phasors).reshape(n, n_phasors)
    analogs = take(np.float64, n * n_analogs).reshape(n, n_analogs)
    digitals = take(np.uint16, n * n_digitals).reshape(n, n_digitals)
    late = take(np.bool_, n)
    return SampleBlock(pmu_id, timestamp_us, stat, frequency_hz, rocof_hz_per_s, phasors, analogs, digitals, late)


# --- block helpers ----------------------------------------------------------------------------


def take_samples(block: SampleBlock, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp] | slice) -> SampleBlock:
    """Return the samples of `block` selected by a mask, indices or a slice."""
    assert block.late is not None
    return SampleBlock(
        pmu_id=block.pmu_id,
        timestamp_us=block.timestamp_us[index],
        stat=block.stat[index],
        frequency_hz=block.frequency_hz[index],
        rocof_hz_per_s=block.rocof_hz_per_s[index],
        phasors=block.phasors[index],
        analogs=block.analogs[index],
        digitals=block.digitals[index],
        late=block.late[index],
    )


def _pad(matrix: npt.NDArray[np.generic], width: int, fill: object) -> npt.NDArray[np.generic]:
    """Widen a (n, k) matrix to (n, width) with `fill`."""
    if matrix.shape[1] == width:
        return matrix
    out = np.full((matrix.shape[0], width), fill, dtype=matrix.dtype)
    out[:, : matrix.shape[1]] = matrix
    return out


def concat_blocks(blocks: list[SampleBlock]) -> SampleBlock:
    """Join blocks of one PMU in time order; channels missing from some blocks read NaN (digitals 0)."""
    if not blocks:
        raise ValueError("nothing to join")
    if len(blocks) == 1:
        return blocks[0]
    n_phasors = max(b.phasors.shape[1] for b in blocks)
    n_analogs = max(b.analogs.shape[1] for b in blocks)
    n_digitals = max(b.digitals.shape[1] for b in blocks)
    joined = SampleBlock(
        pmu_id=blocks[0].pmu_id,
        timestamp_us=np.concatenate([b.timestamp_us for b in blocks]),
        stat=np.concatenate([b.stat for b in blocks]),
        frequency_hz=np.concatenate([b.frequency_hz for b in blocks]),
        rocof_hz_per_s=np.concatenate([b.rocof_hz_per_s for b in blocks]),
        phasors=np.concatenate([_pad(b.phasors, n_phasors, complex(np.nan, np.nan)) for b in blocks]),
        analogs=np.concatenate([_pad(b.analogs, n_analogs, np.nan) for b in blocks]),
        digitals=np.concatenate([_pad(b.digitals, n_digitals, 0) for b in blocks]),
        late=np.concatenate([b.late for b in blocks if b.late is not None]),
    )
    order = np.argsort(joined.timestamp_us, kind="stable")
    if np.any(np.diff(order) != 1):
        joined = take_samples(joined, order)
    return joined


def unique_samples(block: SampleBlock) -> SampleBlock:
    """Return the block sorted by time with each timestamp once (first occurrence kept)."""
    timestamps = block.timestamp_us
    if len(timestamps) < 2 or bool(np.all(np.diff(timestamps) > 0)):
        return block
    _, first = np.unique(timestamps, return_index=True)  # sorted unique timestamps, index of first occurrence
    return take_samples(block, first)
