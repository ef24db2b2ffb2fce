"""Tests for maeul.hub.ldcontext: core terms, user contexts, remote fetching and Link headers."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from maeul.hub.ldcontext import (
    CORE_CONTEXT_URL,
    DEFAULT_VOCAB,
    Context,
    ContextError,
    ContextResolver,
    link_header,
    load_core_context,
    parse_link_header,
)

NGSI = "https://uri.etsi.org/ngsi-ld/"
GEOJSON = "https://purl.org/geojson/vocab#"
REPO = Path(__file__).resolve().parents[2]
SDM_PARKING = REPO.parent / "shared/data/smart_data_models/dataModel.Parking/context.jsonld"


@pytest.fixture
def resolver(tmp_path: Path) -> ContextResolver:
    return ContextResolver(tmp_path / "cache", allow_fetch=False)


@pytest.fixture
def core(resolver: ContextResolver) -> Context:
    return resolver.resolve(None)


# -- a real HTTP server on 127.0.0.1 serving a temp dir ---------------------------------------


class _Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: list[str] = []
        hits = self.hits

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                hits.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def write(self, name: str, doc: Any) -> str:
        (self.root / name).write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
        return self.url(name)

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
            self.running = False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "www"
    root.mkdir()
    srv = _Server(root)
    try:
        yield srv
    finally:
        srv.stop()


# -- core context -------------------------------------------------------------------------


def test_core_document_shape() -> None:
    doc = load_core_context()
    ctx = doc["@context"]
    assert ctx["ngsi-ld"] == NGSI
    assert ctx["geojson"] == GEOJSON
    assert ctx["@vocab"] == DEFAULT_VOCAB
    assert ctx["observedAt"] == {"@id": "ngsi-ld:observedAt", "@type": "DateTime"}
    assert ctx["object"] == {"@id": "ngsi-ld:hasObject", "@type": "@id"}
    doc["@context"]["ngsi-ld"] = "mutated"  # callers get a copy
    assert load_core_context()["@context"]["ngsi-ld"] == NGSI


@pytest.mark.parametrize(
    ("term", "iri"),
    [
        ("id", "@id"),
        ("type", "@type"),
        ("value", NGSI + "hasValue"),
        ("object", NGSI + "hasObject"),
        ("objectType", NGSI + "hasObjectType"),
        ("languageMap", NGSI + "hasLanguageMap"),
        ("vocab", NGSI + "hasVocab"),
        ("valueList", NGSI + "hasValueList"),
        ("objectList", NGSI + "hasObjectList"),
        ("observedAt", NGSI + "observedAt"),
        ("createdAt", NGSI + "createdAt"),
        ("modifiedAt", NGSI + "modifiedAt"),
        ("deletedAt", NGSI + "deletedAt"),
        ("datasetId", NGSI + "datasetId"),
        ("instanceId", NGSI + "instanceId"),
        ("unitCode", NGSI + "unitCode"),
        ("location", NGSI + "location"),
        ("observationSpace", NGSI + "observationSpace"),
        ("operationSpace", NGSI + "operationSpace"),
        ("Property", NGSI + "Property"),
        ("Relationship", NGSI + "Relationship"),
        ("GeoProperty", NGSI + "GeoProperty"),
        ("LanguageProperty", NGSI + "LanguageProperty"),
        ("VocabProperty", NGSI + "VocabProperty"),
        ("ListProperty", NGSI + "ListProperty"),
        ("ListRelationship", NGSI + "ListRelationship"),
        ("Subscription", NGSI + "Subscription"),
        ("ContextSourceRegistration", NGSI + "ContextSourceRegistration"),
        ("watchedAttributes", NGSI + "watchedAttributes"),
        ("key", NGSI + "hasKey"),
        ("description", "http://purl.org/dc/terms/description"),
        ("attributeCount", DEFAULT_VOCAB + "attributeCount"),
        ("Point", GEOJSON + "Point"),
        ("FeatureCollection", GEOJSON + "FeatureCollection"),
        ("coordinates", GEOJSON + "coordinates"),
        ("bbox", GEOJSON + "bbox"),
    ],
)
def test_core_terms_expand_to_spec_iris(core: Context, term: str, iri: str) -> None:
    assert core.expand_term(term) == iri
    if not iri.startswith("@"):
        assert core.compact_iri(iri) == term


def test_core_term_definitions_keep_type_and_container(core: Context) -> None:
    assert core.term_definition("observedAt") == (NGSI + "observedAt", NGSI + "DateTime", ())
    assert core.term_definition("coordinates") == (GEOJSON + "coordinates", None, ("@list",))
    assert core.term_definition("noSuchTerm") is None


def test_core_only_variants_share_key(resolver: ContextResolver) -> None:
    base = resolver.resolve(None)
    assert base.is_core_only
    values: tuple[Any, ...] = (
        CORE_CONTEXT_URL,
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld",
        [CORE_CONTEXT_URL],
        {},
    )
    for value in values:
        ctx = resolver.resolve(value)  # allow_fetch=False: must not need the network
        assert ctx.is_core_only
        assert ctx.key == base.key
        assert ctx.source == value


def test_default_vocab_and_absolute_iris(core: Context) -> None:
    assert core.expand_term("temperature") == DEFAULT_VOCAB + "temperature"
    assert core.compact_iri(DEFAULT_VOCAB + "temperature") == "temperature"
    for iri in ("https://example.org/a#b", "urn:ngsi-ld:Thing:1", "http://x.org/y"):
        assert core.expand_term(iri) == iri
        assert core.compact_iri(iri) == iri
    # unknown prefix, not an absolute IRI: a plain name under the vocabulary
    assert core.expand_term("foo:bar") == DEFAULT_VOCAB + "foo:bar"
    assert core.compact_iri(DEFAULT_VOCAB + "foo:bar") == "foo:bar"


def test_compact_iris_with_core_prefix(core: Context) -> None:
    assert core.expand_term("ngsi-ld:location") == NGSI + "location"
    assert core.expand_term("ngsi-ld:somethingNew") == NGSI + "somethingNew"
    assert core.compact_iri(NGSI + "somethingNew") == "ngsi-ld:somethingNew"
    assert core.expand_term("geojson:Point") == GEOJSON + "Point"


# -- user contexts --------------------------------------------------------------------------


USER = {
    "ex": "https://example.org/ns#",
    "temperature": "https://example.org/ns#temperature",
    "Room": "ex:Room",
    "speed": {"@id": "ex:speed", "@type": "xsd:float"},
    "alias": "temperature",
    "category": {"@id": "ex:category", "@type": "@vocab"},
    "unmapped": None,
    "@version": 1.1,
}


def test_user_terms_map(resolver: ContextResolver) -> None:
    ctx = resolver.resolve(USER)
    assert not ctx.is_core_only
    assert ctx.source is USER
    assert ctx.expand_term("temperature") == "https://example.org/ns#temperature"
    assert ctx.expand_term("Room") == "https://example.org/ns#Room"
    assert ctx.expand_term("speed") == "https://example.org/ns#speed"
    assert ctx.expand_term("alias") == "https://example.org/ns#temperature"
    assert ctx.expand_term("ex:other") == "https://example.org/ns#other"
    assert ctx.expand_term("unmapped") == DEFAULT_VOCAB + "unmapped"
    assert ctx.expand_term("Property") == NGSI + "Property"
    # shortest term wins on the way back; unknown IRIs in the namespace use the prefix
    assert ctx.compact_iri("https://example.org/ns#temperature") == "alias"
    assert ctx.compact_iri("https://example.org/ns#other") == "ex:other"
    assert ctx.expand_value_vocab("Room") == "https://example.org/ns#Room"
    assert ctx.compact_value_vocab("https://example.org/ns#Room") == "Room"
    assert ctx.key != resolver.resolve(None).key


@pytest.mark.parametrize("term", ["Room", "speed", "category", "ex:other", "brandNew", "a:b"])
def test_round_trip(resolver: ContextResolver, term: str) -> None:
    ctx = resolver.resolve([USER, {"extra": "https://other.org/extra"}])
    assert ctx.compact_iri(ctx.expand_term(term)) == term
    assert ctx.compact_value_vocab(ctx.expand_value_vocab(term)) == term


def test_core_terms_cannot_be_overridden(resolver: ContextResolver) -> None:
    ctx = resolver.resolve(
        {
            "location": "https://evil.example/location",
            "type": "https://evil.example/type",
            "ngsi-ld": "https://evil.example/",
            "observedAt": {"@id": "https://evil.example/t"},
            "mine": "ngsi-ld:mine",
        }
    )
    assert ctx.expand_term("location") == NGSI + "location"
    assert ctx.expand_term("type") == "@type"
    assert ctx.expand_term("observedAt") == NGSI + "observedAt"
    assert ctx.expand_term("mine") == NGSI + "mine"  # the core prefix, not the user's
    assert ctx.compact_iri(NGSI + "location") == "location"


def test_user_vocab(resolver: ContextResolver) -> None:
    ctx = resolver.resolve({"@vocab": "https://vocab.example/"})
    assert not ctx.is_core_only
    assert ctx.vocab == "https://vocab.example/"
    assert ctx.expand_term("level") == "https://vocab.example/level"
    assert ctx.compact_iri("https://vocab.example/level") == "level"
    # the default namespace is no longer active: those IRIs use the core prefix
    assert ctx.compact_iri(DEFAULT_VOCAB + "level") == "ngsi-ld:default-context/level"
    assert ctx.expand_term("ngsi-ld:default-context/level") == DEFAULT_VOCAB + "level"
    assert ctx.expand_term("attributeCount") == DEFAULT_VOCAB + "attributeCount"
    prefixed = resolver.resolve({"@vocab": "ngsi-ld:custom/"})
    assert prefixed.expand_term("x") == NGSI + "custom/x"


def test_later_context_overrides_earlier(resolver: ContextResolver) -> None:
    ctx = resolver.resolve([{"t": "https://a.example/t"}, {"t": "https://b.example/t"}])
    assert ctx.expand_term("t") == "https://b.example/t"
    reset = resolver.resolve([{"t": "https://a.example/t"}, None])
    assert reset.is_core_only


@pytest.mark.parametrize(
    "bad",
    [
        {"a": 5},
        {"a": {"@id": 5}},
        {"a": {"@id": "https://x.org/a", "@container": 3}},
        {"a": "b:x", "b": "a:y"},
        {"@vocab": "relative"},
        {"@vocab": 7},
        42,
        [True],
        "relative/context.jsonld",
        "file:///etc/passwd",
    ],
)
def test_malformed_contexts(resolver: ContextResolver, bad: Any) -> None:
    with pytest.raises(ContextError) as err:
        resolver.resolve(bad)
    assert err.value.kind == "BadRequestData"
    assert str(err.value)


def test_resolved_contexts_are_cached(resolver: ContextResolver) -> None:
    a = resolver.resolve({"x": "https://x.org/x"})
    b = resolver.resolve({"x": "https://x.org/x"})
    assert a is b
    assert a.expand_term("y") is a.expand_term("y")  # memoised


def test_context_lru_is_bounded(tmp_path: Path) -> None:
    res = ContextResolver(None, allow_fetch=False, max_contexts=4)
    first = res.resolve({"t0": "https://x.org/0"})
    for i in range(1, 10):
        res.resolve({f"t{i}": f"https://x.org/{i}"})
    again = res.resolve({"t0": "https://x.org/0"})
    assert again is not first
    assert again.key == first.key


def test_preload_serves_without_network() -> None:
    url = "https://contexts.example/city.jsonld"
    res = ContextResolver(
        None, allow_fetch=False, preload={url: {"@context": {"Bus": "https://city.example/Bus"}}}
    )
    assert res.resolve(url).expand_term("Bus") == "https://city.example/Bus"
    assert res.resolve([url, CORE_CONTEXT_URL]).compact_iri("https://city.example/Bus") == "Bus"


def test_concurrent_resolution(resolver: ContextResolver) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                ctx = resolver.resolve({f"t{i % 20}": f"https://x.org/{i % 20}"})
                assert ctx.expand_term(f"t{i % 20}") == f"https://x.org/{i % 20}"
                assert ctx.compact_iri(f"https://x.org/{i % 20}") == f"t{i % 20}"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- remote contexts ------------------------------------------------------------------------


def test_fetch_once_then_offline_from_disk(tmp_path: Path, server: _Server) -> None:
    cache = tmp_path / "cache"
    inner = server.write("inner.jsonld", {"@context": {"Sensor": "https://iot.example/Sensor"}})
    outer = server.write(
        "outer.jsonld",
        {"@context": [inner, {"reading": "https://iot.example/reading"}, CORE_CONTEXT_URL]},
    )
    res = ContextResolver(cache)
    ctx = res.resolve(outer)
    assert ctx.expand_term("Sensor") == "https://iot.example/Sensor"
    assert ctx.expand_term("reading") == "https://iot.example/reading"
    assert ctx.source == outer
    res.resolve([outer])  # different source, same documents: no new request
    assert sorted(server.hits) == ["/inner.jsonld", "/outer.jsonld"]
    expected = cache / (hashlib.sha256(outer.encode()).hexdigest() + ".jsonld")
    assert expected.is_file()
    assert not list(cache.glob(".ctx-*"))  # no temp files left behind

    server.stop()
    offline = ContextResolver(cache, allow_fetch=False)
    again = offline.resolve(outer)
    assert again.expand_term("Sensor") == "https://iot.example/Sensor"
    assert again.key == ctx.key
    # fetching allowed but the server is gone: still served from disk
    assert ContextResolver(cache).resolve(outer).expand_term("reading").endswith("reading")


def test_concurrent_first_fetch_hits_server_once(tmp_path: Path, server: _Server) -> None:
    url = server.write("shared.jsonld", {"@context": {"Bus": "https://city.example/Bus"}})
    res = ContextResolver(tmp_path)
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(res.resolve([url, {"n": "https://n.example/n"}]).expand_term("Bus"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == ["https://city.example/Bus"] * 8
    assert server.hits == ["/shared.jsonld"]


def test_not_available(tmp_path: Path, server: _Server) -> None:
    url = server.url("missing.jsonld")
    with pytest.raises(ContextError) as err:
        ContextResolver(tmp_path, allow_fetch=False).resolve(url)
    assert err.value.kind == "LdContextNotAvailable"
    with pytest.raises(ContextError) as err:
        ContextResolver(tmp_path).resolve(url)  # HTTP 404
    assert err.value.kind == "LdContextNotAvailable"
    assert "404" in str(err.value)
    server.stop()
    with pytest.raises(ContextError) as err:
        ContextResolver(tmp_path, timeout_s=2).resolve(url)  # connection refused
    assert err.value.kind == "LdContextNotAvailable"


def test_cyclic_remote_contexts(tmp_path: Path, server: _Server) -> None:
    a, b = server.url("a.jsonld"), server.url("b.jsonld")
    server.write("a.jsonld", {"@context": [b, {"x": "https://x.org/x"}]})
    server.write("b.jsonld", {"@context": a})
    server.write("self.jsonld", {"@context": [server.url("self.jsonld")]})
    for url in (a, server.url("self.jsonld")):
        with pytest.raises(ContextError) as err:
            ContextResolver(tmp_path).resolve(url)
        assert err.value.kind == "BadRequestData"
        assert "recursive" in str(err.value)


def test_depth_limit(tmp_path: Path, server: _Server) -> None:
    for i in range(12):
        server.write(f"d{i}.jsonld", {"@context": server.url(f"d{i + 1}.jsonld")})
    server.write("d12.jsonld", {"@context": {}})
    with pytest.raises(ContextError, match="deeper"):
        ContextResolver(tmp_path).resolve(server.url("d0.jsonld"))


def test_oversized_and_invalid_documents(tmp_path: Path, server: _Server) -> None:
    big = {"@context": {f"t{i}": f"https://x.org/{i}" for i in range(2000)}}
    url = server.write("big.jsonld", big)
    res = ContextResolver(tmp_path, max_bytes=10_000)
    with pytest.raises(ContextError, match="exceeds") as err:
        res.resolve(url)
    assert err.value.kind == "BadRequestData"
    assert not list(tmp_path.glob("*.jsonld"))  # nothing cached
    assert ContextResolver(tmp_path).resolve(url).expand_term("t5") == "https://x.org/5"

    for name, body in (("notjson.jsonld", "{nope"), ("nocontext.jsonld", {"x": 1})):
        with pytest.raises(ContextError) as err:
            ContextResolver(tmp_path).resolve(server.write(name, body))
        assert err.value.kind == "BadRequestData"


def test_corrupt_disk_cache_is_refetched(tmp_path: Path, server: _Server) -> None:
    url = server.write("c.jsonld", {"@context": {"c": "https://c.example/c"}})
    (tmp_path / (hashlib.sha256(url.encode()).hexdigest() + ".jsonld")).write_text("garbage")
    assert ContextResolver(tmp_path).resolve(url).expand_term("c") == "https://c.example/c"
    assert ContextResolver(tmp_path, allow_fetch=False).resolve(url).expand_term("c").endswith("c")


def test_preseeded_cache_folder(tmp_path: Path) -> None:
    url = "https://city.example/contexts/transport.jsonld"
    name = hashlib.sha256(url.encode()).hexdigest() + ".jsonld"
    (tmp_path / name).write_text(json.dumps({"@context": {"Tram": "https://t.example/Tram"}}))
    ctx = ContextResolver(tmp_path, allow_fetch=False).resolve(url)
    assert ctx.expand_term("Tram") == "https://t.example/Tram"


# -- Smart Data Models --------------------------------------------------------------------


def test_smart_data_models_parking() -> None:
    if not SDM_PARKING.is_file():
        pytest.skip(f"Smart Data Models context not found at {SDM_PARKING}")
    url = "https://smartdatamodels.org/context.jsonld"
    doc = json.loads(SDM_PARKING.read_text())
    res = ContextResolver(None, allow_fetch=False, preload={url: doc})
    ctx = res.resolve([url, CORE_CONTEXT_URL])
    offstreet = "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"
    assert ctx.expand_term("OffStreetParking") == offstreet
    assert ctx.compact_iri(offstreet) == "OffStreetParking"
    spots = ctx.expand_term("availableSpotNumber")
    assert spots == "https://smartdatamodels.org/dataModel.Parking/availableSpotNumber"
    assert ctx.compact_iri(spots) == "availableSpotNumber"
    assert ctx.expand_term("location") == NGSI + "location"
    assert ctx.expand_term("name") == "https://smartdatamodels.org/name"
    # the inline document form resolves to the same context
    assert res.resolve(doc["@context"]).key == ctx.key


# -- Link header --------------------------------------------------------------------------


REL = 'rel="http://www.w3.org/ns/json-ld#context"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (link_header("https://x.org/c.jsonld"), "https://x.org/c.jsonld"),
        (f"<https://x.org/c.jsonld>; {REL}", "https://x.org/c.jsonld"),
        (f'<https://x.org/c.jsonld>;{REL};type="application/ld+json"', "https://x.org/c.jsonld"),
        (
            "<https://x.org/c.jsonld>; rel=http://www.w3.org/ns/json-ld#context",
            "https://x.org/c.jsonld",
        ),
        (
            f'<https://a.org/next>; rel="next", <https://x.org/c,1.jsonld> ; {REL}',
            "https://x.org/c,1.jsonld",
        ),
        (
            '<https://x.org/c>; REL="alternate http://www.w3.org/ns/json-ld#context"',
            "https://x.org/c",
        ),
        (f"  < https://x.org/c.jsonld >  ;  {REL}  ,  ", "https://x.org/c.jsonld"),
        ('<https://a.org/next>; rel="next"', None),
        ('<https://a.org/x>; title="a;b,c"; rel="describedby"', None),
        ("", None),
    ],
)
def test_parse_link_header(header: str, expected: str | None) -> None:
    assert parse_link_header(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        f"https://x.org/c.jsonld; {REL}",
        f"<https://x.org/c.jsonld; {REL}",
        '<https://x.org/c.jsonld>; rel="http://www.w3.org/ns/json-ld#context',
        f"<https://x.org/c.jsonld> {REL}",
        "<https://x.org/c.jsonld>; =x",
        f"<>; {REL}",
        f"<https://a.org/1>; {REL}, <https://a.org/2>; {REL}",
    ],
)
def test_parse_link_header_malformed(header: str) -> None:
    with pytest.raises(ContextError) as err:
        parse_link_header(header)
    assert err.value.kind == "BadRequestData"


def test_link_header_format() -> None:
    assert link_header(CORE_CONTEXT_URL) == (
        f'<{CORE_CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; '
        'type="application/ld+json"'
    )
