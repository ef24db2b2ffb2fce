"""Conformance of the NGSI-LD entity API through HTTP (ETSI GS CIM 009 v1.8, clause 5.6)."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import make_settings

# starlette's TestClient warns (as a UserWarning) when it falls back to httpx
pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"
EID = "urn:ngsi-ld:Building:b1"


def building(eid: str = EID, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": eid,
        "type": "Building",
        "height": {"type": "Property", "value": 42, "unitCode": "MTR",
                   "accuracy": {"type": "Property", "value": 0.5}},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:p1"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [127.0, 37.5]}},
    }
    body.update(extra)
    return body


def create(client: Any, body: dict[str, Any], **headers: str) -> Any:
    r = client.post(f"{B}/entities", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r


def get(client: Any, eid: str = EID, params: dict[str, str] | None = None, **headers: str) -> Any:
    return client.get(f"{B}/entities/{eid}", params=params or {}, headers=headers)


def problem(r: Any, status: int, name: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"].endswith(name), body
    assert body["status"] == status
    assert body["title"] and "detail" in body
    return body


def snapshot(client: Any) -> Any:
    r = client.get(f"{B}/entities", params={"type": "Building,Car", "options": "sysAttrs"})
    assert r.status_code == 200
    return sorted(r.json(), key=lambda e: e["id"])


# -- create --------------------------------------------------------------------------------


def test_create_returns_201_and_location(client: Any) -> None:
    r = create(client, building())
    assert r.headers["location"] == f"{B}/entities/{EID}"
    assert r.content == b""


def test_create_twice_is_409_already_exists(client: Any) -> None:
    create(client, building())
    r = client.post(f"{B}/entities", json=building())
    body = problem(r, 409, "AlreadyExists")
    assert body["type"] == ERR + "AlreadyExists"
    assert r.headers["content-type"].startswith("application/json")


def test_retrieve_normalized_round_trip(client: Any) -> None:
    create(client, building())
    r = get(client)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "rel=\"http://www.w3.org/ns/json-ld#context\"" in r.headers["link"]
    e = r.json()
    assert e["id"] == EID and e["type"] == "Building"
    assert e["height"] == {"type": "Property", "value": 42, "unitCode": "MTR",
                           "accuracy": {"type": "Property", "value": 0.5}}
    assert e["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:Person:p1"}
    assert e["location"]["type"] == "GeoProperty"
    assert e["location"]["value"] == {"type": "Point", "coordinates": [127.0, 37.5]}
    assert "createdAt" not in e and "createdAt" not in e["height"]


def test_retrieve_unknown_is_404(client: Any) -> None:
    problem(get(client, "urn:ngsi-ld:Building:none"), 404, "ResourceNotFound")


def test_retrieve_keyvalues_and_concise(client: Any) -> None:
    create(client, building())
    kv = get(client, params={"options": "keyValues"}).json()
    assert kv["height"] == 42
    assert kv["owner"] == "urn:ngsi-ld:Person:p1"
    assert kv["location"] == {"type": "Point", "coordinates": [127.0, 37.5]}
    assert get(client, params={"format": "keyValues"}).json() == kv
    assert get(client, params={"format": "simplified"}).json() == kv
    c = get(client, params={"format": "concise"}).json()
    assert c["height"] == {"value": 42, "unitCode": "MTR", "accuracy": 0.5}
    assert c["owner"] == {"object": "urn:ngsi-ld:Person:p1"}
    assert c["location"] == {"value": {"type": "Point", "coordinates": [127.0, 37.5]}}
    assert get(client, params={"options": "concise"}).json() == c


def test_retrieve_unknown_format_is_400(client: Any) -> None:
    create(client, building())
    assert get(client, params={"format": "fancy"}).status_code == 400


def test_retrieve_attrs_selects(client: Any) -> None:
    create(client, building())
    e = get(client, params={"attrs": "height"}).json()
    assert set(e) == {"id", "type", "height"}
    problem(get(client, params={"attrs": "nothere"}), 404, "ResourceNotFound")


def test_retrieve_pick_and_omit(client: Any) -> None:
    create(client, building())
    e = get(client, params={"pick": "id,height"}).json()
    assert set(e) == {"id", "height"}
    e = get(client, params={"omit": "owner,location"}).json()
    assert set(e) == {"id", "type", "height"}
    assert get(client, params={"pick": "id", "omit": "type"}).status_code == 400


def test_sysattrs(client: Any) -> None:
    create(client, building())
    e = get(client, params={"options": "sysAttrs"}).json()
    assert e["createdAt"].endswith("Z") and e["modifiedAt"].endswith("Z")
    assert e["height"]["createdAt"] and e["height"]["modifiedAt"]
    created = e["createdAt"]
    r = client.patch(f"{B}/entities/{EID}/attrs", json={"height": {"type": "Property", "value": 1}})
    assert r.status_code == 204
    e2 = get(client, params={"options": "sysAttrs"}).json()
    assert e2["createdAt"] == created
    assert e2["modifiedAt"] > e["modifiedAt"]
    assert e2["height"]["createdAt"] == e["height"]["createdAt"]


def test_language_property_lang(client: Any) -> None:
    body = building(name={"type": "LanguageProperty",
                          "languageMap": {"en": "City hall", "ko": "시청"}})
    create(client, body)
    e = get(client).json()
    assert e["name"] == {"type": "LanguageProperty",
                         "languageMap": {"en": "City hall", "ko": "시청"}}
    e = get(client, params={"lang": "ko"}).json()
    assert e["name"] == {"type": "Property", "value": "시청", "lang": "ko"}
    kv = get(client, params={"lang": "en", "options": "keyValues"}).json()
    assert kv["name"] == "City hall"
    kv = get(client, params={"options": "keyValues"}).json()
    assert kv["name"] == {"languageMap": {"en": "City hall", "ko": "시청"}}
    e = get(client, params={"lang": "fr,en;q=0.5"}).json()
    assert e["name"]["value"] == "City hall"


def test_vocab_and_list_properties_round_trip(client: Any) -> None:
    body = building(
        category={"type": "VocabProperty", "vocab": "residential"},
        floors={"type": "ListProperty", "valueList": [1, 2, 3]},
        neighbours={"type": "ListRelationship",
                    "objectList": [{"object": "urn:ngsi-ld:Building:b2"}]},
    )
    create(client, body)
    e = get(client).json()
    assert e["category"] == {"type": "VocabProperty", "vocab": "residential"}
    assert e["floors"] == {"type": "ListProperty", "valueList": [1, 2, 3]}
    assert e["neighbours"]["type"] == "ListRelationship"
    kv = get(client, params={"options": "keyValues"}).json()
    assert kv["category"] == "residential"
    assert kv["floors"] == [1, 2, 3]
    assert kv["neighbours"] == ["urn:ngsi-ld:Building:b2"]


def test_concise_input_is_understood(client: Any) -> None:
    body = {"id": EID, "type": "Building", "height": 12, "owner": {"object": "urn:a:b"},
            "location": {"type": "Point", "coordinates": [1.0, 2.0]},
            "name": {"languageMap": {"en": "x"}}}
    create(client, body)
    e = get(client).json()
    assert e["height"] == {"type": "Property", "value": 12}
    assert e["owner"] == {"type": "Relationship", "object": "urn:a:b"}
    assert e["location"]["type"] == "GeoProperty"
    assert e["name"]["type"] == "LanguageProperty"


def test_multi_instance_dataset_ids(client: Any) -> None:
    body = building(speed=[
        {"type": "Property", "value": 10},
        {"type": "Property", "value": 20, "datasetId": "urn:ngsi-ld:Dataset:gps"},
    ])
    create(client, body)
    e = get(client).json()
    assert isinstance(e["speed"], list) and len(e["speed"]) == 2
    by_ds = {i.get("datasetId"): i["value"] for i in e["speed"]}
    assert by_ds == {None: 10, "urn:ngsi-ld:Dataset:gps": 20}
    # delete one instance by datasetId
    r = client.delete(f"{B}/entities/{EID}/attrs/speed",
                      params={"datasetId": "urn:ngsi-ld:Dataset:gps"})
    assert r.status_code == 204
    assert get(client).json()["speed"] == {"type": "Property", "value": 10}


def test_duplicate_dataset_id_is_400(client: Any) -> None:
    body = building(speed=[{"type": "Property", "value": 1}, {"type": "Property", "value": 2}])
    problem(client.post(f"{B}/entities", json=body), 400, "BadRequestData")


def test_delete_attr_delete_all(client: Any) -> None:
    body = building(speed=[
        {"type": "Property", "value": 10},
        {"type": "Property", "value": 20, "datasetId": "urn:ngsi-ld:Dataset:gps"},
    ])
    create(client, body)
    r = client.delete(f"{B}/entities/{EID}/attrs/speed", params={"deleteAll": "true"})
    assert r.status_code == 204
    assert "speed" not in get(client).json()


def test_delete_attr_default_instance_and_missing(client: Any) -> None:
    create(client, building())
    assert client.delete(f"{B}/entities/{EID}/attrs/height").status_code == 204
    assert "height" not in get(client).json()
    r = client.delete(f"{B}/entities/{EID}/attrs/height")
    problem(r, 404, "ResourceNotFound")
    r = client.delete(f"{B}/entities/{EID}/attrs/owner",
                      params={"datasetId": "urn:ngsi-ld:Dataset:nope"})
    problem(r, 404, "ResourceNotFound")
    r = client.delete(f"{B}/entities/urn:ngsi-ld:Building:zz/attrs/owner")
    problem(r, 404, "ResourceNotFound")


def test_delete_entity(client: Any) -> None:
    create(client, building())
    assert client.delete(f"{B}/entities/{EID}").status_code == 204
    problem(get(client), 404, "ResourceNotFound")
    problem(client.delete(f"{B}/entities/{EID}"), 404, "ResourceNotFound")
    problem(client.delete(f"{B}/entities/not-a-uri"), 400, "BadRequestData")


# -- replace, merge, attrs -------------------------------------------------------------------


def test_replace_entity(client: Any) -> None:
    create(client, building())
    created = get(client, params={"options": "sysAttrs"}).json()["createdAt"]
    r = client.put(f"{B}/entities/{EID}",
                   json={"type": "Building", "color": {"type": "Property", "value": "red"}})
    assert r.status_code == 204
    e = get(client, params={"options": "sysAttrs"}).json()
    assert set(e) == {"id", "type", "color", "createdAt", "modifiedAt"}
    assert e["createdAt"] == created
    r = client.put(f"{B}/entities/{EID}", json={"id": "urn:x:other", "type": "Building"})
    problem(r, 400, "BadRequestData")
    r = client.put(f"{B}/entities/urn:ngsi-ld:Building:none", json={"type": "Building"})
    problem(r, 404, "ResourceNotFound")


def test_merge_patch_entity(client: Any) -> None:
    create(client, building())
    r = client.patch(f"{B}/entities/{EID}", json={
        "height": {"value": 50},
        "owner": "urn:ngsi-ld:null",
        "color": {"type": "Property", "value": "blue"},
    })
    assert r.status_code == 204, r.text
    e = get(client).json()
    assert "owner" not in e
    assert e["color"] == {"type": "Property", "value": "blue"}
    assert e["height"]["value"] == 50
    # sub-attribute and unitCode kept by the merge
    assert e["height"]["unitCode"] == "MTR"
    assert e["height"]["accuracy"] == {"type": "Property", "value": 0.5}


def test_merge_patch_sub_attribute(client: Any) -> None:
    create(client, building())
    r = client.patch(f"{B}/entities/{EID}", json={
        "height": {"type": "Property", "value": 43,
                   "accuracy": {"type": "Property", "value": 0.1},
                   "source": {"type": "Property", "value": "lidar"}},
    })
    assert r.status_code == 204
    h = get(client).json()["height"]
    assert h["value"] == 43 and h["accuracy"]["value"] == 0.1
    assert h["source"]["value"] == "lidar" and h["unitCode"] == "MTR"
    r = client.patch(f"{B}/entities/{EID}", json={"height": {"accuracy": "urn:ngsi-ld:null"}})
    assert r.status_code == 204
    h = get(client).json()["height"]
    assert "accuracy" not in h and h["value"] == 43


def test_merge_patch_content_type_and_missing(client: Any) -> None:
    create(client, building())
    r = client.patch(f"{B}/entities/{EID}", content=json.dumps({"height": 1}),
                     headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 204
    assert get(client).json()["height"]["value"] == 1
    r = client.patch(f"{B}/entities/urn:ngsi-ld:Building:none", json={"height": 1})
    problem(r, 404, "ResourceNotFound")
    r = client.patch(f"{B}/entities/{EID}", json={"id": "urn:x:y", "height": 1})
    problem(r, 400, "BadRequestData")


def test_append_attrs(client: Any) -> None:
    create(client, building())
    r = client.post(f"{B}/entities/{EID}/attrs",
                    json={"color": {"type": "Property", "value": "red"},
                          "height": {"type": "Property", "value": 7}})
    assert r.status_code == 204
    e = get(client).json()
    assert e["color"]["value"] == "red"
    assert e["height"] == {"type": "Property", "value": 7}  # overwritten, not merged


def test_append_attrs_no_overwrite_is_207(client: Any) -> None:
    create(client, building())
    r = client.post(f"{B}/entities/{EID}/attrs", params={"options": "noOverwrite"},
                    json={"color": {"type": "Property", "value": "red"},
                          "height": {"type": "Property", "value": 7}})
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["updated"] == ["color"]
    assert [n["attributeName"] for n in body["notUpdated"]] == ["height"]
    assert body["notUpdated"][0]["reason"]
    e = get(client).json()
    assert e["height"]["value"] == 42 and e["color"]["value"] == "red"


def test_append_to_missing_entity_is_404(client: Any) -> None:
    r = client.post(f"{B}/entities/urn:ngsi-ld:Building:none/attrs", json={"a": 1})
    problem(r, 404, "ResourceNotFound")


def test_update_attrs(client: Any) -> None:
    create(client, building())
    r = client.patch(f"{B}/entities/{EID}/attrs",
                     json={"height": {"type": "Property", "value": 9}})
    assert r.status_code == 204
    assert get(client).json()["height"] == {"type": "Property", "value": 9}
    r = client.patch(f"{B}/entities/{EID}/attrs",
                     json={"height": {"type": "Property", "value": 10},
                           "nothere": {"type": "Property", "value": 1}})
    assert r.status_code == 207
    body = r.json()
    assert body["updated"] == ["height"]
    assert body["notUpdated"][0]["attributeName"] == "nothere"
    e = get(client).json()
    assert e["height"]["value"] == 10 and "nothere" not in e


def test_partial_attribute_update(client: Any) -> None:
    create(client, building())
    r = client.patch(f"{B}/entities/{EID}/attrs/height", json={"value": 99})
    assert r.status_code == 204
    h = get(client).json()["height"]
    assert h["value"] == 99 and h["unitCode"] == "MTR" and h["accuracy"]["value"] == 0.5
    r = client.patch(f"{B}/entities/{EID}/attrs/nothere", json={"value": 1})
    problem(r, 404, "ResourceNotFound")
    r = client.patch(f"{B}/entities/{EID}/attrs/owner", json={"object": "urn:ngsi-ld:Person:p2"})
    assert r.status_code == 204
    assert get(client).json()["owner"]["object"] == "urn:ngsi-ld:Person:p2"


def test_replace_attribute(client: Any) -> None:
    create(client, building())
    r = client.put(f"{B}/entities/{EID}/attrs/height", json={"type": "Property", "value": 5})
    assert r.status_code == 204
    assert get(client).json()["height"] == {"type": "Property", "value": 5}
    r = client.put(f"{B}/entities/{EID}/attrs/nothere", json={"type": "Property", "value": 5})
    problem(r, 404, "ResourceNotFound")


# -- JSON-LD and content negotiation -----------------------------------------------------------


def test_ld_json_context_echoed(client: Any) -> None:
    ctx = {"Building": "https://example.org/Building", "height": "https://example.org/height"}
    body = {**building(), "@context": [ctx, CORE]}
    r = client.post(f"{B}/entities", content=json.dumps(body),
                    headers={"Content-Type": "application/ld+json"})
    assert r.status_code == 201, r.text
    r = get(client, Accept="application/ld+json")
    assert r.headers["content-type"].startswith("application/ld+json")
    e = r.json()
    assert "@context" in e
    # no user context on the request: names come back as full IRIs
    assert e["type"] == "https://example.org/Building"
    assert "https://example.org/height" in e
    r = get(client, Accept="application/json")
    assert "@context" not in r.json() and "link" in r.headers


def test_ld_json_needs_context(client: Any) -> None:
    r = client.post(f"{B}/entities", content=json.dumps(building()),
                    headers={"Content-Type": "application/ld+json"})
    problem(r, 400, "BadRequestData")
    assert get(client).status_code == 404


class _CtxHandler(BaseHTTPRequestHandler):
    doc: bytes = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/ld+json")
        self.send_header("Content-Length", str(len(self.doc)))
        self.end_headers()
        self.wfile.write(self.doc)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ctx_url() -> Iterator[str]:
    doc = {"@context": {"Car": "https://example.org/vocab#Car",
                        "speed": "https://example.org/vocab#speed",
                        "driver": "https://example.org/vocab#driver"}}
    handler = type("H", (_CtxHandler,), {"doc": json.dumps(doc).encode()})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/ctx.jsonld"
    srv.shutdown()
    srv.server_close()


def link(url: str) -> str:
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def test_link_header_user_context(client: Any, ctx_url: str) -> None:
    car = {"id": "urn:ngsi-ld:Car:c1", "type": "Car", "speed": {"type": "Property", "value": 80},
           "color": {"type": "Property", "value": "red"}}
    r = client.post(f"{B}/entities", json=car, headers={"Link": link(ctx_url)})
    assert r.status_code == 201, r.text
    with_ctx = get(client, "urn:ngsi-ld:Car:c1", Link=link(ctx_url))
    assert with_ctx.status_code == 200
    e = with_ctx.json()
    assert e["type"] == "Car" and e["speed"]["value"] == 80 and e["color"]["value"] == "red"
    assert ctx_url in with_ctx.headers["link"]
    plain = get(client, "urn:ngsi-ld:Car:c1").json()
    assert plain["type"] == "https://example.org/vocab#Car"
    assert "https://example.org/vocab#speed" in plain
    assert "color" in plain  # default vocabulary term compacts back
    # query by type uses the context too
    r = client.get(f"{B}/entities", params={"type": "Car"}, headers={"Link": link(ctx_url)})
    assert [x["id"] for x in r.json()] == ["urn:ngsi-ld:Car:c1"]
    r = client.get(f"{B}/entities", params={"type": "Car"})
    assert r.json() == []
    r = client.get(f"{B}/entities", params={"type": "https://example.org/vocab#Car"})
    assert len(r.json()) == 1


def test_link_header_unreachable_context(client: Any) -> None:
    r = client.post(f"{B}/entities", json=building(),
                    headers={"Link": link("http://127.0.0.1:9/nothing.jsonld")})
    assert r.status_code in (400, 503), r.text
    assert get(client).status_code == 404


def test_unsupported_media_type_415(client: Any) -> None:
    r = client.post(f"{B}/entities", content=json.dumps(building()),
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert get(client).status_code == 404


def test_not_acceptable_406(client: Any) -> None:
    create(client, building())
    r = get(client, Accept="text/html")
    assert r.status_code == 406
    r = get(client, Accept="text/html, application/json;q=0.5")
    assert r.status_code == 200


def test_context_in_body_with_json_is_400(client: Any) -> None:
    body = {**building(), "@context": CORE}
    r = client.post(f"{B}/entities", json=body)
    problem(r, 400, "BadRequestData")
    assert get(client).status_code == 404


def test_invalid_json_is_400(client: Any) -> None:
    r = client.post(f"{B}/entities", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    problem(r, 400, "InvalidRequest")
    r = client.post(f"{B}/entities", content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_body_too_large_413(store_url: str, tmp_path: Path) -> None:
    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(make_settings(store_url, tmp_path, max_body_bytes=1024))
        with TestClient(app) as c:
            big = building(note={"type": "Property", "value": "x" * 2000})
            r = c.post(f"{B}/entities", json=big)
            assert r.status_code == 413
            assert c.get(f"{B}/entities/{EID}").status_code == 404
            assert c.post(f"{B}/entities", json=building()).status_code == 201


BAD_ENTITIES = [
    {"id": "not a uri", "type": "Building"},
    {"type": "Building"},
    {"id": EID},
    {"id": EID, "type": ""},
    {"id": EID, "type": 5},
    {"id": EID, "type": "Bad Type"},
    {"id": EID, "type": "Building", "height": None},
    {"id": EID, "type": "Building", "height": {"type": "Property", "value": None}},
    {"id": EID, "type": "Building", "height": {"type": "Property"}},
    {"id": EID, "type": "Building", "height": {"type": "Weird", "value": 1}},
    {"id": EID, "type": "Building", "owner": {"type": "Relationship", "object": "nope"}},
    {"id": EID, "type": "Building", "owner": {"type": "Relationship"}},
    {"id": EID, "type": "Building", "loc": {"type": "GeoProperty", "value": {"type": "Point"}}},
    {"id": EID, "type": "Building",
     "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}},
    {"id": EID, "type": "Building", "bad name": 1},
    {"id": EID, "type": "Building",
     "h": {"type": "Property", "value": 1, "observedAt": "yesterday"}},
    {"id": EID, "type": "Building", "h": {"type": "Property", "value": 1, "datasetId": "x y"}},
    {"id": EID, "type": "Building", "name": {"type": "LanguageProperty", "languageMap": 3}},
    {"id": EID, "type": "Building", "scope": "no-slash"},
    [building()],
    "a string",
]


@pytest.mark.parametrize("bad", BAD_ENTITIES, ids=range(len(BAD_ENTITIES)))
def test_bad_entity_is_400_and_nothing_stored(client: Any, bad: Any) -> None:
    create(client, building("urn:ngsi-ld:Building:keep"))
    before = snapshot(client)
    r = client.post(f"{B}/entities", json=bad)
    assert r.status_code == 400, r.text
    assert r.json()["type"] in (ERR + "BadRequestData", ERR + "InvalidRequest")
    assert snapshot(client) == before


BAD_PATCHES = [
    {"height": None},
    {"height": {"type": "Property", "value": None}},
    {"owner": {"type": "Relationship", "object": 5}},
    {"bad=name": 1},
    {"location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[1, 2]]}}},
]


@pytest.mark.parametrize("bad", BAD_PATCHES, ids=range(len(BAD_PATCHES)))
def test_bad_updates_change_nothing(client: Any, bad: Any) -> None:
    create(client, building())
    before = snapshot(client)
    for method, path in (("PATCH", f"/entities/{EID}"), ("PATCH", f"/entities/{EID}/attrs"),
                         ("POST", f"/entities/{EID}/attrs"), ("PUT", f"/entities/{EID}")):
        payload = {**bad, "type": "Building"} if method == "PUT" else bad
        r = client.request(method, B + path, json=payload)
        assert r.status_code == 400, (method, path, r.text)
    assert snapshot(client) == before


def test_scope_round_trip(client: Any) -> None:
    create(client, building(scope=["/Seoul/Gangnam", "/Seoul"]))
    e = get(client).json()
    assert e["scope"] == ["/Seoul/Gangnam", "/Seoul"]


def test_multiple_types(client: Any) -> None:
    create(client, building(type=["Building", "Landmark"]))
    assert get(client).json()["type"] == ["Building", "Landmark"]
    r = client.get(f"{B}/entities", params={"type": "Landmark"})
    assert [e["id"] for e in r.json()] == [EID]


def test_geojson_single_entity(client: Any) -> None:
    create(client, building())
    r = get(client, Accept="application/geo+json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == EID
    assert f["geometry"] == {"type": "Point", "coordinates": [127.0, 37.5]}
    assert f["properties"]["height"]["value"] == 42


@pytest.mark.parametrize("path,payload", [
    (f"/entities/{EID}/attrs/height", {"type": "Relationship"}),
    (f"/entities/{EID}/attrs/owner", {"object": "not a uri"}),
    (f"/entities/{EID}", {"location": {"value": [1, 2]}}),
    (f"/entities/{EID}", {"height": {"type": "GeoProperty"}}),
    (f"/entities/{EID}", {"owner": {"type": "Property"}}),
])
def test_merge_leaving_an_invalid_attribute_is_400(client: Any, path: str, payload: Any) -> None:
    create(client, building())
    before = snapshot(client)
    r = client.patch(B + path, json=payload)
    problem(r, 400, "BadRequestData")
    assert snapshot(client) == before


def test_unicode_id_gets_an_ascii_location(client: Any) -> None:
    # a visible non-ASCII id (an invisible one such as U+200B is refused: 451_02)
    eid = "urn:ngsi-ld:Vehicle:A\uB9C8B"
    r = client.post("/ngsi-ld/v1/entities", json={"id": eid, "type": "Vehicle"})
    assert r.status_code == 201
    assert r.headers["location"].isascii() and "%EB%A7%88" in r.headers["location"]
    assert client.get(f"/ngsi-ld/v1/entities/{eid}").status_code == 200


def test_partial_update_with_ngsi_ld_null_deletes_the_instance(client: Any) -> None:
    B = "/ngsi-ld/v1"
    client.post(f"{B}/entities", json={"id": "urn:ngsi-ld:T:n1", "type": "T", "name": [
        {"type": "Property", "value": "a"},
        {"type": "Property", "value": "b", "datasetId": "urn:ngsi-ld:Dataset:01"},
    ]})
    r = client.patch(f"{B}/entities/urn:ngsi-ld:T:n1/attrs/name", json={
        "type": "Property", "value": "urn:ngsi-ld:null", "datasetId": "urn:ngsi-ld:Dataset:01"})
    assert r.status_code == 204
    assert client.get(f"{B}/entities/urn:ngsi-ld:T:n1").json()["name"] == {
        "type": "Property", "value": "a"}


def test_batch_delete_accepts_an_ld_json_array_of_ids(client: Any) -> None:
    B = "/ngsi-ld/v1"
    for i in range(2):
        client.post(f"{B}/entities", json={"id": f"urn:ngsi-ld:T:d{i}", "type": "T"})
    r = client.post(f"{B}/entityOperations/delete", content=json.dumps(
        ["urn:ngsi-ld:T:d0", "urn:ngsi-ld:T:d1"]), headers={"Content-Type": "application/ld+json"})
    assert r.status_code == 204
    assert client.get(f"{B}/entities/urn:ngsi-ld:T:d0").status_code == 404
