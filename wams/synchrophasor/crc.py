"""CRC-CCITT of C37.118 (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""

from __future__ import annotations

import binascii

import numpy as np
import numpy.typing as npt

CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


def crc_ccitt(data: bytes | bytearray | memoryview, init: int = CRC_INIT) -> int:
    """Return the C37.118 CRC-CCITT of `data`."""
    # binascii.crc_hqx is exactly this CRC (poly 0x1021, MSB first) with a chosen start value.
    return binascii.crc_hqx(data, init)


def _build_table() -> npt.NDArray[np.uint16]:
    """Return the 256-entry byte-at-a-time table for poly 0x1021."""
    table = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
        table[byte] = crc & 0xFFFF
    return table


CRC_TABLE: npt.NDArray[np.uint16] = _build_table()


def _build_table16() -> npt.NDArray[np.uint16]:
    """Return the 65536-entry table that advances the register over one 16-bit word.

    For a 16-bit register, feeding word w from state c gives TABLE16[c ^ w]: both bytes of the
    register are shifted out, so the result depends on c ^ w alone.
    """
    state = np.arange(65536, dtype=np.uint32)
    for _ in range(2):
        state = ((state << 8) & 0xFFFF) ^ CRC_TABLE[state >> 8].astype(np.uint32)
    return state.astype(np.uint16)


CRC_TABLE16: npt.NDArray[np.uint16] = _build_table16()

_ROW_BLOCK = 8192  # rows per pass: keeps the transposed block in cache


def crc_ccitt_rows(rows: npt.NDArray[np.uint8], init: int = CRC_INIT) -> npt.NDArray[np.uint16]:
    """Return the CRC of each row of a (n, length) uint8 array, vectorised over rows -> (n,)."""
    if rows.ndim != 2:
        raise ValueError("rows must be a 2-D uint8 array")
    n, length = rows.shape
    out = np.empty(n, dtype=np.uint16)
    even = length - (length % 2)
    for start in range(0, n, _ROW_BLOCK):
        block = rows[start : start + _ROW_BLOCK]
        crc = np.full(block.shape[0], init, dtype=np.uint16)
        if even:
            # Big-endian 16-bit words, column-major so each step reads contiguous memory:
            # byte swap and transpose in one pass.
            words = np.empty((even // 2, block.shape[0]), dtype=np.uint16)
            words[...] = np.ascontiguousarray(block[:, :even]).view(">u2").T
            table = CRC_TABLE16
            mixed = np.empty_like(crc)
            for col in words:
                np.bitwise_xor(crc, col, out=mixed)
                np.take(table, mixed, out=crc, mode="clip")  # in place: no allocation per step
        if length % 2:
            index = (crc >> 8) ^ block[:, -1]
            crc = (crc << 8) ^ CRC_TABLE[index]
        out[start : start + block.shape[0]] = crc
    return out
