"""The Content-Security-Policy header, and templates that need nothing it forbids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    return {name: values for name, *values in directives}


def test_every_page_carries_the_policy_with_no_inline_or_eval_scripts(client):
    directives = policy(client.get("/accounts/login/"))
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]


def test_connect_src_adds_the_sites_own_websocket_origin(client):
    assert policy(client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000"))["connect-src"] == [
        "'self'",
        "ws://127.0.0.1:8000",
    ]
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        secure = client.get("/accounts/login/", HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https")
    assert policy(secure)["connect-src"] == ["'self'", "wss://localhost"]


def test_the_policy_holds_with_https_on_and_in_debug(client):
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert policy(client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https"))["script-src"] == ["'self'"]
    with override_settings(DEBUG=True):  # a new client: the first one's middleware kept the redirect setting
        assert policy(Client().get("/accounts/login/"))["script-src"] == ["'self'"]


def test_a_foreign_host_header_gets_its_400_without_an_error(client):
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_the_admin_pages_carry_the_policy(admin_client_logged):
    response = admin_client_logged.get("/admin/auth/user/add/")
    assert response.status_code == 200
    assert policy(response)["script-src"] == ["'self'"]


def template_files() -> list[Path]:
    roots = [settings.BASE_DIR / "templates", settings.BASE_DIR / "dashboards", settings.BASE_DIR / "wams"]
    return sorted(path for root in roots for path in root.rglob("*.html") if "templates" in path.parts)


SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


def test_no_template_has_an_inline_script_or_event_handler():
    files = template_files()
    assert len(files) > 15
    offenders = []
    for path in files:
        text = path.read_text()
        for attributes in SCRIPT_TAG.findall(text):
            if "src=" not in attributes:
                offenders.append((path.name, attributes))
        if EVENT_HANDLER.search(text) or "javascript:" in text:
            offenders.append((path.name, "event handler"))
    assert offenders == []


def test_no_static_script_builds_code_from_strings():
    scripts = sorted((settings.BASE_DIR / "static" / "js").glob("*.js"))
    assert scripts
    for path in scripts:
        text = path.read_text()
        assert not re.search(r"\beval\(|new Function\(|setTimeout\(\s*[\"']|\son[a-z]+=\\?[\"']", text), path.name
