"""The console and the portal in a real Chromium (Debian's /usr/bin/chromium via Playwright):
an operator signs in, approves a proposal and sees it applied; the map loads and opens a
popup; the portal fits a phone. axe-core runs on every page visited (no serious or critical
violation); screenshots go to test-artifacts/web/.

Without /usr/bin/chromium the tests skip (``apt-get install chromium``), except under
MAEUL_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from webcity import FLOW, FLOW_T, SDM, SIG, T, accounts, green, proposal, seed

from support import chromium, make_settings, threaded_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "test-artifacts" / "web"
AXE = Path(__file__).parent / "assets" / "axe.min.js"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real HTTP server (uvicorn in a thread) on a free port with a seeded city."""

    from maeul.hub.server import build_app

    d = tmp_path_factory.mktemp("browser")
    app = build_app(make_settings(f"sqlite:///{d}/web.db", d, auth_enabled=True,
                                  trust_jobs=False))
    with threaded_server(app) as base:
        s = app.state.services
        seed(s)
        accounts(s)
        # a delay reading now, so the traffic KPI has values and the dashboard draws a chart
        from maeul.hub.entities import expand_entity

        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        s.hub.append_attrs(T, FLOW, expand_entity({
            "id": FLOW, "type": FLOW_T,
            "averageDelay": {"type": "Property", "value": 31.5, "observedAt": now},
            f"{SDM}Transportation/averageVehicleSpeed": {"type": "Property", "value": 22.0,
                                                        "observedAt": now}},
            s.resolver.resolve(None)), False)
        s.trust.kpis.compute(T)
        s.trust.kpis.compute(T)
        app.state.base = base
        yield app


class Visit:
    """A page with its console errors collected, axe checks and screenshots."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = name
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self, shot: str) -> None:
        """axe-core on the current page, then a full-page screenshot."""
        self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;void 0;")
        res = self.page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [f"{v['id']} ({v['impact']}): {v['help']} at "
               f"{[n['target'] for n in v['nodes']][:3]}"
               for v in res["violations"] if v["impact"] in ("serious", "critical")]
        ART.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ART / f"{self.name}-{shot}.png"), full_page=True)
        assert not bad, f"{self.page.url}: " + "; ".join(bad)
        assert not self.errors, f"{self.page.url}: console errors {self.errors}"


def test_operator_approves_a_proposal_and_sees_it_applied(server: Any, browser: Any) -> None:
    from maeul.hub.auth import Caller

    s = server.state.services
    base = server.state.base
    pid = s.trust.decisions.submit(T, proposal(), Caller("key:svc", "service", T))["id"]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    page = ctx.new_page()
    v = Visit(page, "operator")
    page.goto(f"{base}/console/decisions")
    assert "/signin" in page.url  # signed out: sent to sign in first
    v.check("1-signin")
    page.fill("#username", "olivia")
    page.fill("#password", "correct horse battery")
    page.click("#signin-password button[type=submit]")
    page.wait_for_url(f"{base}/console/decisions")
    assert page.locator(f'#queue a[href="/console/decisions/{pid}"]').count() >= 1
    v.check("2-queue")
    page.locator(f'#queue a.review[href="/console/decisions/{pid}"]').click()
    page.wait_for_url(f"{base}/console/decisions/{pid}")
    assert page.locator("#status").inner_text() == "대기"
    v.check("3-proposal")
    page.fill("#reason-approve", "checked the camera on the north approach")
    page.click("#approve")
    page.wait_for_url(f"{base}/console/decisions/{pid}?done=approve")
    assert page.locator("#status").inner_text() == "적용됨"
    assert page.locator("#notice").inner_text() == "승인했습니다."
    v.check("4-applied")
    doc = s.trust.decisions.get(T, pid)
    assert doc["status"] == "applied" and doc["approvals"][0]["actor"] == "user:olivia"
    assert green(s) == 45
    # the KPI dashboard draws its history charts
    page.goto(f"{base}/console/kpis")
    page.wait_for_selector("#kpi-traffic-delay .chart canvas")
    v.check("5-kpis")
    page.goto(f"{base}/console/alerts")
    v.check("6-alerts")
    ctx.close()


def test_map_shows_the_city_and_opens_a_popup(server: Any, browser: Any) -> None:
    base = server.state.base
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = ctx.new_page()
    v = Visit(page, "map")
    page.goto(f"{base}/signin?next=/console")
    page.fill("#key", server.state.services.keys.create("reader", T))
    page.click("#signin-key button[type=submit]")
    page.wait_for_url(f"{base}/console")
    page.wait_for_selector("#map[data-ready='1']")
    assert int(page.get_attribute("#map", "data-features") or 0) >= 5
    assert page.locator("[data-count='signals']").inner_text() == "1"
    # keyboard users find an entity by name and open its popup
    page.fill("#find-q", "web-1")
    page.click("#find button[type=submit]")
    page.locator("#find-results button", has_text=SIG).click()
    page.wait_for_selector(".leaflet-popup-content table")
    # axe measures contrast: wait for the popup's fade-in to end
    # (polled from here: wait_for_function would eval a string, which the page's CSP forbids)
    for _ in range(100):
        if page.evaluate("getComputedStyle(document.querySelector('.leaflet-popup')).opacity")\
                == "1":
            break
        page.wait_for_timeout(30)
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert "greenTime" in popup and "signalState" in popup
    assert "greenTime" in page.locator("#detail").inner_text()
    v.check("1-map")
    ctx.close()


@pytest.mark.parametrize("path", ["/portal", "/portal/registry", "/portal/kpis",
                                  "/portal/data", "/portal/registry/privacy-masking"])
def test_portal_fits_a_phone(server: Any, browser: Any, path: str) -> None:
    base = server.state.base
    ctx = browser.new_context(viewport=PHONE, locale="ko-KR", is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    v = Visit(page, "phone" + path.replace("/", "-"))
    page.goto(base + path)
    wide = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right > 391)
        .slice(0, 5).map(e => e.tagName + '.' + e.className)""")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide
    size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 16  # large-text friendly
    v.check("1")
    ctx.close()
