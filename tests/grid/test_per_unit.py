"""One per-unit rule: live snapshots, history pages and the API's per-unit magnitudes share the grid model's base."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import call_command

from dashboards import history
from wams.grid.models import Bus, Channel, Pmu
from wams.historian.blocks import SampleBlock
from wams.historian.services import ingest
from wams.pdc.services import load_stream_specs

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _live_bases() -> dict[int, float]:
    return {pmu.id: pmu.base_voltage_v for spec in load_stream_specs() for pmu in spec.pmus}


def test_every_demo_pmu_has_the_same_base_live_and_in_history() -> None:
    call_command("load_demo", "--no-accounts")
    live = _live_bases()
    pmus = list(Pmu.objects.filter(enabled=True).select_related("bus", "substation"))
    assert len(pmus) == len(live) > 10
    for pmu in pmus:
        assert live[pmu.pk] == pytest.approx(history.bus_base_v(pmu), rel=1e-12), pmu.station_name
        assert live[pmu.pk] == pytest.approx(pmu.base_voltage_v(), rel=1e-12)


def test_a_phasor_on_another_bus_than_the_pmu_takes_that_bus_everywhere() -> None:
    call_command("load_demo", "--no-accounts")
    pmu = Pmu.objects.filter(bus__isnull=False).select_related("bus", "substation").first()
    assert pmu is not None
    other = Bus.objects.create(substation=pmu.substation, number=9999, name="Tertiary", base_kv=138.0)
    Channel.objects.filter(pmu=pmu, kind=Channel.Kind.PHASOR, order=0).update(bus=other)
    expected_v = 138_000.0 / np.sqrt(3.0)
    assert _live_bases()[pmu.pk] == pytest.approx(expected_v)
    assert history.bus_base_v(pmu) == pytest.approx(expected_v)
    stamps = int(T0.timestamp() * 1e6) + np.arange(30, dtype=np.int64) * 33_333
    ingest(
        SampleBlock(
            pmu_id=pmu.pk,
            timestamp_us=stamps,
            stat=np.zeros(30, np.uint16),
            frequency_hz=np.full(30, 60.0),
            rocof_hz_per_s=np.zeros(30),
            phasors=np.full((30, 1), 1.02 * expected_v + 0j),
        )
    )
    (window,) = history.read_windows([pmu], T0, T0 + timedelta(seconds=2), ["magnitude_pu"])
    np.testing.assert_allclose(window.values["magnitude_pu"], 1.02, rtol=1e-6)
