"""Store conformance: every test runs against SQLite and PostgreSQL (``store_url`` fixture)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maeul.hub.errors import AlreadyExists
from maeul.hub.store.base import (
    Entity,
    EntityFilter,
    HistoryRow,
    Store,
    TemporalFilter,
    Tx,
    open_store,
)
from maeul.hub.store.sqlbase import LOCATION, SqlTx, now_iso

NS = "https://ex.org/"
T_CAR = NS + "Car"
T_BUS = NS + "Bus"
SPEED = NS + "speed"
FUEL = NS + "fuel"
T0 = "2026-01-01T00:00:00.000000Z"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def ts(minutes: int) -> str:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ent(eid: str, types: list[str] | None = None, point: Any = None, **attrs: Any) -> Entity:
    out: Entity = {"id": eid, "type": types or [T_CAR], "attrs": {}}
    for name, value in attrs.items():
        out["attrs"][NS + name] = [{"type": "Property", "value": value}]
    if point is not None:
        geo = point if isinstance(point, dict) else {"type": "Point", "coordinates": point}
        out["attrs"][LOCATION] = [{"type": "GeoProperty", "value": geo}]
    return out


def create(store: Store, tenant: str, e: Entity) -> None:
    """What the core does on create: check, then insert, in one write."""

    def op(tx: Tx) -> None:
        if tx.get_entity(tenant, e["id"]) is not None:
            raise AlreadyExists(f"entity {e['id']} already exists")
        tx.ensure_tenant(tenant)
        tx.put_entity(tenant, e, new=True)

    store.write(op)


def store_url_is_pg(store: Store) -> bool:
    return store.url.startswith("postgres")


def ids(entities: Iterator[Entity]) -> list[str]:
    return [e["id"] for e in entities]


# -- entities ---------------------------------------------------------------------------------


def test_put_get_replace_delete(store: Store) -> None:
    e = ent("urn:ngsi-ld:Car:1", speed=10)
    create(store, "", e)
    assert store.reader().get_entity("", e["id"]) == e
    assert store.reader().tenant_exists("")
    assert not store.reader().tenant_exists("other")

    e2 = ent("urn:ngsi-ld:Car:1", speed=20)
    store.write(lambda tx: tx.put_entity("", e2, new=False))
    assert store.reader().get_entity("", e["id"]) == e2

    got = store.reader().get_entities("", [e["id"], "urn:ngsi-ld:Car:none"])
    assert got == {e["id"]: e2}

    assert store.write(lambda tx: tx.delete_entity("", e["id"])) is True
    assert store.write(lambda tx: tx.delete_entity("", e["id"])) is False
    assert store.reader().get_entity("", e["id"]) is None
    assert store.count_types("") == {}


def test_create_twice_raises_already_exists(store: Store) -> None:
    create(store, "", ent("urn:ngsi-ld:Car:1"))
    with pytest.raises(AlreadyExists):
        create(store, "", ent("urn:ngsi-ld:Car:1"))


def test_entity_types_follow_type_changes(store: Store) -> None:
    create(store, "", ent("urn:a", [T_CAR], speed=1))
    create(store, "", ent("urn:b", [T_CAR, T_BUS], fuel=2))
    assert store.count_types("") == {T_CAR: 2, T_BUS: 1}
    assert store.attribute_summary("") == {SPEED: {T_CAR}, FUEL: {T_CAR, T_BUS}}

    store.write(lambda tx: tx.put_entity("", ent("urn:a", [T_BUS], speed=1), new=False))
    assert store.count_types("") == {T_CAR: 1, T_BUS: 2}
    assert ids(store.query_entities("", EntityFilter(types=(T_BUS,)))) == ["urn:a", "urn:b"]
    assert ids(store.query_entities("", EntityFilter(types=(T_CAR,)))) == ["urn:b"]

    store.write(lambda tx: tx.delete_entity("", "urn:b"))
    assert store.count_types("") == {T_BUS: 1}
    assert ids(store.query_entities("", EntityFilter(types=(T_CAR,)))) == []


def test_query_filters_and_creation_order(store: Store) -> None:
    names = ["urn:z", "urn:a:1", "urn:m", "urn:a:2", "urn:b"]
    for i, n in enumerate(names):
        create(store, "", ent(n, [T_BUS] if i % 2 else [T_CAR], point=[float(i), float(i)]))
    assert ids(store.query_entities("", EntityFilter())) == names
    assert ids(store.query_entities("", EntityFilter(types=(T_BUS,)))) == ["urn:a:1", "urn:a:2"]
    assert ids(store.query_entities("", EntityFilter(types=(T_BUS, T_CAR)))) == names
    assert ids(store.query_entities("", EntityFilter(ids=("urn:b", "urn:z", "urn:x")))) == [
        "urn:z",
        "urn:b",
    ]
    assert ids(store.query_entities("", EntityFilter(id_pattern=r"urn:a:\d"))) == [
        "urn:a:1",
        "urn:a:2",
    ]
    assert ids(store.query_entities("", EntityFilter(id_pattern="urn:a"))) == []  # full match
    flt = EntityFilter(types=(T_CAR,), ids=("urn:z", "urn:a:1", "urn:b"))
    assert ids(store.query_entities("", flt)) == ["urn:z", "urn:b"]
    # replacing an entity keeps its place in the creation order
    store.write(lambda tx: tx.put_entity("", ent("urn:z", [T_CAR], point=[0, 0]), new=False))
    assert ids(store.query_entities("", EntityFilter())) == names


def test_updates_keep_the_location_box_in_step(store: Store) -> None:
    """An update read-then-written in one operation (as the core does) moves the entity's
    box when its location moves, keeps it when only other attributes change (SQLite then
    leaves the box's index entry alone), and drops it with the location."""
    create(store, "t1", ent("urn:a", point=[1, 1], speed=1))

    def update(**attrs: Any) -> None:
        def op(tx: Any) -> None:
            old = tx.get_entity("t1", "urn:a")
            new = ent("urn:a", **attrs)
            assert old is not None and new["type"] == old["type"]
            tx.put_entity("t1", new, False)
        store.write(op)

    def where() -> list[str]:
        return [b for b, box in (("near", (0.5, 0.5, 1.5, 1.5)), ("far", (4.5, 4.5, 5.5, 5.5)))
                if ids(store.query_entities("t1", EntityFilter(bbox=box))) == ["urn:a"]]

    update(point=[1, 1], speed=2)  # the same place
    assert where() == ["near"]
    assert store.reader().get_entity("t1", "urn:a") == ent("urn:a", point=[1, 1], speed=2)
    update(point=[5, 5], speed=2)  # moved
    assert where() == ["far"]
    update(speed=3)  # no location any more
    assert where() == []
    update(point=[1, 1], speed=3)  # back
    assert where() == ["near"]


def test_bbox_prefilter_includes_touching(store: Store) -> None:
    line = {"type": "LineString", "coordinates": [[5, 5], [8, 9]]}
    create(store, "", ent("urn:in", point=[1.5, 1.5]))
    create(store, "", ent("urn:corner", point=[2, 2]))  # touches the box's corner
    create(store, "", ent("urn:edge", point=[2, 1]))  # on its edge
    create(store, "", ent("urn:out", point=[2.0001, 1]))
    create(store, "", ent("urn:line", point=line))  # bbox [5,5,8,9]: far from the first box
    create(store, "", ent("urn:noloc"))
    got = ids(store.query_entities("", EntityFilter(bbox=(1.0, 1.0, 2.0, 2.0))))
    assert got == ["urn:in", "urn:corner", "urn:edge"]
    # a polygon whose bounding box [6,0,10,5] touches the query box's corner (6,5)
    poly = {"type": "Polygon", "coordinates": [[[6, 0], [10, 0], [10, 5], [6, 0]]]}
    create(store, "", ent("urn:poly", point=poly))
    got = ids(store.query_entities("", EntityFilter(bbox=(5.0, 5.0, 6.0, 6.0))))
    assert got == ["urn:line", "urn:poly"]


def test_query_streams_many_and_stops_early(store: Store) -> None:
    n = 1203
    rows = [ent(f"urn:e:{i:05d}") for i in range(n)]

    def op(tx: Tx) -> None:
        tx.ensure_tenant("")
        for e in rows:
            tx.put_entity("", e, new=True)

    store.write(op)
    assert ids(store.query_entities("", EntityFilter())) == [e["id"] for e in rows]
    it = store.query_entities("", EntityFilter())
    first = [next(it) for _ in range(3)]
    assert [e["id"] for e in first] == ["urn:e:00000", "urn:e:00001", "urn:e:00002"]
    it.close()  # type: ignore[attr-defined]
    # the store is still usable after an abandoned stream
    assert store.reader().get_entity("", "urn:e:01202") is not None
    assert store.count_types("") == {T_CAR: n}


# -- history ----------------------------------------------------------------------------------


def hrow(
    eid: str, attr: str, minute: int, value: Any, dataset: str = "", rec: int = 0
) -> HistoryRow:
    return HistoryRow(
        entity_id=eid,
        attr=attr,
        dataset_id=dataset,
        instance_id=f"urn:i:{eid}:{attr}:{dataset}:{minute}",
        observed_at=ts(minute),
        recorded_at=ts(1000 + rec + minute),
        doc={"type": "Property", "value": value},
    )


@pytest.fixture
def history_store(store: Store) -> Store:
    rows = [hrow("urn:c:1", SPEED, m, m) for m in (3, 1, 2, 4, 5)]
    rows += [hrow("urn:c:1", FUEL, m, -m) for m in (1, 2, 3)]
    rows += [hrow("urn:c:1", SPEED, m, 100 + m, dataset="urn:ds:1") for m in (1, 2)]
    store.write(lambda tx: tx.add_history("", rows, [T_CAR]))
    store.write(lambda tx: tx.add_history("", [hrow("urn:c:2", SPEED, 1, 1)], [T_BUS]))
    store.write(lambda tx: tx.add_history("", [hrow("urn:other", SPEED, 1, 1)], [T_CAR]))
    return store


def vals(rows: list[HistoryRow]) -> list[Any]:
    return [r.doc["value"] for r in rows]


def test_history_timerel(history_store: Store) -> None:
    s = history_store
    speed = (SPEED,)
    allr = s.history("", "urn:c:1", TemporalFilter(attrs=speed))
    assert vals(allr) == [1, 101, 2, 102, 3, 4, 5]  # oldest first, ties by insertion
    assert allr[0] == hrow("urn:c:1", SPEED, 1, 1)
    before = TemporalFilter(attrs=speed, timerel="before", time_at=ts(3))
    assert vals(s.history("", "urn:c:1", before)) == [1, 101, 2, 102]
    after = TemporalFilter(attrs=speed, timerel="after", time_at=ts(3))
    assert vals(s.history("", "urn:c:1", after)) == [3, 4, 5]
    between = TemporalFilter(attrs=speed, timerel="between", time_at=ts(2), end_time_at=ts(4))
    assert vals(s.history("", "urn:c:1", between)) == [2, 102, 3]
    assert len(s.history("", "urn:c:1", TemporalFilter())) == 10
    assert s.history("", "urn:nothing", TemporalFilter()) == []


def test_history_last_n(history_store: Store) -> None:
    rows = history_store.history("", "urn:c:1", TemporalFilter(last_n=2))
    by: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        by.setdefault((r.attr, r.dataset_id), []).append(r.doc["value"])
    assert by == {(SPEED, ""): [4, 5], (FUEL, ""): [-2, -3], (SPEED, "urn:ds:1"): [101, 102]}
    # returned oldest first overall
    obs = [r.observed_at or "" for r in rows]
    assert obs == sorted(obs)
    flt = TemporalFilter(attrs=(SPEED,), last_n=1, timerel="before", time_at=ts(4))
    assert vals(history_store.history("", "urn:c:1", flt)) == [102, 3]


def test_history_modified_at(store: Store) -> None:
    rows = [hrow("urn:c:1", SPEED, m, m, rec=-2 * m) for m in (1, 2, 3)]
    # recorded_at: 999, 998, 997 (+1000 offset): reverse of observedAt order
    no_obs = HistoryRow("urn:c:1", SPEED, "", "urn:i:none", None, ts(990), {"value": 0})
    store.write(lambda tx: tx.add_history("", [*rows, no_obs], [T_CAR]))
    mod = TemporalFilter(timeproperty="modifiedAt")
    assert vals(store.history("", "urn:c:1", mod)) == [0, 3, 2, 1]
    mod_after = TemporalFilter(timeproperty="modifiedAt", timerel="after", time_at=ts(998))
    assert vals(store.history("", "urn:c:1", mod_after)) == [2, 1]
    obs_after = TemporalFilter(timerel="after", time_at=ts(2))
    assert vals(store.history("", "urn:c:1", obs_after)) == [2, 3]  # no observedAt: excluded


def test_temporal_entities(history_store: Store) -> None:
    s = history_store
    assert list(s.temporal_entities("", TemporalFilter())) == [
        ("urn:c:1", [T_CAR]),
        ("urn:c:2", [T_BUS]),
        ("urn:other", [T_CAR]),
    ]
    assert [e for e, _ in s.temporal_entities("", TemporalFilter(types=(T_BUS,)))] == ["urn:c:2"]
    assert [e for e, _ in s.temporal_entities("", TemporalFilter(id_pattern=r"urn:c:\d"))] == [
        "urn:c:1",
        "urn:c:2",
    ]
    assert [e for e, _ in s.temporal_entities("", TemporalFilter(ids=("urn:other",)))] == [
        "urn:other"
    ]
    assert list(s.temporal_entities("t2", TemporalFilter())) == []
    # a type with LIKE wildcards in it matches literally
    assert list(s.temporal_entities("", TemporalFilter(types=(NS + "C%",)))) == []


def test_delete_history_variants(history_store: Store) -> None:
    s = history_store

    def dh(**kw: Any) -> int:
        return int(s.write(lambda tx: tx.delete_history("", "urn:c:1", **kw)))

    assert dh(attr=SPEED, instance_id=hrow("urn:c:1", SPEED, 3, 3).instance_id) == 1
    assert dh(attr=SPEED, dataset_id="urn:ds:1") == 2
    assert vals(s.history("", "urn:c:1", TemporalFilter(attrs=(SPEED,)))) == [1, 2, 4, 5]
    assert dh(attr=FUEL) == 3
    assert vals(s.history("", "urn:c:1", TemporalFilter())) == [1, 2, 4, 5]
    assert "urn:c:1" in [e for e, _ in s.temporal_entities("", TemporalFilter())]
    assert dh() == 4  # the whole entity: rows and its temporal entry
    assert s.history("", "urn:c:1", TemporalFilter()) == []
    assert [e for e, _ in s.temporal_entities("", TemporalFilter())] == ["urn:c:2", "urn:other"]
    assert dh() == 0


# -- key/value documents, audit ---------------------------------------------------------------


def test_kv(store: Store) -> None:
    store.write(lambda tx: tx.put_json("sub", "t1", "b", {"n": 1}))
    store.write(lambda tx: tx.put_json("sub", "t1", "a", {"n": 2}))
    store.write(lambda tx: tx.put_json("sub", "t2", "c", {"n": 3}))
    store.write(lambda tx: tx.put_json("key", "t1", "a", {"n": 4}))
    r = store.reader()
    assert r.get_json("sub", "t1", "a") == {"n": 2}
    assert r.get_json("sub", "t2", "a") is None
    assert r.list_json("sub", "t1") == [("t1", "a", {"n": 2}), ("t1", "b", {"n": 1})]
    assert r.list_json("sub", None) == [
        ("t1", "a", {"n": 2}),
        ("t1", "b", {"n": 1}),
        ("t2", "c", {"n": 3}),
    ]
    store.write(lambda tx: tx.put_json("sub", "t1", "a", {"n": 20, "x": "100%?"}))
    assert r.get_json("sub", "t1", "a") == {"n": 20, "x": "100%?"}
    assert store.write(lambda tx: tx.delete_json("sub", "t1", "a")) is True
    assert store.write(lambda tx: tx.delete_json("sub", "t1", "a")) is False
    assert r.list_json("sub", "t1") == [("t1", "b", {"n": 1})]
    assert r.list_json("key", None) == [("t1", "a", {"n": 4})]


def test_audit_log(store: Store) -> None:
    for i in range(3):

        def op(tx: Tx, i: int = i) -> None:
            tx.audit("t1" if i < 2 else "t2", "me", "x", f"urn:{i}", {"i": i})

        store.write(op)
    log = store.audit_log(None, 10)
    assert [r["target"] for r in log] == ["urn:2", "urn:1", "urn:0"]
    assert log[0]["detail"] == {"i": 2} and log[0]["tenant"] == "t2" and log[0]["actor"] == "me"
    assert [r["target"] for r in store.audit_log("t1", 1)] == ["urn:1"]


# -- outbox -----------------------------------------------------------------------------------


def test_outbox_claim_finish_retry(store: Store) -> None:
    store.write(lambda tx: tx.enqueue("t1", "urn:sub:1", {"n": 1}))
    store.write(lambda tx: tx.enqueue("t1", "urn:sub:2", {"n": 2}))
    items = store.claim_outbox(10, now_iso())
    assert [(i.subscription_id, i.payload, i.attempts, i.tenant) for i in items] == [
        ("urn:sub:1", {"n": 1}, 0, "t1"),
        ("urn:sub:2", {"n": 2}, 0, "t1"),
    ]
    first, second = items
    if store_url_is_pg(store):
        # claimed items are leased: another claimer does not see them until the lease ends
        assert store.claim_outbox(10, now_iso()) == []
        assert len(store.claim_outbox(10, later(120))) == 2
    store.finish_outbox(first.seq, ok=True, retry_at=None)
    retry_at = later(3600)
    store.finish_outbox(second.seq, ok=False, retry_at=retry_at)
    assert store.claim_outbox(10, now_iso()) == []  # not due before its retry time
    again = store.claim_outbox(10, later(3601))
    assert [(i.seq, i.attempts) for i in again] == [(second.seq, 1)]
    store.finish_outbox(second.seq, ok=False, retry_at=None)  # abandoned: removed
    assert store.claim_outbox(10, later(7200)) == []


def test_outbox_limit_and_order(store: Store) -> None:
    def op(tx: Tx) -> None:
        for i in range(5):
            tx.enqueue("", "urn:sub", {"i": i})

    store.write(op)
    got = store.claim_outbox(3, now_iso())
    assert [i.payload["i"] for i in got] == [0, 1, 2]


def test_outbox_concurrent_claimers_never_share(store_url: str) -> None:
    if not store_url.startswith("postgres"):
        pytest.skip("SQLite has one notifier: with several workers only worker 0 claims")
    stores = [open_store(store_url) for _ in range(2)]
    try:

        def op(tx: Tx) -> None:
            for i in range(300):
                tx.enqueue("", "urn:sub", {"i": i})

        stores[0].write(op)
        got: list[list[int]] = [[], []]
        barrier = threading.Barrier(2)

        def claimer(k: int) -> None:
            barrier.wait()
            while True:
                items = stores[k].claim_outbox(7, now_iso())
                if not items:
                    return
                got[k].extend(i.seq for i in items)

        threads = [threading.Thread(target=claimer, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not set(got[0]) & set(got[1])
        assert len(got[0]) + len(got[1]) == 300
    finally:
        for s in stores:
            s.close()


# -- transactions, tenants, durability ------------------------------------------------------


class Boom(Exception):
    pass


def test_failing_write_leaves_nothing(store: Store) -> None:
    def op(tx: Tx) -> None:
        tx.ensure_tenant("t9")
        tx.put_entity("t9", ent("urn:x"), new=True)
        tx.put_json("sub", "t9", "k", {})
        tx.enqueue("t9", "urn:sub", {})
        raise Boom("no")

    with pytest.raises(Boom):
        store.write(op)
    assert store.reader().get_entity("t9", "urn:x") is None
    assert store.reader().get_json("sub", "t9", "k") is None
    assert not store.reader().tenant_exists("t9")
    assert store.tenants() == []
    assert store.claim_outbox(10, later(1)) == []
    # the store keeps working after the failure
    create(store, "t9", ent("urn:x"))
    assert store.reader().get_entity("t9", "urn:x") is not None


def test_sql_error_propagates_and_store_recovers(store: Store) -> None:
    def op(tx: Tx) -> None:
        assert isinstance(tx, SqlTx)
        tx.x("SELECT no_such_column FROM entities")

    with pytest.raises(Exception) as info:
        store.write(op)
    assert not isinstance(info.value, AlreadyExists)
    create(store, "", ent("urn:y"))
    assert store.reader().get_entity("", "urn:y") is not None


def test_tenants_isolated(store: Store) -> None:
    create(store, "t1", ent("urn:same", [T_CAR], speed=1))
    create(store, "t2", ent("urn:same", [T_BUS], speed=2))
    assert store.tenants() == ["t1", "t2"]
    assert store.reader().get_entity("t1", "urn:same")["type"] == [T_CAR]  # type: ignore[index]
    assert store.reader().get_entity("t2", "urn:same")["type"] == [T_BUS]  # type: ignore[index]
    assert store.count_types("t1") == {T_CAR: 1}
    assert ids(store.query_entities("t2", EntityFilter(types=(T_CAR,)))) == []
    assert store.write(lambda tx: tx.delete_entity("t1", "urn:same")) is True
    assert store.reader().get_entity("t2", "urn:same") is not None
    assert ids(store.query_entities("", EntityFilter())) == []


def test_restart_keeps_everything(store_url: str) -> None:
    s = open_store(store_url)
    create(s, "t1", ent("urn:a", point=[1, 1], speed=1))
    s.write(lambda tx: tx.add_history("t1", [hrow("urn:a", SPEED, 1, 1)], [T_CAR]))
    s.write(lambda tx: tx.put_json("sub", "t1", "k", {"v": 1}))
    s.write(lambda tx: tx.enqueue("t1", "urn:sub", {"p": 1}))
    s.write(lambda tx: tx.audit("t1", "me", "a", "urn:a", {}))
    s.close()
    s = open_store(store_url)  # schema creation is idempotent
    try:
        assert s.reader().get_entity("t1", "urn:a") == ent("urn:a", point=[1, 1], speed=1)
        assert ids(s.query_entities("t1", EntityFilter(bbox=(0, 0, 1, 1)))) == ["urn:a"]
        assert vals(s.history("t1", "urn:a", TemporalFilter())) == [1]
        assert s.reader().get_json("sub", "t1", "k") == {"v": 1}
        assert [i.payload for i in s.claim_outbox(5, later(1))] == [{"p": 1}]
        assert len(s.audit_log("t1", 5)) == 1
        assert s.tenants() == ["t1"]
        create(s, "t1", ent("urn:b"))
        assert ids(s.query_entities("t1", EntityFilter())) == ["urn:a", "urn:b"]
    finally:
        s.close()


# -- concurrency ------------------------------------------------------------------------------


_OPEN_AT = """
import sys, time
from maeul.hub.store.base import open_store
url, at, n = sys.argv[1], float(sys.argv[2]), sys.argv[3]
time.sleep(max(0.0, at - time.time()))
s = open_store(url)
s.write(lambda tx: tx.put_json("k", "t1", n, {"n": n}))
s.close()
"""


def test_sqlite_open_waits_while_another_connection_writes(tmp_path: Any) -> None:
    """A file not yet in WAL mode, written by another connection: the switch to WAL answers
    "database is locked" at once, without SQLite's busy handler. Opening must wait, as it did
    not when two `maeul serve` workers created one store together."""
    import sqlite3

    path = tmp_path / "hub.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t(x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    s = open_store(f"sqlite:///{path}")
    try:
        create(s, "t1", ent("urn:a"))
        assert ids(s.query_entities("t1", EntityFilter())) == ["urn:a"]
    finally:
        s.close()
        other.close()


def test_sqlite_checkpoints_beside_the_writer(tmp_path: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The WAL is copied back by the store's checkpointer thread, not inside the writer's
    COMMIT (which only does it past 20,000 pages, as a safety net): under steady writes the
    WAL file stays small, everything written reads back, and closing ends the thread."""
    from maeul.hub.store import sqlite as sq

    monkeypatch.setattr(sq, "CATCH_UP_PAGES", 1000)
    path = tmp_path / "hub.db"
    s = open_store(f"sqlite:///{path}")
    big = "x" * 8000  # about two pages of overflow per entity
    try:
        writer = s._wconn  # noqa: SLF001 - the setting is what this test is about
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (
            sq.WRITER_CHECKPOINT_PAGES)
        most = 0
        for g in range(300):  # some 50 MB of pages: 6,000 entities of 8 kB
            s.write(lambda tx, g=g: [tx.put_entity("t1", ent(f"urn:{g}:{i}", name=big), True)
                                     for i in range(20)])
            most = max(most, os.path.getsize(f"{path}-wal"))
            time.sleep(0.002)
        assert s._checkpointer.passes > 0  # noqa: SLF001
        # the writer alone would have let it grow to 20,000 pages (80 MB) before copying;
        # the checkpointer starts it over past 1,000 pages (4 MB), plus what is written
        # while it copies and waits
        assert most < 40 * 2**20, most
        assert s._checkpointer.catch_ups > 0  # noqa: SLF001
        assert len(list(s.query_entities("t1", EntityFilter()))) == 6000
    finally:
        s.close()
    assert not [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]


def test_sqlite_writes_queued_behind_another_process_join_one_group(tmp_path: Any) -> None:
    """While another process holds the file (a second worker's group), writes keep coming;
    when the lock is released they are committed together, not the first one alone."""
    import fcntl

    path = tmp_path / "hub.db"
    s = open_store(f"sqlite:///{path}")
    other = os.open(f"{path}.wlock", os.O_RDWR)
    begins: list[str] = []
    try:
        s._wconn.set_trace_callback(  # noqa: SLF001 - the groups are what this is about
            lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
        fcntl.flock(other, fcntl.LOCK_EX)
        writers = [threading.Thread(target=s.write, args=(
            lambda tx, i=i: tx.put_json("k", "t1", str(i), {"n": i}),)) for i in range(10)]
        for i, w in enumerate(writers):
            w.start()
            if i == 0:
                time.sleep(0.3)  # the writer takes the first and waits for the file
        time.sleep(0.3)
        assert begins == []
        fcntl.flock(other, fcntl.LOCK_UN)
        for w in writers:
            w.join(10)
        assert len(begins) == 1
        assert {s.reader().get_json("k", "t1", str(i))["n"] for i in range(10)} == set(range(10))
    finally:
        s._wconn.set_trace_callback(None)  # noqa: SLF001
        os.close(other)
        s.close()


def test_processes_opening_one_new_store_at_once_all_succeed(store_url: str) -> None:
    """`maeul serve --workers`, or `maeul import` started beside a starting server: several
    processes create the schema of one new store at the same moment (on SQLite, switching
    a new file to WAL can answer "database is locked" without waiting)."""
    import subprocess
    import sys

    at = time.time() + 4  # every process has imported maeul by then, and opens together
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, store_url, str(at), str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(5)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, "\n".join(errors)
    s = open_store(store_url)
    try:
        assert {s.reader().get_json("k", "t1", str(i))["n"] for i in range(5)} == {
            str(i) for i in range(5)}
    finally:
        s.close()


def test_concurrent_creates_all_succeed(store: Store) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        barrier.wait()
        try:
            for i in range(200):
                create(store, "", ent(f"urn:w:{k}:{i}", speed=i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    got = ids(store.query_entities("", EntityFilter()))
    assert len(got) == 1600 and len(set(got)) == 1600
    assert store.reader().get_entity("", "urn:w:7:199") == ent("urn:w:7:199", speed=199)
    assert store.count_types("") == {T_CAR: 1600}


def test_concurrent_same_id_one_wins(store: Store) -> None:
    results: list[str] = []
    barrier = threading.Barrier(2)

    def worker(k: int) -> None:
        e = ent("urn:race", speed=k)

        def op(tx: Tx) -> None:
            if tx.get_entity("", e["id"]) is not None:
                raise AlreadyExists("exists")
            time.sleep(0.1)  # both pass the check before either inserts
            tx.ensure_tenant("")
            tx.put_entity("", e, new=True)

        barrier.wait()
        try:
            store.write(op)
            results.append("ok")
        except AlreadyExists:
            results.append("exists")
        except BaseException as exc:  # noqa: BLE001
            results.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["exists", "ok"]
    assert ids(store.query_entities("", EntityFilter())) == ["urn:race"]


def test_concurrent_updates_do_not_lose_writes(store: Store) -> None:
    create(store, "", ent("urn:counter", speed=0))

    def bump(tx: Tx) -> None:
        cur = tx.get_entity("", "urn:counter")
        assert cur is not None
        n = cur["attrs"][SPEED][0]["value"]
        tx.put_entity("", ent("urn:counter", speed=n + 1), new=False)

    def worker() -> None:
        for _ in range(25):
            store.write(bump)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    final = store.reader().get_entity("", "urn:counter")
    assert final is not None and final["attrs"][SPEED][0]["value"] == 100


def test_run_write_sees_its_own_writes_and_keeps_them_on_error(store: Store) -> None:
    """``run_write`` (how the API writes): a call reads what it wrote before, many calls in
    flight all finish, and a call failing after a write keeps that write, as separate writes."""
    import asyncio

    def put(eid: str) -> None:
        store.write(lambda tx: (tx.ensure_tenant("t"), tx.put_entity("t", ent(eid), True)))

    def write_then_read(eid: str) -> Entity | None:
        put(eid)
        return store.reader().get_entity("t", eid)

    def write_then_fail() -> None:
        put("urn:e:kept")
        raise AlreadyExists("after the write")

    async def main() -> list[Any]:
        calls = [store.run_write(lambda i=i: write_then_read(f"urn:e:{i}")) for i in range(40)]
        got = await asyncio.gather(*calls)
        with pytest.raises(AlreadyExists):
            await store.run_write(write_then_fail)
        return got

    got = asyncio.run(main())
    assert [g["id"] if g else None for g in got] == [f"urn:e:{i}" for i in range(40)]
    assert store.reader().get_entity("t", "urn:e:kept") is not None


def test_prefetched_entities_read_and_write_as_usual(store: Store) -> None:
    """``prefetch`` (a batch's hint) changes nothing a transaction sees: a prefetched entity
    reads as stored, reads its own later write, and a missing one stays missing."""
    for eid in ("urn:e:a", "urn:e:b"):
        create(store, "t", ent(eid, speed=1))

    def op(tx: Tx) -> list[Any]:
        tx.prefetch("t", ["urn:e:b", "urn:e:a", "urn:e:missing"])
        a = tx.get_entity("t", "urn:e:a")
        assert a is not None and a["attrs"][NS + "speed"][0]["value"] == 1
        a["attrs"][NS + "speed"][0]["value"] = 2
        a["type"] = [T_CAR, NS + "Truck"]
        tx.put_entity("t", a, new=False)
        again = tx.get_entity("t", "urn:e:a")
        return [again, tx.get_entity("t", "urn:e:missing"), tx.get_entity("t", "urn:e:b")]

    again, missing, b = store.write(op)
    assert again["attrs"][NS + "speed"][0]["value"] == 2 and missing is None
    assert b is not None and b["id"] == "urn:e:b"
    # the new type reached the type index too
    trucks = list(store.query_entities("t", EntityFilter(types=(NS + "Truck",))))
    assert [e["id"] for e in trucks] == ["urn:e:a"]


def test_overlapping_batches_in_opposite_orders_all_succeed(store: Store) -> None:
    """Batches lock their entities in one fixed order (PostgreSQL), so two batches over the same
    entities listed in opposite orders never deadlock each other."""
    from maeul.hub.core import Hub

    hub = Hub(store, max_limit=1000)
    ids = [f"urn:e:{i:03d}" for i in range(40)]
    for eid in ids:
        create(store, "t", ent(eid, speed=0))
    errors: list[BaseException] = []

    def run(order: list[str], n: int) -> None:
        try:
            for k in range(n):
                items = [{"id": eid, "type": [T_CAR], "attrs": {
                    NS + "speed": [{"type": "Property", "value": k}]}} for eid in order]
                res = hub.batch("t", "update", items, "bench")
                assert not res.errors, res.errors
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ids, 15)),
               threading.Thread(target=run, args=(ids[::-1], 15))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
