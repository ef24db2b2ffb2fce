"""Context source registrations and csourceSubscriptions kept in the store (per tenant), and
ContextSourceNotifications (5.11): queued in the outbox in the same transaction as the
registration change that causes them, delivered by the subscription worker.

A subscription is notified ``newlyMatching`` when a registration starts to match it (and
with every matching registration when it is created or updated), ``updated`` when a
matching registration changes and still matches, ``noLongerMatching`` when it stops matching
or is deleted; with ``timeInterval``, periodically with every matching registration instead.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from .csources import (
    Filter,
    Selector,
    TimeSel,
    entity_conflict,
    merge,
    overlap_conflict,
    q_expand,
    render,
)
from .entities import now_iso, parse_time, type_filter
from .errors import AlreadyExists, BadRequestData, Conflict, ResourceNotFound
from .geo import GeoQueryError, compile_geo, parse_geo_query
from .ldcontext import Context, ContextResolver
from .query import compile_q, parse_q, parse_scope_q
from .store.base import Entity, EntityFilter, OutboxItem, Store, Tx
from .subscriptions import Subscriptions, sub_q, validate_subscription
from .temporal import time_filter

log = logging.getLogger(__name__)

REG = "csr"
SUB = "csrsub"
STAT = "csrsubstat"
NOTE_KIND = "csource"  # outbox payloads of ContextSourceNotifications
_TYPE_OPS = re.compile(r"[,|;()]")
_TIMEPROPERTIES = ("observedAt", "createdAt", "modifiedAt")


def _sorted(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(docs, key=lambda d: (d.get("createdAt", ""), d["id"]))


def time_sel(timerel: Any, time_at: Any, end_time_at: Any, timeproperty: Any) -> TimeSel | None:
    """A temporal query on registrations, checked (BadRequestData), or None without one."""
    if timeproperty is not None and timeproperty not in _TIMEPROPERTIES:
        raise BadRequestData(f"timeproperty must be one of {list(_TIMEPROPERTIES)}")
    for name, v in (("timerel", timerel), ("timeAt", time_at), ("endTimeAt", end_time_at)):
        if v is not None and not isinstance(v, str):
            raise BadRequestData(f"{name} must be a string")
    rel, t1, t2 = time_filter(timerel, time_at, end_time_at)
    if rel is None or t1 is None:
        return None
    return TimeSel(rel, parse_time(t1, "timeAt"), parse_time(t2, "endTimeAt") if t2 else None,
                   timeproperty or "observedAt")


def validate_csource_subscription(doc: Any, ctx: Context, *, partial: bool = False
                                  ) -> dict[str, Any]:
    """A csourceSubscription payload checked and expanded (the entity subscription rules, plus
    temporalQ; a PATCH replaces the whole notification and may set a past expiresAt)."""
    if not isinstance(doc, dict):
        raise BadRequestData("subscription: the payload must be a JSON object")
    body = dict(doc)
    expires = body.pop("expiresAt", None) if partial else None
    if partial and "notification" in body and (
        not isinstance(body["notification"], dict) or "endpoint" not in body["notification"]
    ):
        raise BadRequestData("subscription: notification replaces the whole notification "
                             "parameters and needs its endpoint")
    out = validate_subscription(body, ctx, partial=partial)
    if expires is not None:
        parse_time(expires, "expiresAt")
        out["expiresAt"] = expires
    if "temporalQ" in body:
        tq = body["temporalQ"]
        if not isinstance(tq, dict) or set(tq) - {"timerel", "timeAt", "endTimeAt",
                                                   "timeproperty"}:
            raise BadRequestData("subscription: temporalQ must be an object with timerel, "
                                 "timeAt, endTimeAt and timeproperty")
        if time_sel(tq.get("timerel"), tq.get("timeAt"), tq.get("endTimeAt"),
                    tq.get("timeproperty")) is None:
            raise BadRequestData("subscription: temporalQ needs timerel and timeAt")
        out["temporalQ"] = tq
    return out


def selector(item: dict[str, Any], attrs: frozenset[str] | None) -> Selector:
    """A stored subscription `entities` item (types expanded) as a Selector."""
    typ = item["type"]
    if _TYPE_OPS.search(typ):
        iris, pred = type_filter(typ, str)

        def types(t: str) -> bool:
            return pred([t]) if pred is not None else t in iris
    else:

        def types(t: str) -> bool:
            return bool(t == typ)
    return Selector(types=types, ids=frozenset([item["id"]]) if "id" in item else None,
                    pattern=item.get("idPattern"), attrs=attrs)


class ContextSources:
    """Registrations and csourceSubscriptions of every tenant, and their notifications."""

    def __init__(self, store: Store, resolver: ContextResolver, subs: Subscriptions) -> None:
        self.store = store
        self.resolver = resolver
        self.subs = subs
        self._last: dict[str, float] = {}
        # statistics being written: a client reading right after a delivery already sees them
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        subs.outbox_kinds[NOTE_KIND] = self
        subs.tickers.append(self._tick)
        # called with the tenant after a registration changed (distributed operations cache)
        self.on_change: list[Callable[[str], None]] = []

    # -- registrations ---------------------------------------------------------------------
    def create(self, tenant: str, reg: dict[str, Any], actor: str) -> str:
        reg = {**reg, "createdAt": now_iso()}
        reg["modifiedAt"] = reg["createdAt"]
        self._check_entities(tenant, reg)

        def op(tx: Tx) -> None:
            if tx.get_json(REG, tenant, reg["id"]) is not None:
                raise AlreadyExists(f"context source registration {reg['id']} already exists")
            self._check_overlap(tx, tenant, reg)
            tx.ensure_tenant(tenant)
            tx.put_json(REG, tenant, reg["id"], reg)
            tx.audit(tenant, actor, "csource.create", reg["id"], {})
            self._changed(tx, tenant, None, reg)

        self.store.write(op)
        self._notify_change(tenant)
        return str(reg["id"])

    def get(self, tenant: str, rid: str) -> dict[str, Any]:
        reg = self.store.reader().get_json(REG, tenant, rid)
        if reg is None:
            raise ResourceNotFound(f"context source registration {rid} not found")
        return reg

    def query(self, tenant: str, flt: Filter) -> list[dict[str, Any]]:
        """Registrations the filter selects, in creation order."""
        docs = [d for _t, _k, d in self.store.reader().list_json(REG, tenant)]
        return [d for d in _sorted(docs) if flt.infos(d)]

    def update(self, tenant: str, rid: str, patch: dict[str, Any], actor: str,
               check: Callable[[dict[str, Any]], None]) -> None:
        """Apply a validated PATCH; ``check`` validates the merged registration."""
        now = now_iso()
        first = merge(self.get(tenant, rid), patch)
        check(first)
        self._check_entities(tenant, first)

        def op(tx: Tx) -> None:
            before = tx.get_json(REG, tenant, rid)
            if before is None:
                raise ResourceNotFound(f"context source registration {rid} not found")
            new = {**merge(before, patch), "modifiedAt": now}  # merged again: no lost update
            check(new)
            self._check_overlap(tx, tenant, new)
            tx.put_json(REG, tenant, rid, new)
            tx.audit(tenant, actor, "csource.update", rid, {"members": sorted(patch)})
            self._changed(tx, tenant, before, new)

        self.store.write(op)
        self._notify_change(tenant)

    def delete(self, tenant: str, rid: str, actor: str) -> None:
        def op(tx: Tx) -> None:
            before = tx.get_json(REG, tenant, rid)
            if before is None or not tx.delete_json(REG, tenant, rid):
                raise ResourceNotFound(f"context source registration {rid} not found")
            tx.audit(tenant, actor, "csource.delete", rid, {})
            self._changed(tx, tenant, before, None)

        self.store.write(op)
        self._notify_change(tenant)

    def _notify_change(self, tenant: str) -> None:
        for fn in self.on_change:
            fn(tenant)

    def _check_overlap(self, tx: Tx, tenant: str, reg: dict[str, Any]) -> None:
        others = [d for _t, k, d in tx.list_json(REG, tenant) if k != reg["id"]]
        why = overlap_conflict(reg, others)
        if why is not None:
            raise Conflict(f"context source registration conflicts: {why}")

    def _check_entities(self, tenant: str, reg: dict[str, Any]) -> None:
        """Conflict when local entities already hold what a redirect or exclusive
        registration claims (5.9.2.4)."""
        if reg.get("mode") not in ("redirect", "exclusive"):
            return
        reader = self.store.reader()
        for info in reg["information"]:
            # an item without entities would mean scanning every entity: not checked
            for e in info.get("entities", []):
                ents: Iterable[Entity]
                if "id" in e:
                    found = reader.get_entity(tenant, e["id"])
                    ents = [found] if found is not None else []
                elif reg["mode"] == "redirect":
                    ents = self.store.query_entities(
                        tenant, EntityFilter(types=(e["type"],), id_pattern=e.get("idPattern")))
                else:
                    continue
                for ent in ents:
                    if entity_conflict(reg, ent):
                        raise Conflict(f"context source registration conflicts: entity "
                                       f"{ent['id']} already exists here")

    # -- csourceSubscriptions --------------------------------------------------------------
    def subscribe(self, tenant: str, doc: dict[str, Any], ctx_source: Any, actor: str) -> str:
        doc = {**doc, "context": ctx_source, "createdAt": now_iso()}
        doc["modifiedAt"] = doc["createdAt"]
        flt = self.compile(doc)

        def op(tx: Tx) -> None:
            if tx.get_json(SUB, tenant, doc["id"]) is not None:
                raise AlreadyExists(f"subscription {doc['id']} already exists")
            tx.ensure_tenant(tenant)
            tx.put_json(SUB, tenant, doc["id"], doc)
            tx.audit(tenant, actor, "csubscription.create", doc["id"], {})
            self._initial(tx, tenant, doc, flt)

        self.store.write(op)
        return str(doc["id"])

    def subscription(self, tenant: str, sid: str) -> dict[str, Any]:
        doc = self.store.reader().get_json(SUB, tenant, sid)
        if doc is None:
            raise ResourceNotFound(f"subscription {sid} not found")
        stat = self.store.reader().get_json(STAT, tenant, sid) or {}
        with self._lock:
            stat = self._pending.get(f"{tenant}|{sid}", stat)
        return {**doc, **stat}

    def subscriptions(self, tenant: str) -> list[dict[str, Any]]:
        reader = self.store.reader()
        stats = {k: d for _t, k, d in reader.list_json(STAT, tenant)}
        docs = _sorted([d for _t, _k, d in reader.list_json(SUB, tenant)])
        with self._lock:
            stats.update({k.split("|", 1)[1]: v for k, v in self._pending.items()
                          if k.startswith(f"{tenant}|")})
        return [{**d, **stats.get(d["id"], {})} for d in docs]

    def update_subscription(self, tenant: str, sid: str, patch: dict[str, Any],
                            actor: str) -> None:
        def op(tx: Tx) -> None:
            doc = tx.get_json(SUB, tenant, sid)
            if doc is None:
                raise ResourceNotFound(f"subscription {sid} not found")
            merged = {**doc, **patch, "modifiedAt": now_iso()}
            if "timeInterval" in merged and "watchedAttributes" in merged:
                raise BadRequestData(
                    "subscription: timeInterval and watchedAttributes cannot be used together")
            flt = self.compile(merged)
            tx.put_json(SUB, tenant, sid, merged)
            tx.audit(tenant, actor, "csubscription.update", sid, {"members": sorted(patch)})
            self._initial(tx, tenant, merged, flt)

        self.store.write(op)

    def unsubscribe(self, tenant: str, sid: str, actor: str) -> None:
        def op(tx: Tx) -> None:
            if not tx.delete_json(SUB, tenant, sid):
                raise ResourceNotFound(f"subscription {sid} not found")
            tx.delete_json(STAT, tenant, sid)
            tx.audit(tenant, actor, "csubscription.delete", sid, {})

        self.store.write(op)
        with self._lock:
            self._last.pop(f"{tenant}|{sid}", None)

    def compile(self, doc: dict[str, Any]) -> Filter:
        """What a stored csourceSubscription selects registrations by."""
        ctx = self.resolver.resolve(doc.get("context"))
        watched = doc.get("watchedAttributes")
        attrs = frozenset(watched) if watched else None
        ents = doc.get("entities")
        flt = Filter(selectors=[selector(e, attrs) for e in ents] if ents
                     else [Selector(attrs=attrs)])
        expand = q_expand(ctx)
        if doc.get("q"):
            flt.q = compile_q(parse_q(sub_q(doc["q"])), expand)
        if doc.get("csf"):
            flt.csf = compile_q(parse_q(doc["csf"]), expand)
        if doc.get("geoQ"):
            g = doc["geoQ"]
            try:
                gq = parse_geo_query(str(g.get("georel")), str(g.get("geometry")),
                                     g.get("coordinates", ""), g.get("geoproperty"))
            except GeoQueryError as exc:
                raise BadRequestData(f"subscription: invalid geoQ: {exc}") from None
            flt.geo, flt.geoproperty = compile_geo(gq), gq.geoproperty
        if doc.get("scopeQ"):
            flt.scope = parse_scope_q(doc["scopeQ"])
        tq = doc.get("temporalQ")
        if tq:
            flt.time = time_sel(tq.get("timerel"), tq.get("timeAt"), tq.get("endTimeAt"),
                                tq.get("timeproperty"))
        return flt

    # -- notifications ---------------------------------------------------------------------
    @staticmethod
    def _active(doc: dict[str, Any]) -> bool:
        if doc.get("isActive") is False:
            return False
        exp = doc.get("expiresAt")
        return not (exp and parse_time(exp, "expiresAt") <= datetime.now(UTC))

    def _matching(self, reader: Tx, tenant: str, flt: Filter
                  ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        docs = _sorted([d for _t, _k, d in reader.list_json(REG, tenant)])
        return [(d, infos) for d in docs if (infos := flt.infos(d))]

    def _initial(self, tx: Tx, tenant: str, doc: dict[str, Any], flt: Filter) -> None:
        """On creation or update: every matching registration, as newlyMatching."""
        if not self._active(doc):
            return
        with self._lock:
            self._last[f"{tenant}|{doc['id']}"] = time.monotonic()
        found = self._matching(tx, tenant, flt)
        if found:
            tx.enqueue(tenant, doc["id"], self._payload(doc, found, "newlyMatching"))

    def _changed(self, tx: Tx, tenant: str, before: dict[str, Any] | None,
                 after: dict[str, Any] | None) -> None:
        """Notify the subscriptions a registration change concerns, in its transaction."""
        for _t, sid, doc in tx.list_json(SUB, tenant):
            if doc.get("timeInterval") or not self._active(doc):
                continue
            try:
                flt = self.compile(doc)
            except Exception:  # a subscription whose @context is gone is skipped, not fatal
                log.warning("csourceSubscription %s could not be compiled", sid)
                continue
            was = flt.infos(before) if before is not None else []
            now = flt.infos(after) if after is not None else []
            if now:
                reason, shown, infos = ("updated" if was else "newlyMatching"), after, now
            elif was:
                reason, shown, infos = "noLongerMatching", before, was
            else:
                continue
            assert shown is not None
            key = f"{tenant}|{sid}"
            mono = time.monotonic()
            thr = doc.get("throttling")
            with self._lock:
                if thr and mono - self._last.get(key, -1e18) < thr:
                    continue
                self._last[key] = mono
            tx.enqueue(tenant, sid, self._payload(doc, [(shown, infos)], reason))

    def _payload(self, doc: dict[str, Any],
                 found: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                 reason: str) -> dict[str, Any]:
        """An outbox item: the registrations compacted with the subscription's @context,
        each with only the RegistrationInfo items that matched."""
        ctx_source = doc.get("jsonldContext") or doc.get("context")
        ctx = self.resolver.resolve(ctx_source)
        body = {
            "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
            "type": "ContextSourceNotification",
            "subscriptionId": doc["id"],
            "notifiedAt": now_iso(),
            "data": [render(reg, ctx, information=infos) for reg, infos in found],
            "triggerReason": reason,
        }
        n = doc.get("notification", {})
        return {"kind": NOTE_KIND, "endpoint": n.get("endpoint", {}), "body": body,
                "context": ctx_source}

    def wanted(self, item: OutboxItem) -> bool:
        """A notification is sent only while its subscription exists and is active."""
        doc = self.store.reader().get_json(SUB, item.tenant, item.subscription_id)
        return doc is not None and self._active(doc)

    def record(self, item: OutboxItem, ok: bool) -> None:
        """Delivery statistics: a notification counts once in timesSent (and once in
        timesFailed when its first attempt failed); retries update the timestamps."""
        now = now_iso()
        first = item.attempts == 0
        key = f"{item.tenant}|{item.subscription_id}"

        def update(st: dict[str, Any]) -> dict[str, Any]:
            st = {**st, "lastNotification": now}
            if first:
                st["timesSent"] = st.get("timesSent", 0) + 1
            if ok:
                st["lastSuccess"] = now
            else:
                st["lastFailure"] = now
                if first:
                    st["timesFailed"] = st.get("timesFailed", 0) + 1
            return st

        with self._lock:
            if key in self._pending:
                self._pending[key] = update(self._pending[key])
            else:
                stored = self.store.reader().get_json(STAT, item.tenant, item.subscription_id)
                self._pending[key] = update(stored or {})

        def op(tx: Tx) -> None:
            if tx.get_json(SUB, item.tenant, item.subscription_id) is not None:
                st = tx.get_json(STAT, item.tenant, item.subscription_id) or {}
                tx.put_json(STAT, item.tenant, item.subscription_id, update(st))

        try:
            self.store.write(op)
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def _tick(self) -> None:
        """Periodic notifications of the subscriptions with a timeInterval."""
        reader = self.store.reader()
        for tenant, sid, doc in reader.list_json(SUB, None):
            ti = doc.get("timeInterval")
            if not ti or not self._active(doc):
                continue
            key = f"{tenant}|{sid}"
            mono = time.monotonic()
            with self._lock:
                if mono - self._last.get(key, -1e18) < ti:
                    continue
                self._last[key] = mono
            try:
                found = self._matching(reader, tenant, self.compile(doc))
            except Exception:  # noqa: BLE001 - one broken subscription must not stop the rest
                log.warning("csourceSubscription %s could not be evaluated", sid)
                continue
            if found:
                self._enqueue(tenant, sid, self._payload(doc, found, "newlyMatching"))

    def _enqueue(self, tenant: str, sid: str, payload: dict[str, Any]) -> None:
        self.store.write(lambda tx: tx.enqueue(tenant, sid, payload))


__all__ = ["ContextSources", "validate_csource_subscription", "time_sel", "REG", "SUB"]
