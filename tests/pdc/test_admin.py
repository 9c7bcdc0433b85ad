"""Admin pages of the pdc app."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pdc.grid import provision
from wams.pdc.models import OutputStream
from wams.pdc.reports import LinkReport
from wams.pdc.services import write_link_states

pytestmark = pytest.mark.django_db


def test_link_state_admin_lists_rows_and_refuses_changes(admin_client_logged: Any) -> None:
    stream, _ = provision(20001, 11)
    write_link_states([LinkReport(stream.id, stream.name, "streaming", None, "", 30.0, 5.0, 10, 0, 0, 0, 0, None, "")])
    response = admin_client_logged.get("/admin/pdc/linkstate/")
    assert response.status_code == 200
    assert stream.name in response.content.decode()
    assert admin_client_logged.get("/admin/pdc/linkstate/add/").status_code == 403


def test_output_stream_admin_refuses_a_rate_that_does_not_divide_the_pmus_rate(admin_client_logged: Any) -> None:
    _, pmu = provision(20001, 11)
    data = {
        "name": "out",
        "idcode": 4000,
        "host": "127.0.0.1",
        "port": 4712,
        "reporting_rate_fps": 20,
        "pmus": [pmu.id],
    }
    response = admin_client_logged.post("/admin/pdc/outputstream/add/", {**data, "enabled": "on"})
    assert response.status_code == 200 and "does not divide" in response.content.decode()
    response = admin_client_logged.post(
        "/admin/pdc/outputstream/add/", {**data, "reporting_rate_fps": 10, "enabled": "on"}
    )
    assert response.status_code == 302
    assert list(OutputStream.objects.get(name="out").pmus.all()) == [pmu]
