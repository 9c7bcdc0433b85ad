"""Batch decoder: many data frames of one configuration decoded at once into numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wams.synchrophasor.crc import crc_ccitt_rows
from wams.synchrophasor.errors import FrameSizeError
from wams.synchrophasor.frames import ConfigFrame, FrameType
from wams.synchrophasor.layout import ABSENT_INT16, effective_analog_scaling, layout_of


@dataclass(slots=True)
class DataBatch:
    """Decoded data frames of one configuration; n frames, P PMUs, padded with NaN / 0.

    soc (n,) uint32 s; fracsec (n,) uint32 whole FRACSEC word; timestamp_s (n,) float64 s since 1970;
    idcode (n,) uint16; stat (n, P) uint16; phasors (n, P, max_phasors) complex128 V or A;
    frequency_hz (n, P); rocof_hz_per_s (n, P); analogs (n, P, max_analogs) float64;
    digitals (n, P, max_digitals) uint16; crc_ok (n,) bool: CHK matches;
    ok (n,) bool: CHK matches and SYNC / FRAMESIZE are those of a data frame of this configuration.
    Rows that are not `ok` hold whatever their bytes decode to: mask them out.
    """

    config: ConfigFrame
    soc: npt.NDArray[np.uint32]
    fracsec: npt.NDArray[np.uint32]
    timestamp_s: npt.NDArray[np.float64]
    idcode: npt.NDArray[np.uint16]
    stat: npt.NDArray[np.uint16]
    phasors: npt.NDArray[np.complex128]
    frequency_hz: npt.NDArray[np.float64]
    rocof_hz_per_s: npt.NDArray[np.float64]
    analogs: npt.NDArray[np.float64]
    digitals: npt.NDArray[np.uint16]
    crc_ok: npt.NDArray[np.bool_]
    ok: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        """Return the number of frames."""
        return int(self.soc.shape[0])


def batch_dtype(config: ConfigFrame) -> np.dtype[np.void]:
    """Return the numpy structured dtype of one data frame of `config` (big-endian fields)."""
    fields: list[tuple[str, str] | tuple[str, str, tuple[int, ...]]] = [
        ("sync", ">u2"),
        ("framesize", ">u2"),
        ("idcode", ">u2"),
        ("soc", ">u4"),
        ("fracsec", ">u4"),
    ]
    for i, pmu in enumerate(config.pmus):
        fields.append((f"stat{i}", ">u2"))
        if pmu.phasors:
            fields.append((f"ph{i}", ">f4" if pmu.phasor_float else ">i2", (len(pmu.phasors), 2)))
        fields.append((f"fr{i}", ">f4" if pmu.freq_float else ">i2", (2,)))
        if pmu.analogs:
            fields.append((f"an{i}", ">f4" if pmu.analog_float else ">i2", (len(pmu.analogs),)))
        if pmu.digitals:
            fields.append((f"dg{i}", ">u2", (len(pmu.digitals),)))
    fields.append(("chk", ">u2"))
    return np.dtype(fields)  # type: ignore[arg-type]


def _as_rows(
    frames: bytes | bytearray | memoryview | list[bytes] | npt.NDArray[np.uint8], size: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """Return (n, size) uint8 rows and a mask of rows whose length was right."""
    if isinstance(frames, list):
        good = np.array([len(f) == size for f in frames], dtype=bool)
        blank = bytes(size)
        joined = b"".join(f if len(f) == size else blank for f in frames)
        rows = np.frombuffer(joined, dtype=np.uint8).reshape(len(frames), size)
        return rows, good
    if isinstance(frames, np.ndarray):
        arr = np.ascontiguousarray(frames, dtype=np.uint8)
        if arr.ndim == 1:
            arr = arr.reshape(-1)
        else:
            if arr.shape[-1] != size:
                raise FrameSizeError(f"rows of {arr.shape[-1]} bytes, frames have {size}")
            arr = arr.reshape(-1)
        data = arr
    else:
        data = np.frombuffer(frames, dtype=np.uint8)
    if data.size % size:
        raise FrameSizeError(f"{data.size} bytes is not a whole number of {size}-byte frames")
    rows = data.reshape(-1, size)
    return rows, np.ones(rows.shape[0], dtype=bool)


def decode_data_batch(
    config: ConfigFrame,
    frames: bytes | bytearray | memoryview | list[bytes] | npt.NDArray[np.uint8],
    check_crc: bool = True,
) -> DataBatch:
    """Decode many data frames of `config` at once.

    Polar phasors are turned to complex with float32 trigonometry (the wire's own precision), so
    they agree with the per-frame path to about 1e-7 relative, not bit for bit.

    `frames`: the frames back to back (bytes), a list of frames (wrong-length ones come back with
    ok False), or a uint8 array (n, frame_size) or flat. CRC is checked vectorised unless
    `check_crc` is False (then crc_ok is all True).
    """
    layout = layout_of(config)
    size = layout.frame_size
    rows, good = _as_rows(frames, size)
    n = rows.shape[0]
    rec = rows.reshape(-1).view(batch_dtype(config))
    if check_crc and n:
        crc_ok = (crc_ccitt_rows(rows[:, :-2]) == rec["chk"]) & good
    else:
        crc_ok = good.copy()
    expected_sync = 0xAA00 | (FrameType.DATA << 4)
    ok = crc_ok & ((rec["sync"] & 0xFFF0) == expected_sync) & ((rec["sync"] & 0xF) != 0) & (rec["framesize"] == size)
    n_pmu = len(config.pmus)
    max_ph = max((len(p.phasors) for p in config.pmus), default=0)
    max_an = max((len(p.analogs) for p in config.pmus), default=0)
    max_dg = max((len(p.digitals) for p in config.pmus), default=0)
    stat = np.zeros((n, n_pmu), dtype=np.uint16)
    phasors = np.full((n, n_pmu, max_ph), np.nan + 1j * np.nan, dtype=np.complex128)
    freq = np.zeros((n, n_pmu))
    rocof = np.zeros((n, n_pmu))
    analogs = np.full((n, n_pmu, max_an), np.nan)
    digitals = np.zeros((n, n_pmu, max_dg), dtype=np.uint16)
    for i, (pmu, block) in enumerate(zip(config.pmus, layout.blocks, strict=True)):
        stat[:, i] = rec[f"stat{i}"]
        if pmu.phasors:
            phasors[:, i, : len(pmu.phasors)] = _phasors(pmu.phasor_float, pmu.polar, rec[f"ph{i}"], block.factors)
        fr = rec[f"fr{i}"]
        if pmu.freq_float:
            freq[:, i] = fr[:, 0]
            rocof[:, i] = fr[:, 1]
        else:
            freq[:, i] = pmu.nominal_hz + fr[:, 0] / 1000.0
            rocof[:, i] = fr[:, 1] / 100.0
        if pmu.analogs:
            raw = rec[f"an{i}"].astype(np.float64)
            if not pmu.analog_float:
                scale, offset = effective_analog_scaling(pmu, config.cfg_type)
                raw = raw * scale + offset
            analogs[:, i, : len(pmu.analogs)] = raw
        if pmu.digitals:
            digitals[:, i, : len(pmu.digitals)] = rec[f"dg{i}"]
    soc = rec["soc"].astype(np.uint32)
    fracsec = rec["fracsec"].astype(np.uint32)
    timestamp_s = soc + (fracsec & 0xFFFFFF) / float(config.time_base)
    return DataBatch(
        config=config,
        soc=soc,
        fracsec=fracsec,
        timestamp_s=timestamp_s,
        idcode=rec["idcode"].astype(np.uint16),
        stat=stat,
        phasors=phasors,
        frequency_hz=freq,
        rocof_hz_per_s=rocof,
        analogs=analogs,
        digitals=digitals,
        crc_ok=crc_ok,
        ok=ok,
    )


def _polar(magnitude: npt.NDArray[np.generic], angle_rad: npt.NDArray[np.generic]) -> npt.NDArray[np.complex128]:
    """Return magnitude * exp(j angle) -> same shape, complex128.

    The trigonometry runs in float32, the precision of the wire values (float32 fields, or 1e-4 rad
    integer angles), where numpy vectorises it: about 17x faster than float64 on large batches.
    """
    ang = angle_rad.astype(np.float32)
    mag = magnitude.astype(np.float64)
    out = np.empty(ang.shape, dtype=np.complex128)
    np.multiply(mag, np.cos(ang), out=out.real)
    np.multiply(mag, np.sin(ang), out=out.imag)
    return out


def _phasors(
    is_float: bool,
    polar: bool,
    raw: npt.NDArray[np.generic],
    factors: npt.NDArray[np.complex128],
) -> npt.NDArray[np.complex128]:
    """Turn (n, n_phasors, 2) raw phasor fields into complex V or A -> (n, n_phasors)."""
    if is_float:
        if polar:
            return _polar(raw[..., 0], raw[..., 1])
        out = np.empty(raw.shape[:-1], dtype=np.complex128)
        out.real = raw[..., 0]
        out.imag = raw[..., 1]
        return out
    first = raw[..., 0].astype(np.int32)
    second = raw[..., 1].astype(np.int32)
    if polar:
        z = _polar(first & 0xFFFF, second * np.float32(1e-4))
        absent = second == ABSENT_INT16
    else:
        z = np.empty(first.shape, dtype=np.complex128)
        z.real = first
        z.imag = second
        absent = (first == ABSENT_INT16) | (second == ABSENT_INT16)
    if not np.all(factors == 1.0):
        z *= factors
    if absent.any():
        z[absent] = np.nan + 1j * np.nan
    return z
