"""Shared helpers for the synchrophasor tests: vectors, configurations, Wireshark's decoding."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from wams.synchrophasor import (
    AnalogChannel,
    ConfigFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
)

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "data" / "vectors"  # the standard's frames and real captures, see its README
PCAPS = sorted((VECTORS / "pcaps").glob("*.pcap"))

requires_vectors = pytest.mark.skipif(not VECTORS.is_dir(), reason="tests/data/vectors is missing from the checkout")
requires_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def read_hex(name: str) -> bytes:
    """Return the bytes of a one-frame .hex vector."""
    return bytes.fromhex((VECTORS / name).read_text().strip())


def make_pmu(
    idcode: int = 1,
    n_phasors: int = 4,
    n_analogs: int = 1,
    n_digitals: int = 1,
    *,
    phasor_float: bool = True,
    polar: bool = True,
    freq_float: bool = True,
    analog_float: bool = True,
    nominal_hz: int = 50,
    name: str | None = None,
) -> PmuConfig:
    """Build one PMU configuration: voltages then currents, realistic integer scales."""
    phasors = [
        PhasorChannel(f"V{k}" if k < (n_phasors + 1) // 2 else f"I{k}", "V" if k < (n_phasors + 1) // 2 else "A")
        for k in range(n_phasors)
    ]
    for ch in phasors:
        ch.scale = (915527 if ch.kind == "V" else 45776) * 1e-5  # as PHUNIT reads back
    return PmuConfig(
        station_name=name or f"PMU {idcode}",
        idcode=idcode,
        phasor_float=phasor_float,
        polar=polar,
        freq_float=freq_float,
        analog_float=analog_float,
        phasors=phasors,
        analogs=[AnalogChannel(f"AN{k}", 1, 1.0) for k in range(n_analogs)],
        digitals=[DigitalWord([f"D{w}.{b}" for b in range(16)], 0, 0xFFFF) for w in range(n_digitals)],
        nominal_hz=nominal_hz,
        cfgcnt=3,
    )


def make_config(pmus: list[PmuConfig], *, idcode: int = 7, data_rate: int = 50, version: int = 1) -> ConfigFrame:
    """Build a CFG-2 around PMU configurations."""
    return ConfigFrame(
        idcode=idcode,
        soc=1_700_000_000,
        fracsec=0,
        time_base=1_000_000,
        data_rate=data_rate,
        pmus=pmus,
        version=version,
        cfg_type=2,
    )


def sample_measurements(config: ConfigFrame, k: int = 0) -> list[PmuData]:
    """Return plausible measurements for every PMU of `config` (varying with `k`)."""
    out = []
    for i, pmu in enumerate(config.pmus):
        mags = np.array([230e3 / math.sqrt(3) if ch.kind == "V" else 250.0 for ch in pmu.phasors])
        angles = np.radians([-120.0 * (j % 3) + 3.0 * i + 0.1 * k for j in range(len(pmu.phasors))])
        out.append(
            PmuData(
                stat=0,
                phasors=mags * np.exp(1j * angles),
                frequency_hz=pmu.nominal_hz + 0.01 * ((k % 7) - 3),
                rocof_hz_per_s=0.02 * ((k % 5) - 2),
                analogs=np.arange(len(pmu.analogs), dtype=float) * 10 + k,
                digitals=[(k + w) & 0xFFFF for w in range(len(pmu.digitals))],
            )
        )
    return out


# Wireshark's decoding ---------------------------------------------------------------------------
@dataclass
class WsPmu:
    """One PMU block as Wireshark decoded it."""

    stat: dict[str, int] = field(default_factory=dict)
    phasors: list[tuple[float, float]] = field(default_factory=list)  # (magnitude, angle_deg)
    frequency_hz: float | None = None
    freq_deviation_mhz: int | None = None
    rocof_hz_per_s: float | None = None
    analogs: list[float] = field(default_factory=list)
    digitals: list[int] = field(default_factory=list)


@dataclass
class WsFrame:
    """One C37.118 frame as Wireshark decoded it."""

    frame_number: int
    frame_type: int
    idcode: int
    soc: int
    fracsec: int | None
    time_quality: int
    checksum_ok: bool
    malformed: bool
    pmus: list[WsPmu] = field(default_factory=list)


_PHASOR = re.compile(r'",\s*(-?[\d.]+|-?nan|-?inf)[VA] \u2220\s*(-?[\d.]+|-?nan|-?inf)\u00b0', re.IGNORECASE)
_ANALOG = re.compile(r'",\s*(-?[\d.]+|-?nan|-?inf)', re.IGNORECASE)


def tshark_frames(pcap: Path, decode_ports: tuple[int, ...] = ()) -> list[WsFrame]:
    """Run tshark on `pcap` and return every synchrophasor frame it decoded, in order."""
    cmd = ["tshark", "-r", str(pcap), "-T", "pdml", "-Y", "synphasor || _ws.malformed"]
    for port in decode_ports:
        cmd += ["-d", f"tcp.port=={port},synphasor", "-d", f"udp.port=={port},synphasor"]
    xml = subprocess.run(cmd, capture_output=True, check=True, timeout=120).stdout
    frames: list[WsFrame] = []
    for packet in ET.fromstring(xml).iter("packet"):
        number = 0
        malformed = any(p.get("name") == "_ws.malformed" for p in packet.iter("proto"))
        for proto in packet.iter("proto"):
            if proto.get("name") == "frame":
                for f in proto.iter("field"):
                    if f.get("name") == "frame.number":
                        number = int(f.get("show", "0"))
            if proto.get("name") != "synphasor":
                continue
            frames.append(_parse_proto(proto, number, malformed))
    return frames


def _field(proto: ET.Element, name: str) -> ET.Element | None:
    """Return the first field called `name` under `proto`."""
    for f in proto.iter("field"):
        if f.get("name") == name:
            return f
    return None


def _num(text: str) -> float:
    """Parse a number as tshark prints it (nan / inf included)."""
    return float(text)


def _parse_proto(proto: ET.Element, number: int, malformed: bool) -> WsFrame:
    """Turn one <proto name="synphasor"> element into a WsFrame."""
    frtype = _field(proto, "synphasor.frtype")
    idcode = _field(proto, "synphasor.idcode_stream_source")
    soc = _field(proto, "synphasor.soc")
    frac = _field(proto, "synphasor.fracsec_raw")
    tq = _field(proto, "synphasor.timeqal.timequalindic")
    status = _field(proto, "synphasor.checksum.status")
    frame = WsFrame(
        frame_number=number,
        frame_type=int(frtype.get("show", "0"), 16) if frtype is not None else -1,
        idcode=int(idcode.get("show", "0")) if idcode is not None else -1,
        soc=int(soc.get("value", "0"), 16) if soc is not None else -1,
        fracsec=int(frac.get("show", "0")) if frac is not None else None,
        time_quality=int(tq.get("show", "0"), 16) if tq is not None else 0,
        checksum_ok=status is not None and status.get("show") == "1",
        malformed=malformed,
    )
    for station in proto.iter("field"):
        if station.get("name") != "" or not station.get("show", "").startswith("Station:"):
            continue
        if _field(station, "synphasor.data.status") is None:
            continue  # a configuration frame's station block
        frame.pmus.append(_parse_station(station))
    return frame


def _parse_station(station: ET.Element) -> WsPmu:
    """Parse one data block of a data frame."""
    pmu = WsPmu()
    for f in station.iter("field"):
        name = f.get("name", "")
        if name.startswith("synphasor.data.") and name != "synphasor.data.conf_frame":
            pmu.stat[name.removeprefix("synphasor.data.")] = int(f.get("value", "0"), 16)
        elif name == "synphasor.phasor":
            m = _PHASOR.search(f.get("showname", ""))
            assert m, f.get("showname")
            pmu.phasors.append((_num(m.group(1)), _num(m.group(2))))
        elif name == "synphasor.actual_frequency_value":
            pmu.frequency_hz = _num(f.get("show", "nan"))
        elif name == "synphasor.frequency_deviation_from_nominal":
            pmu.freq_deviation_mhz = int(f.get("show", "0"))
        elif name == "synphasor.rate_change_frequency":
            pmu.rocof_hz_per_s = _num(f.get("show", "nan"))
        elif name == "synphasor.analog_value":
            m = _ANALOG.search(f.get("showname", ""))
            assert m, f.get("showname")
            pmu.analogs.append(_num(m.group(1)))
        elif name == "synphasor.digital_status_word":
            pmu.digitals.append(int(f.get("show", "0"), 0))
    return pmu
