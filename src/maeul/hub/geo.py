"""NGSI-LD geo-queries (ETSI GS CIM 009 v1.8 §4.10) over GeoJSON geometries, using shapely 2.

Geometries are GeoJSON in WGS84 lon/lat; as RFC 7946 says, their edges are straight lines in
lon/lat, and all topological predicates are evaluated that way. Distances are great-circle
distances on a sphere of radius 6371008.8 m (haversine) measured to a point *on* the entity
geometry, so a distance never underestimates and :func:`query_bbox` stays a safe prefilter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

__all__ = [
    "EARTH_RADIUS_M",
    "GEOMETRY_TYPES",
    "GEORELS",
    "GeoQuery",
    "GeoQueryError",
    "bbox_of",
    "compile_geo",
    "distance_m",
    "haversine_m",
    "parse_geo_query",
    "query_bbox",
    "validate_geojson",
]

EARTH_RADIUS_M = 6371008.8
GEORELS = frozenset({"near", "within", "contains", "intersects", "overlaps", "equals", "disjoint"})
GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
# Nesting depth of "coordinates" per geometry type (0 = a single position).
_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}
_FULL_LON = (-180.0, 180.0)

BBox = tuple[float, float, float, float]


class GeoQueryError(ValueError):
    """A geo-query or GeoJSON geometry is invalid."""


@dataclass(frozen=True)
class GeoQuery:
    """A validated geo-query; ``geometry`` is a GeoJSON geometry object."""

    georel: str
    geometry: dict[str, Any]
    geoproperty: str = "location"
    max_distance: float | None = None
    min_distance: float | None = None


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _check_position(pos: Any, where: str) -> None:
    if not isinstance(pos, list) or len(pos) not in (2, 3):
        raise GeoQueryError(f"{where}: a position must be an array of 2 or 3 numbers, got {pos!r}")
    for n in pos:
        if isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n):
            raise GeoQueryError(
                f"{where}: a position must be an array of 2 or 3 finite numbers, got {pos!r}"
            )
    lon, lat = pos[0], pos[1]
    if abs(lon) > 180:
        raise GeoQueryError(f"{where}: longitude {lon} is outside [-180, 180]")
    if abs(lat) > 90:
        raise GeoQueryError(f"{where}: latitude {lat} is outside [-90, 90]")


def _check_positions(items: Any, where: str, minimum: int) -> None:
    if not isinstance(items, list) or (items and not isinstance(items[0], list)):
        raise GeoQueryError(f"{where}: expected an array of positions, got {items!r}")
    for i, pos in enumerate(items):
        _check_position(pos, f"{where}[{i}]")
    if len(items) < minimum:
        raise GeoQueryError(f"{where}: needs at least {minimum} position(s), got {len(items)}")


def _check_polygon(rings: Any, where: str) -> None:
    if not isinstance(rings, list) or not rings:
        raise GeoQueryError(f"{where}: a polygon must be a non-empty array of linear rings")
    for i, ring in enumerate(rings):
        _check_positions(ring, f"{where}[{i}]", 4)
        if ring[0][:2] != ring[-1][:2]:
            raise GeoQueryError(f"{where}[{i}]: linear ring is not closed (first != last position)")


def _check_list(items: Any, where: str) -> list[Any]:
    if not isinstance(items, list) or not items:
        raise GeoQueryError(f"{where}: expected a non-empty array, got {items!r}")
    return items


def validate_geojson(value: Any) -> None:
    """Raise :class:`GeoQueryError` unless ``value`` is a valid GeoJSON geometry of the six
    supported types: positions of 2-3 finite numbers within WGS84 ranges, the right nesting
    depth, line strings of >= 2 positions, closed rings of >= 4 positions, and polygons that
    shapely considers valid (no self-intersections)."""
    if not isinstance(value, dict):
        raise GeoQueryError(f"a GeoJSON geometry must be an object, got {type(value).__name__}")
    kind = value.get("type")
    if kind not in GEOMETRY_TYPES:
        raise GeoQueryError(
            f"unsupported geometry type {kind!r}; expected one of {sorted(GEOMETRY_TYPES)}"
        )
    if "coordinates" not in value:
        raise GeoQueryError(f"{kind}: missing 'coordinates'")
    coords = value["coordinates"]
    where = f"{kind}.coordinates"
    if kind == "Point":
        _check_position(coords, where)
    elif kind == "MultiPoint":
        _check_positions(_check_list(coords, where), where, 1)
    elif kind == "LineString":
        _check_positions(coords, where, 2)
    elif kind == "MultiLineString":
        for i, line in enumerate(_check_list(coords, where)):
            _check_positions(line, f"{where}[{i}]", 2)
    elif kind == "Polygon":
        _check_polygon(coords, where)
    else:
        for i, poly in enumerate(_check_list(coords, where)):
            _check_polygon(poly, f"{where}[{i}]")
    if kind in ("Polygon", "MultiPolygon"):
        geom = shape(value)
        if not geom.is_valid:
            raise GeoQueryError(f"{kind}: invalid polygon ({shapely.is_valid_reason(geom)})")


def _parse_distance(text: str, name: str) -> float:
    try:
        d = float(text)
    except ValueError:
        raise GeoQueryError(f"georel: {name} must be a number, got {text!r}") from None
    if not math.isfinite(d) or d < 0:
        raise GeoQueryError(f"georel: {name} must be a finite non-negative number, got {text!r}")
    return d


def parse_geo_query(
    georel: str,
    geometry: str,
    coordinates: str | list[Any],
    geoproperty: str | None = None,
) -> GeoQuery:
    """Build a :class:`GeoQuery` from the HTTP parameters (``coordinates`` as JSON text) or a
    subscription ``geoQ`` (``coordinates`` already a list). Raises :class:`GeoQueryError`."""
    parts = georel.split(";")
    rel = parts[0]
    if rel not in GEORELS:
        raise GeoQueryError(f"georel: unknown relation {rel!r}; expected one of {sorted(GEORELS)}")
    max_d: float | None = None
    min_d: float | None = None
    for modifier in parts[1:]:
        if rel != "near":
            raise GeoQueryError(f"georel: {rel!r} takes no modifiers, got {modifier!r}")
        name, sep, number = modifier.partition("==")
        if not sep or name not in ("maxDistance", "minDistance"):
            raise GeoQueryError(
                f"georel: expected 'maxDistance==<m>' or 'minDistance==<m>', got {modifier!r}"
            )
        if (max_d if name == "maxDistance" else min_d) is not None:
            raise GeoQueryError(f"georel: {name} given twice")
        if name == "maxDistance":
            max_d = _parse_distance(number, name)
        else:
            min_d = _parse_distance(number, name)
    if rel == "near" and (max_d is None) == (min_d is None):
        raise GeoQueryError("georel: near needs exactly one of maxDistance or minDistance")
    if geometry not in GEOMETRY_TYPES:
        raise GeoQueryError(
            f"geometry: unsupported type {geometry!r}; expected one of {sorted(GEOMETRY_TYPES)}"
        )
    if rel == "near" and geometry != "Point":
        raise GeoQueryError(f"geometry: near needs a Point, got {geometry}")
    coords: Any = coordinates
    if isinstance(coordinates, str):
        try:
            coords = json.loads(coordinates)
        except ValueError:
            raise GeoQueryError(f"coordinates: not a JSON array: {coordinates[:80]!r}") from None
    geom = {"type": geometry, "coordinates": coords}
    validate_geojson(geom)
    prop = "location" if geoproperty is None else geoproperty
    if not isinstance(prop, str) or not prop:
        raise GeoQueryError("geoproperty: must be a non-empty attribute name")
    return GeoQuery(rel, geom, prop, max_d, min_d)


# ---------------------------------------------------------------------------------------------
# Distances
# ---------------------------------------------------------------------------------------------


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two lon/lat points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _positions(coords: Any) -> list[list[float]]:
    if coords and isinstance(coords[0], list):
        out: list[list[float]] = []
        for c in coords:
            out.extend(_positions(c))
        return out
    return [coords] if coords else []


def _distance_to(lon0: float, lat0: float, geometry: dict[str, Any], geom: BaseGeometry) -> float:
    """Haversine distance from (lon0, lat0) to a nearest point on ``geom``.

    Point sets are measured vertex by vertex (exact, wraps the antimeridian). For lines and
    polygons the nearest point is found in a local equirectangular frame centred on the query
    point (x scaled by cos(lat0)), then measured with haversine: the point found lies on the
    geometry, so the result is an upper bound of the true minimum and exact for short ranges.
    """
    if geometry["type"] in ("Point", "MultiPoint"):
        return min(haversine_m(lon0, lat0, p[0], p[1]) for p in _positions(geometry["coordinates"]))
    k = max(math.cos(math.radians(lat0)), 1e-9)

    def to_local(xy: Any) -> Any:
        out = xy.copy()
        out[:, 0] = (xy[:, 0] - lon0) * k
        out[:, 1] = xy[:, 1] - lat0
        # GEOS turns subnormal segment lengths into NaN; snapping to 1e-12 degrees (well inside
        # query_bbox's margin) keeps every coordinate either 0 or comfortably normal.
        return np.round(out, 12)

    local = shapely.transform(geom, to_local)
    with np.errstate(all="ignore"):
        nearest = nearest_points(local, Point(0.0, 0.0))[0]
    if not (math.isfinite(nearest.x) and math.isfinite(nearest.y)):
        # Still degenerate: fall back to the nearest vertex, which is also on the geometry.
        pts = _positions(geometry["coordinates"])
        return min(haversine_m(lon0, lat0, p[0], p[1]) for p in pts)
    lon = min(180.0, max(-180.0, nearest.x / k + lon0))
    lat = min(90.0, max(-90.0, nearest.y + lat0))
    return haversine_m(lon0, lat0, lon, lat)


def _query_point(q: GeoQuery) -> tuple[float, float]:
    if q.geometry["type"] == "Point":
        c = q.geometry["coordinates"]
        return float(c[0]), float(c[1])
    centre = shape(q.geometry).centroid
    return centre.x, centre.y


def distance_m(q: GeoQuery, geometry: dict[str, Any]) -> float:
    """Metres from the query point (the centroid for non-Point queries) to ``geometry``."""
    lon0, lat0 = _query_point(q)
    return _distance_to(lon0, lat0, geometry, shape(geometry))


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def compile_geo(q: GeoQuery) -> Callable[[dict[str, Any] | None], bool]:
    """A predicate over an entity's GeoJSON geometry (None or unreadable geometry -> False)."""
    if q.georel == "near":
        lon0, lat0 = _query_point(q)
        limit_max, limit_min = q.max_distance, q.min_distance

        def near(value: dict[str, Any] | None) -> bool:
            geom = _shape_or_none(value)
            if geom is None or value is None:
                return False
            d = _distance_to(lon0, lat0, value, geom)
            if limit_max is not None:
                return d <= limit_max
            return limit_min is not None and d >= limit_min

        return near

    query_geom = shape(q.geometry)
    shapely.prepare(query_geom)  # Prepared geometry speeds up predicates where it comes first.
    # Each relation is written with the prepared query geometry as the first operand.
    relation: Callable[[BaseGeometry], bool] = {
        "within": lambda g: bool(shapely.contains(query_geom, g)),
        "contains": lambda g: bool(shapely.within(query_geom, g)),
        "intersects": lambda g: bool(shapely.intersects(query_geom, g)),
        "overlaps": lambda g: bool(shapely.overlaps(query_geom, g)),
        "equals": lambda g: bool(shapely.equals(query_geom, g)),
        "disjoint": lambda g: bool(shapely.disjoint(query_geom, g)),
    }[q.georel]

    def test(value: dict[str, Any] | None) -> bool:
        geom = _shape_or_none(value)
        if geom is None:
            return False
        try:
            return relation(geom)
        except GEOSException:  # stored geometry that GEOS cannot evaluate: treat as no match
            return False

    return test


def _shape_or_none(value: Any) -> BaseGeometry | None:
    if not isinstance(value, dict) or value.get("type") not in GEOMETRY_TYPES:
        return None
    try:
        geom = shape(value)
    except (GEOSException, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return None if geom.is_empty else geom


# ---------------------------------------------------------------------------------------------
# Bounding boxes (index prefilter)
# ---------------------------------------------------------------------------------------------


def bbox_of(geometry: dict[str, Any]) -> BBox:
    """(minlon, minlat, maxlon, maxlat) of a GeoJSON geometry's positions."""
    points = _positions(geometry.get("coordinates"))
    if not points:
        raise GeoQueryError("geometry has no positions")
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    return (min(lons), min(lats), max(lons), max(lats))


def query_bbox(q: GeoQuery) -> BBox | None:
    """A box that every matching entity geometry intersects, or None (no prefilter possible).

    For ``near;maxDistance`` it holds every point within the distance of the query point: the
    latitude span is d/R, and the longitude half-span is asin(sin(d/R) / cos(lat)) — the exact
    extreme of a spherical cap, which is wider than d/R/cos(lat). Caps reaching a pole or
    crossing the antimeridian use the full longitude range.
    """
    if q.georel == "near":
        if q.max_distance is None:
            return None
        lon0, lat0 = _query_point(q)
        # A relative margin guards against rounding in the haversine comparisons.
        delta = q.max_distance / EARTH_RADIUS_M * (1 + 1e-9) + 1e-12
        if delta >= math.pi:
            return (-180.0, -90.0, 180.0, 90.0)
        dlat = math.degrees(delta)
        min_lat, max_lat = lat0 - dlat, lat0 + dlat
        if min_lat <= -90 or max_lat >= 90:
            return (-180.0, max(-90.0, min_lat), 180.0, min(90.0, max_lat))
        ratio = math.sin(delta) / math.cos(math.radians(lat0))
        if ratio >= 1:
            return (-180.0, min_lat, 180.0, max_lat)
        dlon = math.degrees(math.asin(ratio))
        min_lon, max_lon = lon0 - dlon, lon0 + dlon
        if min_lon < -180 or max_lon > 180:
            min_lon, max_lon = _FULL_LON
        return (min_lon, min_lat, max_lon, max_lat)
    if q.georel == "disjoint":
        return None
    return bbox_of(q.geometry)
