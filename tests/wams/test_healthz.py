import pytest
from django.test import override_settings

from tests.conftest import make_stream
from wams.pdc.models import LinkState

pytestmark = pytest.mark.django_db

STOPPED_REDIS = {"REDIS_URL": "redis://127.0.0.1:1/0", "EMBEDDED": False, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("engineer", password="pw-123456", is_staff=True))
    return client


@pytest.fixture
def secret_stream():
    stream = make_stream(name="Pleasant Valley private PDC")
    LinkState.objects.create(stream=stream, state="streaming")
    return stream


def test_anonymous_callers_get_the_status_alone(client, secret_stream):
    with override_settings(REDIS_URL=None, EMBEDDED=True):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "up"}
    assert b"Pleasant Valley" not in response.content


def test_a_logged_in_non_staff_user_gets_the_status_alone(client, django_user_model, secret_stream):
    client.force_login(django_user_model.objects.create_user("operator", password="pw-123456"))
    with override_settings(REDIS_URL=None, EMBEDDED=True):
        response = client.get("/healthz?details=1")
    assert response.json() == {"status": "up"}


def test_staff_get_every_part_and_the_links(staff_client, secret_stream):
    with override_settings(REDIS_URL=None, EMBEDDED=True):
        response = staff_client.get("/healthz?details=1")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "up"
    assert body["database"]["status"] == "up"
    assert body["redis"]["status"] == "not_configured"
    assert set(body) >= {"database", "redis", "workers", "pdc_links", "status"}
    assert [link["stream"] for link in body["pdc_links"]["links"]] == ["Pleasant Valley private PDC"]


def test_a_stopped_redis_answers_503_down_to_anyone_rather_than_crashing(client, staff_client):
    from django.test import Client

    with override_settings(**STOPPED_REDIS):
        anonymous = Client().get("/healthz")
        staff = staff_client.get("/healthz")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "down"}
    assert staff.status_code == 503
    body = staff.json()
    assert body["redis"]["status"] == "down"
    assert body["status"] == "down"
    assert body["database"]["status"] == "up"


@pytest.mark.redis
def test_healthz_sees_the_real_redis_up(staff_client):
    with override_settings(REDIS_URL="redis://127.0.0.1:6379/0", EMBEDDED=False):
        response = staff_client.get("/healthz")
    assert response.json()["redis"]["status"] == "up"
