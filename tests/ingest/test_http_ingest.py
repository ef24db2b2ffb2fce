"""HTTP device ingest (/ingest/v1/{device}/attrs) and provisioning (/maeul/v1/devices)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

EID = "urn:ngsi-ld:AirQualityObserved:aq-1"
DEVICE: dict[str, Any] = {
    "deviceId": "aq-1",
    "entityId": EID,
    "entityType": "AirQualityObserved",
    "attributes": {"pm25": {"name": "pm25", "unitCode": "GQ"}, "no2": "no2"},
}
JSON = {"content-type": "application/json"}

# starlette warns (as a UserWarning) that its TestClient wants httpx2
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def provision(client: Any, doc: dict[str, Any] | None = None, tenant: str | None = None) -> None:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    r = client.post("/maeul/v1/devices", json=doc or DEVICE, headers=headers)
    assert r.status_code == 201, r.text


def stats(client: Any) -> dict[str, int]:
    r = client.get("/ingest/v1/stats")
    assert r.status_code == 200
    return dict(r.json())


def assert_problem(r: Any, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]


def test_measurements_map_to_entity_and_history(client: Any) -> None:
    provision(client)
    r = client.post("/ingest/v1/aq-1/attrs",
                    json={"pm25": 12.5, "no2": 40, "ts": "2024-05-01T10:00:00Z", "junk": 1})
    assert r.status_code == 200, r.text
    assert r.json() == {"entityId": EID}
    # epoch milliseconds are accepted as well
    r = client.post("/ingest/v1/aq-1/attrs", json={"pm25": 13.5, "ts": 1714557660000})
    assert r.status_code == 200, r.text

    ent = client.get(f"/ngsi-ld/v1/entities/{EID}").json()
    assert ent["type"] == "AirQualityObserved"
    assert "junk" not in ent and "ts" not in ent
    assert ent["pm25"]["value"] == 13.5
    assert ent["pm25"]["unitCode"] == "GQ"
    assert ent["pm25"]["observedAt"].startswith("2024-05-01T10:01:00")
    assert ent["no2"]["value"] == 40
    assert ent["no2"]["observedAt"].startswith("2024-05-01T10:00:00")
    assert "unitCode" not in ent["no2"]

    hist = client.get(f"/ngsi-ld/v1/temporal/entities/{EID}").json()
    pm25 = sorted(hist["pm25"], key=lambda i: i["observedAt"])
    assert [i["value"] for i in pm25] == [12.5, 13.5]
    assert all(i["unitCode"] == "GQ" for i in pm25)
    assert [i["value"] for i in hist["no2"]] == [40]
    assert stats(client) == {"received": 2, "accepted": 2, "unknown_device": 0,
                             "malformed": 0, "rejected": 0}


def test_bad_measurements_are_rejected_and_change_nothing(client: Any) -> None:
    provision(client)
    r = client.post("/ingest/v1/aq-1/attrs", json={"pm25": 1.0, "ts": "2024-05-01T10:00:00Z"})
    assert r.status_code == 200
    before = client.get(f"/ngsi-ld/v1/entities/{EID}").json()

    assert_problem(client.post("/ingest/v1/nope/attrs", json={"pm25": 2}), 404)
    assert_problem(client.post("/ingest/v1/aq-1/attrs", content=b"{not json", headers=JSON), 400)
    assert_problem(client.post("/ingest/v1/aq-1/attrs", content=b"[1, 2]", headers=JSON), 400)
    assert_problem(client.post("/ingest/v1/aq-1/attrs", json={"other": 3}), 400)
    assert_problem(client.post("/ingest/v1/aq-1/attrs", json={"pm25": 2, "ts": "yesterday"}), 400)
    assert_problem(client.post("/ingest/v1/aq-1/attrs", json={"pm25": None}), 400)
    assert_problem(client.post("/ingest/v1/aq-1/attrs", content=orjson.dumps({"pm25": 2}),
                               headers={"content-type": "text/plain"}), 415)
    big = orjson.dumps({"pm25": 2, "pad": "x" * 100_000})
    assert_problem(client.post("/ingest/v1/aq-1/attrs", content=big, headers=JSON), 413)

    assert client.get(f"/ngsi-ld/v1/entities/{EID}").json() == before
    hist = client.get(f"/ngsi-ld/v1/temporal/entities/{EID}").json()
    assert [i["value"] for i in hist["pm25"]] == [1.0]
    s = stats(client)
    assert s["accepted"] == 1
    assert s["unknown_device"] == 1
    assert s["malformed"] == 5
    # the unknown device created nothing
    r = client.get("/ngsi-ld/v1/entities?type=AirQualityObserved&options=count&limit=0")
    assert r.headers["NGSILD-Results-Count"] == "1"


def test_devices_are_per_tenant(client: Any) -> None:
    provision(client, tenant="t2")
    assert_problem(client.post("/ingest/v1/aq-1/attrs", json={"pm25": 2}), 404)
    r = client.post("/ingest/v1/aq-1/attrs", json={"pm25": 2}, headers={"NGSILD-Tenant": "t2"})
    assert r.status_code == 200, r.text
    assert client.get(f"/ngsi-ld/v1/entities/{EID}").status_code == 404
    r = client.get(f"/ngsi-ld/v1/entities/{EID}", headers={"NGSILD-Tenant": "t2"})
    assert r.status_code == 200 and r.json()["pm25"]["value"] == 2


def test_provisioning_round_trip(client: Any) -> None:
    provision(client)
    r = client.get("/maeul/v1/devices/aq-1")
    assert r.status_code == 200
    assert r.json()["entityId"] == EID
    assert [d["deviceId"] for d in client.get("/maeul/v1/devices").json()] == ["aq-1"]
    assert client.delete("/maeul/v1/devices/aq-1").status_code == 204
    assert_problem(client.get("/maeul/v1/devices/aq-1"), 404)
    assert_problem(client.post("/ingest/v1/aq-1/attrs", json={"pm25": 2}), 404)


def _with(**changes: Any) -> dict[str, Any]:
    doc = dict(DEVICE)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(_with(deviceId="bad id!"), id="bad-deviceId"),
        pytest.param(_with(deviceId=""), id="empty-deviceId"),
        pytest.param(_with(entityId="not a uri"), id="non-uri-entityId"),
        pytest.param(_with(attributes=None), id="missing-attributes"),
        pytest.param(_with(attributes={}), id="empty-attributes"),
        pytest.param(_with(attributes={"pm25": {"unitCode": "GQ"}}), id="attribute-no-name"),
        pytest.param(_with(attributes={"pm25": {"name": "pm25", "type": "Foo"}}),
                     id="attribute-bad-type"),
        pytest.param(_with(entityType=None), id="missing-entityType"),
        pytest.param(_with(location={"type": "Point", "coordinates": [200, 95]}),
                     id="location-out-of-range"),
        pytest.param(_with(location={"type": "Blob", "coordinates": [1, 2]}),
                     id="location-bad-type"),
        pytest.param(_with(location="here"), id="location-not-object"),
    ],
)
def test_invalid_provisioning_is_400(client: Any, doc: dict[str, Any]) -> None:
    r = client.post("/maeul/v1/devices", json=doc)
    assert_problem(r, 400)
    assert client.get("/maeul/v1/devices").json() == []


def test_provisioning_with_location_creates_the_entity(client: Any) -> None:
    provision(client, _with(location={"type": "Point", "coordinates": [126.97, 37.56]}))
    ent = client.get(f"/ngsi-ld/v1/entities/{EID}").json()
    assert ent["location"]["value"] == {"type": "Point", "coordinates": [126.97, 37.56]}
