"""Admin pages of detection and the API: settings, events, fault-record upload, application tokens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import make_organisation
from tests.detection.test_live_fault_records import record_files
from wams.api.auth import authenticate
from wams.api.models import Application
from wams.detection.models import DetectorSettings, FaultRecord

pytestmark = pytest.mark.django_db


def test_detection_admin_pages_render(admin_client_logged: Any) -> None:
    DetectorSettings.objects.create()
    for url in (
        "/admin/detection/detectorsettings/",
        "/admin/detection/detectorsettings/add/",
        "/admin/detection/event/",
        "/admin/detection/eventwindow/",
        "/admin/detection/faultrecord/",
        "/admin/detection/faultrecord/upload/",
        "/admin/detection/oscillationanalysis/",
        "/admin/api/application/",
        "/admin/api/subscription/add/",
        "/admin/api/delivery/",
    ):
        assert admin_client_logged.get(url).status_code == 200, url


def test_a_second_default_detector_settings_row_is_refused(admin_client_logged: Any) -> None:
    DetectorSettings.objects.create()
    response = admin_client_logged.post("/admin/detection/detectorsettings/add/", _settings_form())
    assert response.status_code == 200 and "already a default row" in response.content.decode()
    assert DetectorSettings.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_fault_records_are_uploaded_through_the_admin(admin_client_logged: Any, tmp_path: Path) -> None:
    files = record_files(tmp_path, "fr", "SUB1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    uploads = [SimpleUploadedFile(name, content) for name, content in files]
    response = admin_client_logged.post("/admin/detection/faultrecord/upload/", {"records": uploads}, follow=True)
    assert response.status_code == 200
    record = FaultRecord.objects.get()
    assert record.uploaded_by == "user root" and record.event is not None
    assert "stored, attached to event" in response.content.decode()


def test_adding_an_application_shows_its_token_once(admin_client_logged: Any) -> None:
    organisation = make_organisation()
    response = admin_client_logged.post(
        "/admin/api/application/add/",
        {
            "name": "EMS",
            "organisation": organisation.pk,
            "description": "",
            "enabled": "on",
            "subscriptions-TOTAL_FORMS": "0",
            "subscriptions-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    text = response.content.decode()
    token = text.split("Token for EMS: ")[1].split(" ")[0]
    assert authenticate(f"Bearer {token}") == Application.objects.get(name="EMS")
    assert token not in admin_client_logged.get("/admin/api/application/").content.decode()


def _settings_form() -> dict[str, Any]:
    fields = {f.name: f.default for f in DetectorSettings._meta.concrete_fields if f.name not in {"id", "group"}}
    fields["enabled"] = "on"
    fields["group"] = ""
    return fields
