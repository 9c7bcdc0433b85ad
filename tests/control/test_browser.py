"""Browser: an operator opens a breaker from the control panel and sees its state change.

Daphne serves the project (with /control/ and /ws/control/ mounted) in a subprocess against the
test database; the RTU runs in this process on loopback; Debian's chromium drives the page.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import c104
import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.conftest import make_user
from tests.control.closedloop import database_url
from tests.control.conftest import free_port, make_grid
from wams.control.models import AuditRecord, Command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "pw-123456"


class Site:
    """Daphne on a free port, as a subprocess."""

    def __init__(self, var_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.control.site_settings",
            "SECRET_KEY": "control-browser-test",
            "DATABASE_URL": database_url(),
            "WAMS_VAR_DIR": str(var_dir),
            "LOG_LEVEL": "WARNING",
            "WAMS_CONTROL_COMMAND_TIMEOUT_MS": "5000",
        }
        env.pop("REDIS_URL", None)  # embedded: in-memory channel layer inside Daphne
        self.log = open(var_dir / "daphne.log", "wb")  # noqa: SIM115 - closed in stop()
        command = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "tests.control.asgi:application",
        ]
        self.process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {(var_dir / 'daphne.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/accounts/login/", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("daphne did not answer")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    served = Site(tmp_path)
    yield served
    served.stop()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Launch Debian's chromium (Playwright runs an event loop here: no ORM calls inside the block)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def log_in(browser: Any, base_url: str, username: str) -> Any:
    """Open a page logged in as the user."""
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_operator_opens_a_breaker_from_the_panel_and_sees_it_open(rtu, site, django_user_model, tmp_path):
    grid = make_grid(rtu)
    make_user(django_user_model, "operator", grid.org, username="olga", password=PASSWORD)

    with chromium() as browser:
        page = log_in(browser, site.base_url, "olga")
        page.goto(f"{site.base_url}/control/devices/{grid.breaker.pk}/")
        assert page.locator("#device-state").inner_text() == "unknown"  # nothing reported yet
        page.click("button[data-action=open]")
        page.wait_for_selector("#confirm-box:not([hidden])", timeout=10_000)
        assert "Confirm: Open breaker" in page.inner_text("#confirm-what")
        assert rtu.commands_in() == []  # selected; nothing is sent before the confirmation
        page.fill("#confirm-reason", "open for line maintenance")
        page.click("#execute-button")
        # Not wait_for_function: Playwright evaluates its predicate with eval, which the site's CSP refuses.
        expect(page.locator("#device-state")).to_have_text("open", timeout=15_000)
        progress = page.locator("#progress").get_attribute("data-state")
        page.screenshot(path=str(tmp_path / "control-panel.png"))

    assert progress == "completed"
    assert rtu.state(1011) == c104.Double.OFF
    command = Command.objects.get(device=grid.breaker)
    assert (command.state, command.reason, command.user.username) == ("completed", "open for line maintenance", "olga")
    outcomes = list(AuditRecord.objects.filter(device=grid.breaker).order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["selected", "sent", "completed"]


def test_viewer_gets_no_control_panel(site, django_user_model, pool):
    grid = make_grid(None)
    make_user(django_user_model, "viewer", grid.org, username="vera", password=PASSWORD)

    with chromium() as browser:
        page = log_in(browser, site.base_url, "vera")
        response = page.goto(f"{site.base_url}/control/devices/{grid.breaker.pk}/")
        status = response.status if response is not None else None
        buttons = page.locator("button[data-action=open]").count()

    assert status == 403
    assert buttons == 0
