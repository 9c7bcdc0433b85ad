"""HTTPS deployment settings: switched by the environment, visible as headers and cookie flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

pytestmark = pytest.mark.django_db

SETTING_NAMES = [
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "X_FRAME_OPTIONS",
]


def settings_under(env: dict[str, str]) -> dict[str, Any]:
    """Import wams.settings in a fresh interpreter with `env` and return the security settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WAMS_") or k == "WAMS_VAR_DIR"}
    clean.update({"SECRET_KEY": "x", "DJANGO_SETTINGS_MODULE": "wams.settings", **env})
    code = f"import json, wams.settings as s; print(json.dumps({{n: getattr(s, n) for n in {SETTING_NAMES!r}}}))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=django_settings.BASE_DIR, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return dict(json.loads(out.stdout))


def test_the_defaults_suit_the_plain_http_demo():
    values = settings_under({})
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert values["SECURE_SSL_REDIRECT"] is False and values["SECURE_HSTS_SECONDS"] == 0
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    # Always on, whatever the scheme.
    assert values["SESSION_COOKIE_HTTPONLY"] is True and values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY" and values["SECURE_REFERRER_POLICY"] == "same-origin"


def test_one_switch_turns_on_https_and_the_finer_switches_adjust_it():
    values = settings_under({"WAMS_HTTPS": "1", "WAMS_PROXY_SSL_HEADER": "X-Forwarded-Proto"})
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    finer = settings_under(
        {
            "WAMS_HTTPS": "1",
            "WAMS_SSL_REDIRECT": "0",
            "WAMS_HSTS_SECONDS": "3600",
            "WAMS_HSTS_INCLUDE_SUBDOMAINS": "1",
            "WAMS_HSTS_PRELOAD": "1",
        }
    )
    assert finer["SECURE_SSL_REDIRECT"] is False and finer["SESSION_COOKIE_SECURE"] is True
    assert (finer["SECURE_HSTS_SECONDS"], finer["SECURE_HSTS_INCLUDE_SUBDOMAINS"], finer["SECURE_HSTS_PRELOAD"]) == (
        3600,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WAMS_HTTPS": "maybe"}, "WAMS_HTTPS"),
        ({"WAMS_PROXY_SSL_HEADER": "X-Forwarded-Proto: https"}, "WAMS_PROXY_SSL_HEADER"),
        ({"WAMS_HSTS_SECONDS": "-1"}, "WAMS_HSTS_SECONDS"),
        ({"WAMS_LOGIN_LOCKOUT_BY": "cookie"}, "WAMS_LOGIN_LOCKOUT_BY"),
        ({"WAMS_LOGIN_FAILURE_LIMIT": "0"}, "WAMS_LOGIN_FAILURE_LIMIT"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(env, message):
    with pytest.raises(RuntimeError, match=message):
        settings_under(env)


HTTPS_ON = {
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31_536_000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
}


def test_with_https_on_plain_http_is_redirected_except_the_health_check(client):
    with override_settings(**HTTPS_ON):
        response = client.get("/accounts/login/")
        assert response.status_code == 301 and response["Location"].startswith("https://")
        assert client.get("/healthz").status_code == 200


def test_with_https_on_the_headers_and_cookie_flags_are_sent(client, django_user_model):
    django_user_model.objects.create_user(username="operator", password="pw-123456")
    with override_settings(**HTTPS_ON):
        page = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
        assert page.status_code == 200
        assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert page["X-Content-Type-Options"] == "nosniff"
        assert page["X-Frame-Options"] == "DENY"
        assert page["Referrer-Policy"] == "same-origin"
        assert page.cookies["csrftoken"]["secure"] is True
        login = client.post(
            "/accounts/login/", {"username": "operator", "password": "pw-123456"}, HTTP_X_FORWARDED_PROTO="https"
        )
        assert login.status_code == 302
        session = login.cookies["sessionid"]
        assert session["secure"] is True and session["httponly"] is True


def test_with_https_off_cookies_are_not_secure_but_stay_http_only(client, django_user_model):
    django_user_model.objects.create_user(username="operator", password="pw-123456")
    page = client.get("/accounts/login/")
    assert "Strict-Transport-Security" not in page
    assert page["X-Frame-Options"] == "DENY"
    login = client.post("/accounts/login/", {"username": "operator", "password": "pw-123456"})
    assert login.cookies["sessionid"]["secure"] == "" and login.cookies["sessionid"]["httponly"] is True
