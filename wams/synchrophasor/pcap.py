"""Minimal pcap / pcapng reader: TCP reassembly per flow and UDP payloads, for C37.118 captures."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wams.synchrophasor.errors import C37118Error
from wams.synchrophasor.stream import StreamReader

_LINK_NULL = 0
_LINK_ETHERNET = 1
_LINK_RAW = 101
_LINK_RAW_ALT = 12
_LINK_LOOP = 108
_LINK_SLL = 113
_LINK_SLL2 = 276
_LINK_IPV4 = 228
_LINK_IPV6 = 229
MAX_OUT_OF_ORDER = 256  # segments held per flow waiting for a gap to fill


class CaptureError(C37118Error):
    """Reject a file that is not a pcap or pcapng capture."""

    default_reason = "bad_capture"


Flow = tuple[str, int, str, int, str]  # src, sport, dst, dport, "tcp" | "udp"


@dataclass(slots=True)
class Packet:
    """One TCP segment or UDP datagram payload of a capture."""

    timestamp_s: float
    flow: Flow
    payload: bytes
    tcp_seq: int = 0
    tcp_syn: bool = False


@dataclass(slots=True)
class CapturedFrame:
    """One whole C37.118 frame found in a capture, with the time of the packet that completed it."""

    timestamp_s: float
    flow: Flow
    data: bytes


def _records_pcap(data: bytes) -> Iterator[tuple[int, float, bytes]]:
    """Yield (linktype, time s, packet bytes) of a classic pcap file."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise CaptureError("not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    if len(data) < 24:
        raise CaptureError("pcap header truncated")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF
    rec = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, pos)
        pos += 16
        if pos + incl > len(data):
            break
        yield linktype, sec + frac * (1e-9 if nano else 1e-6), data[pos : pos + incl]
        pos += incl


def _records_pcapng(data: bytes) -> Iterator[tuple[int, float, bytes]]:
    """Yield (linktype, time s, packet bytes) of a pcapng file (EPB and SPB blocks)."""
    pos = 0
    endian = "<"
    interfaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
    while pos + 12 <= len(data):
        block_type = struct.unpack_from(endian + "I", data, pos)[0]
        if block_type == 0x0A0D0D0A:
            bom = data[pos + 8 : pos + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        block_len = struct.unpack_from(endian + "I", data, pos + 4)[0]
        if block_len < 12 or pos + block_len > len(data):
            break
        body = data[pos + 8 : pos + block_len - 4]
        if block_type == 1 and len(body) >= 8:
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            interfaces.append((linktype, _if_tsresol(body[8:], endian)))
        elif block_type == 6 and len(body) >= 20:
            iface, ts_hi, ts_lo, cap_len, _ = struct.unpack_from(endian + "IIIII", body, 0)
            if iface < len(interfaces):
                linktype, tick = interfaces[iface]
                yield linktype, ((ts_hi << 32) | ts_lo) * tick, body[20 : 20 + cap_len]
        elif block_type == 3 and len(body) >= 4 and interfaces:
            orig_len = struct.unpack_from(endian + "I", body, 0)[0]
            yield interfaces[0][0], 0.0, body[4 : 4 + orig_len]
        pos += block_len


def _if_tsresol(options: bytes, endian: str) -> float:
    """Return seconds per timestamp tick from an IDB's if_tsresol option (default 1 us)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = options[pos + 4]
            return float(2.0 ** -(value & 0x7F)) if value & 0x80 else float(10.0**-value)
        pos += 4 + ((length + 3) & ~3)
    return 1e-6


def _network_layer(linktype: int, pkt: bytes) -> tuple[int, bytes] | None:
    """Return (ethertype, network packet) for the link types seen in practice."""
    if linktype == _LINK_ETHERNET:
        if len(pkt) < 14:
            return None
        ethertype = pkt[12] << 8 | pkt[13]
        off = 14
        while ethertype in (0x8100, 0x88A8) and len(pkt) >= off + 4:
            ethertype = pkt[off + 2] << 8 | pkt[off + 3]
            off += 4
        return ethertype, pkt[off:]
    if linktype in (_LINK_RAW, _LINK_RAW_ALT, _LINK_IPV4, _LINK_IPV6):
        if not pkt:
            return None
        return (0x0800 if pkt[0] >> 4 == 4 else 0x86DD), pkt
    if linktype in (_LINK_NULL, _LINK_LOOP):
        if len(pkt) < 4:
            return None
        return (0x0800 if pkt[4] >> 4 == 4 else 0x86DD), pkt[4:]
    if linktype == _LINK_SLL and len(pkt) >= 16:
        return pkt[14] << 8 | pkt[15], pkt[16:]
    if linktype == _LINK_SLL2 and len(pkt) >= 20:
        return pkt[0] << 8 | pkt[1], pkt[20:]
    return None


def _transport(ethertype: int, net: bytes) -> tuple[str, str, int, bytes] | None:
    """Return (src, dst, ip protocol, transport segment) of an IPv4/IPv6 packet."""
    if ethertype == 0x0800 and len(net) >= 20:
        ihl = (net[0] & 0xF) * 4
        total = net[2] << 8 | net[3]
        if (net[6] & 0x1F) or net[7]:  # a fragment other than a whole datagram: skip
            return None
        src = ".".join(str(b) for b in net[12:16])
        dst = ".".join(str(b) for b in net[16:20])
        end = min(len(net), total) if total else len(net)
        return src, dst, net[9], net[ihl:end]
    if ethertype == 0x86DD and len(net) >= 40:
        plen = net[4] << 8 | net[5]
        src = net[8:24].hex()
        dst = net[24:40].hex()
        return src, dst, net[6], net[40 : 40 + plen]
    return None


def read_packets(source: str | Path | bytes) -> Iterator[Packet]:
    """Yield every TCP segment and UDP datagram payload of a pcap/pcapng file, in file order."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        records = _records_pcapng(data)
    else:
        records = _records_pcap(data)
    for linktype, ts, pkt in records:
        net = _network_layer(linktype, pkt)
        if net is None:
            continue
        tr = _transport(*net)
        if tr is None:
            continue
        src, dst, proto, seg = tr
        if proto == 6 and len(seg) >= 20:
            sport, dport, seq = struct.unpack_from(">HHI", seg, 0)
            off = (seg[12] >> 4) * 4
            syn = bool(seg[13] & 0x02)
            yield Packet(ts, (src, sport, dst, dport, "tcp"), bytes(seg[off:]), seq, syn)
        elif proto == 17 and len(seg) >= 8:
            sport, dport, ulen = struct.unpack_from(">HHH", seg, 0)
            end = min(len(seg), ulen) if ulen >= 8 else len(seg)
            yield Packet(ts, (src, sport, dst, dport, "udp"), bytes(seg[8:end]))


@dataclass(slots=True)
class _TcpFlow:
    """Reassembly state of one TCP direction."""

    next_seq: int | None = None
    pending: dict[int, bytes] = field(default_factory=dict)


def _rel(seq: int, base: int) -> int:
    """Return seq - base as a signed 32-bit sequence-space distance."""
    d = (seq - base) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


def _drain(state: _TcpFlow, out: bytearray, stale: list[bytes]) -> None:
    """Append every held segment that starts at next_seq; set aside those overtaken meanwhile.

    A held segment that starts inside bytes already taken disagrees with the stream (a broken or
    edited capture): it goes to `stale`, where whole frames it holds on its own can still be read,
    as Wireshark does.
    """
    assert state.next_seq is not None
    progressed = True
    while progressed and state.pending:
        progressed = False
        for seq in list(state.pending):
            start = _rel(state.next_seq, seq)  # bytes of this segment already in the stream
            if start < 0:
                continue
            data = state.pending.pop(seq)
            if start == 0:
                out += data
                state.next_seq = (state.next_seq + len(data)) & 0xFFFFFFFF
                progressed = True
            elif start < len(data):
                stale.append(data)


def _reassemble(state: _TcpFlow, pkt: Packet, stale: list[bytes]) -> bytes:
    """Return the in-order bytes this segment adds to its flow (retransmissions trimmed).

    Segments after a gap are held (at most MAX_OUT_OF_ORDER); a gap that never fills is skipped
    when the hold is full, and the frame reader resynchronises on the next SYNC.
    """
    seq = pkt.tcp_seq
    if pkt.tcp_syn:
        seq = (seq + 1) & 0xFFFFFFFF
        state.next_seq = seq
        state.pending.clear()
    payload = pkt.payload
    if not payload:
        return b""
    if state.next_seq is None:
        state.next_seq = seq
    out = bytearray()
    ahead = _rel(seq, state.next_seq)
    if ahead > 0:
        state.pending[seq] = payload
        if len(state.pending) < MAX_OUT_OF_ORDER:
            return b""
        state.next_seq = min(state.pending, key=lambda s: _rel(s, state.next_seq or 0))
    elif ahead < 0:  # a retransmission: keep only the bytes not seen yet
        if -ahead >= len(payload):
            return b""
        payload = payload[-ahead:]
        seq = state.next_seq
        state.pending[seq] = payload
    else:
        state.pending[seq] = payload
    _drain(state, out, stale)
    return bytes(out)


def _flush(state: _TcpFlow, stale: list[bytes]) -> bytes:
    """Return the held segments at the end of a capture, skipping the gaps between them."""
    out = bytearray()
    while state.pending and state.next_seq is not None:
        base = state.next_seq
        state.next_seq = min(state.pending, key=lambda s: _rel(s, base))
        if _rel(state.next_seq, base) < 0:
            state.next_seq = base
        _drain(state, out, stale)
        if state.pending and state.next_seq == base:
            state.pending.clear()
    return bytes(out)


def iter_capture_frames(
    source: str | Path | bytes, readers: dict[Flow, StreamReader] | None = None
) -> Iterator[CapturedFrame]:
    """Yield every whole, CRC-checked C37.118 frame of a capture, TCP reassembled per flow.

    Pass a dict as `readers` to see each flow's `StreamReader` counters afterwards.
    """
    readers = {} if readers is None else readers
    flows: dict[Flow, _TcpFlow] = {}
    last_ts = 0.0
    for pkt in read_packets(source):
        stale: list[bytes] = []
        if pkt.flow[4] == "tcp":
            state = flows.setdefault(pkt.flow, _TcpFlow())
            chunk = _reassemble(state, pkt, stale)
        else:
            chunk = pkt.payload
        for segment in stale:
            for frame in StreamReader().feed(segment):
                yield CapturedFrame(pkt.timestamp_s, pkt.flow, frame)
        if not chunk:
            continue
        reader = readers.get(pkt.flow)
        if reader is None:
            reader = readers[pkt.flow] = StreamReader()
        if pkt.flow[4] == "udp":
            reader.reset()  # a datagram holds whole frames; never join across datagrams
        for frame in reader.feed(chunk):
            yield CapturedFrame(pkt.timestamp_s, pkt.flow, frame)
        last_ts = pkt.timestamp_s
    for flow, state in flows.items():
        stale = []
        rest = _flush(state, stale)
        for segment in stale:
            for frame in StreamReader().feed(segment):
                yield CapturedFrame(last_ts, flow, frame)
        if rest:
            reader = readers.setdefault(flow, StreamReader())
            for frame in reader.feed(rest):
                yield CapturedFrame(last_ts, flow, frame)
