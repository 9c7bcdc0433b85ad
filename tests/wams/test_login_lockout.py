"""Login lockout (django-axes) on the operator login page and the admin login."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
PASSWORD = "pw-123456"


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="operator", password=PASSWORD)


def attempt(client: Client, password: str, username: str = "operator", url: str = LOGIN) -> Any:
    return client.post(url, {"username": username, "password": password, "next": "/"})


def fail(client: Client, times: int, username: str = "operator", url: str = LOGIN) -> None:
    for _ in range(times):
        response = attempt(client, "wrong-password", username, url)
        assert response.status_code in (200, 429)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_ten_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(client, operator, settings):
    assert settings.AXES_FAILURE_LIMIT == 10
    fail(client, 10)
    response = attempt(client, PASSWORD)
    assert response.status_code == 429
    assert b"Login locked" in response.content
    assert b"15 minutes" in response.content
    assert not logged_in(client)


def test_nine_wrong_passwords_do_not_lock_and_a_success_clears_the_count(client, operator):
    fail(client, 9)
    response = attempt(client, PASSWORD)
    assert response.status_code == 302 and logged_in(client)
    client.logout()
    # The success reset the count: nine more failures still leave the account open.
    fail(client, 9)
    assert attempt(client, PASSWORD).status_code == 302


def test_the_tenth_failure_already_answers_with_the_lockout_page_not_an_error(client, operator):
    fail(client, 9)
    response = attempt(client, "wrong-password")
    assert response.status_code == 429
    assert b"axes_reset_username" in response.content


def test_an_admin_reset_lifts_the_lock(client, operator):
    fail(client, 10)
    assert attempt(client, PASSWORD).status_code == 429
    call_command("axes_reset_username", "operator")
    response = attempt(client, PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_the_lock_expires_after_the_cool_off(client, operator):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    fail(client, 10)
    assert attempt(client, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    assert attempt(client, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert attempt(client, PASSWORD).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_lockout_page_is_served_through_the_asgi_handler_too(operator):
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    async def body() -> tuple[int, bytes]:
        client = AsyncClient()
        for _ in range(10):
            await client.post(LOGIN, {"username": "operator", "password": "wrong"})
        response = await client.post(LOGIN, {"username": "operator", "password": PASSWORD})
        return response.status_code, response.content

    status, content = async_to_sync(body)()
    assert status == 429
    assert b"Login locked" in content and b"operator" in content


def test_the_admin_login_is_locked_too(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", PASSWORD)
    fail(client, 10, username="root", url=ADMIN_LOGIN)
    response = attempt(client, PASSWORD, username="root", url=ADMIN_LOGIN)
    assert response.status_code == 429
    assert not logged_in(client)
    # A lock from the admin login holds on the operator login as well: it is the account that is locked.
    assert attempt(client, PASSWORD, username="root").status_code == 429


def test_failures_spread_over_usernames_lock_the_client_address(client, operator, django_user_model):
    django_user_model.objects.create_user(username="viewer", password=PASSWORD)
    for n in range(10):
        attempt(client, "wrong-password", username=f"guess{n}")
    assert attempt(client, PASSWORD, username="viewer").status_code == 429
    # Another address is not affected.
    other = Client(REMOTE_ADDR="192.0.2.10")
    assert attempt(other, PASSWORD, username="viewer").status_code == 302


def test_username_only_lockout_leaves_the_address_open(client, operator, django_user_model, settings):
    settings.AXES_LOCKOUT_PARAMETERS = ["username"]
    django_user_model.objects.create_user(username="viewer", password=PASSWORD)
    for n in range(10):
        attempt(client, "wrong-password", username=f"guess{n}")
    assert attempt(client, PASSWORD, username="viewer").status_code == 302


def test_a_forwarded_for_header_does_not_change_the_address_that_is_counted(operator):
    client = Client()
    for n in range(10):
        client.post(LOGIN, {"username": "operator", "password": "x"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    assert attempt(client, PASSWORD).status_code == 429


def test_force_login_and_sessions_keep_working_for_tests(client, operator):
    client.force_login(operator)
    assert client.get("/").status_code in (200, 302, 403)
    assert logged_in(client)
