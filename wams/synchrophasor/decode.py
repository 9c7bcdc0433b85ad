"""Decode C37.118 frames (every type, versions 1 and 2) from bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from wams.synchrophasor.crc import crc_ccitt
from wams.synchrophasor.errors import (
    C37118Error,
    CrcError,
    FrameSizeError,
    MissingConfigError,
    SyncError,
    TruncatedFrameError,
)
from wams.synchrophasor.frames import (
    AnalogChannel,
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    FrameType,
    HeaderFrame,
    PhasorChannel,
    PmuConfig,
)
from wams.synchrophasor.layout import layout_of

MIN_FRAME_SIZE = 16  # SYNC FRAMESIZE IDCODE SOC FRACSEC CHK
_HEAD = struct.Struct(">HHHII")
_COMMAND_CODES = {int(c) for c in Command}


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The fields common to every frame."""

    frame_type: FrameType
    version: int
    framesize: int
    idcode: int
    soc: int
    fracsec: int


def peek_header(buf: bytes | bytearray | memoryview) -> FrameHeader:
    """Read the common header of a frame without checking size or CRC."""
    if len(buf) < 14:
        raise TruncatedFrameError(f"{len(buf)} bytes is shorter than a frame header")
    sync, framesize, idcode, soc, fracsec = _HEAD.unpack_from(buf)
    if sync >> 8 != 0xAA:
        raise SyncError(f"first byte 0x{sync >> 8:02x} is not 0xAA")
    if sync & 0x80:
        raise SyncError("reserved SYNC bit 7 is set", reason="unknown_frame_type")
    code = (sync >> 4) & 0x7
    if code > 5:
        raise SyncError(f"frame type {code} is not defined", reason="unknown_frame_type")
    version = sync & 0xF
    if version == 0:
        raise SyncError("version 0 is not defined", reason="bad_version")
    return FrameHeader(FrameType(code), version, framesize, idcode, soc, fracsec)


def check_frame(buf: bytes | bytearray | memoryview) -> FrameHeader:
    """Check SYNC, FRAMESIZE against the length, and CHK; return the header."""
    head = peek_header(buf)
    if head.framesize < MIN_FRAME_SIZE or head.framesize != len(buf):
        raise FrameSizeError(f"FRAMESIZE {head.framesize} with {len(buf)} bytes at hand")
    crc = crc_ccitt(buf[:-2])
    chk = buf[-2] << 8 | buf[-1]
    if crc != chk:
        raise CrcError(f"CHK {chk:04x} != computed {crc:04x}")
    return head


def decode_frame(
    buf: bytes | bytearray | memoryview, config: ConfigFrame | None = None
) -> DataFrame | ConfigFrame | HeaderFrame | CommandFrame:
    """Decode one whole frame (SYNC..CHK); data frames need the stream's `config`.

    Raises `C37118Error` (with `.reason`) on anything malformed, never another exception type.
    """
    if config is not None and len(buf) > 1 and buf[0] == 0xAA and not buf[1] & 0xF0 and buf[1] & 0x0F:
        # Data frame fast path: the layout checks size, FRAMESIZE and CRC itself.
        return layout_of(config).decode(buf)
    head = check_frame(buf)
    ft = head.frame_type
    if ft is FrameType.DATA:
        if config is None:
            raise MissingConfigError(f"data frame of IDCODE {head.idcode} without configuration")
        return layout_of(config).decode(buf, check_crc=False)
    if ft in (FrameType.CFG1, FrameType.CFG2):
        return _decode_cfg12(buf, head)
    if ft is FrameType.CFG3:
        return _decode_cfg3(buf, head)
    if ft is FrameType.HEADER:
        text = bytes(buf[14:-2]).decode("utf-8", errors="replace")
        return HeaderFrame(head.idcode, head.soc, head.fracsec, text, head.version)
    return _decode_command(buf, head)


def _decode_command(buf: bytes | bytearray | memoryview, head: FrameHeader) -> CommandFrame:
    """Decode CMD and EXTFRAME."""
    if len(buf) < 18:
        raise TruncatedFrameError("command frame without CMD word")
    code = buf[14] << 8 | buf[15]
    command: Command | int = Command(code) if code in _COMMAND_CODES else code
    return CommandFrame(head.idcode, head.soc, head.fracsec, command, bytes(buf[16:-2]), head.version)


class _Reader:
    """Sequential big-endian reader over one frame that raises `TruncatedFrameError`."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int, end: int) -> None:
        self.buf = buf
        self.pos = pos
        self.end = end

    def take(self, fmt: struct.Struct) -> tuple[int | float, ...]:
        """Unpack `fmt` at the cursor and advance."""
        if self.pos + fmt.size > self.end:
            raise TruncatedFrameError(f"field at byte {self.pos} runs past the frame end")
        values = fmt.unpack_from(self.buf, self.pos)
        self.pos += fmt.size
        return values

    def raw(self, n: int) -> bytes:
        """Return the next `n` bytes and advance."""
        if self.pos + n > self.end:
            raise TruncatedFrameError(f"{n} bytes at {self.pos} run past the frame end")
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def name16(self) -> str:
        """Read a fixed 16-byte CFG-1/2 name."""
        return self.raw(16).decode("latin-1").rstrip(" \x00")

    def name_var(self) -> str:
        """Read a CFG-3 length-prefixed UTF-8 name."""
        n = self.raw(1)[0]
        return self.raw(n).decode("utf-8", errors="replace")


_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_TB_NUM = struct.Struct(">IH")
_COUNTS = struct.Struct(">HHHH")  # IDCODE? no: FORMAT PHNMR ANNMR DGNMR
_ID_FMT = struct.Struct(">HHHHH")  # IDCODE FORMAT PHNMR ANNMR DGNMR
_FNOM_CFG = struct.Struct(">HH")
_PHSCALE = struct.Struct(">HBBff")
_ANSCALE = struct.Struct(">ff")
_DIGUNIT = struct.Struct(">HH")
_CFG3_TAIL = struct.Struct(">fffciiHH")


def _apply_format(pmu: PmuConfig, fmt: int) -> PmuConfig:
    """Set the PmuConfig format flags from a FORMAT word."""
    pmu.freq_float = bool(fmt & 0x8)
    pmu.analog_float = bool(fmt & 0x4)
    pmu.phasor_float = bool(fmt & 0x2)
    pmu.polar = bool(fmt & 0x1)
    return pmu


def _check_counts(rd: _Reader, n_ph: int, n_an: int, n_dg: int, min_name: int) -> None:
    """Reject channel counts that cannot fit in the rest of the frame (keeps work bounded)."""
    need = (n_ph + n_an + 16 * n_dg) * min_name + 4 * n_ph + 4 * n_an + 4 * n_dg
    if rd.pos + need > rd.end:
        raise TruncatedFrameError(f"{n_ph}/{n_an}/{n_dg} channels cannot fit in the frame")


def _digital_words(names: list[str], masks: list[tuple[int, int]]) -> list[DigitalWord]:
    """Group 16 names per digital word with its masks."""
    return [DigitalWord(names[16 * k : 16 * k + 16], normal, valid) for k, (normal, valid) in enumerate(masks)]


def _decode_cfg12(buf: bytes | bytearray | memoryview, head: FrameHeader) -> ConfigFrame:
    """Decode a CFG-1 or CFG-2 frame."""
    rd = _Reader(buf, 14, len(buf) - 2)
    time_base_word, num_pmu = rd.take(_TB_NUM)
    pmus = []
    for _ in range(int(num_pmu)):
        station = rd.name16()
        idcode, fmt, n_ph, n_an, n_dg = (int(v) for v in rd.take(_ID_FMT))
        _check_counts(rd, n_ph, n_an, n_dg, 16)
        ph_names = [rd.name16() for _ in range(n_ph)]
        an_names = [rd.name16() for _ in range(n_an)]
        dg_names = [rd.name16() for _ in range(16 * n_dg)]
        phasors = []
        for name in ph_names:
            (word,) = rd.take(_U32)
            w = int(word)
            phasors.append(PhasorChannel(name, "V" if w >> 24 == 0 else "A", (w & 0xFFFFFF) * 1e-5))
        analogs = []
        for name in an_names:
            (word,) = rd.take(_U32)
            w = int(word)
            value = w & 0xFFFFFF
            if value & 0x800000:
                value -= 0x1000000
            analogs.append(AnalogChannel(name, w >> 24, float(value)))
        masks = [(int(a), int(b)) for a, b in (rd.take(_DIGUNIT) for _ in range(n_dg))]
        fnom, cfgcnt = rd.take(_FNOM_CFG)
        pmus.append(
            _apply_format(
                PmuConfig(
                    station_name=station,
                    idcode=idcode,
                    phasors=phasors,
                    analogs=analogs,
                    digitals=_digital_words(dg_names, masks),
                    nominal_hz=50 if int(fnom) & 1 else 60,
                    cfgcnt=int(cfgcnt),
                ),
                fmt,
            )
        )
    (data_rate,) = rd.take(_I16)
    if rd.pos != rd.end:
        raise FrameSizeError(f"{rd.end - rd.pos} bytes left after DATA_RATE")
    tb = int(time_base_word)
    return ConfigFrame(
        idcode=head.idcode,
        soc=head.soc,
        fracsec=head.fracsec,
        time_base=_checked_time_base(tb & 0xFFFFFF),
        data_rate=int(data_rate),
        pmus=pmus,
        version=head.version,
        cfg_type=2 if head.frame_type is FrameType.CFG2 else 1,
        time_base_flags=tb >> 24,
    )


def _checked_time_base(time_base: int) -> int:
    """Reject a zero TIME_BASE, which would make every time stamp a division by zero."""
    if time_base == 0:
        raise C37118Error("TIME_BASE is 0", reason="bad_time_base")
    return time_base


def _decode_cfg3(buf: bytes | bytearray | memoryview, head: FrameHeader) -> ConfigFrame:
    """Decode a whole (unfragmented) CFG-3 frame."""
    (cont_idx,) = _U16.unpack_from(buf, 14)
    if cont_idx != 0:
        raise C37118Error(
            f"CFG-3 fragment CONT_IDX={cont_idx}; join fragments with Cfg3Assembler",
            reason="cfg3_fragment",
        )
    return parse_cfg3_payload(bytes(buf[16:-2]), head, cont_idx)


def parse_cfg3_payload(payload: bytes, head: FrameHeader, cont_idx: int = 0) -> ConfigFrame:
    """Parse the CFG-3 fields after CONT_IDX (TIME_BASE .. DATA_RATE)."""
    rd = _Reader(payload, 0, len(payload))
    time_base_word, num_pmu = rd.take(_TB_NUM)
    pmus = []
    for _ in range(int(num_pmu)):
        station = rd.name_var()
        (idcode,) = rd.take(_U16)
        gpmu = rd.raw(16)
        fmt, n_ph, n_an, n_dg = (int(v) for v in rd.take(_COUNTS))
        _check_counts(rd, n_ph, n_an, n_dg, 1)
        ph_names = [rd.name_var() for _ in range(n_ph)]
        an_names = [rd.name_var() for _ in range(n_an)]
        dg_names = [rd.name_var() for _ in range(16 * n_dg)]
        phasors = []
        for name in ph_names:
            mod, ptype, user, scale, theta = rd.take(_PHSCALE)
            phasors.append(
                PhasorChannel(
                    name,
                    "A" if int(ptype) & 0x8 else "V",
                    float(scale),
                    float(theta),
                    component=int(ptype) & 0x7,
                    modification_flags=int(mod),
                    user_flags=int(user),
                )
            )
        analogs = []
        for name in an_names:
            m, b = rd.take(_ANSCALE)
            analogs.append(AnalogChannel(name, 0, float(m), float(b)))
        masks = [(int(a), int(b)) for a, b in (rd.take(_DIGUNIT) for _ in range(n_dg))]
        lat, lon, elev, svc, window, delay, fnom, cfgcnt = rd.take(_CFG3_TAIL)
        pmus.append(
            _apply_format(
                PmuConfig(
                    station_name=station,
                    idcode=int(idcode),
                    phasors=phasors,
                    analogs=analogs,
                    digitals=_digital_words(dg_names, masks),
                    nominal_hz=50 if int(fnom) & 1 else 60,
                    cfgcnt=int(cfgcnt),
                    global_pmu_id=gpmu,
                    latitude_deg=float(lat),
                    longitude_deg=float(lon),
                    elevation_m=float(elev),
                    svc_class=bytes(svc).decode("latin-1"),  # type: ignore[arg-type]
                    window_us=int(window),
                    group_delay_us=int(delay),
                ),
                fmt,
            )
        )
    (data_rate,) = rd.take(_I16)
    if rd.pos != rd.end:
        raise FrameSizeError(f"{rd.end - rd.pos} bytes left after DATA_RATE")
    tb = int(time_base_word)
    return ConfigFrame(
        idcode=head.idcode,
        soc=head.soc,
        fracsec=head.fracsec,
        time_base=_checked_time_base(tb & 0xFFFFFF),
        data_rate=int(data_rate),
        pmus=pmus,
        version=head.version,
        cfg_type=3,
        cont_idx=cont_idx,
        time_base_flags=tb >> 24,
    )


class Cfg3Assembler:
    """Join a CFG-3 sent as several frames (CONT_IDX 1, 2, ..., 0xFFFF) into one ConfigFrame.

    Feed every whole CFG-3 frame of one stream to `feed()`; it returns the configuration once
    the last fragment arrives, else None. Out-of-order fragments restart the assembly.
    """

    MAX_FRAGMENTS = 64

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._first: FrameHeader | None = None

    def feed(self, buf: bytes | bytearray | memoryview) -> ConfigFrame | None:
        """Add one CFG-3 frame; return the joined configuration when complete."""
        head = check_frame(buf)
        if head.frame_type is not FrameType.CFG3:
            raise C37118Error("not a CFG-3 frame", reason="not_cfg3")
        (cont_idx,) = _U16.unpack_from(buf, 14)
        payload = bytes(buf[16:-2])
        if cont_idx == 0:
            self._parts, self._first = [], None
            return parse_cfg3_payload(payload, head)
        if cont_idx == 1:
            self._parts, self._first = [payload], head
            return None
        expected = len(self._parts) + 1
        if self._first is None or (cont_idx != 0xFFFF and cont_idx != expected):
            self._parts, self._first = [], None
            raise C37118Error(f"CFG-3 fragment {cont_idx} out of order", reason="cfg3_fragment")
        self._parts.append(payload)
        if len(self._parts) > self.MAX_FRAGMENTS:
            self._parts, self._first = [], None
            raise C37118Error("too many CFG-3 fragments", reason="cfg3_fragment")
        if cont_idx != 0xFFFF:
            return None
        first, parts = self._first, self._parts
        self._parts, self._first = [], None
        return parse_cfg3_payload(b"".join(parts), first)
