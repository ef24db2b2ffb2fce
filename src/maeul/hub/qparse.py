"""The NGSI-LD query language (ETSI GS CIM 009 v1.8 §4.9) and scope queries (§4.19).

``parse_q`` turns the text of a ``q`` parameter into an immutable tree; ``compile_q`` (in
``qeval.py``) turns the tree into a predicate over the hub's stored ("expanded") entity form
described in ``docs/internals.md``. ``query.py`` re-exports both.

Grammar accepted by :func:`parse_q` (no whitespace outside quoted strings and patterns)::

    query   := and ('|' and)*              ; AND binds tighter than OR
    and     := primary (';' primary)*
    primary := '(' query ')' | term
    term    := path [op value]             ; no operator = existence test
    path    := name ('.' name)* ('[' key ']')*
    op      := '==' | '!=' | '>' | '>=' | '<' | '<=' | '~=' | '!~='

Attribute names: a plain name is made of letters, digits and ``_ - : / #`` (so compact IRIs
such as ``ngsi-ld:foo`` work). A name that starts like a full IRI (``scheme://``) is taken as-is
up to the next operator, ``[``, ``;``, ``|`` or ``)`` — dots inside it belong to the IRI
(``https://x.org/y#speed`` is one name) and therefore do **not** split sub-attributes. To address
a sub-attribute of a full-IRI attribute, or to use any unusual name, wrap it in angle brackets:
``<https://x.org/y#speed>.observedAt``. For plain names ``.`` always splits sub-attributes.

Values: numbers (``-1``, ``2.5``, ``1e3``), double-quoted strings with JSON escapes, ``true`` /
``false``, unquoted ISO 8601 dateTime / date / time, unquoted URIs (``urn:ngsi-ld:X:1``; a URI
runs to the next ``, ; | )``), lists ``a,b,c`` and ranges ``low..high`` (lists and ranges only
with ``==`` and ``!=``). The pattern after ``~=`` / ``!~=`` is a raw Python regular expression
running to the next ``;``, ``|`` or unbalanced ``)`` outside double quotes and backslash escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any, Literal, TypeVar

Entity = dict[str, Any]
ScalarKind = Literal["number", "string", "boolean", "datetime", "date", "time", "uri"]

OPERATORS = ("==", "!=", ">=", ">", "<=", "<", "~=", "!~=")
# Longest first so that '!~=' is not read as '!' and '>=' not as '>'.
_OPS_BY_LENGTH = sorted(OPERATORS, key=len, reverse=True)
_ORDERING_OPS = frozenset({">", ">=", "<", "<="})
_COMPARABLE_KINDS = frozenset({"number", "string", "datetime", "date", "time"})
# Sub-attribute path members that read an attribute's own metadata instead of a sub-attribute.
METADATA_MEMBERS = frozenset({"observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId"})
ENTITY_TIMESTAMPS = frozenset({"createdAt", "modifiedAt"})
_MAX_DEPTH = 64


class QueryError(ValueError):
    """A q or scopeQ expression is malformed (the message names the character offset)."""


@dataclass(frozen=True)
class AttrPath:
    """``attr`` (a term to expand), then ``sub_attrs`` (from ``.``), then ``keys`` (``[k]``)."""

    attr: str
    sub_attrs: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class QScalar:
    """One literal. ``value`` is the text for the temporal kinds and ``uri``."""

    kind: ScalarKind
    value: int | float | bool | str


@dataclass(frozen=True)
class QList:
    """``a,b,c``: ``==`` matches any item, ``!=`` matches none."""

    items: tuple[QScalar, ...]


@dataclass(frozen=True)
class QRange:
    """``low..high``, both bounds inclusive and of the same kind."""

    low: QScalar
    high: QScalar


@dataclass(frozen=True)
class QRegex:
    """The raw pattern after ``~=`` / ``!~=``."""

    pattern: str


QValue = QScalar | QList | QRange | QRegex


@dataclass(frozen=True)
class QTerm:
    """One comparison; ``op`` None is an existence test (``value`` None too)."""

    path: AttrPath
    op: str | None = None
    value: QValue | None = None


@dataclass(frozen=True)
class QAnd:
    """``;``: all children match (two or more)."""

    children: tuple[QNode, ...]


@dataclass(frozen=True)
class QOr:
    """``|``: any child matches (two or more)."""

    children: tuple[QNode, ...]


QNode = QAnd | QOr | QTerm


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_\-:/#]+")
_IRI_START = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# A full-IRI name stops at anything that can follow a name in the grammar.
_IRI_NAME = re.compile(r"[^\s;|()\[\]<>=!~\",]+")
_BRACKET_NAME = re.compile(r"<([^\s<>]+)>")
_KEY = re.compile(r"[^\s\[\]]+")
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})"
_DATETIME = re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?{_OFFSET}?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(rf"\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?{_OFFSET}?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s;|(),\"]+")
_KEYWORD = re.compile(r"true|false")
_VALUE_END = frozenset(";|),")
_TERM_END = frozenset(";|)")
_JSON = json.JSONDecoder(strict=False)


def _fmt_char(text: str, pos: int) -> str:
    return "end of input" if pos >= len(text) else repr(text[pos])


class _Cursor:
    """Shared position over the input, with uniform error messages."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    def error(self, msg: str, pos: int | None = None) -> QueryError:
        at = self.pos if pos is None else pos
        return QueryError(f"invalid {self.what}: {msg} at character {at}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group(0)


T = TypeVar("T")


def _parse_bool_expr(
    cur: _Cursor,
    term: Callable[[_Cursor], T],
    make_and: Callable[[tuple[T, ...]], T],
    make_or: Callable[[tuple[T, ...]], T],
) -> T:
    """Parse ``;`` / ``|`` / parentheses around ``term`` leaves; the whole input must be used."""

    def expr(depth: int) -> T:
        parts = [conj(depth)]
        while cur.peek() == "|":
            cur.pos += 1
            parts.append(conj(depth))
        return parts[0] if len(parts) == 1 else make_or(tuple(parts))

    def conj(depth: int) -> T:
        parts = [primary(depth)]
        while cur.peek() == ";":
            cur.pos += 1
            parts.append(primary(depth))
        return parts[0] if len(parts) == 1 else make_and(tuple(parts))

    def primary(depth: int) -> T:
        if cur.peek() != "(":
            return term(cur)
        if depth >= _MAX_DEPTH:
            raise cur.error("parentheses nested too deeply")
        open_pos = cur.pos
        cur.pos += 1
        node = expr(depth + 1)
        if cur.peek() != ")":
            raise cur.error(
                f"expected ')' to close '(' at {open_pos}, found {_fmt_char(cur.text, cur.pos)}"
            )
        cur.pos += 1
        return node

    if not cur.text:
        raise cur.error("empty expression")
    node = expr(0)
    if cur.pos < len(cur.text):
        raise cur.error(f"unexpected {_fmt_char(cur.text, cur.pos)}")
    return node


def parse_q(text: str) -> QNode:
    """Parse a q expression into a tree; raise :class:`QueryError` on any syntax error."""
    return _parse_bool_expr(_Cursor(text, "q"), _parse_term, _make_and, _make_or)


def _make_and(children: tuple[QNode, ...]) -> QNode:
    return QAnd(children)


def _make_or(children: tuple[QNode, ...]) -> QNode:
    return QOr(children)


def _parse_name(cur: _Cursor) -> str:
    start = cur.pos
    bracketed = _BRACKET_NAME.match(cur.text, cur.pos)
    if bracketed is not None:
        cur.pos = bracketed.end()
        return bracketed.group(1)
    if cur.peek() == "<":
        raise cur.error("unterminated or empty '<...>' name")
    if _IRI_START.match(cur.text, cur.pos):
        name = cur.match(_IRI_NAME)
    else:
        name = cur.match(_PLAIN_NAME)
    if not name:
        raise cur.error(f"expected an attribute name, found {_fmt_char(cur.text, start)}", start)
    return name


def _parse_path(cur: _Cursor) -> AttrPath:
    names = [_parse_name(cur)]
    while cur.peek() == ".":
        cur.pos += 1
        names.append(_parse_name(cur))
    keys: list[str] = []
    while cur.peek() == "[":
        cur.pos += 1
        key = cur.match(_KEY)
        if not key:
            raise cur.error("expected a key inside '[...]'")
        if cur.peek() != "]":
            raise cur.error("expected ']'")
        cur.pos += 1
        keys.append(key)
    if keys and cur.peek() == ".":
        raise cur.error("'.' cannot follow a '[key]' (sub-attributes come before keys)")
    return AttrPath(names[0], tuple(names[1:]), tuple(keys))


def _parse_term(cur: _Cursor) -> QTerm:
    path = _parse_path(cur)
    op = next((o for o in _OPS_BY_LENGTH if cur.text.startswith(o, cur.pos)), None)
    if op is None:
        if cur.peek() and cur.peek() not in _TERM_END:
            raise cur.error(
                f"expected an operator or end of term, found {_fmt_char(cur.text, cur.pos)}"
            )
        return QTerm(path)
    op_pos = cur.pos
    cur.pos += len(op)
    if not cur.peek() or cur.peek() in _TERM_END:
        raise cur.error(f"missing value after '{op}' (operator at {op_pos})")
    value: QValue
    if op in ("~=", "!~="):
        value = QRegex(_read_pattern(cur))
    else:
        value = _parse_value(cur, op)
    if cur.peek() and cur.peek() not in _TERM_END:
        raise cur.error(f"unexpected {_fmt_char(cur.text, cur.pos)} after value")
    return QTerm(path, op, value)


def _read_pattern(cur: _Cursor) -> str:
    text, start = cur.text, cur.pos
    i, depth, quote_at = start, 0, -1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quote_at >= 0:
            if c == '"':
                quote_at = -1
        elif c == '"':
            quote_at = i
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        elif c in ";|" and depth == 0:
            break
        i += 1
    if quote_at >= 0:
        raise cur.error("unterminated '\"' in pattern", quote_at)
    i = min(i, len(text))
    cur.pos = i
    return text[start:i]


def _parse_value(cur: _Cursor, op: str) -> QValue:
    start = cur.pos
    first = _parse_scalar(cur)
    if cur.text.startswith("..", cur.pos):
        if op not in ("==", "!="):
            raise cur.error(f"a range is only allowed with == or !=, not '{op}'")
        cur.pos += 2
        high = _parse_scalar(cur)
        if first.kind not in _COMPARABLE_KINDS:
            raise cur.error(
                f"a range needs numbers, strings or dates/times, not {first.kind}", start
            )
        if high.kind != first.kind:
            raise cur.error(f"range bounds differ in type ({first.kind} and {high.kind})", start)
        return QRange(first, high)
    if cur.peek() == ",":
        if op not in ("==", "!="):
            raise cur.error(f"a list is only allowed with == or !=, not '{op}'")
        items = [first]
        while cur.peek() == ",":
            cur.pos += 1
            items.append(_parse_scalar(cur))
        return QList(tuple(items))
    if op in _ORDERING_OPS and first.kind not in _COMPARABLE_KINDS:
        raise cur.error(
            f"operator '{op}' needs a number, string or date/time, not {first.kind}", start
        )
    return first


def _at_value_end(cur: _Cursor) -> bool:
    return not cur.peek() or cur.peek() in _VALUE_END or cur.text.startswith("..", cur.pos)


_TEMPORAL_PATTERNS: tuple[tuple[ScalarKind, re.Pattern[str]], ...] = (
    ("datetime", _DATETIME),
    ("date", _DATE),
    ("time", _TIME),
)


def _parse_scalar(cur: _Cursor) -> QScalar:
    start = cur.pos
    if cur.peek() == '"':
        return _parse_string(cur)
    # Numeric-looking candidates, longest form first; remember how far the longest one got so
    # that "1x" reports the 'x' rather than the '1'.
    furthest = start
    for kind, pattern in _TEMPORAL_PATTERNS:
        text = cur.match(pattern)
        if text is None:
            continue
        if _at_value_end(cur):
            if _parse_temporal(text) is None:
                raise cur.error(f"invalid {kind} {text!r}", start)
            return QScalar(kind, text)
        furthest, cur.pos = max(furthest, cur.pos), start
    number = cur.match(_NUMBER)
    if number is not None:
        if not _at_value_end(cur):
            raise cur.error(
                f"unexpected {_fmt_char(cur.text, max(furthest, cur.pos))} after value",
                max(furthest, cur.pos),
            )
        try:
            if any(c in number for c in ".eE"):
                return QScalar("number", float(number))
            return QScalar("number", int(number))
        except ValueError as exc:  # e.g. ints longer than Python's digit limit
            raise cur.error(f"number out of range: {exc}", start) from None
    if furthest > start:
        raise cur.error(f"unexpected {_fmt_char(cur.text, furthest)} after value", furthest)
    for kind, pattern in (("boolean", _KEYWORD), ("uri", _URI)):
        text = cur.match(pattern)
        if text is not None and _at_value_end(cur):
            return QScalar(kind, text == "true" if kind == "boolean" else text)
        cur.pos = start
    if not cur.peek() or cur.peek() in _VALUE_END:
        raise cur.error("missing value")
    raise cur.error(
        "expected a value (number, quoted string, true/false, date/time or URI), "
        f"found {_fmt_char(cur.text, start)}"
    )


def _parse_string(cur: _Cursor) -> QScalar:
    text, start = cur.text, cur.pos
    i = start + 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    if i >= len(text):
        raise cur.error("unterminated string", start)
    try:
        value = _JSON.decode(text[start : i + 1])
    except ValueError as exc:
        raise cur.error(f"bad escape in string ({exc.args[0].split(':')[0]})", start) from None
    cur.pos = i + 1
    return QScalar("string", value)


_DAY_US = 86_400_000_000
# (kind, value): datetime (aware), date, or time as microseconds after midnight UTC.
Temporal = tuple[str, Any]


@lru_cache(maxsize=4096)
def _parse_temporal(text: str) -> Temporal | None:
    """Classify and parse an ISO 8601 string; naive values are taken as UTC."""
    try:
        if _DATETIME.fullmatch(text):
            dt = datetime.fromisoformat(text)
            return ("datetime", dt if dt.tzinfo else dt.replace(tzinfo=UTC))
        if _DATE.fullmatch(text):
            return ("date", date.fromisoformat(text))
        if _TIME.fullmatch(text):
            t = time.fromisoformat(text)
            off = t.utcoffset()
            us = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond
            if off is not None:  # times with offsets compare in UTC
                us -= (off.days * 86_400 + off.seconds) * 1_000_000 + off.microseconds
            return ("time", us % _DAY_US)
    except ValueError:
        return None
    return None


def attrs_in(node: QNode) -> set[str]:
    """The top-level attribute terms (unexpanded) that a q tree refers to, including the entity
    timestamps ``createdAt`` / ``modifiedAt`` when a term uses them."""
    if isinstance(node, QTerm):
        return {node.path.attr}
    out: set[str] = set()
    for child in node.children:
        out |= attrs_in(child)
    return out


_SCOPE = re.compile(r"(?:/[^/;|()\s+#,]+|/\+)*(?:/#)?")
_ScopePred = Callable[[list[str] | None], bool]


def parse_scope_q(text: str) -> _ScopePred:
    """Parse a scopeQ (``/A/B``, ``/A/#`` = A and below, ``/A/+/C`` = one level wildcard,
    ``/#`` = any scope, combined with ``;``, ``|`` and parentheses) into a predicate over an
    entity's scopes (None or empty never matches)."""
    cur = _Cursor(text, "scopeQ")

    def term(c: _Cursor) -> _ScopePred:
        start = c.pos
        scope = c.match(_SCOPE)
        if not scope:
            raise c.error(f"expected a scope starting with '/', found {_fmt_char(c.text, start)}")
        if c.peek() and c.peek() not in _TERM_END:
            raise c.error(f"unexpected {_fmt_char(c.text, c.pos)} in scope")
        return _scope_matcher(scope.split("/")[1:])

    def all_of(parts: tuple[_ScopePred, ...]) -> _ScopePred:
        return lambda scopes: all(p(scopes) for p in parts)

    def any_of(parts: tuple[_ScopePred, ...]) -> _ScopePred:
        return lambda scopes: any(p(scopes) for p in parts)

    return _parse_bool_expr(cur, term, all_of, any_of)


def _scope_matcher(pattern: list[str]) -> _ScopePred:
    below = bool(pattern) and pattern[-1] == "#"
    fixed = pattern[:-1] if below else pattern

    def one(scope: str) -> bool:
        segments = scope.split("/")[1:] if scope.startswith("/") else None
        if segments is None:
            return False
        if len(segments) < len(fixed) or (not below and len(segments) != len(fixed)):
            return False
        return all(p == "+" or p == s for p, s in zip(fixed, segments, strict=False))

    return lambda scopes: bool(scopes) and any(one(s) for s in scopes or ())
