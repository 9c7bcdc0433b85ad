"""Fault-recorder files (IEEE C37.111 COMTRADE cfg + dat): upload in bursts, attach to events, plot.

A record attaches to the event whose window (its start minus the pre window to its end, or start,
plus the post window) contains the record's trigger time, preferring events at the record's
substation and then the nearest start; with none, it opens an event of kind `fault_record`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import comtrade
import numpy as np
import numpy.typing as npt
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from wams.detection.models import Event, FaultRecord
from wams.detection.services import clear_event, raise_event
from wams.detection.windows import window_span
from wams.grid.models import Pmu, Substation

FloatArray = npt.NDArray[np.float64]

MAX_FILE_BYTES = 64 * 1024 * 1024
_DAT_TYPES = {"ASCII", "BINARY", "BINARY32", "FLOAT32"}
_TIME_CODE = re.compile(r"^\s*([+-]?)(\d{1,2})(?:h(\d{1,2}))?\s*$", re.IGNORECASE)


class FaultRecordError(ValueError):
    """An upload that is not a readable COMTRADE record; the message says why."""


@dataclass(frozen=True)
class WaveformChannel:
    """One channel of a record: samples (n,) in engineering units (digital: 0/1)."""

    name: str
    phase: str
    circuit: str
    unit: str
    values: FloatArray


@dataclass(frozen=True)
class FaultRecordTraces:
    """The waveforms of one record, on one time axis (n,) in epoch seconds UTC."""

    record_id: int
    name: str
    station_name: str
    device_id: str
    trigger_time_s: float
    sample_rate_hz: float
    time_s: FloatArray
    analogs: list[WaveformChannel] = field(default_factory=list)
    digitals: list[WaveformChannel] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times in float s since the epoch)."""

        def channel(c: WaveformChannel) -> dict[str, Any]:
            return {
                "name": c.name,
                "phase": c.phase,
                "circuit": c.circuit,
                "unit": c.unit,
                "values": [None if not np.isfinite(v) else v for v in c.values.tolist()],
            }

        return {
            "record_id": self.record_id,
            "name": self.name,
            "station_name": self.station_name,
            "device_id": self.device_id,
            "trigger_time_s": self.trigger_time_s,
            "sample_rate_hz": self.sample_rate_hz,
            "t": self.time_s.tolist(),
            "analogs": [channel(c) for c in self.analogs],
            "digitals": [channel(c) for c in self.digitals],
        }


@dataclass(frozen=True)
class UploadResult:
    """What became of one uploaded record."""

    name: str
    record: FaultRecord | None
    created: bool
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        if self.record is None:
            return {"name": self.name, "error": self.error}
        return {
            "name": self.name,
            "record_id": self.record.pk,
            "created": self.created,
            "event_id": self.record.event_id,
            "trigger_at": self.record.trigger_at.isoformat(),
            "station_name": self.record.station_name,
        }


# --- reading --------------------------------------------------------------------------------


def _dat_type(cfg_text: str) -> str:
    """Return the data file type the cfg declares (ASCII, BINARY, BINARY32, FLOAT32)."""
    for line in cfg_text.splitlines():
        value = line.strip().upper()
        if value in _DAT_TYPES:
            return value
    raise FaultRecordError("the cfg names no data file type (ASCII, BINARY, BINARY32 or FLOAT32)")


def read_comtrade(cfg: bytes, dat: bytes) -> comtrade.Comtrade:
    """Parse a cfg/dat pair; raise FaultRecordError when it is not valid COMTRADE."""
    try:
        cfg_text = cfg.decode("utf-8")
    except UnicodeDecodeError:
        cfg_text = cfg.decode("latin-1")
    kind = _dat_type(cfg_text)
    record = comtrade.Comtrade(use_numpy_arrays=True, use_double_precision=True, ignore_warnings=True)
    try:
        record.read(io.StringIO(cfg_text), dat.decode("latin-1") if kind == "ASCII" else dat)
    except Exception as exc:  # the reader raises anything on malformed input
        raise FaultRecordError(f"not a readable COMTRADE record: {exc}") from exc
    if record.total_samples < 1:
        raise FaultRecordError("the record holds no sample")
    return record


def _utc_offset(record: comtrade.Comtrade) -> dt.timedelta:
    """Return the offset of the record's timestamps from UTC (the 2013 revision's time_code)."""
    code = str(getattr(record.cfg, "_time_code", "0") or "0")
    match = _TIME_CODE.match(code)
    if match is None:
        return dt.timedelta(0)
    sign = -1 if match.group(1) == "-" else 1
    return sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))


def record_times(record: comtrade.Comtrade) -> tuple[dt.datetime, dt.datetime]:
    """Return the record's (start, trigger) as aware UTC datetimes."""
    offset = _utc_offset(record)
    start = record.start_timestamp.replace(tzinfo=dt.UTC) - offset
    trigger = record.trigger_timestamp.replace(tzinfo=dt.UTC) - offset
    if trigger.year <= dt.MINYEAR + 1:
        trigger = start
    return start, trigger


def _sample_rate_hz(record: comtrade.Comtrade) -> float:
    """Return the (last) declared sample rate, or the rate implied by the timestamps."""
    rates = [float(rate) for rate, _ in record.cfg.sample_rates if float(rate) > 0]
    if rates:
        return rates[-1]
    time_s = np.asarray(record.time, dtype=np.float64)
    span = float(time_s[-1] - time_s[0]) if time_s.size > 1 else 0.0
    return (time_s.size - 1) / span if span > 0 else 0.0


# --- storing and attaching -----------------------------------------------------------------


def _match_substation(station_name: str) -> Substation | None:
    """Return the substation a recorder's station name names (code, name, or a PMU's station name)."""
    name = station_name.strip()
    if not name:
        return None
    found = Substation.objects.filter(Q(code__iexact=name) | Q(name__iexact=name)).first()
    if found is not None:
        return found
    pmu = Pmu.objects.filter(station_name__iexact=name).select_related("substation").first()
    return pmu.substation if pmu is not None else None


def find_event_for(trigger_at: dt.datetime, substation: Substation | None) -> Event | None:
    """Return the event whose window contains trigger_at.

    Detector events come before recorder-only ones, then events at the record's substation, then
    the nearest start. An active event's window reaches to now plus the post window.
    """
    span = window_span()
    pre, post = dt.timedelta(seconds=span.pre_s), dt.timedelta(seconds=span.post_s)
    now = timezone.now()
    candidates = (
        Event.objects.filter(started_at__lte=trigger_at + pre, started_at__gte=trigger_at - dt.timedelta(days=7))
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=trigger_at - post))
        .prefetch_related("substations")
    )
    ranked: list[tuple[tuple[int, int, float], Event]] = []
    for event in candidates:
        end = max(event.ended_at or now, event.started_at) + post
        if not event.started_at - pre <= trigger_at <= end:
            continue
        here = substation is not None and any(s.pk == substation.pk for s in event.substations.all())
        rank = (
            int(event.kind == "fault_record"),
            0 if here else 1,
            abs((event.started_at - trigger_at).total_seconds()),
        )
        ranked.append((rank, event))
    return min(ranked, key=lambda item: item[0])[1] if ranked else None


def _open_fault_event(record: FaultRecord) -> Event:
    """Record a fault seen only by a recorder as an event of its own (raised and cleared at once)."""
    pmu_ids = list(record.substation.pmus.values_list("pk", flat=True)) if record.substation else []
    ended_at = record.start_at + dt.timedelta(seconds=record.duration_s)
    key = f"fault_record:{record.sha256[:16]}"
    event, _ = raise_event(
        kind="fault_record",
        severity=Event.Severity.WARNING,
        summary=f"Fault record from {record.station_name or record.name} ({record.device_id or 'recorder'})",
        started_at=record.trigger_at,
        pmu_ids=pmu_ids,
        quantities={"record_duration_s": record.duration_s, "sample_rate_hz": record.sample_rate_hz},
        dedup_key=key,
        source="recorder",
    )
    if record.substation is not None and not pmu_ids:
        event.substations.add(record.substation)
    return clear_event(key, ended_at=max(ended_at, record.trigger_at)) or event


@transaction.atomic
def store_fault_record(name: str, cfg: bytes, dat: bytes, uploaded_by: str = "") -> tuple[FaultRecord, bool]:
    """Store one record (the same bytes twice are one record), attach it to its event; return it and if new."""
    if len(cfg) > MAX_FILE_BYTES or len(dat) > MAX_FILE_BYTES:
        raise FaultRecordError(f"{name}: a file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    digest = hashlib.sha256(len(cfg).to_bytes(8, "big") + cfg + dat).hexdigest()
    existing = FaultRecord.objects.filter(sha256=digest).first()
    if existing is not None:
        return existing, False
    parsed = read_comtrade(cfg, dat)
    start_at, trigger_at = record_times(parsed)
    station = str(parsed.station_name or "").strip()
    record = FaultRecord.objects.create(
        name=name[:200],
        station_name=station[:100],
        device_id=str(parsed.rec_dev_id or "").strip()[:100],
        revision_year=str(parsed.rev_year or "")[:4],
        substation=_match_substation(station),
        start_at=start_at,
        trigger_at=trigger_at,
        frequency_hz=float(parsed.frequency or 0.0),
        sample_rate_hz=_sample_rate_hz(parsed),
        n_samples=int(parsed.total_samples),
        n_analogs=len(parsed.analog_channel_ids),
        n_digitals=len(parsed.status_channel_ids),
        cfg=cfg,
        dat=dat,
        sha256=digest,
        uploaded_by=uploaded_by[:150],
    )
    event = find_event_for(trigger_at, record.substation)
    record.event = event if event is not None else _open_fault_event(record)
    record.save(update_fields=["event"])
    return record, True


def pair_files(files: Iterable[tuple[str, bytes]]) -> tuple[dict[str, tuple[bytes, bytes]], list[UploadResult]]:
    """Pair uploaded files by stem (zip archives unpacked) -> stem -> (cfg, dat), and the unpaired as errors."""
    cfgs: dict[str, bytes] = {}
    dats: dict[str, bytes] = {}
    errors: list[UploadResult] = []
    for filename, content in _expand(files):
        path = PurePosixPath(filename.replace("\\", "/"))
        suffix = path.suffix.lower()
        stem = str(path.with_suffix(""))
        if suffix == ".cfg":
            cfgs[stem] = content
        elif suffix == ".dat":
            dats[stem] = content
        elif suffix not in {".hdr", ".inf"}:
            errors.append(UploadResult(filename, None, False, "not a .cfg, .dat or .zip file"))
    pairs = {stem: (cfgs[stem], dats[stem]) for stem in sorted(cfgs.keys() & dats.keys())}
    for stem in sorted(cfgs.keys() ^ dats.keys()):
        missing = ".dat" if stem in cfgs else ".cfg"
        errors.append(UploadResult(stem, None, False, f"no matching {missing} file"))
    return pairs, errors


def _expand(files: Iterable[tuple[str, bytes]]) -> Iterable[tuple[str, bytes]]:
    """Yield the files, with zip archives replaced by their members."""
    for filename, content in files:
        if not filename.lower().endswith(".zip"):
            yield filename, content
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    if info.file_size > MAX_FILE_BYTES:
                        raise FaultRecordError(f"{info.filename}: larger than {MAX_FILE_BYTES} bytes")
                    yield info.filename, archive.read(info)
        except zipfile.BadZipFile as exc:
            raise FaultRecordError(f"{filename}: not a zip archive ({exc})") from exc


def ingest_burst(files: Iterable[tuple[str, bytes]], uploaded_by: str = "") -> list[UploadResult]:
    """Store a burst of uploaded files (cfg/dat pairs, zip archives); return one result per record or error."""
    pairs, results = pair_files(files)
    for stem, (cfg, dat) in pairs.items():
        name = PurePosixPath(stem).name
        try:
            record, created = store_fault_record(name, cfg, dat, uploaded_by)
        except FaultRecordError as exc:
            results.append(UploadResult(name, None, False, str(exc)))
            continue
        results.append(UploadResult(name, record, created))
    return results


# --- plotting -------------------------------------------------------------------------------


def record_traces(record: FaultRecord) -> FaultRecordTraces:
    """Return the waveforms of one stored record."""
    parsed = read_comtrade(bytes(record.cfg), bytes(record.dat))
    start_s = record.start_at.timestamp()
    time_s = start_s + np.asarray(parsed.time, dtype=np.float64)
    analogs = [
        WaveformChannel(
            name=str(channel.name),
            phase=str(channel.ph or ""),
            circuit=str(channel.ccbm or ""),
            unit=str(channel.uu or ""),
            values=np.asarray(values, dtype=np.float64),
        )
        for channel, values in zip(parsed.cfg.analog_channels, parsed.analog, strict=False)
    ]
    digitals = [
        WaveformChannel(
            name=str(channel.name),
            phase=str(getattr(channel, "ph", "") or ""),
            circuit=str(getattr(channel, "ccbm", "") or ""),
            unit="",
            values=np.asarray(values, dtype=np.float64),
        )
        for channel, values in zip(parsed.cfg.status_channels, parsed.status, strict=False)
    ]
    return FaultRecordTraces(
        record_id=record.pk,
        name=record.name,
        station_name=record.station_name,
        device_id=record.device_id,
        trigger_time_s=record.trigger_at.timestamp(),
        sample_rate_hz=record.sample_rate_hz,
        time_s=time_s,
        analogs=analogs,
        digitals=digitals,
    )


def fault_record_traces(event_id: int) -> list[FaultRecordTraces]:
    """Return the waveforms of every fault record attached to an event, oldest trigger first."""
    return [record_traces(r) for r in FaultRecord.objects.filter(event_id=event_id).order_by("trigger_at", "pk")]
