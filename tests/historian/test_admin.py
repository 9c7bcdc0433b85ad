"""The read-only chunk admin."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_pmu
from tests.historian.helpers import make_block
from wams.historian.models import Chunk
from wams.historian.services import ingest

pytestmark = pytest.mark.django_db


def test_chunk_list_shows_pmu_time_range_and_bytes(admin_client_logged: Any) -> None:
    pmu = make_pmu(station_name="LISTED")
    ingest(make_block(pmu.pk, n=30))
    chunk = Chunk.objects.get()
    response = admin_client_logged.get("/admin/historian/chunk/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "LISTED" in page
    assert "2026-01-01 00:00:00.000000" in page  # first sample, to the microsecond
    assert "2026-01-01 00:00:00.966667" in page  # last of 30 samples at 30 fps
    assert str(chunk.size_bytes) in page


def test_chunks_cannot_be_added_changed_or_deleted(admin_client_logged: Any) -> None:
    pmu = make_pmu()
    ingest(make_block(pmu.pk, n=30))
    chunk = Chunk.objects.get()
    assert admin_client_logged.get("/admin/historian/chunk/add/").status_code == 403
    detail = admin_client_logged.get(f"/admin/historian/chunk/{chunk.pk}/change/")
    assert detail.status_code == 200  # viewable
    assert admin_client_logged.post(f"/admin/historian/chunk/{chunk.pk}/change/", {}).status_code == 403
    assert admin_client_logged.get(f"/admin/historian/chunk/{chunk.pk}/delete/").status_code == 403
    assert Chunk.objects.count() == 1
