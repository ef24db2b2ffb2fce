"""Subscriptions: matching inside the write transaction, and outbox delivery.

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
from urllib.parse import urlsplit

import httpx

from .changes import show_changes, with_deletions
from .compaction import View
from .entities import canonical_time, now_iso, parse_time, type_filter
from .errors import ResourceNotFound
from .geo import compile_geo, parse_geo_query
from .hooks import AccessGuard, guard_hides, strip_attrs
from .ldcontext import Context, ContextResolver
from .query import compile_q, parse_q
from .store.base import Entity, OutboxItem, Store, Tx
from .subscription_docs import (
    _TYPE_OPS,
    CALLER,
    DEFAULT_TRIGGERS,
    KIND,
    STAT,
    _caller_doc,
    _err,
    _map_type_expr,
    sub_q,
    subscriber,
    validate_subscription,
)

__all__ = ["Compiled", "OutboxKind", "Subscriptions", "sub_q", "subscriber",
           "validate_subscription"]

log = logging.getLogger(__name__)

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
