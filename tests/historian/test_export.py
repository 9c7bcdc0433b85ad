"""Raw exports read back: CSV exactly, COMTRADE through the PyPI `comtrade` reader."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

import comtrade
import numpy as np
import pytest

from tests.conftest import make_pmu
from tests.historian.helpers import T0, make_block
from wams.grid.models import Channel
from wams.historian import codec
from wams.historian.budget import BudgetExceeded
from wams.historian.export import comtrade_files, export_comtrade, export_csv, iter_zip, plan_export, slices
from wams.historian.services import ingest

pytestmark = pytest.mark.django_db

END = T0 + timedelta(seconds=10)


def _two_pmus_with_data() -> tuple[list[int], list[object]]:
    first, second = make_pmu(station_name="ALPHA"), make_pmu(station_name="BETA")
    a = make_block(first.pk, n=60, n_phasors=2, n_analogs=1, n_digitals=1, seed=1)
    b = make_block(second.pk, n=60, n_phasors=1, n_analogs=0, n_digitals=0, seed=2)
    b = codec.take_samples(b, np.arange(60) != 7)  # BETA misses instant 7
    ingest(a)
    ingest(b)
    Channel.objects.create(pmu=first, kind="phasor", order=0, name="VA", measures="other", unit="V")
    return [first.pk, second.pk], [a, b]


def test_csv_export_reads_back_exactly() -> None:
    pmu_ids, (a, _) = _two_pmus_with_data()
    rows = list(csv.reader(io.StringIO(export_csv(pmu_ids, T0, END))))
    header, data = rows[0], rows[1:]
    assert len(data) == 60
    assert header[:2] == ["timestamp_utc", "timestamp_us"]
    assert data[0][0] == "2026-01-01T00:00:00.000000Z"
    column = {name: i for i, name in enumerate(header)}
    freq = [float(row[column[f"ALPHA[{pmu_ids[0]}].frequency_hz"]]) for row in data]
    np.testing.assert_array_equal(freq, a.frequency_hz)  # repr() of a float reads back bit-exact
    magnitude_wire = np.abs(a.phasors[:, 1]).astype(np.float32).astype(np.float64)
    magnitude = [float(row[column[f"ALPHA[{pmu_ids[0]}].phasor_1_magnitude"]]) for row in data]
    np.testing.assert_allclose(magnitude, np.abs(a.phasors[:, 1]), rtol=1e-15)
    np.testing.assert_array_equal(magnitude, magnitude_wire)  # the float32 magnitudes the PMU sent
    assert data[7][column[f"BETA[{pmu_ids[1]}].frequency_hz"]] == ""
    assert [int(row[column[f"ALPHA[{pmu_ids[0]}].digital_0"]]) for row in data] == a.digitals[:, 0].tolist()


@pytest.mark.parametrize("rev_year", [1999, 2013])
def test_comtrade_export_reads_back_with_the_comtrade_package(rev_year: int) -> None:
    pmu_ids, (a, b) = _two_pmus_with_data()
    record = export_comtrade(pmu_ids, T0, END, rev_year=rev_year)
    reader = comtrade.Comtrade()
    reader.read(record.cfg, record.dat)
    assert reader.rev_year == str(rev_year)
    assert reader.total_samples == 60
    assert reader.start_timestamp.year == 2026
    np.testing.assert_allclose(reader.time, np.arange(60) / 30, atol=1e-6)  # evenly spaced at 30 fps
    ids = reader.analog_channel_ids
    assert "ALPHA VA MAG" in ids and "BETA PH0 ANG" in ids
    cfg = {ch.name: ch for ch in reader.cfg.analog_channels}

    def check(name: str, expected: np.ndarray) -> None:
        values = np.asarray(reader.analog[ids.index(name)])
        tolerance = cfg[name].a / 2 + 1e-9 * np.nanmax(np.abs(expected))  # one integer step of a * x + b
        finite = ~np.isnan(expected)
        np.testing.assert_allclose(values[finite], expected[finite], rtol=0, atol=tolerance)
        assert np.isnan(values[~finite]).all()

    check("ALPHA FREQ", a.frequency_hz)
    check("ALPHA VA MAG", np.abs(a.phasors[:, 0]))
    check("ALPHA PH1 ANG", np.degrees(np.angle(a.phasors[:, 1])))
    beta = np.full(60, np.nan)
    beta[np.arange(60) != 7] = b.frequency_hz
    check("BETA FREQ", beta)
    check("ALPHA STAT", a.stat.astype(float))
    assert cfg["ALPHA FREQ"].a < 1e-5  # frequency keeps better than 10 uHz resolution
    bits = np.array([reader.status[reader.status_channel_ids.index(f"ALPHA DG0 B{k}")] for k in range(16)])
    np.testing.assert_array_equal((bits * (1 << np.arange(16))[:, None]).sum(axis=0), a.digitals[:, 0])


def test_comtrade_with_a_gap_uses_timestamps_and_zips() -> None:
    pmu = make_pmu(station_name="GAPPY")
    block = make_block(pmu.pk, n=30)
    ingest(codec.take_samples(block, np.arange(30) != 15))
    record = export_comtrade([pmu.pk], T0, END)
    reader = comtrade.Comtrade()
    reader.read(record.cfg, record.dat)
    expected = (np.delete(block.timestamp_us, 15) - block.timestamp_us[0]) / 1e6
    np.testing.assert_allclose(reader.time, expected, atol=1e-6)
    with zipfile.ZipFile(io.BytesIO(record.to_zip("gappy"))) as archive:
        assert sorted(archive.namelist()) == ["gappy.cfg", "gappy.dat"]


def test_export_of_an_empty_window_is_refused() -> None:
    pmu = make_pmu()
    with pytest.raises(LookupError):
        export_comtrade([pmu.pk], T0, END)


@pytest.mark.parametrize("fmt", ["csv", "comtrade"])
def test_exports_written_in_many_slices_equal_the_one_slice_export(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pmu_ids, _ = _two_pmus_with_data()
    late = make_pmu(station_name="LATE")
    ingest(make_block(late.pk, n=20, n_phasors=1, n_analogs=0, n_digitals=0, first=25, seed=4))  # joins mid-window
    pmu_ids.append(late.pk)

    def export() -> str:
        if fmt == "csv":
            return export_csv(pmu_ids, T0, END)
        record = export_comtrade(pmu_ids, T0, END)
        return record.cfg + record.dat

    whole = export()
    monkeypatch.setattr(slices, "SLICE_VALUES", 1)
    monkeypatch.setattr(slices, "MIN_SLICE_US", 100_000)  # 0.1 s slices: 3 instants at 30 fps, some 2
    assert len(list(plan_export(pmu_ids, T0, END).slices())) == 101  # [T0, END] with END included
    assert export() == whole


def test_a_zip_streamed_piece_by_piece_reads_back() -> None:
    pmu_ids, _ = _two_pmus_with_data()
    cfg, dat = comtrade_files(pmu_ids, T0, END)
    record = export_comtrade(pmu_ids, T0, END)
    data = b"".join(iter_zip([("r.cfg", cfg), ("r.dat", dat)]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("r.cfg").decode() == record.cfg
        assert archive.read("r.dat").decode() == record.dat


def test_an_export_over_budget_is_refused_before_it_reads(settings: object) -> None:
    pmu_ids, _ = _two_pmus_with_data()
    settings.WAMS_EXPORT_MAX_VALUES = 1000  # ALPHA 60 x 9 + BETA 59 x 5 = 835 values fit; MORE adds 60 x 11
    more = make_pmu(station_name="MORE")
    ingest(make_block(more.pk, n=60, n_phasors=4, n_analogs=0, n_digitals=0))
    assert export_csv(pmu_ids, T0, END).count("\n") == 61
    with pytest.raises(BudgetExceeded, match=r"would write 1,495 values \(limit 1,000 per file\)"):
        export_csv([*pmu_ids, more.pk], T0, END)
    with pytest.raises(BudgetExceeded):
        export_comtrade([*pmu_ids, more.pk], T0, END)
