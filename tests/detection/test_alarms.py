"""Alarms on incidents: latch until acknowledged, shelve with expiry, re-raise deadband, rates, redaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command

from tests.conftest import make_organisation, make_pmu, make_user
from wams import live
from wams.detection import incidents as alarms
from wams.detection.alarm_rates import alarm_rates
from wams.detection.models import AlarmAction, Incident
from wams.detection.services import raise_event
from wams.grid.services import ROLE_OPERATOR, ROLE_VIEWER, organisation_visibility

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def report(key: str, change: str, at_s: float = 0.0, **fields: Any) -> Incident:
    """Record one correlator report of a fault at bus 16."""
    values: dict[str, Any] = {
        "kind": "fault",
        "severity": "alarm",
        "started_at": T0,
        "detected_at": T0 + dt.timedelta(seconds=at_s),
        "bus_number": 16,
        "summary": "Fault near West Walpole",
        "figures": {"voltage_min_pu": 0.4, "unit": "GENROU_5"},
    } | fields
    if change == "ended":
        values["ended_at"] = T0 + dt.timedelta(seconds=at_s)
    return alarms.record_incident(correlation_key=key, change=change, **values)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def publish(group: str, event_type: str, payload: dict[str, Any]) -> None:
        if event_type == live.EVENT_INCIDENT:
            assert group == live.GROUP_INCIDENTS
            sent.append(payload)

    monkeypatch.setattr(live, "publish", publish)
    return sent


def test_the_alarm_latches_after_the_incident_ends_until_acknowledged(
    django_user_model: Any, published: list[dict[str, Any]]
) -> None:
    operator = make_user(django_user_model, ROLE_OPERATOR)
    incident = report("run:1", "opened")
    assert incident.alarm_state == "unack_active"
    incident = report("run:1", "ended", 5.0)
    assert incident.alarm_state == "unack_returned"  # latched: still on the list
    everyone = organisation_visibility(None).__class__(frozenset(), frozenset(), everything=True)
    assert [p["incident_id"] for p in alarms.alarm_list(everyone)] == [incident.pk]

    acked = alarms.acknowledge_incident(incident.pk, operator, comment="seen, crews informed")
    assert acked.alarm_state == "normal"
    assert (acked.acknowledged_by, acked.acknowledge_comment) == (operator, "seen, crews informed")
    assert alarms.alarm_list(everyone) == []
    with pytest.raises(alarms.IncidentActionError, match="already acknowledged"):
        alarms.acknowledge_incident(incident.pk, operator)
    assert [(p["change"], p["notify"]) for p in published] == [
        ("opened", True),
        ("ended", False),
        ("acknowledged", False),
    ]
    assert published[-1]["alarm"]["acknowledged_by"] == operator.username


def test_acknowledged_while_active_stays_on_the_list_until_it_ends(django_user_model: Any) -> None:
    operator = make_user(django_user_model, ROLE_OPERATOR)
    incident = report("run:1", "opened")
    assert alarms.acknowledge_incident(incident.pk, operator).alarm_state == "ack_active"
    assert report("run:1", "ended", 5.0).alarm_state == "normal"


def test_viewers_cannot_act_and_other_organisations_see_no_such_incident(django_user_model: Any) -> None:
    mine, other = make_organisation(), make_organisation()
    pmu = make_pmu(stream=None)
    event, _ = raise_event(kind="voltage_sag", severity="alarm", summary="sag", started_at=T0, pmu_ids=[pmu.pk])
    incident = report("run:1", "opened", event_keys=[event.dedup_key])
    viewer = make_user(django_user_model, ROLE_VIEWER, pmu.owner)
    stranger = make_user(django_user_model, ROLE_OPERATOR, other)
    with pytest.raises(alarms.IncidentPermissionDenied):
        alarms.acknowledge_incident(incident.pk, viewer)
    with pytest.raises(alarms.IncidentNotFound, match="does not exist"):
        alarms.acknowledge_incident(incident.pk, stranger)
    assert mine.pk != other.pk
    assert Incident.objects.get(pk=incident.pk).acknowledged_at is None


def test_a_shelved_alarm_is_hidden_until_its_shelf_expires(
    django_user_model: Any, published: list[dict[str, Any]]
) -> None:
    operator = make_user(django_user_model, ROLE_OPERATOR)
    everyone = organisation_visibility(None).__class__(frozenset(), frozenset(), everything=True)
    incident = report("run:1", "opened")
    with pytest.raises(alarms.IncidentActionError, match="reason"):
        alarms.shelve_incident(incident.pk, operator, reason=" ", duration_s=600)
    with pytest.raises(alarms.IncidentActionError, match="shelve for"):
        alarms.shelve_incident(incident.pk, operator, reason="maintenance", duration_s=10 * 86400)
    shelved = alarms.shelve_incident(incident.pk, operator, reason="known: breaker maintenance", duration_s=600)
    assert shelved.shelved_until is not None
    assert alarms.alarm_list(everyone) == []
    later = shelved.shelved_until + dt.timedelta(seconds=1)
    # Checked on read: the expired shelf no longer hides it, even before the periodic task runs.
    assert [p["incident_id"] for p in alarms.alarm_list(everyone, now=later)] == [incident.pk]
    assert alarms.expire_shelves(later) == 1
    assert alarms.expire_shelves(later) == 0  # safe twice
    assert Incident.objects.get(pk=incident.pk).shelved_until is None
    assert [p["change"] for p in published] == ["opened", "shelved", "unshelved"]
    actions = list(AlarmAction.objects.order_by("pk").values_list("action", "comment"))
    assert actions[-1] == ("unshelved", "shelf expired")


def test_a_re_raise_within_the_deadband_updates_the_incident_without_notifying(
    published: list[dict[str, Any]],
) -> None:
    first = report("run:1", "opened")
    report("run:1", "ended", 2.0)
    again = report("run:2", "opened", 20.0)  # angle wrap, flapping detector: same kind and place
    assert again.pk == first.pk and again.raise_count == 2 and again.state == "active"
    report("run:2", "ended", 25.0)
    far = report("run:3", "opened", 200.0)  # past the 60 s deadband: a new alarm
    assert far.pk != first.pk
    assert Incident.objects.count() == 2
    assert [p["notify"] for p in published].count(True) == 2
    assert [(p["incident_id"], p["change"]) for p in published if p["notify"]] == [
        (first.pk, "opened"),
        (far.pk, "opened"),
    ]


def test_alarm_rates_count_presented_and_acknowledged_per_operator_per_10_minutes(django_user_model: Any) -> None:
    operator = make_user(django_user_model, ROLE_OPERATOR, username="olive")
    make_user(django_user_model, ROLE_OPERATOR, username="oscar")
    ids = [report(f"run:{i}", "opened", bus_number=i + 1).pk for i in range(12)]
    for pk in ids[:3]:
        alarms.acknowledge_incident(pk, operator)
    now = AlarmAction.objects.latest("at").at
    rates = alarm_rates(now - dt.timedelta(minutes=20), now + dt.timedelta(minutes=10))
    assert rates["alarms_raised"] == 12 and rates["n_intervals"] == 3
    by_user = {op["user"]: op for op in rates["operators"]}
    assert by_user["olive"]["presented"] == 12 and by_user["olive"]["acknowledged"] == 3
    assert by_user["olive"]["presented_per_10min_peak"] == 12 and by_user["olive"]["flood_intervals"] == 1
    assert by_user["oscar"]["acknowledged"] == 0 and by_user["oscar"]["presented_per_10min_mean"] == 4.0
    call_command("alarm_rates", "--json")  # the command runs on the same service


def test_an_incident_partly_of_another_organisation_shows_only_what_the_viewer_may_see() -> None:
    mine, theirs = make_organisation(), make_organisation()
    from tests.conftest import make_stream

    my_pmu = make_pmu(stream=make_stream(owner=mine))
    their_pmu = make_pmu(stream=make_stream(owner=theirs))
    e1, _ = raise_event(kind="voltage_sag", severity="alarm", summary="sag A", started_at=T0, pmu_ids=[my_pmu.pk])
    e2, _ = raise_event(kind="voltage_sag", severity="alarm", summary="sag B", started_at=T0, pmu_ids=[their_pmu.pk])
    incident = report("run:1", "opened", event_keys=[e1.dedup_key, e2.dedup_key])
    payload = alarms.incident_payload(incident)
    assert payload["pmu_ids"] == sorted([my_pmu.pk, their_pmu.pk])
    shown = alarms.redact_incident(payload, organisation_visibility(mine.pk))
    assert shown["redacted"] and shown["pmu_ids"] == [my_pmu.pk] and shown["events"] == [e1.pk]
    assert "West Walpole" not in shown["summary"] and "unit" not in shown["figures"]
    assert shown["figures"]["voltage_min_pu"] == 0.4
    assert alarms.incident_visible(payload, organisation_visibility(make_organisation().pk)) is False
    assert alarms.redact_incident(payload, organisation_visibility(None).__class__(frozenset(), frozenset(), True)) == (
        payload
    )
