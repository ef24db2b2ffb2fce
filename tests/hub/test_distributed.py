"""Distributed operations: a hub forwards entity requests that match a context source
registration to a second, real maeul server (uvicorn on a free port) and merges the answers;
sources that are down, slow, answer garbage or errors give a warning, never a failure;
Via stops loops; on every store backend for the hub under test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import make_settings, threaded_server

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
R = f"{B}/csourceRegistrations"
E1 = "urn:ngsi-ld:Vehicle:1"
E2 = "urn:ngsi-ld:Vehicle:2"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second maeul hub, served over real HTTP: the context source."""
    import warnings

    from starlette.testclient import TestClient

    from maeul.hub.server import build_app

    d = tmp_path_factory.mktemp("remote")
    app = build_app(make_settings(f"sqlite:///{d}/remote.db", d))
    with threaded_server(app) as base, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with TestClient(app) as direct:
            direct.base = base  # type: ignore[attr-defined]
            yield direct


@pytest.fixture(autouse=True)
def clean_remote(remote: Any) -> Iterator[None]:
    yield
    for e in remote.get(f"{B}/entities", params={"type": "Vehicle", "local": "true"}).json():
        remote.delete(f"{B}/entities/{e['id']}")


class Stub:
    """A context source on 127.0.0.1 that answers every request with a fixed reply (after
    an optional delay) and records what it got."""

    def __init__(self, status: int = 200, body: bytes = b"[]", delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                stub.requests.append({"method": self.command, "path": self.path,
                                      "headers": dict(self.headers),
                                      "body": self.rfile.read(n)})
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def reg(endpoint: str, n: int = 1, mode: str = "inclusive", ids: tuple[str, ...] = (),
        attrs: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    ents: list[dict[str, Any]] = [{"type": "Vehicle", "id": i} for i in ids] or [
        {"type": "Vehicle"}]
    info: dict[str, Any] = {"entities": ents}
    if attrs:
        info["propertyNames"] = list(attrs)
    body = {"id": f"urn:ngsi-ld:ContextSourceRegistration:{n}",
            "type": "ContextSourceRegistration", "information": [info],
            "endpoint": endpoint, "mode": mode}
    body.update(extra)
    return body


def register(client: Any, body: dict[str, Any]) -> None:
    r = client.post(R, json=body)
    assert r.status_code == 201, r.text


def vehicle(eid: str, **attrs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": eid, "type": "Vehicle"}
    for k, v in attrs.items():
        out[k] = v if isinstance(v, dict) else {"type": "Property", "value": v}
    return out


def test_no_registration_stays_local(client: Any, remote: Any) -> None:
    assert client.post(f"{B}/entities", json=vehicle(E1, speed=1)).status_code == 201
    r = client.get(f"{B}/entities", params={"type": "Vehicle"})
    assert [e["id"] for e in r.json()] == [E1]
    assert "NGSILD-Warning" not in r.headers


def test_inclusive_retrieve_and_query_merge(client: Any, remote: Any) -> None:
    remote.post(f"{B}/entities", json=vehicle(E1, brand="x", speed={
        "type": "Property", "value": 9, "observedAt": "2030-01-01T00:00:00Z"}))
    remote.post(f"{B}/entities", json=vehicle(E2, brand="remote-only"))
    client.post(f"{B}/entities", json=vehicle(E1, colour="red", speed={
        "type": "Property", "value": 1, "observedAt": "2020-01-01T00:00:00Z"}))
    register(client, reg(remote.base))
    got = client.get(f"{B}/entities/{E1}").json()
    assert got["colour"]["value"] == "red" and got["brand"]["value"] == "x"
    assert got["speed"]["value"] == 9  # the more recent observation wins
    only_remote = client.get(f"{B}/entities/{E2}")
    assert only_remote.status_code == 200 and only_remote.json()["brand"]["value"] == (
        "remote-only")
    ids = sorted(e["id"] for e in client.get(f"{B}/entities", params={"type": "Vehicle"}).json())
    assert ids == [E1, E2]
    local = client.get(f"{B}/entities", params={"type": "Vehicle", "local": "true"}).json()
    assert [e["id"] for e in local] == [E1]
    assert client.get(f"{B}/entities/{E2}", params={"local": "true"}).status_code == 404
    q = client.post(f"{B}/entityOperations/query",
                    json={"type": "Query", "entities": [{"type": "Vehicle"}]})
    assert sorted(e["id"] for e in q.json()) == [E1, E2]
    bad = client.get(f"{B}/entities", params={"type": "Vehicle", "orderBy": "speed"})
    assert bad.status_code == 400
    # the cache sees the deletion: nothing is forwarded any more
    client.delete(f"{R}/urn:ngsi-ld:ContextSourceRegistration:1")
    assert client.get(f"{B}/entities/{E2}").status_code == 404


def test_exclusive_attributes_live_at_the_source(client: Any, remote: Any) -> None:
    client.post(f"{B}/entities", json=vehicle(E1, brand="local"))
    remote.post(f"{B}/entities", json=vehicle(E1, speed=5))
    register(client, reg(remote.base, mode="exclusive", ids=(E1,), attrs=("speed",),
                         operations=["redirectionOps"]))
    r = client.patch(f"{B}/entities/{E1}/attrs", json={
        "speed": {"type": "Property", "value": 70}, "brand": {"type": "Property",
                                                              "value": "new"}})
    assert r.status_code == 204, r.text
    assert remote.get(f"{B}/entities/{E1}").json()["speed"]["value"] == 70
    local = client.get(f"{B}/entities/{E1}", params={"local": "true"}).json()
    assert "speed" not in local and local["brand"]["value"] == "new"
    merged = client.get(f"{B}/entities/{E1}").json()
    assert merged["speed"]["value"] == 70 and merged["brand"]["value"] == "new"
    q = client.get(f"{B}/entities", params={"type": "Vehicle"}).json()
    assert q[0]["speed"]["value"] == 70


def test_writes_forwarded_per_mode(client: Any, remote: Any) -> None:
    register(client, reg(remote.base, ids=(E1, E2), operations=["redirectionOps",
                                                                  "createBatch"]))
    assert client.post(f"{B}/entities", json=vehicle(E1, speed=1)).status_code == 201
    assert remote.get(f"{B}/entities/{E1}").status_code == 200
    assert client.get(f"{B}/entities/{E1}", params={"local": "true"}).status_code == 200
    assert client.post(f"{B}/entities/{E1}/attrs", json={
        "brand": {"type": "Property", "value": "b"}}).status_code == 204
    assert remote.get(f"{B}/entities/{E1}").json()["brand"]["value"] == "b"
    r = client.post(f"{B}/entityOperations/create", json=[vehicle(E2, speed=2)])
    assert r.status_code == 201 and r.json() == [E2]
    assert remote.get(f"{B}/entities/{E2}").status_code == 200
    assert client.delete(f"{B}/entities/{E1}").status_code == 204
    assert remote.get(f"{B}/entities/{E1}").status_code == 404


def test_redirect_writes_go_to_the_source_only(client: Any, remote: Any) -> None:
    register(client, reg(remote.base, mode="redirect", ids=(E1,),
                         operations=["redirectionOps"]))
    assert client.post(f"{B}/entities", json=vehicle(E1, speed=1)).status_code == 201
    assert remote.get(f"{B}/entities/{E1}").status_code == 200
    assert client.get(f"{B}/entities/{E1}", params={"local": "true"}).status_code == 404
    assert client.get(f"{B}/entities/{E1}").json()["speed"]["value"] == 1


def test_unsupported_operation_is_a_partial_success(client: Any, remote: Any) -> None:
    client.post(f"{B}/entities", json=vehicle(E1, brand="b"))
    register(client, reg(remote.base, mode="exclusive", ids=(E1,), attrs=("speed",),
                         operations=["queryEntity"]))
    r = client.delete(f"{B}/entities/{E1}")
    assert r.status_code == 207, r.text
    assert client.get(f"{B}/entities/{E1}", params={"local": "true"}).status_code == 404


@pytest.mark.parametrize("case", ["down", "slow", "garbage", "error"])
def test_failing_source_gives_a_warning(client: Any, case: str) -> None:
    client.post(f"{B}/entities", json=vehicle(E1, brand="b"))
    stub = None
    extra: dict[str, Any] = {}
    if case == "down":
        probe = Stub()
        url = probe.url
        probe.stop()
    else:
        stub = Stub(**{"slow": {"delay": 2.0}, "garbage": {"body": b"<html>nope"},
                       "error": {"status": 500, "body": b"{}"}}[case])
        url = stub.url
        if case == "slow":
            extra["management"] = {"timeout": 300}
    try:
        register(client, reg(url, **extra))
        t0 = time.monotonic()
        r = client.get(f"{B}/entities", params={"type": "Vehicle"})
        assert time.monotonic() - t0 < 1.9
        assert r.status_code == 200 and [e["id"] for e in r.json()] == [E1]
        assert r.headers["NGSILD-Warning"].startswith("299" if case == "error" else "111")
        one = client.get(f"{B}/entities/{E1}")
        assert one.status_code == 200 and "NGSILD-Warning" in one.headers
        missing = client.get(f"{B}/entities/{E2}")
        assert missing.status_code == 404
    finally:
        if stub is not None:
            stub.stop()


def test_forwarded_request_headers(client: Any) -> None:
    body = json.dumps(vehicle(E1, speed=3)).encode()
    stub = Stub(body=body)
    try:
        register(client, reg(stub.url, tenant="city", localOnly=True, contextSourceInfo=[
            {"key": "X-Api", "value": "k"}, {"key": "Via", "value": "1.1 evil"},
            {"key": "X-User", "value": "urn:ngsi-ld:request"}]))
        r = client.get(f"{B}/entities/{E1}", headers={"X-User": "ann"})
        assert r.status_code == 200 and r.json()["speed"]["value"] == 3
        got = stub.requests[-1]
        h = {k.lower(): v for k, v in got["headers"].items()}
        assert h["ngsild-tenant"] == "city" and h["x-api"] == "k" and h["x-user"] == "ann"
        assert "evil" not in h["via"] and h["via"].startswith("1.1 maeul-")
        assert "local=true" in got["path"]
        # a request that already went through this broker is not forwarded again
        n = len(stub.requests)
        r = client.get(f"{B}/entities", params={"type": "Vehicle"}, headers={"Via": h["via"]})
        assert r.status_code == 200 and len(stub.requests) == n
    finally:
        stub.stop()


def test_loop_on_redirect_write_is_508(client: Any, remote: Any) -> None:
    register(client, reg(remote.base, mode="redirect", ids=(E1,),
                         operations=["redirectionOps"]))
    via = f"1.1 {client.services.distributor.via_id}"
    r = client.delete(f"{B}/entities/{E1}", headers={"Via": via})
    assert r.status_code == 508


def test_two_hubs_registered_on_each_other_do_not_loop(remote: Any, tmp_path: Path) -> None:
    import httpx

    from maeul.hub.server import build_app

    app = build_app(make_settings(f"sqlite:///{tmp_path}/a.db", tmp_path))
    with threaded_server(app) as base_a:
        register(remote, reg(base_a, n=77))
        try:
            with httpx.Client(base_url=base_a, timeout=10) as a:
                register(a, reg(remote.base))
                a.post(f"{B}/entities", json=vehicle(E1, speed=1))
                remote.post(f"{B}/entities", json=vehicle(E2, speed=2),
                            params={"local": "true"})
                r = a.get(f"{B}/entities", params={"type": "Vehicle"})
                assert r.status_code == 200
                assert sorted(e["id"] for e in r.json()) == [E1, E2]
                assert "NGSILD-Warning" not in r.headers
        finally:
            remote.delete(f"{R}/urn:ngsi-ld:ContextSourceRegistration:77")


def test_exclusive_batch_splits_attributes(client: Any, remote: Any) -> None:
    register(client, reg(remote.base, mode="exclusive", ids=(E1, E2), attrs=("speed",),
                         operations=["redirectionOps", "upsertBatch", "deleteBatch"]))
    r = client.post(f"{B}/entityOperations/upsert",
                    json=[vehicle(E1, speed=1, brand="a"), vehicle(E2, speed=2, brand="b")])
    assert r.status_code == 201, r.text
    assert remote.get(f"{B}/entities/{E1}").json().get("brand") is None
    assert remote.get(f"{B}/entities/{E2}").json()["speed"]["value"] == 2
    local = client.get(f"{B}/entities/{E2}", params={"local": "true"}).json()
    assert "speed" not in local and local["brand"]["value"] == "b"
    r = client.post(f"{B}/entityOperations/delete", json=[E1, E2])
    assert r.status_code == 204, r.text
    assert remote.get(f"{B}/entities/{E1}").status_code == 404
    assert client.get(f"{B}/entities/{E1}", params={"local": "true"}).status_code == 404


def test_batch_with_a_failing_source_is_207(client: Any) -> None:
    stub = Stub(status=500, body=b"{}")
    try:
        register(client, reg(stub.url, ids=(E1,), operations=["createBatch"]))
        r = client.post(f"{B}/entityOperations/create", json=[vehicle(E1, speed=1),
                                                              vehicle(E2, speed=2)])
        assert r.status_code == 207, r.text
        body = r.json()
        assert sorted(body["success"]) == [E2]
        assert [e["entityId"] for e in body["errors"]] == [E1]
        assert r.headers["NGSILD-Warning"].startswith("299")
    finally:
        stub.stop()


def test_purge_is_forwarded(client: Any, remote: Any) -> None:
    remote.post(f"{B}/entities", json=vehicle(E2, speed=2))
    client.post(f"{B}/entities", json=vehicle(E1, speed=1))
    register(client, reg(remote.base, operations=["redirectionOps"]))
    r = client.delete(f"{B}/entities", params={"type": "Vehicle"})
    assert r.status_code == 204, r.text
    assert remote.get(f"{B}/entities/{E2}").status_code == 404
    assert client.get(f"{B}/entities/{E1}", params={"local": "true"}).status_code == 404


def test_csf_and_query_batch(client: Any, remote: Any) -> None:
    remote.post(f"{B}/entities", json=vehicle(E2, speed=2))
    register(client, reg(remote.base, operations=["queryBatch"], sourceType="sensor"))
    q = {"type": "Query", "entities": [{"type": "Vehicle"}]}
    assert [e["id"] for e in client.post(f"{B}/entityOperations/query", json=q).json()] == [
        E2]
    # queryBatch alone does not serve GET queries
    assert client.get(f"{B}/entities", params={"type": "Vehicle"}).json() == []
    gated = client.post(f"{B}/entityOperations/query", json={**q, "csf": 'sourceType=="x"'})
    assert gated.json() == []
    kept = client.post(f"{B}/entityOperations/query",
                       json={**q, "csf": 'sourceType=="sensor"'})
    assert [e["id"] for e in kept.json()] == [E2]


def test_jsonld_context_steering_recompacts(client: Any) -> None:
    vocab = "https://example.org/v#"
    ctx_doc = json.dumps({"@context": {"velocity": f"{vocab}speed"}}).encode()
    ctx_srv = Stub(body=ctx_doc)
    stub = Stub(status=201, body=b"")
    try:
        target = f"{ctx_srv.url}/ctx.jsonld"
        register(client, reg(stub.url, ids=(E1,), operations=["createEntity"],
                             contextSourceInfo=[{"key": "jsonldContext", "value": target}]))
        body = {**vehicle(E1, speed=1), "@context": [{"speed": f"{vocab}speed"}]}
        r = client.post(f"{B}/entities", json=body,
                        headers={"Content-Type": "application/ld+json"})
        assert r.status_code == 201, r.text
        got = stub.requests[-1]
        sent = json.loads(got["body"])
        assert "velocity" in sent and "speed" not in sent and "@context" not in sent
        h = {k.lower(): v for k, v in got["headers"].items()}
        assert h["content-type"] == "application/json" and target in h["link"]
    finally:
        stub.stop()
        ctx_srv.stop()


def test_oversized_answer_is_not_incorporated(client: Any, monkeypatch: Any) -> None:
    from maeul.hub import distributed

    monkeypatch.setattr(distributed, "MAX_ANSWER_BYTES", 200)
    stub = Stub(body=json.dumps([vehicle(E2, brand="x" * 500)]).encode())
    try:
        register(client, reg(stub.url))
        r = client.get(f"{B}/entities", params={"type": "Vehicle"})
        assert r.status_code == 200 and r.json() == []
        assert r.headers["NGSILD-Warning"].startswith("111")
    finally:
        stub.stop()


def test_types_and_attributes_include_sources(client: Any, remote: Any) -> None:
    client.post(f"{B}/entities", json={"id": "urn:ngsi-ld:Shop:1", "type": "Shop",
                                       "name": {"type": "Property", "value": "s"}})
    remote.post(f"{B}/entities", json=vehicle(E2, speed=2))
    register(client, reg(remote.base))
    assert {"Shop", "Vehicle"} <= set(client.get(f"{B}/types").json()["typeList"])
    local = client.get(f"{B}/types", params={"local": "true"}).json()["typeList"]
    assert "Shop" in local and "Vehicle" not in local
    assert {"name", "speed"} <= set(client.get(f"{B}/attributes").json()["attributeList"])
    info = client.get(f"{B}/types/Vehicle")
    assert info.status_code == 200 and info.json()["entityCount"] == 1
    details = client.get(f"{B}/types", params={"details": "true"}).json()
    assert {"Shop", "Vehicle"} <= {d["typeName"] for d in details}
    assert client.get(f"{B}/attributes/speed").json()["attributeName"] == "speed"


def test_auxiliary_only_fills_in(client: Any, remote: Any) -> None:
    client.post(f"{B}/entities", json=vehicle(E1, speed={
        "type": "Property", "value": 1, "observedAt": "2020-01-01T00:00:00Z"}))
    remote.post(f"{B}/entities", json=vehicle(E1, brand="aux", speed={
        "type": "Property", "value": 9, "observedAt": "2030-01-01T00:00:00Z"}))
    register(client, reg(remote.base, mode="auxiliary"))
    got = client.get(f"{B}/entities/{E1}").json()
    assert got["speed"]["value"] == 1 and got["brand"]["value"] == "aux"
    q = client.get(f"{B}/entities", params={"type": "Vehicle"}).json()
    assert q[0]["speed"]["value"] == 1 and q[0]["brand"]["value"] == "aux"
    # writes never go to an auxiliary source
    client.patch(f"{B}/entities/{E1}/attrs", json={"speed": {"type": "Property",
                                                             "value": 5}})
    assert remote.get(f"{B}/entities/{E1}").json()["speed"]["value"] == 9
