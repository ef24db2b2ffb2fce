"""A storage-neutral prefilter derived from a parsed q tree, so a backend can skip rows in SQL.

The prefilter is a *necessary* condition: every entity the exact predicate of
:func:`maeul.hub.query.compile_q` accepts also passes it, and the exact predicate still runs on
what passes. It only prunes an attribute instance when the instance is an NGSI-LD ``Property``
whose ``value`` is a JSON scalar (number, string, boolean or null) that fails the comparison;
anything else (lists, objects, Relationships, LanguageProperties, missing members) passes, so
the prefilter never has to reproduce the q-language's rules for those. Terms it cannot express
(sub-attributes, compound keys, dates and times, booleans, regular expressions, ``!=``) are
simply true here. Because the filters apply to what a caller may see, and a view only removes
attributes, a condition that holds on the view holds on the stored entity too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .query import ENTITY_TIMESTAMPS, QAnd, QList, QNode, QOr, QRange, QScalar, QTerm

PreKind = Literal["number", "string"]
# numbers past 2**53 may be stored as approximate reals by a backend's JSON functions
_EXACT = 2**53


@dataclass(frozen=True)
class PreTerm:
    """Some instance of attribute ``attr`` (an IRI) may satisfy the test.

    ``op`` None: the attribute exists. ``in``: a scalar value is one of ``values``. ``range``:
    ``values`` are (low, high), inclusive. Otherwise ``values`` holds the one operand of
    ``== > >= < <=``. ``kind`` says how scalars compare: JSON numbers, or strings by code point.
    """

    attr: str
    op: str | None = None
    kind: PreKind = "number"
    values: tuple[float | int | str, ...] = ()


@dataclass(frozen=True)
class PreAnd:
    children: tuple[PreNode, ...]


@dataclass(frozen=True)
class PreOr:
    children: tuple[PreNode, ...]


PreNode = PreTerm | PreAnd | PreOr


def prefilter(node: QNode, expand: Callable[[str], str]) -> PreNode | None:
    """The prefilter for a parsed q tree; None when it cannot narrow anything."""
    if isinstance(node, QAnd):
        parts = [p for c in node.children if (p := prefilter(c, expand)) is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else PreAnd(tuple(parts))
    if isinstance(node, QOr):
        ors: list[PreNode] = []
        for c in node.children:
            p = prefilter(c, expand)
            if p is None:  # one branch that cannot narrow makes the whole OR unnarrowable
                return None
            ors.append(p)
        return ors[0] if len(ors) == 1 else PreOr(tuple(ors))
    return _term(node, expand)


def _scalar(s: QScalar) -> tuple[PreKind, float | int | str] | None:
    if s.kind == "number":
        v = s.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if abs(v) >= _EXACT:
            return None
        return "number", v
    if s.kind in ("string", "uri") and isinstance(s.value, str):
        # a JSON path or SQL literal never sees it: values travel as bound parameters
        return "string", s.value
    return None


def _term(t: QTerm, expand: Callable[[str], str]) -> PreTerm | None:
    path = t.path
    if path.sub_attrs or path.keys or path.attr in ENTITY_TIMESTAMPS:
        return None
    iri = expand(path.attr)
    if '"' in iri or "\\" in iri:  # kept out of JSON paths rather than escaped
        return None
    if t.op is None:
        return PreTerm(iri)
    value = t.value
    if isinstance(value, QList):
        if t.op != "==":
            return None
        items = [_scalar(i) for i in value.items]
        if any(i is None for i in items):
            return None
        kinds = {i[0] for i in items if i is not None}
        if len(kinds) != 1:
            return None
        return PreTerm(iri, "in", kinds.pop(), tuple(i[1] for i in items if i is not None))
    if isinstance(value, QRange):
        if t.op != "==":
            return None
        low, high = _scalar(value.low), _scalar(value.high)
        if low is None or high is None or low[0] != high[0]:
            return None
        return PreTerm(iri, "range", low[0], (low[1], high[1]))
    if isinstance(value, QScalar) and t.op in ("==", ">", ">=", "<", "<="):
        sc = _scalar(value)
        if sc is None:
            return None
        return PreTerm(iri, t.op, sc[0], (sc[1],))
    return None
