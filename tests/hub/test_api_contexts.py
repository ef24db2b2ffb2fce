"""@context management, /ngsi-ld/v1/jsonldContexts (ETSI GS CIM 009 v1.8, 5.13): Hosted,
Cached and ImplicitlyCreated @contexts, over HTTP, on every store backend."""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from test_api_subscriptions import Receiver, sub

from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
C = f"{B}/jsonldContexts"
CORE_V16 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
CORE_V18 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CAR_CTX = {"Car": "https://example.org/vocab#Car", "speed": "https://example.org/vocab#speed"}


def problem(r: Any, status: int = 400, name: str = "BadRequestData") -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{name}", body
    assert body["title"] and body["detail"] and body["title"] != body["detail"]
    return str(body["detail"])


def add(client: Any, context: Any = None, **headers: str) -> str:
    """Add a Hosted @context; its localId."""
    r = client.post(C, json={"@context": CAR_CTX if context is None else context},
                    headers=headers)
    assert r.status_code == 201, r.text
    assert r.content == b""
    loc = r.headers["location"]
    assert loc.startswith(f"{C}/")
    return str(loc.rsplit("/", 1)[1])


def details(client: Any, cid: str, **headers: str) -> dict[str, Any]:
    r = client.get(f"{C}/{quote(cid, safe='')}", params={"details": "true"}, headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


class ContextServer:
    """Serves one @context document at http://127.0.0.1:<port>/ctx.jsonld."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.hits = 0
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                srv.hits += 1
                body = json.dumps(srv.doc).encode()
                self.send_response(200 if self.path == "/ctx.jsonld" else 404)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/ctx.jsonld"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def ctx_server() -> Iterator[ContextServer]:
    s = ContextServer({"@context": CAR_CTX})
    yield s
    s.stop()


# -- Hosted ------------------------------------------------------------------------------------


def test_add_serve_list_delete(client: Any) -> None:
    lid = add(client)
    r = client.get(f"{C}/{lid}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"@context": CAR_CTX}
    r = client.get(f"{C}/{lid}", headers={"Accept": "application/ld+json"})
    assert r.headers["content-type"] == "application/ld+json"
    url = f"http://testserver{C}/{lid}"
    d = details(client, lid)
    assert d["URL"] == url and d["localId"] == lid and d["kind"] == "Hosted"
    assert d["createdAt"].endswith("Z") and d["numberOfHits"] == 0 and "lastUsage" not in d
    assert set(d) <= {"URL", "localId", "kind", "createdAt", "lastUsage", "numberOfHits"}
    # the entry can also be named by its URL
    assert details(client, url)["localId"] == lid

    listed = client.get(C).json()
    assert url in listed and CORE_V18 in listed
    hosted = client.get(C, params={"kind": "Hosted", "details": "true"}).json()
    assert [h["localId"] for h in hosted] == [lid]
    assert client.get(C, params={"kind": "Hosted", "details": "false"}).json() == [url]
    assert url not in client.get(C, params={"kind": "Cached"}).json()
    assert client.get(C, params={"kind": "ImplicitlyCreated"}).json() == []

    r = client.delete(f"{C}/{lid}")
    assert r.status_code == 204 and r.content == b""
    problem(client.get(f"{C}/{lid}"), 404, "ResourceNotFound")
    problem(client.delete(f"{C}/{lid}"), 404, "ResourceNotFound")
    assert client.get(C, params={"kind": "Hosted"}).json() == []


def test_hosted_context_resolves_without_network(client: Any) -> None:
    lid = add(client)
    # a relative reference, this hub's URL and another host: all resolved from the store
    for n, ref in enumerate((f"{C}/{lid}", f"http://testserver{C}/{lid}",
                             f"https://broker.invalid{C}/{lid}")):
        r = client.post(f"{B}/entities", headers={"Content-Type": "application/ld+json"},
                        json={"id": f"urn:ngsi-ld:Car:{n}", "type": "Car",
                              "speed": {"type": "Property", "value": n}, "@context": ref})
        assert r.status_code == 201, r.text
    ent = client.get(f"{B}/entities/urn:ngsi-ld:Car:2").json()
    assert ent["type"] == "https://example.org/vocab#Car"
    assert ent["https://example.org/vocab#speed"]["value"] == 2
    link = f'<{C}/{lid}>; rel="http://www.w3.org/ns/json-ld#context"'
    ent = client.get(f"{B}/entities/urn:ngsi-ld:Car:1", headers={"Link": link}).json()
    assert ent["type"] == "Car" and ent["speed"]["value"] == 1
    d = details(client, lid)
    assert d["numberOfHits"] == 4 and d["lastUsage"].endswith("Z")
    # once deleted, its URL no longer resolves (here: nothing else could serve it)
    assert client.delete(f"{C}/{lid}").status_code == 204
    r = client.get(f"{B}/entities/urn:ngsi-ld:Car:1", headers={"Link": link})
    problem(r, 503, "LdContextNotAvailable")


def test_hosted_context_may_name_other_contexts(client: Any) -> None:
    first = add(client)
    second = add(client, [f"{C}/{first}", {"brand": "https://example.org/vocab#brand"}])
    r = client.post(f"{B}/entities", headers={"Content-Type": "application/ld+json"},
                    json={"id": "urn:ngsi-ld:Car:1", "type": "Car", "@context": f"{C}/{second}",
                          "brand": {"type": "Property", "value": "K"}})
    assert r.status_code == 201, r.text
    ent = client.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()
    assert ent["type"] == "https://example.org/vocab#Car"
    assert "https://example.org/vocab#brand" in ent
    assert details(client, first)["numberOfHits"] == 1


def test_hosted_contexts_survive_a_restart(store_url: str, tmp_path: Path) -> None:
    settings = make_settings(store_url, tmp_path, context_fetch=False)
    with app_client(settings) as c:
        lid = add(c)
        created = details(c, lid)["createdAt"]
    with app_client(settings) as c:
        assert c.get(f"{C}/{lid}").json() == {"@context": CAR_CTX}
        assert details(c, lid)["createdAt"] == created
        link = f'<http://testserver{C}/{lid}>; rel="http://www.w3.org/ns/json-ld#context"'
        r = c.post(f"{B}/entities", headers={"Link": link},
                   json={"id": "urn:ngsi-ld:Car:1", "type": "Car"})
        assert r.status_code == 201, r.text
        assert c.get(f"{B}/entities/urn:ngsi-ld:Car:1").json()["type"].startswith("https://")


def test_tenants_do_not_see_each_others_contexts(client: Any) -> None:
    a, b = {"NGSILD-Tenant": "ta"}, {"NGSILD-Tenant": "tb"}
    lid = add(client, **a)
    problem(client.get(f"{C}/{lid}", headers=b), 404, "ResourceNotFound")
    problem(client.get(f"{C}/{lid}", params={"details": "true"}, headers=b), 404,
            "ResourceNotFound")
    assert lid not in client.get(C, params={"details": "true"}, headers=b).text
    assert lid not in client.get(C).text  # the default tenant neither
    problem(client.delete(f"{C}/{lid}", headers=b), 404, "ResourceNotFound")
    assert client.get(f"{C}/{lid}", headers=a).status_code == 200
    assert client.delete(f"{C}/{lid}", headers=a).status_code == 204


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body,name", [
    (b"{not json", "InvalidRequest"),
    (b"[1, 2]", "InvalidRequest"),
    (b'"text"', "InvalidRequest"),
    (b"", "InvalidRequest"),
    (b'{"A1": "urn:a:A1"}', "InvalidRequest"),
    (b'{"@context": 42}', "BadRequestData"),
    (b'{"@context": true}', "BadRequestData"),
    (b'{"@context": null}', "BadRequestData"),
    (b'{"@context": ["https://example.org/ctx.jsonld", 7]}', "BadRequestData"),
    (b'{"@context": [""]}', "BadRequestData"),
    (b'{"@context": {"A": 5}}', "BadRequestData"),
    (b'{"@context": "ftp://example.org/ctx"}', "BadRequestData"),
    (b'{"@context": {"A": "urn:a:A"}, "extra": 1}', "BadRequestData"),
], ids=range(13))
def test_bad_add_is_refused_and_stores_nothing(client: Any, body: bytes, name: str) -> None:
    r = client.post(C, content=body, headers={"Content-Type": "application/json"})
    problem(r, 400, name)
    assert "location" not in r.headers
    assert client.get(C, params={"kind": "Hosted"}).json() == []


def test_add_needs_json_and_a_bounded_body(client: Any) -> None:
    r = client.post(C, content=b'{"@context": {}}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text
    huge = {"@context": {f"t{i}": f"urn:a:{'x' * 100}{i}" for i in range(20_000)}}
    r = client.post(C, json=huge)
    assert r.status_code == 413, r.text
    # an unreachable context is not available: 503, nothing kept
    r = client.post(C, json={"@context": "http://127.0.0.1:9/none.jsonld"})
    problem(r, 503, "LdContextNotAvailable")
    assert client.get(C, params={"kind": "Hosted"}).json() == []
    assert add(client, {}) and add(client, [])  # empty contexts are valid


@pytest.mark.parametrize("params", [
    {"kind": "other"}, {"kind": ""}, {"details": "other"}, {"details": "true", "kind": "x"},
    {"details": "1", "kind": "Hosted"},
])
def test_bad_list_parameters(client: Any, params: dict[str, str]) -> None:
    problem(client.get(C, params=params))


def test_unknown_ids(client: Any) -> None:
    problem(client.get(f"{C}/1234567890123456"), 404, "ResourceNotFound")
    problem(client.get(f"{C}/1234567890123456", params={"details": "true"}), 404,
            "ResourceNotFound")
    problem(client.delete(f"{C}/wrong_id_context"), 404, "ResourceNotFound")
    problem(client.delete(f"{C}/wrong_id_context", params={"reload": "false"}), 404,
            "ResourceNotFound")
    problem(client.delete(f"{C}/wrong_id_context", params={"reload": "true"}))
    problem(client.delete(f"{C}/wrong_id_context", params={"reload": "xxx"}))
    problem(client.get(f"{C}/x", params={"details": "maybe"}))


# -- the core context and Cached ones ----------------------------------------------------------


def test_core_context(client: Any) -> None:
    from maeul.hub.ldcontext import load_core_context

    assert client.get(f"{C}/core").json() == load_core_context()
    for cid in ("core", CORE_V16, CORE_V18):
        d = details(client, cid)
        assert d["kind"] == "Cached" and d["URL"] == CORE_V18 and d["localId"] == "core"
        problem(client.delete(f"{C}/{quote(cid, safe='')}"))
        problem(client.delete(f"{C}/{quote(cid, safe='')}", params={"reload": "false"}))
    # nothing to download again: it is built in
    r = client.delete(f"{C}/{quote(CORE_V16, safe='')}", params={"reload": "true"})
    assert r.status_code == 204, r.text
    assert client.get(f"{C}/core").status_code == 200


def test_cached_context(client: Any, ctx_server: ContextServer) -> None:
    link = f'<{ctx_server.url}>; rel="http://www.w3.org/ns/json-ld#context"'
    assert ctx_server.url not in client.get(C).json()
    for n in (1, 2):
        r = client.post(f"{B}/entities", headers={"Link": link},
                        json={"id": f"urn:ngsi-ld:Car:{n}", "type": "Car"})
        assert r.status_code == 201, r.text
    assert ctx_server.hits == 1
    assert ctx_server.url in client.get(C, params={"kind": "Cached"}).json()
    d = details(client, ctx_server.url)
    assert d["kind"] == "Cached" and d["URL"] == ctx_server.url and d["numberOfHits"] == 2
    lid = hashlib.sha256(ctx_server.url.encode()).hexdigest()
    assert d["localId"] == lid and details(client, lid)["URL"] == ctx_server.url
    # its content is served by its origin, not here
    problem(client.get(f"{C}/{lid}"), 422, "OperationNotSupported")
    # a Cached @context cannot be reloaded as another kind, and a Hosted one not at all
    hosted = add(client)
    problem(client.delete(f"{C}/{hosted}", params={"reload": "true"}))

    ctx_server.doc = {"@context": {"Car": "https://example.org/v2#Car"}}
    r = client.delete(f"{C}/{lid}", params={"reload": "true"})
    assert r.status_code == 204, r.text
    assert ctx_server.hits == 2 and details(client, lid)["numberOfHits"] == 0
    client.post(f"{B}/entities", headers={"Link": link},
                json={"id": "urn:ngsi-ld:Car:3", "type": "Car"})
    assert client.get(f"{B}/entities/urn:ngsi-ld:Car:3").json()["type"] == (
        "https://example.org/v2#Car")

    # the origin is gone: the reload fails and the kept copy stays
    ctx_server.stop()
    r = client.delete(f"{C}/{quote(ctx_server.url, safe='')}", params={"reload": "true"})
    problem(r, 504, "LdContextNotAvailable")
    assert details(client, lid)["kind"] == "Cached"
    assert client.get(f"{B}/entities/urn:ngsi-ld:Car:3", headers={"Link": link}).json()[
        "type"] == "Car"

    cache_file = client.services.resolver.cache_path(ctx_server.url)
    assert cache_file.exists()
    assert client.delete(f"{C}/{quote(ctx_server.url, safe='')}").status_code == 204
    problem(client.get(f"{C}/{lid}", params={"details": "true"}), 404, "ResourceNotFound")
    assert not cache_file.exists()
    # the next use would download it again: the origin is gone
    r = client.get(f"{B}/entities/urn:ngsi-ld:Car:3", headers={"Link": link})
    problem(r, 503, "LdContextNotAvailable")


def test_urls_a_hosted_context_names_become_cached(client: Any,
                                                   ctx_server: ContextServer) -> None:
    add(client, [ctx_server.url])
    assert client.get(C, params={"kind": "Cached", "details": "true"}).json()[1]["URL"] == (
        ctx_server.url)


# -- ImplicitlyCreated -------------------------------------------------------------------------


def test_subscription_gets_an_implicit_context(client: Any) -> None:
    ctx = [{"Car": "https://example.org/vocab#Car"}, {"speed": "https://example.org/vocab#s"}]
    body = {**sub("http://127.0.0.1:9/notify"), "@context": ctx}
    ld = {"Content-Type": "application/ld+json"}
    r = client.post(f"{B}/subscriptions", json={**body, "id": "urn:ngsi-ld:Subscription:1"},
                    headers=ld)
    assert r.status_code == 201, r.text
    got = client.get(f"{B}/subscriptions/urn:ngsi-ld:Subscription:1").json()
    url = got["jsonldContext"]
    assert url.startswith(f"http://testserver{C}/")
    lid = url.rsplit("/", 1)[1]
    assert client.get(f"{C}/{lid}").json() == {"@context": ctx}
    d = details(client, lid)
    assert d["kind"] == "ImplicitlyCreated" and d["URL"] == url and d["numberOfHits"] == 1
    assert client.get(C, params={"kind": "ImplicitlyCreated"}).json() == [url]
    # the same @context again: the same entry
    r = client.post(f"{B}/subscriptions", json={**body, "id": "urn:ngsi-ld:Subscription:2"},
                    headers=ld)
    assert r.status_code == 201, r.text
    assert client.get(f"{B}/subscriptions/urn:ngsi-ld:Subscription:2").json()[
        "jsonldContext"] == url
    assert details(client, lid)["numberOfHits"] == 2
    # one URL, or a jsonldContext given: nothing made
    for n, extra in ((3, {"@context": [CORE_V18]}),
                     (4, {"@context": ctx, "jsonldContext": CORE_V18})):
        r = client.post(f"{B}/subscriptions", headers=ld,
                        json={**body, **extra, "id": f"urn:ngsi-ld:Subscription:{n}"})
        assert r.status_code == 201, r.text
    assert client.get(f"{B}/subscriptions/urn:ngsi-ld:Subscription:3").json().get(
        "jsonldContext") is None
    assert client.get(C, params={"kind": "ImplicitlyCreated"}).json() == [url]
    problem(client.delete(f"{C}/{lid}", params={"reload": "true"}))
    assert client.delete(f"{C}/{lid}").status_code == 204
    assert client.get(C, params={"kind": "ImplicitlyCreated"}).json() == []


def test_notifications_name_the_implicit_context(client: Any) -> None:
    rec = Receiver()
    try:
        ctx = [{"Car": "https://example.org/vocab#Car"}, {"speed": "https://example.org/v#s"}]
        r = client.post(f"{B}/subscriptions", headers={"Content-Type": "application/ld+json"},
                        json={**sub(rec.url), "@context": ctx})
        assert r.status_code == 201, r.text
        r = client.post(f"{B}/entities", headers={"Content-Type": "application/ld+json"},
                        json={"id": "urn:ngsi-ld:Car:1", "type": "Car", "@context": ctx,
                              "speed": {"type": "Property", "value": 3}})
        assert r.status_code == 201, r.text
        note = rec.wait(1)[0]
        assert note["data"][0]["speed"]["value"] == 3  # compacted with the implicit context
        link = rec.headers[0]["link"]
        assert f"<http://testserver{C}/" in link
    finally:
        rec.stop()


# -- keys --------------------------------------------------------------------------------------


def test_rights(store_url: str, tmp_path: Path) -> None:
    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(make_settings(store_url, tmp_path, auth_enabled=True))
        with TestClient(app) as c:
            keys = app.state.services.keys
            reader = {"Authorization": f"Bearer {keys.create('reader')}"}
            operator = {"Authorization": f"Bearer {keys.create('operator')}"}
            admin = {"Authorization": f"Bearer {keys.create('admin')}"}
            assert c.post(C, json={"@context": CAR_CTX}).status_code == 401
            assert c.post(C, json={"@context": CAR_CTX}, headers=reader).status_code == 403
            lid = add(c, **operator)
            # a JSON-LD processor must be able to dereference it without a key
            assert c.get(f"{C}/{lid}").status_code == 200
            assert c.get(C).status_code == 401  # but listing needs one
            assert c.get(C, headers=reader).status_code == 200
            assert c.delete(f"{C}/{lid}", headers=reader).status_code == 403
            # reloading a Cached @context (shared by every tenant) is for admins
            r = c.delete(f"{C}/core", params={"reload": "true"}, headers=operator)
            assert r.status_code == 403
            r = c.delete(f"{C}/core", params={"reload": "true"}, headers=admin)
            assert r.status_code == 204
            assert c.delete(f"{C}/{lid}", headers=operator).status_code == 204
