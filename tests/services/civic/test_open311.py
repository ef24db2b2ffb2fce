"""The civic desk over HTTP: Open311 GeoReport v2 intake and search, routing, places,
duplicates, operators' changes, confirmation, photos, privacy, and bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import app_client, make_settings

O311 = "/open311/v2"
C = "/civic/v1"
PHONE = "010-2345-6789"

def _city(tmp_path: Path, store_url: str | None = None, **extra: Any) -> Any:
    settings = make_settings(store_url or f"sqlite:///{tmp_path}/civic.db", tmp_path,
                             auth_enabled=True, trust_jobs=False,
                             civic_media_dir=tmp_path / "media", **extra)
    return app_client(settings)


def _keys(c: Any) -> None:
    s = c.services
    hdr = lambda key: {"Authorization": f"Bearer {key}"}  # noqa: E731
    c.operator = hdr(s.keys.create("operator", purposes=["complaint-handling"]))
    c.plain_operator = hdr(s.keys.create("operator"))
    c.reader = hdr(s.keys.create("reader"))
    c.admin = hdr(s.keys.create("admin"))


@pytest.fixture
def city(tmp_path: Path) -> Iterator[Any]:
    with _city(tmp_path) as c:
        _keys(c)
        yield c


def _file(c: Any, **fields: Any) -> dict[str, Any]:
    r = c.post(f"{O311}/requests.json", data=fields)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()[0]
    return out


def _count(c: Any) -> int:
    r = c.get("/ngsi-ld/v1/entities", params={"type": "ServiceRequest", "count": "true",
                                              "limit": 0}, headers=c.admin)
    return int(r.headers["NGSILD-Results-Count"])


def test_service_list_and_definitions_in_both_languages_and_formats(city: Any) -> None:
    r = city.get(f"{O311}/services.json")
    assert r.status_code == 200
    codes = {s["service_code"] for s in r.json()}
    assert {"road", "streetlight", "parking", "waste", "noise", "welfare", "other"} <= codes
    ko = {s["service_code"]: s["service_name"] for s in r.json()}
    en = {s["service_code"]: s["service_name"]
          for s in city.get(f"{O311}/services.json", params={"lang": "en"}).json()}
    assert ko["streetlight"] != en["streetlight"] and "light" in en["streetlight"].lower()
    root = ET.fromstring(city.get(f"{O311}/services.xml").content)
    assert root.tag == "services" and len(root.findall("service")) == len(codes)
    with_attrs = [s["service_code"] for s in r.json() if s["metadata"]]
    assert "parking" in with_attrs  # the plate number and vehicle type
    d = city.get(f"{O311}/services/parking.json").json()
    assert d["service_code"] == "parking"
    assert {a["code"] for a in d["attributes"]} >= {"plate_number"}
    bad = city.get(f"{O311}/services/no-such-thing.json")
    assert bad.status_code == 404
    assert bad.json()[0]["code"] == 404 and "services.json" in bad.json()[0]["description"]
    assert city.get(f"{O311}/services.csv").status_code == 404
    assert city.get(f"{O311}/discovery.json").json()["endpoints"][0]["url"].endswith(O311)


def test_a_report_is_routed_filed_as_an_entity_with_its_place_and_masked(city: Any) -> None:
    before = _count(city)
    out = _file(city, description=f"가로등이 꺼져서 밤에 길이 너무 어두워요. 연락은 {PHONE}",
                lat="37.5665", long="126.9780", email="kim@example.org", first_name="민수")
    assert out["service_code"] == "streetlight" and out["department"] == "roads"
    assert out["routing"]["category"] == "streetlight" and 0 < out["routing"]["confidence"] <= 1
    assert out["token"] and out["expected_datetime"]
    rid = out["service_request_id"]
    assert _count(city) == before + 1
    got = city.get(f"{O311}/requests/{rid}.json").json()[0]
    assert got["status"] == "open" and got["service_code"] == "streetlight"
    assert (got["lat"], got["long"]) == (37.5665, 126.9780)
    assert PHONE not in json.dumps(got, ensure_ascii=False)  # masked at ingest
    assert "kim@example.org" not in json.dumps(got)
    # the hub entity: location as a GeoProperty, contact hidden from a reader
    eid = f"urn:ngsi-ld:ServiceRequest:{rid}"
    ent = city.get(f"/ngsi-ld/v1/entities/{eid}", headers=city.reader).json()
    assert ent["location"]["type"] == "GeoProperty"
    assert "email" not in ent and "reporterName" not in ent
    assert PHONE not in json.dumps(ent, ensure_ascii=False)
    seen = city.get(f"/ngsi-ld/v1/entities/{eid}", headers=city.operator).json()
    assert seen["email"]["value"] == "kim@example.org"
    audit = city.get("/trust/v1/audit", params={"limit": 50}, headers=city.admin).json()
    filed = [a for a in audit if a["action"] == "civic.file"]
    assert filed and filed[0]["target"] == eid and filed[0]["detail"]["routed_by"] == "model"
    assert PHONE not in json.dumps(audit, ensure_ascii=False)


def test_the_citizens_own_choice_of_service_is_kept_and_search_filters(city: Any) -> None:
    a = _file(city, service_code="waste", description="쓰레기가 쌓였어요", lat="37.50",
              long="127.00")
    b = _file(city, service_code="noise", description="Loud music every night",
              lat="37.60", long="127.10")
    assert a["service_code"] == "waste" and "routing" not in a
    rows = city.get(f"{O311}/requests.json", params={"service_code": "noise"}).json()
    assert [r["service_request_id"] for r in rows] == [b["service_request_id"]]
    both = city.get(f"{O311}/requests.json", params={
        "service_request_id": f"{a['service_request_id']},{b['service_request_id']}"}).json()
    assert len(both) == 2
    assert city.get(f"{O311}/requests.json", params={"status": "closed"}).json() == []
    root = ET.fromstring(city.get(f"{O311}/requests.xml").content)
    assert len(root.findall("request")) == 2


def test_a_place_named_in_the_text_is_geocoded_against_hub_entities(city: Any) -> None:
    r = city.post("/ngsi-ld/v1/entities", headers=city.admin, json={
        "id": "urn:ngsi-ld:PointOfInterest:city-hall-station", "type": "PointOfInterest",
        "name": {"type": "Property", "value": "시청역"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [127.0011, 37.5012]}}})
    assert r.status_code == 201, r.text
    out = _file(city, description="어제 밤 10시쯤 시청역 3번 출구 앞 가로등이 꺼져 있었어요")
    assert out["place"]["entity"] == "urn:ngsi-ld:PointOfInterest:city-hall-station"
    assert out["time"] and out["time"]["at"]
    got = city.get(f"{O311}/requests/{out['service_request_id']}.json").json()[0]
    assert (got["long"], got["lat"]) == (127.0011, 37.5012)
    assert "시청역" in (got["address"] or "")


def test_a_duplicate_nearby_is_linked_not_filed_twice(city: Any) -> None:
    first = _file(city, description="중앙로 사거리 횡단보도 앞 도로에 큰 포트홀이 생겼어요",
                  lat="37.50000", long="127.00000")
    n = _count(city)
    again = _file(city, description="중앙로 사거리 횡단보도 앞에 도로가 움푹 패여 위험합니다",
                  lat="37.50030", long="127.00020")
    assert again["duplicate_of"] == first["service_request_id"]
    assert again["service_request_id"] == first["service_request_id"]
    assert again["report_count"] == 2 and _count(city) == n
    got = city.get(f"{O311}/requests/{first['service_request_id']}.json").json()[0]
    assert got["report_count"] == 2
    # another problem at the same corner is its own request; so is one far away
    other = _file(city, description="중앙로 사거리 가로등이 깜빡거려요", lat="37.50001",
                  long="127.00001")
    far = _file(city, description="도로에 큰 포트홀이 생겼어요 위험해요", lat="37.60",
                long="127.10")
    assert "duplicate_of" not in other and "duplicate_of" not in far
    assert _count(city) == n + 2


@pytest.mark.parametrize("fields, words", [
    ({}, "description"),
    ({"description": "   "}, "description"),
    ({"description": "x" * 100_000}, "at most 10000"),
    ({"description": "포트홀", "lat": "123", "long": "127"}, "lat"),
    ({"description": "포트홀", "lat": "37.5"}, "lat and long"),
    ({"description": "포트홀", "lat": "north", "long": "127"}, "lat"),
    ({"description": "포트홀", "service_code": "no-such-service"}, "unknown service_code"),
    ({"description": "포트홀", "email": "not-an-address"}, "email"),
    ({"description": "포트홀", "media_url": "javascript:alert(1)"}, "media_url"),
    ({"description": "포트홀", "favourite_colour": "blue"}, "favourite_colour"),
])
def test_bad_reports_get_a_clear_open311_error_and_store_nothing(
        city: Any, fields: dict[str, Any], words: str) -> None:
    n = _count(city)
    r = city.post(f"{O311}/requests.json", data=fields)
    assert r.status_code in (400, 404), r.text
    err = r.json()[0]
    assert err["code"] == r.status_code and words in err["description"]
    assert _count(city) == n


def test_bad_searches_and_ids(city: Any) -> None:
    assert city.get(f"{O311}/requests/nope.json").status_code == 400
    r = city.get(f"{O311}/requests/261123-ABCDEF.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    assert city.get(f"{O311}/requests.json", params={"status": "lost"}).status_code == 400
    assert city.get(f"{O311}/requests.json", params={"start_date": "yesterday"}).status_code == 400
    assert city.get(f"{O311}/requests.json", params={"service_code": "zzz"}).status_code == 404
    r = city.post(f"{O311}/requests.json", content=b"{not json",
                  headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = city.post(f"{O311}/requests.json", content=b"<x/>", headers={"content-type": "text/xml"})
    assert r.status_code == 400
    r = city.post(f"{O311}/requests.json", data={"description": "포트홀", "jurisdiction_id": "a b"})
    assert r.status_code == 400


def test_operators_close_and_reroute_and_the_classifier_learns(city: Any) -> None:
    text = "마을회관 옆 공터에 멧돼지 가족이 밤마다 내려와 텃밭을 헤집어요"
    out = _file(city, service_code="other", description=text, lat="37.4", long="127.2")
    rid = out["service_request_id"]
    assert city.patch(f"{C}/requests/{rid}", json={"status": "closed"},
                      headers=city.reader).status_code == 403
    r = city.patch(f"{C}/requests/{rid}", json={"service_code": "animals",
                                                 "status_notes": "동물보호팀 이관"},
                   headers=city.plain_operator)
    assert r.status_code == 200, r.text
    assert r.json()["service_code"] == "animals" and r.json()["agency_responsible"]
    # the routed case is learned at once: the same words now route to animals
    routed = city.post(f"{C}/classify", json={"text": text}).json()
    assert routed["category"] == "animals"
    r = city.patch(f"{C}/requests/{rid}", json={"status": "closed"}, headers=city.operator)
    assert r.json()["status"] == "closed"
    assert city.get(f"{O311}/requests.json", params={"status": "closed"}).json()[0][
        "service_request_id"] == rid
    actions = [a["action"] for a in city.get("/trust/v1/audit", params={"limit": 50},
                                             headers=city.admin).json()]
    assert "civic.reroute" in actions and "civic.status" in actions
    assert city.patch(f"{C}/requests/{rid}", json={}, headers=city.operator).status_code == 400
    assert city.patch(f"{C}/requests/{rid}", json={"status": "lost"},
                      headers=city.operator).status_code == 400
    assert city.patch(f"{C}/requests/{rid}", json={"service_code": "zzz"},
                      headers=city.operator).status_code == 404


def test_low_confidence_asks_the_citizen_to_confirm(tmp_path: Path) -> None:
    from maeul.services.civic.taxonomy import load_taxonomy  # noqa: F401  (must exist)

    src = Path(__import__("maeul.services.civic", fromlist=["x"]).__file__).parent
    tax = json.loads((src / "data" / "taxonomy.json").read_text())
    tax["confidence_threshold"] = 0.999  # everything needs confirmation
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(tax, ensure_ascii=False))
    with _city(tmp_path, civic_taxonomy=path) as c:
        _keys(c)
        out = _file(c, description="밤에 길이 깜깜해요 불이 안 들어와요", lat="37.1",
                    long="127.1")
        assert out["routing"]["needs_confirmation"] is True
        alts = [a["category"] for a in out["routing"]["alternatives"]]
        rid = out["service_request_id"]
        choice = alts[0]
        url = f"{C}/requests/{rid}/confirm"
        assert c.post(url, json={"service_code": choice, "token": "guess"}).status_code == 403
        assert c.post(url, json={"service_code": "zzz", "token": out["token"]}
                      ).status_code == 400
        r = c.post(url, json={"service_code": choice, "token": out["token"]})
        assert r.status_code == 200 and r.json()["service_code"] == choice
        again = c.post(url, json={"service_code": choice, "token": out["token"]})
        assert again.status_code == 400  # already settled


def test_a_photo_is_kept_and_served_and_other_files_are_refused(city: Any) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    r = city.post(f"{O311}/requests.json", data={"service_code": "road", "description": "hole",
                                              "lat": "37.3", "long": "127.3"},
                  files={"media": ("hole.png", png, "image/png")})
    assert r.status_code == 201, r.text
    got = city.get(f"{O311}/requests/{r.json()[0]['service_request_id']}.json").json()[0]
    path = got["media_url"].split("://", 1)[1].split("/", 1)[1]
    img = city.get("/" + path)
    assert img.status_code == 200 and img.content == png
    assert img.headers["content-type"] == "image/png"
    bad = city.post(f"{O311}/requests.json", data={"service_code": "road", "lat": "1",
                                                "long": "1"},
                    files={"media": ("x.png", b"MZ\x90\x00 not an image", "image/png")})
    assert bad.status_code == 400 and "photo" in bad.json()[0]["description"]


def test_a_city_can_require_keys_for_filing(tmp_path: Path) -> None:
    with _city(tmp_path, civic_anonymous_reports=False) as c:
        _keys(c)
        r = c.post(f"{O311}/requests.json", data={"service_code": "road", "lat": "1",
                                               "long": "1"})
        assert r.status_code == 403
        r = c.post(f"{O311}/requests.json", headers=c.reader,
                   data={"service_code": "road", "lat": "1", "long": "1"})
        assert r.status_code == 403
        key = c.operator["Authorization"].split()[1]
        r = c.post(f"{O311}/requests.json", data={"service_code": "road", "lat": "1",
                                               "long": "1", "api_key": key})
        assert r.status_code == 201


def test_routing_preview_and_its_bad_input(city: Any) -> None:
    r = city.post(f"{C}/classify", json={"text": "Someone dumped a sofa and trash bags "
                                                 "behind the market"})
    assert r.status_code == 200 and r.json()["category"] == "waste"
    assert len(r.json()["alternatives"]) >= 2
    for body in ({"text": ""}, {"text": 42}, {"text": "가" * 10_001}, ["text"]):
        assert city.post(f"{C}/classify", json=body).status_code == 400


@pytest.mark.postgres
def test_filing_and_search_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    with _city(tmp_path, store_url=pg_url) as c:
        _keys(c)
        out = _file(c, description="공원 벤치가 부서졌어요", lat="37.2", long="127.2")
        rows = c.get(f"{O311}/requests.json").json()
        assert [r["service_request_id"] for r in rows] == [out["service_request_id"]]
        assert rows[0]["service_code"] == "parks"
