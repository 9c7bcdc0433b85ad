"""Screenshots of every operator page (headless chromium, 1600x1000) into docs/screenshots/.

Run: python -m pytest tests/dashboards/test_screenshots.py -m slow
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings

from tests.dashboards import livesite
from tests.dashboards.livesite import Site
from wams.grid.loaders import load_demo_topology
from wams.grid.models import Pmu, Substation

pytestmark = pytest.mark.browser
OUT = Path(settings.BASE_DIR) / "docs" / "screenshots"


@pytest.mark.django_db
def test_the_demo_topology_loads_for_the_screenshots() -> None:
    # Its mark also makes pytest-django create the test database the site uses.
    assert load_demo_topology()["pmus"] == 14


def _events(pmus: dict[int, Pmu], dip_at_s: float) -> int:
    from wams.detection.models import Event
    from wams.detection.services import raise_event

    start = datetime.fromtimestamp(dip_at_s + 1.2, UTC)
    event, _ = raise_event(
        kind="under_frequency",
        severity="alarm",
        summary="Frequency nadir 59.72 Hz below 59.80 Hz after a generator trip",
        started_at=start,
        pmu_ids=[pmus[16].pk, pmus[19].pk, pmus[22].pk],
        quantities={"frequency_nadir_hz": 59.72, "rocof_max_hz_per_s": -0.21},
    )
    Event.objects.filter(pk=event.pk).update(ended_at=datetime.fromtimestamp(dip_at_s + 20, UTC))
    _rocof, _ = raise_event(
        kind="rocof",
        severity="warning",
        summary="ROCOF -0.21 Hz/s over 500 ms at West Walpole",
        started_at=datetime.fromtimestamp(dip_at_s + 0.5, UTC),
        pmu_ids=[pmus[16].pk],
        quantities={"rocof_max_hz_per_s": -0.21},
    )
    raise_event(
        kind="data_quality",
        severity="warning",
        summary="No data from SBROK-B29 for 3 s (PMU stale)",
        started_at=datetime.now(UTC),
        pmu_ids=[pmus[29].pk],
        quantities={},
    )
    return event.pk


def shot(page: Any, name: str, settle_s: float = 0.0) -> None:
    time.sleep(settle_s)
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), timeout=90_000)  # a loaded machine paints slowly


@pytest.mark.slow
def test_screenshots_of_every_page(site: Site) -> None:
    now = time.time()
    dip_at = now - 150
    site.grid.dip_at_s = dip_at
    pmus = site.pmus
    site.db(livesite.seed_history, list(pmus.values()), site.grid, now - 300, now - 1)
    event_id = site.db(_events, pmus, dip_at)
    site.grid.stopped.add(pmus[29].pk)
    agawam = site.db(lambda: Substation.objects.get(code="AGAWM").pk)

    context = site.browser.new_context(viewport={"width": 1600, "height": 1000})
    login = context.new_page()
    login.goto(site.url + "/accounts/login/")
    shot(login, "01-login")
    context.close()

    page = livesite.login(site.browser, site.url, "operator")
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=15_000)
    shot(page, "02-overview", settle_s=12)
    page.goto(f"{site.url}/phasors/?ref={pmus[39].pk}")
    shot(page, "03-phasors", settle_s=4)
    page.goto(f"{site.url}/pmus/")
    shot(page, "04-pmu-list", settle_s=3)
    page.goto(f"{site.url}/pmus/{pmus[16].pk}/")
    shot(page, "05-pmu-detail", settle_s=8)
    page.goto(f"{site.url}/substations/{agawam}/")
    shot(page, "06-substation-operator", settle_s=3)
    page.goto(f"{site.url}/events/?state=all")
    shot(page, "07-events", settle_s=2)
    page.goto(f"{site.url}/events/{event_id}/")
    page.wait_for_selector("[data-figure][data-drawn]", timeout=10_000)
    shot(page, "08-event-detail", settle_s=1)
    start = datetime.fromtimestamp(now - 290, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    end = datetime.fromtimestamp(now - 5, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    query = urlencode(
        {
            "pmus": [pmus[b].pk for b in (16, 19, 22, 39, 2)],
            "quantity": "frequency_hz",
            "start": start,
            "end": end,
            "speed": 5,
        },
        doseq=True,
    )
    page.goto(f"{site.url}/history/?{query}")
    page.wait_for_selector("[data-figure][data-drawn]", timeout=10_000)
    shot(page, "09-history", settle_s=1)
    page.goto(f"{site.url}/?replay=1&event={event_id}&speed=5")
    shot(page, "10-replay-overview", settle_s=8)
    page.context.close()

    viewer = livesite.login(site.browser, site.url, "viewer")
    viewer.goto(f"{site.url}/substations/{agawam}/")
    shot(viewer, "11-substation-viewer", settle_s=3)
    viewer.context.close()
    assert len(list(OUT.glob("*.png"))) >= 11
