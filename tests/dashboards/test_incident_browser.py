"""Incidents in a real browser: the overview banner appears live, the incident page, acknowledge.

Screenshots of both pages go to docs/screenshots/ (10-overview-incident.png, 11-incident.png).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.dashboards import livesite
from tests.dashboards.livesite import Site
from wams.grid.loaders import load_demo_topology

pytestmark = pytest.mark.browser
OUT = Path(settings.BASE_DIR) / "docs" / "screenshots"


@pytest.mark.django_db
def test_the_demo_topology_loads_for_the_incident_pages() -> None:
    # Its mark also makes pytest-django create the test database the site uses.
    assert load_demo_topology()["pmus"] == 14


def _login(site: Site, username: str) -> Any:
    """Log in and wait for the overview's document (not every asset: a loaded machine is slow)."""
    context = site.browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(site.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", livesite.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(site.url + "/", wait_until="domcontentloaded", timeout=60_000)
    return page


def _fault(site: Site, started: datetime) -> int:
    """Raise a fault's symptoms at West Walpole and record the incident grouping them; return its id."""
    from wams.detection.services import raise_event, record_incident

    pmus = site.pmus
    keys = []
    for bus, depth_pu in ((16, 0.31), (19, 0.55), (25, 0.62)):
        key = f"voltage_sag:{pmus[bus].pk}"
        raise_event(
            kind="voltage_sag",
            severity="alarm",
            summary=f"Voltage sag to {depth_pu:.2f} pu at {pmus[bus].station_name}",
            started_at=started,
            pmu_ids=[pmus[bus].pk],
            quantities={"magnitude_min_pu": depth_pu},
            dedup_key=key,
        )
        keys.append(key)
    incident = record_incident(
        correlation_key=f"browser:{started.timestamp()}",
        change="opened",
        kind="fault",
        severity="critical",
        started_at=started,
        detected_at=started + timedelta(milliseconds=140),
        bus_number=16,
        location_method="largest_voltage_dip",
        figures={"min_voltage_pu": 0.31, "duration_ms": 100.0, "pmus_sagged": 3},
        summary="Three-phase fault near West Walpole (bus 16), cleared in 100 ms",
        event_keys=keys,
    )
    return int(incident.pk)


def test_an_incident_appears_live_on_the_overview_banner_and_map(site: Site) -> None:
    page = _login(site, "operator")
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=45_000)
    assert page.locator("#incident-banner").is_hidden()
    now = time.time()
    site.db(livesite.seed_history, list(site.pmus.values()), site.grid, now - 30, now - 2)
    incident_id = site.db(_fault, site, datetime.fromtimestamp(now - 15, UTC))
    item = page.locator(f'#incident-list li[data-incident-id="{incident_id}"]')
    item.wait_for(timeout=30_000)
    text = item.inner_text()
    assert "Fault" in text and "bus 16" in text and "Min voltage (pu) 0.31" in text and "CRITICAL" in text
    # The alarm list shows the incident once, not its three symptoms.
    livesite.wait_for(
        page, f"document.querySelectorAll('#alarm-incidents li[data-incident-id=\"{incident_id}\"]').length === 1"
    )
    livesite.wait_for(page, "document.getElementById('alarm-list').dataset.count === '0'", timeout=20_000)
    # The map rings the located substation.
    livesite.wait_for(page, "Number(document.getElementById('map').dataset.incidents) >= 1", timeout=20_000)
    ring = page.evaluate("document.getElementById('map').data[2].lat.length")
    assert ring == 1
    OUT.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "10-overview-incident.png"))
    page.context.close()


def test_the_incident_page_shows_evidence_and_plots_and_an_operator_acknowledges(site: Site) -> None:
    from wams.detection.models import Incident

    incident_id = site.db(lambda: Incident.objects.order_by("-pk").values_list("pk", flat=True).first())
    assert incident_id is not None
    page = _login(site, "operator")
    page.goto(f"{site.url}/incidents/{incident_id}/")
    assert page.locator("h1").inner_text().startswith("Fault - bus 16")
    assert page.locator("#incident-events tbody tr").count() == 3
    livesite.wait_for(page, "document.querySelectorAll('[data-figure][data-drawn=true]').length === 3", timeout=45_000)
    assert "Min voltage (pu)" in page.locator("#incident-figures").inner_text()
    assert page.locator("#incident-alarm").inner_text().lower() == "unacknowledged"
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "11-incident.png"), full_page=True)
    page.fill("input[name=comment]", "crew dispatched")
    page.click("#acknowledge")
    page.wait_for_url(f"{site.url}/incidents/{incident_id}/")
    assert page.locator("#incident-alarm").inner_text().lower() == "acknowledged"
    assert "crew dispatched" in page.inner_text("main")
    acknowledged_by = site.db(lambda: Incident.objects.get(pk=incident_id).acknowledged_by.username)
    assert acknowledged_by == "operator"
    page.context.close()


def test_the_incidents_list_filters_and_links(site: Site) -> None:
    page: Any = _login(site, "viewer")
    page.goto(f"{site.url}/incidents/?state=all&kind=fault")
    rows = page.locator("#incident-table tbody tr[data-incident-id]")
    assert rows.count() >= 1
    page.goto(f"{site.url}/incidents/?state=all&kind=islanding")
    assert page.locator("#incident-table tbody tr[data-incident-id]").count() == 0
    page.context.close()
