"""The NGSI-LD temporal API over HTTP: automatic history, queries, aggregation, edits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
T = f"{B}/temporal/entities"
EID = "urn:ngsi-ld:Sensor:s1"

# hand-made series: value at observedAt
SERIES = [
    (1, "2024-05-01T10:00:00Z"),
    (3, "2024-05-01T10:30:00Z"),
    (5, "2024-05-01T11:15:00Z"),
    (7, "2024-05-01T11:45:00Z"),
    (10, "2024-05-01T12:10:00Z"),
]


def instances(series: list[tuple[Any, str]] = SERIES) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": v, "observedAt": t} for v, t in series]


@pytest.fixture
def sensor(client: Any) -> Any:
    r = client.post(T, json={"id": EID, "type": "Sensor", "temperature": instances(),
                             "status": {"type": "Property", "value": "ok",
                                        "observedAt": "2024-05-01T10:05:00Z"}})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{T}/{EID}"
    return client


def values(client: Any, params: dict[str, Any], eid: str = EID) -> list[Any]:
    r = client.get(f"{T}/{eid}", params={"attrs": "temperature", **params})
    assert r.status_code == 200, r.text
    temp = r.json().get("temperature", [])
    return [i["value"] for i in (temp if isinstance(temp, list) else [temp])]


def test_entity_changes_are_recorded(client: Any) -> None:
    body = {"id": "urn:ngsi-ld:Car:1", "type": "Car",
            "speed": {"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z"}}
    assert client.post(f"{B}/entities", json=body).status_code == 201
    for v, t in ((2, "2024-01-01T00:01:00Z"), (3, "2024-01-01T00:02:00Z")):
        r = client.patch(f"{B}/entities/urn:ngsi-ld:Car:1/attrs",
                         json={"speed": {"type": "Property", "value": v, "observedAt": t}})
        assert r.status_code == 204
    r = client.get(f"{T}/urn:ngsi-ld:Car:1")
    assert r.status_code == 200
    e = r.json()
    assert e["id"] == "urn:ngsi-ld:Car:1" and e["type"] == "Car"
    assert [i["value"] for i in e["speed"]] == [1, 2, 3]
    assert all(i["instanceId"].startswith("urn:") for i in e["speed"])
    assert [i["observedAt"] for i in e["speed"]][0] == "2024-01-01T00:00:00Z"
    r = client.get(T, params={"type": "Car"})
    assert [x["id"] for x in r.json()] == ["urn:ngsi-ld:Car:1"]


def test_merge_and_partial_updates_are_recorded(client: Any) -> None:
    body = {"id": "urn:ngsi-ld:Car:2", "type": "Car", "speed": {"type": "Property", "value": 1}}
    client.post(f"{B}/entities", json=body)
    client.patch(f"{B}/entities/urn:ngsi-ld:Car:2", json={"speed": {"value": 2}})
    client.patch(f"{B}/entities/urn:ngsi-ld:Car:2/attrs/speed", json={"value": 3})
    r = client.get(f"{T}/urn:ngsi-ld:Car:2", params={"options": "temporalValues"})
    vals = r.json()["speed"]["values"]
    assert [v[0] for v in vals] == [1, 2, 3]


def test_temporal_create_existing_appends_204(sensor: Any) -> None:
    r = sensor.post(T, json={"id": EID, "type": "Sensor",
                             "temperature": instances([(11, "2024-05-01T12:30:00Z")])})
    assert r.status_code == 204
    assert values(sensor, {}) == [1, 3, 5, 7, 10, 11]


def test_temporal_create_bad_payload(client: Any) -> None:
    assert client.post(T, json={"id": "nope", "type": "Sensor"}).status_code == 400
    assert client.post(T, json={"id": EID}).status_code == 400
    assert client.post(T, json=[1]).status_code == 400
    assert client.get(f"{T}/{EID}").status_code == 404


def test_timerel(sensor: Any) -> None:
    assert values(sensor, {"timerel": "before", "timeAt": "2024-05-01T11:00:00Z"}) == [1, 3]
    assert values(sensor, {"timerel": "after", "timeAt": "2024-05-01T11:00:00Z"}) == [5, 7, 10]
    assert values(sensor, {"timerel": "between", "timeAt": "2024-05-01T10:15:00Z",
                           "endTimeAt": "2024-05-01T12:00:00Z"}) == [3, 5, 7]


@pytest.mark.parametrize("params", [
    {"timerel": "before"},
    {"timerel": "sometime", "timeAt": "2024-05-01T11:00:00Z"},
    {"timerel": "between", "timeAt": "2024-05-01T11:00:00Z"},
    {"timerel": "between", "timeAt": "2024-05-01T11:00:00Z", "endTimeAt": "2024-05-01T10:00:00Z"},
    {"timerel": "after", "timeAt": "not a time"},
    {"timeAt": "2024-05-01T11:00:00Z"},
    {"lastN": "0"},
    {"lastN": "x"},
    {"timeproperty": "expiresAt"},
    {"options": "aggregatedValues"},
    {"options": "aggregatedValues", "aggrMethods": "median"},
    {"options": "aggregatedValues", "aggrMethods": "sum", "aggrPeriodDuration": "1 hour"},
])
def test_temporal_bad_params_400(sensor: Any, params: dict[str, str]) -> None:
    r = sensor.get(f"{T}/{EID}", params=params)
    assert r.status_code == 400, r.text
    r = sensor.get(T, params={"type": "Sensor", **params})
    assert r.status_code == 400, r.text


def test_last_n(sensor: Any) -> None:
    assert values(sensor, {"lastN": "2"}) == [7, 10]
    assert values(sensor, {"lastN": "2", "timerel": "before",
                           "timeAt": "2024-05-01T12:00:00Z"}) == [5, 7]


def test_timeproperty_modified_at(sensor: Any) -> None:
    time.sleep(0.01)
    mark = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1)) + "Z"
    r = sensor.post(f"{T}/{EID}/attrs",
                    json={"temperature": instances([(42, "2020-01-01T00:00:00Z")])})
    assert r.status_code == 204
    # by observedAt, 42 is the oldest; by modifiedAt, everything was recorded just now
    assert values(sensor, {})[0] == 42
    got = values(sensor, {"timeproperty": "modifiedAt", "timerel": "after", "timeAt": mark})
    assert sorted(got) == [1, 3, 5, 7, 10, 42]
    got = values(sensor, {"timeproperty": "modifiedAt", "timerel": "before", "timeAt": mark})
    assert got == []


def test_temporal_values(sensor: Any) -> None:
    r = sensor.get(f"{T}/{EID}", params={"options": "temporalValues"})
    body = r.json()
    assert body["temperature"] == {"type": "Property",
                                   "values": [[v, t] for v, t in SERIES]}
    assert body["status"]["values"] == [["ok", "2024-05-01T10:05:00Z"]]
    r2 = sensor.get(f"{T}/{EID}", params={"format": "temporalValues"})
    assert r2.json() == body


def test_aggregated_values_hourly(sensor: Any) -> None:
    r = sensor.get(f"{T}/{EID}", params={
        "attrs": "temperature", "options": "aggregatedValues",
        "aggrMethods": "avg,min,max,sum,totalCount", "aggrPeriodDuration": "PT1H",
        "timerel": "between", "timeAt": "2024-05-01T10:00:00Z",
        "endTimeAt": "2024-05-01T13:00:00Z",
    })
    assert r.status_code == 200, r.text
    t = r.json()["temperature"]
    assert t["type"] == "Property"
    h = ["2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z",
         "2024-05-01T13:00:00Z"]
    assert t["avg"] == [[2, h[0], h[1]], [6, h[1], h[2]], [10, h[2], h[3]]]
    assert t["min"] == [[1, h[0], h[1]], [5, h[1], h[2]], [10, h[2], h[3]]]
    assert t["max"] == [[3, h[0], h[1]], [7, h[1], h[2]], [10, h[2], h[3]]]
    assert t["sum"] == [[4, h[0], h[1]], [12, h[1], h[2]], [10, h[2], h[3]]]
    assert t["totalCount"] == [[2, h[0], h[1]], [2, h[1], h[2]], [1, h[2], h[3]]]


def test_aggregated_values_whole_range(sensor: Any) -> None:
    r = sensor.get(f"{T}/{EID}", params={
        "attrs": "temperature", "options": "aggregatedValues", "aggrMethods": "avg,sum",
    })
    t = r.json()["temperature"]
    assert t["sum"][0][0] == 26
    assert t["avg"][0][0] == pytest.approx(5.2)


def test_temporal_query_by_type_and_id(sensor: Any) -> None:
    sensor.post(T, json={"id": "urn:ngsi-ld:Sensor:s2", "type": "Sensor",
                         "temperature": instances([(99, "2024-05-01T10:00:00Z")])})
    sensor.post(T, json={"id": "urn:ngsi-ld:Meter:m1", "type": "Meter",
                         "temperature": instances([(0, "2024-05-01T10:00:00Z")])})
    r = sensor.get(T, params={"type": "Sensor", "options": "count"})
    assert sorted(e["id"] for e in r.json()) == [EID, "urn:ngsi-ld:Sensor:s2"]
    assert r.headers["NGSILD-Results-Count"] == "2"
    r = sensor.get(T, params={"id": "urn:ngsi-ld:Meter:m1"})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Meter:m1"]
    r = sensor.get(T, params={"type": "Sensor", "attrs": "temperature", "timerel": "after",
                              "timeAt": "2024-05-01T12:00:00Z"})
    got = {e["id"]: [i["value"] for i in (e["temperature"] if isinstance(
        e["temperature"], list) else [e["temperature"]])] for e in r.json()}
    assert got == {EID: [10]}
    r = sensor.get(T, params={"type": "Sensor", "limit": "1"})
    assert len(r.json()) == 1
    assert sensor.get(T).status_code == 400


def test_temporal_query_post(sensor: Any) -> None:
    r = sensor.post(f"{B}/temporal/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "Sensor"}], "attrs": ["temperature"],
        "temporalQ": {"timerel": "before", "timeAt": "2024-05-01T10:45:00Z"},
    })
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["value"] for i in body[0]["temperature"]] == [1, 3]


def test_modify_and_delete_instance(sensor: Any) -> None:
    e = sensor.get(f"{T}/{EID}", params={"attrs": "temperature"}).json()
    first, second = e["temperature"][0]["instanceId"], e["temperature"][1]["instanceId"]
    r = sensor.patch(f"{T}/{EID}/attrs/temperature/{first}",
                     json={"temperature": {"type": "Property", "value": 100,
                                           "observedAt": "2024-05-01T10:00:00Z"}})
    assert r.status_code == 204, r.text
    assert values(sensor, {})[0] == 100
    r = sensor.delete(f"{T}/{EID}/attrs/temperature/{second}")
    assert r.status_code == 204
    assert values(sensor, {}) == [100, 5, 7, 10]
    r = sensor.delete(f"{T}/{EID}/attrs/temperature/{second}")
    assert r.status_code == 404
    r = sensor.patch(f"{T}/{EID}/attrs/temperature/urn:x:none", json={"value": 1})
    assert r.status_code == 404


def test_delete_attribute_history(sensor: Any) -> None:
    r = sensor.delete(f"{T}/{EID}/attrs/temperature")
    assert r.status_code == 204
    e = sensor.get(f"{T}/{EID}").json()
    assert "temperature" not in e and "status" in e
    assert sensor.delete(f"{T}/{EID}/attrs/temperature").status_code == 404


def test_delete_temporal_entity(sensor: Any) -> None:
    assert sensor.delete(f"{T}/{EID}").status_code == 204
    assert sensor.get(f"{T}/{EID}").status_code == 404
    assert sensor.delete(f"{T}/{EID}").status_code == 404


def test_add_attrs_to_missing_is_404(client: Any) -> None:
    r = client.post(f"{T}/urn:ngsi-ld:Sensor:none/attrs",
                    json={"temperature": instances()})
    assert r.status_code == 404


def test_instances_cut_off_is_206(client: Any) -> None:
    many = [(i, f"2024-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
            for i in range(1100)]
    r = client.post(T, json={"id": EID, "type": "Sensor", "temperature": instances(many)})
    assert r.status_code == 201
    r = client.get(f"{T}/{EID}", params={"options": "temporalValues"})
    assert r.status_code == 206
    vals = r.json()["temperature"]["values"]
    assert 0 < len(vals) < 1100
    assert vals[0][0] == 0
    assert "content-range" in r.headers
    r = client.get(f"{T}/{EID}", params={"options": "temporalValues", "lastN": "10"})
    assert r.status_code == 200
    assert [v[0] for v in r.json()["temperature"]["values"]] == list(range(1090, 1100))
    r = client.get(T, params={"type": "Sensor", "options": "temporalValues"})
    assert r.status_code == 206


def test_the_instance_limit_is_a_setting(store_url: str, tmp_path: Path) -> None:
    from support import app_client, make_settings

    with app_client(make_settings(store_url, tmp_path, temporal_max_instances=10)) as c:
        many = [(i, f"2024-01-01T00:00:{i:02d}Z") for i in range(20)]
        r = c.post(T, json={"id": EID, "type": "Sensor", "temperature": instances(many)})
        assert r.status_code == 201
        r = c.get(f"{T}/{EID}", params={"options": "temporalValues"})
        assert r.status_code == 206
        assert [v[0] for v in r.json()["temperature"]["values"]] == list(range(10))
        assert r.headers["content-range"].startswith("date-time 2024-01-01T00:00:00")
        r = c.get(f"{T}/{EID}", params={"options": "temporalValues", "lastN": "5"})
        assert r.status_code == 200  # five of one attribute stay under the limit
