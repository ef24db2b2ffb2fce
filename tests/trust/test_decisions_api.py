"""The decision engine's input checks and its HTTP API (both stores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_decisions import OP1, SERVICE, SIG, P, T, _city, proposal

from maeul.hub.app import Services
from maeul.hub.errors import BadRequestData, ResourceNotFound
from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)


@pytest.fixture
def svc(store_url: str, tmp_path: Path) -> Iterator[Services]:
    s = Services(make_settings(store_url, tmp_path, trust_jobs=False))
    _city(s)
    yield s
    s.close()


# -- bad input (Python API) -------------------------------------------------------------------
@pytest.mark.parametrize("change,field", [
    ({"colour": "red"}, "colour"),
    ({"why": 42}, "why"),
    ({"why": "x" * 2001}, "why"),
    ({"why": ""}, "why"),
    ({"target": "not a uri"}, "target"),
    ({"target": []}, "target"),
    ({"expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
    ({"expiresAt": "tomorrow"}, "expiresAt"),
    ({"expectedEffect": {"text": "x" * 9000}}, "expectedEffect"),
    ({"expectedEffect": "faster"}, "expectedEffect"),
    ({"evidence": {"links": [{"entity": SIG, "start": "2026-01-02T00:00:00Z",
                              "end": "2026-01-01T00:00:00Z"}]}}, "evidence.links.0"),
    ({"evidence": {"model": "v1"}}, "evidence.model"),
    ({"action": {"kind": "hub.patch", "attrs": {"greenTime": 40}, "format": "compact"}},
     "action.format"),
    ({"action": {"kind": "hub.patch", "attrs": {}}}, "action.attrs"),
    ({"action": {"kind": "hub.patch", "attrs": {"id": "urn:x:y"}}}, "action.attrs"),
    ({"action": {"kind": "hub.patch", "attrs": {"greenTime": {"type": "Nope", "value": 1}}}},
     "action.attrs"),
    ({"action": {"kind": "hub.patch", "attrs": {"a": 1}, "params": {}}}, "action.params"),
    ({"target": [SIG, "urn:ngsi-ld:TrafficSignal:2"]}, "target"),
    ({"system": "old"}, "system"),
    ({"id": "has space"}, "id"),
])
def test_bad_proposals_get_a_400_naming_the_field(
        svc: Services, change: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequestData) as err:
        svc.trust.decisions.submit(T, proposal(**change), SERVICE)
    assert err.value.detail.startswith(field) or f"; {field}" in err.value.detail, \
        err.value.detail
    assert svc.trust.decisions.list_proposals(T)["total"] == 0


def test_unknown_system_or_target_is_404(svc: Services) -> None:
    d = svc.trust.decisions
    with pytest.raises(ResourceNotFound, match="system"):
        d.submit(T, proposal("nobody"), SERVICE)
    with pytest.raises(ResourceNotFound, match="target"):
        d.submit(T, proposal(target="urn:ngsi-ld:TrafficSignal:404"), SERVICE)
    with pytest.raises(ResourceNotFound):
        d.approve(T, "nope", OP1)


# -- HTTP -------------------------------------------------------------------------------------
@pytest.fixture
def web(store_url: str, tmp_path: Path) -> Iterator[Any]:
    with app_client(make_settings(store_url, tmp_path, auth_enabled=True, trust_jobs=False)) as c:
        s = c.services
        _city(s)
        c.services = s
        c.keys = {role: {"Authorization": f"Bearer {s.keys.create(role, T)}"}
                  for role in ("service", "reader", "admin")}
        c.keys["op1"] = {"Authorization": f"Bearer {s.keys.create('operator', T)}"}
        c.keys["op2"] = {"Authorization": f"Bearer {s.keys.create('operator', T)}"}
        yield c


def test_http_queue_approve_and_rollback(web: Any) -> None:
    k = web.keys
    r = web.post(P, json=proposal("lvl4"), headers=k["service"])
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.headers["location"] == f"{P}/{pid}"
    assert web.get(f"{P}/{pid}", headers=k["reader"]).json()["status"] == "pending"
    assert web.get(f"{P}/{pid}").status_code == 401
    assert web.post(f"{P}/{pid}/approve", headers=k["reader"]).status_code == 403
    assert web.post(f"{P}/{pid}/approve", headers=k["service"]).status_code == 403
    assert web.post(f"{P}/{pid}/approve", headers=k["op1"]).json()["status"] == "pending"
    dup = web.post(f"{P}/{pid}/approve", headers=k["op1"])
    assert dup.status_code == 409 and dup.json()["type"].endswith("Conflict")
    ok = web.post(f"{P}/{pid}/approve", json={"reason": "fine"}, headers=k["op2"])
    assert ok.status_code == 200 and ok.json()["status"] == "applied"
    assert web.post(f"{P}/{pid}/approve", headers=k["admin"]).status_code == 409
    no_reason = web.post(f"{P}/{pid}/rollback", headers=k["op1"])
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["detail"]
    rb = web.post(f"{P}/{pid}/rollback", json={"reason": "undo"}, headers=k["op1"])
    assert rb.json()["status"] == "rolledBack"
    assert web.post(P, json=proposal(), headers=k["reader"]).status_code == 403


def test_http_reject_modify_and_bad_input(web: Any) -> None:
    k = web.keys
    pid = web.post(P, json=proposal(), headers=k["service"]).json()["id"]
    r = web.post(f"{P}/{pid}/reject", json={}, headers=k["op1"])
    assert r.status_code == 400 and r.json()["detail"].startswith("reason")
    r = web.post(f"{P}/{pid}/modify", json={"action": {"kind": "hub.patch", "attrs": {
        "greenTime": 33}, "format": "keyValues"}}, headers=k["op1"])
    assert r.status_code == 400 and "reason" in r.json()["detail"]
    r = web.post(f"{P}/{pid}/modify", json={"action": {"kind": "hub.patch", "attrs": {
        "greenTime": 33}, "format": "keyValues"}, "reason": "r", "extra": 1}, headers=k["op1"])
    assert r.status_code == 400 and "extra" in r.json()["detail"]
    r = web.post(f"{P}/{pid}/modify", json={"action": {"kind": "hub.patch", "attrs": {
        "greenTime": 33}, "format": "keyValues"}, "reason": "smaller"}, headers=k["op1"])
    assert r.status_code == 200 and r.json()["overridden"] is True
    r = web.post(f"{P}/{pid}/reject", json={"reason": "not today"}, headers=k["op2"])
    assert r.json()["status"] == "rejected"
    assert web.post(f"{P}/{pid}/approve", headers=k["op1"]).status_code == 409
    for body, field in (({**proposal(), "colour": 1}, "colour"),
                        (proposal(why="w" * 2001), "why"),
                        (proposal(why=7), "why"),
                        (proposal(expiresAt="2000-01-01T00:00:00Z"), "expiresAt")):
        bad = web.post(P, json=body, headers=k["service"])
        assert bad.status_code == 400 and field in bad.json()["detail"], bad.text
    assert web.post(P, json=proposal("nobody"), headers=k["service"]).status_code == 404
    assert web.get(f"{P}/nope", headers=k["reader"]).status_code == 404


def test_http_list_filters_and_paging(web: Any) -> None:
    k = web.keys
    ids = [web.post(P, json=proposal(sys, green=40 + i), headers=k["service"]).json()["id"]
           for i, sys in enumerate(["lvl3", "lvl3", "lvl4", "auto1"])]
    page = web.get(P, params={"status": "pending", "limit": 2}, headers=k["reader"]).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert [p["id"] for p in page["items"]] == [ids[2], ids[1]]  # newest first
    rest = web.get(P, params={"status": "pending", "limit": 2, "offset": 2},
                   headers=k["reader"]).json()
    assert [p["id"] for p in rest["items"]] == [ids[0]]
    by_sys = web.get(P, params={"system": "auto1"}, headers=k["reader"]).json()
    assert [p["status"] for p in by_sys["items"]] == ["applied"]
    bad = web.get(P, params={"status": "maybe"}, headers=k["reader"])
    assert bad.status_code == 400 and bad.json()["detail"].startswith("status")
    assert web.get(P, params={"limit": "x"}, headers=k["reader"]).status_code == 400
