"""Bulk removal of entities: purge by query (NGSI-LD v1.8 "Purge Entities") and transient
entities, which the hub deletes once their ``expiresAt`` has passed.

Both delete through ``Hub._delete``, so every entity removed is recorded (audit, listeners,
notifications) exactly as a single DELETE would record it, and each bounded chunk of
deletions is one store write.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .core import Hub, Query, expired
from .entities import now_iso
from .store.base import Entity, Store, Tx

log = logging.getLogger(__name__)

# kv documents {"expiresAt": ...} keyed by entity id: the sweeper reads these, not every entity
EXPIRY = "expiry"
EXPIRY_ACTOR = "system:expiry"


# -- purge ----------------------------------------------------------------------------------


def purge_entities(hub: Hub, tenant: str, q: Query, actor: str, chunk: int) -> int:
    """Delete every entity ``q`` matches, ``chunk`` per write; returns how many went.

    Each entity is checked again inside the write that deletes it, so one changed since the
    page was read (or deleted by someone else) is left alone."""
    q.limit = max(1, min(chunk, hub.max_limit))
    q.count = False
    seen: set[str] = set()
    kept = 0  # matched when read but not when deleted: they stay at the front of the order
    deleted = 0
    while True:
        q.offset = kept
        page, _ = hub.query(tenant, q)
        ids = [e["id"] for e in page if e["id"] not in seen]
        if not ids:
            return deleted
        seen.update(ids)

        def op(tx: Tx, ids: list[str] = ids) -> int:
            n = 0
            for eid in ids:
                ent = tx.get_entity(tenant, eid)
                if ent is None or not _still_matches(hub, q, ent):
                    continue
                hub._delete(tx, tenant, eid, actor)
                n += 1
            return n

        n = int(hub.store.write(op))
        deleted += n
        kept += len(ids) - n


def _still_matches(hub: Hub, q: Query, ent: Entity) -> bool:
    if q.types and not set(q.types) & set(ent["type"]):
        return False
    view = q.view(ent) if q.view is not None else ent
    return hub._passes(view, q)


# -- transient entities ---------------------------------------------------------------------


def hide_expired(q: Query) -> None:
    """Make ``q`` skip transient entities past their ``expiresAt``."""
    prev = q.q
    q.q = lambda e, p=prev: not expired(e) and (p is None or p(e))


class ExpiryIndex:
    """A change listener keeping one kv document per transient entity, in the same write."""

    def changed(
        self,
        tx: Tx,
        tenant: str,
        before: Entity | None,
        after: Entity | None,
        attrs: set[str],
        trigger: str,
    ) -> None:
        old = before.get("expiresAt") if before is not None else None
        new = after.get("expiresAt") if after is not None else None
        if new == old:
            return
        ent = after if after is not None else before
        assert ent is not None
        if new is None:
            tx.delete_json(EXPIRY, tenant, ent["id"])
        else:
            tx.put_json(EXPIRY, tenant, ent["id"], {"expiresAt": new})


class ExpirySweeper:
    """Deletes expired transient entities in the background (a thread, like the notifier).

    Safe with several replicas: each deletion re-reads the entity in its own write, so an
    entity another replica already removed is skipped."""

    def __init__(self, hub: Hub, store: Store, *, interval_s: float, chunk: int) -> None:
        self.hub = hub
        self.store = store
        self.interval_s = interval_s
        self.chunk = max(1, chunk)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self, now: str | None = None) -> int:
        """Delete what is due now; returns how many entities went."""
        now = now or now_iso()
        due = [(t, k) for t, k, d in self.store.reader().list_json(EXPIRY, None)
               if str(d.get("expiresAt", "")) <= now]
        deleted = 0
        for i in range(0, len(due), self.chunk):
            part = due[i : i + self.chunk]

            def op(tx: Tx, part: list[tuple[str, str]] = part) -> int:
                n = 0
                for tenant, eid in part:
                    ent = tx.get_entity(tenant, eid)
                    if ent is None or "expiresAt" not in ent:
                        tx.delete_json(EXPIRY, tenant, eid)  # a stale index entry
                    elif expired(ent, now):
                        self.hub._delete(tx, tenant, eid, EXPIRY_ACTOR)
                        n += 1
                    else:  # expiresAt moved later since the index was read
                        tx.put_json(EXPIRY, tenant, eid, {"expiresAt": ent["expiresAt"]})
                return n

            deleted += int(self.store.write(op))
        if deleted:
            log.info("expired %d transient entities", deleted)
        return deleted

    def start(self) -> None:
        if self._thread is None and self.interval_s > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="expiry", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # the job must survive anything (a closed store at shutdown)
                if self._stop.is_set():
                    return
                log.exception("expiry job error")


__all__: list[Any] = ["ExpiryIndex", "ExpirySweeper", "hide_expired", "purge_entities"]
