"""ETSI common behaviours (GS CIM 009 v1.8 clause 6.3) over HTTP, on every store backend:
Accept negotiation with weights, the GeoJSON @context, unknown query parameters, 411,
merge-patch PATCHes, the tenant header echo; JsonProperty; NGSI-LD Null deletions."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
E = "urn:ngsi-ld:Building:c1"


def problem(r: Any, status: int = 400, name: str = "BadRequestData") -> str:
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith(name), r.json()
    return str(r.json()["detail"])


def make(client: Any, doc: dict[str, Any]) -> None:
    r = client.post(f"{B}/entities", json=doc)
    assert r.status_code == 201, r.text


@pytest.fixture
def building(client: Any) -> str:
    make(client, {"id": E, "type": "Building", "name": {"type": "Property", "value": "A"},
                  "location": {"type": "GeoProperty",
                               "value": {"type": "Point", "coordinates": [1, 2]}}})
    return E


# -- 6.3.4: Accept ------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "media"), [
    ("application/ld+json, application/json", "application/json"),  # list order breaks ties
    ("application/geo+json, application/json", "application/json"),
    ("application/json;q=0.1, application/ld+json;q=0.9", "application/ld+json"),
    ("application/json;q=0, application/ld+json", "application/ld+json"),
    ("application/json;q=0, */*", "application/ld+json"),  # the exact range is more specific
    ("*/*;q=0.9, application/ld+json;q=0.8", "application/json"),
    ("application/ld+json;q=notanumber", "application/ld+json"),
    ("text/html, application/*;q=0.5", "application/json"),
    ("application/geo+json;q=0.9, application/json;q=0.5", "application/geo+json"),
])
def test_accept_weights_and_list_order(client: Any, building: str, accept: str,
                                       media: str) -> None:
    r = client.get(f"{B}/entities/{building}", headers={"Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(media)


@pytest.mark.parametrize("accept", ["text/html", "application/json;q=0",
                                    "application/json;q=0, application/ld+json;q=0"])
def test_accept_nothing_acceptable(client: Any, building: str, accept: str) -> None:
    r = client.get(f"{B}/entities/{building}", headers={"Accept": accept})
    problem(r, 406, "NotAcceptable")


def test_geojson_body_carries_context_unless_prefer_body_json(client: Any,
                                                             building: str) -> None:
    r = client.get(f"{B}/entities", params={"type": "Building"},
                   headers={"Accept": "application/geo+json"})
    assert r.status_code == 200 and r.json()["type"] == "FeatureCollection"
    assert r.json()["@context"] == ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]
    one = client.get(f"{B}/entities/{building}", headers={"Accept": "application/geo+json"})
    assert one.json()["type"] == "Feature" and "@context" in one.json()
    r = client.get(f"{B}/entities", params={"type": "Building"},
                   headers={"Accept": "application/geo+json", "Prefer": "body=json"})
    assert "@context" not in r.json() and "Link" in r.headers


# -- 6.3.20: unknown query parameters -----------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/entities?type=Building&invalidParam=1"),
    ("GET", "/temporal/entities?type=Building&invalidParam=1"),
    ("GET", "/types?invalidParam=1"),
    ("GET", "/types/Building?invalidParam=1"),
    ("GET", "/attributes?invalidParam=1"),
    ("GET", "/attributes/name?invalidParam=1"),
    ("GET", "/attributes?limit=5"),
    ("GET", "/attributes/name?details=true"),
    ("GET", "/types/Building?details=true"),
    ("DELETE", "/entities?type=Building&invalidParam=1"),
])
def test_unknown_query_parameter_is_invalid_request(client: Any, building: str, method: str,
                                                    path: str) -> None:
    r = client.request(method, B + path)
    problem(r, 400, "InvalidRequest")
    assert client.get(f"{B}/entities/{building}").status_code == 200  # purge did nothing


def test_unknown_query_parameter_on_create_subscription(client: Any) -> None:
    r = client.post(f"{B}/subscriptions?invalidParam=1", json={
        "type": "Subscription", "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}})
    problem(r, 400, "InvalidRequest")
    assert client.get(f"{B}/subscriptions").json() == []


def test_known_query_parameters_still_accepted(client: Any, building: str) -> None:
    r = client.get(f"{B}/entities", params={"type": "Building", "local": "true",
                                            "limit": "5", "count": "true"})
    assert r.status_code == 200 and r.headers["NGSILD-Results-Count"] == "1"
    assert client.get(f"{B}/types", params={"details": "true"}).status_code == 200
    # a single-entity retrieve is not checked (hot path)
    assert client.get(f"{B}/entities/{building}", params={"x": "1"}).status_code == 200


# -- 6.3.4: Content-Length, merge-patch ---------------------------------------------------------


def _chunks(data: bytes) -> Any:
    yield data


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/entities"), ("PATCH", f"/entities/{E}/attrs"), ("PUT", f"/entities/{E}"),
])
def test_missing_content_length_is_a_bare_411(client: Any, method: str, path: str) -> None:
    r = client.request(method, B + path, content=_chunks(b'{"id": "urn:x:1", "type": "T"}'),
                       headers={"Content-Type": "application/json",
                                "NGSILD-Tenant": "nosuchtenant"})
    assert r.status_code == 411 and r.content == b""
    assert client.get(f"{B}/entities", params={"type": "T"}).json() == []


def test_merge_patch_content_type_on_attribute_and_subscription(client: Any,
                                                                building: str) -> None:
    mp = {"Content-Type": "application/merge-patch+json"}
    r = client.patch(f"{B}/entities/{building}/attrs/name", content=b'{"value": "B"}',
                     headers=mp)
    assert r.status_code == 204, r.text
    assert client.get(f"{B}/entities/{building}").json()["name"]["value"] == "B"
    r = client.patch(f"{B}/entities/{building}/attrs", headers=mp,
                     content=b'{"name": {"type": "Property", "value": "C"}}')
    assert r.status_code == 204, r.text
    r = client.post(f"{B}/subscriptions", json={
        "id": "urn:ngsi-ld:Subscription:mp", "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}})
    assert r.status_code == 201
    r = client.patch(f"{B}/subscriptions/urn:ngsi-ld:Subscription:mp", headers=mp,
                     content=b'{"description": "merged"}')
    assert r.status_code == 204, r.text
    got = client.get(f"{B}/subscriptions/urn:ngsi-ld:Subscription:mp").json()
    assert got["description"] == "merged"
    r = client.post(f"{B}/entities", headers=mp, content=b'{"id": "urn:x:2", "type": "T"}')
    problem(r, 415, "UnsupportedMediaType")  # only PATCH takes merge-patch


# -- 6.3.14: the tenant header is echoed --------------------------------------------------------


def test_tenant_header_echoed(client: Any) -> None:
    r = client.get(f"{B}/entities", params={"type": "T"}, headers={"NGSILD-Tenant": "tq1"})
    problem(r, 404, "NonexistentTenant")
    assert r.headers["NGSILD-Tenant"] == "tq1"
    r = client.post(f"{B}/entities", json={"id": "urn:x:3", "type": "T"},
                    headers={"NGSILD-Tenant": "tq1"})
    assert r.status_code == 201 and r.headers["NGSILD-Tenant"] == "tq1"
    r = client.get(f"{B}/entities", params={"type": "T"})
    assert r.json() == [] and "NGSILD-Tenant" not in r.headers


# -- 4.5.24: JsonProperty -----------------------------------------------------------------------

RAW = {"speed": 3, "brandName": "x", "type": "raw", "nested": [{"a": None}]}


def test_json_property_round_trip(client: Any) -> None:
    make(client, {"id": "urn:ngsi-ld:Car:j1", "type": "Car",
                  "tickets": {"type": "JsonProperty", "json": RAW,
                              "source": {"type": "Property", "value": "s"}},
                  "concise": {"json": [{"k": 1}]}})
    got = client.get(f"{B}/entities/urn:ngsi-ld:Car:j1").json()
    assert got["tickets"] == {"type": "JsonProperty", "json": RAW,
                              "source": {"type": "Property", "value": "s"}}
    assert got["concise"] == {"type": "JsonProperty", "json": [{"k": 1}]}  # inferred
    kv = client.get(f"{B}/entities/urn:ngsi-ld:Car:j1", params={"format": "keyValues"}).json()
    assert kv["tickets"] == {"json": RAW}
    concise = client.get(f"{B}/entities/urn:ngsi-ld:Car:j1",
                         params={"format": "concise"}).json()
    assert concise["tickets"] == {"json": RAW, "source": "s"}
    q = client.get(f"{B}/entities", params={"type": "Car", "q": "tickets[speed]==3"}).json()
    assert [e["id"] for e in q] == ["urn:ngsi-ld:Car:j1"]
    assert client.get(f"{B}/entities", params={"type": "Car",
                                               "q": "tickets[speed]==4"}).json() == []
    r = client.patch(f"{B}/entities/urn:ngsi-ld:Car:j1/attrs/tickets",
                     json={"json": {"speed": 5}})
    assert r.status_code == 204, r.text
    got = client.get(f"{B}/entities/urn:ngsi-ld:Car:j1").json()
    assert got["tickets"]["json"] == {"speed": 5}  # json is replaced whole, never merged


@pytest.mark.parametrize("attr", [
    {"type": "JsonProperty", "json": 5},
    {"type": "JsonProperty", "json": "text"},
    {"type": "JsonProperty", "json": {"a": 1}, "unitCode": "MTR"},
    {"type": "JsonProperty", "json": {"a": 1}, "value": 1},
    {"type": "JsonProperty"},
])
def test_json_property_invalid(client: Any, attr: dict[str, Any]) -> None:
    r = client.post(f"{B}/entities", json={"id": "urn:ngsi-ld:Car:j2", "type": "Car",
                                           "tickets": attr})
    problem(r)
    assert client.get(f"{B}/entities/urn:ngsi-ld:Car:j2").status_code == 404


def test_temporal_values_keep_member_names(client: Any) -> None:
    r = client.post(f"{B}/temporal/entities", json={
        "id": "urn:ngsi-ld:Car:t1", "type": "Car",
        "tickets": [{"type": "JsonProperty", "json": {"v": 1},
                     "observedAt": "2020-08-01T12:03:00Z"}],
        "street": [{"type": "LanguageProperty", "languageMap": {"fr": "Rue"},
                    "observedAt": "2020-08-01T12:03:00Z"}],
        "kind": [{"type": "VocabProperty", "vocab": "monument",
                  "observedAt": "2020-08-01T12:03:00Z"}]})
    assert r.status_code == 201, r.text
    got = client.get(f"{B}/temporal/entities/urn:ngsi-ld:Car:t1",
                     params={"format": "temporalValues"}).json()
    assert got["tickets"] == {"type": "JsonProperty",
                              "jsons": [[{"json": {"v": 1}}, "2020-08-01T12:03:00Z"]]}
    assert got["street"]["languageMaps"] == [[{"languageMap": {"fr": "Rue"}},
                                              "2020-08-01T12:03:00Z"]]
    assert got["kind"]["vocabs"] == [[{"vocab": "monument"}, "2020-08-01T12:03:00Z"]]


# -- 4.5.0: the NGSI-LD Null of every attribute type deletes ------------------------------------


@pytest.fixture
def full(client: Any) -> str:
    make(client, {
        "id": "urn:ngsi-ld:Building:n1", "type": "Building",
        "name": {"type": "Property", "value": "A",
                 "note": {"type": "Property", "value": "n"}},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
        "street": [{"type": "LanguageProperty", "languageMap": {"fr": "Rue"}},
                   {"type": "LanguageProperty", "languageMap": {"fr": "Rue 2"},
                    "datasetId": "urn:ngsi-ld:Dataset:2"}],
        "kind": {"type": "VocabProperty", "vocab": "monument"},
        "tags": {"type": "ListProperty", "valueList": [1, 2]},
        "raw": {"type": "JsonProperty", "json": {"a": 1}},
    })
    return "urn:ngsi-ld:Building:n1"


NULLS = {
    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:null"},
    "street": {"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"}},
    "kind": {"type": "VocabProperty", "vocab": "urn:ngsi-ld:null"},
    "tags": {"type": "ListProperty", "valueList": ["urn:ngsi-ld:null"]},
    "raw": {"type": "JsonProperty", "json": "urn:ngsi-ld:null"},
}


@pytest.mark.parametrize("attr", sorted(NULLS))
@pytest.mark.parametrize("how", ["merge", "update", "partial", "batch-merge"])
def test_null_of_each_type_deletes(client: Any, full: str, attr: str, how: str) -> None:
    frag = NULLS[attr]
    if how == "merge":
        r = client.patch(f"{B}/entities/{full}", json={attr: frag})
    elif how == "update":
        r = client.patch(f"{B}/entities/{full}/attrs", json={attr: frag})
    elif how == "partial":
        r = client.patch(f"{B}/entities/{full}/attrs/{attr}", json=frag)
    else:
        r = client.post(f"{B}/entityOperations/merge",
                        json=[{"id": full, "type": "Building", attr: frag}])
    assert r.status_code == 204, r.text
    got = client.get(f"{B}/entities/{full}").json()
    if attr == "street":  # only the default instance went
        assert got["street"]["datasetId"] == "urn:ngsi-ld:Dataset:2"
    else:
        assert attr not in got
    assert got["name"]["value"] == "A"


def test_null_dataset_instance_and_sub_attribute(client: Any, full: str) -> None:
    r = client.patch(f"{B}/entities/{full}", json={
        "street": {"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"},
                   "datasetId": "urn:ngsi-ld:Dataset:2"},
        "name": {"type": "Property", "value": "B",
                 "note": {"type": "Property", "value": "urn:ngsi-ld:null"}}})
    assert r.status_code == 204, r.text
    got = client.get(f"{B}/entities/{full}").json()
    assert got["street"] == {"type": "LanguageProperty", "languageMap": {"fr": "Rue"}}
    assert got["name"] == {"type": "Property", "value": "B"}


def test_a_language_map_with_more_than_the_null_is_a_value(client: Any, full: str) -> None:
    r = client.patch(f"{B}/entities/{full}/attrs/street", json={
        "type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null", "en": "St"}})
    assert r.status_code == 204, r.text
    assert "street" in client.get(f"{B}/entities/{full}").json()


def test_null_cannot_be_created(client: Any) -> None:
    for attr in NULLS.values():
        r = client.post(f"{B}/entities", json={"id": "urn:ngsi-ld:Building:n2",
                                               "type": "Building", "a": attr})
        assert r.status_code == 400, (attr, r.text)


# -- 4.16 / 4.18: types and scope through the attribute operations -----------------------------


def test_update_attrs_appends_types_and_replaces_only_an_existing_scope(client: Any) -> None:
    make(client, {"id": "urn:ngsi-ld:Building:s1", "type": "Building"})
    r = client.patch(f"{B}/entities/urn:ngsi-ld:Building:s1/attrs",
                     json={"type": ["Vehicle", "Building"], "scope": "/A"})
    assert r.status_code == 207, r.text
    assert r.json()["notUpdated"][0]["attributeName"] == "scope"
    got = client.get(f"{B}/entities/urn:ngsi-ld:Building:s1").json()
    assert got["type"] == ["Building", "Vehicle"] and "scope" not in got
    make(client, {"id": "urn:ngsi-ld:Building:s2", "type": "Building", "scope": "/A"})
    r = client.patch(f"{B}/entities/urn:ngsi-ld:Building:s2/attrs", json={"scope": "/B"})
    assert r.status_code == 204, r.text
    assert client.get(f"{B}/entities/urn:ngsi-ld:Building:s2").json()["scope"] == "/B"


def test_append_scope_with_no_overwrite_adds_and_delete_removes(client: Any) -> None:
    make(client, {"id": "urn:ngsi-ld:Building:s3", "type": "Building", "scope": "/A"})
    r = client.post(f"{B}/entities/urn:ngsi-ld:Building:s3/attrs?options=noOverwrite",
                    json={"scope": "/B"})
    assert r.status_code == 204, r.text
    assert client.get(f"{B}/entities/urn:ngsi-ld:Building:s3").json()["scope"] == ["/A", "/B"]
    assert client.delete(f"{B}/entities/urn:ngsi-ld:Building:s3/attrs/scope").status_code == 204
    assert "scope" not in client.get(f"{B}/entities/urn:ngsi-ld:Building:s3").json()
    r = client.delete(f"{B}/entities/urn:ngsi-ld:Building:s3/attrs/scope")
    problem(r, 404, "ResourceNotFound")


@pytest.mark.parametrize("typ", ["type", "id", ["Building", "type"]])
def test_entity_type_cannot_be_a_keyword(client: Any, typ: Any) -> None:
    r = client.post(f"{B}/entities", json={"id": "urn:ngsi-ld:Building:k1", "type": typ})
    problem(r)
    assert client.get(f"{B}/entities/urn:ngsi-ld:Building:k1").status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_replace_or_merge_without_entity_id(client: Any, method: str) -> None:
    for path in (f"{B}/entities/", f"{B}/entities"):
        r = client.request(method, path, json={"type": "Building"})
        problem(r)
    r = client.post(f"{B}/entities/", json={"id": "urn:x:s", "type": "T"})
    assert r.status_code == 201, r.text  # a trailing slash still reaches the collection


def test_subscription_list_pagination_links(client: Any) -> None:
    for i in range(3):
        r = client.post(f"{B}/subscriptions", json={
            "id": f"urn:ngsi-ld:Subscription:p{i}", "type": "Subscription",
            "entities": [{"type": "Building"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}})
        assert r.status_code == 201
    r = client.get(f"{B}/subscriptions", params={"limit": 1, "offset": 1},
                   headers={"Accept": "application/ld+json"})
    assert len(r.json()) == 1
    links = {v.strip() for v in r.headers["Link"].split(",")}
    assert links == {
        '</ngsi-ld/v1/subscriptions?limit=1&offset=0>;rel="prev";type="application/ld+json"',
        '</ngsi-ld/v1/subscriptions?limit=1&offset=2>;rel="next";type="application/ld+json"'}
    r = client.get(f"{B}/subscriptions", params={"limit": 1, "offset": 2})
    assert 'rel="next"' not in r.headers["Link"] and 'rel="prev"' in r.headers["Link"]
    assert "json-ld#context" in r.headers["Link"]
    assert "Link" not in client.get(f"{B}/subscriptions", params={"limit": 5},
                                    headers={"Accept": "application/ld+json"}).headers


def test_projection_leaving_nothing_is_not_found(client: Any, building: str) -> None:
    r = client.get(f"{B}/entities/{building}", params={"pick": "unknown"})
    problem(r, 404, "ResourceNotFound")
    r = client.get(f"{B}/entities/{building}", params={"omit": "id,type,name,location"})
    problem(r, 404, "ResourceNotFound")
    assert client.get(f"{B}/entities/{building}",
                      params={"pick": "id"}).json() == {"id": building}


def test_temporal_retrieve_without_the_requested_members(client: Any) -> None:
    r = client.post(f"{B}/temporal/entities", json={
        "id": "urn:ngsi-ld:Car:t2", "type": "Car",
        "speed": [{"type": "Property", "value": 1, "observedAt": "2020-08-01T12:03:00Z"}]})
    assert r.status_code == 201, r.text
    url = f"{B}/temporal/entities/urn:ngsi-ld:Car:t2"
    problem(client.get(url, params={"attrs": "unknown"}), 404, "ResourceNotFound")
    problem(client.get(url, params={"pick": "unknown"}), 404, "ResourceNotFound")
    problem(client.get(url, params={"omit": "id,type,speed"}), 404, "ResourceNotFound")
    assert client.get(url, params={"attrs": "speed"}).json()["speed"][0]["value"] == 1
    # a time window without instances is an empty answer, not a missing attribute
    r = client.get(url, params={"attrs": "speed", "timerel": "before",
                                "timeAt": "2000-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text


def test_types_and_attributes_with_a_trailing_slash(client: Any, building: str) -> None:
    for path in ("types", "attributes"):
        plain = client.get(f"{B}/{path}", params={"details": "true"})
        slash = client.get(f"{B}/{path}/", params={"details": "true"})
        assert slash.status_code == 200 and slash.json() == plain.json()
    problem(client.get(f"{B}/types/", params={"limit": "1"}), 400, "InvalidRequest")


def test_temporal_evolution_along_deleted_at_shows_deletions_only(client: Any) -> None:
    make(client, {"id": "urn:ngsi-ld:Car:d1", "type": "Car",
                  "speed": {"type": "Property", "value": 1},
                  "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}})
    make(client, {"id": "urn:ngsi-ld:Car:d2", "type": "Car",
                  "speed": {"type": "Property", "value": 2}})
    assert client.delete(f"{B}/entities/urn:ngsi-ld:Car:d1/attrs/owner").status_code == 204
    got = client.get(f"{B}/temporal/entities/urn:ngsi-ld:Car:d1",
                     params={"timeproperty": "deletedAt"}).json()
    assert set(got) == {"id", "type", "owner"} and len(got["owner"]) == 1
    assert got["owner"][0]["object"] == "urn:ngsi-ld:null"
    everything = client.get(f"{B}/temporal/entities/urn:ngsi-ld:Car:d1").json()
    assert {"speed", "owner"} <= set(everything) and len(everything["owner"]) == 2
    found = client.get(f"{B}/temporal/entities",
                       params={"type": "Car", "timeproperty": "deletedAt"}).json()
    assert [e["id"] for e in found] == ["urn:ngsi-ld:Car:d1"]


def test_query_post_answers_geojson(client: Any, building: str) -> None:
    r = client.post(f"{B}/entityOperations/query", headers={"Accept": "application/geo+json"},
                    json={"type": "Query", "entities": [{"type": "Building"}]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    feats = r.json()["features"]
    assert [f["id"] for f in feats] == [building]
    assert feats[0]["geometry"] == {"type": "Point", "coordinates": [1, 2]}
