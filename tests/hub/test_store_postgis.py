"""PostgreSQL with PostGIS: the location boxes under a GiST index give the same answers as the
plain-SQL prefilter, and the index is what the planner can use.

CI installs PostGIS beside PostgreSQL (.ci/run); on a laptop without it these tests skip.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import REQUIRE, drop_pg_database, fresh_pg_database
from maeul.hub.store.base import EntityFilter, open_store
from maeul.hub.store.postgres import PostgresStore

LOC = "https://uri.etsi.org/ngsi-ld/location"
T = "https://ex.org/Thing"


@pytest.fixture
def two_stores(pg_server: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    made = [fresh_pg_database(pg_server) for _ in range(2)]
    a = open_store(made[0][1], postgis="auto")
    b = open_store(made[1][1], postgis="off")
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    if not a.postgis:
        a.close()
        b.close()
        for name, _ in made:
            drop_pg_database(pg_server, name)
        msg = "PostGIS is not installed (apt-get install postgresql-15-postgis-3)"
        if REQUIRE:
            pytest.fail(f"MAEUL_REQUIRE_SERVICES=1 but {msg}")
        pytest.skip(msg)
    yield a, b
    a.close()
    b.close()
    for name, _ in made:
        drop_pg_database(pg_server, name)


def shapes(rnd: random.Random, i: int) -> dict[str, Any]:
    x, y = rnd.uniform(126.0, 128.0), rnd.uniform(36.0, 38.0)
    kind = i % 4
    if kind == 0:
        geo = {"type": "Point", "coordinates": [x, y]}
    elif kind == 1:
        geo = {"type": "LineString", "coordinates": [[x, y], [x + 0.05, y + 0.02]]}
    elif kind == 2:
        geo = {"type": "Polygon", "coordinates": [[[x, y], [x + 0.03, y], [x + 0.03, y + 0.03],
                                                   [x, y + 0.03], [x, y]]]}
    else:
        geo = {"type": "MultiPoint", "coordinates": [[x, y], [x - 0.1, y - 0.1]]}
    attrs: dict[str, Any] = {}
    if i % 7:  # some entities have no location at all
        attrs[LOC] = [{"type": "GeoProperty", "value": geo}]
    return {"id": f"urn:t:{i:04d}", "type": [T], "attrs": attrs}


def test_postgis_and_plain_sql_prefilters_agree(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    rnd = random.Random(5)
    ents = [shapes(rnd, i) for i in range(400)]
    for s in two_stores:
        def load(tx: Any) -> None:
            tx.ensure_tenant("t")
            for e in ents:
                tx.put_entity("t", e, True)

        s.write(load)
    gis, plain = two_stores
    for _ in range(60):
        x, y = rnd.uniform(125.9, 128.1), rnd.uniform(35.9, 38.1)
        w, h = rnd.choice([0.0, 0.01, 0.2, 1.0]), rnd.choice([0.0, 0.02, 0.3, 1.5])
        box = (x, y, x + w, y + h)
        flt = EntityFilter(types=(T,), bbox=box)
        got = [e["id"] for e in gis.query_entities("t", flt)]
        want = [e["id"] for e in plain.query_entities("t", flt)]
        assert got == want, box
    # an entity moved, or its location removed, leaves the old box behind
    moved = dict(ents[1], attrs={LOC: [{"type": "GeoProperty", "value": {
        "type": "Point", "coordinates": [0.5, 0.5]}}]})
    gone = dict(ents[2], attrs={})
    for s in two_stores:
        s.write(lambda tx: (tx.put_entity("t", moved, False), tx.put_entity("t", gone, False)))
    for box in [(0.0, 0.0, 1.0, 1.0), (125.0, 35.0, 129.0, 39.0)]:
        flt = EntityFilter(bbox=box)
        assert [e["id"] for e in gis.query_entities("t", flt)] == [
            e["id"] for e in plain.query_entities("t", flt)]
    assert [e["id"] for e in gis.query_entities("t", EntityFilter(bbox=(0, 0, 1, 1)))] == [
        "urn:t:0001"]


def test_the_geo_prefilter_can_use_the_gist_index(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    gis, _ = two_stores
    from maeul.hub.store.postgres import pg_sql
    from maeul.hub.store.sqlbase import entity_query_sql

    sql, params = entity_query_sql("t", EntityFilter(bbox=(1, 2, 3, 4)), dialect="postgres",
                                   postgis=True)
    assert "e.geom &&" in sql
    with gis.pool.connection() as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + pg_sql(sql), params))
    assert "entities_geom" in plan, plan


def test_postgis_off_needs_no_extension(pg_server: str) -> None:
    name, url = fresh_pg_database(pg_server)
    try:
        s = open_store(url, postgis="off")
        assert isinstance(s, PostgresStore) and not s.postgis
        s.close()
        with pytest.raises(ValueError, match="postgis must be"):
            PostgresStore(url, postgis="yes")
    finally:
        drop_pg_database(pg_server, name)
