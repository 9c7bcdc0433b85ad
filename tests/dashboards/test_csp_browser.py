"""Every operator page, the control pages and the admin site run under the Content-Security-Policy in chromium."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.dashboards import livesite
from tests.dashboards.livesite import Site
from wams.grid.loaders import load_demo_topology
from wams.grid.models import ControllableDevice, Pmu, Substation

pytestmark = pytest.mark.browser


@pytest.mark.django_db
def test_the_demo_topology_loads_for_the_policy_checks() -> None:
    # Its mark also makes pytest-django create the test database the site uses.
    assert load_demo_topology()["pmus"] == 14


class Problems:
    """Console messages about the policy, and uncaught page errors, of one browser context."""

    def __init__(self, context: Any) -> None:
        self.messages: list[str] = []
        self.errors: list[str] = []
        context.on("page", self.watch)
        for page in context.pages:
            self.watch(page)

    def watch(self, page: Any) -> None:
        page.on("console", lambda message: self.messages.append(f"{page.url}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))

    def policy_messages(self) -> list[str]:
        return [text for text in self.messages if "content security policy" in text.lower()]


def seed(site: Site) -> dict[str, Any]:
    """Store some history, raise an event and find a substation and device to open."""
    from wams.detection.services import raise_event

    now = time.time()
    pmus: dict[int, Pmu] = site.pmus
    site.db(livesite.seed_history, [pmus[16], pmus[39]], site.grid, now - 120, now - 1)

    def rows() -> dict[str, Any]:
        event, _ = raise_event(
            kind="under_frequency",
            severity="alarm",
            summary="Frequency 59.72 Hz below 59.80 Hz at WWALP-B16",
            started_at=datetime.fromtimestamp(now - 60, UTC),
            pmu_ids=[pmus[16].pk],
            quantities={"frequency_nadir_hz": 59.72},
        )
        substation = Substation.objects.get(code="AGAWM")
        device = ControllableDevice.objects.filter(owner__code="netso").order_by("pk").first()
        return {"event": event.pk, "substation": substation.pk, "device": device.pk, "pmu": pmus[16].pk}

    ids = site.db(rows)
    query = {
        "pmus": [pmus[16].pk, pmus[39].pk],
        "quantity": "frequency_hz",
        "start": datetime.fromtimestamp(now - 110, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "end": datetime.fromtimestamp(now - 5, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    ids["history_query"] = urlencode(query, doseq=True)
    return ids


def visit(page: Any, url: str, ready: str | None = None) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), url
    if ready:
        livesite.wait_for(page, ready, timeout=15_000)
    page.wait_for_timeout(500)  # let late scripts (socket handlers, Plotly redraws) run before moving on


def test_every_operator_and_control_page_runs_without_a_policy_violation(site: Site) -> None:
    ids = seed(site)
    page = livesite.login(site.browser, site.url, "operator")
    problems = Problems(page.context)
    live = "document.body.dataset.liveState === 'live'"
    drawn = "document.querySelector('[data-figure][data-drawn]') !== null"
    pages = [
        ("/", live),
        (f"/phasors/?ref={ids['pmu']}", "Number(document.getElementById('polar').dataset.updates || 0) > 1"),
        ("/pmus/", None),
        (f"/pmus/{ids['pmu']}/", live),
        (f"/substations/{ids['substation']}/", None),
        ("/events/?state=all", None),
        (f"/events/{ids['event']}/", drawn),
        (f"/history/?{ids['history_query']}", drawn),
        (f"/?replay=1&event={ids['event']}&speed=10", None),
        ("/control/", None),
        (f"/control/devices/{ids['device']}/", None),
    ]
    for path, ready in pages:
        visit(page, site.url + path, ready)
    page.context.close()
    assert problems.policy_messages() == []
    assert problems.errors == []


def test_the_admin_site_runs_without_a_policy_violation(site: Site) -> None:
    from django.contrib.auth import get_user_model

    def admin_user() -> int:
        get_user_model().objects.create_superuser("csp-admin", "csp@example.org", livesite.PASSWORD)
        return int(Pmu.objects.order_by("pk").values_list("pk", flat=True)[0])

    pmu_id = site.db(admin_user)
    context = site.browser.new_context(viewport={"width": 1400, "height": 900})
    problems = Problems(context)
    page = context.new_page()
    page.goto(site.url + "/admin/login/?next=/admin/")
    page.fill("#id_username", "csp-admin")
    page.fill("#id_password", livesite.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(site.url + "/admin/", timeout=15_000)
    admin_pages = ["/admin/", "/admin/grid/pmu/", f"/admin/grid/pmu/{pmu_id}/change/", "/admin/auth/user/add/"]
    for path in [*admin_pages, "/control/audit/"]:
        visit(page, site.url + path)
    # The admin's own scripts ran: the change list's select-all box is wired up by actions.js.
    page.goto(site.url + "/admin/grid/pmu/")
    page.check("#action-toggle")
    assert page.locator("input.action-select:checked").count() > 0
    context.close()
    assert problems.policy_messages() == []
    assert problems.errors == []


def test_an_inline_script_is_refused_and_the_refusal_is_seen(site: Site) -> None:
    # The negative control: the policy is enforced, and a violation reaches the console listener.
    page = livesite.login(site.browser, site.url, "viewer")
    problems = Problems(page.context)
    visit(page, site.url + "/pmus/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(300)
    assert page.evaluate("window.injected === undefined")
    assert any("inline script" in text for text in problems.policy_messages())
    page.context.close()
