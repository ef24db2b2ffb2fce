"""API keys, roles, tenant scope, public types for anonymous readers, and the audit trail."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"


@pytest.fixture
def hub(store_url: str, tmp_path: Path) -> Iterator[Any]:
    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(make_settings(store_url, tmp_path, auth_enabled=True))
        with TestClient(app) as c:
            c.services = app.state.services  # type: ignore[attr-defined]
            yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def car(n: int = 1, secret: str = "s3cr3t-value") -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Car:{n}", "type": "Car",
            "plate": {"type": "Property", "value": secret}}


def test_write_without_key_401(hub: Any) -> None:
    r = hub.post(f"{B}/entities", json=car())
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401
    assert hub.delete(f"{B}/entities/urn:ngsi-ld:Car:1").status_code == 401
    assert hub.post(f"{B}/entityOperations/create", json=[car()]).status_code == 401
    assert hub.get(f"{B}/subscriptions").status_code == 401


def test_wrong_and_malformed_key_401(hub: Any) -> None:
    key = hub.services.keys.create("operator")
    for bad in (key + "x", "mk_000000000000_nope", "garbage", key.rsplit("_", 1)[0] + "_x"):
        r = hub.post(f"{B}/entities", json=car(), headers=bearer(bad))
        assert r.status_code == 401, bad
    assert hub.post(f"{B}/entities", json=car(), headers=bearer(key)).status_code == 201


def test_secret_with_underscores_verifies(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # token_urlsafe may put "_" anywhere in the secret, also first; only the first two split
    import maeul.hub.auth as auth

    monkeypatch.setattr(auth.secrets, "token_urlsafe", lambda n: "_a_b__c_")
    key = hub.services.keys.create("operator")
    assert key.endswith("__a_b__c_")
    assert hub.post(f"{B}/entities", json=car(), headers=bearer(key)).status_code == 201
    assert hub.post(f"{B}/entities", json=car(2),
                    headers=bearer(key[:-1])).status_code == 401


def test_x_api_key_header(hub: Any) -> None:
    key = hub.services.keys.create("operator")
    r = hub.post(f"{B}/entities", json=car(), headers={"X-API-Key": key})
    assert r.status_code == 201


def test_revoked_key_401(hub: Any) -> None:
    key = hub.services.keys.create("operator")
    assert hub.post(f"{B}/entities", json=car(1), headers=bearer(key)).status_code == 201
    assert hub.services.keys.revoke(key.split("_")[1]) is True
    assert hub.post(f"{B}/entities", json=car(2), headers=bearer(key)).status_code == 401
    assert hub.get(f"{B}/entities", params={"type": "Car"},
                   headers=bearer(key)).status_code == 401


def test_expired_key_401(hub: Any) -> None:
    key = hub.services.keys.create("operator", expires_at="2001-01-01T00:00:00Z")
    r = hub.post(f"{B}/entities", json=car(), headers=bearer(key))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_reader_403_on_writes(hub: Any) -> None:
    op = hub.services.keys.create("operator")
    reader = hub.services.keys.create("reader")
    assert hub.post(f"{B}/entities", json=car(), headers=bearer(op)).status_code == 201
    h = bearer(reader)
    assert hub.post(f"{B}/entities", json=car(2), headers=h).status_code == 403
    assert hub.patch(f"{B}/entities/urn:ngsi-ld:Car:1/attrs",
                     json={"plate": 1}, headers=h).status_code == 403
    assert hub.delete(f"{B}/entities/urn:ngsi-ld:Car:1", headers=h).status_code == 403
    sub = {"type": "Subscription", "entities": [{"type": "Car"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/x"}}}
    assert hub.post(f"{B}/subscriptions", json=sub, headers=h).status_code == 403
    r = hub.get(f"{B}/entities/urn:ngsi-ld:Car:1", headers=h)
    assert r.status_code == 200 and r.json()["plate"]["value"] == "s3cr3t-value"


def test_tenant_scoped_key(hub: Any) -> None:
    key = hub.services.keys.create("operator", "cityA")
    ok = hub.post(f"{B}/entities", json=car(), headers={**bearer(key), "NGSILD-Tenant": "cityA"})
    assert ok.status_code == 201
    r = hub.post(f"{B}/entities", json=car(), headers={**bearer(key), "NGSILD-Tenant": "cityB"})
    assert r.status_code == 403
    r = hub.post(f"{B}/entities", json=car(), headers=bearer(key))  # default tenant
    assert r.status_code == 403
    r = hub.get(f"{B}/entities/urn:ngsi-ld:Car:1", headers={**bearer(key), "NGSILD-Tenant": "x"})
    assert r.status_code == 403


def test_anonymous_reads_only_public_types(hub: Any) -> None:
    op = hub.services.keys.create("operator")
    park = {"id": "urn:ngsi-ld:Park:1", "type": "Park", "name": {"type": "Property",
                                                                 "value": "Central"}}
    for body in (car(), park):
        assert hub.post(f"{B}/entities", json=body, headers=bearer(op)).status_code == 201
    # nothing is public yet
    assert hub.get(f"{B}/entities", params={"type": "Car,Park"}).json() == []
    assert hub.get(f"{B}/entities/urn:ngsi-ld:Park:1").status_code == 404
    hub.services.keys.set_public_types("default", [DV + "Park"], "test")
    r = hub.get(f"{B}/entities", params={"type": "Car,Park"})
    assert r.status_code == 200
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Park:1"]
    assert hub.get(f"{B}/entities/urn:ngsi-ld:Park:1").status_code == 200
    assert hub.get(f"{B}/entities/urn:ngsi-ld:Car:1").status_code == 404
    # a key holder sees everything
    r = hub.get(f"{B}/entities", params={"type": "Car,Park"}, headers=bearer(op))
    assert len(r.json()) == 2


def test_audit_records_actor_and_names_not_values(hub: Any) -> None:
    key = hub.services.keys.create("operator")
    key_id = key.split("_")[1]
    h = bearer(key)
    assert hub.post(f"{B}/entities", json=car(), headers=h).status_code == 201
    r = hub.patch(f"{B}/entities/urn:ngsi-ld:Car:1/attrs",
                  json={"plate": {"type": "Property", "value": "other-s3cr3t"}}, headers=h)
    assert r.status_code == 204
    r = hub.post(f"{B}/entities/urn:ngsi-ld:Car:1/attrs",
                 json={"owner": {"type": "Property", "value": "Kim Private"}}, headers=h)
    assert r.status_code == 204
    assert hub.delete(f"{B}/entities/urn:ngsi-ld:Car:1", headers=h).status_code == 204
    log = hub.services.store.audit_log("default", 10)
    writes = [rec for rec in log if rec["target"] == "urn:ngsi-ld:Car:1"]
    assert len(writes) == 4
    assert {rec["actor"] for rec in writes} == {f"key:{key_id}"}
    assert all(rec["ts"] for rec in writes)
    dumped = json.dumps(log)
    assert "s3cr3t" not in dumped and "Kim Private" not in dumped
    create = next(rec for rec in writes if rec["action"] == "entity.create")
    assert any(a.endswith("plate") for a in create["detail"]["attrs"])
    append = next(rec for rec in writes if rec["action"] == "attrs.append")
    assert [a.rsplit("/", 1)[-1] for a in append["detail"]["attrs"]] == ["owner"]


def test_failed_write_is_not_audited(hub: Any) -> None:
    key = hub.services.keys.create("operator")
    actor = "key:" + key.split("_")[1]

    def mine() -> list[Any]:
        # background jobs (e.g. the registry sync) may audit their own work meanwhile
        return [r for r in hub.services.store.audit_log("default", 100) if r["actor"] == actor]

    before = len(mine())
    r = hub.post(f"{B}/entities", json={"id": "bad", "type": "Car"}, headers=bearer(key))
    assert r.status_code == 400
    ok = hub.post(f"{B}/entities", json={"id": "urn:ngsi-ld:Car:ok", "type": "Car"},
                  headers=bearer(key))
    assert ok.status_code == 201
    assert len(mine()) == before + 1  # the good write is audited, the bad one is not
