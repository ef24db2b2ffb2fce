"""The q prefilter the stores run in SQL never drops an entity the exact q predicate accepts.

Runs on SQLite and PostgreSQL over entities with awkward values (mixed kinds, lists, objects,
several datasetIds, language and vocab properties, relationships, huge and tiny numbers,
non-ASCII text), for hand-written and randomly generated q expressions.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from maeul.hub.qprefilter import PreAnd, PreOr, PreTerm, prefilter
from maeul.hub.query import QueryError, compile_q, parse_q
from maeul.hub.store.base import Entity, EntityFilter, Store, open_store

NS = "https://ex.org/"
T = NS + "Thing"


def expand(term: str) -> str:
    return term if "://" in term else NS + term


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


VALUES: list[Any] = [
    0, 1, -1, 49.999999999, 50, 50.0, 50.000000001, 55, 59.5, 60, 1e300, -1e300, 2**60,
    0.1, 0.30000000000000004, True, False, None, "a", "b", "ab", "B", "é", "한글", "50",
    "", "urn:ngsi-ld:X:1", [50, "x"], [1, 2], [], {"k": 55}, {"k": "a"},
]


def corpus() -> list[Entity]:
    rnd = random.Random(7)
    out: list[Entity] = []
    for i, v in enumerate(VALUES):
        out.append({"id": f"urn:t:{i:03d}", "type": [T], "attrs": {NS + "speed": [prop(v)]}})
    out.append({"id": "urn:t:lang", "type": [T], "attrs": {NS + "speed": [
        {"type": "LanguageProperty", "languageMap": {"en": "a", "ko": "가"}}]}})
    out.append({"id": "urn:t:vocab", "type": [T], "attrs": {NS + "speed": [
        {"type": "VocabProperty", "vocab": NS + "a"}]}})
    out.append({"id": "urn:t:rel", "type": [T], "attrs": {NS + "speed": [
        {"type": "Relationship", "object": "urn:ngsi-ld:X:1"}]}})
    out.append({"id": "urn:t:novalue", "type": [T], "attrs": {NS + "speed": [
        {"type": "Property", "valueList": [55, "a"]}]}})
    out.append({"id": "urn:t:untyped", "type": [T], "attrs": {NS + "speed": [{"value": 55}]}})
    out.append({"id": "urn:t:none", "type": [T], "attrs": {}})
    for j in range(40):  # several instances (datasetIds) and a second attribute
        a = rnd.choice(VALUES)
        b = rnd.choice(VALUES)
        out.append({"id": f"urn:t:multi{j:02d}", "type": [T], "attrs": {
            NS + "speed": [prop(a), prop(b, datasetId=f"urn:ds:{j}")],
            NS + "name": [prop(rnd.choice(["a", "b", "c", 3]))],
        }})
    return out


HAND = [
    "speed", "nope", "speed>50", "speed>=50", "speed<50", "speed<=50", "speed==50",
    "speed==50.000000001", "speed>49.999999999", "speed==0.30000000000000004", "speed<0.1",
    "speed==\"a\"", "speed>\"a\"", "speed<\"b\"", "speed>=\"é\"", "speed==\"50\"",
    "speed==urn:ngsi-ld:X:1", "speed==1,2,55", "speed==\"a\",\"b\"", "speed==50..60",
    "speed==\"a\"..\"b\"", "speed>50;speed<60", "speed>1e299|speed<-1e299",
    "speed==1152921504606846976", "speed!=50", "speed~=a", "speed==true", "speed.k==55",
    "speed[k]==55", "speed==2026-01-01T00:00:00Z", "speed>50;name==\"a\"",
    "(speed>50|name==3);speed", "speed==\"\"", "name", "speed<\"\"",
]


def random_q(rnd: random.Random, depth: int = 0) -> str:
    if depth < 2 and rnd.random() < 0.35:
        join = rnd.choice([";", "|"])
        parts = [random_q(rnd, depth + 1) for _ in range(rnd.randint(2, 3))]
        return "(" + join.join(parts) + ")"
    attr = rnd.choice(["speed", "name", "nope"])
    if rnd.random() < 0.1:
        return attr
    op = rnd.choice(["==", "!=", ">", ">=", "<", "<="])
    lit = rnd.choice([
        str(rnd.choice([0, 1, 50, 55, 60, -1])), f"{rnd.uniform(-100, 100):.3f}",
        '"a"', '"b"', '"é"', "1,50,55", "40..56", '"a".."c"', "true",
    ])
    if ("," in lit or ".." in lit) and op not in ("==", "!="):
        op = "=="
    return f"{attr}{op}{lit}"


def some_queries(seed: int, extra: int) -> list[str]:
    """The hand-written queries and ``extra`` random ones the grammar accepts."""
    rnd = random.Random(seed)
    queries = list(HAND)
    while len(queries) < len(HAND) + extra:
        text = random_q(rnd)
        try:
            parse_q(text)
        except QueryError:  # the generator can write what the grammar refuses
            continue
        queries.append(text)
    return queries


def narrowed_ids(store: Store, text: str) -> tuple[list[str], list[str], int]:
    tree = parse_q(text)
    exact = compile_q(tree, expand)
    pre = prefilter(tree, expand)
    rows = list(store.query_entities("t", EntityFilter(types=(T,), q=pre)))
    everything = list(store.query_entities("t", EntityFilter(types=(T,))))
    got = [e["id"] for e in rows if exact(e)]
    want = [e["id"] for e in everything if exact(e)]
    return got, want, len(rows)


def indexes_ready(store: Store, *queries: str) -> None:
    """SQLite: have the q value indexes these queries use built, and wait for them."""
    if not hasattr(store, "wait_value_indexes"):
        return
    for text in queries:
        narrowed_ids(store, text)
    assert store.wait_value_indexes(30)


def test_prefilter_never_drops_a_match(store: Store) -> None:
    ents = corpus()

    def load(tx: Any) -> None:
        tx.ensure_tenant("t")
        for e in ents:
            tx.put_entity("t", e, True)

    store.write(load)
    indexes_ready(store, "speed", "name", "nope")
    for text in some_queries(seed=11, extra=250):
        got, want, _ = narrowed_ids(store, text)
        assert got == want, text


def test_prefilter_prunes_in_the_store(store: Store) -> None:
    """The point of it: rows a simple comparison rejects are never decoded in Python
    (PostgreSQL: jsonb operators in SQL; SQLite: its q value index, once built)."""

    def load(tx: Any) -> None:
        tx.ensure_tenant("t")
        for i in range(200):
            tx.put_entity("t", {"id": f"urn:t:{i}", "type": [T],
                                "attrs": {NS + "speed": [prop(i)]}}, True)

    store.write(load)
    sqlite = hasattr(store, "wait_value_indexes")
    got, want, scanned = narrowed_ids(store, "speed>50;speed<60")
    assert got == want == [f"urn:t:{i}" for i in range(51, 60)]
    # SQLite reads in order until the index it has just asked for is complete
    assert scanned == (200 if sqlite else 11)
    indexes_ready(store)
    got, want, scanned = narrowed_ids(store, "speed>50;speed<60")
    # strict bounds are widened to inclusive: 50 and 60 reach Python
    assert got == want and scanned == 11
    got, want, scanned = narrowed_ids(store, "speed==3,7|speed>=198")
    assert got == want and scanned == 4


def test_a_query_that_wants_few_reads_small_pages_first_and_still_streams_all(
        store: Store) -> None:
    """PostgreSQL pages a filtered query from a small first page up (``EntityFilter.want``);
    a consumer that goes on past what it wanted still gets every match once, in order."""

    def load(tx: Any) -> None:
        tx.ensure_tenant("t")
        for i in range(1400):
            tx.put_entity("t", {"id": f"urn:t:{i:04d}", "type": [T],
                                "attrs": {NS + "speed": [prop(i % 10)]}}, True)

    store.write(load)
    indexes_ready(store, "speed>=5")
    tree = parse_q("speed>=5")
    flt = EntityFilter(types=(T,), q=prefilter(tree, expand), want=10)
    expected = [f"urn:t:{i:04d}" for i in range(1400) if i % 10 >= 5]
    sizes: list[int] = []
    fetch = getattr(store, "_fetch", None)
    if fetch is not None:  # PostgreSQL: record the page sizes asked for

        def spy(sql: str, params: Any = ()) -> Any:
            if "LIMIT" in sql:
                sizes.append(params[-1])
            return fetch(sql, params)

        store._fetch = spy  # type: ignore[attr-defined]
    it = store.query_entities("t", flt)
    first = [next(it)["id"] for _ in range(10)]
    assert first == expected[:10]
    if fetch is not None:
        assert sizes == [32]  # ten wanted: one page of 32 rows, not 500
    rest = [e["id"] for e in it]
    assert first + rest == expected  # 700 matches: pages of 32, 128, 500 and the last
    if fetch is not None:
        assert sizes == [32, 128, 500, 500]


def test_a_postgresql_database_from_before_the_attrs_column_gets_it_at_start(
        pg_url: str) -> None:
    import psycopg

    def load(tx: Any) -> None:
        tx.ensure_tenant("t")
        for i in range(20):
            tx.put_entity("t", {"id": f"urn:t:{i}", "type": [T],
                                "attrs": {NS + "speed": [prop(i)]}}, True)

    s = open_store(pg_url)
    s.write(load)
    s.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as an older maeul left it
        conn.execute("ALTER TABLE entities DROP COLUMN attrs")
    s = open_store(pg_url)
    try:
        got, want, scanned = narrowed_ids(s, "speed>=15")
        assert got == want == [f"urn:t:{i}" for i in range(15, 20)] and scanned == 5
    finally:
        s.close()


def test_prefilter_tree_shapes() -> None:
    assert prefilter(parse_q("speed>5"), expand) == PreTerm(NS + "speed", ">", "number", (5,))
    assert prefilter(parse_q("speed~=x"), expand) is None
    # one unnarrowable branch makes an OR unnarrowable; an AND keeps its narrowable parts
    assert prefilter(parse_q("speed>5|speed~=x"), expand) is None
    assert prefilter(parse_q("speed>5;speed~=x"), expand) == PreTerm(
        NS + "speed", ">", "number", (5,))
    both = prefilter(parse_q("(a==1|b==\"x\");c"), expand)
    assert isinstance(both, PreAnd) and isinstance(both.children[0], PreOr)
    # lists of mixed kinds, huge literals and attribute names that would break a JSON path
    assert prefilter(parse_q("speed==1,\"a\""), expand) is None
    assert prefilter(parse_q("speed>9007199254740993"), expand) is None
    assert prefilter(parse_q('<https://ex.org/a"b>>1'), expand) is None


def _general(node: Any) -> Any:
    """The q predicate by the general rules only (no fast path for plain attributes)."""
    from maeul.hub.query import QAnd, QOr, _elem_pred, _resolver

    if isinstance(node, QAnd):
        parts = [_general(c) for c in node.children]
        return lambda e: all(p(e) for p in parts)
    if isinstance(node, QOr):
        parts = [_general(c) for c in node.children]
        return lambda e: any(p(e) for p in parts)
    resolve = _resolver(node.path, expand)
    if node.op is None or node.value is None:
        return lambda e: next(resolve(e), None) is not None
    elem = _elem_pred(node.op, node.value, expand)
    negative = node.op in ("!=", "!~=")
    return lambda e: any(any(elem(v, vb) for v in vals) != negative for vals, vb in resolve(e))


def test_plain_attribute_fast_path_agrees_with_the_general_rules() -> None:
    ents = corpus()
    for text in some_queries(seed=5, extra=400):
        tree = parse_q(text)
        fast, slow = compile_q(tree, expand), _general(tree)
        assert [e["id"] for e in ents if fast(e)] == [e["id"] for e in ents if slow(e)], text
