"""The event page plots the fault-recorder waveforms attached to the event."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import make_pmu, make_substation, make_user
from tests.detection.test_live_fault_records import T0, record_files
from wams.detection.faultrecords import ingest_burst
from wams.detection.services import raise_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_event_page_plots_the_attached_fault_record_by_unit(client, django_user_model, tmp_path: Path) -> None:
    substation = make_substation(code="SUB7")
    pmu = make_pmu(substation=substation)
    event, _ = raise_event(kind="voltage_sag", severity="alarm", summary="sag", started_at=T0, pmu_ids=[pmu.pk])
    ingest_burst(record_files(tmp_path, "fr1", "SUB7", T0 + dt.timedelta(seconds=0.2)))
    user = make_user(django_user_model, "operator", organisation=pmu.owner)
    client.force_login(user)

    response = client.get(f"/events/{event.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Fault recorder" in html
    start = html.index('id="fault-')
    payload = html[html.index(">", start) + 1 : html.index("</script>", start)]
    figure = json.loads(payload)
    assert len(figure["data"]) == 3  # phases A, B and C of the recorded bus voltage
    x = figure["data"][0]["x"]
    assert x[0] == pytest.approx(-100.0, abs=1.0)  # the record starts 0.1 s before its trigger
    assert "Time from trigger (ms)" in json.dumps(figure["layout"]["xaxis"])
    assert max(abs(v) for v in figure["data"][0]["y"] if v is not None) > 1000.0


def test_event_page_without_fault_record_has_no_fault_section(client, django_user_model) -> None:
    pmu = make_pmu()
    event, _ = raise_event(kind="rocof", severity="alarm", summary="df/dt", started_at=T0, pmu_ids=[pmu.pk])
    client.force_login(make_user(django_user_model, "viewer", organisation=pmu.owner))
    response = client.get(f"/events/{event.pk}/")
    assert response.status_code == 200
    assert "Fault recorder" not in response.content.decode()
