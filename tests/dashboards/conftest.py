"""Two organisations with PMUs, one shared across, and users of every role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from dashboards import history
from tests.conftest import make_organisation, make_pmu, make_stream, make_substation, make_user
from tests.dashboards import livesite
from tests.dashboards.livesite import Site
from tests.dashboards.synthetic import SyntheticGrid
from wams.detection.models import Event
from wams.grid.loaders import load_demo_topology
from wams.grid.models import ControllableDevice, Organisation, Pmu, Substation


@dataclass
class Scenario:
    """Organisation A owns a1, a2 (stream A); B owns b1 (private) and b2 (shared with A)."""

    org_a: Organisation
    org_b: Organisation
    sub_a: Substation
    sub_b: Substation
    a1: Pmu
    a2: Pmu
    b1: Pmu
    b2: Pmu
    viewer_a: Any
    operator_a: Any
    engineer_a: Any
    operator_b: Any
    nobody: Any
    device_a: ControllableDevice
    device_b: ControllableDevice


@pytest.fixture
def scenario(django_user_model: Any) -> Scenario:
    """Build the two-organisation scenario."""
    org_a, org_b = make_organisation("orga"), make_organisation("orgb", role="dso")
    sub_a = make_substation(owner=org_a, name="Alpha", code="ALPHA")
    sub_b = make_substation(owner=org_b, name="Bravo", code="BRAVO")
    stream_a, stream_b = make_stream(owner=org_a), make_stream(owner=org_b)
    a1 = make_pmu(stream=stream_a, substation=sub_a, station_name="A1")
    a2 = make_pmu(stream=stream_a, substation=sub_a, station_name="A2")
    b1 = make_pmu(stream=stream_b, substation=sub_b, station_name="B1")
    b2 = make_pmu(stream=stream_b, substation=sub_b, station_name="B2")
    b2.shared_with.add(org_a)
    device = {"kind": ControllableDevice.Kind.LOAD_BLOCK, "load_mw": 50.0, "common_address": 1}
    device_a = ControllableDevice.objects.create(name="Load A", substation=sub_a, owner=org_a, ioa=1, **device)
    device_b = ControllableDevice.objects.create(name="Load B", substation=sub_b, owner=org_b, ioa=2, **device)
    return Scenario(
        org_a=org_a,
        org_b=org_b,
        sub_a=sub_a,
        sub_b=sub_b,
        a1=a1,
        a2=a2,
        b1=b1,
        b2=b2,
        viewer_a=make_user(django_user_model, "viewer", org_a, username="viewer_a"),
        operator_a=make_user(django_user_model, "operator", org_a, username="operator_a"),
        engineer_a=make_user(django_user_model, "engineer", org_a, username="engineer_a"),
        operator_b=make_user(django_user_model, "operator", org_b, username="operator_b"),
        nobody=django_user_model.objects.create_user(username="nobody", password="pw-123456"),
        device_a=device_a,
        device_b=device_b,
    )


def make_event(pmus: list[Pmu], started_at: datetime | None = None, **fields: Any) -> Event:
    """Create a raised event naming PMUs."""
    values: dict[str, Any] = {
        "kind": "under_frequency",
        "severity": Event.Severity.ALARM,
        "dedup_key": f"uf:{','.join(str(p.pk) for p in pmus)}",
        "summary": "Frequency below 59.8 Hz",
        "started_at": started_at or datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC),
        "quantities": {"frequency_nadir_hz": 59.71},
    }
    values.update(fields)
    event = Event.objects.create(**values)
    event.pmus.set(pmus)
    return event


class FakeHistory:
    """Stand-in for the historian: 30 samples/s of a known ramp for every PMU asked."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def read_windows(self, pmus: Any, start: datetime, end: datetime, quantities: Any, max_points: Any = None):
        self.calls.append({"pmus": [p.pk for p in pmus], "start": start, "end": end, "max_points": max_points})
        t_s = np.arange(start.timestamp(), end.timestamp(), 1 / 30)
        windows = []
        for pmu in pmus:
            values = {
                "frequency_hz": 60.0 - 0.001 * (t_s - t_s[0]),
                "rocof_hz_per_s": np.full(len(t_s), -0.001),
                "magnitude_pu": np.full(len(t_s), 1.01),
                "angle_deg": np.full(len(t_s), 10.0 * pmu.pk % 90),
                "stat": np.zeros(len(t_s)),
            }
            windows.append(history.PmuWindow(pmu.pk, t_s, {q: values[q] for q in quantities}))
        return windows

    def export_window(self, pmus: Any, start: datetime, end: datetime, fmt: str) -> history.Export:
        return history.Export(f"x.{fmt}", "text/csv", [b"time_s\n"])


@pytest.fixture
def fake_history(monkeypatch: pytest.MonkeyPatch) -> FakeHistory:
    """Route the dashboard's history reads to a fake historian."""
    fake = FakeHistory()
    monkeypatch.setattr("dashboards.historian_adapter.read_windows", fake.read_windows)
    monkeypatch.setattr("dashboards.historian_adapter.export_window", fake.export_window)
    return fake


def _load_site_data(django_user_model: Any) -> dict[int, Pmu]:
    load_demo_topology()
    netso, pvdso = Organisation.objects.get(code="netso"), Organisation.objects.get(code="pvdso")
    make_user(django_user_model, "operator", netso, username="operator", password=livesite.PASSWORD)
    make_user(django_user_model, "viewer", netso, username="viewer", password=livesite.PASSWORD)
    make_user(django_user_model, "operator", pvdso, username="dso-operator", password=livesite.PASSWORD)
    return {pmu.bus.number: pmu for pmu in Pmu.objects.select_related("bus", "stream")}


@pytest.fixture(scope="module")
def site(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[Site]:
    """Serve the demo topology with a synthetic live feed and open chromium (one per test module).

    A module using it needs one test marked `django_db` so pytest-django creates the test database.
    """
    if not Path(livesite.CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    if not livesite.redis_available():
        pytest.skip("Redis is not running")
    from django.contrib.auth import get_user_model
    from django.db import connection

    # The site's data is committed and flushed afterwards: only ever on a test database.
    assert "test" in str(connection.settings_dict["NAME"]), "browser tests need the test database"
    with django_db_blocker.unblock():
        pmus = _load_site_data(get_user_model())
    try:
        with livesite.redis_channel_layer():
            server = livesite.Server(tmp_path_factory.mktemp("site"))
            grid = SyntheticGrid(sorted(pmu.pk for pmu in pmus.values()))
            streams = sorted({(pmu.stream_id, pmu.stream.name) for pmu in pmus.values()})
            feed = livesite.Feed(grid, streams)
            try:
                with livesite.chromium() as browser:
                    yield Site(server, feed, grid, browser, pmus, django_db_blocker)
            finally:
                feed.stop()
                server.stop()
    finally:
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
