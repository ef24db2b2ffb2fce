"""SQL for a q prefilter (:mod:`maeul.hub.qprefilter`) over the stored entity document.

PostgreSQL only, with jsonb operators on the stored attributes. SQLite does not use
it: before 3.45 its JSON functions parse the whole document text on every call, which costs
more per row than decoding the row in Python (bench/hub.py measured 65 filtered queries/s
with a JSON1 version of this filter and 800+ without). Numbers compare with a small relative
tolerance on the permissive side, so a backend that parses a JSON number one ulp away from
Python never prunes a row the exact predicate would accept; strings compare by code point
("C" collation), as Python does.
"""

from __future__ import annotations

from typing import Any, Literal

from ..qprefilter import PreAnd, PreNode, PreOr, PreTerm

Dialect = Literal["sqlite", "postgres"]  # entity_query_sql pushes q down for "postgres" only
_TOL = 1e-9


def _lo(v: float | int | str) -> float | int | str:
    if isinstance(v, str):
        return v
    return v - abs(v) * _TOL - 1e-300


def _hi(v: float | int | str) -> float | int | str:
    if isinstance(v, str):
        return v
    return v + abs(v) * _TOL + 1e-300


def spans(t: PreTerm) -> list[tuple[Any, Any]]:
    """Each allowed span as (low, high); None is unbounded. Strict ends are widened to
    inclusive ones (permissive, the exact predicate decides)."""
    if t.op == "in":
        return [(_lo(v), _hi(v)) for v in t.values]
    if t.op == "range":
        return [(_lo(t.values[0]), _hi(t.values[1]))]
    v = t.values[0]
    if t.op == "==":
        return [(_lo(v), _hi(v))]
    if t.op in (">", ">="):
        return [(_lo(v), None)]
    return [(None, _hi(v))]  # < <=


def render(node: PreNode) -> tuple[str, list[Any]]:
    """A boolean SQL expression over ``e.attrs`` (the entity's attributes as jsonb, a column
    PostgreSQL generates from the document) and its parameters (``?`` placeholders)."""
    if isinstance(node, PreAnd | PreOr):
        parts = [render(c) for c in node.children]
        joiner = " AND " if isinstance(node, PreAnd) else " OR "
        return (
            "(" + joiner.join(sql for sql, _ in parts) + ")",
            [p for _, ps in parts for p in ps],
        )
    return _pg_term(node)


def _spans(value: str, t: PreTerm) -> tuple[str, list[Any]]:
    ors: list[str] = []
    params: list[Any] = []
    for lo, hi in spans(t):
        conds = []
        if lo is not None:
            conds.append(f"{value} >= ?")
            params.append(lo)
        if hi is not None:
            conds.append(f"{value} <= ?")
            params.append(hi)
        ors.append("(" + " AND ".join(conds) + ")")
    return "(" + " OR ".join(ors) + ")", params


def _pg_term(t: PreTerm) -> tuple[str, list[Any]]:
    attr = "(e.attrs -> ?)"
    if t.op is None:
        return f"{attr} IS NOT NULL", [t.attr]
    jt = "jsonb_typeof(i.v -> 'value')"
    if t.kind == "number":
        kind, value = "'number'", "(i.v -> 'value')::numeric"
        params_cast = "?::numeric"
    else:
        kind, value = "'string'", "(i.v ->> 'value') COLLATE \"C\""
        params_cast = "?::text"
    cmp_sql, cmp_params = _spans(value, t)
    cmp_sql = cmp_sql.replace("?", params_cast)
    sql = (
        "EXISTS (SELECT 1 FROM jsonb_array_elements("
        f"CASE jsonb_typeof({attr}) WHEN 'array' THEN {attr} ELSE '[]'::jsonb END) AS i(v)"
        " WHERE (i.v ->> 'type') IS DISTINCT FROM 'Property'"
        f" OR COALESCE({jt}, 'absent') NOT IN ('number', 'string', 'boolean', 'null')"
        # CASE, not AND: PostgreSQL may evaluate a cast before the type test beside it
        f" OR CASE WHEN {jt} = {kind} THEN {cmp_sql} ELSE false END)"
    )
    return sql, [t.attr, t.attr, *cmp_params]
