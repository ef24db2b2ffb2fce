"""Purpose-bound reads: sensitive attributes only for keys with an allowed purpose, on every
read path (entity, queries, batch query, temporal, notifications), each such read audited."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
DC = "https://uri.etsi.org/ngsi-ld/default-context/"
H1 = "urn:ngsi-ld:CareHousehold:1"
SENSITIVE = {"careLevel", "healthConditions", "livesAlone"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


@pytest.fixture
def hub(store_url: str, tmp_path: Path) -> Iterator[Any]:
    settings = make_settings(store_url, tmp_path, auth_enabled=True, trust_jobs=False,
                             secrets_dir=tmp_path / "secrets")
    with app_client(settings) as c:
        svc = c.services
        keys = svc.keys
        c.k = {  # type: ignore[attr-defined]
            "admin": bearer(keys.create("admin")),
            "operator": bearer(keys.create("operator")),
            "reader": bearer(keys.create("reader")),
            "care": bearer(keys.create("reader", purposes=["care"])),
            "care_op": bearer(keys.create("operator", purposes=["care", "x-other"])),
            "traffic": bearer(keys.create("operator", purposes=["traffic-operations"])),
        }
        for n, level in ((1, 3), (2, 1)):
            r = c.post(f"{B}/entities", headers=c.k["admin"], json={
                "id": f"urn:ngsi-ld:CareHousehold:{n}", "type": "CareHousehold",
                "residentName": prop(f"주민{n}"), "status": prop("enrolled"),
                "careLevel": prop(level, observedAt="2024-05-01T00:00:00Z"),
                "healthConditions": prop("dementia"), "livesAlone": prop(True)})
            assert r.status_code == 201, r.text
        yield c


def reads(hub: Any) -> list[dict[str, Any]]:
    return [a for a in hub.services.store.audit_log("default", 500)
            if a["action"] == "privacy.read"]


def test_get_entity_is_purpose_bound(hub: Any) -> None:
    for who in ("reader", "operator", "admin", "traffic"):
        body = hub.get(f"{B}/entities/{H1}", headers=hub.k[who]).json()
        assert not (SENSITIVE & body.keys()), who
        assert body["status"]["value"] == "enrolled"
        assert body["residentName"]["value"].startswith("urn:maeul:pseudonym:")
    assert reads(hub) == []

    body = hub.get(f"{B}/entities/{H1}", headers=hub.k["care"]).json()
    assert SENSITIVE <= body.keys() and body["careLevel"]["value"] == 3
    rec = reads(hub)
    assert len(rec) == 1
    assert rec[0]["target"] == H1 and rec[0]["actor"].startswith("key:")
    assert rec[0]["detail"] == {"purpose": "care",
                                "attrs": sorted(DC + a for a in SENSITIVE)}
    assert "dementia" not in json.dumps(rec, ensure_ascii=False)  # names, never values

    # a read of public attributes only is not a sensitive read
    hub.get(f"{B}/entities/{H1}", params={"attrs": "status"}, headers=hub.k["care"])
    hub.get(f"{B}/entities/{H1}", params={"omit": "careLevel,healthConditions,livesAlone"},
            headers=hub.k["care"])
    assert len(reads(hub)) == 1
    # keyValues and pick count: what is shown is recorded
    body = hub.get(f"{B}/entities/{H1}", params={"format": "keyValues", "pick": "id,careLevel"},
                   headers=hub.k["care_op"]).json()
    assert body == {"id": H1, "careLevel": 3}
    assert reads(hub)[0]["detail"] == {"purpose": "care", "attrs": [DC + "careLevel"]}


def test_explicit_request_for_sensitive_attributes(hub: Any) -> None:
    # only sensitive attributes asked: 403 naming why; mixed: the entity without them
    r = hub.get(f"{B}/entities/{H1}", params={"attrs": "careLevel"}, headers=hub.k["reader"])
    assert r.status_code == 403 and "purposes" in r.json()["detail"]
    r = hub.get(f"{B}/entities/{H1}", params={"attrs": "careLevel,healthConditions"},
                headers=hub.k["admin"])
    assert r.status_code == 403
    r = hub.get(f"{B}/entities/{H1}", params={"attrs": "careLevel,status"},
                headers=hub.k["reader"])
    assert r.status_code == 200 and set(r.json()) == {"id", "type", "status"}
    # an attribute that does not exist stays a 404
    r = hub.get(f"{B}/entities/{H1}", params={"attrs": "nothing"}, headers=hub.k["reader"])
    assert r.status_code == 404
    r = hub.get(f"{B}/entities/{H1}", params={"attrs": "careLevel"}, headers=hub.k["care"])
    assert r.status_code == 200 and r.json()["careLevel"]["value"] == 3
    assert reads(hub) and reads(hub)[0]["detail"]["attrs"] == [DC + "careLevel"]


def test_anonymous_sees_neither_sensitive_nor_personal(hub: Any) -> None:
    hub.services.keys.set_public_types("default", [DC + "CareHousehold"], "test")
    body = hub.get(f"{B}/entities/{H1}").json()
    assert set(body) == {"id", "type", "status"}


def test_queries_run_on_what_the_caller_may_see(hub: Any) -> None:
    rows = hub.get(f"{B}/entities", params={"type": "CareHousehold"},
                   headers=hub.k["reader"]).json()
    assert len(rows) == 2 and all(not (SENSITIVE & r.keys()) for r in rows)
    # q over a hidden attribute cannot probe its values
    for q in ("careLevel>2", "healthConditions==\"dementia\"", "livesAlone==true"):
        r = hub.get(f"{B}/entities", params={"type": "CareHousehold", "q": q},
                    headers=hub.k["operator"])
        assert r.status_code == 200 and r.json() == [], q
    r = hub.get(f"{B}/entities", params={"type": "CareHousehold", "attrs": "careLevel"},
                headers=hub.k["reader"])
    assert r.status_code == 403
    r = hub.get(f"{B}/entities", params={"q": "careLevel>2"}, headers=hub.k["reader"])
    assert r.json() == []
    post = {"type": "Query", "entities": [{"type": "CareHousehold"}], "q": "careLevel>0"}
    assert hub.post(f"{B}/entityOperations/query", json=post,
                    headers=hub.k["reader"]).json() == []
    assert reads(hub) == []

    rows = hub.get(f"{B}/entities", params={"type": "CareHousehold", "q": "careLevel>2"},
                   headers=hub.k["care"]).json()
    assert [r["id"] for r in rows] == [H1] and rows[0]["careLevel"]["value"] == 3
    post["q"] = "careLevel>0"
    rows = hub.post(f"{B}/entityOperations/query", json=post, headers=hub.k["care"]).json()
    assert len(rows) == 2
    assert [a["target"] for a in reads(hub)].count(H1) == 2  # one record per entity shown
    assert len(reads(hub)) == 3
    # count only: nothing shown, nothing recorded
    hub.get(f"{B}/entities", params={"type": "CareHousehold", "limit": 0, "count": "true"},
            headers=hub.k["care"])
    assert len(reads(hub)) == 3


def test_temporal_reads_are_purpose_bound(hub: Any) -> None:
    r = hub.get(f"{B}/temporal/entities/{H1}", headers=hub.k["operator"])
    assert r.status_code == 200 and not (SENSITIVE & r.json().keys())
    assert "status" in r.json()
    r = hub.get(f"{B}/temporal/entities/{H1}", params={"attrs": "careLevel"},
                headers=hub.k["reader"])
    assert r.status_code == 403
    rows = hub.get(f"{B}/temporal/entities", params={"type": "CareHousehold"},
                   headers=hub.k["reader"]).json()
    assert len(rows) == 2 and all(not (SENSITIVE & r.keys()) for r in rows)
    rows = hub.get(f"{B}/temporal/entities", params={"type": "CareHousehold", "attrs": "careLevel"},
                   headers=hub.k["reader"]).json()
    assert rows == []
    assert reads(hub) == []

    r = hub.get(f"{B}/temporal/entities/{H1}", params={"attrs": "careLevel"},
                headers=hub.k["care"])
    assert r.json()["careLevel"][0]["value"] == 3
    r = hub.get(f"{B}/temporal/entities", headers=hub.k["care"], params={
        "type": "CareHousehold", "attrs": "careLevel", "format": "aggregatedValues",
        "aggrMethods": "max"})
    assert sorted(e["careLevel"]["max"][0][0] for e in r.json()) == [1, 3]
    assert len(reads(hub)) == 3


class Receiver:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec.got.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/n"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def by(self, sid: str) -> list[dict[str, Any]]:
        return [n for n in self.got if n["subscriptionId"] == sid]

    def wait(self, sid: str, n: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while len(self.by(sid)) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.by(sid)) >= n, self.got
        return self.by(sid)


def _subscribe(hub: Any, who: str, url: str, **extra: Any) -> str:
    r = hub.post(f"{B}/subscriptions", headers=hub.k[who], json={
        "type": "Subscription", "entities": [{"type": "CareHousehold"}],
        "notification": {"endpoint": {"uri": url}}, **extra})
    assert r.status_code == 201, r.text
    return str(r.headers["Location"].rsplit("/", 1)[1])


def test_notifications_show_what_the_subscriber_may_see(hub: Any) -> None:
    rec = Receiver()
    try:
        plain = _subscribe(hub, "operator", rec.url)
        probe = _subscribe(hub, "operator", rec.url, q="careLevel>2")
        care = _subscribe(hub, "care_op", rec.url)
        shown = hub.get(f"{B}/subscriptions/{care}", headers=hub.k["care_op"]).json()
        assert not any(k.startswith("_") for k in shown)  # the creator's purposes stay inside

        hub.patch(f"{B}/entities/{H1}/attrs", headers=hub.k["admin"],
                  json={"status": prop("visited"), "careLevel": prop(4)})
        n_plain = rec.wait(plain, 1)[0]["data"][0]
        n_care = rec.wait(care, 1)[0]["data"][0]
        assert n_plain["status"]["value"] == "visited" and "careLevel" not in n_plain
        assert n_care["careLevel"]["value"] == 4
        sub_reads = [a for a in reads(hub) if a["target"] == H1]
        assert len(sub_reads) == 1
        assert sub_reads[0]["detail"] == {"purpose": "care",
                                          "attrs": sorted(DC + a for a in SENSITIVE)}

        # a change of hidden attributes alone does not notify those who cannot see them
        hub.patch(f"{B}/entities/{H1}/attrs", headers=hub.k["admin"],
                  json={"careLevel": prop(5)})
        rec.wait(care, 2)
        time.sleep(0.5)
        assert len(rec.by(plain)) == 1
        assert rec.by(probe) == []  # q on a hidden attribute never matches

        # an update by a key without the purpose narrows the subscription for good
        r = hub.patch(f"{B}/subscriptions/{care}", headers=hub.k["operator"],
                      json={"description": "taken over"})
        assert r.status_code == 204
        hub.patch(f"{B}/entities/{H1}/attrs", headers=hub.k["admin"],
                  json={"status": prop("moved"), "careLevel": prop(2)})
        last = rec.wait(care, 3)[-1]["data"][0]
        assert last["status"]["value"] == "moved" and "careLevel" not in last
    finally:
        rec.srv.shutdown()
        rec.srv.server_close()


def test_without_auth_sensitive_attributes_stay_hidden(store_url: str, tmp_path: Path) -> None:
    from maeul.hub.app import Services
    from maeul.hub.server import build_app

    settings = make_settings(store_url, tmp_path, trust_jobs=False,
                             secrets_dir=tmp_path / "secrets")
    svc = Services(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        with TestClient(build_app(settings, svc)) as c:
            c.post(f"{B}/entities", json={"id": H1, "type": "CareHousehold",
                                          "careLevel": prop(2), "status": prop("ok")})
            assert set(c.get(f"{B}/entities/{H1}").json()) == {"id", "type", "status"}
    # in-process services are trusted code and see everything
    assert DC + "careLevel" in svc.hub.get_entity("default", H1)["attrs"]
    svc.close()
