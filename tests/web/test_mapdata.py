"""Map data in-process: layers with bbox and rights, popups, the offline basemap."""

from __future__ import annotations

from typing import Any

import pytest
from webcity import AIR, CARE, FLOW, PARK, REQ, SIG, T, proposal

from maeul.hub.auth import Caller
from maeul.hub.entities import expand_entity
from maeul.web.basemap import (
    Basemap,
    ProjectionError,
    parse_utm,
    twin_net_file,
    utm_to_lonlat,
)
from maeul.web.mapdata import point_of

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
L = "/web/layers.geojson"


def ids(fc: dict[str, Any], layer: str | None = None) -> set[str]:
    return {f["id"] for f in fc["features"]
            if layer is None or f["properties"]["layer"] == layer}


def test_layers_for_an_operator(client: Any) -> None:
    r = client(user="olivia").get(L)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert ids(fc, "signals") == {SIG} and ids(fc, "traffic") == {FLOW}
    assert ids(fc, "parking") == {PARK} and ids(fc, "air") == {AIR}
    assert ids(fc, "complaints") == {REQ}
    assert CARE not in ids(fc)  # not a map layer
    assert fc["counts"]["signals"] == 1 and fc["truncated"] is False
    by_id = {f["id"]: f for f in fc["features"]}
    assert by_id[FLOW]["properties"]["status"] == "bad"  # congested
    assert by_id[PARK]["properties"]["status"] == "warn"  # 20 of 200 free
    assert by_id[AIR]["properties"]["status"] == "bad"  # PM10 95
    assert by_id[PARK]["properties"]["name"] == "Bull Ring"
    assert by_id[SIG]["geometry"] == {"type": "Point", "coordinates": [6.95, 50.94]}


def test_layer_and_bbox_filters(client: Any) -> None:
    c = client(user="olivia")
    fc = c.get(L, params={"layers": "parking,air"}).json()
    assert ids(fc) == {PARK, AIR} and set(fc["counts"]) == {"parking", "air"}
    cologne = c.get(L, params={"bbox": "6.9,50.9,7.0,51.0"}).json()
    assert ids(cologne) == {SIG, FLOW, REQ}
    assert c.get(L, params={"bbox": "0,0,1,1"}).json()["features"] == []


@pytest.mark.parametrize("bbox,message", [
    ("1,2,3", "four numbers"),
    ("a,b,c,d", "four numbers"),
    ("1,2,3,nan", "four numbers"),
    ("0,0,200,10", "longitudes"),
    ("0,-95,1,1", "latitudes"),
    ("7,51,6,50", "minimum"),
])
def test_bad_bbox_is_a_400_naming_it(client: Any, bbox: str, message: str) -> None:
    r = client(user="olivia").get(L, params={"bbox": bbox})
    assert r.status_code == 400
    body = r.json()
    assert body["detail"].startswith("bbox") and message in body["detail"]


def test_unknown_layer_is_a_400(client: Any) -> None:
    r = client(user="olivia").get(L, params={"layers": "signals,ufos"})
    assert r.status_code == 400 and "ufos" in r.json()["detail"]


def test_anonymous_callers_see_public_types_only(client: Any) -> None:
    fc = client().get(L).json()
    assert ids(fc) == {SIG, FLOW, PARK, AIR}  # the complaint's type is not public
    assert client().get(f"/web/entity/{REQ}").status_code == 404
    assert client().get(f"/web/entity/{SIG}").status_code == 200


def test_a_key_from_another_tenant_is_refused(app: Any, client: Any) -> None:
    other = app.state.services.keys.create("reader", "elsewhere")
    r = client(authorization=f"Bearer {other}").get(L)
    assert r.status_code == 403


def test_pending_proposals_are_alerts_at_their_target(app: Any, client: Any) -> None:
    c = client(user="olivia")
    assert ids(c.get(L, params={"layers": "alerts"}).json()) == set()
    p = app.state.services.trust.decisions.submit(T, proposal(),
                                                  Caller("key:svc", "service", T))
    fc = c.get(L, params={"layers": "alerts"}).json()
    assert ids(fc) == {f"urn:ngsi-ld:AIProposal:{p['id']}"}
    assert fc["features"][0]["geometry"]["coordinates"] == [6.95, 50.94]


def test_popup_has_latest_values_and_history(client: Any) -> None:
    r = client(user="olivia").get(f"/web/entity/{FLOW}")
    assert r.status_code == 200
    e = r.json()
    attrs = {a["name"]: a for a in e["attrs"]}
    assert attrs["averageVehicleSpeed"]["value"] == 18.0
    assert attrs["averageVehicleSpeed"]["observedAt"] == "2026-05-01T08:05:00Z"
    assert [v for _t, v in e["history"]["averageVehicleSpeed"]] == [12.5, 18.0]
    assert e["hidden"] == 0


def test_sensitive_attributes_need_the_purpose(app: Any, client: Any) -> None:
    plain = client(user="olivia").get(f"/web/entity/{CARE}").json()
    names = {a["name"] for a in plain["attrs"]}
    assert "careLevel" not in names and "enrolled" not in names
    assert plain["hidden"] == 2 and plain["hiddenPurposes"] == ["care"]
    s = app.state.services
    before = len([r for r in s.store.audit_log(T, 1000) if r["action"] == "privacy.read"])
    care = client(user="carol").get(f"/web/entity/{CARE}").json()
    assert {"careLevel", "enrolled"} <= {a["name"] for a in care["attrs"]}
    assert care["hidden"] == 0
    after = [r for r in s.store.audit_log(T, 1000) if r["action"] == "privacy.read"]
    assert len(after) == before + 1 and after[0]["actor"] == "user:carol"


def test_unknown_entity_is_404(client: Any) -> None:
    r = client(user="olivia").get("/web/entity/urn:ngsi-ld:Thing:none")
    assert r.status_code == 404 and r.json()["type"].endswith("ResourceNotFound")


def test_point_of_geometries() -> None:
    assert point_of({"type": "Point", "coordinates": [1, 2]}) == (1.0, 2.0)
    assert point_of({"type": "LineString", "coordinates": [[0, 0], [5, 5], [9, 9]]}) == (5, 5)
    assert point_of({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}) \
        == (1, 1)
    assert point_of({"type": "Point", "coordinates": [500, 2]}) is None
    assert point_of({"type": "Point", "coordinates": "x"}) is None
    assert point_of(None) is None


# -- basemap --------------------------------------------------------------------------------
def test_hub_roads_make_the_basemap(app: Any, client: Any) -> None:
    s = app.state.services
    line = {"type": "LineString", "coordinates": [[6.94, 50.93], [6.96, 50.95]]}
    s.hub.create_entity(T, expand_entity({
        "id": "urn:ngsi-ld:RoadSegment:r1", "type": "RoadSegment",
        "location": {"type": "GeoProperty", "value": line}}, s.resolver.resolve(None)))
    import orjson

    fc = orjson.loads(Basemap(s).geojson(T))
    assert [f["properties"]["source"] for f in fc["features"]] == ["hub"]
    assert fc["bbox"] == [6.94, 50.93, 6.96, 50.95]
    r = client(user="olivia").get("/web/basemap.geojson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"


def test_parse_utm() -> None:
    assert parse_utm("+proj=utm +zone=32 +ellps=WGS84 +datum=WGS84 +units=m +no_defs") == (
        32, False)
    assert parse_utm("+proj=utm +zone=52 +south +ellps=WGS84") == (52, True)
    for bad in ("+proj=tmerc +lat_0=38", "+proj=utm +ellps=WGS84", "+proj=utm +zone=99",
                "+proj=utm +zone=32 +ellps=bessel"):
        with pytest.raises(ProjectionError):
            parse_utm(bad)


def test_utm_inverse_exact_properties() -> None:
    """On the central meridian and the equator the inverse is exact; east and west mirror."""
    lon, lat = utm_to_lonlat(500_000.0, 0.0, 52)
    assert abs(lon - 129.0) < 1e-9 and abs(lat) < 1e-9
    lon, lat = utm_to_lonlat(500_000.0, 10_000_000.0, 52, south=True)
    assert abs(lon - 129.0) < 1e-9 and abs(lat) < 1e-9
    lon, _lat = utm_to_lonlat(500_000.0, 4_160_000.0, 52)
    assert abs(lon - 129.0) < 1e-9
    east = utm_to_lonlat(560_000.0, 4_160_000.0, 52)
    west = utm_to_lonlat(440_000.0, 4_160_000.0, 52)
    assert abs((east[0] - 129.0) + (west[0] - 129.0)) < 1e-9 and abs(east[1] - west[1]) < 1e-9
    _lon, south = utm_to_lonlat(500_000.0, 5_000_000.0, 52, south=True)
    assert south < 0


def test_signal_twin_network_is_drawn_where_sumo_puts_it(app: Any) -> None:
    """The cologne8 net, projected by our UTM inverse, agrees with SUMO's own projection."""
    libsumo = pytest.importorskip("libsumo", reason="needs the 'sim' extra")
    path = twin_net_file("cologne8")
    if path is None:
        pytest.skip("sumo-rl's RESCO networks are not installed (the 'sim' extra)")
    from maeul.web.basemap import net_location

    s = app.state.services
    s.hub.append_attrs(T, SIG, expand_entity({
        "id": SIG, "type": "TrafficSignal", "refTwin": {"type": "Property",
                                                        "value": "cologne8"}},
        s.resolver.resolve(None)), False)
    import orjson

    fc = orjson.loads(Basemap(s).geojson(T))
    roads = [f for f in fc["features"] if f["properties"]["source"] == "sumo"]
    assert len(roads) > 50
    loc = net_location(path)
    ox, oy = (float(v) for v in loc["netOffset"].split(","))
    libsumo.start(["sumo", "-n", str(path), "--no-step-log", "--end", "1"])
    try:
        for x, y in ((13565.01, 16795.57), (14657.34, 18337.23), (14000.0, 17500.0)):
            want = libsumo.simulation.convertGeo(x, y)
            got = utm_to_lonlat(x - ox, y - oy, 32)
            assert abs(want[0] - got[0]) < 1e-7 and abs(want[1] - got[1]) < 1e-7
    finally:
        libsumo.close()
    lons = [c[0] for f in roads for c in f["geometry"]["coordinates"]]
    assert 6.8 < min(lons) and max(lons) < 7.1  # Cologne
    assert fc["bbox"][0] == min(lons) and fc["bbox"][2] == max(lons)
