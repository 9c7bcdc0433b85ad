"""The control log is append-only: the model, its queryset and the admin refuse changes and deletions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import make_organisation
from wams.control.models import AppendOnlyError, AuditRecord

pytestmark = pytest.mark.django_db


def make_record(**fields) -> AuditRecord:
    values = {"actor": "olga", "origin": "operator", "target": "Breaker 1", "action": "open", "outcome": "refused"}
    values.update(fields)
    return AuditRecord.objects.create(**values)


def test_records_can_be_added_but_not_changed_or_deleted():
    record = make_record(organisation=make_organisation())

    record.detail = "rewritten"
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=record.pk).update(detail="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.bulk_update([record], ["detail"])

    assert AuditRecord.objects.get(pk=record.pk).detail == ""
    assert AuditRecord.objects.count() == 1


def test_admin_lists_records_but_offers_no_add_change_or_delete(admin_client_logged):
    record = make_record()

    assert admin_client_logged.get(reverse("admin:control_auditrecord_changelist")).status_code == 200
    assert admin_client_logged.get(reverse("admin:control_auditrecord_add")).status_code == 403
    change_url = reverse("admin:control_auditrecord_change", args=[record.pk])
    assert admin_client_logged.post(change_url, {"detail": "rewritten", "actor": "x"}).status_code == 403
    delete_url = reverse("admin:control_auditrecord_delete", args=[record.pk])
    assert admin_client_logged.post(delete_url, {"post": "yes"}).status_code == 403
    changelist = admin_client_logged.get(reverse("admin:control_auditrecord_changelist"))
    assert b"delete_selected" not in changelist.content
    assert AuditRecord.objects.get(pk=record.pk).detail == ""
