"""The compact map form, its cache (keyed by rights, dropped on change), gzip, static caching."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from webcity import AIR, FLOW, PARK, REQ, SIG, T, point

from maeul.hub.auth import Caller
from maeul.hub.entities import expand_entity
from maeul.web.layercache import LayerCache, Point, Snapshot, view_key
from maeul.web.mapdata import COMPACT, STATUSES
from maeul.web.routes import GZIP_MIN, packed

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
P = "/web/points.json"
G = "/web/layers.geojson"


def compact(body: dict[str, Any]) -> dict[str, tuple[str, float, float, str, str]]:
    """id -> (layer, lon, lat, status, name) from the compact form."""
    out = {}
    for layer, pts in body["layers"].items():
        for p in pts:
            name = p[4] if len(p) > 4 else p[2].rsplit(":", 1)[-1]
            out[p[2]] = (layer, p[0], p[1], body["statuses"][p[3]], name)
    return out


def geojson(fc: dict[str, Any]) -> dict[str, tuple[str, float, float, str, str]]:
    return {f["id"]: (f["properties"]["layer"], *f["geometry"]["coordinates"],
                      f["properties"]["status"], f["properties"]["name"])
            for f in fc["features"]}


@pytest.mark.parametrize("params", [{}, {"layers": "parking,air"},
                                    {"bbox": "6.9,50.9,7.0,51.0"}])
def test_compact_form_says_what_the_geojson_says(client: Any, params: dict[str, str]) -> None:
    c = client(user="olivia")
    r = c.get(P, params=params)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["format"] == COMPACT and body["statuses"] == list(STATUSES)
    fc = c.get(G, params=params).json()
    assert compact(body) == geojson(fc) and body["counts"] == fc["counts"]
    assert body["truncated"] is False


def test_compact_form_values(client: Any) -> None:
    got = compact(client(user="olivia").get(P).json())
    assert got[FLOW][3] == "bad" and got[PARK][3] == "warn"
    assert got[PARK][4] == "Bull Ring" and got[SIG][1:3] == (6.95, 50.94)


def test_bad_input_is_a_400_naming_it(client: Any) -> None:
    c = client(user="olivia")
    r = c.get(P, params={"bbox": "7,51,6,50"})
    assert r.status_code == 400 and "minimum" in r.json()["detail"]
    r = c.get(P, params={"layers": "ufos"})
    assert r.status_code == 400 and "ufos" in r.json()["detail"]


def test_the_cache_never_shares_a_view_between_rights(client: Any) -> None:
    # an operator's view is built (and cached) first; anonymous callers still see public
    # types only, and a key from another tenant is still refused
    assert REQ in compact(client(user="olivia").get(P).json())
    assert REQ not in compact(client().get(P).json())
    assert set(compact(client().get(P).json())) == {SIG, FLOW, PARK, AIR}


def test_a_change_is_on_the_map_at_once(app: Any, client: Any) -> None:
    c = client(user="olivia")
    s = app.state.services
    cache = next(x for x in s.hub.listeners if isinstance(x, LayerCache))
    cache.grace_s = 0.0  # keep snapshots read right after the seeding's writes
    assert compact(c.get(P).json())[SIG][1:3] == (6.95, 50.94)
    assert len(cache._entries) == 1
    ctx = s.resolver.resolve(None)
    s.hub.merge_entity(T, SIG, expand_entity(
        {"id": SIG, "type": "TrafficSignal", "location": point(7.0, 51.0)}, ctx))
    assert compact(c.get(P).json())[SIG][1:3] == (7.0, 51.0)
    s.hub.delete_entity(T, PARK)
    assert PARK not in compact(c.get(P).json())
    assert PARK not in {f["id"] for f in c.get(G).json()["features"]}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def snap() -> Snapshot:
    return Snapshot({"signals": [Point(1.0, 2.0, "urn:x:1", ["T"], "1", "ok")]}, False)


def ent(typ: str) -> dict[str, Any]:
    return {"id": "urn:x:1", "type": [f"https://example.org/{typ}"], "attrs": {}}


def test_cache_versions_grace_and_age() -> None:
    clock = Clock()
    cache = LayerCache({"TrafficSignal"}, max_age_s=30, grace_s=1, clock=clock)
    key = ("t", "operator")
    cache.put(key, "t", snap(), cache.version("t"), clock())
    assert cache.get(key, "t") is not None
    # a change of another type without a location leaves the map alone
    cache.changed(None, "t", None, ent("Invoice"), {"https://example.org/total"},  # type: ignore[arg-type]
                  "entityCreated")
    assert cache.get(key, "t") is not None
    # a map type, or any location, drops it
    cache.changed(None, "t", ent("TrafficSignal"), None, set(), "entityDeleted")  # type: ignore[arg-type]
    assert cache.get(key, "t") is None
    # read within the grace after a change (it may not have committed): not kept
    v = cache.version("t")
    cache.put(key, "t", snap(), v, clock())
    assert cache.get(key, "t") is None
    clock.now += 2
    cache.put(key, "t", snap(), cache.version("t"), clock())
    assert cache.get(key, "t") is not None
    # a change between reading the version and keeping the snapshot: not kept
    v = cache.version("t")
    cache.changed(None, "t", None, ent("Thing"),  # type: ignore[arg-type]
                  {"https://uri.etsi.org/ngsi-ld/location"}, "entityCreated")
    clock.now += 2
    cache.put(key, "t", snap(), v, clock())
    assert cache.get(key, "t") is None
    # another replica's changes are not heard: an entry lives max_age_s at most
    cache.put(key, "t", snap(), cache.version("t"), clock())
    clock.now += 31
    assert cache.get(key, "t") is None


def test_view_keys_follow_rights() -> None:
    pub = frozenset({"A"})
    keys = {view_key("t", c, lambda: pub) for c in (
        Caller("key:1", "reader", "t"), Caller("key:2", "reader", "t"),
        Caller("key:3", "reader", "t", frozenset({"care"})),
        Caller("key:4", "operator", "t"), Caller("anonymous", None))}
    assert len(keys) == 4  # two readers with the same rights share a view
    anon = Caller("anonymous", None)
    assert view_key("t", anon, lambda: pub) != view_key("t", anon, lambda: frozenset())
    assert view_key("t", anon, lambda: pub) != view_key("u", anon, lambda: pub)


def test_large_answers_are_gzipped_when_accepted() -> None:
    import asyncio

    from starlette.requests import Request

    def req(enc: str) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                        "headers": [(b"accept-encoding", enc.encode())]})

    big = b"[" + b"1," * GZIP_MIN + b"1]"
    r = asyncio.run(packed(req("gzip, deflate, br"), big, "application/json"))
    assert r.headers["content-encoding"] == "gzip" and gzip.decompress(r.body) == big
    assert r.headers["vary"] == "Accept-Encoding"
    r = asyncio.run(packed(req("identity"), big, "application/json"))
    assert "content-encoding" not in r.headers and r.body == big
    r = asyncio.run(packed(req("gzip"), b"[1]", "application/json"))
    assert "content-encoding" not in r.headers and r.body == b"[1]"


def test_vendored_files_are_cached_ours_revalidate(client: Any) -> None:
    c = client()
    lib = c.get("/static/leaflet/leaflet.js")
    assert lib.status_code == 200 and "max-age=86400" in lib.headers["cache-control"]
    own = c.get("/static/js/map.js")
    assert own.status_code == 200 and own.headers["cache-control"] == "no-cache"
    assert c.get("/static/leaflet/nothing.js").status_code == 404


def test_console_map_page_preloads_the_compact_form(client: Any) -> None:
    html = client(user="olivia").get("/console").text
    assert '<link rel="preload" href="/web/points.json?layers=' in html
