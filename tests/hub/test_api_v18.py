"""NGSI-LD v1.8 features over HTTP: linked-entity retrieval (join), purge, transient entities
and showChanges in notifications (ETSI GS CIM 009 v1.8), on every store backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_api_subscriptions import Receiver, subscribe

from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"
P1, P2, P3 = (f"urn:ngsi-ld:Park:{n}" for n in (1, 2, 3))
C1 = "urn:ngsi-ld:City:1"
D1 = "urn:ngsi-ld:District:1"


def rel(obj: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj}


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def make(client: Any, body: dict[str, Any], **headers: str) -> None:
    r = client.post(f"{B}/entities", json=body, headers=headers)
    assert r.status_code == 201, r.text


def problem(r: Any, status: int = 400, name: str = "BadRequestData") -> str:
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith(name), r.json()
    return str(r.json()["detail"])


@pytest.fixture
def city(client: Any) -> Any:
    """Parks in a district in a city; park 3 points at a park that does not exist."""
    make(client, {"id": C1, "type": "City", "name": prop("Seoul")})
    make(client, {"id": D1, "type": "District", "name": prop("Jongno"), "city": rel(C1)})
    make(client, {"id": P1, "type": "Park", "area": prop(10), "district": rel(D1)})
    make(client, {"id": P2, "type": "Park", "area": prop(20), "district": rel(D1),
                  "near": {"type": "ListRelationship", "objectList": [P1, P3]}})
    make(client, {"id": P3, "type": "Park", "area": prop(30),
                  "district": rel("urn:ngsi-ld:District:gone")})
    return client


def future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- join ------------------------------------------------------------------------------------


def test_inline_nests_the_target_under_the_relationship(city: Any) -> None:
    body = city.get(f"{B}/entities/{P1}", params={"join": "inline"}).json()
    district = body["district"]
    assert district["object"] == D1 and district["entity"]["id"] == D1
    assert district["entity"]["name"]["value"] == "Jongno"
    # joinLevel 1: the district's own relationship is not followed
    assert "entity" not in district["entity"]["city"]

    body = city.get(f"{B}/entities/{P1}", params={"join": "inline", "joinLevel": "2"}).json()
    assert body["district"]["entity"]["city"]["entity"]["name"]["value"] == "Seoul"


def test_inline_list_relationship_and_missing_target(city: Any) -> None:
    body = city.get(f"{B}/entities/{P2}", params={"join": "inline"}).json()
    assert [e["id"] for e in body["near"]["entityList"]] == [P1, P3]
    body = city.get(f"{B}/entities/{P3}", params={"join": "inline"}).json()
    assert "entity" not in body["district"]  # a dangling link stays a plain link


def test_inline_in_concise_and_key_values(city: Any) -> None:
    body = city.get(f"{B}/entities/{P1}", params={"join": "inline", "format": "concise"}).json()
    assert body["district"]["entity"]["name"] == "Jongno"
    body = city.get(f"{B}/entities/{P1}",
                    params={"join": "inline", "options": "keyValues"}).json()
    assert body["district"] == {"id": D1, "type": "District", "name": "Jongno", "city": C1}


def test_flat_returns_targets_as_more_entities(city: Any) -> None:
    r = city.get(f"{B}/entities/{P1}", params={"join": "flat", "joinLevel": "2"})
    assert r.status_code == 200
    assert [e["id"] for e in r.json()] == [P1, D1, C1]

    r = city.get(f"{B}/entities", params={"type": "Park", "join": "flat", "count": "true"})
    ids = [e["id"] for e in r.json()]
    assert ids == [P1, P2, P3, D1]  # each once, none repeated from the page
    assert r.headers["NGSILD-Results-Count"] == "3"  # the matches, not the linked ones


def test_only_relationships_in_the_response_are_followed(city: Any) -> None:
    r = city.get(f"{B}/entities", params={"type": "Park", "attrs": "area", "join": "flat"})
    assert [e["id"] for e in r.json()] == [P1, P2, P3]
    r = city.get(f"{B}/entities/{P2}", params={"join": "flat", "pick": "id,type,near"})
    assert [e["id"] for e in r.json()] == [P2, P1, P3]


def test_join_on_post_query(city: Any) -> None:
    body = {"type": "Query", "entities": [{"type": "Park"}], "q": "area==10",
            "join": "inline"}
    r = city.post(f"{B}/entityOperations/query", json=body)
    assert r.status_code == 200, r.text
    assert r.json()[0]["district"]["entity"]["id"] == D1
    r = city.post(f"{B}/entityOperations/query", params={"join": "flat"},
                  json={"type": "Query", "entities": [{"type": "Park"}], "q": "area==10"})
    assert [e["id"] for e in r.json()] == [P1, D1]


@pytest.mark.parametrize("params", [
    {"join": "inline", "joinLevel": "two"}, {"join": "flat", "joinLevel": "0"},
    {"join": "flat", "joinLevel": "-1"}, {"join": "flat", "joinLevel": "99"},
    {"join": "sideways"}, {"joinLevel": "x"},
])
def test_bad_join_is_400(city: Any, params: dict[str, str]) -> None:
    detail = problem(city.get(f"{B}/entities/{P1}", params=params))
    assert "join" in detail
    problem(city.get(f"{B}/entities", params={"type": "Park", **params}))
    body = {"type": "Query", "entities": [{"type": "Park"}], "join": params.get("join", "flat"),
            "joinLevel": params.get("joinLevel", 1)}
    problem(city.post(f"{B}/entityOperations/query", json=body))


def test_join_stays_in_the_tenant(city: Any) -> None:
    make(city, {"id": "urn:ngsi-ld:Park:9", "type": "Park", "district": rel(D1)},
         **{"NGSILD-Tenant": "other"})
    r = city.get(f"{B}/entities/urn:ngsi-ld:Park:9", params={"join": "flat"},
                 headers={"NGSILD-Tenant": "other"})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Park:9"]


# -- purge -----------------------------------------------------------------------------------


def test_purge_by_type_deletes_each_like_a_single_delete(city: Any) -> None:
    r = city.delete(f"{B}/entities", params={"type": "Park"})
    assert r.status_code == 204, r.text
    assert city.get(f"{B}/entities", params={"type": "Park"}).json() == []
    assert city.get(f"{B}/entities/{D1}").status_code == 200
    deletes = [a for a in city.services.store.audit_log("default", 100)
               if a["action"] == "entity.delete"]
    assert sorted(a["target"] for a in deletes) == [P1, P2, P3]


def test_purge_with_q_id_and_id_pattern(city: Any) -> None:
    assert city.delete(f"{B}/entities", params={"type": "Park", "q": "area>15"}
                       ).status_code == 204
    assert [e["id"] for e in city.get(f"{B}/entities", params={"type": "Park"}).json()] == [P1]
    assert city.delete(f"{B}/entities", params={"idPattern": "urn:ngsi-ld:City:.*"}
                       ).status_code == 204
    assert city.get(f"{B}/entities/{C1}").status_code == 404
    assert city.delete(f"{B}/entities", params={"id": f"{P1},{D1}"}).status_code == 204
    assert city.get(f"{B}/entities", params={"idPattern": ".*"}).json() == []


def test_purge_in_chunks(store_url: str, tmp_path: Path) -> None:
    with app_client(make_settings(store_url, tmp_path, purge_chunk_entities=3)) as c:
        r = c.post(f"{B}/entityOperations/create", json=[
            {"id": f"urn:ngsi-ld:Bin:{n}", "type": "Bin", "fill": prop(n)} for n in range(10)])
        assert r.status_code == 201
        writes = 0
        store = c.services.store
        real = store.write

        def counting(fn: Any) -> Any:
            nonlocal writes
            writes += 1
            return real(fn)

        store.write = counting  # type: ignore[method-assign]
        try:
            assert c.delete(f"{B}/entities", params={"type": "Bin", "q": "fill<8"}
                            ).status_code == 204
        finally:
            store.write = real  # type: ignore[method-assign]
        assert writes == 3  # 8 entities, 3 per write
        left = c.get(f"{B}/entities", params={"type": "Bin"}).json()
        assert [e["id"] for e in left] == ["urn:ngsi-ld:Bin:8", "urn:ngsi-ld:Bin:9"]


@pytest.mark.parametrize("params", [
    {}, {"attrs": "area", "type": "Park"}, {"type": "Park", "pick": "area"},
    {"type": "Park", "q": "area>>"}, {"id": "not a uri"}, {"idPattern": "(["},
])
def test_bad_purge_is_400_and_deletes_nothing(city: Any, params: dict[str, str]) -> None:
    problem(city.delete(f"{B}/entities", params=params))
    assert len(city.get(f"{B}/entities", params={"idPattern": ".*"}).json()) == 5


def test_purge_needs_write_permission(store_url: str, tmp_path: Path) -> None:
    settings = make_settings(store_url, tmp_path, auth_enabled=True, trust_jobs=False)
    with app_client(settings) as c:
        admin = {"Authorization": f"Bearer {c.services.keys.create('admin')}"}
        reader = {"Authorization": f"Bearer {c.services.keys.create('reader')}"}
        make(c, {"id": P1, "type": "Park", "area": prop(1)}, **admin)
        assert c.delete(f"{B}/entities", params={"type": "Park"}, headers=reader
                        ).status_code == 403
        assert c.delete(f"{B}/entities", params={"type": "Park"}).status_code == 401
        assert c.get(f"{B}/entities/{P1}", headers=admin).status_code == 200
        assert c.delete(f"{B}/entities", params={"type": "Park"}, headers=admin
                        ).status_code == 204


def test_purge_notifies_deletions(client: Any) -> None:
    rec = Receiver()
    try:
        subscribe(client, {"type": "Subscription", "entities": [{"type": "Park"}],
                           "notificationTrigger": ["entityDeleted"],
                           "notification": {"endpoint": {"uri": rec.url}}})
        make(client, {"id": P1, "type": "Park", "area": prop(1)})
        make(client, {"id": P2, "type": "Park", "area": prop(2)})
        assert client.delete(f"{B}/entities", params={"type": "Park"}).status_code == 204
        got = rec.wait(2)
        assert sorted(n["data"][0]["id"] for n in got) == [P1, P2]
        assert all("deletedAt" in n["data"][0] for n in got)
    finally:
        rec.stop()


# -- transient entities ----------------------------------------------------------------------


def test_expires_at_is_kept_shown_and_validated(client: Any) -> None:
    exp = future(3600)
    make(client, {"id": P1, "type": "Park", "expiresAt": exp, "area": prop(1)})
    body = client.get(f"{B}/entities/{P1}").json()
    assert body["expiresAt"] == exp and "expiresAt" not in body.get("attrs", {})
    for bad in ("tomorrow", 12, "2001-01-01T00:00:00Z", None, ["2999-01-01T00:00:00Z"]):
        r = client.post(f"{B}/entities", json={"id": P2, "type": "Park", "expiresAt": bad})
        assert "expiresAt" in problem(r)
        r = client.patch(f"{B}/entities/{P1}", json={"expiresAt": bad})
        assert "expiresAt" in problem(r)
    assert client.get(f"{B}/entities/{P2}").status_code == 404
    assert client.get(f"{B}/entities/{P1}").json()["expiresAt"] == exp
    # an object under that name is an ordinary attribute (the proposals' projection has one)
    make(client, {"id": P3, "type": "Park", "expiresAt": prop("2001-01-01T00:00:00Z")})
    assert client.get(f"{B}/entities/{P3}").json()["expiresAt"]["value"].startswith("2001")


def test_expired_entities_are_not_read_before_the_job_runs(store_url: str,
                                                           tmp_path: Path) -> None:
    with app_client(make_settings(store_url, tmp_path, expiry_interval_s=0)) as c:
        make(c, {"id": P1, "type": "Park", "expiresAt": future(0.4), "area": prop(1)})
        make(c, {"id": P2, "type": "Park", "area": prop(2),
                 "near": rel(P1)})
        assert c.get(f"{B}/entities/{P1}").status_code == 200
        time.sleep(0.5)
        assert c.get(f"{B}/entities/{P1}").status_code == 404
        ids = [e["id"] for e in c.get(f"{B}/entities", params={"type": "Park"}).json()]
        assert ids == [P2]
        r = c.get(f"{B}/entities/{P2}", params={"join": "flat"})
        assert [e["id"] for e in r.json()] == [P2]
        # still stored: only the job deletes, as an audited delete
        assert c.services.store.reader().get_entity("default", P1) is not None
        assert c.services.expiry.sweep() == 1
        assert c.services.store.reader().get_entity("default", P1) is None
        audit = [a for a in c.services.store.audit_log("default", 50)
                 if a["action"] == "entity.delete"]
        assert [(a["target"], a["actor"]) for a in audit] == [(P1, "system:expiry")]


def test_the_job_deletes_and_notifies(store_url: str, tmp_path: Path) -> None:
    rec = Receiver()
    try:
        with app_client(make_settings(store_url, tmp_path, expiry_interval_s=0.1)) as c:
            subscribe(c, {"type": "Subscription", "entities": [{"type": "Park"}],
                          "notificationTrigger": ["entityDeleted"],
                          "notification": {"endpoint": {"uri": rec.url}}})
            make(c, {"id": P1, "type": "Park", "expiresAt": future(0.3)})
            make(c, {"id": P2, "type": "Park", "expiresAt": future(0.3)})
            # made permanent again, and one moved later: neither goes now
            assert c.patch(f"{B}/entities/{P2}", json={"expiresAt": "urn:ngsi-ld:null"}
                           ).status_code == 204
            make(c, {"id": P3, "type": "Park", "expiresAt": future(0.3)})
            assert c.patch(f"{B}/entities/{P3}", json={"expiresAt": future(3600)}
                           ).status_code == 204
            got = rec.wait(1)
            assert got[0]["data"][0]["id"] == P1
            rec.quiet(1, settle=0.6)
            assert c.services.store.reader().get_entity("default", P1) is None
            assert c.get(f"{B}/entities/{P2}").status_code == 200
            assert "expiresAt" not in c.get(f"{B}/entities/{P2}").json()
            assert c.get(f"{B}/entities/{P3}").status_code == 200
    finally:
        rec.stop()


# -- showChanges -----------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def test_show_changes_adds_previous_members(client: Any, receiver: Receiver) -> None:
    subscribe(client, {"type": "Subscription", "entities": [{"type": "Park"}],
                       "notification": {"endpoint": {"uri": receiver.url},
                                        "showChanges": True, "sysAttrs": True}})
    make(client, {"id": P1, "type": "Park", "area": prop(1), "district": rel(D1)})
    created = receiver.wait(1)[0]["data"][0]
    assert "previousValue" not in created["area"] and "createdAt" in created["area"]
    r = client.post(f"{B}/entities/{P1}/attrs",
                    json={"area": prop(2), "district": rel("urn:ngsi-ld:District:2"),
                          "name": prop("new")})
    assert r.status_code == 204, r.text
    data = receiver.wait(2)[1]["data"][0]
    assert data["area"]["value"] == 2 and data["area"]["previousValue"] == 1
    assert data["district"]["previousObject"] == D1
    assert "previousValue" not in data["name"]  # created by this change
    sub = client.get(f"{B}/subscriptions").json()[0]
    assert sub["notification"]["showChanges"] is True
    assert sub["notification"]["sysAttrs"] is True


def test_show_changes_in_concise(client: Any, receiver: Receiver) -> None:
    subscribe(client, {"type": "Subscription", "entities": [{"type": "Park"}],
                       "notification": {"endpoint": {"uri": receiver.url},
                                        "format": "concise", "showChanges": True}})
    make(client, {"id": P1, "type": "Park", "area": prop(1)})
    client.patch(f"{B}/entities/{P1}/attrs", json={"area": prop(5)})
    data = receiver.wait(2)[1]["data"][0]
    assert data["area"] == {"value": 5, "previousValue": 1}


def test_entity_deleted_with_show_changes_lists_what_went(client: Any,
                                                        receiver: Receiver) -> None:
    for show in (True, False):
        subscribe(client, {"type": "Subscription", "entities": [{"type": "Park"}],
                           "notificationTrigger": ["entityDeleted"],
                           "notification": {"endpoint": {"uri": receiver.url},
                                            "showChanges": show}})
    make(client, {"id": P1, "type": "Park", "area": prop(1), "district": rel(D1),
                  "raw": {"type": "JsonProperty", "json": {"a": 1}}})
    assert client.delete(f"{B}/entities/{P1}").status_code == 204
    got = sorted((n["data"][0] for n in receiver.wait(2)), key=len)
    assert got[0].keys() == {"id", "type", "deletedAt"}
    assert got[1]["area"] == {"type": "Property", "value": "urn:ngsi-ld:null",
                              "previousValue": 1}
    assert got[1]["district"] == {"type": "Relationship", "object": "urn:ngsi-ld:null",
                                  "previousObject": D1}
    assert got[1]["raw"] == {"type": "JsonProperty", "json": "urn:ngsi-ld:null",
                             "previousJson": {"a": 1}}


def test_without_show_changes_no_previous_members(client: Any, receiver: Receiver) -> None:
    subscribe(client, {"type": "Subscription", "entities": [{"type": "Park"}],
                       "notification": {"endpoint": {"uri": receiver.url}}})
    make(client, {"id": P1, "type": "Park", "area": prop(1)})
    client.patch(f"{B}/entities/{P1}/attrs", json={"area": prop(5)})
    data = receiver.wait(2)[1]["data"][0]
    assert "previousValue" not in data["area"] and "createdAt" not in data["area"]


@pytest.mark.parametrize("flag", ["showChanges", "sysAttrs"])
def test_show_changes_must_be_boolean(client: Any, flag: str) -> None:
    r = client.post(f"{B}/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Park"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}, flag: "yes"}})
    assert flag in problem(r)
    assert client.get(f"{B}/subscriptions").json() == []


@pytest.mark.parametrize("fmt", ["keyValues", "simplified"])
def test_show_changes_refused_with_key_values(client: Any, fmt: str) -> None:
    # Table 5.2.14-1: "showChanges cannot be true in case format is keyValues"
    r = client.post(f"{B}/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Park"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}, "format": fmt,
                         "showChanges": True}})
    assert r.status_code == 400 and "showChanges" in problem(r)
    assert client.get(f"{B}/subscriptions").json() == []


def test_attribute_deleted_notifications_show_what_went(client: Any, receiver: Receiver) -> None:
    for fmt in ("normalized", "keyValues"):
        subscribe(client, {"type": "Subscription", "entities": [{"type": "Park"}],
                           "notificationTrigger": ["attributeDeleted"],
                           "notification": {"endpoint": {"uri": receiver.url}, "format": fmt,
                                            "showChanges": fmt == "normalized"}})
    make(client, {"id": P1, "type": "Park", "area": prop(1), "district": rel(D1)})
    assert client.delete(f"{B}/entities/{P1}/attrs/area").status_code == 204
    got = receiver.wait(2)
    assert client.delete(f"{B}/entities/{P1}/attrs/district").status_code == 204
    got = receiver.wait(4)
    first = [n["data"][0] for n in got[:2]]
    second = [n["data"][0] for n in got[2:]]
    assert {"type": "Property", "value": "urn:ngsi-ld:null", "previousValue": 1} in [
        d["area"] for d in first]
    assert "urn:ngsi-ld:null" in [d["area"] for d in first]  # keyValues
    assert {"type": "Relationship", "object": "urn:ngsi-ld:null", "previousObject": D1} in [
        d["district"] for d in second]
    assert "urn:ngsi-ld:null" in [d["district"] for d in second]
    assert all("area" not in d for d in second)  # gone before, not part of this change
    assert client.get(f"{B}/entities/{P1}").json().keys() == {"id", "type"}
