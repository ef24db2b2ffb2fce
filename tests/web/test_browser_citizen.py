"""A citizen on a phone (390x844, Debian's Chromium): files a complaint with a map click and
a photo, gets its number, finds it on the track page; asks a question the sample documents
answer and sees the answer with its source. axe-core on every page (no serious or critical
violation); screenshots in test-artifacts/web/. Skips without /usr/bin/chromium
(``apt-get install chromium``) except under MAEUL_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import PHONE, Visit
from webcity import T, seed

from support import chromium, make_settings, threaded_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
ROOT = Path(__file__).resolve().parents[2]
ROAD = "urn:ngsi-ld:RoadSegment:web-1"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
COMPLAINT = "시청 앞 가로등이 밤새 꺼져 있어서 길이 너무 어둡습니다."


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """uvicorn in a thread with the seeded city, a road for the basemap, the civic desk."""
    from maeul.hub.entities import expand_entity
    from maeul.hub.server import build_app
    from maeul.trust.registry_model import DECLARED

    d = tmp_path_factory.mktemp("citizen-browser")
    app = build_app(make_settings(f"sqlite:///{d}/web.db", d, auth_enabled=True,
                                  trust_jobs=False, civic_media_dir=d / "media",
                                  civic_cache_dir=ROOT / "var" / "civic"))
    before = dict(DECLARED)  # after the imports' declarations; the desk adds its own on use
    with threaded_server(app) as base:
        s = app.state.services
        seed(s)
        s.hub.create_entity(T, expand_entity({
            "id": ROAD, "type": "RoadSegment",
            "location": {"type": "GeoProperty", "value": {
                "type": "LineString", "coordinates": [[6.945, 50.938], [6.950, 50.940],
                                                      [6.958, 50.944]]}}},
            s.resolver.resolve(None)))
        # the desk's models load here, not inside a page load the browser waits for
        s.civic.route(T, "가로등")
        s.civic.ask(T, "대형폐기물은 어떻게 버리나요?", "ko", "test")
        app.state.base = base
        yield app
    DECLARED.clear()
    DECLARED.update(before)


def fits(page: Any) -> None:
    wide = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right > 391)
        .slice(0, 5).map(e => e.tagName + '.' + e.className)""")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide


def test_citizen_files_a_complaint_and_tracks_it(server: Any, browser: Any) -> None:
    s = server.state.services
    base = server.state.base
    ctx = browser.new_context(viewport=PHONE, locale="ko-KR", is_mobile=True, has_touch=True)
    page = ctx.new_page()
    v = Visit(page, "citizen")
    page.goto(f"{base}/portal")
    page.click(".tiles a[href='/portal/report']")
    page.wait_for_url(f"{base}/portal/report")
    page.wait_for_selector("#pick-map[data-ready='1']")
    assert page.locator("#pick-map path.leaflet-interactive, #pick-map canvas").count() >= 1
    page.fill("#description", COMPLAINT)
    box = page.locator("#pick-map").bounding_box()
    assert box is not None
    # a finger taps the map (the locator scrolls it into view first)
    page.locator("#pick-map").tap(position={"x": box["width"] / 2, "y": box["height"] / 3})
    lat = float(page.input_value("#lat"))
    lon = float(page.input_value("#long"))
    assert 50.9 < lat < 51.0 and 6.9 < lon < 7.0, (lat, lon)  # near the road it opened on
    assert "고른 위치" in page.locator("#pick-status").inner_text()
    page.set_input_files("#media", files=[{"name": "light.png", "mimeType": "image/png",
                                           "buffer": PNG}])
    fits(page)
    v.check("1-report")
    page.click("#report-send")
    page.wait_for_selector("#rid")
    rid = page.locator("#rid").inner_text().strip()
    assert len(rid) == 13 and rid[6] == "-"
    assert page.locator("#department").inner_text().strip()
    page.click("#copy-rid")
    page.wait_for_selector("#copy-status:has-text('복사했습니다')")
    fits(page)
    v.check("2-filed")
    got = s.civic.get(T, rid)
    assert got["description"] == COMPLAINT
    assert abs(got["lat"] - lat) < 1e-5 and abs(got["long"] - lon) < 1e-5
    assert got["media_url"] and got["media_url"].endswith(".png")
    # later: the citizen types the number on the track page
    page.goto(f"{base}/portal/track")
    page.fill("#track-id", rid.lower())
    page.click("#track-send")
    page.wait_for_url(f"{base}/portal/requests/{rid}")
    assert page.locator("#rid").inner_text() == rid
    assert page.locator("#description").inner_text() == COMPLAINT
    assert page.locator("#status").inner_text() == "처리 중"
    assert page.locator("img.photo").evaluate("img => img.naturalWidth") == 1
    fits(page)
    v.check("3-tracked")
    ctx.close()


def test_citizen_asks_a_question_and_sees_the_source(server: Any, browser: Any) -> None:
    base = server.state.base
    ctx = browser.new_context(viewport=PHONE, locale="ko-KR", is_mobile=True, has_touch=True)
    page = ctx.new_page()
    v = Visit(page, "citizen-ask")
    page.goto(f"{base}/portal/ask")
    v.check("1-form")
    page.fill("#question", "대형폐기물은 어떻게 버리나요?")
    page.click("#ask-send")
    page.wait_for_selector("#sources li")
    assert "대형폐기물" in page.locator("#answer-text").inner_text()
    source = page.locator("#sources li").first.inner_text()
    assert ".md" in source or ".html" in source or ".pdf" in source  # the document named
    fits(page)
    v.check("2-answer")
    # a question the documents do not cover points to reporting instead
    page.fill("#question", "부산 해운대 호텔 추천해 주세요")
    page.click("#ask-send")
    page.wait_for_selector("#refusal")
    assert page.locator("#report-instead").get_attribute("href") == "/portal/report"
    v.check("3-refused")
    ctx.close()
