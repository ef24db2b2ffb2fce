"""Map data for the console: the layers' points and one entity's popup.

``/web/layers.geojson?layers=signals,parking&bbox=minLon,minLat,maxLon,maxLat`` returns one
point per entity (its ``location``, or the middle vertex of a line or polygon) with only
``layer``, ``name`` and ``status``; ``/web/points.json`` (same parameters) says the same in
the compact form the console's map reads (``COMPACT``: per layer ``[lon, lat, id, status
number, name]``, the name left out when it is the id's last segment), a third of the size.
Entities are read with the caller's rights, exactly as the NGSI-LD API reads them: anonymous
callers see only the tenant's public types, and attributes the caller may not see (a
personal location, say) are removed before anything is taken from them. The whole map's
points are kept per view of the hub (``layercache``) until the hub changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..hub.auth import Caller
from ..hub.errors import BadRequestData, ResourceNotFound
from ..hub.hooks import strip_attrs
from ..hub.store.base import EntityFilter, TemporalFilter
from .base import short_name
from .layercache import LayerCache, Point, Snapshot, view_key

LOCATION = "https://uri.etsi.org/ngsi-ld/location"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"
SDM = "https://smartdatamodels.org/"
MAX_FEATURES = 20_000
COMPACT = "maeul-points/1"
STATUSES = ("ok", "warn", "bad", "none")  # the compact form's status numbers
HISTORY_N = 60


Values = dict[str, Any]  # short attribute name -> the value of its first instance


@dataclass(frozen=True)
class Layer:
    key: str
    types: tuple[str, ...]  # short type names: any IRI ending in one of them matches
    status: Callable[[Values], str]


def values(ent: dict[str, Any]) -> Values:
    """Each attribute's first value by short name (read once per entity)."""
    out: Values = {}
    for iri, insts in ent["attrs"].items():
        if insts:
            first = insts[0]
            name = _SHORT.get(iri)
            if name is None:
                name = _SHORT[iri] = short_name(iri) if len(_SHORT) < 10_000 else ""
            out.setdefault(name or short_name(iri), first.get("value", first.get("object")))
    return out


_SHORT: dict[str, str] = {}  # attribute IRI -> short name; IRIs repeat across entities


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _traffic(v: Values) -> str:
    if v.get("congested") is True:
        return "bad"
    speed = _num(v.get("averageVehicleSpeed"))
    return "warn" if speed is not None and speed < 20 else "ok"


def _parking(v: Values) -> str:
    free = _num(v.get("availableSpotNumber"))
    total = _num(v.get("totalSpotNumber"))
    if free is None or not total:
        return "none"
    share = free / total
    return "bad" if share < 0.05 else "warn" if share < 0.2 else "ok"


def _air(v: Values) -> str:
    # the Korean PM10 bands (좋음 ≤30, 보통 ≤80, 나쁨 ≤150 µg/m³)
    pm10 = _num(v.get("pm10"))
    if pm10 is None:
        return "none"
    return "bad" if pm10 > 80 else "warn" if pm10 > 30 else "ok"


def _complaint(v: Values) -> str:
    return "ok" if str(v.get("status") or "").lower() == "closed" else "warn"


def _signal(v: Values) -> str:
    return "ok" if v.get("signalState") else "none"


def _alert(v: Values) -> str:
    return "bad"


LAYERS: dict[str, Layer] = {lay.key: lay for lay in (
    Layer("signals", ("TrafficSignal",), _signal),
    Layer("traffic", ("TrafficFlowObserved",), _traffic),
    Layer("parking", ("OffStreetParking", "OnStreetParking", "ParkingSpot"), _parking),
    Layer("air", ("AirQualityObserved",), _air),
    Layer("complaints", ("ServiceRequest",), _complaint),
    Layer("alerts", ("AIProposal",), _alert),
)}


def parse_bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    """``minLon,minLat,maxLon,maxLat``; BadRequestData naming what is wrong."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise BadRequestData("bbox must be four numbers: minLon,minLat,maxLon,maxLat")
    x0, y0, x1, y1 = vals
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise BadRequestData("bbox: longitudes must be in [-180, 180], latitudes in [-90, 90]")
    if x0 > x1 or y0 > y1:
        raise BadRequestData("bbox: the minimum must not be above the maximum "
                             "(minLon,minLat,maxLon,maxLat)")
    return x0, y0, x1, y1


def parse_layers(raw: str | None) -> list[Layer]:
    if not raw:
        return list(LAYERS.values())
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    unknown = [k for k in keys if k not in LAYERS]
    if unknown or not keys:
        raise BadRequestData(f"layers: unknown layer {', '.join(unknown) or '(none)'}; "
                             f"choose from {', '.join(LAYERS)}")
    return [LAYERS[k] for k in keys]


def point_of(geo: Any) -> tuple[float, float] | None:
    """A representative (lon, lat) of a GeoJSON geometry: a point, or a middle vertex."""
    if not isinstance(geo, dict):
        return None
    coords = geo.get("coordinates")
    if geo.get("type") == "Point" and isinstance(coords, list) and len(coords) >= 2:
        lon, lat = coords[0], coords[1]
        if (type(lon) in (int, float) and type(lat) in (int, float)
                and -180 <= lon <= 180 and -90 <= lat <= 90):
            return float(lon), float(lat)
    while isinstance(coords, list) and coords and isinstance(coords[0], list):
        coords = coords[len(coords) // 2]
    if (isinstance(coords, list) and len(coords) >= 2
            and all(isinstance(c, int | float) for c in coords[:2])):
        lon, lat = float(coords[0]), float(coords[1])
        if -180 <= lon <= 180 and -90 <= lat <= 90:
            return lon, lat
    return None


class MapData:
    """Reads the hub for the console map with one caller's rights."""

    def __init__(self, services: Any, cache: LayerCache | None = None) -> None:
        self.s = services
        self.cache = cache or LayerCache({t for lay in LAYERS.values() for t in lay.types})
        if cache is None:
            services.hub.listeners.append(self.cache)

    def _present(self, tenant: str, caller: Caller) -> list[str]:
        """The type IRIs of the tenant's entities that ``caller`` may query."""
        present = list(self.s.store.count_types(tenant))
        if caller.anonymous:
            public = self.s.keys.public_types(tenant)
            present = [t for t in present if t in public]
        return present

    def snapshot(self, tenant: str, caller: Caller) -> Snapshot:
        """Every point ``caller`` may see on the whole map, from the cache when current."""
        caller.require(tenant, "read")
        key = view_key(tenant, caller, lambda: frozenset(self.s.keys.public_types(tenant)))
        snap = self.cache.get(key, tenant)
        if snap is not None:
            return snap
        with self.cache.building(key):  # one build per view at a time; the others wait for it
            snap = self.cache.get(key, tenant)
            if snap is None:
                version = self.cache.version(tenant)
                started = self.cache.clock()
                snap = self._build(tenant, caller)
                self.cache.put(key, tenant, snap, version, started)
        return snap

    def _build(self, tenant: str, caller: Caller) -> Snapshot:
        hub = self.s.hub
        present = self._present(tenant, caller)
        points: dict[str, list[Point]] = {}
        kinds: dict[tuple[str, ...], tuple[list[str], Any]] = {}
        for layer in LAYERS.values():
            types = tuple(t for t in present if short_name(t) in layer.types)
            pts = points[layer.key] = []
            if not types:
                continue
            if layer.key == "alerts":
                for ent, at in self._alerts(tenant, caller, types, None):
                    vals = values(ent)
                    pts.append(Point(round(at[0], 6), round(at[1], 6), ent["id"],
                                     ent["type"], _name(ent, vals), layer.status(vals)))
                continue
            # each entity becomes its point at once: keeping 10,000 decoded documents alive
            # would make the garbage collector walk them again and again
            for ent in self.s.store.query_entities(tenant, EntityFilter(types=types)):
                key = tuple(ent["type"])
                kind = kinds.get(key)
                if kind is None:  # one types list and one predicate per kind of entity
                    kind = kinds[key] = (ent["type"], hub.hidden(tenant, caller, ent["type"]))
                typ, hide = kind
                if hide is not None and hide(LOCATION):
                    continue
                pt = point_of((ent["attrs"].get(LOCATION) or [{}])[0].get("value"))
                if pt is None:
                    continue
                if hide is not None:  # hub.visible, with the predicate looked up once
                    ent = strip_attrs(ent, hide)
                vals = values(ent)
                pts.append(Point(round(pt[0], 6), round(pt[1], 6), ent["id"], typ,
                                 _name(ent, vals), layer.status(vals)))
        # whether a read is recorded depends on the entity's types only: ask once per types
        first = {tuple(p.types): p for pts in points.values() for p in pts}
        shown = [(p.id, p.types, [LOCATION]) for p in first.values()]
        return Snapshot(points, hub.read_recorder(tenant, caller, shown) is not None)

    def select(self, tenant: str, caller: Caller, layers: list[Layer],
               bbox: tuple[float, float, float, float] | None
               ) -> tuple[Snapshot, dict[str, list[Point]], dict[str, int], bool]:
        """The snapshot, the chosen layers' points in ``bbox`` (at most MAX_FEATURES in
        all), their counts and whether some were left out; records the reads."""
        snap = self.snapshot(tenant, caller)
        chosen: dict[str, list[Point]] = {}
        total = 0
        truncated = False
        for layer in layers:
            pts = snap.points.get(layer.key, [])
            if bbox is not None:
                x0, y0, x1, y1 = bbox
                pts = [p for p in pts if x0 <= p.lon <= x1 and y0 <= p.lat <= y1]
            if total + len(pts) > MAX_FEATURES:
                pts = pts[:MAX_FEATURES - total]
                truncated = True
            chosen[layer.key] = pts
            total += len(pts)
        if snap.records_reads:
            shown = [(p.id, p.types, [LOCATION]) for pts in chosen.values() for p in pts]
            op = self.s.hub.read_recorder(tenant, caller, shown)
            if op is not None:
                self.s.store.write(op)
        return snap, chosen, {k: len(v) for k, v in chosen.items()}, truncated

    def layers(self, tenant: str, caller: Caller, layers: list[Layer],
               bbox: tuple[float, float, float, float] | None) -> dict[str, Any]:
        """A FeatureCollection with ``counts`` per layer and ``truncated``."""
        _snap, chosen, counts, truncated = self.select(tenant, caller, layers, bbox)
        feats = [{"type": "Feature", "id": p.id,
                  "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
                  "properties": {"layer": key, "name": p.name, "status": p.status}}
                 for key, pts in chosen.items() for p in pts]
        return {"type": "FeatureCollection", "features": feats, "counts": counts,
                "truncated": truncated}

    def points(self, tenant: str, caller: Caller, layers: list[Layer],
               bbox: tuple[float, float, float, float] | None) -> bytes:
        """The compact form (``COMPACT``) as JSON bytes; the whole map's is kept rendered."""
        snap, chosen, counts, truncated = self.select(tenant, caller, layers, bbox)
        cache_key = ("points", tuple(chosen)) if bbox is None else None
        body = snap.bodies.get(cache_key) if cache_key else None
        if body is None:
            st = {s: i for i, s in enumerate(STATUSES)}
            body = orjson.dumps({
                "format": COMPACT, "statuses": list(STATUSES), "counts": counts,
                "truncated": truncated,
                "layers": {key: [[p.lon, p.lat, p.id, st.get(p.status, 0)]
                                 + ([p.name] if p.name != _tail(p.id) else [])
                                 for p in pts] for key, pts in chosen.items()}})
            if cache_key:
                snap.bodies[cache_key] = body
        return body

    def _alerts(self, tenant: str, caller: Caller, types: tuple[str, ...],
                bbox: tuple[float, float, float, float] | None
                ) -> list[tuple[dict[str, Any], tuple[float, float]]]:
        """Pending proposals, placed at their target entity."""
        out = []
        reader = self.s.store.reader()
        for ent in self.s.store.query_entities(tenant, EntityFilter(types=types)):
            if values(ent).get("status") != "pending":
                continue
            target = (ent["attrs"].get(DV + "target") or [{}])[0].get("object")
            first = target[0] if isinstance(target, list) and target else target
            if not isinstance(first, str):
                continue
            tgt = reader.get_entity(tenant, first)
            if tgt is None:
                continue
            if caller.anonymous and not (set(tgt["type"]) & self.s.keys.public_types(tenant)):
                continue
            tgt = self.s.hub.visible(tenant, caller, tgt)
            pt = point_of((tgt["attrs"].get(LOCATION) or [{}])[0].get("value"))
            if pt is not None and _inside(pt, bbox):
                out.append((ent, pt))
        return out

    def entity(self, tenant: str, caller: Caller, eid: str, last_n: int = HISTORY_N
               ) -> dict[str, Any]:
        """An entity's latest values and the recent history of its numeric attributes."""
        caller.require(tenant, "read")
        stored = self.s.store.reader().get_entity(tenant, eid)
        if stored is None or (caller.anonymous and not (
                set(stored["type"]) & self.s.keys.public_types(tenant))):
            raise ResourceNotFound(f"entity {eid} not found")
        ent = self.s.hub.visible(tenant, caller, stored)
        hidden = sorted(set(stored["attrs"]) - set(ent["attrs"]))
        attrs = []
        numeric = []
        for iri in sorted(ent["attrs"], key=short_name):
            inst = ent["attrs"][iri][0] if ent["attrs"][iri] else {}
            value = inst.get("value", inst.get("object", inst.get("languageMap")))
            if iri == LOCATION:
                continue
            attrs.append({"name": short_name(iri), "value": value,
                          "unitCode": inst.get("unitCode"),
                          "observedAt": inst.get("observedAt")})
            if _num(value) is not None:
                numeric.append(iri)
        history: dict[str, list[list[Any]]] = {}
        if numeric:
            rows = self.s.store.history(tenant, eid, TemporalFilter(attrs=tuple(numeric),
                                                                     last_n=last_n))
            for r in rows:
                val = _num(r.doc.get("value"))
                if val is not None:
                    history.setdefault(short_name(r.attr), []).append(
                        [r.observed_at or r.recorded_at, val])
        op = self.s.hub.read_recorder(tenant, caller, [(eid, stored["type"],
                                                         list(ent["attrs"]))])
        if op is not None:
            self.s.store.write(op)
        purposes: set[str] = set()
        if hidden:
            _names, allowed = self.s.trust.privacy.access.sensitive(stored["type"], hidden)
            purposes = set(allowed)
        return {"id": eid, "type": [short_name(t) for t in stored["type"]], "attrs": attrs,
                "hidden": len(hidden), "hiddenPurposes": sorted(purposes),
                "history": history}


def _inside(pt: tuple[float, float], bbox: tuple[float, float, float, float] | None) -> bool:
    if bbox is None:
        return True
    return bbox[0] <= pt[0] <= bbox[2] and bbox[1] <= pt[1] <= bbox[3]


def _tail(eid: str) -> str:
    return eid.rsplit(":", 1)[-1][:80]


def _name(ent: dict[str, Any], vals: Values) -> str:
    name = vals.get("name")
    if isinstance(name, str) and name:
        return name[:80]
    return _tail(str(ent["id"]))
