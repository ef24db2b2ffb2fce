"""SQLite's q value indexes: built on demand, kept up to date, mended, never wrong.

The oracle is the exact q predicate run over every entity of the type; a query through the
index must give the same entities in the same order, whatever was written since.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_qprefilter import NS, VALUES, T, corpus, expand, prop, some_queries

from maeul.hub.qprefilter import prefilter
from maeul.hub.query import compile_q, parse_q
from maeul.hub.store.base import EntityFilter
from maeul.hub.store.sqlite import SqliteStore

U = NS + "Other"


def query(store: SqliteStore, text: str, tenant: str = "t", etype: str = T,
          want: int | None = None) -> tuple[list[str], list[str]]:
    """(ids through the store's q path, ids by the exact predicate over all entities)."""
    tree = parse_q(text)
    exact = compile_q(tree, expand)
    flt = EntityFilter(types=(etype,), q=prefilter(tree, expand), want=want)
    got = [e["id"] for e in store.query_entities(tenant, flt) if exact(e)]
    every = store.query_entities(tenant, EntityFilter(types=(etype,)))
    return got, [e["id"] for e in every if exact(e)]


def load(store: SqliteStore, ents: list[dict[str, Any]], tenant: str = "t") -> None:
    def op(tx: Any) -> None:
        tx.ensure_tenant(tenant)
        for e in ents:
            tx.put_entity(tenant, e, tx.get_entity(tenant, e["id"]) is None)

    store.write(op)


def ready(store: SqliteStore, tenant: str = "t", etype: str = T) -> None:
    for attr in ("speed", "name"):
        query(store, f"{attr}==1", tenant, etype)
    assert store.wait_value_indexes(30)
    assert {(i["tenant"], i["attr"]) for i in store.value_indexes() if i["ready"]} >= {
        (tenant, NS + "speed"), (tenant, NS + "name")}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteStore(f"sqlite:///{tmp_path}/v.db")
    yield s
    s.close()


def test_an_index_is_built_on_first_use_and_then_used(store: SqliteStore) -> None:
    load(store, [{"id": f"urn:t:{i}", "type": [T], "attrs": {NS + "speed": [prop(i)]}}
                 for i in range(300)])
    assert store.value_indexes() == []
    got, want = query(store, "speed>=100;speed<103")
    assert got == want == ["urn:t:100", "urn:t:101", "urn:t:102"]
    assert store.wait_value_indexes(30)
    [idx] = store.value_indexes()
    assert idx["ready"] and idx["attr"] == NS + "speed" and idx["type"] == T
    vi = store._vindex  # noqa: SLF001 - the plan is what this test is about
    tree = prefilter(parse_q("speed>=100;speed<103"), expand)
    assert tree is not None
    conn = store._rconn()  # noqa: SLF001
    plan = vi.plan(conn.execute, "t", [T], tree, cap=1000)
    # strict bounds are widened to inclusive ones: 103 is a candidate the exact q rejects
    assert plan is not None and plan.count == 4
    assert plan.first(conn.execute, 0, None) == plan.first(conn.execute, 0, 10)
    assert len(plan.first(conn.execute, 0, 2)) == 2
    # a filter the index cannot narrow within the cap is read in order instead
    wide = prefilter(parse_q("speed>=0"), expand)
    assert wide is not None
    assert vi.plan(conn.execute, "t", [T], wide, cap=100) is None
    got, want = query(store, "speed>=0", want=10)
    assert got == want and len(got) == 300


def test_writes_keep_the_index_exact(store: SqliteStore) -> None:
    ents = corpus()
    load(store, ents)
    ready(store)
    rnd = random.Random(3)
    queries = some_queries(seed=2, extra=60)
    for round_ in range(4):
        # replace values (kinds change: numbers, strings, lists, several instances), drop
        # attributes, delete and recreate entities, change their types
        changed = []
        for e in rnd.sample(ents, 25):
            e = orjson.loads(orjson.dumps(e))
            attrs = e["attrs"]
            pick = rnd.random()
            if pick < 0.4:
                attrs[NS + "speed"] = [prop(rnd.choice(VALUES))]
            elif pick < 0.6:
                attrs[NS + "speed"] = [prop(rnd.choice(VALUES)),
                                       prop(rnd.choice(VALUES), datasetId="urn:ds:x")]
            elif pick < 0.7:
                attrs.pop(NS + "speed", None)
            elif pick < 0.8:
                attrs[NS + "name"] = [prop(rnd.choice(["a", "b", 3, None]))]
            elif pick < 0.9:
                e["type"] = [U] if T in e["type"] else [T]
            else:
                e["type"] = [T, U]
            changed.append(e)
        load(store, changed)
        gone = rnd.sample([e["id"] for e in ents], 3)
        store.write(lambda tx, gone=gone: [tx.delete_entity("t", i) for i in gone])
        load(store, [{"id": gone[0], "type": [T],
                      "attrs": {NS + "speed": [prop(round_ * 10 + 55)]}}])
        for text in queries:
            got, want = query(store, text)
            assert got == want, (round_, text)
        assert stored_rows(store) == expected_rows(store)


def test_dense_filters_are_read_in_entity_order_and_stay_exact(store: SqliteStore) -> None:
    """A filter most entities pass, with a small page: the index is read in entity order
    (``qvalues_seq``), testing each row's value, instead of sorting every candidate; and a
    selective one still sorts its few candidates. Either way the answer is the exact one,
    also right after writes that the cached candidate counts have not seen."""
    rnd = random.Random(5)
    ents = [{"id": f"urn:t:{i:04d}", "type": [T],
             "attrs": {NS + "speed": [prop(rnd.randrange(100))]}} for i in range(600)]
    load(store, ents)
    ready(store)
    vi = store._vindex  # noqa: SLF001 - the plan is what this test is about
    conn = store._rconn()  # noqa: SLF001

    def plan_of(text: str, want: int) -> Any:
        tree = prefilter(parse_q(text), expand)
        assert tree is not None
        return vi.plan(conn.execute, "t", [T], tree, cap=1000 + 40 * want, want=want + 16)

    dense = plan_of("speed>=10", 10)  # nine in ten pass
    assert dense is not None and dense.ordered
    assert dense.first(conn.execute, 0, 5) == sorted(dense.first(conn.execute, 0, None))[:5]
    sparse = plan_of("speed==42", 10)  # one in a hundred
    assert sparse is not None and not sparse.ordered
    # its few candidates are found by value: SQLite must not read the type in seq order
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        assert sparse.first(conn.execute, 0, 5) == sorted(sparse.first(conn.execute, 0, None))[:5]
    finally:
        conn.set_trace_callback(None)
    steps = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + seen[0]).fetchall()]
    assert any("PRIMARY KEY" in s for s in steps) and not any("qvalues_seq" in s for s in steps)
    texts = ["speed>=10", "speed<90", "speed>20;speed<=70", "speed==42", "speed!=5",
             "speed>=50|speed<3", "speed==1,2,3", "speed==40..60", "speed<0", *some_queries(4, 20)]
    for round_ in range(3):
        for text in texts:
            for want in (1, 5, 26):
                got, exact = query(store, text, want=want)
                assert got == exact, (round_, text, want)
        # values move and entities come and go, within the counts' lifetime
        changed = [{**e, "attrs": {NS + "speed": [prop(rnd.randrange(100))]}}
                   for e in rnd.sample(ents, 100)]
        load(store, changed)
        gone = [e["id"] for e in rnd.sample(ents, 20)]
        store.write(lambda tx, gone=gone: [tx.delete_entity("t", i) for i in gone])
        load(store, [{"id": f"urn:t:new{round_}-{k}", "type": [T],
                      "attrs": {NS + "speed": [prop(k)]}} for k in range(50)])
    assert stored_rows(store) == expected_rows(store)


def stored_rows(store: SqliteStore) -> set[tuple[Any, ...]]:
    conn = store._rconn()  # noqa: SLF001 - the table is what this test is about
    return set(conn.execute("SELECT tt, attr, v, seq FROM qvalues").fetchall())


def expected_rows(store: SqliteStore) -> set[tuple[Any, ...]]:
    """What the index must hold: the rows of every stored entity, and nothing stale."""
    conn = store._rconn()  # noqa: SLF001
    out = set()
    for seq, tenant, doc in conn.execute("SELECT seq, tenant, doc FROM entities").fetchall():
        for (tt, attr), v in store._vindex.rows(tenant, orjson.loads(doc)).items():  # noqa: SLF001
            out.add((tt, attr, v, seq))
    return out


def test_one_type_in_two_tenants_stays_apart(store: SqliteStore) -> None:
    for tenant in ("a", "b"):
        load(store, [{"id": f"urn:{tenant}:{i}", "type": [T],
                      "attrs": {NS + "speed": [prop(i)]}} for i in range(40)], tenant)
        ready(store, tenant)
    got_a, want_a = query(store, "speed>=10;speed<=12", "a")
    got_b, want_b = query(store, "speed>=10;speed<=12", "b")
    assert got_a == want_a == ["urn:a:10", "urn:a:11", "urn:a:12"]
    assert got_b == want_b == ["urn:b:10", "urn:b:11", "urn:b:12"]


def test_the_index_survives_a_restart_and_mends_what_an_older_maeul_wrote(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/v.db"
    s = SqliteStore(url)
    load(s, [{"id": f"urn:t:{i}", "type": [T], "attrs": {NS + "speed": [prop(i)]}}
             for i in range(100)])
    ready(s)
    s.close()
    # a maeul without the index writes the file: one value changed, one entity deleted,
    # one added, straight in SQL as that version's store would
    raw = sqlite3.connect(f"{tmp_path}/v.db", isolation_level=None)
    doc = orjson.loads(raw.execute("SELECT doc FROM entities WHERE id = 'urn:t:5'").fetchone()[0])
    doc["attrs"][NS + "speed"][0]["value"] = 1000
    raw.execute("UPDATE entities SET doc = ? WHERE id = 'urn:t:5'", (orjson.dumps(doc).decode(),))
    raw.execute("DELETE FROM entities WHERE id = 'urn:t:7'")
    raw.execute("DELETE FROM entity_types WHERE id = 'urn:t:7'")
    new = {"id": "urn:t:new", "type": [T], "attrs": {NS + "speed": [prop(7)]}}
    seq = raw.execute(
        "INSERT INTO entities(tenant, id, types, doc) VALUES ('t', 'urn:t:new', ?, ?)"
        " RETURNING seq", (orjson.dumps([T]).decode(), orjson.dumps(new).decode()),
    ).fetchone()[0]
    raw.execute("INSERT INTO entity_types(tenant, type, id, seq) VALUES ('t', ?, 'urn:t:new', ?)",
                (T, seq))
    assert raw.execute("SELECT count(*) FROM qdirty").fetchone()[0] == 3  # the triggers
    raw.close()
    s = SqliteStore(url)
    try:
        assert all(i["ready"] for i in s.value_indexes())  # no rebuild: it was complete
        for text in ("speed==5", "speed==1000", "speed==7", "speed>=0;speed<=9"):
            got, want = query(s, text)
            assert got == want, text
        assert query(s, "speed==7")[0] == ["urn:t:new"]
        assert query(s, "speed==1000")[0] == ["urn:t:5"]
        assert stored_rows(s) == expected_rows(s)
    finally:
        s.close()


def test_writes_during_the_build_are_not_lost(store: SqliteStore) -> None:
    n = 6000  # three build chunks
    load(store, [{"id": f"urn:t:{i:05d}", "type": [T], "attrs": {NS + "speed": [prop(0)]}}
                 for i in range(n)])
    stop = threading.Event()
    rnd = random.Random(1)
    final: dict[str, int] = {}

    def writer() -> None:
        while not stop.is_set():
            i = rnd.randrange(n)
            v = rnd.randrange(1, 100)
            eid = f"urn:t:{i:05d}"
            load(store, [{"id": eid, "type": [T], "attrs": {NS + "speed": [prop(v)]}}])
            final[eid] = v

    t = threading.Thread(target=writer)
    t.start()
    try:
        query(store, "speed==1")  # asks for the index; the writer keeps writing meanwhile
        assert store.wait_value_indexes(60)
    finally:
        stop.set()
        t.join()
    assert final
    for v in (0, 1, 50, 99):
        got, want = query(store, f"speed=={v}")
        assert got == want
    got, want = query(store, "speed>=1")
    assert got == want and set(got) == set(final)
    assert stored_rows(store) == expected_rows(store)


def test_no_more_indexes_than_the_cap(store: SqliteStore, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    """Each index costs writes: a flood of queries on made-up attributes cannot add more."""
    from maeul.hub.store import valueindex

    monkeypatch.setattr(valueindex, "MAX_INDEXES", 3)
    load(store, [{"id": f"urn:t:{i}", "type": [T], "attrs": {NS + "speed": [prop(i)]}}
                 for i in range(50)])
    for k in range(8):
        got, want = query(store, f"a{k}==1|speed==3")
        assert got == want == ["urn:t:3"]
    assert store.wait_value_indexes(30)
    assert len(store.value_indexes()) == 3
    got, want = query(store, "speed>=10;speed<=11")
    assert got == want == ["urn:t:10", "urn:t:11"]


def test_a_second_process_keeps_the_index_it_did_not_build(tmp_path: Path) -> None:
    """Two stores on one file (two `maeul serve` workers, or `maeul import` beside a server):
    writes through the store that never queried must keep the other's index exact."""
    url = f"sqlite:///{tmp_path}/two.db"
    a, b = SqliteStore(url), SqliteStore(url)
    try:
        rng = random.Random(11)
        speeds = {i: rng.randrange(50) for i in range(400)}
        load(a, [{"id": f"urn:t:{i}", "type": [T], "attrs": {NS + "speed": [prop(v)]}}
                 for i, v in speeds.items()])
        query(a, "speed==1")
        assert a.wait_value_indexes(30)
        assert b.value_indexes()[0]["ready"]  # the registry is in the file
        for _round in range(3):
            for i in rng.sample(sorted(speeds), 60):
                speeds[i] = rng.randrange(50)
            load(b, [{"id": f"urn:t:{i}", "type": [T], "attrs": {NS + "speed": [prop(v)]}}
                     for i, v in speeds.items()])
            load(b, [{"id": f"urn:t:new{_round}", "type": [T],
                      "attrs": {NS + "speed": [prop(7)]}}])
            load(a, [])  # a write group of A's own (it clears the dirty marks)
            for lo in (3, 7, 20):
                got, want = query(a, f"speed>={lo};speed<{lo + 2}")
                assert got == want and want
                got, want = query(b, f"speed>={lo};speed<{lo + 2}")
                assert got == want
    finally:
        a.close()
        b.close()
