"""Evaluating the NGSI-LD query language: ``compile_q`` turns a tree from ``query.parse_q``
into a predicate over the hub's stored ("expanded") entity form (``docs/internals.md``).

The grammar, the tree and the parser are in ``qparse.py``; ``query.py`` re-exports both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from .qparse import (
    ENTITY_TIMESTAMPS,
    METADATA_MEMBERS,
    AttrPath,
    Entity,
    QAnd,
    QList,
    QNode,
    QOr,
    QRange,
    QRegex,
    QScalar,
    QTerm,
    QueryError,
    QValue,
    Temporal,
    _parse_temporal,
)


def _as_kind(target: Temporal, kind: str) -> Any:
    """Bring a target to the query's granularity: a date query looks at a dateTime's UTC date, a
    time query at its UTC time of day; a dateTime query reads a date as midnight UTC."""
    tk, v = target
    if tk == kind:
        return v
    if tk == "date" and kind == "datetime":
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if tk == "datetime" and kind == "date":
        return v.astimezone(UTC).date()
    if tk == "datetime" and kind == "time":
        u = v.astimezone(UTC)
        return ((u.hour * 60 + u.minute) * 60 + u.second) * 1_000_000 + u.microsecond
    return None


# One attribute instance's candidate values, and whether they come from a VocabProperty.
_Group = tuple[list[Any], bool]
_Resolver = Callable[[Entity], Iterator[_Group]]
_ElemPred = Callable[[Any, bool], bool]


def compile_q(node: QNode, expand: Callable[[str], str]) -> Callable[[Entity], bool]:
    """Compile a parsed q tree into a predicate over stored (expanded) entities.

    ``expand`` maps attribute and sub-attribute terms to IRIs; it is called once per name here,
    never during evaluation. A term matches if ANY instance (datasetId) of the attribute matches;
    where the compared value is a JSON array, ``==``-like operators match if any element matches
    and ``!=`` / ``!~=`` match an instance none of whose elements match (so they are false when
    the path is missing). Mismatched types never compare (``==`` false, ``!=`` true). An invalid
    regular expression raises :class:`QueryError`.
    """
    if isinstance(node, QAnd):
        parts = [compile_q(c, expand) for c in node.children]
        if len(parts) == 2:  # the usual shape; a generator per entity costs more than the test
            a, b = parts
            return lambda e: a(e) and b(e)
        return lambda e: all(p(e) for p in parts)
    if isinstance(node, QOr):
        parts = [compile_q(c, expand) for c in node.children]
        if len(parts) == 2:
            a, b = parts
            return lambda e: a(e) or b(e)
        return lambda e: any(p(e) for p in parts)
    return _compile_term(node, expand)


def _compile_term(term: QTerm, expand: Callable[[str], str]) -> Callable[[Entity], bool]:
    resolve = _resolver(term.path, expand)
    if term.op is None or term.value is None:
        return lambda e: next(resolve(e), None) is not None
    elem = _elem_pred(term.op, term.value, expand)
    negative = term.op in ("!=", "!~=")
    path = term.path
    if path.sub_attrs or path.keys or path.attr in ENTITY_TIMESTAMPS:

        def matches(entity: Entity) -> bool:
            for values, vocab in resolve(entity):
                hit = any(elem(v, vocab) for v in values)
                if hit != negative:
                    return True
            return False

        return matches

    # A plain attribute (the common case): a Property with a scalar value is compared directly;
    # any other instance goes through the general rules, so the result is the same.
    attr_iri = expand(path.attr)
    groups = _instance_groups(path, expand)

    def matches_plain(entity: Entity) -> bool:
        attrs = entity.get("attrs")
        instances = attrs.get(attr_iri) if isinstance(attrs, dict) else None
        if not isinstance(instances, list):
            return False
        for inst in instances:
            if isinstance(inst, dict) and inst.get("type") == "Property" and "value" in inst:
                v = inst["value"]
                if not isinstance(v, list | dict):
                    if elem(v, False) != negative:
                        return True
                    continue
            for values, vocab in groups(inst):
                if any(elem(x, vocab) for x in values) != negative:
                    return True
        return False

    return matches_plain


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        out: list[Any] = []
        for v in value:
            out.extend(_flatten(v))
        return out
    return [value]


def _attribute_values(attr: dict[str, Any]) -> tuple[Any, bool] | None:
    """The value an attribute contributes to a comparison, and whether it is a vocab value."""
    kind = attr.get("type")
    if kind == "LanguageProperty" or (kind is None and "languageMap" in attr):
        lm = attr.get("languageMap")
        return (list(lm.values()) if isinstance(lm, dict) else lm), False
    if kind == "VocabProperty" or (kind is None and "vocab" in attr):
        return attr.get("vocab"), True
    if kind == "ListRelationship" or (kind is None and "objectList" in attr):
        items = attr.get("objectList")
        if isinstance(items, list):
            items = [i.get("object") if isinstance(i, dict) else i for i in items]
        return items, False
    for member in ("value", "object", "valueList", "json"):
        if member in attr:
            return attr[member], False
    return None


def _descend(value: Any, keys: tuple[str, ...]) -> list[Any] | None:
    """Follow compound-value keys (through arrays); None when no element has the path."""
    current = [value]
    for key in keys:
        nxt = [v[key] for v in _flatten(current) if isinstance(v, dict) and key in v]
        if not nxt:
            return None
        current = nxt
    return _flatten(current)


def _resolver(path: AttrPath, expand: Callable[[str], str]) -> _Resolver:
    if path.attr in ENTITY_TIMESTAMPS:
        member = path.attr

        def entity_ts(entity: Entity) -> Iterator[_Group]:
            if not path.sub_attrs and not path.keys and member in entity:
                yield [entity[member]], False

        return entity_ts

    attr_iri = expand(path.attr)
    groups = _instance_groups(path, expand)

    def resolve(entity: Entity) -> Iterator[_Group]:
        instances = entity.get("attrs", {}).get(attr_iri)
        if not isinstance(instances, list):
            return
        for inst in instances:
            yield from groups(inst)

    return resolve


def _instance_groups(path: AttrPath, expand: Callable[[str], str]
                     ) -> Callable[[Any], Iterator[_Group]]:
    """The candidate values one attribute instance offers to a term over ``path``."""
    # Each step is (is_metadata, member name); metadata must be the last step to make sense.
    steps = [
        (s in METADATA_MEMBERS, s if s in METADATA_MEMBERS else expand(s)) for s in path.sub_attrs
    ]
    valid = all(not is_meta for is_meta, _ in steps[:-1]) and not (
        steps and steps[-1][0] and path.keys
    )

    def groups(inst: Any) -> Iterator[_Group]:
        if not valid:
            return
        node: Any = inst
        meta_value: Any = None
        for is_meta, member in steps:
            if not isinstance(node, dict) or member not in node:
                return
            if is_meta:
                meta_value = node[member]
            node = node[member]
        if node is None:
            return
        if steps and steps[-1][0]:
            yield _flatten(meta_value), False
            return
        if not isinstance(node, dict):
            return
        found = _attribute_values(node)
        if found is None:
            return
        raw, vocab = found
        values = _descend(raw, path.keys) if path.keys else _flatten(raw)
        if values is not None:
            yield values, vocab

    return groups


def _scalar_cmp(query: QScalar) -> Callable[[Any], int | None]:
    """Ordering of a target element against a query literal; None when not comparable."""
    qv: Any = query.value
    if query.kind == "boolean":
        return lambda v: (0 if v == qv else 1) if isinstance(v, bool) else None
    if query.kind in ("datetime", "date", "time"):
        parsed = _parse_temporal(str(qv))
        assert parsed is not None  # guaranteed by the parser
        kind, q = parsed

        def temporal(v: Any) -> int | None:
            target = _parse_temporal(v) if isinstance(v, str) else None
            a = None if target is None else _as_kind(target, kind)
            return None if a is None else int(a > q) - int(a < q)

        return temporal
    types: tuple[type, ...] = (int, float) if query.kind == "number" else (str,)

    def plain(v: Any) -> int | None:
        if isinstance(v, bool) or not isinstance(v, types):
            return None
        return int(v > qv) - int(v < qv)

    return plain


def _with_vocab(query: QScalar, expand: Callable[[str], str]) -> _ElemPred:
    """Equality against a literal; vocab targets also match the literal's expanded IRI."""
    plain = _scalar_cmp(query)
    alt: Callable[[Any], int | None] | None = None
    if query.kind in ("string", "uri"):
        expanded = expand(str(query.value))
        if expanded != query.value:
            alt = _scalar_cmp(QScalar("string", expanded))

    def eq(v: Any, vocab: bool) -> bool:
        return plain(v) == 0 or (vocab and alt is not None and alt(v) == 0)

    return eq


def _elem_pred(op: str, value: QValue, expand: Callable[[str], str]) -> _ElemPred:
    """The positive form of ``op`` on one target element (``!=`` and ``!~=`` are negated later)."""
    if isinstance(value, QRegex):
        try:
            rx = re.compile(value.pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise QueryError(
                f"invalid q: bad regular expression {value.pattern!r}: {exc}"
            ) from None
        return lambda v, _vocab: isinstance(v, str) and rx.search(v) is not None
    if isinstance(value, QList):
        preds = [_with_vocab(item, expand) for item in value.items]
        return lambda v, vocab: any(p(v, vocab) for p in preds)
    if isinstance(value, QRange):
        low, high = _scalar_cmp(value.low), _scalar_cmp(value.high)

        def in_range(v: Any, _vocab: bool) -> bool:
            a, b = low(v), high(v)
            return a is not None and b is not None and a >= 0 and b <= 0

        return in_range
    if op in ("==", "!="):
        return _with_vocab(value, expand)
    cmp = _scalar_cmp(value)
    accept: Callable[[int], bool] = {
        ">": lambda c: c > 0,
        ">=": lambda c: c >= 0,
        "<": lambda c: c < 0,
        "<=": lambda c: c <= 0,
    }[op]

    def ordered(v: Any, _vocab: bool) -> bool:
        c = cmp(v)
        return c is not None and accept(c)

    return ordered
