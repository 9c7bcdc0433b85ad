"""Turn frames from files (pcap/pcapng, hex, raw bytes) into JSON-ready dicts for engineers."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from wams.synchrophasor.decode import Cfg3Assembler, decode_frame, peek_header
from wams.synchrophasor.errors import C37118Error
from wams.synchrophasor.frames import (
    CommandFrame,
    ConfigFrame,
    DataFrame,
    FrameType,
    HeaderFrame,
    PmuConfig,
)
from wams.synchrophasor.pcap import CaptureError, iter_capture_frames
from wams.synchrophasor.stat import MessageTimeQuality, Stat
from wams.synchrophasor.stream import StreamReader

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


def _num(value: float) -> float | None:
    """Return a JSON-safe float (None for NaN or infinity)."""
    v = float(value)
    return v if math.isfinite(v) else None


def _time_quality(fracsec: int) -> dict[str, Any]:
    """Return the message time quality of a FRACSEC word."""
    tq = MessageTimeQuality.from_byte(fracsec >> 24)
    return {
        "leap_second_direction": "delete" if tq.leap_second_direction else "add",
        "leap_second_occurred": tq.leap_second_occurred,
        "leap_second_pending": tq.leap_second_pending,
        "code": tq.code,
        "max_error_s": tq.max_error_s,
    }


def _stat(stat: int) -> dict[str, Any]:
    """Return the STAT flags as a dict."""
    flags = Stat.from_word(stat)
    return {
        "word": f"0x{stat:04x}",
        "data_error": flags.data_error,
        "pmu_sync": flags.pmu_sync,
        "sorting": "arrival" if flags.sorting else "timestamp",
        "trigger": flags.trigger,
        "trigger_reason": flags.trigger_reason,
        "config_change": flags.config_change,
        "data_modified": flags.data_modified,
        "time_quality": flags.time_quality,
        "unlock_time": flags.unlock_time,
    }


def _data_dict(frame: DataFrame, config: ConfigFrame) -> list[dict[str, Any]]:
    """Return the per-PMU measurements with names and units."""
    out = []
    for pmu_cfg, pmu in zip(config.pmus, frame.pmus, strict=True):
        phasors = []
        for ch, z in zip(pmu_cfg.phasors, pmu.phasors.tolist(), strict=True):
            phasors.append(
                {
                    "name": ch.name,
                    "unit": ch.kind,
                    "magnitude": _num(abs(z)),
                    "angle_deg": _num(math.degrees(math.atan2(z.imag, z.real))),
                    "real": _num(z.real),
                    "imag": _num(z.imag),
                }
            )
        out.append(
            {
                "station": pmu_cfg.station_name,
                "idcode": pmu_cfg.idcode,
                "stat": _stat(pmu.stat),
                "phasors": phasors,
                "frequency_hz": _num(pmu.frequency_hz),
                "rocof_hz_per_s": _num(pmu.rocof_hz_per_s),
                "analogs": [
                    {"name": ch.name, "value": _num(v)}
                    for ch, v in zip(pmu_cfg.analogs, np.asarray(pmu.analogs).tolist(), strict=True)
                ],
                "digitals": [f"0x{d:04x}" for d in pmu.digitals],
            }
        )
    return out


def _pmu_config_dict(pmu: PmuConfig) -> dict[str, Any]:
    """Return one PMU's configuration summary."""
    return {
        "station": pmu.station_name,
        "idcode": pmu.idcode,
        "format": {
            "phasors": "float" if pmu.phasor_float else "int16",
            "coordinates": "polar" if pmu.polar else "rectangular",
            "frequency": "float" if pmu.freq_float else "int16",
            "analogs": "float" if pmu.analog_float else "int16",
        },
        "nominal_hz": pmu.nominal_hz,
        "cfgcnt": pmu.cfgcnt,
        "phasors": [{"name": p.name, "unit": p.kind, "scale": p.scale} for p in pmu.phasors],
        "analogs": [{"name": a.name, "kind": a.kind, "scale": a.scale, "offset": a.offset} for a in pmu.analogs],
        "digitals": [
            {"names": d.names, "normal_mask": f"0x{d.normal_mask:04x}", "valid_mask": f"0x{d.valid_mask:04x}"}
            for d in pmu.digitals
        ],
    }


def frame_to_dict(
    frame: DataFrame | ConfigFrame | HeaderFrame | CommandFrame, config: ConfigFrame | None = None
) -> dict[str, Any]:
    """Return one decoded frame as a JSON-ready dict (data frames need their `config`)."""
    if isinstance(frame, DataFrame):
        kind = "DATA"
    elif isinstance(frame, ConfigFrame):
        kind = frame.frame_type.name
    elif isinstance(frame, HeaderFrame):
        kind = "HEADER"
    else:
        kind = "COMMAND"
    time_base = config.time_base if config is not None and isinstance(frame, DataFrame) else None
    if isinstance(frame, ConfigFrame):
        time_base = frame.time_base
    out: dict[str, Any] = {
        "frame_type": kind,
        "version": frame.version,
        "idcode": frame.idcode,
        "soc": frame.soc,
        "fracsec": frame.fracsec & 0xFFFFFF,
        "time_quality": _time_quality(frame.fracsec),
    }
    if time_base:
        t = frame.soc + (frame.fracsec & 0xFFFFFF) / time_base
        out["time"] = datetime.fromtimestamp(t, tz=UTC).isoformat()
        out["timestamp_s"] = t
    if isinstance(frame, DataFrame) and config is not None:
        out["pmus"] = _data_dict(frame, config)
    elif isinstance(frame, ConfigFrame):
        out["time_base"] = frame.time_base
        out["data_rate"] = frame.data_rate
        out["pmus"] = [_pmu_config_dict(p) for p in frame.pmus]
    elif isinstance(frame, HeaderFrame):
        out["text"] = frame.text
    elif isinstance(frame, CommandFrame):
        code = int(frame.command)
        out["command"] = getattr(frame.command, "name", f"0x{code:04x}")
        out["command_code"] = code
        if frame.extended:
            out["extended"] = frame.extended.hex()
    return out


def error_dict(exc: C37118Error, **where: Any) -> dict[str, Any]:
    """Return a decode error as a JSON-ready object."""
    return {"error": {"reason": exc.reason, "detail": exc.detail}, **where}


class FrameDecoder:
    """Decode frames of many streams in order, keeping the latest CFG-2/3 per IDCODE."""

    def __init__(self) -> None:
        self.configs: dict[int, ConfigFrame] = {}
        self._cfg3: dict[int, Cfg3Assembler] = {}

    def decode(self, raw: bytes) -> dict[str, Any] | None:
        """Return the dict of one frame (None for a CFG-3 fragment still incomplete)."""
        head = peek_header(raw)
        frame: DataFrame | ConfigFrame | HeaderFrame | CommandFrame | None
        if head.frame_type is FrameType.CFG3:
            frame = self._cfg3.setdefault(head.idcode, Cfg3Assembler()).feed(raw)
            if frame is None:
                return None
        else:
            frame = decode_frame(raw, self.configs.get(head.idcode))
        if isinstance(frame, ConfigFrame) and (frame.cfg_type >= 2 or head.idcode not in self.configs):
            self.configs[head.idcode] = frame
        return frame_to_dict(frame, self.configs.get(head.idcode))


def _decode_chunks(frames: Iterator[tuple[bytes, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Decode frames with where-information, turning codec errors into error objects."""
    decoder = FrameDecoder()
    for raw, where in frames:
        try:
            out = decoder.decode(raw)
        except C37118Error as exc:
            yield error_dict(exc, **where)
            continue
        if out is not None:
            yield {**where, **out}


def parse_hex(text: str) -> bytes:
    """Return the bytes of hex text (whitespace, '0x' and ':' separators allowed)."""
    cleaned = re.sub(r"0x|[\s:,]", "", text)
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise C37118Error(f"not hex: {exc}", reason="bad_hex") from exc


def decode_bytes(data: bytes) -> Iterator[dict[str, Any]]:
    """Decode a raw byte stream of back-to-back frames; rejected bytes become error objects."""
    reader = StreamReader()
    frames = reader.feed(data)
    offsets: list[tuple[bytes, dict[str, Any]]] = []
    pos = 0
    for raw in frames:
        at = data.find(raw, pos)
        offsets.append((raw, {"offset": at}))
        pos = at + len(raw) if at >= 0 else pos
    yield from _decode_chunks(iter(offsets))
    yield from _reader_errors(reader)


def _reader_errors(reader: StreamReader) -> Iterator[dict[str, Any]]:
    """Return error objects for what a stream reader skipped."""
    for reason, count in sorted(reader.rejected.items()):
        yield {"error": {"reason": reason, "detail": "bytes skipped while looking for frames", "count": count}}
    if reader.buffered:
        yield {"error": {"reason": "truncated", "detail": f"{reader.buffered} bytes of an unfinished frame"}}


def decode_capture_file(path: str | Path | bytes) -> Iterator[dict[str, Any]]:
    """Decode every frame of a pcap/pcapng capture (TCP reassembled per flow)."""
    readers: dict[Any, StreamReader] = {}

    def frames() -> Iterator[tuple[bytes, dict[str, Any]]]:
        for cf in iter_capture_frames(path, readers):
            src, sport, dst, dport, proto = cf.flow
            yield cf.data, {"capture_time_s": cf.timestamp_s, "flow": f"{proto} {src}:{sport} > {dst}:{dport}"}

    yield from _decode_chunks(frames())
    for flow, reader in readers.items():
        if reader.frames_ok == 0:
            continue  # other traffic in the capture, not C37.118
        for err in _reader_errors(reader):
            src, sport, dst, dport, proto = flow
            yield {**err, "flow": f"{proto} {src}:{sport} > {dst}:{dport}"}


def decode_any(data: bytes, name: str = "") -> Iterator[dict[str, Any]]:
    """Decode a capture, hex text or raw frames, chosen from the content (and the file name)."""
    if data[:4] in PCAP_MAGICS:
        try:
            yield from decode_capture_file(data)
        except CaptureError as exc:
            yield error_dict(exc)
        return
    if name.endswith(".hex") or (data and data[:1] != b"\xaa" and _looks_hex(data)):
        try:
            raw = parse_hex(data.decode("ascii", errors="replace"))
        except C37118Error as exc:
            yield error_dict(exc)
            return
        yield from decode_bytes(raw)
        return
    yield from decode_bytes(data)


def _looks_hex(data: bytes) -> bool:
    """Return True when the bytes are hex digits and separators only."""
    return re.fullmatch(rb"[\s0-9a-fA-Fx:,]+", data[:4096]) is not None
