"""Request checks that NGSI-LD (ETSI GS CIM 009 v1.8) asks for before any resource is looked up.

A malformed id, attribute name or query parameter is a 400 whether or not the resource
exists, so these run first (``check_request``). The payload checks here are the HTTP API's
stricter reading of the input (``check_entity_payload``, ``check_batch``): services that build
entities in-process do not go through them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from .entities import NULL_URI, is_null_instance, is_uri
from .errors import BadRequestData, InvalidRequest

BASE = "/ngsi-ld/v1/"
# the values clause 6.3.x gives `options` (plus `count`, which maeul has always accepted)
OPTIONS = frozenset({
    "keyValues", "simplified", "concise", "normalized", "sysAttrs", "noOverwrite", "replace",
    "update", "temporalValues", "aggregatedValues", "count",
})
FORMATS = frozenset({
    "normalized", "concise", "keyValues", "simplified", "temporalValues", "aggregatedValues",
})
# The query parameters clauses 6.4-6.10 define for the collection resources (with the
# v1.9 names some clients send already): another name there is InvalidRequest (6.3.20 / the
# suite's 059_01). Single-entity resources are not checked (hot path).
_MATCH = frozenset({
    "id", "type", "idPattern", "q", "scopeQ", "csf", "local", "via", "expandValues",
    "georel", "geometry", "coordinates", "geoproperty", "geometryProperty", "geoQ",
    "containedBy",
})
_VIEW = frozenset({
    "attrs", "pick", "omit", "options", "format", "lang", "datasetId", "join", "joinLevel",
    "entityMap", "collation", "splitEntities", "limit", "offset", "count", "orderBy",
    "orderFrom", "contextSourceAlias",
})
_TEMPORAL = frozenset({
    "timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods",
    "aggrPeriodDuration",
})
_DISCOVERY = frozenset({"details", "local", "count"})  # 6.7-6.10 (the one-item ones: local)
KNOWN_PARAMS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "entities"): _MATCH | _VIEW,
    ("DELETE", "entities"): _MATCH | {"attrs", "pick", "omit", "drop", "keep", "options"},
    ("GET", "temporal/entities"): _MATCH | _VIEW | _TEMPORAL,
    ("GET", "types"): _DISCOVERY,
    ("GET", "types/"): frozenset({"local"}),
    ("GET", "attributes"): _DISCOVERY,
    ("GET", "attributes/"): frozenset({"local"}),
    ("POST", "subscriptions"): frozenset(),
}
# Entity members that are not Attributes: never valid in `attrs` (clause 4.5.1)
ENTITY_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt"})
_NAME_FORBIDDEN = frozenset('<>"\'=;(){}|,')
# invisible or confusable code points that render as nothing (Hangul and Braille fillers)
_FILLERS = frozenset({0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800})


def invisible(text: str) -> str | None:
    """The first code point of ``text`` that is invisible, a control or a noncharacter."""
    if text.isascii():  # the usual case: only controls and the space are invisible there
        if text.isprintable() and " " not in text:
            return None
        bad = next(ch for ch in text if not ch.isprintable() or ch == " ")
        return f"U+{ord(bad):04X}"
    for ch in text:
        cp = ord(ch)
        if (
            unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")
            or 0xFE00 <= cp <= 0xFE0F
            or 0xE0100 <= cp <= 0xE01EF
            or 0xFDD0 <= cp <= 0xFDEF
            or (cp & 0xFFFE) == 0xFFFE
            or cp in _FILLERS
        ):
            return f"U+{cp:04X}"
    return None


def check_uri(value: Any, what: str) -> str:
    """A URI (scheme ``:`` rest) without invisible characters; BadRequestData otherwise."""
    if not is_uri(value):
        raise BadRequestData(f"{what} must be a URI, got {value!r}")
    bad = invisible(value)
    if bad is not None:
        raise BadRequestData(f"{what} {value!r} contains the invisible character {bad}")
    return str(value)


def check_id_pattern(pattern: str) -> str:
    """An ``idPattern`` query parameter: a regular expression Python can compile."""
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise BadRequestData(f"idPattern is not a valid regular expression: {exc}") from None
    return pattern


def check_attr_name(name: str, what: str = "attribute name") -> None:
    """A short name or IRI usable as an attribute name (not a JSON-LD keyword or dot segment)."""
    plain = unquote(name)
    if (
        not name
        or plain in (".", "..")
        or name.startswith("@")
        or any(c in _NAME_FORBIDDEN or c.isspace() for c in name)
        or invisible(name) is not None
    ):
        raise BadRequestData(f"invalid {what} {name!r}")


# -- before the lookup: path and query parameters ----------------------------------------------


def check_request(path: str, method: str, path_params: Mapping[str, Any],
                  query: Mapping[str, str]) -> None:
    """Path ids and names and the query parameters of an NGSI-LD request (no-op elsewhere)."""
    if not path.startswith(BASE):
        return
    temporal = path.startswith(BASE + "temporal/")
    if "eid" in path_params:
        check_uri(path_params["eid"], "entity id")
    if "sid" in path_params:
        check_uri(path_params["sid"], "subscription id")
    if "attr" in path_params and not path.startswith(BASE + "attributes/"):
        check_attr_name(str(path_params["attr"]))
    if "iid" in path_params:
        check_uri(path_params["iid"], "instance id")
    if query:
        rest = path[len(BASE):].rstrip("/")
        known = KNOWN_PARAMS.get((method, rest if "/" not in rest or temporal else
                                  rest[:rest.index("/") + 1]))
        if known is not None:
            unknown = [k for k in query if k not in known]
            if unknown:
                raise InvalidRequest(f"unknown query parameter(s) {sorted(unknown)}")
        check_query_params(query, temporal=temporal)


def check_query_params(query: Mapping[str, str], *, temporal: bool = False) -> None:
    """Values of the standard query parameters, and the combinations clause 6.3 forbids.

    An unknown ``format`` or ``options`` value makes the request itself invalid
    (InvalidRequest, as the conformance suite's 018_16 and 021_20 expect); a bad
    projection or time is invalid data (BadRequestData)."""
    opts = query.get("options")
    if opts is not None:
        bad = [o for o in (p.strip() for p in opts.split(",")) if o and o not in OPTIONS]
        if bad:
            raise InvalidRequest(f"unknown options {bad}; use {sorted(OPTIONS)}")
    fmt = query.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise InvalidRequest(f"unknown format {fmt!r}; use {sorted(FORMATS)}")
    attrs = query.get("attrs")
    if attrs is not None:
        members = [a for a in attrs.split(",") if a.strip() in ENTITY_MEMBERS]
        if members:
            raise BadRequestData(f"attrs lists Attributes; {members} are entity members")
    join = query.get("join")
    try:
        level = int(query.get("joinLevel") or 1)
    except ValueError:
        level = 1
    depth_allowed = 0 if (temporal or join is None) else level
    for key in ("pick", "omit"):
        raw = query.get(key)
        if raw is None:
            continue
        if attrs is not None:
            raise BadRequestData(f"{key} cannot be combined with attrs")
        depth = projection_depth(raw, key)
        if depth > depth_allowed:
            why = ("the temporal API has no linked entities" if temporal else
                   "linked-entity projection needs join" if join is None else
                   f"it is nested deeper than joinLevel={level}")
            raise BadRequestData(f"{key}={raw!r}: {why}")
    if temporal:
        check_aggregation(query.get("aggrMethods"), query.get("aggrPeriodDuration"))
        for name in ("timeAt", "endTimeAt"):
            value = query.get(name)
            if value is not None and "T" not in value.upper():
                raise BadRequestData(f"{name} must be a date-time, not a date: {value!r}")


def projection_depth(expr: str, key: str = "pick") -> int:
    """Parse a pick/omit expression (``a,b|c,rel{x,y}``) and return its nesting depth."""
    pos = 0
    n = len(expr)

    def fail(why: str) -> BadRequestData:
        return BadRequestData(f"invalid {key} {expr!r}: {why}")

    def parse_list() -> int:
        nonlocal pos
        deepest = parse_item()
        while pos < n and expr[pos] in ",|":
            pos += 1
            deepest = max(deepest, parse_item())
        return deepest

    def parse_item() -> int:
        nonlocal pos
        start = pos
        while pos < n and expr[pos] not in ",|{}":
            pos += 1
        name = expr[start:pos]
        if not name:
            raise fail("empty member")
        check_attr_name(name, f"{key} member")
        if pos < n and expr[pos] == "{":
            pos += 1
            inner = parse_list()
            if pos >= n or expr[pos] != "}":
                raise fail("unbalanced braces")
            pos += 1
            return inner + 1
        return 0

    depth = parse_list()
    if pos != n:
        raise fail(f"unexpected {expr[pos]!r}")
    return depth


Projection = dict[str, "Projection | None"]


def projection_tree(expr: str, key: str = "pick") -> Projection:
    """A checked pick/omit expression as a tree: member name -> the projection of the linked
    entity (``rel{a,b}``), or None for a plain member. ``|`` separates like ``,``."""
    projection_depth(expr, key)
    pos = 0

    def parse_list() -> Projection:
        nonlocal pos
        out: Projection = {}
        while True:
            start = pos
            while pos < len(expr) and expr[pos] not in ",|{}":
                pos += 1
            name = expr[start:pos].strip()
            sub = None
            if pos < len(expr) and expr[pos] == "{":
                pos += 1
                sub = parse_list()
                pos += 1  # the closing brace (checked above)
            out[name] = sub if sub is not None else out.get(name)
            if pos < len(expr) and expr[pos] in ",|":
                pos += 1
                continue
            return out

    return parse_list()


def check_aggregation(methods: Any, period: Any) -> None:
    """``aggrMethods`` (a list or comma-separated string) and ``aggrPeriodDuration``."""
    from .temporal import AGGR_METHODS, parse_duration

    if methods is not None:
        items = methods if isinstance(methods, list) else (
            str(methods).split(",") if isinstance(methods, str) else None)
        if items is None or not all(isinstance(m, str) for m in items):
            raise BadRequestData("aggrMethods must be a list of method names")
        bad = [m for m in (m.strip() for m in items) if m not in AGGR_METHODS]
        if bad or not items:
            raise BadRequestData(f"unknown aggrMethods {bad}; use {list(AGGR_METHODS)}")
    if period is not None:
        if not isinstance(period, str):
            raise BadRequestData("aggrPeriodDuration must be an ISO 8601 duration string")
        parse_duration(period)


def check_query_body(body: Mapping[str, Any], *, temporal: bool) -> None:
    """Members of a POST .../entityOperations/query body that clause 5.7.2 / 5.7.4 reject."""
    if "attrs" in body and body["attrs"] == []:
        raise BadRequestData("attrs must not be an empty list")
    if not temporal:
        if "temporalQ" in body:
            raise BadRequestData("temporalQ is only for the temporal query operation")
        return
    tq = body.get("temporalQ")
    if isinstance(tq, dict):
        check_aggregation(tq.get("aggrMethods"), tq.get("aggrPeriodDuration"))
    ap = body.get("aggrParams")
    if ap is not None:
        if not isinstance(ap, dict):
            raise BadRequestData("aggrParams must be an object")
        check_aggregation(ap.get("aggrMethods"), ap.get("aggrPeriodDuration"))


# -- payloads -------------------------------------------------------------------------------


def check_body_object(body: Any, what: str) -> dict[str, Any]:
    """The request body must be a JSON object: anything else is an InvalidRequest (5.5.2)."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return body


def check_batch(op: str, body: list[Any]) -> None:
    """A batch is refused as a whole when it is empty or an item is not an entity (5.6.7-10)."""
    if not body:
        raise BadRequestData("a batch must hold at least one entity")
    for i, item in enumerate(body):
        if op == "delete":
            if not isinstance(item, str):
                raise BadRequestData(f"batch item {i} is not an entity id")
        elif not isinstance(item, dict):
            raise BadRequestData(f"batch item {i} is not an entity object")


# members that only a broker writes (notifications, proofs), or that belong to another type
_OUTPUT_ONLY = frozenset({"previousValue", "previousObject", "previousLanguageMap",
                          "previousVocab", "previousValueList", "previousObjectList",
                          "previousJson", "entityIdSealed", "entityTypeSealed"})
_VALUE_KEYS = {
    "Property": "value", "GeoProperty": "value", "Relationship": "object",
    "LanguageProperty": "languageMap", "VocabProperty": "vocab", "ListProperty": "valueList",
    "ListRelationship": "objectList", "JsonProperty": "json",
}
_ALL_VALUE_KEYS = frozenset(_VALUE_KEYS.values())


def check_entity_payload(doc: Any, *, create: bool, temporal: bool = False) -> None:
    """Entity input checks the HTTP API applies on top of expansion.

    ``create``: the payload creates (or replaces) the entity, where the NGSI-LD Null
    ``urn:ngsi-ld:null`` has nothing to delete and is refused (clause 4.5.0).
    ``temporal``: a temporal payload, where a null attribute instance records a deletion
    but a first-level member (scope, expiresAt) still cannot be null."""
    if not isinstance(doc, dict):
        return
    if "id" in doc:
        check_uri(doc["id"], "entity id")
        if doc["id"] == NULL_URI:
            raise BadRequestData("entity id must not be the NGSI-LD Null")
    types = doc.get("type")
    for t in types if isinstance(types, list) else [types]:
        if isinstance(t, str) and t and (t[0].isdigit() or invisible(t) is not None):
            raise BadRequestData(f"invalid entity type {t!r}")
    for key, val in doc.items():
        if key in ("id", "type", "@context"):
            continue
        if (create or (temporal and key in ("scope", "expiresAt"))) and val == NULL_URI:
            raise BadRequestData(f"{key}: the NGSI-LD Null cannot be created")
        if key in ("scope", "expiresAt"):
            continue
        for inst in val if isinstance(val, list) else [val]:
            if isinstance(inst, dict):
                _check_attribute(key, inst, create, 0)


def _check_attribute(name: str, a: dict[str, Any], create: bool, depth: int) -> None:
    if depth > 8:
        return
    typ = a.get("type")
    own = _VALUE_KEYS.get(typ) if isinstance(typ, str) else None
    if own is not None:
        wrong = sorted(k for k in a if k in _ALL_VALUE_KEYS and k != own)
        if wrong:
            raise BadRequestData(f"attribute {name}: a {typ} cannot have {wrong}")
        if typ in ("Relationship", "ListRelationship", "JsonProperty") and "unitCode" in a:
            raise BadRequestData(f"attribute {name}: a {typ} cannot have unitCode")
        if typ == "LanguageProperty":
            _check_language_property(name, a, create)
    out_only = sorted(k for k in a if k in _OUTPUT_ONLY)
    if out_only:
        raise BadRequestData(f"attribute {name}: {out_only} cannot be written")
    if "@context" in a:
        raise BadRequestData(f"attribute {name}: an embedded @context is not allowed")
    if create and is_null_instance(a):
        raise BadRequestData(f"attribute {name}: the NGSI-LD Null cannot be created")
    for key in ("value", "object", "valueList", "objectList"):
        if key not in a:
            continue
        whole = a[key] == NULL_URI or (key in ("valueList", "objectList")
                                       and is_null_instance({key: a[key]}))
        if create and whole:
            raise BadRequestData(f"attribute {name}: the NGSI-LD Null cannot be created")
        if not whole and isinstance(a[key], dict | list) and _has_null(a[key]):
            raise BadRequestData(
                f"attribute {name}: the NGSI-LD Null is only allowed as a whole value")
    for key, sub in a.items():
        if isinstance(sub, dict) and key not in _ALL_VALUE_KEYS and key not in (
                "languageMap", "objectType"):
            _check_attribute(key, sub, create, depth + 1)
        elif create and sub == NULL_URI and key not in _ALL_VALUE_KEYS:
            raise BadRequestData(f"attribute {name}.{key}: the NGSI-LD Null cannot be created")


def _check_language_property(name: str, a: dict[str, Any], create: bool) -> None:
    if "valueType" in a and a["valueType"] not in ("rdf:langString", "langString", "LangString"):
        raise BadRequestData(f"attribute {name}: a LanguageProperty's valueType is LangString")
    lm = a.get("languageMap")
    if not isinstance(lm, dict):
        return
    for code, text in lm.items():
        if not code:
            raise BadRequestData(f"attribute {name}: empty language tag")
        if isinstance(text, list) and not all(isinstance(t, str) for t in text):
            raise BadRequestData(f"attribute {name}: languageMap arrays hold strings only")
        if create and text == NULL_URI:
            raise BadRequestData(f"attribute {name}: the NGSI-LD Null cannot be created")


def _has_null(value: Any) -> bool:
    if value == NULL_URI:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False
