"""Compare our decoding of a capture with Wireshark's, frame by frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.synchrophasor.helpers import WsFrame, tshark_frames
from wams.synchrophasor import (
    C37118Error,
    ConfigFrame,
    DataFrame,
    FrameType,
    decode_frame,
    peek_header,
)
from wams.synchrophasor.pcap import iter_capture_frames

Key = tuple[int, int, int, int]  # frame type, idcode, soc, fracsec word


@dataclass
class CaptureDecoding:
    """Every frame of a capture decoded by us, keyed by (type, idcode, soc, fracsec)."""

    frames: dict[Key, object] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    count: int = 0


def decode_capture(path: Path) -> CaptureDecoding:
    """Decode every frame of a capture, data frames with the latest CFG-2/3 of their IDCODE."""
    out = CaptureDecoding()
    configs: dict[int, ConfigFrame] = {}
    for captured in iter_capture_frames(path):
        head = peek_header(captured.data)
        out.count += 1
        try:
            frame = decode_frame(captured.data, configs.get(head.idcode))
        except C37118Error as exc:
            out.errors.append(f"{head.frame_type.name} idcode {head.idcode}: {exc}")
            continue
        if isinstance(frame, ConfigFrame) and (frame.cfg_type >= 2 or head.idcode not in configs):
            configs[head.idcode] = frame
        out.frames[(int(head.frame_type), head.idcode, head.soc, head.fracsec)] = frame
    return out


def _close(ours: float, theirs: float, rel: float, abs_: float) -> bool:
    """Return True when both are NaN or they agree within the tolerances."""
    if math.isnan(theirs) or math.isnan(ours):
        return math.isnan(theirs) and math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=rel, abs_tol=abs_)


def compare_data_frame(ours: DataFrame, ws: WsFrame, config_nominal: list[int]) -> list[str]:
    """Return the differences between our data frame and Wireshark's (empty when equal)."""
    diffs: list[str] = []
    if len(ws.pmus) != len(ours.pmus):
        return [f"frame {ws.frame_number}: {len(ws.pmus)} PMU blocks vs {len(ours.pmus)}"]
    for i, (mine, theirs) in enumerate(zip(ours.pmus, ws.pmus, strict=True)):
        where = f"frame {ws.frame_number} pmu {i}"
        flags = mine.stat_flags
        expected_stat = {
            "status": flags.data_error,
            "sync": 0 if flags.pmu_sync else 1,
            "sorting": flags.sorting,
            "trigger": int(flags.trigger),
            "CFGchange": int(flags.config_change),
            "data_modified": int(flags.data_modified),
            "pmu_tq": flags.time_quality,
            "t_unlock": flags.unlock_time,
            "trigger_reason": flags.trigger_reason,
        }
        for name, value in expected_stat.items():
            if name in theirs.stat and theirs.stat[name] != value:
                diffs.append(f"{where}: STAT {name} {value} vs wireshark {theirs.stat[name]}")
        if len(theirs.phasors) != len(mine.phasors):
            diffs.append(f"{where}: {len(theirs.phasors)} phasors vs {len(mine.phasors)}")
        for k, (z, (mag, ang)) in enumerate(zip(mine.phasors, theirs.phasors, strict=False)):
            # Wireshark prints 3 decimals: allow half a unit of the last digit plus float32 noise.
            if not _close(float(abs(z)), mag, 1e-6, 6e-4):
                diffs.append(f"{where}: phasor {k} magnitude {abs(z)} vs {mag}")
            if abs(z) > 1e-2 and not _angle_close(float(np.degrees(np.angle(z))), ang):
                diffs.append(f"{where}: phasor {k} angle {np.degrees(np.angle(z))} vs {ang}")
        if theirs.frequency_hz is not None and not _close(mine.frequency_hz, theirs.frequency_hz, 1e-5, 1e-6):
            diffs.append(f"{where}: frequency {mine.frequency_hz} vs {theirs.frequency_hz}")
        if theirs.freq_deviation_mhz is not None:
            freq = config_nominal[i] + theirs.freq_deviation_mhz / 1000.0
            if not _close(mine.frequency_hz, freq, 0, 1e-9):
                diffs.append(f"{where}: frequency {mine.frequency_hz} vs {freq}")
        if theirs.rocof_hz_per_s is not None and not _close(mine.rocof_hz_per_s, theirs.rocof_hz_per_s, 1e-5, 1e-6):
            diffs.append(f"{where}: rocof {mine.rocof_hz_per_s} vs {theirs.rocof_hz_per_s}")
        for k, (a, b) in enumerate(zip(mine.analogs, theirs.analogs, strict=False)):
            if not _close(float(a), b, 1e-6, 6e-4):
                diffs.append(f"{where}: analog {k} {a} vs {b}")
        if len(theirs.analogs) != len(mine.analogs):
            diffs.append(f"{where}: {len(theirs.analogs)} analogs vs {len(mine.analogs)}")
        if theirs.digitals != mine.digitals:
            diffs.append(f"{where}: digitals {mine.digitals} vs {theirs.digitals}")
    return diffs


def _angle_close(ours_deg: float, theirs_deg: float) -> bool:
    """Return True when two angles (degrees, 3 decimals printed) agree modulo 360."""
    if math.isnan(ours_deg) or math.isnan(theirs_deg):
        return math.isnan(ours_deg) and math.isnan(theirs_deg)
    d = (ours_deg - theirs_deg + 180.0) % 360.0 - 180.0
    return abs(d) <= 6e-4 + 1e-6 * abs(theirs_deg)


@dataclass
class Comparison:
    """Outcome of comparing a whole capture."""

    ours: CaptureDecoding
    wireshark: list[WsFrame]
    matched_data: int = 0
    diffs: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def compare_capture(path: Path, decode_ports: tuple[int, ...] = ()) -> Comparison:
    """Decode `path` with us and with tshark; compare every frame Wireshark decoded."""
    ours = decode_capture(path)
    ws = tshark_frames(path, decode_ports)
    result = Comparison(ours, ws)
    for wf in ws:
        if wf.frame_type < 0 or wf.fracsec is None:
            continue
        key_prefix = (wf.frame_type, wf.idcode, wf.soc)
        match = [f for k, f in ours.frames.items() if k[:3] == key_prefix and (k[3] & 0xFFFFFF) == wf.fracsec]
        if not match:
            result.missing.append(f"frame {wf.frame_number}: type {wf.frame_type} idcode {wf.idcode}")
            continue
        frame = match[0]
        if wf.frame_type == FrameType.DATA and wf.pmus:
            assert isinstance(frame, DataFrame)
            cfg_nominal = [0] * len(frame.pmus)
            for k, f in ours.frames.items():
                if isinstance(f, ConfigFrame) and k[1] == wf.idcode:
                    cfg_nominal = [p.nominal_hz for p in f.pmus]
            if (frame.fracsec >> 24) & 0xF != wf.time_quality:
                result.diffs.append(f"frame {wf.frame_number}: time quality")
            result.diffs.extend(compare_data_frame(frame, wf, cfg_nominal))
            result.matched_data += 1
    return result
