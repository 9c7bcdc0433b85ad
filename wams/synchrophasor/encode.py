"""Encode C37.118 frames (every type, versions 1 and 2) to bytes."""

from __future__ import annotations

import math
import struct

from wams.synchrophasor.crc import crc_ccitt
from wams.synchrophasor.errors import EncodeError, MissingConfigError
from wams.synchrophasor.frames import (
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    FrameType,
    HeaderFrame,
    PmuConfig,
)
from wams.synchrophasor.layout import anunit_of, layout_of, phunit_of

_HEAD = struct.Struct(">HHHII")
MAX_FRAME_SIZE = 0xFFFF


def encode_frame(
    frame: DataFrame | ConfigFrame | HeaderFrame | CommandFrame,
    config: ConfigFrame | None = None,
) -> bytes:
    """Encode any frame to bytes (SYNC..CHK); data frames need their `config`."""
    if isinstance(frame, DataFrame):
        if config is None:
            raise MissingConfigError("encoding a data frame needs its configuration")
        return layout_of(config).encode(frame)
    if isinstance(frame, ConfigFrame):
        return encode_config(frame)
    if isinstance(frame, HeaderFrame):
        payload = frame.text.encode("utf-8")
        return wrap_frame(FrameType.HEADER, frame.version, frame.idcode, frame.soc, frame.fracsec, payload)
    if isinstance(frame, CommandFrame):
        payload = int(frame.command).to_bytes(2, "big") + bytes(frame.extended)
        return wrap_frame(FrameType.COMMAND, frame.version, frame.idcode, frame.soc, frame.fracsec, payload)
    raise EncodeError(f"cannot encode {type(frame).__name__}")


def wrap_frame(frame_type: FrameType, version: int, idcode: int, soc: int, fracsec: int, payload: bytes) -> bytes:
    """Add SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC before `payload` and CHK after it."""
    size = 16 + len(payload)
    if size > MAX_FRAME_SIZE:
        raise EncodeError(f"frame of {size} bytes exceeds 65535")
    if not 1 <= version <= 15:
        raise EncodeError(f"version {version} is not 1..15")
    sync = 0xAA00 | (int(frame_type) << 4) | version
    try:
        head = _HEAD.pack(sync, size, idcode, soc, fracsec)
    except (struct.error, OverflowError) as exc:
        raise EncodeError(str(exc)) from exc
    body = head + payload
    return body + crc_ccitt(body).to_bytes(2, "big")


def _name16(name: str) -> bytes:
    """Return a CFG-1/2 name: 16 bytes, space padded."""
    raw = name.encode("latin-1", errors="replace")
    if len(raw) > 16:
        raise EncodeError(f"name {name!r} is longer than 16 bytes")
    return raw.ljust(16, b" ")


def _name_var(name: str) -> bytes:
    """Return a CFG-3 name: length byte then UTF-8."""
    raw = name.encode("utf-8")
    if len(raw) > 255:
        raise EncodeError(f"name {name!r} is longer than 255 bytes")
    return bytes([len(raw)]) + raw


def _digital_names(words: list[DigitalWord]) -> list[str]:
    """Return the 16 names of each digital word, padded to 16."""
    names: list[str] = []
    for word in words:
        padded = (list(word.names) + [""] * 16)[:16]
        names.extend(padded)
    return names


def _pmu_counts(pmu: PmuConfig) -> bytes:
    """Return FORMAT PHNMR ANNMR DGNMR."""
    return struct.pack(">HHHH", pmu.format_word, len(pmu.phasors), len(pmu.analogs), len(pmu.digitals))


def _pmu_block_cfg12(pmu: PmuConfig) -> bytes:
    """Return fields 8-19 of one PMU in CFG-1/2."""
    parts = [_name16(pmu.station_name), struct.pack(">H", pmu.idcode), _pmu_counts(pmu)]
    parts += [_name16(ch.name) for ch in pmu.phasors]
    parts += [_name16(ch.name) for ch in pmu.analogs]
    parts += [_name16(n) for n in _digital_names(pmu.digitals)]
    for ph in pmu.phasors:
        parts.append(struct.pack(">I", (0 if ph.kind == "V" else 1) << 24 | phunit_of(ph.scale)))
    for an in pmu.analogs:
        parts.append(struct.pack(">I", (an.kind & 0xFF) << 24 | (anunit_of(an.scale) & 0xFFFFFF)))
    for dw in pmu.digitals:
        parts.append(struct.pack(">HH", dw.normal_mask, dw.valid_mask))
    parts.append(struct.pack(">HH", _fnom(pmu), pmu.cfgcnt))
    return b"".join(parts)


def _fnom(pmu: PmuConfig) -> int:
    """Return the FNOM word: bit 0 set for 50 Hz."""
    if pmu.nominal_hz not in (50, 60):
        raise EncodeError(f"nominal frequency {pmu.nominal_hz} Hz is not 50 or 60")
    return 1 if pmu.nominal_hz == 50 else 0


def _pmu_block_cfg3(pmu: PmuConfig) -> bytes:
    """Return fields 9-27 of one PMU in CFG-3."""
    gpmu = bytes(pmu.global_pmu_id)
    if len(gpmu) != 16:
        raise EncodeError("global_pmu_id must be 16 bytes")
    parts = [_name_var(pmu.station_name), struct.pack(">H", pmu.idcode), gpmu, _pmu_counts(pmu)]
    parts += [_name_var(ch.name) for ch in pmu.phasors]
    parts += [_name_var(ch.name) for ch in pmu.analogs]
    parts += [_name_var(n) for n in _digital_names(pmu.digitals)]
    for ph in pmu.phasors:
        ptype = (0x8 if ph.kind == "A" else 0) | (ph.component & 0x7)
        parts.append(
            struct.pack(
                ">HBBff",
                ph.modification_flags,
                ptype,
                ph.user_flags,
                ph.scale,
                ph.angle_offset_rad,
            )
        )
    for an in pmu.analogs:
        parts.append(struct.pack(">ff", an.scale, an.offset))
    for dw in pmu.digitals:
        parts.append(struct.pack(">HH", dw.normal_mask, dw.valid_mask))
    svc = pmu.svc_class.encode("latin-1")[:1] or b" "
    parts.append(
        struct.pack(
            ">fffciiHH",
            _finite_or_inf(pmu.latitude_deg),
            _finite_or_inf(pmu.longitude_deg),
            _finite_or_inf(pmu.elevation_m),
            svc,
            pmu.window_us,
            pmu.group_delay_us,
            _fnom(pmu),
            pmu.cfgcnt,
        )
    )
    return b"".join(parts)


def _finite_or_inf(value: float) -> float:
    """Return `value`, or +inf for an unspecified (NaN) location."""
    return math.inf if value != value else value


def config_payload(config: ConfigFrame) -> bytes:
    """Return the fields after FRACSEC (and after CONT_IDX for CFG-3), up to DATA_RATE."""
    try:
        head = struct.pack(">IH", (config.time_base_flags & 0xFF) << 24 | config.time_base, len(config.pmus))
        if config.cfg_type == 3:
            blocks = [_pmu_block_cfg3(p) for p in config.pmus]
        else:
            blocks = [_pmu_block_cfg12(p) for p in config.pmus]
        tail = struct.pack(">h", config.data_rate)
    except (struct.error, OverflowError) as exc:
        raise EncodeError(str(exc)) from exc
    return head + b"".join(blocks) + tail


def encode_config(config: ConfigFrame) -> bytes:
    """Encode a CFG-1, CFG-2 or CFG-3 frame (CFG-3 as one frame, CONT_IDX 0)."""
    payload = config_payload(config)
    version = config.version
    if config.cfg_type == 3:
        payload = struct.pack(">H", 0) + payload
        version = max(version, 2)
    elif config.cfg_type not in (1, 2):
        raise EncodeError(f"cfg_type {config.cfg_type} is not 1, 2 or 3")
    return wrap_frame(config.frame_type, version, config.idcode, config.soc, config.fracsec, payload)


def encode_cfg3_fragments(config: ConfigFrame, max_frame_size: int = MAX_FRAME_SIZE) -> list[bytes]:
    """Encode a CFG-3, split into frames of at most `max_frame_size` bytes when needed.

    One frame gets CONT_IDX 0; a split gets 1, 2, ... and 0xFFFF on the last frame.
    """
    payload = config_payload(config)
    room = max_frame_size - 18
    if room < 1:
        raise EncodeError("max_frame_size too small for a CFG-3 fragment")
    version = max(config.version, 2)
    if len(payload) <= room:
        return [encode_config(config)]
    chunks = [payload[i : i + room] for i in range(0, len(payload), room)]
    if len(chunks) >= 0xFFFF:
        raise EncodeError("CFG-3 too large")
    frames = []
    for k, chunk in enumerate(chunks, start=1):
        idx = 0xFFFF if k == len(chunks) else k
        frames.append(
            wrap_frame(
                FrameType.CFG3,
                version,
                config.idcode,
                config.soc,
                config.fracsec,
                struct.pack(">H", idx) + chunk,
            )
        )
    return frames
