import io
import math
import zipfile
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from dashboards import history
from wams.historian.blocks import SampleBlock
from wams.historian.services import ingest

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def store_ramp(pmu, seconds=10, rate_fps=30):
    """Store a frequency ramp and a 1.02 pu voltage at 12 deg for one PMU."""
    n = seconds * rate_fps
    t_us = int(T0.timestamp() * 1e6) + np.arange(n, dtype=np.int64) * (1_000_000 // rate_fps)
    base_v = 345_000 / math.sqrt(3)
    block = SampleBlock(
        pmu_id=pmu.pk,
        timestamp_us=t_us,
        stat=np.zeros(n, dtype=np.uint16),
        frequency_hz=60.0 - 0.01 * np.arange(n) / rate_fps,
        rocof_hz_per_s=np.full(n, -0.01),
        phasors=(1.02 * base_v * np.exp(1j * np.radians(12.0)) * np.ones(n))[:, None],
    )
    assert ingest(block) == n


def test_windows_read_through_the_historian_give_per_unit_magnitudes(scenario):
    store_ramp(scenario.a1)
    (window,) = history.read_windows(
        [scenario.a1], T0, T0 + timedelta(seconds=10), ["frequency_hz", "magnitude_pu", "angle_deg"]
    )
    assert len(window.t_s) == 300
    assert window.t_s[0] == pytest.approx(T0.timestamp())
    np.testing.assert_allclose(window.values["magnitude_pu"], 1.02, rtol=1e-6)
    np.testing.assert_allclose(window.values["angle_deg"], 12.0, atol=1e-4)
    assert window.values["frequency_hz"][-1] == pytest.approx(60.0 - 0.01 * 299 / 30, abs=1e-9)
    assert window.low == {}  # not decimated


def test_decimated_windows_carry_min_max_bands(scenario):
    store_ramp(scenario.a1)
    (window,) = history.read_windows([scenario.a1], T0, T0 + timedelta(seconds=10), ["frequency_hz"], max_points=10)
    assert len(window.t_s) <= 10
    # Each bucket of a falling ramp: the maximum is its first sample, the minimum its last.
    assert np.all(window.high["frequency_hz"] > window.low["frequency_hz"])
    assert window.high["frequency_hz"][0] == pytest.approx(60.0)


def test_exports_read_back(scenario):
    store_ramp(scenario.a1, seconds=2)
    csv = history.export_window([scenario.a1], T0, T0 + timedelta(seconds=2), "csv")
    assert csv.filename.endswith(".csv")
    assert len(csv.content.decode().strip().splitlines()) == 61  # header + 60 samples
    comtrade = history.export_window([scenario.a1], T0, T0 + timedelta(seconds=2), "comtrade")
    names = zipfile.ZipFile(io.BytesIO(comtrade.content)).namelist()
    assert sorted(n.rsplit(".", 1)[1] for n in names) == ["cfg", "dat"]


def test_an_empty_window_is_reported_as_such(scenario):
    with pytest.raises(history.EmptyWindow):
        history.export_window([scenario.a1], T0, T0 + timedelta(seconds=2), "comtrade")
