"""Subscription documents: validation and normalisation of what a client sends (clause 5.8).

Split from ``subscriptions.py``, which matches changes and delivers notifications.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from .auth import Caller
from .entities import is_uri, parse_time, type_filter
from .errors import BadRequestData
from .geo import GeoQueryError, parse_geo_query
from .ldcontext import Context
from .query import QueryError, parse_q

TRIGGERS = {
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
}
DEFAULT_TRIGGERS = ["entityCreated", "entityUpdated", "attributeCreated", "attributeUpdated"]
FORMATS = {"normalized", "concise", "keyValues", "simplified"}
KIND = "sub"
STAT = "substat"
# who created the subscription: its notifications show only what that key may see
CALLER = "_caller"


def _caller_doc(caller: Any) -> dict[str, Any]:
    return {"actor": caller.actor, "role": caller.role, "tenant": caller.tenant,
            "purposes": sorted(caller.purposes)}


def subscriber(doc: dict[str, Any]) -> Caller:
    """The caller a subscription's notifications are shown to (no purposes when unknown)."""
    c = doc.get(CALLER) or {}
    return Caller(actor=c.get("actor", "subscription"), role=c.get("role", "reader"),
                  tenant=c.get("tenant"), purposes=frozenset(c.get("purposes", [])))


def _err(msg: str) -> BadRequestData:
    return BadRequestData(f"subscription: {msg}")


_TYPE_OPS = re.compile(r"[,|;()]")
_TYPE_NAMES = re.compile(r"[^(),|;]+")
# entity-level members that pick/omit name as they are, without @context expansion
_ENTITY_MEMBERS = {"id", "type", "scope", "createdAt", "modifiedAt", "expiresAt"}


def sub_q(q: str) -> str:
    """A subscription's q as the query language reads it: percent-escapes (``%20``) decoded,
    as clients copy q from URLs into the JSON body."""
    return unquote(q) if "%" in q else q


def _map_type_expr(expr: str, fn: Callable[[str], str]) -> str:
    return _TYPE_NAMES.sub(lambda m: fn(m.group(0)), expr)


def _names(n: dict[str, Any], key: str, ctx: Context) -> list[str]:
    v = n[key]
    if isinstance(v, str):
        v = [x for x in v.split(",") if x]
    if not isinstance(v, list) or not v or not all(isinstance(a, str) and a for a in v):
        raise _err(f"notification.{key} must be a non-empty list of names")
    return [a if a in _ENTITY_MEMBERS else ctx.expand_term(a) for a in v]


def validate_subscription(doc: Any, ctx: Context, *, partial: bool = False) -> dict[str, Any]:
    """A subscription payload checked and expanded into its stored form (minus bookkeeping)."""
    if not isinstance(doc, dict):
        raise _err("the payload must be a JSON object")
    out: dict[str, Any] = {}
    allowed = {
        "id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
        "notificationTrigger", "q", "geoQ", "scopeQ", "csf", "isActive", "notification",
        "expiresAt", "throttling", "timeInterval", "lang", "@context", "jsonldContext",
        "temporalQ", "status", "createdAt", "modifiedAt", "name",
    }
    unknown = set(doc) - allowed
    if unknown:
        raise _err(f"unknown member(s) {sorted(unknown)}")
    if not partial:
        if doc.get("type") != "Subscription":
            raise _err("type must be 'Subscription'")
        if "id" in doc and not is_uri(doc["id"]):
            raise _err("id must be a URI")
        out["id"] = doc.get("id") or f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    elif "type" in doc and doc["type"] != "Subscription":
        raise _err("type must be 'Subscription'")
    for key in ("subscriptionName", "description", "name"):
        if key in doc:
            if not isinstance(doc[key], str):
                raise _err(f"{key} must be a string")
            out["subscriptionName" if key == "name" else key] = doc[key]
    if "entities" in doc:
        ents = doc["entities"]
        if not isinstance(ents, list) or not ents:
            raise _err("entities must be a non-empty list")
        sel = []
        for e in ents:
            if not isinstance(e, dict) or not isinstance(e.get("type"), str) or not e["type"]:
                raise _err("each entities item needs a type")
            if _TYPE_OPS.search(e["type"]):
                # a type expression (`(A|B);C`): checked now, names expanded, operators kept
                try:
                    type_filter(e["type"], ctx.expand_term)
                except BadRequestData as exc:
                    raise _err(str(exc)) from None
                item: dict[str, Any] = {"type": _map_type_expr(e["type"], ctx.expand_term)}
            else:
                item = {"type": ctx.expand_term(e["type"])}
            if "id" in e:
                if not is_uri(e["id"]):
                    raise _err("entities.id must be a URI")
                item["id"] = e["id"]
            if "idPattern" in e:
                try:
                    re.compile(e["idPattern"])
                except (re.error, TypeError):
                    raise _err("entities.idPattern is not a valid regular expression") from None
                item["idPattern"] = e["idPattern"]
            sel.append(item)
        out["entities"] = sel
    if "watchedAttributes" in doc:
        wa = doc["watchedAttributes"]
        if not isinstance(wa, list) or not wa or not all(isinstance(a, str) and a for a in wa):
            raise _err("watchedAttributes must be a non-empty list of names")
        out["watchedAttributes"] = [ctx.expand_term(a) for a in wa]
    if "notificationTrigger" in doc:
        nt = doc["notificationTrigger"]
        if not isinstance(nt, list) or not nt or not set(nt) <= TRIGGERS:
            raise _err(f"notificationTrigger items must be among {sorted(TRIGGERS)}")
        out["notificationTrigger"] = nt
    if "q" in doc:
        if not isinstance(doc["q"], str):
            raise _err("q must be a string")
        try:
            parse_q(sub_q(doc["q"]))
        except QueryError as exc:
            raise _err(f"invalid q: {exc}") from None
        out["q"] = doc["q"]
    if "scopeQ" in doc:
        out["scopeQ"] = doc["scopeQ"]
    if "csf" in doc:
        if not isinstance(doc["csf"], str):
            raise _err("csf must be a string")
        try:
            parse_q(doc["csf"])
        except QueryError as exc:
            raise _err(f"invalid csf: {exc}") from None
        out["csf"] = doc["csf"]
    if "jsonldContext" in doc:
        if not is_uri(doc["jsonldContext"]):
            raise _err("jsonldContext must be the URI of an @context")
        out["jsonldContext"] = doc["jsonldContext"]
    if "geoQ" in doc:
        g = doc["geoQ"]
        if not isinstance(g, dict):
            raise _err("geoQ must be an object")
        try:
            parse_geo_query(
                str(g.get("georel", "")), str(g.get("geometry", "")),
                g.get("coordinates", ""), g.get("geoproperty"),
            )
        except GeoQueryError as exc:
            raise _err(f"invalid geoQ: {exc}") from None
        out["geoQ"] = g
    for key in ("throttling", "timeInterval"):
        if key in doc:
            v = doc[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise _err(f"{key} must be a positive number of seconds")
            out[key] = v
    if "timeInterval" in out and "watchedAttributes" in out:
        raise _err("timeInterval and watchedAttributes cannot be used together")
    if "timeInterval" in out and "throttling" in out:
        raise _err("timeInterval and throttling cannot be used together")
    if "expiresAt" in doc:
        exp = parse_time(doc["expiresAt"], "expiresAt")
        if exp <= datetime.now(UTC):
            raise _err("expiresAt must be in the future")
        out["expiresAt"] = doc["expiresAt"]
    if "isActive" in doc:
        if not isinstance(doc["isActive"], bool):
            raise _err("isActive must be true or false")
        out["isActive"] = doc["isActive"]
    if "lang" in doc:
        out["lang"] = doc["lang"]
    if "notification" in doc:
        out["notification"] = _validate_notification(doc["notification"], ctx, partial)
    elif not partial:
        raise _err("notification is missing")
    if not partial and "entities" not in out and "watchedAttributes" not in out:
        raise _err("entities or watchedAttributes is required")
    return out


def _validate_notification(n: Any, ctx: Context, partial: bool) -> dict[str, Any]:
    if not isinstance(n, dict):
        raise _err("notification must be an object")
    out: dict[str, Any] = {}
    if "attributes" in n:
        at = n["attributes"]
        if not isinstance(at, list) or not at or not all(isinstance(a, str) and a for a in at):
            raise _err("notification.attributes must be a non-empty list of names")
        out["attributes"] = [ctx.expand_term(a) for a in at]
    for key in ("pick", "omit"):
        if key in n:
            if "attributes" in n:
                raise _err(f"notification.{key} cannot be used with notification.attributes")
            out[key] = _names(n, key, ctx)
    if "pick" in out and "omit" in out and set(out["pick"]) & set(out["omit"]):
        raise _err("notification.pick and notification.omit name the same member")
    fmt = n.get("format", "normalized")
    if fmt not in FORMATS:
        raise _err(f"notification.format must be one of {sorted(FORMATS)}")
    out["format"] = fmt
    for flag in ("sysAttrs", "showChanges"):
        if flag in n:
            if not isinstance(n[flag], bool):
                raise _err(f"notification.{flag} must be true or false")
            out[flag] = n[flag]
    if out.get("showChanges") and fmt in ("keyValues", "simplified"):
        # Table 5.2.14-1: keyValues has no place for previousValue
        raise _err("notification.showChanges cannot be true with format keyValues")
    if "endpoint" in n and n["endpoint"] is None:
        raise _err("notification.endpoint cannot be removed")
    ep = n.get("endpoint")
    if ep is None:
        if partial:
            return out
        raise _err("notification.endpoint is missing")
    if not isinstance(ep, dict) or not isinstance(ep.get("uri"), str):
        raise _err("notification.endpoint.uri is missing")
    try:
        parts = urlsplit(ep["uri"])
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise _err("endpoint uri is not a valid URL") from None
    if parts.scheme not in ("http", "https", "mqtt", "mqtts") or not host:
        raise _err("endpoint uri must be an http(s):// or mqtt(s):// URL")
    accept = ep.get("accept", "application/json")
    if accept not in ("application/json", "application/ld+json", "application/geo+json"):
        raise _err("endpoint accept must be application/json or application/ld+json")
    endpoint: dict[str, Any] = {"uri": ep["uri"], "accept": accept}
    for key in ("receiverInfo", "notifierInfo"):
        if key in ep:
            info = ep[key]
            if not isinstance(info, list) or not all(
                isinstance(i, dict) and isinstance(i.get("key"), str)
                and isinstance(i.get("value"), str) for i in info
            ):
                raise _err(f"endpoint.{key} must be a list of key/value objects")
            endpoint[key] = info
    out["endpoint"] = endpoint
    return out
