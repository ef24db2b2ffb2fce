"""ETSI conformance fixes (GS CIM 009 v1.8) over HTTP, on every store backend: subscription
type expressions and percent-encoded q, subscription validation and representation, the
datasetId filter, linked-entity projections and temporal aggregation in POST queries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_api_subscriptions import Receiver, car, make, patch, sub, subscribe

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
S = f"{B}/subscriptions"
CORE_V18 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def problem(r: Any, status: int = 400, name: str = "BadRequestData") -> str:
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith(name), r.json()
    return str(r.json()["detail"])


# -- cause 25: notifications never received ----------------------------------------------------


def test_subscription_type_expression_matches(client: Any, receiver: Receiver) -> None:
    sid = subscribe(client, sub(receiver.url, entities=[{"type": "(Bus|Car)"}],
                                notificationTrigger=["entityCreated"]))
    make(client, {"id": "urn:ngsi-ld:Tram:1", "type": "Tram"})
    make(client, car(1, speed=10))
    got = receiver.wait(1)
    assert got[0]["subscriptionId"] == sid
    assert [e["id"] for e in got[0]["data"]] == ["urn:ngsi-ld:Car:1"]
    receiver.quiet(1)
    # shown compacted again, operators kept
    assert client.get(f"{S}/{sid}").json()["entities"] == [{"type": "(Bus|Car)"}]


def test_subscription_type_expression_and(client: Any, receiver: Receiver) -> None:
    subscribe(client, sub(receiver.url, entities=[{"type": "Car;Electric"}]))
    make(client, car(1, speed=10))
    make(client, {"id": "urn:ngsi-ld:Car:2", "type": ["Car", "Electric"]})
    got = receiver.wait(1)
    assert got[0]["data"][0]["id"] == "urn:ngsi-ld:Car:2"
    receiver.quiet(1)


@pytest.mark.parametrize("expr", ["(Car", "Car;", "(|)"])
def test_subscription_bad_type_expression(client: Any, expr: str) -> None:
    problem(client.post(S, json=sub("http://127.0.0.1:9/x", entities=[{"type": expr}])))


def test_subscription_q_percent_encoded(client: Any, receiver: Receiver) -> None:
    make(client, car(1, name="Eiffel Tower", speed=1))
    make(client, car(2, name="Other", speed=1))
    sid = subscribe(client, sub(receiver.url, q='name=="Eiffel%20Tower"',
                                watchedAttributes=["speed"]))
    patch(client, 2, speed=5)
    patch(client, 1, speed=5)
    got = receiver.wait(1)
    assert got[0]["data"][0]["id"] == "urn:ngsi-ld:Car:1"
    receiver.quiet(1)
    assert client.get(f"{S}/{sid}").json()["q"] == 'name=="Eiffel%20Tower"'  # as given


# -- cause 15: invalid subscriptions; cause 23 / S2: how a subscription is shown ----------------

U = "http://127.0.0.1:9/x"


@pytest.mark.parametrize("note", [
    {"pick": ["id"], "omit": ["id"]},
    {"pick": ["id"], "attributes": ["speed"]},
    {"omit": ["speed"], "attributes": ["speed"]},
    {"attributes": []},
    {"pick": []},
    {"omit": []},
])
def test_invalid_notification_params_rejected(client: Any, note: dict[str, Any]) -> None:
    body = sub(U)
    body["notification"].update(note)
    problem(client.post(S, json=body))
    assert client.get(S).json() == []


@pytest.mark.parametrize("extra", [
    {"jsonldContext": "unknownContext"},
    {"jsonldContext": 5},
    {"csf": "(("},
    {"csf": 3},
])
def test_invalid_subscription_members_rejected(client: Any, extra: dict[str, Any]) -> None:
    problem(client.post(S, json=sub(U, **extra)))


def test_unavailable_jsonld_context_rejected(client: Any) -> None:
    r = client.post(S, json=sub(U, jsonldContext="http://127.0.0.1:9/none.jsonld"))
    assert r.status_code in (503, 504), r.text
    assert r.json()["type"].endswith("LdContextNotAvailable")
    assert client.get(S).json() == []


def test_patch_cannot_remove_endpoint(client: Any) -> None:
    sid = subscribe(client, sub(U))
    problem(client.patch(f"{S}/{sid}", json={"notification": {"endpoint": None}}))
    assert client.get(f"{S}/{sid}").json()["notification"]["endpoint"]["uri"] == U


def test_list_subscriptions_unknown_parameter(client: Any) -> None:
    problem(client.get(S, params={"invalidParams": "x"}), name="InvalidRequest")
    assert client.get(S, params={"limit": 5, "offset": 0, "options": "count"}).status_code == 200


def test_subscription_representation(client: Any) -> None:
    sid = subscribe(client, sub(U, csf="a==1", jsonldContext=CORE_V18,
                                notification={"endpoint": {"uri": U}, "pick": ["id", "speed"]}))
    s = client.get(f"{S}/{sid}").json()
    # system members only with options=sysAttrs, isActive only when set, no status before
    # the first notification
    for key in ("createdAt", "modifiedAt", "isActive"):
        assert key not in s
    assert "status" not in s["notification"]
    assert s["status"] == "active"
    assert s["jsonldContext"] == CORE_V18 and s["csf"] == "a==1"
    assert s["notification"]["pick"] == ["id", "speed"]
    s = client.get(f"{S}/{sid}", params={"options": "sysAttrs"}).json()
    assert s["createdAt"] and s["modifiedAt"]
    assert client.get(S, params={"options": "sysAttrs"}).json()[0]["createdAt"]
    assert client.patch(f"{S}/{sid}", json={"isActive": True}).status_code == 204
    assert client.get(f"{S}/{sid}").json()["isActive"] is True


def test_notification_pick_and_jsonld_context(client: Any, receiver: Receiver) -> None:
    subscribe(client, sub(receiver.url, jsonldContext=CORE_V18,
                          notification={"endpoint": {"uri": receiver.url,
                                                     "accept": "application/ld+json"},
                                        "omit": ["name"]}))
    make(client, car(1, speed=10, name="x"))
    got = receiver.wait(1)[0]
    assert got["data"][0] == {"id": "urn:ngsi-ld:Car:1", "type": "Car",
                              "speed": {"type": "Property", "value": 10}}
    assert got["@context"] == CORE_V18


def test_notification_pick(client: Any, receiver: Receiver) -> None:
    subscribe(client, sub(receiver.url, notification={"endpoint": {"uri": receiver.url},
                                                      "pick": ["id", "speed"]}))
    make(client, car(1, speed=10, name="x"))
    assert receiver.wait(1)[0]["data"][0] == {"id": "urn:ngsi-ld:Car:1",
                                              "speed": {"type": "Property", "value": 10}}


# -- cause 14: the datasetId filter ---------------------------------------------------------

DS_FR, DS_DE = "urn:ngsi-ld:Dataset:fr", "urn:ngsi-ld:Dataset:de"
BLD = "urn:ngsi-ld:Building:b1"


@pytest.fixture
def building(client: Any) -> Any:
    make(client, {
        "id": BLD, "type": "Building",
        "name": [{"type": "Property", "value": "Eiffel Tower"},
                 {"type": "Property", "value": "Tour Eiffel", "datasetId": DS_FR},
                 {"type": "Property", "value": "Eiffelturm", "datasetId": DS_DE}],
        "height": {"type": "Property", "value": 300},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris", "datasetId": DS_FR},
    })
    return client


def _query(client: Any, **params: Any) -> dict[str, Any]:
    r = client.get(f"{B}/entities", params={"type": "Building", **params})
    assert r.status_code == 200, r.text
    ents = r.json()
    assert len(ents) == 1
    return dict(ents[0])


def test_dataset_filter_on_query(building: Any) -> None:
    e = _query(building, datasetId=DS_FR)
    assert e["name"] == {"type": "Property", "value": "Tour Eiffel", "datasetId": DS_FR}
    assert e["owner"]["object"] == "urn:ngsi-ld:City:Paris" and "height" not in e
    e = _query(building, datasetId=f"{DS_FR},{DS_DE}")
    assert sorted(i["value"] for i in e["name"]) == ["Eiffelturm", "Tour Eiffel"]
    assert "height" not in e
    e = _query(building, datasetId="@none")
    assert e["name"] == {"type": "Property", "value": "Eiffel Tower"}
    assert e["height"]["value"] == 300 and "owner" not in e
    e = _query(building, attrs="name", datasetId=DS_DE)
    assert set(e) == {"id", "type", "name"} and e["name"]["value"] == "Eiffelturm"
    # no instance matches: the entity is still there, without the attribute
    assert _query(building, attrs="name", datasetId="urn:ngsi-ld:Dataset:es") == {
        "id": BLD, "type": "Building"}
    # without the filter every instance shows
    assert len(_query(building)["name"]) == 3
    r = building.get(f"{B}/entities/{BLD}", params={"datasetId": "@none"})
    assert r.json()["name"] == {"type": "Property", "value": "Eiffel Tower"}
    r = building.get(f"{B}/entities", params={"type": "Building", "datasetId": "not a uri"})
    problem(r)


def test_dataset_filter_on_temporal_query(client: Any) -> None:
    def inst(v: int, t: str, ds: str | None = None) -> dict[str, Any]:
        out = {"type": "Property", "value": v, "observedAt": t}
        return out | ({"datasetId": ds} if ds else {})

    r = client.post(f"{B}/temporal/entities", json={
        "id": "urn:ngsi-ld:Vehicle:v1", "type": "Vehicle",
        "speed": [inst(120, "2020-09-01T12:03:00Z"), inst(60, "2020-09-01T12:05:00Z", DS_FR),
                  inst(80, "2020-09-01T12:06:00Z", DS_DE), inst(62, "2020-09-01T12:15:00Z", DS_FR)],
        "fuel": [inst(5, "2020-09-01T12:04:00Z")],
    })
    assert r.status_code in (201, 204), r.text
    base = {"type": "Vehicle", "timerel": "after", "timeAt": "2020-08-01T00:00:00Z",
            "options": "temporalValues"}

    def tq(**params: Any) -> list[dict[str, Any]]:
        r = client.get(f"{B}/temporal/entities", params={**base, **params})
        assert r.status_code == 200, r.text
        return list(r.json())

    # one series per datasetId, default first
    speed = tq(attrs="speed")[0]["speed"]
    assert speed == [
        {"type": "Property", "values": [[120, "2020-09-01T12:03:00Z"]]},
        {"type": "Property", "datasetId": DS_FR,
         "values": [[60, "2020-09-01T12:05:00Z"], [62, "2020-09-01T12:15:00Z"]]},
        {"type": "Property", "datasetId": DS_DE, "values": [[80, "2020-09-01T12:06:00Z"]]},
    ]
    e = tq(datasetId=DS_FR)[0]
    assert set(e) == {"id", "type", "speed"} and e["speed"]["datasetId"] == DS_FR
    e = tq(datasetId="@none")[0]
    assert e["speed"]["values"] == [[120, "2020-09-01T12:03:00Z"]] and "fuel" in e
    assert len(tq(datasetId=f"{DS_FR},{DS_DE}")[0]["speed"]) == 2
    assert tq(attrs="fuel", datasetId=DS_FR) == []
    r = client.get(f"{B}/temporal/entities/urn:ngsi-ld:Vehicle:v1",
                   params={"datasetId": DS_DE, "options": "temporalValues"})
    assert r.json()["speed"]["values"] == [[80, "2020-09-01T12:06:00Z"]]
    # normalized: the instances of the chosen datasets only
    r = client.get(f"{B}/temporal/entities/urn:ngsi-ld:Vehicle:v1", params={"datasetId": DS_DE})
    assert [i["value"] for i in r.json()["speed"]] == [80]


# -- cause 8: linked-entity projections in pick/omit ------------------------------------------

BL1, CT1, CO1 = "urn:ngsi-ld:Building:1", "urn:ngsi-ld:City:1", "urn:ngsi-ld:Country:1"


def _p(v: Any) -> dict[str, Any]:
    return {"type": "Property", "value": v}


def _r(o: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": o}


@pytest.fixture
def linked(client: Any) -> Any:
    make(client, {"id": CO1, "type": "Country", "name": _p("France"), "description": _p("EU")})
    make(client, {"id": CT1, "type": "City", "name": _p("Paris"), "description": _p("capital"),
                  "isInCountry": _r(CO1)})
    make(client, {"id": BL1, "type": "Building", "name": _p("Eiffel"), "locatedAt": _r(CT1)})
    return client


def _get(client: Any, path: str, **params: Any) -> Any:
    r = client.get(f"{B}/entities{path}", params={"local": "true", **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_pick_on_linked_entity_inline(linked: Any) -> None:
    e = _get(linked, "", type="Building", join="inline", pick="id,locatedAt{id,name}")[0]
    assert e == {"id": BL1, "locatedAt": {"type": "Relationship", "object": CT1,
                                          "entity": {"id": CT1, "name": _p("Paris")}}}
    e = _get(linked, f"/{BL1}", join="inline", joinLevel="2",
             pick="id,locatedAt{id,name,isInCountry{id,description}}")
    city = e["locatedAt"]["entity"]
    assert set(city) == {"id", "name", "isInCountry"}
    assert city["isInCountry"]["entity"] == {"id": CO1, "description": _p("EU")}


def test_omit_on_linked_entity_inline(linked: Any) -> None:
    e = _get(linked, f"/{BL1}", join="inline", joinLevel="2",
             omit="type,locatedAt{name,isInCountry{description}}")
    assert "type" not in e and e["name"] == _p("Eiffel")
    city = e["locatedAt"]["entity"]
    assert city["type"] == "City" and "name" not in city and city["description"] == _p("capital")
    country = city["isInCountry"]["entity"]
    assert "description" not in country and country["name"] == _p("France")
    # a plain member is still omitted at the top level only
    e = _get(linked, "", type="Building", join="inline", omit="name,locatedAt{name}")[0]
    assert "name" not in e and "name" not in e["locatedAt"]["entity"]


def test_linked_projections_flat(linked: Any) -> None:
    out = _get(linked, "", type="Building", join="flat", joinLevel="2",
               pick="id,locatedAt{id,name,isInCountry{id,description}}")
    assert out == [{"id": BL1, "locatedAt": _r(CT1)},
                   {"id": CT1, "name": _p("Paris"), "isInCountry": _r(CO1)},
                   {"id": CO1, "description": _p("EU")}]
    out = _get(linked, f"/{BL1}", join="flat", joinLevel="2", omit="type,locatedAt{name}")
    assert [e["id"] for e in out] == [BL1, CT1, CO1]
    assert "name" not in out[1] and out[1]["type"] == "City"
    assert out[2]["name"] == _p("France")  # reached through isInCountry: no projection


def test_linked_projection_needs_join(linked: Any) -> None:
    problem(linked.get(f"{B}/entities", params={"type": "Building", "pick": "locatedAt{id}"}))
    problem(linked.get(f"{B}/entities", params={"type": "Building", "join": "inline",
                                                "pick": "locatedAt{id"}))


# -- cause 34: aggregation in POST /temporal/entityOperations/query ---------------------------

TQ = f"{B}/temporal/entityOperations/query"


@pytest.fixture
def vehicle(client: Any) -> Any:
    insts = [{"type": "Property", "value": v, "observedAt": t}
             for v, t in ((120, "2020-08-01T12:03:00Z"), (80, "2020-08-01T12:05:00Z"),
                          (100, "2020-08-01T12:07:00Z"))]
    r = client.post(f"{B}/temporal/entities",
                    json={"id": "urn:ngsi-ld:Vehicle:a", "type": "Vehicle", "speed": insts})
    assert r.status_code in (201, 204), r.text
    return client


def _tq(client: Any, status: int = 200, **body: Any) -> Any:
    when = {"timerel": "after", "timeAt": "2020-08-01T12:00:00Z"}
    payload = {"type": "Query", "entities": [{"type": "Vehicle"}], **body}
    payload["temporalQ"] = {**when, **payload.get("temporalQ", {})}
    r = client.post(TQ, json=payload)
    assert r.status_code == status, r.text
    return r.json()


@pytest.mark.parametrize("where", [
    {"temporalQ": {"aggrMethods": ["avg", "max"]}},
    {"temporalQ": {"aggrMethods": "avg,max"}},
    {"aggrParams": {"aggrMethods": ["avg", "max"], "aggrPeriodDuration": "PT0S"}},
    {"aggrParams": {"aggrMethods": ["avg", "max"]}, "options": "aggregatedValues"},
])
def test_post_temporal_query_aggregates(vehicle: Any, where: dict[str, Any]) -> None:
    speed = _tq(vehicle, **where)[0]["speed"]
    assert "instanceId" not in str(speed)
    assert speed["avg"][0][0] == 100 and speed["max"][0][0] == 120


def test_post_temporal_query_aggregation_period(vehicle: Any) -> None:
    speed = _tq(vehicle, temporalQ={"aggrMethods": ["max"],
                                    "aggrPeriodDuration": "PT3M"})[0]["speed"]
    assert [b[0] for b in speed["max"]] == [120, 100]


def test_post_temporal_query_options(vehicle: Any) -> None:
    speed = _tq(vehicle, options=["temporalValues"])[0]["speed"]
    assert speed["values"][0] == [120, "2020-08-01T12:03:00Z"]
    assert "instanceId" in str(_tq(vehicle)[0]["speed"])  # raw instances without aggregation
    _tq(vehicle, 400, options="aggregatedValues")  # without aggrMethods
    _tq(vehicle, 400, temporalQ={"aggrMethods": ["bogus"]})
    _tq(vehicle, 400, aggrParams={"aggrMethods": ["avg"], "aggrPeriodDuration": "soon"})
