import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_up_in_embedded_mode(client):
    with override_settings(REDIS_URL=None, EMBEDDED=True):
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["status"] == "up"
    assert body["redis"]["status"] == "not_configured"
    assert set(body) >= {"database", "redis", "workers", "pdc_links", "status"}


def test_healthz_reports_a_stopped_redis_as_down_rather_than_crashing(client):
    # Nothing listens on port 1: the same as a stopped Redis.
    with override_settings(
        REDIS_URL="redis://127.0.0.1:1/0", EMBEDDED=False, CELERY_BROKER_URL="redis://127.0.0.1:1/0"
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"]["status"] == "down"
    assert body["status"] == "down"
    assert body["database"]["status"] == "up"


@pytest.mark.redis
def test_healthz_sees_the_real_redis_up(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:6379/0", EMBEDDED=False):
        response = client.get("/healthz")
    assert response.json()["redis"]["status"] == "up"
