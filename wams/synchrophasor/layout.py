"""Compiled data-frame layout of one configuration: the fast per-frame encode/decode path."""

from __future__ import annotations

import cmath
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wams.synchrophasor.crc import crc_ccitt
from wams.synchrophasor.errors import ConfigMismatchError, CrcError, EncodeError, FrameSizeError
from wams.synchrophasor.frames import ConfigFrame, DataFrame, FrameType, PmuConfig, PmuData

ABSENT_INT16 = -32768  # 0x8000 marks absent fixed-point data
_COMMON = ">HHHII"  # SYNC FRAMESIZE IDCODE SOC FRACSEC
_EMPTY_F64: npt.NDArray[np.float64] = np.zeros(0)


def quantise_float32(value: float) -> float:
    """Return `value` as it reads back from a 32-bit IEEE float field."""
    return float(np.float32(value))


def effective_phasor_factors(pmu: PmuConfig, cfg_type: int) -> npt.NDArray[np.complex128]:
    """Return the complex factor per phasor that turns integer counts into V or A -> (n_phasors,).

    CFG-1/2: PHUNIT x 1e-5 (quantised as on the wire), no angle offset. CFG-3: Y * exp(-j theta).
    """
    factors = np.empty(len(pmu.phasors), dtype=np.complex128)
    for i, ch in enumerate(pmu.phasors):
        if cfg_type == 3:
            scale = quantise_float32(ch.scale)
            theta = quantise_float32(ch.angle_offset_rad)
            factors[i] = scale * cmath.exp(-1j * theta)
        else:
            factors[i] = phunit_of(ch.scale) * 1e-5
    return factors


def effective_analog_scaling(pmu: PmuConfig, cfg_type: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return (scale, offset) per analog for integer analogs -> (n_analogs,), (n_analogs,)."""
    n = len(pmu.analogs)
    scale = np.ones(n)
    offset = np.zeros(n)
    for i, ch in enumerate(pmu.analogs):
        if cfg_type == 3:
            scale[i] = quantise_float32(ch.scale)
            offset[i] = quantise_float32(ch.offset)
        else:
            word = anunit_of(ch.scale)
            scale[i] = float(word) if word != 0 else 1.0
    return scale, offset


def phunit_of(scale: float) -> int:
    """Return the 24-bit PHUNIT count (units of 1e-5 V or A per bit) for a phasor scale."""
    if not math.isfinite(scale) or scale < 0:
        raise EncodeError(f"phasor scale {scale!r} cannot be written as PHUNIT")
    return min(round(scale * 1e5), 0xFFFFFF)


def anunit_of(scale: float) -> int:
    """Return the signed 24-bit ANUNIT scaling word for an analog scale."""
    if not math.isfinite(scale):
        raise EncodeError(f"analog scale {scale!r} cannot be written as ANUNIT")
    return max(-0x800000, min(round(scale), 0x7FFFFF))


def _clip_int(value: float, low: int, high: int) -> int:
    """Round to the nearest int and clip to [low, high]; NaN becomes the absent marker."""
    if value != value:  # NaN
        return ABSENT_INT16
    return max(low, min(high, round(value)))


@dataclass(slots=True)
class _Block:
    """Positions and converters of one PMU block inside the unpacked tuple."""

    pmu: PmuConfig
    stat_at: int
    ph_start: int
    ph_end: int
    freq_at: int
    an_start: int
    an_end: int
    dg_start: int
    dg_end: int
    factors: npt.NDArray[np.complex128]
    factor_list: list[complex]
    an_scale: npt.NDArray[np.float64]
    an_offset: npt.NDArray[np.float64]
    an_identity: bool
    nominal_hz: float
    decode_phasors: Callable[[Sequence[Any]], npt.NDArray[np.complex128]]


class DataLayout:
    """Compiled layout of the data frames of one configuration.

    Build once per configuration (`layout_of(config)` caches it on the config) and reuse:
    `decode(buf)` turns one data frame into a `DataFrame`; `encode(frame)` writes one.
    """

    def __init__(self, config: ConfigFrame) -> None:
        if config.cfg_type not in (1, 2, 3):
            raise EncodeError(f"cfg_type {config.cfg_type} is not 1, 2 or 3")
        self.config = config
        fmt = [_COMMON]
        blocks: list[_Block] = []
        pos = 5
        for pmu in config.pmus:
            n_ph, n_an, n_dg = len(pmu.phasors), len(pmu.analogs), len(pmu.digitals)
            if pmu.phasor_float:
                ph_fmt = "f" * (2 * n_ph)
            elif pmu.polar:
                ph_fmt = "Hh" * n_ph
            else:
                ph_fmt = "h" * (2 * n_ph)
            fr_fmt = "ff" if pmu.freq_float else "hh"
            an_fmt = ("f" if pmu.analog_float else "h") * n_an
            fmt.append("H" + ph_fmt + fr_fmt + an_fmt + "H" * n_dg)
            stat_at = pos
            ph_start = pos + 1
            ph_end = ph_start + 2 * n_ph
            freq_at = ph_end
            an_start = freq_at + 2
            an_end = an_start + n_an
            dg_end = an_end + n_dg
            pos = dg_end
            factors = effective_phasor_factors(pmu, config.cfg_type)
            an_scale, an_offset = effective_analog_scaling(pmu, config.cfg_type)
            block = _Block(
                pmu=pmu,
                stat_at=stat_at,
                ph_start=ph_start,
                ph_end=ph_end,
                freq_at=freq_at,
                an_start=an_start,
                an_end=an_end,
                dg_start=an_end,
                dg_end=dg_end,
                factors=factors,
                factor_list=[complex(f) for f in factors],
                an_scale=an_scale,
                an_offset=an_offset,
                an_identity=bool(np.all(an_scale == 1.0) and np.all(an_offset == 0.0)),
                nominal_hz=float(pmu.nominal_hz),
                decode_phasors=_phasor_decoder(pmu, factors),
            )
            blocks.append(block)
        self.blocks = blocks
        self.body = struct.Struct("".join(fmt))
        self.frame_size = self.body.size + 2
        if self.frame_size > 0xFFFF:
            raise EncodeError(f"data frame of {self.frame_size} bytes exceeds 65535")
        self.sync = 0xAA00 | (FrameType.DATA << 4) | (config.version & 0xF)
        self.time_base = config.time_base

    def decode(self, buf: bytes | bytearray | memoryview, check_crc: bool = True) -> DataFrame:
        """Decode one whole data frame (SYNC..CHK) of this configuration."""
        if len(buf) != self.frame_size:
            raise FrameSizeError(f"data frame has {len(buf)} bytes, configuration expects {self.frame_size}")
        if check_crc:
            crc = crc_ccitt(buf[:-2])
            if crc != (buf[-2] << 8 | buf[-1]):
                raise CrcError(f"CHK {buf[-2] << 8 | buf[-1]:04x} != computed {crc:04x}")
        vals = self.body.unpack_from(buf)
        if vals[1] != self.frame_size:
            raise FrameSizeError(f"FRAMESIZE {vals[1]} != {self.frame_size} bytes received")
        pmus = []
        for b in self.blocks:
            if b.an_end > b.an_start:
                analogs = np.array(vals[b.an_start : b.an_end], dtype=np.float64)
                if not b.pmu.analog_float and not b.an_identity:
                    analogs = analogs * b.an_scale + b.an_offset
            else:
                analogs = np.zeros(0)
            if b.pmu.freq_float:
                freq_hz = vals[b.freq_at]
                rocof = vals[b.freq_at + 1]
            else:
                freq_hz = b.nominal_hz + vals[b.freq_at] / 1000.0
                rocof = vals[b.freq_at + 1] / 100.0
            pmus.append(
                PmuData(
                    vals[b.stat_at],
                    b.decode_phasors(vals[b.ph_start : b.ph_end]),
                    freq_hz,
                    rocof,
                    analogs,
                    list(vals[b.dg_start : b.dg_end]),
                )
            )
        return DataFrame(vals[2], vals[3], vals[4], pmus, self.time_base, vals[0] & 0xF)

    def encode(self, frame: DataFrame) -> bytes:
        """Encode one data frame of this configuration (CHK included)."""
        if len(frame.pmus) != len(self.blocks):
            raise ConfigMismatchError(f"frame has {len(frame.pmus)} PMU blocks, configuration has {len(self.blocks)}")
        values: list[float | int] = [
            self.sync,
            self.frame_size,
            frame.idcode,
            frame.soc,
            frame.fracsec,
        ]
        for b, data in zip(self.blocks, frame.pmus, strict=True):
            values.append(data.stat)
            values.extend(_encode_phasors(b, data.phasors))
            _append_frequency(values, b, data)
            values.extend(_encode_analogs(b, data.analogs))
            digitals = list(data.digitals)
            if len(digitals) != len(b.pmu.digitals):
                raise ConfigMismatchError(f"{len(digitals)} digital words given, {len(b.pmu.digitals)} configured")
            values.extend(digitals)
        try:
            body = self.body.pack(*values)
        except (struct.error, OverflowError) as exc:
            raise EncodeError(str(exc)) from exc
        return body + crc_ccitt(body).to_bytes(2, "big")


def _phasor_decoder(
    pmu: PmuConfig, factors: npt.NDArray[np.complex128]
) -> Callable[[Sequence[Any]], npt.NDArray[np.complex128]]:
    """Return the function turning the unpacked phasor values into complex V or A."""
    n = len(pmu.phasors)
    factor_list = [complex(f) for f in factors]
    identity = bool(np.all(factors == 1.0))

    if n == 0:
        return lambda raw: np.zeros(0, dtype=np.complex128)
    if pmu.phasor_float and not pmu.polar:

        def rect_float(raw: Sequence[Any]) -> npt.NDArray[np.complex128]:
            return np.array(raw, dtype=np.float64).view(np.complex128)

        return rect_float
    if pmu.phasor_float:
        rect = cmath.rect

        def polar_float(raw: Sequence[Any]) -> npt.NDArray[np.complex128]:
            return np.array(list(map(rect, raw[0::2], raw[1::2])), dtype=np.complex128)

        return polar_float
    if not pmu.polar:

        def rect_int(raw: Sequence[Any]) -> npt.NDArray[np.complex128]:
            z: npt.NDArray[Any] = np.array(raw, dtype=np.float64)
            if ABSENT_INT16 in raw:
                z[z == ABSENT_INT16] = np.nan
                z = z.view(np.complex128)
                bad = np.isnan(z.real) | np.isnan(z.imag)
                z[bad] = complex(np.nan, np.nan)
            else:
                z = z.view(np.complex128)
            return z if identity else z * factors

        return rect_int

    def polar_int(raw: Sequence[Any]) -> npt.NDArray[np.complex128]:
        rect = cmath.rect
        out = []
        for k in range(n):
            angle = raw[2 * k + 1]
            if angle == ABSENT_INT16:
                out.append(complex(np.nan, np.nan))
            else:
                out.append(rect(raw[2 * k], angle * 1e-4) * factor_list[k])
        return np.array(out, dtype=np.complex128)

    return polar_int


def _encode_phasors(b: _Block, phasors: Any) -> list[float | int]:
    """Return the phasor field values of one block, in wire order."""
    pmu = b.pmu
    z = np.asarray(phasors, dtype=np.complex128)
    if z.shape != (len(pmu.phasors),):
        raise ConfigMismatchError(f"{z.shape} phasors given, {len(pmu.phasors)} configured")
    out: list[float | int] = []
    if pmu.phasor_float:
        if pmu.polar:
            for v in z.tolist():
                out.append(abs(v))
                out.append(cmath.phase(v) if v == v else math.nan)
        else:
            for v in z.tolist():
                out.append(v.real)
                out.append(v.imag)
        return out
    for v, factor in zip(z.tolist(), b.factor_list, strict=True):
        counts = v / factor if factor != 0 else complex(math.nan, math.nan)
        if pmu.polar:
            if counts != counts:
                out.append(0)
                out.append(ABSENT_INT16)
            else:
                out.append(_clip_int(abs(counts), 0, 0xFFFF))
                out.append(_clip_int(cmath.phase(counts) * 1e4, -31416, 31416))
        else:
            out.append(_clip_int(counts.real, -32767, 32767))
            out.append(_clip_int(counts.imag, -32767, 32767))
    return out


def _append_frequency(values: list[float | int], b: _Block, data: PmuData) -> None:
    """Append FREQ and DFREQ of one block."""
    if b.pmu.freq_float:
        values.append(data.frequency_hz)
        values.append(data.rocof_hz_per_s)
    else:
        values.append(_clip_int((data.frequency_hz - b.nominal_hz) * 1000.0, -32767, 32767))
        values.append(_clip_int(data.rocof_hz_per_s * 100.0, -32767, 32767))


def _encode_analogs(b: _Block, analogs: Any) -> list[float | int]:
    """Return the analog field values of one block."""
    a = np.asarray(analogs, dtype=np.float64)
    if a.shape != (len(b.pmu.analogs),):
        raise ConfigMismatchError(f"{a.shape} analogs given, {len(b.pmu.analogs)} configured")
    if b.pmu.analog_float:
        return list(a.tolist())
    scale = np.where(b.an_scale == 0.0, 1.0, b.an_scale)
    counts = (a - b.an_offset) / scale
    return [_clip_int(c, -32767, 32767) for c in counts.tolist()]


def layout_of(config: ConfigFrame) -> DataLayout:
    """Return the compiled layout of `config`, building and caching it on first use."""
    layout = config._layout
    if layout is None or not isinstance(layout, DataLayout):
        layout = DataLayout(config)
        config._layout = layout
    return layout
