import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tests.dashboards.conftest import make_event
from wams.detection.models import Event

pytestmark = pytest.mark.django_db

PAGES = ["overview", "phasors", "pmus", "events", "history"]


def config_of(response):
    return json.loads(
        response.content.decode().split('id="wams-config" type="application/json">')[1].split("</script>")[0]
    )


@pytest.mark.parametrize("name", PAGES)
def test_every_page_sends_anonymous_users_to_login(client, name):
    response = client.get(reverse(f"dashboards:{name}"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_user_without_a_role_is_refused(client, scenario):
    client.force_login(scenario.nobody)
    assert client.get(reverse("dashboards:overview")).status_code == 403


def test_overview_lists_own_and_shared_pmus_but_not_another_organisations(client, scenario):
    client.force_login(scenario.viewer_a)
    response = client.get(reverse("dashboards:overview"))
    assert response.status_code == 200
    ids = {pmu["id"] for pmu in config_of(response)["pmus"]}
    assert ids == {scenario.a1.pk, scenario.a2.pk, scenario.b2.pk}
    assert config_of(response)["ws_path"] == "/ws/live/"


def test_pmu_page_of_another_organisation_is_not_found(client, scenario):
    client.force_login(scenario.viewer_a)
    assert client.get(reverse("dashboards:pmu", args=[scenario.b1.pk])).status_code == 404
    assert client.get(reverse("dashboards:pmu", args=[scenario.b2.pk])).status_code == 200
    assert client.get(reverse("dashboards:pmu", args=[scenario.a1.pk])).status_code == 200


def test_pmu_page_connects_to_its_own_socket_and_lists_channels_and_paths(client, scenario):
    client.force_login(scenario.viewer_a)
    response = client.get(reverse("dashboards:pmu", args=[scenario.a1.pk]))
    config = config_of(response)
    assert config["ws_path"] == f"/ws/pmu/{scenario.a1.pk}/"
    assert [pmu["id"] for pmu in config["pmus"]] == [scenario.a1.pk]
    # 345 kV base, phase to neutral.
    assert config["base_v"] == pytest.approx(345_000 / 3**0.5, rel=1e-9)


def test_substation_page_of_another_organisation_is_not_found_unless_a_shared_pmu_is_there(client, scenario):
    client.force_login(scenario.viewer_a)
    assert client.get(reverse("dashboards:substation", args=[scenario.sub_a.pk])).status_code == 200
    # Bravo hosts B2, shared with A: visible, but only B2 and none of B's devices.
    response = client.get(reverse("dashboards:substation", args=[scenario.sub_b.pk]))
    assert response.status_code == 200
    assert {pmu["id"] for pmu in config_of(response)["pmus"]} == {scenario.b2.pk}
    scenario.b2.shared_with.clear()
    assert client.get(reverse("dashboards:substation", args=[scenario.sub_b.pk])).status_code == 404


def test_device_panel_is_shown_to_operators_and_hidden_from_viewers_and_engineers(client, scenario):
    url = reverse("dashboards:substation", args=[scenario.sub_a.pk])
    client.force_login(scenario.operator_a)
    body = client.get(url).content.decode()
    assert 'data-role="device-panel"' in body
    assert "Load A" in body
    for user in (scenario.viewer_a, scenario.engineer_a):
        client.force_login(user)
        body = client.get(url).content.decode()
        assert 'data-role="device-panel"' not in body
        assert "Load A" not in body


def test_operator_device_panel_lists_only_own_organisations_devices(client, scenario):
    client.force_login(scenario.operator_a)
    body = client.get(reverse("dashboards:substation", args=[scenario.sub_b.pk])).content.decode()
    assert "Load B" not in body


def test_events_list_shows_only_events_of_visible_pmus(client, scenario):
    own = make_event([scenario.a1], summary="own event")
    shared = make_event([scenario.b2], summary="shared event", dedup_key="b2")
    private = make_event([scenario.b1], summary="private event", dedup_key="b1")
    client.force_login(scenario.viewer_a)
    body = client.get(reverse("dashboards:events")).content.decode()
    assert "own event" in body and "shared event" in body
    assert "private event" not in body
    assert client.get(reverse("dashboards:event", args=[private.pk])).status_code == 404
    assert client.get(reverse("dashboards:event", args=[shared.pk])).status_code == 200
    assert client.get(reverse("dashboards:event", args=[own.pk])).status_code == 200


def test_events_list_filters_active_and_all(client, scenario):
    make_event([scenario.a1], summary="still raised")
    make_event(
        [scenario.a1],
        summary="long cleared",
        state=Event.State.CLEARED,
        dedup_key="x",
        acknowledged_at=datetime(2026, 1, 5, 12, 1, tzinfo=UTC),
    )
    client.force_login(scenario.viewer_a)
    active = client.get(reverse("dashboards:events")).content.decode()
    everything = client.get(reverse("dashboards:events") + "?state=all").content.decode()
    assert "still raised" in active and "long cleared" not in active
    assert "long cleared" in everything


def test_viewer_sees_no_acknowledge_button_and_cannot_acknowledge(client, scenario):
    event = make_event([scenario.a1])
    client.force_login(scenario.viewer_a)
    assert "Acknowledge</button>" not in client.get(reverse("dashboards:events")).content.decode()
    response = client.post(reverse("dashboards:acknowledge", args=[event.pk]))
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.state == Event.State.RAISED


def test_operator_acknowledges_an_event_and_browsers_are_told(client, scenario, monkeypatch):
    from wams import live

    sent = []
    monkeypatch.setattr(live, "publish", lambda group, kind, payload: sent.append((group, kind, payload)))
    event = make_event([scenario.a1])
    client.force_login(scenario.operator_a)
    response = client.post(reverse("dashboards:acknowledge", args=[event.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboards:event", args=[event.pk])
    event.refresh_from_db()
    assert event.state == Event.State.ACKNOWLEDGED
    assert event.acknowledged_by == scenario.operator_a
    alarms = [payload for group, kind, payload in sent if (group, kind) == (live.GROUP_ALARMS, live.EVENT_ALARM)]
    assert alarms and alarms[0]["event_id"] == event.pk and alarms[0]["state"] == "acknowledged"


def test_operator_of_another_organisation_cannot_acknowledge_an_invisible_event(client, scenario):
    event = make_event([scenario.a1])
    client.force_login(scenario.operator_b)
    assert client.post(reverse("dashboards:acknowledge", args=[event.pk])).status_code == 404


def test_acknowledging_twice_keeps_the_first_acknowledgement(client, scenario):
    event = make_event([scenario.a1])
    client.force_login(scenario.operator_a)
    client.post(reverse("dashboards:acknowledge", args=[event.pk]))
    first = Event.objects.get(pk=event.pk).acknowledged_at
    response = client.post(reverse("dashboards:acknowledge", args=[event.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert Event.objects.get(pk=event.pk).acknowledged_at == first


def test_event_detail_plots_the_window_around_the_event(client, scenario, fake_history):
    event = make_event([scenario.a1, scenario.b1])
    client.force_login(scenario.viewer_a)
    response = client.get(reverse("dashboards:event", args=[event.pk]))
    assert response.status_code == 200
    call = fake_history.calls[0]
    assert call["pmus"] == [scenario.a1.pk]  # B1 is not visible to A
    assert call["start"] == datetime(2026, 1, 5, 11, 59, 30, tzinfo=UTC)
    assert call["end"] == datetime(2026, 1, 5, 12, 1, 0, tzinfo=UTC)
    figures = response.context["window_figures"]
    assert [f["figure"]["layout"]["yaxis"]["title"]["text"] for f in figures] == [
        "Frequency (Hz)",
        "ROCOF (Hz/s)",
        "Voltage magnitude (pu)",
    ]


def test_event_detail_explains_when_the_historian_cannot_answer(client, scenario, monkeypatch):
    from dashboards import history

    def unavailable(*args, **kwargs):
        raise history.HistoryUnavailable("down for maintenance")

    monkeypatch.setattr("dashboards.historian_adapter.read_windows", unavailable)
    event = make_event([scenario.a1])
    client.force_login(scenario.viewer_a)
    response = client.get(reverse("dashboards:event", args=[event.pk]))
    assert response.status_code == 200
    assert "down for maintenance" in response.content.decode()


def test_history_plots_decimated_data_of_visible_pmus(client, scenario, fake_history):
    client.force_login(scenario.viewer_a)
    query = {
        "pmus": [scenario.a1.pk, scenario.b2.pk],
        "quantity": "frequency_hz",
        "start": "2026-01-05T12:00:00",
        "end": "2026-01-05T12:01:00",
        "speed": "4",
    }
    response = client.get(reverse("dashboards:history"), query)
    assert response.status_code == 200
    assert fake_history.calls[0]["max_points"] == 2000
    figure = response.context["figure"]
    assert figure["layout"]["yaxis"]["title"]["text"] == "Frequency (Hz)"
    assert figure["layout"]["xaxis"]["title"]["text"] == "Time (UTC)"
    assert len(figure["data"]) == 2
    replay = response.context["replay"]["overview"]
    assert "replay=1" in replay and "speed=4" in replay and "start=1767614400.000" in replay


def test_history_refuses_a_pmu_of_another_organisation(client, scenario, fake_history):
    client.force_login(scenario.viewer_a)
    query = {
        "pmus": [scenario.b1.pk],
        "quantity": "frequency_hz",
        "start": "2026-01-05T12:00:00",
        "end": "2026-01-05T12:01:00",
    }
    response = client.get(reverse("dashboards:history"), query)
    assert response.context["figure"] is None
    assert fake_history.calls == []
    assert client.get(reverse("dashboards:history_export"), {**query, "format": "csv"}).status_code == 400


def test_history_export_downloads_an_attachment(client, scenario, fake_history):
    client.force_login(scenario.viewer_a)
    query = {"pmus": [scenario.a1.pk], "start": "2026-01-05T12:00:00", "end": "2026-01-05T12:01:00", "format": "csv"}
    response = client.get(reverse("dashboards:history_export"), query)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'


def test_history_export_refuses_windows_longer_than_a_day(client, scenario, fake_history):
    client.force_login(scenario.viewer_a)
    query = {"pmus": [scenario.a1.pk], "start": "2026-01-05T00:00:00", "end": "2026-01-06T00:00:01", "format": "csv"}
    assert client.get(reverse("dashboards:history_export"), query).status_code == 400


def test_overview_starts_its_live_figures_from_the_last_two_stored_minutes(client, scenario, fake_history):
    client.force_login(scenario.viewer_a)
    config = config_of(client.get(reverse("dashboards:overview")))
    call = fake_history.calls[0]
    assert (call["end"] - call["start"]).total_seconds() == 120
    assert call["max_points"] == 1200  # 10 points per second
    traces = config["figures"]["frequency"]["data"]
    assert all(len(trace["x"]) == len(trace["y"]) > 3000 for trace in traces)
    assert traces[0]["y"][0] == pytest.approx(60.0)
    assert traces[0]["y"][-1] is None  # the line breaks before the live data


def test_a_replay_page_is_not_back_filled_with_recent_data(client, scenario, fake_history):
    client.force_login(scenario.viewer_a)
    config = config_of(client.get(reverse("dashboards:overview") + "?replay=1&event=1&speed=2"))
    assert fake_history.calls == []
    assert all(trace["x"] == [] for trace in config["figures"]["frequency"]["data"])


@pytest.mark.parametrize(
    "target", ["abc", "-1", "[]", "2026-13-45T99:99:99Z", "//evil.example/x", "https://evil.example/"]
)
def test_acknowledge_with_a_next_that_is_no_path_of_this_site_returns_to_the_event(client, scenario, target):
    event = make_event([scenario.a1])
    client.force_login(scenario.operator_a)
    response = client.post(reverse("dashboards:acknowledge", args=[event.pk]), {"next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboards:event", args=[event.pk])
    followed = client.post(reverse("dashboards:acknowledge", args=[event.pk]), {"next": "/events/?state=all"})
    assert followed["Location"] == "/events/?state=all"
