"""The offline basemap: road lines drawn from the city's own geometry, as GeoJSON.

Sources, in order: ``Road`` and ``RoadSegment`` entities in the hub with a line location
(imported road data), then the SUMO network of every signal twin the hub knows (the
``refTwin`` of its ``TrafficSignal`` entities; a RESCO name or a ``.sumocfg`` path), read
with sumolib and projected to longitude/latitude from the network's own UTM projection
(``<location projParameter="+proj=utm +zone=32 ...">``). A network without a projection
cannot be placed on a map and is skipped. No tile server is needed.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from ..hub.store.base import EntityFilter

log = logging.getLogger(__name__)
DV = "https://uri.etsi.org/ngsi-ld/default-context/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
REF_TWIN = DV + "refTwin"
ROAD_NAMES = ("Road", "RoadSegment")
CACHE_S = 300.0  # hub roads can change; a network file does not (cached for the process)
MAX_ROADS = 50_000

# WGS84
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)
_EP2 = _E2 / (1 - _E2)
_K0 = 0.9996


class ProjectionError(ValueError):
    """A projParameter this module cannot invert (only UTM on WGS84/GRS80 is supported)."""


def parse_utm(proj: str) -> tuple[int, bool]:
    """(zone, south) of a PROJ string such as ``+proj=utm +zone=32 +ellps=WGS84``."""
    params: dict[str, str] = {}
    for tok in proj.split():
        key, _, val = tok.lstrip("+").partition("=")
        params[key] = val
    if params.get("proj") != "utm":
        raise ProjectionError(f"only UTM projections are supported, not {proj!r}")
    ellps = params.get("ellps") or params.get("datum") or "WGS84"
    if ellps not in ("WGS84", "GRS80"):
        raise ProjectionError(f"only the WGS84 ellipsoid is supported, not {ellps!r}")
    try:
        zone = int(params.get("zone", ""))
    except ValueError:
        raise ProjectionError(f"a UTM projection needs +zone: {proj!r}") from None
    if not 1 <= zone <= 60:
        raise ProjectionError(f"UTM zone must be 1 to 60, got {zone}")
    return zone, "south" in params


def utm_to_lonlat(easting: float, northing: float, zone: int, south: bool = False
                  ) -> tuple[float, float]:
    """Inverse transverse Mercator (Snyder's series; well under a metre inside a zone)."""
    x = easting - 500_000.0
    y = northing - (10_000_000.0 if south else 0.0)
    m = y / _K0
    mu = m / (_A * (1 - _E2 / 4 - 3 * _E2**2 / 64 - 5 * _E2**3 / 256))
    r = math.sqrt(1 - _E2)
    e1 = (1 - r) / (1 + r)
    phi1 = (mu + (3 * e1 / 2 - 27 * e1**3 / 32) * math.sin(2 * mu)
            + (21 * e1**2 / 16 - 55 * e1**4 / 32) * math.sin(4 * mu)
            + (151 * e1**3 / 96) * math.sin(6 * mu)
            + (1097 * e1**4 / 512) * math.sin(8 * mu))
    sin1, cos1, tan1 = math.sin(phi1), math.cos(phi1), math.tan(phi1)
    c1 = _EP2 * cos1**2
    t1 = tan1**2
    n1 = _A / math.sqrt(1 - _E2 * sin1**2)
    r1 = _A * (1 - _E2) / (1 - _E2 * sin1**2) ** 1.5
    d = x / (n1 * _K0)
    lat = phi1 - (n1 * tan1 / r1) * (
        d**2 / 2
        - (5 + 3 * t1 + 10 * c1 - 4 * c1**2 - 9 * _EP2) * d**4 / 24
        + (61 + 90 * t1 + 298 * c1 + 45 * t1**2 - 252 * _EP2 - 3 * c1**2) * d**6 / 720)
    lon = (d - (1 + 2 * t1 + c1) * d**3 / 6
           + (5 - 2 * c1 + 28 * t1 - 3 * c1**2 + 8 * _EP2 + 24 * t1**2) * d**5 / 120) / cos1
    lon0 = math.radians((zone - 1) * 6 - 180 + 3)
    return math.degrees(lon0 + lon), math.degrees(lat)


_LOCATION_RE = re.compile(rb"<location\s[^>]*>")
_ATTR_RE = re.compile(rb'(\w+)="([^"]*)"')


def net_location(net_file: Path) -> dict[str, str]:
    """The attributes of a network's ``<location>`` element (read from its head)."""
    import gzip

    opener: Any = gzip.open if net_file.suffix == ".gz" else open
    with opener(net_file, "rb") as fh:
        head = fh.read(64 * 1024)
    m = _LOCATION_RE.search(head)
    if m is None:
        return {}
    return {k.decode(): v.decode() for k, v in _ATTR_RE.findall(m.group(0))}


def network_lines(net_file: Path) -> list[dict[str, Any]]:
    """GeoJSON line features of every non-internal edge of a projected SUMO network."""
    import sumolib

    loc = net_location(net_file)
    proj = loc.get("projParameter", "!")
    if proj in ("", "!"):
        raise ProjectionError(f"{net_file.name} has no geo projection")
    zone, south = parse_utm(proj)
    ox, oy = (float(v) for v in loc.get("netOffset", "0,0").split(","))
    net = sumolib.net.readNet(str(net_file), withInternal=False)
    feats = []
    for edge in net.getEdges():
        if edge.getFunction() == "internal":
            continue
        coords = []
        for x, y in edge.getShape():
            lon, lat = utm_to_lonlat(x - ox, y - oy, zone, south)
            coords.append([round(lon, 6), round(lat, 6)])
        if len(coords) >= 2:
            feats.append({"type": "Feature", "geometry": {"type": "LineString",
                                                          "coordinates": coords},
                          "properties": {"name": edge.getName() or edge.getID(),
                                         "lanes": edge.getLaneNumber(), "source": "sumo"}})
    return feats


def twin_net_file(name: str) -> Path | None:
    """The network file of a twin (a RESCO name or a .sumocfg path), or None."""
    try:
        from ..services.signals.twin import read_config
    except ImportError:  # the 'sim' extra is not installed
        return None
    try:
        cfg = read_config(name)
    except Exception as exc:  # noqa: BLE001 - an unknown twin draws no roads
        log.info("basemap: twin %s has no readable network (%s)", name, type(exc).__name__)
        return None
    if not cfg.net_files:
        return None
    return Path(cfg.path.parent / cfg.net_files[0])


def bbox_of(feats: list[dict[str, Any]]) -> list[float] | None:
    """[minLon, minLat, maxLon, maxLat] of line features, or None when there are none."""
    xs: list[float] = []
    ys: list[float] = []
    for f in feats:
        coords = f["geometry"]["coordinates"]
        lines = coords if f["geometry"]["type"] == "MultiLineString" else [coords]
        for line in lines:
            for pt in line:
                xs.append(pt[0])
                ys.append(pt[1])
    if not xs:
        return None
    return [min(xs), min(ys), max(xs), max(ys)]


def _value(ent: dict[str, Any], iri: str) -> Any:
    insts = ent["attrs"].get(iri) or []
    return insts[0].get("value") if insts else None


class Basemap:
    """Builds and caches ``/web/basemap.geojson`` per tenant."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self._lock = threading.Lock()
        self._nets: dict[Path, list[dict[str, Any]]] = {}
        self._cache: dict[str, tuple[float, bytes]] = {}

    def _types(self, tenant: str, names: tuple[str, ...]) -> tuple[str, ...]:
        counts = self.s.store.count_types(tenant)
        return tuple(t for t in counts if t.rsplit("/", 1)[-1].rsplit("#", 1)[-1] in names)

    def _hub_roads(self, tenant: str) -> list[dict[str, Any]]:
        types = self._types(tenant, ROAD_NAMES)
        if not types:
            return []
        out = []
        for ent in self.s.store.query_entities(tenant, EntityFilter(types=types)):
            geo = _value(ent, LOCATION)
            if isinstance(geo, dict) and geo.get("type") in ("LineString", "MultiLineString"):
                out.append({"type": "Feature", "geometry": geo,
                            "properties": {"name": ent["id"], "source": "hub"}})
            if len(out) >= MAX_ROADS:
                break
        return out

    def _twins(self, tenant: str) -> list[str]:
        types = self._types(tenant, ("TrafficSignal",))
        names: set[str] = set()
        if types:
            for ent in self.s.store.query_entities(tenant, EntityFilter(types=types)):
                twin = _value(ent, REF_TWIN)
                if isinstance(twin, str) and twin:
                    names.add(twin)
        return sorted(names)

    def _net(self, path: Path) -> list[dict[str, Any]]:
        with self._lock:
            hit = self._nets.get(path)
        if hit is not None:
            return hit
        try:
            feats = network_lines(path)
        except (ProjectionError, ImportError, OSError, ValueError) as exc:
            log.info("basemap: %s skipped: %s", path.name, exc)
            feats = []
        with self._lock:
            self._nets[path] = feats
        return feats

    def geojson(self, tenant: str) -> bytes:
        """The basemap of a tenant as GeoJSON bytes (rebuilt at most every CACHE_S)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tenant)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        feats = self._hub_roads(tenant)
        nets: list[dict[str, Any]] = []
        for twin in self._twins(tenant):
            path = twin_net_file(twin)
            if path is not None:
                nets.extend(self._net(path))
        feats.extend(nets)
        out: dict[str, Any] = {"type": "FeatureCollection", "features": feats}
        # where the map opens: the signal twin's network (the operators' city), else all roads
        box = bbox_of(nets or feats)
        if box is not None:
            out["bbox"] = box
        body = orjson.dumps(out)
        with self._lock:
            self._cache[tenant] = (now, body)
        return body
