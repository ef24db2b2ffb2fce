"""Tests for maeul.hub.geo: geo-query parsing, predicates, distances and index bounding boxes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from maeul.hub.geo import (
    EARTH_RADIUS_M,
    GeoQuery,
    GeoQueryError,
    bbox_of,
    compile_geo,
    distance_m,
    haversine_m,
    parse_geo_query,
    query_bbox,
    validate_geojson,
)

ONE_DEGREE_M = EARTH_RADIUS_M * math.pi / 180  # ≈ 111195.08 m


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def square(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


SQUARE = "[[[0,0],[2,0],[2,2],[0,2],[0,0]]]"


# ------------------------------------------------------------------------------ parsing


def test_parse_near() -> None:
    q = parse_geo_query("near;maxDistance==2000", "Point", "[8.68,49.40]", None)
    assert q == GeoQuery("near", point(8.68, 49.40), "location", 2000.0, None)
    q = parse_geo_query("near;minDistance==10.5", "Point", [8.68, 49.40], "position")
    assert (q.min_distance, q.max_distance, q.geoproperty) == (10.5, None, "position")


@pytest.mark.parametrize("rel", ["within", "contains", "intersects", "overlaps", "equals"])
def test_parse_topological(rel: str) -> None:
    q = parse_geo_query(rel, "Polygon", SQUARE, None)
    assert q.georel == rel and q.geometry["type"] == "Polygon"
    assert q.max_distance is None and q.min_distance is None


def test_parse_all_geometry_types() -> None:
    for geometry, coords in [
        ("Point", "[1,2,3]"),
        ("MultiPoint", "[[1,2],[3,4]]"),
        ("LineString", "[[1,2],[3,4]]"),
        ("MultiLineString", "[[[1,2],[3,4]],[[5,6],[7,8]]]"),
        ("Polygon", SQUARE),
        ("MultiPolygon", f"[{SQUARE},[[[5,5],[6,5],[6,6],[5,5]]]]"),
    ]:
        assert parse_geo_query("intersects", geometry, coords, None).geometry["type"] == geometry


@pytest.mark.parametrize(
    ("georel", "geometry", "coords", "message"),
    [
        ("nearby", "Point", "[0,0]", "unknown relation 'nearby'"),
        ("near", "Point", "[0,0]", "exactly one of maxDistance or minDistance"),
        ("near;maxDistance==1;minDistance==2", "Point", "[0,0]", "exactly one of"),
        ("near;maxDistance==1;maxDistance==2", "Point", "[0,0]", "maxDistance given twice"),
        ("near;maxDistance:1", "Point", "[0,0]", "expected 'maxDistance==<m>'"),
        ("near;radius==1", "Point", "[0,0]", "expected 'maxDistance==<m>'"),
        ("near;maxDistance==abc", "Point", "[0,0]", "maxDistance must be a number"),
        ("near;maxDistance==-5", "Point", "[0,0]", "finite non-negative"),
        ("near;maxDistance==inf", "Point", "[0,0]", "finite non-negative"),
        ("within;maxDistance==5", "Polygon", SQUARE, "'within' takes no modifiers"),
        ("near;maxDistance==5", "Polygon", SQUARE, "near needs a Point"),
        ("within", "Circle", "[0,0]", "unsupported type 'Circle'"),
        ("within", "Point", "[0,0", "not a JSON array"),
        ("within", "Point", "[181,0]", "longitude 181 is outside"),
        ("within", "Point", "[0,-90.5]", "latitude -90.5 is outside"),
        ("within", "Point", "[0]", "array of 2 or 3 numbers"),
        ("within", "Point", "[0,1,2,3]", "array of 2 or 3 numbers"),
        ("within", "Point", '[0,"1"]', "finite numbers"),
        ("within", "Point", "[0,true]", "finite numbers"),
        ("within", "Point", "[[0,1]]", "array of 2 or 3 numbers"),
        ("within", "MultiPoint", "[0,1]", "expected an array of positions"),
        ("within", "MultiPoint", "[]", "non-empty array"),
        ("within", "LineString", "[[0,1]]", "at least 2 position"),
        ("within", "LineString", "[[[0,1],[1,1]]]", "array of 2 or 3 finite numbers"),
        ("within", "MultiLineString", "[[0,1],[1,1]]", "expected an array of positions"),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", "not closed"),
        ("within", "Polygon", "[[[0,0],[1,0],[0,0]]]", "at least 4 position"),
        ("within", "Polygon", "[[0,0],[1,0],[1,1],[0,0]]", "expected an array of positions"),
        ("within", "Polygon", "[]", "non-empty array of linear rings"),
        ("within", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]", "invalid polygon"),
        ("within", "MultiPolygon", SQUARE, "expected an array of positions"),
    ],
)
def test_parse_errors(georel: str, geometry: str, coords: str, message: str) -> None:
    with pytest.raises(GeoQueryError, match=None) as info:
        parse_geo_query(georel, geometry, coords, None)
    assert message in str(info.value)


def test_empty_geoproperty_rejected() -> None:
    with pytest.raises(GeoQueryError, match="geoproperty"):
        parse_geo_query("within", "Polygon", SQUARE, "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([0, 0], "must be an object"),
        ({"coordinates": [0, 0]}, "unsupported geometry type None"),
        ({"type": "GeometryCollection", "geometries": []}, "unsupported geometry type"),
        ({"type": "Point"}, "missing 'coordinates'"),
        ({"type": "Point", "coordinates": [float("nan"), 0]}, "finite numbers"),
    ],
)
def test_validate_geojson_errors(value: Any, message: str) -> None:
    with pytest.raises(GeoQueryError) as info:
        validate_geojson(value)
    assert message in str(info.value)


def test_validate_geojson_accepts_valid() -> None:
    validate_geojson(point(127.0, 37.5))
    validate_geojson({"type": "Point", "coordinates": [127.0, 37.5, 30.0], "bbox": [1, 2, 3, 4]})
    validate_geojson(square(0, 0, 1, 1))


# ------------------------------------------------------------------------------ distances


def test_hand_computed_distances() -> None:
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111195.08, abs=0.01)
    assert haversine_m(0, 0, 1, 0) == pytest.approx(ONE_DEGREE_M, rel=1e-12)
    # One degree of longitude at 60°N: 2R·asin(cos60°·sin 0.5°) ≈ 55597.1 m.
    assert haversine_m(10, 60, 11, 60) == pytest.approx(55597.1, abs=0.5)
    # Antipodes are half the circumference apart.
    assert haversine_m(0, 0, 180, 0) == pytest.approx(math.pi * EARTH_RADIUS_M)
    # Across the antimeridian.
    assert haversine_m(179.5, 0, -179.5, 0) == pytest.approx(ONE_DEGREE_M)


def test_distance_to_geometries() -> None:
    q = parse_geo_query("near;maxDistance==1", "Point", "[0,0]", None)
    assert distance_m(q, point(0, 1)) == pytest.approx(ONE_DEGREE_M)
    multi = {"type": "MultiPoint", "coordinates": [[0, 3], [0, -2], [5, 5]]}
    assert distance_m(q, multi) == pytest.approx(2 * ONE_DEGREE_M)
    line = {"type": "LineString", "coordinates": [[-5, 1], [5, 1]]}
    assert distance_m(q, line) == pytest.approx(ONE_DEGREE_M)
    assert distance_m(q, square(-1, -1, 1, 1)) == 0.0  # inside a polygon
    assert distance_m(q, square(1, -1, 3, 1)) == pytest.approx(ONE_DEGREE_M)


# ------------------------------------------------------------------------------ predicates


def matches(georel: str, geometry: str, coords: str, entity: Any) -> bool:
    return compile_geo(parse_geo_query(georel, geometry, coords, None))(entity)


@pytest.mark.parametrize(
    ("georel", "entity", "expected"),
    [
        ("near;maxDistance==111200", point(0, 1), True),
        ("near;maxDistance==111190", point(0, 1), False),
        ("near;minDistance==111190", point(0, 1), True),
        ("near;minDistance==111200", point(0, 1), False),
        ("near;maxDistance==0", point(0, 0), True),
        ("near;maxDistance==1000", square(-1, -1, 1, 1), True),
        (
            "near;maxDistance==111200",
            {"type": "LineString", "coordinates": [[-1, 1], [1, 1]]},
            True,
        ),
    ],
)
def test_near(georel: str, entity: Any, expected: bool) -> None:
    assert matches(georel, "Point", "[0,0]", entity) is expected


@pytest.mark.parametrize(
    ("georel", "entity", "expected"),
    [
        ("within", point(1, 1), True),
        ("within", point(3, 3), False),
        ("within", square(0.5, 0.5, 1.5, 1.5), True),
        ("within", square(1, 1, 3, 3), False),
        ("contains", square(-1, -1, 3, 3), True),
        ("contains", square(0.5, 0.5, 1.5, 1.5), False),
        ("intersects", {"type": "LineString", "coordinates": [[-1, 1], [1, 1]]}, True),
        ("intersects", {"type": "LineString", "coordinates": [[-1, 3], [3, 3]]}, False),
        ("intersects", point(2, 2), True),  # boundary counts
        ("overlaps", square(1, 1, 3, 3), True),
        ("overlaps", square(0.5, 0.5, 1.5, 1.5), False),  # contained is not overlapping
        ("overlaps", square(5, 5, 6, 6), False),
        (
            "equals",
            {"type": "Polygon", "coordinates": [[[2, 2], [0, 2], [0, 0], [2, 0], [2, 2]]]},
            True,
        ),
        ("equals", square(0, 0, 2, 3), False),
        ("disjoint", square(5, 5, 6, 6), True),
        ("disjoint", square(1, 1, 3, 3), False),
    ],
)
def test_topological(georel: str, entity: Any, expected: bool) -> None:
    assert matches(georel, "Polygon", SQUARE, entity) is expected


def test_contains_point_query() -> None:
    assert matches("contains", "Point", "[1,1]", square(0, 0, 2, 2))
    assert not matches("contains", "Point", "[5,5]", square(0, 0, 2, 2))


@pytest.mark.parametrize("georel", ["near;maxDistance==10", "near;minDistance==10"])
@pytest.mark.parametrize(
    "entity", [None, {}, "POINT(0 0)", {"type": "Point"}, {"type": "Point", "coordinates": []}]
)
def test_missing_or_garbage_geometry_is_false(georel: str, entity: Any) -> None:
    assert matches(georel, "Point", "[0,0]", entity) is False
    assert matches("intersects", "Polygon", SQUARE, entity) is False
    assert matches("disjoint", "Polygon", SQUARE, entity) is False


# ------------------------------------------------------------------------------ bounding boxes


def test_bbox_of() -> None:
    assert bbox_of(point(1, 2)) == (1, 2, 1, 2)
    assert bbox_of(square(0, -1, 3, 2)) == (0, -1, 3, 2)
    assert bbox_of(
        {"type": "MultiLineString", "coordinates": [[[1, 5], [2, 6]], [[-3, 0], [0, 0]]]}
    ) == (
        -3,
        0,
        2,
        6,
    )


def test_query_bbox_kinds() -> None:
    for rel in ("within", "contains", "intersects", "overlaps", "equals"):
        assert query_bbox(parse_geo_query(rel, "Polygon", SQUARE, None)) == (0, 0, 2, 2)
    assert query_bbox(parse_geo_query("disjoint", "Polygon", SQUARE, None)) is None
    assert query_bbox(parse_geo_query("near;minDistance==5", "Point", "[0,0]", None)) is None
    box = query_bbox(parse_geo_query("near;maxDistance==111195.08", "Point", "[10,0]", None))
    assert box == pytest.approx((9.0, -1.0, 11.0, 1.0), abs=1e-6)
    # Near a pole the cap covers every longitude.
    box = query_bbox(parse_geo_query("near;maxDistance==200000", "Point", "[10,89]", None))
    assert box is not None and box[0] == -180 and box[2] == 180 and box[3] == 90
    # Wider than 1/cos(lat) scaling: the cap's widest point is poleward of its centre.
    box = query_bbox(parse_geo_query("near;maxDistance==1000000", "Point", "[0,60]", None))
    naive = math.degrees(1e6 / EARTH_RADIUS_M) / math.cos(math.radians(60))
    assert box is not None and box[2] > naive


def destination(lon: float, lat: float, bearing: float, dist: float) -> tuple[float, float]:
    """Point reached from (lon, lat) after ``dist`` metres along ``bearing`` (degrees)."""
    d = dist / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    lon2 = (math.degrees(l2) + 540) % 360 - 180
    return lon2, math.degrees(p2)


@settings(max_examples=500)
@given(
    lon=st.floats(-180, 180),
    lat=st.one_of(st.floats(-90, 90), st.floats(85, 90), st.floats(-90, -85)),
    max_d=st.floats(0, 3_000_000),
    bearing=st.floats(0, 360),
    frac=st.one_of(st.floats(0, 1), st.just(1.0)),
)
def test_bbox_never_excludes_a_match(
    lon: float, lat: float, max_d: float, bearing: float, frac: float
) -> None:
    q = parse_geo_query(f"near;maxDistance=={max_d!r}", "Point", [lon, lat], None)
    lon2, lat2 = destination(lon, lat, bearing, max_d * frac)
    assume(abs(lat2) <= 90)
    target = point(lon2, lat2)
    assume(compile_geo(q)(target))
    box = query_bbox(q)
    assert box is not None
    assert box[0] <= lon2 <= box[2] and box[1] <= lat2 <= box[3], (box, lon2, lat2)


@settings(max_examples=200)
@given(
    lon=st.floats(-170, 170),
    lat=st.floats(-80, 80),
    max_d=st.floats(1, 500_000),
    dx=st.floats(-3, 3),
    dy=st.floats(-3, 3),
)
def test_bbox_covers_matching_lines(
    lon: float, lat: float, max_d: float, dx: float, dy: float
) -> None:
    q = parse_geo_query(f"near;maxDistance=={max_d!r}", "Point", [lon, lat], None)
    line = {"type": "LineString", "coordinates": [[lon + dx, lat + dy], [lon - dy, lat + dx]]}
    if compile_geo(q)(line):
        box = query_bbox(q)
        assert box is not None
        lb = bbox_of(line)
        assert lb[0] <= box[2] and box[0] <= lb[2] and lb[1] <= box[3] and box[1] <= lb[3]
