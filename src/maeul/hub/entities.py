"""Entity payloads in: validation and expansion to the stored form.

The stored form is described in docs/internals.md. Input may be normalized or concise NGSI-LD;
the way out (normalized, concise or keyValues, compacted with the requester's @context) is
``compaction.View``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson

from .errors import BadRequestData

NULL_URI = "urn:ngsi-ld:null"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
GEO_ATTRS = {
    LOCATION,
    "https://uri.etsi.org/ngsi-ld/observationSpace",
    "https://uri.etsi.org/ngsi-ld/operationSpace",
}
ATTR_TYPES = {
    "Property",
    "Relationship",
    "GeoProperty",
    "LanguageProperty",
    "VocabProperty",
    "ListProperty",
    "ListRelationship",
    "JsonProperty",
}
# members of an attribute that are not sub-attributes
META = {
    "type",
    "value",
    "object",
    "objectType",
    "languageMap",
    "vocab",
    "valueList",
    "objectList",
    "json",
    "observedAt",
    "unitCode",
    "datasetId",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "instanceId",
    "lang",
}
SYS = ("createdAt", "modifiedAt", "deletedAt")
RESERVED_ENTITY = {"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"}
_GEO_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
_FORBIDDEN_CHARS = re.compile(r"[<>\"'=;()\s]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+$")

Entity = dict[str, Any]


class TermContext(Protocol):
    def expand_term(self, term: str) -> str: ...
    def compact_iri(self, iri: str) -> str: ...
    def expand_value_vocab(self, v: str) -> str: ...
    def compact_value_vocab(self, v: str) -> str: ...


_J = TypeVar("_J")


def is_null_instance(a: dict[str, Any]) -> bool:
    """Whether an attribute fragment is the NGSI-LD Null of its type (clause 4.5.0): its value
    member is ``urn:ngsi-ld:null`` (a languageMap ``{"@none": null}``, a list ``[null]``,
    an objectList ``[{"object": null}]``), which deletes what it names."""
    for key in ("value", "object", "json", "vocab", "valueList", "objectList", "languageMap"):
        if key not in a:
            continue
        v = a[key]
        if v == NULL_URI:
            return True
        if key == "languageMap":
            return isinstance(v, dict) and v.get("@none") == NULL_URI and len(v) == 1
        if isinstance(v, list) and len(v) == 1:
            item = v[0]
            return item == NULL_URI or (isinstance(item, dict) and item.get("object") == NULL_URI)
        return False
    return False


def json_copy(doc: _J) -> _J:
    """A deep copy of JSON-shaped data (about 6x faster than ``copy.deepcopy`` through orjson);
    anything orjson cannot write (odd keys, big integers) is copied by ``copy.deepcopy``."""
    try:
        return orjson.loads(orjson.dumps(doc))  # type: ignore[no-any-return]
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return copy.deepcopy(doc)


def now_iso() -> str:
    # isoformat with explicit microseconds is fixed width and cheaper than strftime
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and bool(_URI.match(value))


def parse_time(value: Any, field: str) -> datetime:
    """An ISO 8601 date-time; naive values are UTC. Raises BadRequestData naming the field."""
    if not isinstance(value, str):
        raise BadRequestData(f"{field} must be an ISO 8601 date-time string")
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequestData(f"{field} is not a valid ISO 8601 date-time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
        raise BadRequestData(f"{field} is out of range: {value!r}") from None


def canonical_time(value: Any, field: str = "time") -> str:
    return parse_time(value, field).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_name(name: str, where: str) -> None:
    if not name or _FORBIDDEN_CHARS.search(name):
        raise BadRequestData(f"invalid {where} name {name!r}")


def check_entity_id(eid: Any) -> str:
    if not is_uri(eid):
        raise BadRequestData(f"entity id must be a URI, got {eid!r}")
    return str(eid)


def _looks_geojson(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in _GEO_TYPES and "coordinates" in value


def _validate_geo(value: Any, name: str) -> None:
    from .geo import GeoQueryError, validate_geojson

    try:
        validate_geojson(value)
    except GeoQueryError as exc:
        raise BadRequestData(f"attribute {name}: invalid GeoJSON: {exc}") from None


# -- expansion ------------------------------------------------------------------------------


def expand_types(raw: Any, ctx: TermContext) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(t, str) and t for t in items):
        raise BadRequestData("entity type must be a non-empty string or list of strings")
    out: list[str] = []
    for t in items:
        check_name(t, "type")
        iri = ctx.expand_term(t)
        if iri.startswith("@"):  # a JSON-LD keyword alias ("type") names no entity type
            raise BadRequestData(f"invalid entity type {t!r}: it is a JSON-LD keyword")
        if iri not in out:
            out.append(iri)
    return out


def expand_scope(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    for s in items:
        if not isinstance(s, str) or not re.fullmatch(r"(/[^/#+\s]+)+", s):
            raise BadRequestData(f"invalid scope {s!r}: scopes look like /Region/Town")
    return list(items)


def infer_attribute(raw: Any, iri: str) -> dict[str, Any]:
    """Concise input: a bare value or a dict without 'type' becomes a typed attribute dict."""
    if isinstance(raw, dict):
        if "type" in raw and raw["type"] in ATTR_TYPES:
            return raw
        if "type" in raw and not _looks_geojson(raw) and ("value" in raw or "object" in raw):
            return raw  # typed with an unknown type: validation reports it
        for key, typ in (
            ("object", "Relationship"),
            ("languageMap", "LanguageProperty"),
            ("vocab", "VocabProperty"),
            ("valueList", "ListProperty"),
            ("objectList", "ListRelationship"),
            ("json", "JsonProperty"),
        ):
            if key in raw:
                return {"type": typ, **raw}
        if "value" in raw:
            typ = "GeoProperty" if _looks_geojson(raw["value"]) else "Property"
            return {"type": typ, **raw}
        if _looks_geojson(raw):
            return {"type": "GeoProperty", "value": raw}
        return {"type": "Property", "value": raw}
    if isinstance(raw, list) and iri not in GEO_ATTRS:
        return {"type": "Property", "value": raw}
    return {"type": "Property", "value": raw}


def expand_attribute(
    name: str, raw: Any, ctx: TermContext, *, partial: bool = False, depth: int = 0
) -> dict[str, Any]:
    """Validate one attribute (or sub-attribute) and expand its sub-attribute names."""
    if depth > 8:
        raise BadRequestData(f"attribute {name}: sub-attributes nested too deeply")
    if raw is None:
        raise BadRequestData(f"attribute {name}: null is not a valid attribute")
    attr = raw if partial and isinstance(raw, dict) else infer_attribute(raw, name)
    typ = attr.get("type")
    if typ is not None and typ not in ATTR_TYPES:
        raise BadRequestData(f"attribute {name}: unknown attribute type {typ!r}")
    if typ is None and not partial:
        raise BadRequestData(f"attribute {name}: missing type")
    out: dict[str, Any] = {}
    for key, val in attr.items():
        if key in META:
            out[key] = val
        elif key == "@context":
            continue
        else:
            check_name(key, "sub-attribute")
            iri = ctx.expand_term(key)
            if val == NULL_URI:
                out[iri] = NULL_URI
            else:
                out[iri] = expand_attribute(key, val, ctx, partial=partial, depth=depth + 1)
    _validate_members(name, out, ctx, partial)
    return out


def _validate_members(name: str, a: dict[str, Any], ctx: TermContext, partial: bool) -> None:
    typ = a.get("type")
    if typ in ("Property", "GeoProperty") or (partial and "value" in a):
        if "value" not in a:
            if not partial:
                raise BadRequestData(f"attribute {name}: a {typ} needs a value")
        elif a["value"] is None:
            raise BadRequestData(f"attribute {name}: value must not be null")
        if typ == "GeoProperty" and "value" in a and a["value"] != NULL_URI:
            _validate_geo(a["value"], name)
    if typ == "Relationship" or (partial and "object" in a):
        obj = a.get("object")
        if obj is None and not partial:
            raise BadRequestData(f"attribute {name}: a Relationship needs an object")
        objs = obj if isinstance(obj, list) else [obj]
        if obj is not None and not all(is_uri(o) for o in objs):
            raise BadRequestData(f"attribute {name}: a Relationship object must be a URI")
    if typ == "LanguageProperty" or (partial and "languageMap" in a):
        lm = a.get("languageMap")
        if not isinstance(lm, dict) or not all(
            isinstance(k, str) and isinstance(v, str | list) for k, v in lm.items()
        ):
            raise BadRequestData(f"attribute {name}: languageMap must map language codes to text")
    if typ == "VocabProperty" or (partial and "vocab" in a):
        voc = a.get("vocab")
        items = voc if isinstance(voc, list) else [voc]
        if not all(isinstance(v, str) and v for v in items):
            raise BadRequestData(f"attribute {name}: vocab must be a string or list of strings")
        a["vocab"] = (
            [ctx.expand_value_vocab(str(v)) for v in items]
            if isinstance(voc, list)
            else ctx.expand_value_vocab(str(voc))
        )
    if typ == "ListProperty" or (partial and "valueList" in a):
        if not isinstance(a.get("valueList"), list):
            raise BadRequestData(f"attribute {name}: valueList must be a list")
    if typ == "ListRelationship" or (partial and "objectList" in a):
        ol = a.get("objectList")
        if not isinstance(ol, list):
            raise BadRequestData(f"attribute {name}: objectList must be a list")
        for item in ol:
            target = item.get("object") if isinstance(item, dict) else item
            if not is_uri(target):
                raise BadRequestData(f"attribute {name}: objectList items must be URIs")
    if typ == "JsonProperty" or (partial and "json" in a):
        # 4.5.24: a raw JSON object or array, stored and shown verbatim (never expanded)
        js = a.get("json")
        if js is None and not partial:
            raise BadRequestData(f"attribute {name}: a JsonProperty needs json")
        if js is not None and js != NULL_URI and not isinstance(js, dict | list):
            raise BadRequestData(f"attribute {name}: json must be a JSON object or array")
        if "value" in a or "unitCode" in a:
            raise BadRequestData(f"attribute {name}: a JsonProperty has no value or unitCode")
    if "observedAt" in a:
        parse_time(a["observedAt"], f"{name}.observedAt")
    if "unitCode" in a and not isinstance(a["unitCode"], str):
        raise BadRequestData(f"attribute {name}: unitCode must be a string")
    if "datasetId" in a and not is_uri(a["datasetId"]):
        raise BadRequestData(f"attribute {name}: datasetId must be a URI")
    for sysname in SYS:
        a.pop(sysname, None)  # system-generated: never taken from the client


def check_complete(name: str, a: dict[str, Any], iri: str = "") -> None:
    """An attribute instance that results from a merge must still be a valid attribute."""
    typ = a.get("type")
    if typ not in ATTR_TYPES:
        raise BadRequestData(f"attribute {name}: missing or unknown type {typ!r}")
    need = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
            "LanguageProperty": "languageMap", "VocabProperty": "vocab",
            "ListProperty": "valueList", "ListRelationship": "objectList",
            "JsonProperty": "json"}[typ]
    if a.get(need) is None:
        raise BadRequestData(f"attribute {name}: a {typ} needs {need}")
    if typ == "GeoProperty":
        _validate_geo(a["value"], name)
    if typ == "Relationship":
        obj = a["object"]
        if not all(is_uri(o) for o in (obj if isinstance(obj, list) else [obj])):
            raise BadRequestData(f"attribute {name}: a Relationship object must be a URI")
    if iri in GEO_ATTRS and typ != "GeoProperty":
        raise BadRequestData(f"attribute {name} must be a GeoProperty")
    for key, val in a.items():
        if key not in META and isinstance(val, dict):
            check_complete(key, val)


def expand_attrs(
    doc: dict[str, Any], ctx: TermContext, *, partial: bool = False, temporal: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """All attributes of a payload: expanded IRI -> instances (one per datasetId).

    ``temporal``: a temporal payload, where an attribute lists many instances of one
    datasetId over time (so a repeated datasetId is allowed there)."""
    attrs: dict[str, list[dict[str, Any]]] = {}
    for key, raw in doc.items():
        if key in RESERVED_ENTITY:
            continue
        if key in META:
            raise BadRequestData(f"{key!r} cannot be used as an attribute name")
        check_name(key, "attribute")
        iri = ctx.expand_term(key)
        items = raw if isinstance(raw, list) and raw and all(
            isinstance(i, dict) and ("type" in i or "value" in i or "object" in i) for i in raw
        ) else [raw]
        if iri in GEO_ATTRS:
            items = [
                ({"type": "GeoProperty", "value": i} if _looks_geojson(i) else i) for i in items
            ]
        insts: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in items:
            if item == NULL_URI:
                insts.append({"value": NULL_URI, "type": "Property"})
                continue
            inst = expand_attribute(key, item, ctx, partial=partial)
            ds = inst.get("datasetId", "")
            if ds in seen and not temporal:
                raise BadRequestData(f"attribute {key}: datasetId {ds or '(default)'} twice")
            seen.add(ds)
            if iri in GEO_ATTRS and inst.get("type") not in (None, "GeoProperty"):
                raise BadRequestData(f"attribute {key} must be a GeoProperty")
            insts.append(inst)
        attrs[iri] = insts
    return attrs


def expand_entity(doc: Any, ctx: TermContext) -> Entity:
    """A full entity for create/replace/upsert: id, type, scope, attributes."""
    if not isinstance(doc, dict):
        raise BadRequestData("an entity must be a JSON object")
    if "id" not in doc:
        raise BadRequestData("entity id is missing")
    if "type" not in doc:
        raise BadRequestData("entity type is missing")
    ent: Entity = {"id": check_entity_id(doc["id"]), "type": expand_types(doc["type"], ctx)}
    if "scope" in doc:
        ent["scope"] = expand_scope(doc["scope"])
    if is_expires_member(doc):
        ent["expiresAt"] = expand_expires(doc["expiresAt"])
        doc = {k: v for k, v in doc.items() if k != "expiresAt"}
    ent["attrs"] = expand_attrs(doc, ctx)
    return ent


def expand_fragment(doc: Any, ctx: TermContext, *, partial: bool = False) -> Entity:
    """An entity fragment (PATCH, append): attributes, optional type and scope."""
    if not isinstance(doc, dict):
        raise BadRequestData("the payload must be a JSON object")
    frag: Entity = {}
    if "id" in doc:
        frag["id"] = check_entity_id(doc["id"])
    if "type" in doc:
        frag["type"] = expand_types(doc["type"], ctx)
    if "scope" in doc:
        frag["scope"] = expand_scope(doc["scope"])
    if is_expires_member(doc):
        raw = doc["expiresAt"]
        frag["expiresAt"] = None if raw == NULL_URI else expand_expires(raw)
        doc = {k: v for k, v in doc.items() if k != "expiresAt"}
    frag["attrs"] = expand_attrs(doc, ctx, partial=partial)
    return frag


def is_expires_member(doc: dict[str, Any]) -> bool:
    """Whether ``doc`` has the v1.8 entity member ``expiresAt`` (a transient entity).

    An object under that name stays an ordinary attribute called expiresAt (the trust
    layer's proposal entities carry one), so only a non-object value is the member."""
    return "expiresAt" in doc and not isinstance(doc["expiresAt"], dict)


def expand_expires(raw: Any) -> str:
    """A transient entity's ``expiresAt``: a future date-time, returned in canonical form."""
    when = parse_time(raw, "expiresAt")
    if when <= datetime.now(UTC):
        raise BadRequestData(f"expiresAt must be in the future, got {raw!r}")
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def type_filter(
    expr: str, expand: Callable[[str], str]
) -> tuple[tuple[str, ...], Callable[[list[str]], bool] | None]:
    """Type selection: `A,B` or `A|B` any of; `;` and parentheses make a boolean expression."""
    names = [n for n in re.split(r"[,|;()]", expr) if n]
    if not names:
        raise BadRequestData("type must not be empty")
    iris = tuple(dict.fromkeys(expand(n) for n in names))
    if ";" not in expr and "(" not in expr:
        return iris, None
    tokens = re.findall(r"[(),|;]|[^(),|;]+", expr)
    pos = 0

    def parse_or() -> Callable[[set[str]], bool]:
        nonlocal pos
        parts = [parse_and()]
        while pos < len(tokens) and tokens[pos] in (",", "|"):
            pos += 1
            parts.append(parse_and())
        return lambda ts: any(p(ts) for p in parts)

    def parse_and() -> Callable[[set[str]], bool]:
        nonlocal pos
        parts = [parse_atom()]
        while pos < len(tokens) and tokens[pos] == ";":
            pos += 1
            parts.append(parse_atom())
        return lambda ts: all(p(ts) for p in parts)

    def parse_atom() -> Callable[[set[str]], bool]:
        nonlocal pos
        if pos >= len(tokens):
            raise BadRequestData(f"invalid type expression {expr!r}")
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            inner = parse_or()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise BadRequestData(f"unbalanced parentheses in type {expr!r}")
            pos += 1
            return inner
        if tok in ",|;)":
            raise BadRequestData(f"invalid type expression {expr!r}")
        iri = expand(tok)
        return lambda ts: iri in ts

    pred = parse_or()
    if pos != len(tokens):
        raise BadRequestData(f"invalid type expression {expr!r}")
    return iris, lambda types: pred(set(types))


def dataset_filter(param: str) -> set[str]:
    """The ``datasetId`` query parameter: a comma-separated list of dataset URIs, where
    ``@none`` names the default instance (stored without datasetId, here "")."""
    out = set()
    for d in param.split(","):
        d = d.strip()
        if d == "@none":
            out.add("")
        elif is_uri(d):
            out.add(d)
        else:
            raise BadRequestData(f"datasetId must be a URI or @none, got {d!r}")
    return out
