"""The citizen portal in-process: pages, languages, open data downloads, message catalogues."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from webcity import FLOW, PARK, REQ, SIG, T

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
WEB = Path(__file__).resolve().parents[2] / "src" / "maeul" / "web"


@pytest.mark.parametrize("path,text", [
    ("/portal", "시민 포털"),
    ("/portal/registry", "AI 등록부"),
    ("/portal/kpis", "분기 보고서"),
    ("/portal/data", "공공데이터"),
    ("/signin", "로그인"),
])
def test_portal_pages_are_korean_by_default(client: Any, path: str, text: str) -> None:
    r = client().get(path)
    assert r.status_code == 200
    assert '<html lang="ko">' in r.text and text in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_root_leads_to_the_portal(client: Any) -> None:
    r = client().get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal"


def test_language_switch_by_cookie_and_by_browser(client: Any) -> None:
    c = client()
    r = c.get("/lang/en?next=/portal/registry", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal/registry"
    assert "lang=en" in r.headers["set-cookie"]
    page = c.get("/portal/registry")
    assert '<html lang="en">' in page.text and "AI registry" in page.text
    # the switch link leads back to Korean, to the same page
    assert 'href="/lang/ko?next=/portal/registry"' in page.text
    assert c.get("/lang/ko", follow_redirects=False).headers["location"] == "/portal"
    en = client(**{"accept-language": "en-GB,en;q=0.9"}).get("/portal")
    assert '<html lang="en">' in en.text
    ko = client(**{"accept-language": "fr, ko;q=0.5"}).get("/portal")
    assert '<html lang="ko">' in ko.text


def test_bad_language_and_foreign_next_are_refused(client: Any) -> None:
    assert client().get("/lang/fr").status_code == 400
    r = client().get("/lang/en?next=//evil.example", follow_redirects=False)
    assert r.headers["location"] == "/portal"


def test_home_page_leads_to_the_civic_desk_pages(client: Any) -> None:
    r = client().get("/portal")
    for word, path in (("불편 신고", "/portal/report"), ("처리 상황 조회", "/portal/track"),
                       ("묻고 답하기", "/portal/ask")):
        assert word in r.text and f'href="{path}"' in r.text


def test_registry_lists_published_entries_and_opens_one(app: Any, client: Any) -> None:
    s = app.state.services
    entries = s.trust.registry.public_list(T, "ko")
    assert entries, "the built-in declarations publish at least one entry"
    c = client()
    page = c.get("/portal/registry")
    for e in entries:
        assert f'/portal/registry/{e["x_maeul_id"]}' in page.text
    one = c.get(f'/portal/registry/{entries[0]["x_maeul_id"]}')
    assert one.status_code == 200 and entries[0]["name"] in one.text
    en = s.trust.registry.public_get(T, entries[0]["x_maeul_id"], "en")
    c.get("/lang/en")
    assert en["name"] in c.get(f'/portal/registry/{entries[0]["x_maeul_id"]}').text
    assert c.get("/portal/registry/lvl3").status_code == 404  # not published
    assert c.get("/portal/registry/nope").status_code == 404


def test_public_kpis_show_only_public_ones_and_report_links(app: Any, client: Any) -> None:
    s = app.state.services
    s.trust.kpis.compute(T)
    page = client().get("/portal/kpis")
    assert page.status_code == 200
    for k in s.trust.kpis.latest(T, False):
        assert (f'id="kpi-{k["id"]}"' in page.text) == bool(k["public"])
    assert re.search(r'href="/public/v1/reports/\d{4}Q[1-4]\.html"', page.text)


# -- open data ------------------------------------------------------------------------------
def test_catalogue_lists_public_types_only(client: Any) -> None:
    page = client().get("/portal/data")
    for name in ("TrafficSignal", "TrafficFlowObserved", "OffStreetParking",
                 "AirQualityObserved"):
        assert f"/portal/data/{name}.csv" in page.text
    assert "/portal/data/ServiceRequest" not in page.text
    assert "/portal/data/CareHousehold" not in page.text


def test_downloads_parse_in_every_format(client: Any) -> None:
    c = client()
    r = c.get("/portal/data/OffStreetParking.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert 'filename="OffStreetParking.json"' in r.headers["content-disposition"]
    rows = r.json()
    assert [e["id"] for e in rows] == [PARK]
    assert rows[0]["availableSpotNumber"] == 20 and rows[0]["name"] == "Bull Ring"
    geo = c.get("/portal/data/OffStreetParking.geojson")
    assert geo.headers["content-type"] == "application/geo+json"
    fc = geo.json()
    assert fc["type"] == "FeatureCollection"
    assert fc["features"][0]["geometry"] == {"type": "Point", "coordinates": [-1.9, 52.48]}
    assert fc["features"][0]["properties"]["totalSpotNumber"] == 200
    text = c.get("/portal/data/TrafficFlowObserved.csv").content.decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[0]["id"] == FLOW
    assert float(table[0]["longitude"]) == 6.951 and float(table[0]["latitude"]) == 50.941
    assert float(table[0]["averageVehicleSpeed"]) == 18.0
    assert table[0]["congested"] == "true"


def test_private_types_and_bad_formats_are_refused(app: Any, client: Any) -> None:
    c = client()
    assert c.get("/portal/data/ServiceRequest.json").status_code == 404
    assert c.get("/portal/data/Nothing.json").status_code == 404
    r = c.get("/portal/data/OffStreetParking.xml")
    assert r.status_code == 400 and "format" in r.json()["detail"]


def test_personal_attributes_never_reach_open_data(app: Any, client: Any) -> None:
    s = app.state.services
    s.keys.set_public_types(T, [*s.keys.public_types(T),
                                "https://uri.etsi.org/ngsi-ld/default-context/ServiceRequest"],
                            "test")
    c = client()
    rows = c.get("/portal/data/ServiceRequest.json").json()
    assert rows[0]["id"] == REQ and rows[0]["status"] == "open"
    assert "telephone" not in rows[0]
    assert "010-1234-5678" not in c.get("/portal/data/ServiceRequest.csv").text


def test_csv_cells_cannot_become_spreadsheet_formulas() -> None:
    from maeul.web.opendata import to_csv

    text = to_csv([{"id": "urn:x:1", "type": "X", "note": "=HYPERLINK(\"http://e\")",
                    "n": -3, "tags": ["a", "b"]}])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["note"].startswith("'=") and row["n"] == "-3"
    assert json.loads(row["tags"]) == ["a", "b"]


def test_signal_entity_is_public_data_too(client: Any) -> None:
    rows = client().get("/portal/data/TrafficSignal.json").json()
    assert [r["id"] for r in rows] == [SIG]


def test_vendored_files_are_served_with_their_licences(client: Any) -> None:
    c = client()
    for path in ("leaflet/leaflet.js", "leaflet/leaflet.css", "htmx/htmx.min.js",
                 "uplot/uPlot.iife.min.js", "js/map.js", "js/charts.js", "css/maeul.css"):
        assert c.get(f"/static/{path}").status_code == 200, path
    for lib in ("leaflet", "htmx", "uplot"):
        assert (WEB / "static" / lib / "LICENSE").is_file()
        assert f"`{lib}/`" in (WEB / "static" / "VENDORED.md").read_text()
    assert c.get("/static/nope.js").status_code == 404


# -- catalogues -----------------------------------------------------------------------------
def test_both_catalogues_have_the_same_keys_and_cover_the_templates() -> None:
    ko = json.loads((WEB / "i18n" / "ko.json").read_text(encoding="utf-8"))
    en = json.loads((WEB / "i18n" / "en.json").read_text(encoding="utf-8"))
    assert set(ko) == set(en)
    assert all(ko[k] and en[k] for k in ko), "an empty message"
    used: set[str] = set()
    for path in (WEB / "templates").rglob("*.html"):
        used |= set(re.findall(r"(?<![\w.])t\('([a-z0-9_.]+[a-z0-9_])'", path.read_text()))
    for path in WEB.glob("*.py"):
        used |= set(re.findall(r'(?<![\w.])t\("([a-z0-9_.]+[a-z0-9_])"', path.read_text()))
    missing = sorted(k for k in used if k not in ko)
    assert not missing, f"messages missing from the catalogues: {missing}"
    for prefix, values in (("status.", ["pending", "approved", "applied", "rejected",
                                        "expired", "failed", "rolledBack"]),
                           ("kpi.status.", ["met", "notMet", "noData"]),
                           ("role.", ["admin", "operator", "service", "reader"]),
                           ("layer.", ["signals", "traffic", "parking", "air", "complaints",
                                       "alerts"]),
                           ("decision.done.", ["approve", "reject", "modify", "rollback"])):
        for v in values:
            assert prefix + v in ko, prefix + v
