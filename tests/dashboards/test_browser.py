"""The operator pages in a real browser (Debian chromium, headless) against a running Daphne."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.dashboards import livesite
from tests.dashboards.livesite import Site
from wams.grid.loaders import load_demo_topology
from wams.grid.models import Pmu, Substation

pytestmark = pytest.mark.browser


@pytest.mark.django_db
def test_the_demo_topology_offers_every_browser_scenario() -> None:
    # Runs first; its mark also makes pytest-django create the test database the site uses.
    load_demo_topology()
    pmus = {pmu.bus.number: pmu for pmu in Pmu.objects.select_related("bus", "owner")}
    assert pmus[1].owner.code == "netso" and not pmus[1].shared_with.filter(code="pvdso").exists()
    assert pmus[39].shared_with.filter(code="pvdso").exists()
    assert pmus[4].owner.code == "pvdso"
    assert Substation.objects.get(code="AGAWM").controllable_devices.filter(owner__code="netso").exists()


def trace_length(page: Any, div: str) -> int:
    return int(page.evaluate(f"document.getElementById('{div}').data[0].x.length"))


def test_login_opens_the_overview_and_the_frequency_trace_grows(site: Site) -> None:
    page = site_login(site, "operator")
    assert page.locator("nav a.active").inner_text() == "Overview"
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=10_000)
    livesite.wait_for(page, "document.getElementById('frequency').data[0].x.length > 0", timeout=10_000)
    first = trace_length(page, "frequency")
    livesite.wait_for(page, f"document.getElementById('frequency').data[0].x.length > {first + 5}", timeout=10_000)
    assert trace_length(page, "rocof") > 0
    # Every axis carries its quantity and unit.
    titles = page.evaluate("['frequency','rocof'].map(id => document.getElementById(id).layout.yaxis.title.text)")
    assert titles == ["Frequency (Hz)", "ROCOF (Hz/s)"]
    page.context.close()


def test_polar_plot_updates_relative_to_the_reference(site: Site) -> None:
    page = site_login(site, "operator")
    reference = site.pmus[39].pk
    page.goto(f"{site.url}/phasors/?ref={reference}")
    livesite.wait_for(page, "Number(document.getElementById('polar').dataset.updates || 0) > 2", timeout=10_000)
    updates = int(page.evaluate("document.getElementById('polar').dataset.updates"))
    livesite.wait_for(page, f"Number(document.getElementById('polar').dataset.updates) > {updates + 5}", timeout=10_000)
    # The reference phasor lies at 0 deg; the others at their angle difference.
    traces = page.evaluate("document.getElementById('polar').data.map(t => [t.name, t.r[1], t.theta[1]])")
    by_name = {name: (r, theta) for name, r, theta in traces}
    reference_r, reference_theta = by_name[site.pmus[39].station_name]
    assert reference_theta == pytest.approx(0.0, abs=1e-9)
    assert 0.9 < reference_r < 1.1
    assert all(r is not None for r, _ in by_name.values())
    page.context.close()


def test_an_alarm_from_a_simulated_event_appears_on_the_overview(site: Site) -> None:
    from wams.detection.services import raise_event

    page = site_login(site, "operator")
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=10_000)
    pmu = site.pmus[16]
    event, _ = site.db(
        raise_event,
        kind="under_frequency",
        severity="alarm",
        summary="Frequency 59.72 Hz below 59.80 Hz at WWALP-B16",
        started_at=datetime.now(UTC),
        pmu_ids=[pmu.pk],
        quantities={"frequency_nadir_hz": 59.72},
    )
    item = page.locator(f'#alarm-list li[data-event-id="{event.pk}"]')
    item.wait_for(timeout=10_000)
    assert "59.72 Hz" in item.inner_text()
    assert page.locator("#alarm-count").inner_text() == "1"
    # The map paints Alpha's substation in the alarm colour.
    livesite.wait_for(page, "document.getElementById('map').dataset.states.includes('alarm')", timeout=5_000)
    page.context.close()


def test_the_stale_indicator_shows_when_a_pmu_stops_and_for_the_page_when_all_stop(site: Site) -> None:
    page = site_login(site, "operator")
    stopped, running = site.pmus[1].pk, site.pmus[39].pk
    page.wait_for_selector(f'.chip[data-pmu-id="{stopped}"][data-stale="false"]', timeout=10_000)
    site.grid.stopped.add(stopped)
    try:
        page.wait_for_selector(f'.chip[data-pmu-id="{stopped}"][data-stale="true"]', timeout=10_000)
        assert page.locator(f'.chip[data-pmu-id="{stopped}"] .chip-state').inner_text() == "STALE"
        assert page.locator(f'.chip[data-pmu-id="{running}"]').get_attribute("data-stale") == "false"
        assert page.evaluate("document.body.dataset.liveState") == "live"
        site.grid.stopped.update(site.grid.pmu_ids)
        livesite.wait_for(page, "document.body.dataset.liveState === 'stale'", timeout=10_000)
        assert page.locator("#live-status").inner_text() == "STALE"
        assert page.locator("#stale-banner").is_visible()
        assert "not live" in page.locator("#stale-banner").inner_text()
    finally:
        site.grid.stopped.clear()
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=10_000)
    assert not page.locator("#stale-banner").is_visible()
    page.context.close()


def test_the_page_reconnects_after_the_socket_drops(site: Site) -> None:
    page = site_login(site, "operator")
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=10_000)
    page.evaluate("WAMS.socket.ws.close()")
    livesite.wait_for(page, "document.body.dataset.liveState === 'disconnected'", timeout=5_000)
    livesite.wait_for(page, "document.body.dataset.liveState === 'live'", timeout=10_000)
    page.context.close()


def test_a_viewer_sees_no_control_buttons(site: Site) -> None:
    substation_id = site.db(lambda: Substation.objects.get(code="AGAWM").pk)
    viewer = site_login(site, "viewer")
    viewer.goto(f"{site.url}/substations/{substation_id}/")
    assert viewer.locator("#device-panel").count() == 0
    viewer.goto(f"{site.url}/pmus/{site.pmus[3].pk}/")
    assert viewer.locator("#device-panel").count() == 0
    viewer.goto(f"{site.url}/events/?state=all")
    assert viewer.locator("button:has-text('Acknowledge')").count() == 0
    viewer.context.close()
    operator = site_login(site, "operator")
    operator.goto(f"{site.url}/substations/{substation_id}/")
    assert operator.locator("#device-panel").count() == 1
    assert "Load block Agawam" in operator.locator("#device-panel").inner_text()
    operator.context.close()


WEBSOCKET_PROBE = """
path => new Promise(resolve => {
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path);
  ws.onopen = () => { ws.close(); resolve('open'); };
  ws.onerror = () => resolve('refused');
  setTimeout(() => resolve('timeout'), 5000);
})
"""


def test_another_organisations_device_is_refused_on_the_page_and_the_websocket(site: Site) -> None:
    page = site_login(site, "dso-operator")
    private, own, shared = site.pmus[1].pk, site.pmus[4].pk, site.pmus[39].pk
    assert page.goto(f"{site.url}/pmus/{private}/").status == 404
    assert page.goto(f"{site.url}/pmus/{shared}/").status == 200
    assert page.goto(f"{site.url}/pmus/{own}/").status == 200
    assert page.evaluate(WEBSOCKET_PROBE, f"/ws/pmu/{private}/") == "refused"
    assert page.evaluate(WEBSOCKET_PROBE, f"/ws/live/?pmus={own},{private}") == "refused"
    assert page.evaluate(WEBSOCKET_PROBE, f"/ws/pmu/{own}/") == "open"
    # The overview shows only the DSO's own and shared PMUs.
    page.goto(site.url + "/")
    chips = page.eval_on_selector_all(".chip", "nodes => nodes.map(n => Number(n.dataset.pmuId))")
    assert private not in chips and own in chips and shared in chips
    page.context.close()


def site_login(site: Site, username: str) -> Any:
    """Log a user in (a fresh browser context) and return the overview page."""
    return livesite.login(site.browser, site.url, username)
