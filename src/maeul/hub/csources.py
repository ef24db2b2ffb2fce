"""Context Source Registrations (ETSI GS CIM 009 v1.8, clauses 5.2.9, 5.9, 5.10): the payload
checked and expanded into its stored form, compacted again for output, and matched against
discovery queries and csourceSubscriptions.

The stored form expands entity types, attribute names and extra members (Context Source
Properties) with the request's @context, like entities; every other member is kept as given.
Nothing here touches the store or HTTP: ``csource_subs.py`` keeps registrations and
csourceSubscriptions, ``csources_api.py`` serves them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .entities import NULL_URI, Entity, is_uri, parse_time
from .errors import BadRequestData
from .geo import GeoQueryError, validate_geojson
from .ldcontext import Context
from .temporal import parse_duration
from .validate import check_attr_name, check_uri

TYPE = "ContextSourceRegistration"
TYPE_IRI = "https://uri.etsi.org/ngsi-ld/ContextSourceRegistration"
MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
DEFAULT_MODE = "inclusive"
DEFAULT_OPERATIONS = ["federationOps"]

# Table 4.20-1: the operations a Context Source may support
_RETRIEVE = ("retrieveEntity", "queryEntity")
_CONSUME = (*_RETRIEVE, "queryBatch", "retrieveEntityTypes", "retrieveEntityTypeDetails",
            "retrieveEntityTypeInfo", "retrieveAttrTypes", "retrieveAttrTypeDetails",
            "retrieveAttrTypeInfo", "retrieveTemporal", "queryTemporal")
_SUBSCRIBE = ("createSubscription", "updateSubscription", "retrieveSubscription",
              "querySubscription", "deleteSubscription")
_ENTITY_MAP = ("retrieveEntityMap", "updateEntityMap", "deleteEntityMap",
               "createEntityMapQueryEntity", "createEntityMapQueryTemporal")
# operations that change context data: not allowed on an auxiliary registration (5.9.2.4)
WRITE_OPERATIONS = frozenset({
    "createEntity", "updateEntity", "appendAttrs", "updateAttrs", "deleteAttrs", "deleteEntity",
    "mergeEntity", "replaceEntity", "replaceAttrs", "purgeEntity", "createBatch", "upsertBatch",
    "updateBatch", "deleteBatch", "mergeBatch", "upsertTemporal", "appendAttrsTemporal",
    "deleteAttrsTemporal", "updateAttrInstanceTemporal", "deleteAttrInstanceTemporal",
    "deleteTemporal",
})
OPERATIONS = frozenset({*_CONSUME, *_SUBSCRIBE, *_ENTITY_MAP, *WRITE_OPERATIONS,
                        "retrieveContextSourceIdentity"})
# Table 4.20-2: named groups of operations
OPERATION_GROUPS: dict[str, frozenset[str]] = {
    "federationOps": frozenset({*_CONSUME, *_SUBSCRIBE}) - {"retrieveTemporal",
                                                          "queryTemporal"},
    "updateOps": frozenset({"updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs"}),
    "retrieveOps": frozenset(_RETRIEVE),
    "redirectionOps": frozenset({
        "createEntity", "updateEntity", "appendAttrs", "updateAttrs", "deleteAttrs",
        "deleteEntity", "mergeEntity", "replaceEntity", "replaceAttrs", *_RETRIEVE,
        "retrieveEntityTypes", "retrieveEntityTypeDetails", "retrieveEntityTypeInfo",
        "retrieveAttrTypes", "retrieveAttrTypeDetails", "retrieveAttrTypeInfo"}),
}
# members with a meaning of their own; any other member is a Context Source Property
_GEO = ("location", "observationSpace", "operationSpace")
_INTERVALS = ("observationInterval", "managementInterval")
MEMBERS = frozenset({
    "id", "type", "registrationName", "description", "information", "tenant", "endpoint",
    "contextSourceInfo", "scope", "mode", "operations", "refreshRate", "management",
    "expiresAt", *_GEO, *_INTERVALS,
})
# written by the broker: ignored in input, never a Context Source Property
SYSTEM = frozenset({"createdAt", "modifiedAt", "deletedAt", "status", "timesSent",
                    "timesFailed", "lastSuccess", "lastFailure"})
MANDATORY = ("id", "type", "information", "endpoint")
_MANAGEMENT = ("localOnly", "cacheDuration", "timeout", "cooldown")


def _err(msg: str) -> BadRequestData:
    return BadRequestData(f"context source registration: {msg}")


def _is_null(value: Any) -> bool:
    return value is None or value == NULL_URI


def _text(doc: dict[str, Any], key: str) -> str:
    v = doc[key]
    if not isinstance(v, str) or not v:
        raise _err(f"{key} must be a non-empty string")
    return v


def _names(info: dict[str, Any], key: str, ctx: Context) -> list[str]:
    v = info[key]
    if not isinstance(v, list) or not v or not all(isinstance(a, str) for a in v):
        raise _err(f"information.{key} must be a non-empty list of attribute names")
    for a in v:
        try:
            check_attr_name(a)
        except BadRequestData:
            raise _err(f"information.{key}: invalid attribute name {a!r}") from None
    return [ctx.expand_term(a) for a in v]


def _entity_info(e: Any, ctx: Context) -> dict[str, Any]:
    if not isinstance(e, dict) or set(e) - {"id", "idPattern", "type"}:
        raise _err("information.entities items are objects with type, id and idPattern")
    if not isinstance(e.get("type"), str) or not e["type"]:
        raise _err("information.entities items need a type")
    try:
        check_attr_name(e["type"], "entity type")
    except BadRequestData as exc:
        raise _err(f"information.entities: {exc.detail}") from None
    out: dict[str, Any] = {"type": ctx.expand_term(e["type"])}
    if "id" in e:
        try:
            out["id"] = check_uri(e["id"], "information.entities.id")
        except BadRequestData as exc:
            raise _err(exc.detail) from None
    if "idPattern" in e:
        try:
            re.compile(e["idPattern"])
        except (re.error, TypeError, RecursionError, OverflowError):
            raise _err("information.entities.idPattern is not a valid regular expression"
                       ) from None
        out["idPattern"] = e["idPattern"]
    return out


def _information(value: Any, ctx: Context) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _err("information must be a non-empty list of RegistrationInfo")
    out = []
    for info in value:
        if not isinstance(info, dict):
            raise _err("each information item must be an object")
        unknown = set(info) - {"entities", "propertyNames", "relationshipNames"}
        if unknown:
            raise _err(f"unknown member(s) {sorted(unknown)} in information")
        if not info:
            raise _err("an information item needs entities, propertyNames or relationshipNames")
        item: dict[str, Any] = {}
        if "entities" in info:
            ents = info["entities"]
            if not isinstance(ents, list) or not ents:
                raise _err("information.entities must be a non-empty list")
            item["entities"] = [_entity_info(e, ctx) for e in ents]
        for key in ("propertyNames", "relationshipNames"):
            if key in info:
                item[key] = _names(info, key, ctx)
        out.append(item)
    return out


def _interval(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict) or "startAt" not in value or set(value) - {"startAt",
                                                                               "endAt"}:
        raise _err(f"{key} must be an object with startAt and an optional endAt")
    start = parse_time(value["startAt"], f"{key}.startAt")
    if "endAt" in value and parse_time(value["endAt"], f"{key}.endAt") <= start:
        raise _err(f"{key}.endAt must be after startAt")
    return dict(value)


def _duration(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _err(f"{key} must be an ISO 8601 duration such as PT5M")
    try:
        parse_duration(value)
    except BadRequestData:
        raise _err(f"{key} {value!r} is not an ISO 8601 duration such as PT5M") from None
    return value


def _positive(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _err(f"{key} must be a number greater than 0 (milliseconds)")
    return value


def _management(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _err("management must be an object")
    unknown = set(value) - set(_MANAGEMENT)
    if unknown:
        raise _err(f"unknown member(s) {sorted(unknown)} in management")
    if "localOnly" in value and not isinstance(value["localOnly"], bool):
        raise _err("management.localOnly must be true or false")
    if "cacheDuration" in value:
        _duration(value["cacheDuration"], "management.cacheDuration")
    for key in ("timeout", "cooldown"):
        if key in value:
            _positive(value[key], f"management.{key}")
    return dict(value)


def _operations(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(o, str) for o in value):
        raise _err("operations must be a non-empty list of operation or group names")
    bad = [o for o in value if o not in OPERATIONS and o not in OPERATION_GROUPS]
    if bad:
        raise _err(f"unknown operation(s) {bad}; use the names of clause 4.20 or the groups "
                   f"{sorted(OPERATION_GROUPS)}")
    return list(value)


def _endpoint(value: Any) -> str:
    if not is_uri(value):
        raise _err(f"endpoint must be a URI, got {value!r}")
    parts = urlsplit(value)
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise _err(f"endpoint {value!r} is not a valid URL") from None
    if parts.scheme in ("http", "https") and not host:
        raise _err(f"endpoint {value!r} has no host")
    return str(value)


def _member(key: str, value: Any, ctx: Context) -> Any:
    """One top-level member checked (value as stored)."""
    if key in ("registrationName", "description", "tenant"):
        return _text({key: value}, key)
    if key == "information":
        return _information(value, ctx)
    if key == "endpoint":
        return _endpoint(value)
    if key == "mode":
        if value not in MODES:
            raise _err(f"mode must be one of {list(MODES)}")
        return value
    if key == "operations":
        return _operations(value)
    if key in _INTERVALS:
        return _interval(value, key)
    if key in _GEO:
        try:
            validate_geojson(value)
        except GeoQueryError as exc:
            raise _err(f"{key} is not a GeoJSON geometry: {exc}") from None
        return value
    if key == "expiresAt":
        if parse_time(value, "expiresAt") <= datetime.now(UTC):
            raise _err("expiresAt must be in the future")
        return value
    if key == "contextSourceInfo":
        if not isinstance(value, list) or not all(
            isinstance(p, dict) and set(p) == {"key", "value"}
            and isinstance(p["key"], str) and isinstance(p["value"], str) for p in value
        ):
            raise _err("contextSourceInfo must be a list of {key, value} string pairs")
        return value
    if key == "scope":
        scopes = [value] if isinstance(value, str) else value
        if not isinstance(scopes, list) or not scopes or not all(
            isinstance(s, str) and s.startswith("/") for s in scopes
        ):
            raise _err("scope must be a scope (/A/B) or a non-empty list of scopes")
        return value
    if key == "refreshRate":
        return _duration(value, "refreshRate")
    if key == "management":
        return _management(value)
    raise AssertionError(key)  # pragma: no cover - MEMBERS and this function agree


def validate_registration(doc: Any, ctx: Context, *, partial: bool = False) -> dict[str, Any]:
    """A registration payload checked and expanded into its stored form.

    With ``partial`` (PATCH), a member set to null (or the NGSI-LD Null) is listed under
    ``"_remove"``; mandatory members cannot be removed. Mode rules that depend on the whole
    registration are checked by :func:`check_mode` on the merged result."""
    if not isinstance(doc, dict):
        raise _err("the payload must be a JSON object")
    out: dict[str, Any] = {}
    remove: list[str] = []
    if "type" in doc or not partial:
        if doc.get("type") not in (TYPE, TYPE_IRI):
            raise _err(f"type must be {TYPE!r}")
    if "id" in doc:
        out["id"] = check_uri(doc["id"], "registration id")
    elif not partial:
        out["id"] = f"urn:ngsi-ld:{TYPE}:{uuid.uuid4()}"
    extras: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("id", "type", "@context") or key in SYSTEM:
            continue
        if _is_null(value):
            if not partial or key in MANDATORY:
                raise _err(f"{key} cannot be null" if partial else f"{key} must not be null")
            remove.append(key if key in MEMBERS else ctx.expand_term(key))
            continue
        if key in MEMBERS:
            out[key] = _member(key, value, ctx)
            continue
        if key in ("cacheDuration", "refreshRate"):
            _duration(value, key)
        elif key in ("timeout", "cooldown"):
            _positive(value, key)
        try:
            check_attr_name(key, "member name")
        except BadRequestData as exc:
            raise _err(exc.detail) from None
        extras[ctx.expand_term(key)] = value
    if not partial:
        for key in ("information", "endpoint"):
            if key not in out:
                raise _err(f"{key} is missing")
    if extras:
        out["properties"] = extras
    if remove:
        out["_remove"] = remove
    return out


def merge(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A stored registration with a validated PATCH applied (members replaced, not merged)."""
    merged = {k: v for k, v in stored.items() if k != "properties"}
    props = dict(stored.get("properties", {}))
    for key, value in patch.items():
        if key == "properties":
            props.update(value)
        elif key != "_remove":
            merged[key] = value
    for key in patch.get("_remove", []):
        merged.pop(key, None)
        props.pop(key, None)
    if props:
        merged["properties"] = props
    return merged


def mode_of(reg: dict[str, Any]) -> str:
    return str(reg.get("mode", DEFAULT_MODE))


def operations_of(reg: dict[str, Any]) -> set[str]:
    """The operations a registration supports, groups expanded."""
    out: set[str] = set()
    for name in reg.get("operations", DEFAULT_OPERATIONS):
        out |= OPERATION_GROUPS.get(name, frozenset({name}))
    return out


def check_mode(reg: dict[str, Any]) -> None:
    """The rules a registration's mode puts on its content (4.3.6.3, 5.9.2.4)."""
    mode = mode_of(reg)
    if mode == "auxiliary":
        writes = sorted(operations_of(reg) & WRITE_OPERATIONS)
        if writes:
            raise _err(f"an auxiliary registration supports retrieval only, not {writes}")
    if mode == "exclusive":
        for info in reg["information"]:
            ents = info.get("entities")
            if not ents or any("id" not in e or "idPattern" in e for e in ents):
                raise _err("an exclusive registration names each entity by its id (no type "
                           "alone, no idPattern)")
            if not info.get("propertyNames") and not info.get("relationshipNames"):
                raise _err("an exclusive registration names the attributes it provides "
                           "(propertyNames or relationshipNames)")


def attr_names(info: dict[str, Any]) -> list[str]:
    return [*info.get("propertyNames", []), *info.get("relationshipNames", [])]


def covers(info: dict[str, Any], eid: str, etype: str | None, attr: str | None) -> bool:
    """Whether a RegistrationInfo covers attribute ``attr`` (None: any) of entity ``eid``."""
    names = attr_names(info)
    if names and attr is not None and attr not in names:
        return False
    ents = info.get("entities")
    if not ents:
        return True
    for e in ents:
        if etype is not None and e["type"] != etype:
            continue
        if "id" in e and e["id"] != eid:
            continue
        if "idPattern" in e and not re.fullmatch(e["idPattern"], eid):
            continue
        return True
    return False


def exclusive_pairs(reg: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(entity id, type, attribute) of every combination an exclusive registration claims."""
    return [(e["id"], e["type"], a) for info in reg["information"]
            for e in info.get("entities", []) for a in attr_names(info)]


def overlap_conflict(new: dict[str, Any], others: list[dict[str, Any]]) -> str | None:
    """Why ``new`` may not coexist with the other registrations, or None (4.3.6.3): an
    exclusive registration admits no further exclusive or redirect one for the same entity
    and attribute; redirect registrations may overlap each other."""
    mode = mode_of(new)
    if mode not in ("exclusive", "redirect"):
        return None
    for other in others:
        omode = mode_of(other)
        if mode == "exclusive" and omode in ("exclusive", "redirect"):
            for eid, etype, attr in exclusive_pairs(new):
                if any(covers(i, eid, etype, attr) for i in other["information"]):
                    return (f"registration {other['id']} ({omode}) already covers {attr} of "
                            f"{eid}")
        elif omode == "exclusive":
            for eid, etype, attr in exclusive_pairs(other):
                if any(covers(i, eid, etype, attr) for i in new["information"]):
                    return f"exclusive registration {other['id']} already covers {attr} of {eid}"
    return None


def entity_conflict(reg: dict[str, Any], ent: Entity) -> bool:
    """Whether an existing local entity conflicts with a redirect or exclusive registration
    (5.9.2.4): exclusive, when the entity holds a registered attribute; redirect, when the
    entity matches at all (holding a registered attribute if names are given)."""
    mode = mode_of(reg)
    for info in reg["information"]:
        names = attr_names(info)
        if names and not set(names) & set(ent["attrs"]):
            continue
        if mode == "exclusive" and not names:
            continue
        if any(covers(info, ent["id"], t, None) for t in ent["type"]):
            return True
    return False


# -- output ------------------------------------------------------------------------------------


def render(reg: dict[str, Any], ctx: Context, *, sys_attrs: bool = False,
           information: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A stored registration as a client sees it, compacted with ``ctx`` (``information``
    replaces the registration's own, e.g. only the parts a subscription matched)."""
    out: dict[str, Any] = {"id": reg["id"], "type": TYPE}
    for key in ("registrationName", "description"):
        if key in reg:
            out[key] = reg[key]
    out["information"] = [
        {k: ([{**e, "type": ctx.compact_iri(e["type"])} for e in v] if k == "entities"
             else [ctx.compact_iri(a) for a in v]) for k, v in info.items()}
        for info in (reg["information"] if information is None else information)
    ]
    for key in ("tenant", *_INTERVALS, *_GEO, "expiresAt", "endpoint", "contextSourceInfo",
                "scope", "refreshRate", "management"):
        if key in reg:
            out[key] = reg[key]
    out["mode"] = mode_of(reg)
    out["operations"] = reg.get("operations", DEFAULT_OPERATIONS)
    for iri, value in reg.get("properties", {}).items():
        out[ctx.compact_iri(iri)] = value
    if sys_attrs:
        for key in ("createdAt", "modifiedAt"):
            if key in reg:
                out[key] = reg[key]
    return out


# -- matching ----------------------------------------------------------------------------------


@dataclass
class Selector:
    """What a query or one subscription `entities` item asks for (expanded IRIs)."""

    types: Callable[[str], bool] | None = None
    ids: frozenset[str] | None = None
    pattern: str | None = None
    attrs: frozenset[str] | None = None

    def entity(self, e: dict[str, Any]) -> bool:
        if self.types is not None and not self.types(e["type"]):
            return False
        if self.ids is not None:
            if "id" in e and e["id"] not in self.ids:
                return False
            if "idPattern" in e and not any(re.fullmatch(e["idPattern"], i) for i in self.ids):
                return False
        if self.pattern is not None:
            if "id" in e and not re.fullmatch(self.pattern, e["id"]):
                return False
            if "idPattern" in e and e["idPattern"] != self.pattern:
                return False
        return True

    def info(self, info: dict[str, Any]) -> bool:
        names = attr_names(info)
        if self.attrs and names and not self.attrs & set(names):
            return False
        ents = info.get("entities")
        return not ents or any(self.entity(e) for e in ents)


@dataclass
class TimeSel:
    """A temporal query on registrations: observedAt looks at observationInterval,
    createdAt and modifiedAt at managementInterval."""

    timerel: str
    t1: datetime
    t2: datetime | None = None
    timeproperty: str = "observedAt"

    def __call__(self, reg: dict[str, Any]) -> bool:
        key = "observationInterval" if self.timeproperty == "observedAt" else (
            "managementInterval")
        iv = reg.get(key)
        if iv is None:
            return False
        start = parse_time(iv["startAt"], "startAt")
        end = parse_time(iv["endAt"], "endAt") if "endAt" in iv else None
        if self.timerel == "before":
            return start < self.t1
        if self.timerel == "after":
            return end is None or end > self.t1
        assert self.t2 is not None
        return start < self.t2 and (end is None or end > self.t1)


@dataclass
class Filter:
    """Everything a discovery query or a csourceSubscription selects registrations by."""

    selectors: list[Selector] = field(default_factory=lambda: [Selector()])
    q: Callable[[Entity], bool] | None = None
    csf: Callable[[Entity], bool] | None = None
    geo: Callable[[Any], bool] | None = None
    geoproperty: str = "location"
    scope: Callable[[list[str] | None], bool] | None = None
    time: TimeSel | None = None

    def infos(self, reg: dict[str, Any]) -> list[dict[str, Any]]:
        """The RegistrationInfo items of ``reg`` this filter selects ([] = no match)."""
        if not self.members(reg):
            return []
        return [i for i in reg["information"] if any(s.info(i) for s in self.selectors)]

    def members(self, reg: dict[str, Any]) -> bool:
        if expired(reg):
            return False
        if self.time is not None:
            if not self.time(reg):
                return False
        elif not latest(reg):
            return False
        if self.geo is not None and not self.geo(reg.get(self.geoproperty)):
            return False
        if self.scope is not None:
            s = reg.get("scope")
            if not self.scope([s] if isinstance(s, str) else s):
                return False
        ent = as_entity(reg) if self.q is not None or self.csf is not None else None
        if self.q is not None and ent is not None and not self.q(ent):
            return False
        return not (self.csf is not None and ent is not None and not self.csf(ent))


def expired(reg: dict[str, Any], now: datetime | None = None) -> bool:
    exp = reg.get("expiresAt")
    return exp is not None and parse_time(exp, "expiresAt") <= (now or datetime.now(UTC))


def latest(reg: dict[str, Any]) -> bool:
    """Whether a registration is for latest information: a temporal query is needed to find
    one whose observation or management interval is over (5.10.2.4)."""
    now = datetime.now(UTC)
    for key in _INTERVALS:
        iv = reg.get(key)
        if iv is not None and "endAt" in iv and parse_time(iv["endAt"], "endAt") <= now:
            return False
    return True


def q_expand(ctx: Context) -> Callable[[str], str]:
    """How q and csf name members: registration members by name, other terms expanded."""
    return lambda t: t if t in MEMBERS else ctx.expand_term(t)


def as_entity(reg: dict[str, Any]) -> Entity:
    """The registration as an entity the q language can evaluate: every member a Property
    (under its name for registration members, its IRI for Context Source Properties)."""
    attrs: dict[str, Any] = {}
    members = {k: v for k, v in reg.items() if k in MEMBERS and k not in ("id", "type")}
    members.setdefault("mode", DEFAULT_MODE)
    members.setdefault("operations", DEFAULT_OPERATIONS)
    for key, value in [*members.items(), *reg.get("properties", {}).items()]:
        if isinstance(value, dict) and value.get("type") in ("Property", "Relationship"):
            attrs[key] = [value]
        else:
            attrs[key] = [{"type": "Property", "value": value}]
    return {"id": reg["id"], "type": [TYPE_IRI], "attrs": attrs}


__all__ = ["Filter", "Selector", "TimeSel", "validate_registration", "render", "merge",
           "check_mode", "overlap_conflict", "entity_conflict"]
