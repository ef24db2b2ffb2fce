"""Subscriptions: validation, matching inside the write transaction, and outbox delivery.

A change that matches a subscription puts a notification into the outbox in the same
transaction as the change, so a notification is never lost once the write is acknowledged;
a worker thread delivers it (HTTP or MQTT) at least once, with retries and back-off.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx

from .auth import Caller
from .changes import show_changes, with_deletions
from .core import AccessGuard, guard_hides, strip_attrs
from .entities import View, canonical_time, is_uri, now_iso, parse_time, type_filter
from .errors import BadRequestData, ResourceNotFound
from .geo import GeoQueryError, compile_geo, parse_geo_query
from .ldcontext import Context, ContextResolver
from .query import QueryError, compile_q, parse_q
from .store.base import Entity, OutboxItem, Store, Tx

log = logging.getLogger(__name__)

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


class OutboxKind(Protocol):
    """Another kind of notification delivered through the outbox (csourceSubscriptions)."""

    def wanted(self, item: OutboxItem) -> bool:
        """False drops the item unsent (its subscription was deleted or paused)."""

    def record(self, item: OutboxItem, ok: bool) -> None:
        """Record the outcome of one delivery attempt."""


@dataclass
class Compiled:
    doc: dict[str, Any]
    ctx: Context
    q: Callable[[Entity], bool] | None
    geo: Callable[[Any], bool] | None
    geo_prop: str
    patterns: list[re.Pattern[str] | None]
    # per entities item: a type expression's predicate, None for a plain type
    type_preds: list[Callable[[list[str]], bool] | None]
    # the @context notifications are compacted with (jsonldContext, else the subscription's)
    note_ctx: Context


class Subscriptions:
    """Storage, matching (a ChangeListener for the hub core) and delivery of subscriptions."""

    def __init__(
        self,
        store: Store,
        resolver: ContextResolver,
        *,
        max_attempts: int = 8,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        cache_ttl_s: float = 2.0,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, list[Compiled]]] = {}
        self._last_sent: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None
        self._mqtt: dict[str, Any] = {}
        self.interval_query: Callable[[str, dict[str, Any], Compiled], list[Entity]] | None = None
        self.access_guards: list[AccessGuard] = []  # as on the Hub
        # outbox items of other kinds (payload "kind"): whether to send, and their statistics
        self.outbox_kinds: dict[str, OutboxKind] = {}
        self.tickers: list[Callable[[], None]] = []  # run by the worker about once a second

    # -- CRUD ------------------------------------------------------------------------------
    def create(
        self, tenant: str, doc: dict[str, Any], ctx_source: Any, actor: str,
        caller: Any = None,
    ) -> str:
        now = now_iso()
        doc = dict(doc)
        doc["context"] = ctx_source
        if caller is not None:
            doc[CALLER] = _caller_doc(caller)
        doc["createdAt"] = doc["modifiedAt"] = now

        def op(tx: Tx) -> None:
            if tx.get_json(KIND, tenant, doc["id"]) is not None:
                from .errors import AlreadyExists

                raise AlreadyExists(f"subscription {doc['id']} already exists")
            tx.ensure_tenant(tenant)
            tx.put_json(KIND, tenant, doc["id"], doc)
            tx.audit(tenant, actor, "subscription.create", doc["id"], {})

        self.store.write(op)
        self._invalidate(tenant)
        return str(doc["id"])

    def get(self, tenant: str, sid: str) -> dict[str, Any]:
        doc = self.store.reader().get_json(KIND, tenant, sid)
        if doc is None:
            raise ResourceNotFound(f"subscription {sid} not found")
        stat = self.store.reader().get_json(STAT, tenant, sid) or {}
        return {**doc, **stat}

    def all(self, tenant: str) -> list[dict[str, Any]]:
        stats = {k: d for _t, k, d in self.store.reader().list_json(STAT, tenant)}
        docs = self.store.reader().list_json(KIND, tenant)
        return [{**d, **stats.get(k, {})} for _t, k, d in docs]

    def update(
        self, tenant: str, sid: str, patch: dict[str, Any], actor: str, caller: Any = None
    ) -> None:
        def op(tx: Tx) -> None:
            doc = tx.get_json(KIND, tenant, sid)
            if doc is None:
                raise ResourceNotFound(f"subscription {sid} not found")
            merged = {**doc, **{k: v for k, v in patch.items() if k != "notification"}}
            if caller is not None:
                # an update by another key may narrow what the subscription sees, never widen
                old = doc.get(CALLER)
                merged[CALLER] = _caller_doc(caller) if old is None else {
                    **old, "purposes": sorted(set(old.get("purposes", [])) & caller.purposes)}
            if "notification" in patch:
                merged["notification"] = {**doc.get("notification", {}), **patch["notification"]}
            if "timeInterval" in merged and "watchedAttributes" in merged:
                raise _err("timeInterval and watchedAttributes cannot be used together")
            merged["modifiedAt"] = now_iso()
            tx.put_json(KIND, tenant, sid, merged)
            tx.audit(tenant, actor, "subscription.update", sid, {"members": sorted(patch)})

        self.store.write(op)
        self._invalidate(tenant)

    def delete(self, tenant: str, sid: str, actor: str) -> None:
        def op(tx: Tx) -> None:
            if not tx.delete_json(KIND, tenant, sid):
                raise ResourceNotFound(f"subscription {sid} not found")
            tx.delete_json(STAT, tenant, sid)
            tx.audit(tenant, actor, "subscription.delete", sid, {})

        self.store.write(op)
        self._invalidate(tenant)

    def render(self, doc: dict[str, Any], ctx: Context, sys_attrs: bool = False
               ) -> dict[str, Any]:
        """The stored subscription as a client sees it, compacted with ``ctx``.

        ``createdAt``/``modifiedAt`` only with ``sys_attrs``; ``isActive`` only when it was
        set; ``notification.status`` only once a notification was attempted."""
        out = {k: v for k, v in doc.items() if k != "context" and not k.startswith("_")}
        if not sys_attrs:
            out.pop("createdAt", None)
            out.pop("modifiedAt", None)
        if "entities" in out:
            out["entities"] = [
                {**e, "type": _map_type_expr(e["type"], ctx.compact_iri)
                 if _TYPE_OPS.search(e["type"]) else ctx.compact_iri(e["type"])}
                for e in out["entities"]
            ]
        if "watchedAttributes" in out:
            out["watchedAttributes"] = [ctx.compact_iri(a) for a in out["watchedAttributes"]]
        n = dict(out.get("notification", {}))
        for key in ("attributes", "pick", "omit"):
            if key in n:
                n[key] = [ctx.compact_iri(a) for a in n[key]]
        out["notification"] = n
        for k in ("timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"):
            if k in out:
                n[k] = out.pop(k)
        if "lastNotification" in n:
            n.setdefault("status", "ok" if not n.get("lastFailure") or (
                n.get("lastSuccess", "") > n.get("lastFailure", "")) else "failed")
        out["status"] = self._status(doc)
        out["type"] = "Subscription"
        return out

    @staticmethod
    def _status(doc: dict[str, Any]) -> str:
        if doc.get("isActive") is False:
            return "paused"
        exp = doc.get("expiresAt")
        if exp and parse_time(exp, "expiresAt") <= datetime.now(UTC):
            return "expired"
        return "active"

    # -- matching --------------------------------------------------------------------------
    def _invalidate(self, tenant: str) -> None:
        with self._lock:
            self._cache.pop(tenant, None)

    def _compiled(self, tenant: str, tx: Tx | None = None) -> list[Compiled]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tenant)
            if hit is not None and now - hit[0] < self.cache_ttl_s:
                return hit[1]
        reader = tx if tx is not None else self.store.reader()
        out = []
        for _t, _k, doc in reader.list_json(KIND, tenant):
            try:
                out.append(self._compile(doc))
            except Exception:  # a subscription whose @context is gone is skipped, not fatal
                log.warning("subscription %s could not be compiled", doc.get("id"))
        with self._lock:
            self._cache[tenant] = (now, out)
        return out

    def _compile(self, doc: dict[str, Any]) -> Compiled:
        ctx = self.resolver.resolve(doc.get("context"))
        q = compile_q(parse_q(sub_q(doc["q"])), ctx.expand_term) if doc.get("q") else None
        geo = None
        geo_prop = "https://uri.etsi.org/ngsi-ld/location"
        if doc.get("geoQ"):
            g = doc["geoQ"]
            gq = parse_geo_query(
                str(g.get("georel")), str(g.get("geometry")), g.get("coordinates", ""),
                g.get("geoproperty"),
            )
            geo = compile_geo(gq)
            geo_prop = ctx.expand_term(gq.geoproperty)
        pats = [
            re.compile(e["idPattern"]) if "idPattern" in e else None
            for e in doc.get("entities", [])
        ]
        preds = [
            type_filter(e["type"], str)[1] if _TYPE_OPS.search(e["type"]) else None
            for e in doc.get("entities", [])
        ]
        note_ctx = (self.resolver.resolve(doc["jsonldContext"]) if doc.get("jsonldContext")
                    else ctx)
        return Compiled(doc, ctx, q, geo, geo_prop, pats, preds, note_ctx)

    @staticmethod
    def _selects(c: Compiled, ent: Entity) -> bool:
        sel = c.doc.get("entities")
        if not sel:
            return True
        for item, pat, pred in zip(sel, c.patterns, c.type_preds, strict=True):
            if pred is None:
                if item["type"] not in ent["type"]:
                    continue
            elif not pred(ent["type"]):
                continue
            if "id" in item and item["id"] != ent["id"]:
                continue
            if pat is not None and not pat.fullmatch(ent["id"]):
                continue
            return True
        return False

    def changed(
        self,
        tx: Tx,
        tenant: str,
        before: Entity | None,
        after: Entity | None,
        attrs: set[str],
        trigger: str,
    ) -> None:
        subs = self._compiled(tenant, tx)
        if not subs:
            return
        stored = after if after is not None else before
        assert stored is not None
        all_events = self._events(before, after, attrs, trigger)
        now_wall = datetime.now(UTC)
        for c in subs:
            d = c.doc
            if d.get("isActive") is False or d.get("timeInterval"):
                continue
            if d.get("expiresAt") and parse_time(d["expiresAt"], "expiresAt") <= now_wall:
                continue
            ent, events, seen = stored, all_events, attrs
            hide = self._hidden(tenant, d, stored["type"])
            if hide is not None:
                # the subscriber's view: hidden attributes neither show nor trigger
                ent = strip_attrs(stored, hide)
                seen = {a for a in attrs if not hide(a)}
                if before is not None and after is not None and not seen:
                    continue
                events = self._events(before, after, seen, trigger)
            if not events & set(d.get("notificationTrigger", DEFAULT_TRIGGERS)):
                continue
            watched = d.get("watchedAttributes")
            if watched and not (set(watched) & seen):
                continue
            if not self._selects(c, ent):
                continue
            if c.q is not None and not c.q(ent):
                continue
            if c.geo is not None:
                insts = ent["attrs"].get(c.geo_prop) or [{}]
                if not c.geo(insts[0].get("value")):
                    continue
            thr = d.get("throttling")
            key = f"{tenant}|{d['id']}"
            mono = time.monotonic()
            if thr and mono - self._last_sent.get(key, -1e18) < thr:
                continue
            self._last_sent[key] = mono
            shown = ent
            if before is not None and after is not None and "attributeDeleted" in events:
                shown = with_deletions(ent, before, seen, now_iso())
            tx.enqueue(tenant, d["id"],
                       self._payload(c, [shown], deleted=after is None, tx=tx, tenant=tenant,
                                     before=before, changed=seen))
        self._wake.set()

    def _hidden(self, tenant: str, doc: dict[str, Any], types: list[str]
                ) -> Callable[[str], bool] | None:
        if not self.access_guards:
            return None
        return guard_hides(self.access_guards, tenant, subscriber(doc), types)

    @staticmethod
    def _events(
        before: Entity | None, after: Entity | None, attrs: set[str], trigger: str
    ) -> set[str]:
        if before is None:
            return {"entityCreated", "attributeCreated"}
        if after is None:
            return {"entityDeleted"}
        ev = {"entityUpdated"}
        for a in attrs:
            was, now = a in before["attrs"], a in after["attrs"]
            ev.add(
                "attributeCreated" if now and not was
                else "attributeDeleted" if was and not now else "attributeUpdated"
            )
        if trigger == "attributeDeleted":
            ev.add("attributeDeleted")
        return ev

    def _payload(
        self, c: Compiled, ents: list[Entity], deleted: bool, tx: Tx | None = None,
        tenant: str = "", before: Entity | None = None, changed: set[str] | None = None,
    ) -> dict[str, Any]:
        n = c.doc.get("notification", {})
        attrs = set(n["attributes"]) if n.get("attributes") else None
        if tx is not None and self.access_guards and not deleted:
            # record what the subscriber is shown, in the transaction that queues it
            reads = [(e["id"], e["type"], [a for a in e["attrs"] if attrs is None or a in attrs])
                     for e in ents]
            for g in self.access_guards:
                op = g.reads(tenant, subscriber(c.doc), reads)
                if op is not None:
                    op(tx)
        ctx = c.note_ctx
        pick = {ctx.compact_iri(a) for a in n["pick"]} if n.get("pick") else None
        omit = {ctx.compact_iri(a) for a in n["omit"]} if n.get("omit") else None
        view = View(ctx, fmt=n.get("format", "normalized"), attrs=attrs, pick=pick, omit=omit,
                    sys_attrs=bool(n.get("sysAttrs")), lang=c.doc.get("lang"))
        data = []
        for e in ents:
            shown = view.entity(e)
            if n.get("showChanges") and before is not None and not deleted:
                show_changes(shown, before, e, changed or set(), view)
            if deleted:
                gone_at = now_iso()
                full = shown
                shown = {"id": full["id"], "type": full["type"], "deletedAt": gone_at}
                gone = set(changed or ()) & set(e["attrs"])
                if n.get("showChanges") and gone and view.fmt != "keyValues":
                    # each attribute as its NGSI-LD Null beside its previous value
                    empty = {**e, "attrs": {}}
                    after = with_deletions(empty, e, gone, gone_at)
                    full = view.entity(after)
                    show_changes(full, e, after, gone, view)
                    names = {ctx.compact_iri(a) for a in gone}
                    shown.update({k: v for k, v in full.items() if k in names})
            data.append(shown)
        body = {
            "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
            "type": "Notification",
            "subscriptionId": c.doc["id"],
            "notifiedAt": now_iso(),
            "data": data,
        }
        return {"endpoint": n.get("endpoint", {}), "body": body,
                "context": c.doc.get("jsonldContext") or c.doc.get("context")}

    # -- delivery --------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._http is not None:
            self._http.close()
            self._http = None
        for client in self._mqtt.values():
            try:
                client.loop_stop()
                client.disconnect()
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        self._mqtt.clear()

    def _run(self) -> None:
        last_interval = 0.0
        while not self._stop.is_set():
            try:
                busy = self.deliver_due()
                if time.monotonic() - last_interval >= 1.0:
                    last_interval = time.monotonic()
                    self._interval_tick()
                    for tick in self.tickers:
                        tick()
            except Exception:  # the worker must survive anything and retry later
                log.exception("notification worker error")
                busy = False
            if not busy:
                self._wake.wait(0.1)
                self._wake.clear()

    def deliver_due(self) -> bool:
        items = self.store.claim_outbox(64, now_iso())
        for item in items:
            self._deliver(item)
        return bool(items)

    def _deliver(self, item: OutboxItem) -> None:
        kind = self.outbox_kinds.get(item.payload.get("kind", ""))
        if kind is not None and not kind.wanted(item):
            self.store.finish_outbox(item.seq, ok=True, retry_at=None)  # dropped
            return
        ep = item.payload.get("endpoint", {})
        try:
            self._send(item.tenant, ep, item.payload)
        except Exception as exc:  # noqa: BLE001 - any failure is retried
            attempts = item.attempts + 1
            final = attempts >= self.max_attempts
            retry = None if final else (
                datetime.now(UTC) + timedelta(seconds=self.backoff_s * 2 ** item.attempts)
            ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            log.info("notification %s to subscription %s failed (%s), attempt %d",
                     item.seq, item.subscription_id, type(exc).__name__, attempts)
            self._record(item, ok=False)
            self.store.finish_outbox(item.seq, ok=False, retry_at=retry)
            return
        self._record(item, ok=True)
        self.store.finish_outbox(item.seq, ok=True, retry_at=None)

    def _record(self, item: OutboxItem, ok: bool) -> None:
        kind = self.outbox_kinds.get(item.payload.get("kind", ""))
        if kind is not None:
            kind.record(item, ok)
        else:
            self._stat(item.tenant, item.subscription_id, ok=ok)

    def _stat(self, tenant: str, sid: str, ok: bool) -> None:
        now = now_iso()

        def op(tx: Tx) -> None:
            st = tx.get_json(STAT, tenant, sid) or {"timesSent": 0, "timesFailed": 0}
            st["lastNotification"] = now
            if ok:
                st["timesSent"] = st.get("timesSent", 0) + 1
                st["lastSuccess"] = now
            else:
                st["timesFailed"] = st.get("timesFailed", 0) + 1
                st["lastFailure"] = now
            if tx.get_json(KIND, tenant, sid) is not None:
                tx.put_json(STAT, tenant, sid, st)

        self.store.write(op)

    def _send(self, tenant: str, ep: dict[str, Any], payload: dict[str, Any]) -> None:
        uri = ep["uri"]
        body = dict(payload["body"])
        headers = {i["key"]: i["value"] for i in ep.get("receiverInfo", [])}
        if tenant != "default":
            headers["NGSILD-Tenant"] = tenant
        ctx = payload.get("context")
        if ep.get("accept") == "application/ld+json":
            body["@context"] = ctx if ctx is not None else _core_url()
            headers["Content-Type"] = "application/ld+json"
        else:
            headers["Content-Type"] = "application/json"
            link = ctx if isinstance(ctx, str) else _core_url()
            headers["Link"] = (
                f'<{link}>; rel="http://www.w3.org/ns/json-ld#context"; '
                'type="application/ld+json"'
            )
        if uri.startswith(("mqtt://", "mqtts://")):
            self._send_mqtt(uri, ep, body, headers)
            return
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout_s)
        import orjson

        resp = self._http.post(uri, content=orjson.dumps(body), headers=headers)
        if resp.status_code >= 300:
            raise RuntimeError(f"endpoint answered {resp.status_code}")

    def _send_mqtt(
        self, uri: str, ep: dict[str, Any], body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        import orjson
        import paho.mqtt.client as mqtt

        parts = urlsplit(uri)
        key = f"{parts.scheme}://{parts.netloc}"
        client = self._mqtt.get(key)
        if client is None:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)  # type: ignore[attr-defined]
            if parts.username:
                client.username_pw_set(parts.username, parts.password)
            if parts.scheme == "mqtts":
                client.tls_set()
            client.connect(parts.hostname or "localhost", parts.port or 1883, keepalive=30)
            client.loop_start()
            self._mqtt[key] = client
        info = {i["key"]: i["value"] for i in ep.get("notifierInfo", [])}
        qos = int(info.get("MQTT-QoS", "0"))
        topic = parts.path.lstrip("/") or "notifications"
        msg = orjson.dumps({"metadata": headers, "body": body})
        res = client.publish(topic, msg, qos=qos)
        res.wait_for_publish(timeout=self.timeout_s)
        if res.rc != mqtt.MQTT_ERR_SUCCESS or not res.is_published():
            raise RuntimeError(f"MQTT publish failed rc={res.rc}")

    def _interval_tick(self) -> None:
        if self.interval_query is None:
            return
        for tenant in self.store.tenants():
            for c in self._compiled(tenant):
                d = c.doc
                ti = d.get("timeInterval")
                if not ti or self._status(d) != "active":
                    continue
                key = f"{tenant}|{d['id']}"
                mono = time.monotonic()
                if mono - self._last_sent.get(key, -1e18) < ti:
                    continue
                self._last_sent[key] = mono
                ents = self.interval_query(tenant, d, c)
                if self.access_guards:
                    ents = self._visible_matches(tenant, c, ents)
                if ents:
                    self._enqueue(tenant, c, ents)

    def _visible_matches(self, tenant: str, c: Compiled, ents: list[Entity]) -> list[Entity]:
        out = []
        for e in ents:
            hide = self._hidden(tenant, c.doc, e["type"])
            if hide is not None:
                e = strip_attrs(e, hide)
            if c.q is None or c.q(e):
                out.append(e)
        return out

    def _enqueue(self, tenant: str, c: Compiled, ents: list[Entity]) -> None:
        def op(tx: Tx) -> None:
            tx.enqueue(tenant, c.doc["id"],
                       self._payload(c, ents, deleted=False, tx=tx, tenant=tenant))

        self.store.write(op)


def _core_url() -> str:
    from .ldcontext import CORE_CONTEXT_URL

    return CORE_CONTEXT_URL


__all__ = ["Subscriptions", "validate_subscription", "canonical_time"]
