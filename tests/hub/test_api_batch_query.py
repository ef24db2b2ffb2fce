"""Batch operations, entity queries (q, scopeQ, geo), types/attributes and tenants over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def car(n: int, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Car:{n}", "type": "Car"}
    for k, v in attrs.items():
        body[k] = v if isinstance(v, dict) and "type" in v else {"type": "Property", "value": v}
    return body


def ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted(e["id"] for e in r.json())


def q(client: Any, **params: Any) -> Any:
    return client.get(f"{B}/entities", params=params)


def load(client: Any, ents: list[dict[str, Any]]) -> None:
    r = client.post(f"{B}/entityOperations/create", json=ents)
    assert r.status_code == 201, r.text


# -- batch ---------------------------------------------------------------------------------


def test_batch_create_201_returns_ids(client: Any) -> None:
    r = client.post(f"{B}/entityOperations/create", json=[car(1, speed=1), car(2, speed=2)])
    assert r.status_code == 201
    assert sorted(r.json()) == ["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2"]
    assert ids(q(client, type="Car")) == ["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2"]


def test_batch_create_207_with_bad_and_duplicate(client: Any) -> None:
    load(client, [car(1, speed=1)])
    r = client.post(f"{B}/entityOperations/create", json=[
        car(2, speed=2), car(1, speed=9), {"id": "bad id", "type": "Car"}, car(3, speed=None),
    ])
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Car:2"]
    errs = {e["entityId"]: e["error"] for e in body["errors"]}
    assert errs["urn:ngsi-ld:Car:1"]["type"] == ERR + "AlreadyExists"
    assert errs["urn:ngsi-ld:Car:1"]["status"] == 409
    assert errs["bad id"]["status"] == 400
    assert errs["urn:ngsi-ld:Car:3"]["type"] == ERR + "BadRequestData"
    assert ids(q(client, type="Car")) == ["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2"]
    got = client.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()
    assert got["speed"]["value"] == 1


def test_batch_not_array_is_400(client: Any) -> None:
    r = client.post(f"{B}/entityOperations/create", json=car(1))
    assert r.status_code == 400
    r = client.post(f"{B}/entityOperations/explode", json=[])
    assert r.status_code == 404


def test_batch_upsert_replace_and_update(client: Any) -> None:
    load(client, [car(1, speed=1, color="red")])
    r = client.post(f"{B}/entityOperations/upsert", json=[car(1, speed=5), car(2, speed=6)])
    assert r.status_code == 201, r.text
    assert r.json() == ["urn:ngsi-ld:Car:2"]
    e1 = client.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()
    assert e1["speed"]["value"] == 5 and "color" not in e1  # replaced
    r = client.post(f"{B}/entityOperations/upsert", params={"options": "update"},
                    json=[car(1, color="blue")])
    assert r.status_code == 204
    e1 = client.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()
    assert e1["speed"]["value"] == 5 and e1["color"]["value"] == "blue"  # kept + appended


def test_batch_update(client: Any) -> None:
    load(client, [car(1, speed=1), car(2, speed=2)])
    r = client.post(f"{B}/entityOperations/update",
                    json=[car(1, speed=10), car(9, speed=9)])
    assert r.status_code == 207
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Car:1"]
    assert body["errors"][0]["entityId"] == "urn:ngsi-ld:Car:9"
    assert body["errors"][0]["error"]["status"] == 404
    assert client.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()["speed"]["value"] == 10
    r = client.post(f"{B}/entityOperations/update", json=[car(2, speed=20)])
    assert r.status_code == 204


def test_batch_update_no_overwrite(client: Any) -> None:
    load(client, [car(1, speed=1)])
    r = client.post(f"{B}/entityOperations/update", params={"options": "noOverwrite"},
                    json=[car(1, speed=10, color="red")])
    assert r.status_code == 204, r.text
    e = client.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()
    assert e["speed"]["value"] == 1 and e["color"]["value"] == "red"


def test_batch_merge(client: Any) -> None:
    load(client, [car(1, speed={"type": "Property", "value": 1, "unitCode": "KMH"}, color="red")])
    r = client.post(f"{B}/entityOperations/merge", json=[
        {"id": "urn:ngsi-ld:Car:1", "speed": {"value": 3}, "color": "urn:ngsi-ld:null"},
    ])
    assert r.status_code == 204, r.text
    e = client.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()
    assert e["speed"] == {"type": "Property", "value": 3, "unitCode": "KMH"}
    assert "color" not in e
    r = client.post(f"{B}/entityOperations/merge", json=[{"id": "urn:ngsi-ld:Car:7", "a": 1}])
    assert r.status_code == 207
    assert r.json()["errors"][0]["error"]["status"] == 404


def test_batch_delete(client: Any) -> None:
    load(client, [car(1), car(2)])
    r = client.post(f"{B}/entityOperations/delete",
                    json=["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:5"])
    assert r.status_code == 207
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Car:1"]
    assert body["errors"][0]["entityId"] == "urn:ngsi-ld:Car:5"
    assert ids(q(client, type="Car")) == ["urn:ngsi-ld:Car:2"]
    r = client.post(f"{B}/entityOperations/delete", json=["urn:ngsi-ld:Car:2"])
    assert r.status_code == 204
    assert ids(q(client, type="Car")) == []


def test_batch_query_post(client: Any) -> None:
    load(client, [car(1, speed=10), car(2, speed=50), {"id": "urn:x:b", "type": "Bike"}])
    r = client.post(f"{B}/entityOperations/query",
                    json={"type": "Query", "entities": [{"type": "Car"}], "q": "speed>20"})
    assert ids(r) == ["urn:ngsi-ld:Car:2"]
    r = client.post(f"{B}/entityOperations/query", params={"options": "count"},
                    json={"type": "Query", "entities": [{"type": "Car"}, {"type": "Bike"}],
                          "attrs": ["speed"]})
    assert ids(r) == ["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2"]
    assert r.headers["NGSILD-Results-Count"] == "2"
    r = client.post(f"{B}/entityOperations/query", json={"type": "Nope"})
    assert r.status_code == 400


# -- query: selection ------------------------------------------------------------------------


@pytest.fixture
def fleet(client: Any) -> Any:
    load(client, [
        car(1, speed=10, brand="kia", tags=["a", "b"], seats=4,
            engine={"type": "Property", "value": {"power": 100, "fuel": "gas"},
                    "rating": {"type": "Property", "value": 3}},
            owner={"type": "Relationship", "object": "urn:ngsi-ld:Person:ann"},
            seen={"type": "Property", "value": {"@type": "DateTime",
                                                "@value": "2024-01-01T00:00:00Z"}},
            name={"type": "Property", "value": "Alpha One"}),
        car(2, speed=50, brand="hyundai", seats=2,
            engine={"type": "Property", "value": {"power": 300, "fuel": "ev"}},
            name={"type": "Property", "value": "Beta"}),
        car(3, speed=90, brand="kia", seats=7, name={"type": "Property", "value": "Gamma"}),
        {"id": "urn:ngsi-ld:Bike:1", "type": ["Bike", "Vehicle"],
         "speed": {"type": "Property", "value": 20}},
        {"id": "urn:ngsi-ld:Truck:1", "type": ["Truck", "Vehicle"],
         "speed": {"type": "Property", "value": 70}},
    ])
    return client


C1, C2, C3, BK, TR = ("urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2", "urn:ngsi-ld:Car:3",
                      "urn:ngsi-ld:Bike:1", "urn:ngsi-ld:Truck:1")


def test_query_needs_a_filter(client: Any) -> None:
    r = q(client)
    assert r.status_code == 400
    assert r.json()["type"] == ERR + "BadRequestData"


@pytest.mark.parametrize("expr,expected", [
    ("Car", [C1, C2, C3]),
    ("Bike,Truck", [BK, TR]),
    ("Bike|Car", [BK, C1, C2, C3]),
    ("Vehicle;Bike", [BK]),
    ("(Vehicle;Truck)|Car", [C1, C2, C3, TR]),
    ("Vehicle;(Bike|Truck)", [BK, TR]),
    ("Nope", []),
])
def test_query_type_expressions(fleet: Any, expr: str, expected: list[str]) -> None:
    assert ids(q(fleet, type=expr)) == sorted(expected)


def test_query_bad_type_expression(fleet: Any) -> None:
    assert q(fleet, type="(Car").status_code == 400
    assert q(fleet, type="Car;").status_code == 400


def test_query_id_and_id_pattern(fleet: Any) -> None:
    assert ids(q(fleet, id=f"{C1},{C3}")) == [C1, C3]
    assert ids(q(fleet, id=C2, type="Car")) == [C2]
    assert ids(q(fleet, idPattern="^urn:ngsi-ld:(Bike|Truck):.*")) == [BK, TR]
    assert q(fleet, idPattern="([").status_code == 400
    assert q(fleet, id="not a uri").status_code == 400


def test_query_attrs(fleet: Any) -> None:
    r = q(fleet, attrs="tags")
    assert ids(r) == [C1]
    assert set(r.json()[0]) == {"id", "type", "tags"}
    r = q(fleet, type="Car", attrs="speed,seats")
    assert all(set(e) == {"id", "type", "speed", "seats"} for e in r.json())


@pytest.mark.parametrize("expr,expected", [
    ("speed==50", [C2]),
    ("speed!=50", [C1, C3]),
    ("speed>50", [C3]),
    ("speed>=50", [C2, C3]),
    ("speed<50", [C1]),
    ("speed<=50", [C1, C2]),
    ("speed==10,90", [C1, C3]),
    ("speed==40..95", [C2, C3]),
    ("speed!=40..95", [C1]),
    ('brand=="kia"', [C1, C3]),
    ('brand!="kia"', [C2]),
    ('brand=="kia";seats>4', [C3]),
    ('brand=="hyundai"|seats>5', [C2, C3]),
    ('(brand=="hyundai"|seats>5);speed<60', [C2]),
    ('brand=="kia";(speed<20|seats==7)', [C1, C3]),
    ("brand", [C1, C2, C3]),
    ("engine.rating==3", [C1]),
    ("engine[power]>200", [C2]),
    ('engine[fuel]=="gas"', [C1]),
    ('owner=="urn:ngsi-ld:Person:ann"', [C1]),
    ("name~=^Al.*", [C1]),
    ("name!~=^Al.*", [C2, C3]),
    ("name~=(?i)beta", [C2]),
    ('tags=="a"', [C1]),
    ('brand=="kia","hyundai"', [C1, C2, C3]),
    ('speed>"abc"', []),
])
def test_q_language(fleet: Any, expr: str, expected: list[str]) -> None:
    assert ids(q(fleet, type="Car", q=expr)) == sorted(expected)


@pytest.mark.parametrize("expr", ["speed>>3", "(speed>1", "speed==", "speed=~1", ";"])
def test_q_invalid_is_400(fleet: Any, expr: str) -> None:
    r = q(fleet, type="Car", q=expr)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == ERR + "BadRequestData"


def test_scope_q(client: Any) -> None:
    load(client, [
        {**car(1), "scope": ["/Seoul/Gangnam"]},
        {**car(2), "scope": "/Seoul/Jongno"},
        {**car(3), "scope": "/Busan"},
        car(4),
    ])
    assert ids(q(client, scopeQ="/Seoul")) == []  # exact scope only
    assert ids(q(client, scopeQ="/Seoul/Gangnam")) == ["urn:ngsi-ld:Car:1"]
    assert ids(q(client, scopeQ="/Seoul/#")) == ["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2"]
    assert ids(q(client, scopeQ="/Busan|/Seoul/Jongno")) == ["urn:ngsi-ld:Car:2",
                                                              "urn:ngsi-ld:Car:3"]
    assert ids(q(client, type="Car", scopeQ="/#")) == [
        "urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2", "urn:ngsi-ld:Car:3"]


# -- geo ---------------------------------------------------------------------------------------


def place(n: int, geom: dict[str, Any], prop: str = "location") -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Place:{n}", "type": "Place",
            prop: {"type": "GeoProperty", "value": geom}}


def pt(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}


@pytest.fixture
def places(client: Any) -> Any:
    load(client, [
        place(1, pt(127.000, 37.500)),
        place(2, pt(127.010, 37.500)),  # ~880 m east
        place(3, pt(127.100, 37.500)),  # ~8.8 km east
        place(4, pt(1, 1)),
        place(5, SQUARE),
        place(6, {"type": "LineString", "coordinates": [[1.5, 1.5], [3, 3]]}),
    ])
    return client


def pl(*ns: int) -> list[str]:
    return [f"urn:ngsi-ld:Place:{n}" for n in ns]


def geo(client: Any, georel: str, geometry: str, coords: str, **extra: Any) -> Any:
    return q(client, type="Place", georel=georel, geometry=geometry, coordinates=coords, **extra)


def test_geo_near_max_distance_ordered(places: Any) -> None:
    r = geo(places, "near;maxDistance==1000", "Point", "[127.0,37.5]")
    assert [e["id"] for e in r.json()] == pl(1, 2)
    r = geo(places, "near;maxDistance==20000", "Point", "[127.105,37.5]")
    assert [e["id"] for e in r.json()] == pl(3, 2, 1)


def test_geo_near_min_distance(places: Any) -> None:
    r = geo(places, "near;minDistance==500", "Point", "[127.0,37.5]", q="location")
    got = [e["id"] for e in r.json()]
    assert got[:2] == pl(2, 3)
    assert pl(1)[0] not in got


def test_geo_within(places: Any) -> None:
    poly = "[[[126.9,37.4],[127.05,37.4],[127.05,37.6],[126.9,37.6],[126.9,37.4]]]"
    assert ids(geo(places, "within", "Polygon", poly)) == pl(1, 2)


def test_geo_intersects_contains_disjoint_equals_overlaps(places: Any) -> None:
    sq = "[[[0,0],[2,0],[2,2],[0,2],[0,0]]]"
    assert ids(geo(places, "intersects", "Polygon", sq)) == pl(4, 5, 6)
    assert ids(geo(places, "contains", "Point", "[1,1]")) == pl(4, 5)
    dis = ids(geo(places, "disjoint", "Polygon", sq))
    assert dis == pl(1, 2, 3)
    assert ids(geo(places, "equals", "Point", "[1,1]")) == pl(4)
    over = "[[[1,1],[3,1],[3,3],[1,3],[1,1]]]"
    assert ids(geo(places, "overlaps", "Polygon", over)) == pl(5)


def test_geo_geoproperty(client: Any) -> None:
    load(client, [place(1, pt(10, 10), "spot"), place(2, pt(50, 50), "spot")])
    r = geo(client, "near;maxDistance==1000", "Point", "[10,10]", geoproperty="spot")
    assert ids(r) == pl(1)
    r = geo(client, "near;maxDistance==1000", "Point", "[10,10]")
    assert ids(r) == []


@pytest.mark.parametrize("georel,geometry,coords", [
    ("near", "Point", "[1,1]"),
    ("near;maxDistance==x", "Point", "[1,1]"),
    ("within", "Polygon", "not json"),
    ("sideways", "Point", "[1,1]"),
    ("intersects", "Circle", "[1,1]"),
])
def test_geo_invalid_is_400(places: Any, georel: str, geometry: str, coords: str) -> None:
    r = geo(places, georel, geometry, coords)
    assert r.status_code == 400, r.text


def test_geojson_feature_collection(places: Any) -> None:
    r = places.get(
        f"{B}/entities", params={"type": "Place", "id": "urn:ngsi-ld:Place:1,urn:ngsi-ld:Place:4"},
        headers={"Accept": "application/geo+json"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    feats = sorted(fc["features"], key=lambda f: f["id"])
    assert [f["type"] for f in feats] == ["Feature", "Feature"]
    assert feats[0]["geometry"] == pt(127.0, 37.5)


# -- paging and count ------------------------------------------------------------------------


def test_limit_offset_and_count(client: Any) -> None:
    load(client, [car(i, num=i) for i in range(1, 8)])
    seen: list[str] = []
    for off in (0, 3, 6):
        r = q(client, type="Car", limit=3, offset=off, options="count")
        assert r.headers["NGSILD-Results-Count"] == "7"
        page = [e["id"] for e in r.json()]
        assert len(page) == (3 if off < 6 else 1)
        seen += page
    assert sorted(seen) == sorted(f"urn:ngsi-ld:Car:{i}" for i in range(1, 8))
    r = q(client, type="Car", limit=0, options="count")
    assert r.status_code == 200 and r.json() == []
    assert r.headers["NGSILD-Results-Count"] == "7"
    assert "NGSILD-Results-Count" not in q(client, type="Car").headers


def test_limit_errors(client: Any) -> None:
    r = q(client, type="Car", limit=100000)
    assert r.status_code == 403
    assert r.json()["type"] == ERR + "TooManyResults"
    assert q(client, type="Car", limit=-1).status_code == 400
    assert q(client, type="Car", limit="x").status_code == 400
    assert q(client, type="Car", limit=0).status_code == 400


def test_query_keyvalues(fleet: Any) -> None:
    r = q(fleet, id=C2, options="keyValues")
    assert r.json() == [{"id": C2, "type": "Car", "speed": 50, "brand": "hyundai", "seats": 2,
                         "engine": {"power": 300, "fuel": "ev"}, "name": "Beta"}]


# -- types and attributes ----------------------------------------------------------------------


def test_types_and_attributes(fleet: Any) -> None:
    r = fleet.get(f"{B}/types")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "EntityTypeList"
    assert sorted(body["typeList"]) == ["Bike", "Car", "Truck", "Vehicle"]
    r = fleet.get(f"{B}/types", params={"details": "true"})
    car_t = next(t for t in r.json() if t["typeName"] == "Car")
    assert car_t["type"] == "EntityType"
    assert {"speed", "brand", "engine"} <= set(car_t["attributeNames"])
    r = fleet.get(f"{B}/types/Car")
    info = r.json()
    assert info["type"] == "EntityTypeInfo" and info["entityCount"] == 3
    assert "speed" in [a["attributeName"] for a in info["attributeDetails"]]
    assert fleet.get(f"{B}/types/Nope").status_code == 404
    r = fleet.get(f"{B}/attributes")
    assert r.json()["type"] == "AttributeList"
    assert {"speed", "tags", "owner"} <= set(r.json()["attributeList"])
    r = fleet.get(f"{B}/attributes", params={"details": "true"})
    speed = next(a for a in r.json() if a["attributeName"] == "speed")
    assert set(speed["typeNames"]) == {"Bike", "Car", "Truck", "Vehicle"}
    r = fleet.get(f"{B}/attributes/tags")
    assert r.json()["attributeName"] == "tags" and r.json()["typeNames"] == ["Car"]
    assert fleet.get(f"{B}/attributes/nothing").status_code == 404


# -- tenants -----------------------------------------------------------------------------------


def test_tenant_isolation_and_unknown_tenant(client: Any) -> None:
    h = {"NGSILD-Tenant": "city2"}
    r = client.post(f"{B}/entities", json=car(1, speed=1), headers=h)
    assert r.status_code == 201
    assert ids(client.get(f"{B}/entities", params={"type": "Car"}, headers=h)) == [
        "urn:ngsi-ld:Car:1"]
    assert ids(q(client, type="Car")) == []
    assert client.get(f"{B}/entities/urn:ngsi-ld:Car:1").status_code == 404
    assert client.get(f"{B}/entities/urn:ngsi-ld:Car:1", headers=h).status_code == 200
    r = client.get(f"{B}/entities", params={"type": "Car"}, headers={"NGSILD-Tenant": "ghost"})
    assert r.status_code == 404
    assert r.json()["type"] == ERR + "NonexistentTenant"
    r = client.get(f"{B}/entities/urn:ngsi-ld:Car:1", headers={"NGSILD-Tenant": "ghost"})
    assert r.json()["type"] == ERR + "NonexistentTenant"
    r = client.get(f"{B}/types", headers={"NGSILD-Tenant": "ghost"})
    assert r.status_code == 404
    r = client.get(f"{B}/entities", params={"type": "Car"},
                   headers={"NGSILD-Tenant": "bad tenant!"})
    assert r.status_code == 400
