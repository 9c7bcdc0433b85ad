import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


def registered_models():
    return [(m._meta.app_label, m._meta.model_name) for m in admin.site._registry]


@pytest.mark.parametrize("view", ["changelist", "add"])
def test_every_admin_changelist_and_add_page_answers_200(admin_client_logged, view):
    from django.core.management import call_command

    call_command("load_demo", "--no-accounts")
    failures = []
    for app_label, model_name in registered_models():
        url = reverse(f"admin:{app_label}_{model_name}_{view}")
        response = admin_client_logged.get(url)
        if response.status_code != 200 and not (view == "add" and response.status_code == 403):
            failures.append((url, response.status_code))
    assert failures == []
    assert len(registered_models()) >= 12


def test_admin_changelist_search_and_filter_work(admin_client_logged):
    from django.core.management import call_command

    call_command("load_demo", "--no-accounts")
    response = admin_client_logged.get(reverse("admin:grid_pmu_changelist"), {"q": "MLSTN"})
    assert response.status_code == 200
    assert b"MLSTN-B6" in response.content
    response = admin_client_logged.get(reverse("admin:grid_stream_changelist"), {"kind__exact": "pdc"})
    assert b"Boston PDC" in response.content


def test_admin_disable_action_switches_the_stream_off_through_the_grid_service(
    admin_client_logged, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from wams.grid.models import Stream
    from wams.pdc.models import LinkState

    call_command("load_demo", "--no-accounts")
    stream = Stream.objects.get(name="Boston PDC")
    LinkState.objects.create(stream=stream, state="streaming", rate_fps=30.0)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged.post(
            reverse("admin:grid_stream_changelist"),
            {"action": "disable_streams", "_selected_action": [stream.pk]},
            follow=True,
        )
    assert response.status_code == 200
    stream.refresh_from_db()
    assert stream.enabled is False
    assert LinkState.objects.get(stream=stream).state == "disabled"
