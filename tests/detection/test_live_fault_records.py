"""Fault-recorder files: bursts of COMTRADE records attach to their event and give waveforms back."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_pmu, make_substation
from wams.detection.faultrecords import fault_record_traces, ingest_burst
from wams.detection.models import Event, FaultRecord
from wams.detection.services import raise_event
from wams.simulator.engine.comtrade import (
    ComtradeRecord,
    DigitalSignal,
    digital_from_intervals,
    sample_instants,
    voltage_signals,
    write_comtrade,
)

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
RATE_HZ = 1920.0  # 32 samples per 60 Hz cycle
VOLTAGE_V = 199_185.0  # rms, phase to neutral


def record_files(tmp_path: Path, stem: str, station: str, trigger: dt.datetime) -> list[tuple[str, bytes]]:
    """Write one 0.5 s record (0.1 s before its trigger) and return its cfg and dat as uploaded files."""
    start_s = trigger.timestamp() - 0.1
    t = sample_instants(start_s, start_s + 0.5, RATE_HZ)
    sag = np.where(t >= trigger.timestamp(), 0.5, 1.0)  # the voltage halves at the trigger
    record = ComtradeRecord(
        station_name=station,
        device_id="FR-7",
        frequency_hz=60.0,
        sample_rate_hz=RATE_HZ,
        start_utc_s=start_s,
        trigger_utc_s=trigger.timestamp(),
        analogs=voltage_signals("BUS7", VOLTAGE_V * sag + 0j, t, 60.0),
        digitals=[DigitalSignal("TRIP", digital_from_intervals(t, [(trigger.timestamp() + 0.05, t[-1] + 1)]))],
    )
    cfg, dat = write_comtrade(record, tmp_path / stem)
    return [(cfg.name, cfg.read_bytes()), (dat.name, dat.read_bytes())]


def test_a_burst_attaches_each_record_to_the_event_whose_window_holds_its_trigger(tmp_path: Path) -> None:
    substation = make_substation(code="SUB7")
    pmu = make_pmu(substation=substation)
    event, _ = raise_event(kind="voltage_sag", severity="alarm", summary="sag", started_at=T0, pmu_ids=[pmu.pk])
    raise_event(kind="under_frequency", severity="warning", summary="far", started_at=T0 + dt.timedelta(hours=1))
    files = record_files(tmp_path, "fr1", "SUB7", T0 + dt.timedelta(seconds=0.2))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, content in record_files(tmp_path, "fr2", "OTHER", T0 + dt.timedelta(seconds=1)):
            zf.writestr(f"burst/{name}", content)

    results = ingest_burst([*files, ("burst.zip", archive.getvalue())], uploaded_by="test")

    assert [(r.name, r.created, r.error) for r in results] == [("fr2", True, ""), ("fr1", True, "")]
    assert {r.record.event_id for r in results if r.record} == {event.pk}
    fr1 = FaultRecord.objects.get(name="fr1")
    assert fr1.substation == substation
    assert fr1.trigger_at == T0 + dt.timedelta(seconds=0.2)
    assert fr1.n_analogs == 3 and fr1.n_digitals == 1 and fr1.sample_rate_hz == RATE_HZ

    traces = fault_record_traces(event.pk)
    assert [t.name for t in traces] == ["fr1", "fr2"]  # in trigger order
    first = traces[0]
    assert first.time_s[0] == pytest.approx(T0.timestamp() + 0.1, abs=1e-6)
    assert np.diff(first.time_s).mean() == pytest.approx(1 / RATE_HZ, rel=1e-6)
    phase_a = first.analogs[0]
    assert (phase_a.name, phase_a.phase, phase_a.unit) == ("BUS7 VA", "A", "V")
    before = np.abs(phase_a.values[first.time_s < first.trigger_time_s]).max()
    after = np.abs(phase_a.values[first.time_s > first.trigger_time_s + 0.02]).max()
    assert before == pytest.approx(np.sqrt(2) * VOLTAGE_V, rel=1e-3)  # peak of the sine (16-bit scaling)
    assert after == pytest.approx(np.sqrt(2) * VOLTAGE_V / 2, rel=2e-3)
    trip = first.digitals[0]
    assert trip.values[first.time_s < first.trigger_time_s].max() == 0
    assert trip.values[-1] == 1
    assert first.to_json()["analogs"][0]["unit"] == "V"


def test_a_record_outside_every_event_opens_a_fault_record_event(tmp_path: Path) -> None:
    make_substation(code="SUB9")
    (result,) = ingest_burst(record_files(tmp_path, "lonely", "SUB9", T0))
    assert result.record is not None
    event = Event.objects.get(pk=result.record.event_id)
    assert event.kind == "fault_record" and event.state == Event.State.CLEARED
    assert event.started_at == T0
    assert [s.code for s in event.substations.all()] == ["SUB9"]
    # A second recorder of the same fault joins that event rather than opening another.
    (second,) = ingest_burst(record_files(tmp_path, "lonely2", "SUB9", T0 + dt.timedelta(seconds=0.01)))
    assert second.record is not None and second.record.event_id == event.pk


def test_the_same_files_twice_are_one_record_and_bad_files_are_reported(tmp_path: Path) -> None:
    files = record_files(tmp_path, "fr", "X", T0)
    ingest_burst(files)
    (again,) = ingest_burst(files)
    assert not again.created and FaultRecord.objects.count() == 1
    results = ingest_burst([("only.cfg", files[0][1]), ("junk.cfg", b"not,comtrade\r\n"), ("junk.dat", b"1,2\r\n")])
    assert {r.name: r.error for r in results} == {
        "only": "no matching .dat file",
        "junk": "the cfg names no data file type (ASCII, BINARY, BINARY32 or FLOAT32)",
    }
    assert FaultRecord.objects.count() == 1
