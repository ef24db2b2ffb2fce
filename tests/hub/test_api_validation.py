"""Invalid input is refused with 400 before anything is looked up or stored
(ETSI GS CIM 009 v1.8, clauses 5.5.2, 5.6, 5.7, 6.3; ETSI conformance report causes 3, 4, 6,
10, 24 and 30)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
T = f"{B}/temporal/entities"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EID = "urn:ngsi-ld:Vehicle:v1"


def problem(r: Any, name: str, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == ERR + name, body
    return body


def vehicles(client: Any) -> list[Any]:
    r = client.get(f"{B}/entities", params={"type": "Vehicle"})
    assert r.status_code == 200, r.text
    return list(r.json())


def created(client: Any, eid: str = EID, **attrs: Any) -> None:
    body = {"id": eid, "type": "Vehicle",
            "speed": {"type": "Property", "value": 1, "observedAt": "2020-09-01T12:03:00Z"},
            **attrs}
    r = client.post(f"{B}/entities", json=body)
    assert r.status_code == 201, r.text


# -- cause 3: invalid entity and batch payloads --------------------------------------------


@pytest.mark.parametrize("op", ["create", "upsert", "update", "merge", "delete"])
def test_empty_batch_is_bad_request_data(client: Any, op: str) -> None:
    problem(client.post(f"{B}/entityOperations/{op}", json=[]), "BadRequestData")


@pytest.mark.parametrize("op", ["create", "upsert", "update", "merge"])
def test_null_item_fails_the_whole_batch(client: Any, op: str) -> None:
    if op in ("update", "merge"):
        created(client)
    item = {"id": "urn:ngsi-ld:Vehicle:v2", "type": "Vehicle",
            "speed": {"type": "Property", "value": 7}}
    problem(client.post(f"{B}/entityOperations/{op}", json=[item, None]), "BadRequestData")
    ids = {e["id"] for e in vehicles(client)}
    assert "urn:ngsi-ld:Vehicle:v2" not in ids
    if op in ("update", "merge"):
        assert client.get(f"{B}/entities/{EID}").json()["speed"]["value"] == 1


def test_non_string_item_fails_a_batch_delete(client: Any) -> None:
    created(client)
    problem(client.post(f"{B}/entityOperations/delete", json=[EID, None]), "BadRequestData")
    assert client.get(f"{B}/entities/{EID}").status_code == 200


@pytest.mark.parametrize("ch", ["\u202e", "\u200b", "\ufeff", "\ufe0f", "\U000e0100",
                                "\ufdd0", "\ufffe", "\u115f", "\u3164", "\uffa0", "\u2800"])
def test_invisible_character_in_entity_id(client: Any, ch: str) -> None:
    r = client.post(f"{B}/entities", json={"id": f"urn:ngsi-ld:Vehicle:A{ch}B", "type": "Vehicle"})
    problem(r, "BadRequestData")
    r = client.post(f"{B}/entityOperations/create",
                    json=[{"id": f"urn:ngsi-ld:Vehicle:A{ch}B", "type": "Vehicle"}])
    assert r.status_code == 207, r.text
    assert vehicles(client) == []


@pytest.mark.parametrize("attr", [
    {"type": "Property", "value": 1, "object": "urn:ngsi-ld:Other:1"},
    {"type": "Property", "value": 1, "languageMap": {"en": "hello"}},
    {"type": "Property", "value": 1, "valueList": [1, 2]},
    {"type": "Property", "value": 1, "previousValue": 0},
    {"type": "Property", "value": 1, "entityIdSealed": True},
    {"type": "Relationship", "object": "urn:ngsi-ld:P:1", "unitCode": "MTR"},
    {"type": "Relationship", "object": "urn:ngsi-ld:P:1", "value": 42},
    {"type": "Relationship", "object": "urn:ngsi-ld:P:1", "languageMap": {"en": "x"}},
    {"type": "Relationship", "object": "urn:ngsi-ld:P:1", "previousObject": "urn:ngsi-ld:P:0"},
    {"type": "ListProperty", "valueList": [1.2], "value": 3},
    {"type": "Property", "value": 1, "@context": {"speed": "https://evil.example/speed"}},
    {"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "xsd:string"},
    {"type": "LanguageProperty", "languageMap": {"en": ["a", 5]}},
    {"type": "LanguageProperty", "languageMap": {"": "x"}},
], ids=lambda a: ",".join(sorted(a)))
def test_attribute_with_members_of_another_type(client: Any, attr: dict[str, Any]) -> None:
    r = client.post(f"{B}/entities", json={"id": EID, "type": "Vehicle", "probe": attr})
    problem(r, "BadRequestData")
    assert client.get(f"{B}/entities/{EID}").status_code == 404


@pytest.mark.parametrize("extra", [
    {"probe": {"type": "Property", "value": "urn:ngsi-ld:null"}},
    {"probe": {"type": "Relationship", "object": "urn:ngsi-ld:null"}},
    {"probe": {"type": "Property", "value": 1,
               "sub": {"type": "Property", "value": "urn:ngsi-ld:null"}}},
    {"probe": {"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"}}},
    {"probe": {"type": "Property", "value": {"country": "urn:ngsi-ld:null"}}},
    {"scope": "urn:ngsi-ld:null"},
    {"expiresAt": "urn:ngsi-ld:null"},
], ids=["value", "object", "sub-attribute", "languageMap", "compound", "scope", "expiresAt"])
def test_ngsi_ld_null_cannot_be_created(client: Any, extra: dict[str, Any]) -> None:
    r = client.post(f"{B}/entities", json={"id": EID, "type": "Vehicle", **extra})
    problem(r, "BadRequestData")
    assert client.get(f"{B}/entities/{EID}").status_code == 404


def test_null_entity_id_and_digit_type_are_refused(client: Any) -> None:
    problem(client.post(f"{B}/entities", json={"id": "urn:ngsi-ld:null", "type": "Vehicle"}),
            "BadRequestData")
    problem(client.post(f"{B}/entities", json={"id": EID, "type": "9Vehicle"}), "BadRequestData")
    assert client.get(f"{B}/entities/{EID}").status_code == 404
    assert client.get(f"{B}/entities/urn:ngsi-ld:null").status_code == 404


def test_null_inside_a_compound_value_is_refused_on_partial_update(client: Any) -> None:
    created(client, address={"type": "Property", "value": {"country": "Germany"}})
    r = client.patch(f"{B}/entities/{EID}/attrs/address",
                     json={"value": {"country": "urn:ngsi-ld:null"}})
    problem(r, "BadRequestData")
    got = client.get(f"{B}/entities/{EID}").json()
    assert got["address"]["value"] == {"country": "Germany"}


def test_null_member_is_refused_in_temporal_input(client: Any) -> None:
    body = {"id": EID, "type": "Vehicle", "expiresAt": "urn:ngsi-ld:null",
            "speed": [{"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}]}
    problem(client.post(T, json=body), "BadRequestData")
    assert client.get(f"{T}/{EID}").status_code == 404


def test_merge_may_still_delete_with_the_ngsi_ld_null(client: Any) -> None:
    created(client, color={"type": "Property", "value": "red"})
    r = client.patch(f"{B}/entities/{EID}", json={"color": "urn:ngsi-ld:null"})
    assert r.status_code == 204, r.text
    assert "color" not in client.get(f"{B}/entities/{EID}").json()


def test_object_attribute_called_expires_at_is_still_accepted(client: Any) -> None:
    body = {"id": "urn:ngsi-ld:AIProposal:p1", "type": "AIProposal",
            "expiresAt": {"type": "Property", "value": "2030-01-01T00:00:00Z"}}
    assert client.post(f"{B}/entities", json=body).status_code == 201


# -- cause 30: a body that is not an object is an InvalidRequest ---------------------------


@pytest.mark.parametrize("path", [f"{B}/entities", T])
@pytest.mark.parametrize("body", [[], "{\"id\": \"urn:ngsi-ld:Vehicle:v1\"}", 5])
def test_non_object_body_is_invalid_request(client: Any, path: str, body: Any) -> None:
    problem(client.post(path, json=body), "InvalidRequest")
    assert vehicles(client) == []


# -- causes 6 and 24: malformed ids and names are 400 before the lookup --------------------


@pytest.mark.parametrize("method,path,body", [
    ("GET", f"{B}/entities/thisisaninvaliduri", None),
    ("DELETE", f"{B}/entities/thisIsAnInvalidURI", None),
    ("POST", f"{B}/entities/thisisaninvaliduri/attrs", {"speed": {"value": 1}}),
    ("PATCH", f"{B}/entities/thisisaninvaliduri/attrs", {"speed": {"value": 1}}),
    ("PATCH", f"{B}/entities/thisisaninvaliduri/attrs/speed", {"value": 56}),
    ("PUT", f"{B}/entities/invalidUri/attrs/speed", {"type": "Property", "value": 2}),
    ("DELETE", f"{B}/entities/thisIsAnInvalidURI/attrs/speed", None),
    ("PUT", f"{B}/entities/{EID}/attrs/@invalid", {"type": "Property", "value": 2}),
    ("DELETE", f"{B}/entities/{EID}/attrs/invalid(Name", None),
    ("DELETE", f"{T}/{EID}/attrs/invalid(Name", None),
    ("DELETE", f"{T}/{EID}/attrs/%2e%2e", None),
    ("DELETE", f"{T}/{EID}/attrs/%2e", None),
    ("DELETE", f"{T}/{EID}/attrs/%252e%252e", None),
    ("DELETE", f"{T}/{EID}/attrs/speed/invalidId", None),
    ("PATCH", f"{T}/{EID}/attrs/speed/invalidId", {"type": "Property", "value": 3}),
    ("PATCH", f"{B}/subscriptions/InvalidUri", {"type": "Subscription"}),
])
def test_malformed_id_or_name_is_400_not_404(client: Any, method: str, path: str,
                                            body: Any) -> None:
    created(client)
    r = client.request(method, path, json=body) if body is not None else client.request(
        method, path)
    problem(r, "BadRequestData")
    got = client.get(f"{B}/entities/{EID}").json()
    assert got["speed"]["value"] == 1


@pytest.mark.parametrize("method,path", [
    ("POST", f"{B}/entities//attrs"),
    ("PATCH", f"{B}/entities//attrs"),
    ("PATCH", f"{B}/entities//attrs/speed"),
    ("DELETE", f"{B}/entities//attrs/speed"),
    ("POST", f"{T}//attrs"),
    ("DELETE", f"{T}//attrs/speed"),
    ("DELETE", f"{T}/{EID}/attrs//urn:ngsi-ld:attribute:instance:1"),
])
def test_empty_path_segment_is_400(client: Any, method: str, path: str) -> None:
    created(client)
    body = {"speed": {"type": "Property", "value": 9}} if method != "DELETE" else None
    r = client.request(method, path, json=body) if body else client.request(method, path)
    problem(r, "BadRequestData")
    assert client.get(f"{B}/entities/{EID}").json()["speed"]["value"] == 1


@pytest.mark.parametrize("params,error", [
    ({"format": "invalidFormat"}, "InvalidRequest"),
    ({"options": "invalidOptions"}, "InvalidRequest"),
    ({"options": "keyValues,invalid"}, "InvalidRequest"),
    ({"options": "invalid", "format": "keyValues"}, "InvalidRequest"),
    ({"attrs": "category", "pick": "name"}, "BadRequestData"),
    ({"attrs": "category", "omit": "name"}, "BadRequestData"),
])
def test_invalid_parameter_on_a_missing_entity_is_400(client: Any, params: dict[str, str],
                                                      error: str) -> None:
    r = client.get(f"{B}/entities/urn:ngsi-ld:Building:nope", params=params)
    problem(r, error)


# -- cause 4: query and retrieve parameters ------------------------------------------------


@pytest.mark.parametrize("params", [
    {"attrs": "id,type"},
    {"attrs": "createdAt"},
    {"type": "Vehicle", "attrs": "speed", "pick": "speed"},
    {"type": "Vehicle", "pick": "id;speed"},
    {"type": "Vehicle", "pick": "id,owner{name"},
    {"type": "Vehicle", "pick": "id,owner{{name}"},
    {"type": "Vehicle", "pick": "id,,speed"},
    {"type": "Vehicle", "pick": "id,owner{,name}"},
    {"type": "Vehicle", "pick": "id,owner{}"},
    {"type": "Vehicle", "pick": "speed||id"},
    {"type": "Vehicle", "pick": "owner{name}"},
    {"type": "Vehicle", "join": "inline", "joinLevel": "1", "pick": "owner{owner{name}}"},
    {"type": "Vehicle", "join": "inline", "joinLevel": "1", "omit": "owner{owner{name}}"},
])
def test_invalid_query_parameters(client: Any, params: dict[str, str]) -> None:
    created(client)
    problem(client.get(f"{B}/entities", params=params), "BadRequestData")


def test_unknown_options_value_is_invalid_request(client: Any) -> None:
    created(client)
    r = client.get(f"{B}/entities", params={"type": "Vehicle", "options": "bogus"})
    problem(r, "InvalidRequest")


def test_valid_projections_still_work(client: Any) -> None:
    created(client, owner={"type": "Relationship", "object": "urn:ngsi-ld:Person:p1"})
    r = client.get(f"{B}/entities", params={"type": "Vehicle", "pick": "id,speed"})
    assert r.status_code == 200 and r.json() == [{"id": EID, "speed": r.json()[0]["speed"]}]
    r = client.get(f"{B}/entities", params={"type": "Vehicle", "join": "inline",
                                            "joinLevel": "1", "pick": "id,owner{name}"})
    assert r.status_code == 200, r.text
    r = client.get(f"{B}/entities/{EID}", params={"options": "keyValues,sysAttrs"})
    assert r.status_code == 200 and r.json()["speed"] == 1


@pytest.mark.parametrize("body", [
    {"type": "Query", "entities": [{"type": "Vehicle"}], "attrs": []},
    {"type": "Query", "entities": [{"type": "Vehicle"}],
     "temporalQ": {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}},
])
def test_invalid_query_body(client: Any, body: dict[str, Any]) -> None:
    created(client)
    problem(client.post(f"{B}/entityOperations/query", json=body), "BadRequestData")


# -- cause 10: temporal parameters ---------------------------------------------------------


def temporal_entity(client: Any) -> None:
    body = {"id": EID, "type": "Vehicle",
            "speed": [{"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"}]}
    assert client.post(T, json=body).status_code == 201


@pytest.mark.parametrize("params", [
    {"options": "invalidOptions"},
    {"options": "temporalValues,invalidOptions"},
    {"options": "aggregatedValues,invalidOptions", "format": "temporalValues"},
    {"attrs": "fuelLevel", "pick": "speed"},
    {"attrs": "fuelLevel", "omit": "speed"},
    {"pick": "owner{name}"},
    {"timeAt": "2020-08-01"},
    {"timerel": "between", "timeAt": "2020-08-01T00:00:00Z", "endTimeAt": "2020-08-02"},
    {"aggrMethods": "bogus"},
    {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "bogus"},
])
def test_invalid_temporal_parameters(client: Any, params: dict[str, str]) -> None:
    temporal_entity(client)
    query = {"type": "Vehicle", "timerel": "after", "timeAt": "2020-01-01T00:00:00Z", **params}
    error = "InvalidRequest" if "invalid" in params.get("options", "").lower() else (
        "BadRequestData")
    problem(client.get(T, params=query), error)
    one = {k: v for k, v in query.items() if k != "type"}
    problem(client.get(f"{T}/{EID}", params=one), error)
    problem(client.get(f"{T}/urn:ngsi-ld:Vehicle:missing", params=one), error)


@pytest.mark.parametrize("extra", [
    {"temporalQ": {"timerel": "after", "timeAt": "2020-08-01T12:00:00Z",
                   "aggrMethods": ["avg"], "aggrPeriodDuration": "bogus"}},
    {"temporalQ": {"timerel": "after", "timeAt": "2020-08-01T12:00:00Z"},
     "aggrParams": {"aggrMethods": ["bogus"]}},
    {"temporalQ": {"timerel": "after", "timeAt": "2020-08-01T12:00:00Z"},
     "aggrParams": {"aggrMethods": ["avg"], "aggrPeriodDuration": "bogus"}},
    {"temporalQ": {"timerel": "after", "timeAt": "2020-08-01"}},
])
def test_invalid_temporal_query_body(client: Any, extra: dict[str, Any]) -> None:
    temporal_entity(client)
    body = {"type": "Query", "entities": [{"type": "Vehicle"}], **extra}
    problem(client.post(f"{B}/temporal/entityOperations/query", json=body), "BadRequestData")


def test_valid_temporal_query_still_works(client: Any) -> None:
    temporal_entity(client)
    r = client.get(T, params={"type": "Vehicle", "timerel": "after",
                              "timeAt": "2020-01-01T00:00:00Z", "options": "temporalValues"})
    assert r.status_code == 200 and r.json()[0]["speed"]["values"] == [
        [120, "2020-08-01T12:03:00Z"]]


def test_temporal_input_may_record_a_deletion_instance(client: Any) -> None:
    temporal_entity(client)
    body = {"id": EID, "type": ["Vehicle", "Truck"],
            "speed": [{"type": "Property", "value": "urn:ngsi-ld:null",
                       "observedAt": "2020-08-02T00:00:00Z"}]}
    assert client.post(T, json=body).status_code == 204


def test_language_property_with_value_type_lang_string_is_created(client: Any) -> None:
    body = {"id": EID, "type": "Vehicle",
            "probe": {"type": "LanguageProperty", "valueType": "langString",
                      "languageMap": {"en": "hello", "sk": ["ahoj", "servus"]}}}
    assert client.post(f"{B}/entities", json=body).status_code == 201
