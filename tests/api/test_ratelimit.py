"""Rate limits: per application token on /api/, per user on control actions and pages, 429 with Retry-After."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client, RequestFactory

from tests.api.conftest import bearer, make_application
from tests.conftest import make_organisation, make_user
from wams import ratelimit

pytestmark = [pytest.mark.django_db, pytest.mark.urls("wams.urls")]

REDIS_TEST_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/11"


@pytest.fixture(autouse=True)
def _own_counters(settings: Any) -> None:
    """Give each test fresh counters: a prefix of its own in whatever cache is configured."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"


def test_a_token_over_its_limit_gets_429_with_retry_after_and_another_token_is_unaffected(
    client: Client, settings: Any
) -> None:
    settings.WAMS_API_RATE = (3, 60)
    _, token = make_application(make_organisation())
    _, other = make_application(make_organisation())
    assert [client.get("/api/v1/pmus", **bearer(token)).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/v1/pmus", **bearer(token))
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "rate limit of 3 requests per 60 s" in refused.json()["error"]
    # every endpoint shares the token's budget
    assert client.get("/api/v1/events", **bearer(token)).status_code == 429
    assert client.get("/api/v1/pmus", **bearer(other)).status_code == 200


def test_control_actions_are_limited_per_user(client: Client, settings: Any, django_user_model: Any) -> None:
    settings.WAMS_CONTROL_RATE = (2, 60)
    organisation = make_organisation()
    first, second = (make_user(django_user_model, "operator", organisation) for _ in range(2))
    client.force_login(first)
    # cancelling a selection that does not exist still counts as an action
    answers = [client.post("/control/commands/999999/cancel", {"reason": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 429]
    assert int(answers[-1]["Retry-After"]) >= 1 and "rate limit" in answers[-1].json()["error"]
    assert client.post("/control/devices/999999/select", {"action": "open"}).status_code == 429
    client.force_login(second)
    assert client.post("/control/commands/999999/cancel", {"reason": "x"}).status_code == 404


def test_page_reads_are_limited_per_user(client: Client, settings: Any, django_user_model: Any) -> None:
    settings.WAMS_PAGE_RATE = (2, 60)
    user = make_user(django_user_model, "viewer", make_organisation())
    client.force_login(user)
    statuses = [client.get("/pmus/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert int(client.get("/pmus/")["Retry-After"]) >= 1


def test_limits_are_off_when_unset(client: Client, settings: Any) -> None:
    settings.WAMS_API_RATE = None
    _, token = make_application(make_organisation())
    assert all(client.get("/api/v1/pmus", **bearer(token)).status_code == 200 for _ in range(5))


@pytest.mark.redis
def test_two_cache_clients_on_redis_share_one_counter(settings: Any) -> None:
    """Two web processes are two Redis clients: what one counts, the other sees."""
    backend = "django.core.cache.backends.redis.RedisCache"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "web1": {"BACKEND": backend, "LOCATION": REDIS_TEST_URL},
        "web2": {"BACKEND": backend, "LOCATION": REDIS_TEST_URL},
    }
    try:
        caches["web1"].get("probe")
    except Exception as exc:  # noqa: BLE001 - no Redis here: say so rather than fail on a missing service
        pytest.skip(f"Redis at {REDIS_TEST_URL} is not reachable: {exc}")
    assert caches["web1"] is not caches["web2"]
    request = RequestFactory().get("/api/v1/pmus")
    rate = (3, 60)
    settings.RATELIMIT_USE_CACHE = "web1"
    assert [ratelimit.hit(request, "api", "application:1", rate) for _ in range(2)] == [None, None]
    settings.RATELIMIT_USE_CACHE = "web2"
    assert ratelimit.hit(request, "api", "application:1", rate) is None
    limited = ratelimit.hit(request, "api", "application:1", rate)
    assert limited is not None and 1 <= limited.retry_after_s <= 60
    assert ratelimit.hit(request, "api", "application:2", rate) is None


def test_an_unreachable_cache_lets_requests_through(settings: Any) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    request = RequestFactory().get("/api/v1/pmus")
    assert ratelimit.hit(request, "api", "application:1", (1, 60)) is None
    assert ratelimit.hit(request, "api", "application:1", (1, 60)) is None
