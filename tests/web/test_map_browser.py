"""The console map's points canvas in Chromium: a click on a point opens its popup, a layer
switched off cannot be clicked, and the page reads the compact form (browser tests)."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser import Visit, browser, server  # noqa: F401  (fixtures)
from webcity import FLOW, SIG, T

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


# the page coordinates of the first pixel painted in the signals' colour (#6a1b9a)
FIND_PURPLE = """() => {
  const c = document.querySelector('.leaflet-points-pane canvas');
  const k = c.width / c.clientWidth;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] === 0x6a && d[i + 1] === 0x1b && d[i + 2] === 0x9a && d[i + 3] > 200) {
      const r = c.getBoundingClientRect(), p = i / 4;
      return [r.left + (p % c.width) / k + 2, r.top + Math.floor(p / c.width) / k + 2];
    }
  }
  return null;
}"""


def test_a_click_on_a_point_opens_it(server: Any, browser: Any) -> None:  # noqa: F811
    base = server.state.base
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = ctx.new_page()
    v = Visit(page, "map-click")
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(f"{base}/signin?next=/console")
    page.fill("#key", server.state.services.keys.create("reader", T))
    page.click("#signin-key button[type=submit]")
    page.wait_for_url(f"{base}/console")
    page.wait_for_selector("#map[data-ready='1']")
    assert any("/web/points.json" in u for u in seen)
    assert not any("/web/layers.geojson" in u for u in seen)
    # the history charts' library loads with the first popup, not with the map
    assert page.evaluate("typeof window.uPlot") == "undefined"
    # Find centres the map on the signal; close its popup, then click the map's centre
    page.fill("#find-q", "web-1")
    page.click("#find button[type=submit]")
    page.locator("#find-results button", has_text=SIG).click()
    page.wait_for_selector(".leaflet-popup-content table")
    page.click(".leaflet-popup-close-button")
    page.wait_for_selector(".leaflet-popup", state="detached")
    centre = page.evaluate(FIND_PURPLE)  # the signal's dot, by its colour on the canvas
    assert centre is not None, "the signal is not drawn"
    page.mouse.click(*centre)
    page.wait_for_selector(".leaflet-popup-content table")
    assert "signalState" in page.locator(".leaflet-popup-content").inner_text()
    page.click(".leaflet-popup-close-button")
    page.wait_for_selector(".leaflet-popup", state="detached")
    # with its layer switched off the signal is neither drawn nor clickable
    page.uncheck("input[name='layer'][value='signals']")
    page.mouse.click(*centre)
    page.wait_for_timeout(400)
    assert page.locator(".leaflet-popup").count() == 0
    assert page.evaluate(FIND_PURPLE) is None
    page.click("#find button[type=submit]")
    page.locator("#find-results button", has_text=FLOW).click()
    page.wait_for_selector(".leaflet-popup-content .chart .uplot")
    assert not v.errors, v.errors
    ctx.close()
