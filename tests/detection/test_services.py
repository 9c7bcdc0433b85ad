import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tests.conftest import make_pmu, make_user
from wams import live
from wams.detection.models import Event
from wams.detection.services import EventActionError, acknowledge_event, clear_event, raise_event

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_same_condition_raised_twice_is_one_event_until_cleared():
    pmu = make_pmu()
    first, new1 = raise_event(
        kind="under_frequency",
        severity="warning",
        summary="f low",
        started_at=T0,
        pmu_ids=[pmu.pk],
        quantities={"frequency_nadir_hz": 59.7},
    )
    second, new2 = raise_event(
        kind="under_frequency",
        severity="alarm",
        summary="f lower",
        started_at=T0,
        pmu_ids=[pmu.pk],
        quantities={"frequency_nadir_hz": 59.5},
    )
    assert new1 and not new2
    assert first.pk == second.pk
    second.refresh_from_db()
    assert second.severity == "alarm"
    assert second.quantities["frequency_nadir_hz"] == 59.5
    assert list(second.substations.all()) == [pmu.substation]
    cleared = clear_event(second.dedup_key, ended_at=T0 + dt.timedelta(seconds=5))
    assert cleared is not None and cleared.state == Event.State.CLEARED
    third, new3 = raise_event(
        kind="under_frequency", severity="warning", summary="again", started_at=T0, pmu_ids=[pmu.pk]
    )
    assert new3 and third.pk != first.pk


def test_acknowledge_records_who_and_refuses_twice(django_user_model):
    user = make_user(django_user_model, "operator")
    event, _ = raise_event(kind="rocof", severity="alarm", summary="df/dt", started_at=T0)
    acked = acknowledge_event(event.pk, user)
    assert acked.state == Event.State.ACKNOWLEDGED and acked.acknowledged_by == user
    with pytest.raises(EventActionError, match="already acknowledged"):
        acknowledge_event(event.pk, user)
    with pytest.raises(EventActionError, match="does not exist"):
        acknowledge_event(999999, user)


def test_raising_an_event_notifies_the_alarm_group_after_commit():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.GROUP_ALARMS, channel)
    event, _ = raise_event(kind="voltage_sag", severity="warning", summary="sag", started_at=T0)
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == live.EVENT_ALARM
    assert message["payload"]["event_id"] == event.pk
    assert message["payload"]["kind"] == "voltage_sag"
