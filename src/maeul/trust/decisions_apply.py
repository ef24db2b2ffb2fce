"""Applying and rolling back proposals, idempotently, and the recovery job.

``hub.patch`` runs inside the store: the entity change, the previous values it needs for a
rollback and the proposal's ``applied`` mark are one transaction, so a retry after a crash
finds the proposal applied and does nothing. Any other action kind is an applier registered
in code; it acts outside the transaction, so it gets the proposal id as idempotency key, the
engine records each attempt before calling it and marks the proposal applied after it
returns. A retry (the recovery job) calls it again with the same key.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..hub.entities import NULL_URI, RESERVED_ENTITY, SYS, expand_fragment, parse_time
from ..hub.errors import BadRequestData, Conflict, InternalError, NgsiError, ResourceNotFound
from ..hub.store.base import Entity, Tx
from .decisions_entity import PREFIX
from .decisions_model import ENGINE, KIND, OPEN, OPEN_KIND, is_expired, iso, public
from .events import ProposalApplied, ProposalFailed, ProposalRolledBack

if TYPE_CHECKING:
    from .decisions import Decisions

log = logging.getLogger(__name__)
HUB_PATCH = "hub.patch"
# how long an external applier's unconfirmed attempt is taken to be still running; after it,
# the recovery job calls the applier again (same idempotency key)
LEASE_S = 60.0
ApplyFn = Callable[[str, dict[str, Any], str], "dict[str, Any] | None"]
ValidateFn = Callable[[dict[str, Any], list[str]], None]


class RetryLater(Exception):
    """Raised by an applier that did not act and wants the engine to try again later."""


@dataclass(frozen=True)
class Applier:
    kind: str
    apply: ApplyFn
    rollback: ApplyFn
    validate: ValidateFn | None = None


def register(d: Decisions, kind: str, apply_fn: ApplyFn, rollback_fn: ApplyFn,
             validate: ValidateFn | None) -> None:
    import re

    if kind == HUB_PATCH:
        raise ValueError("hub.patch is built in")
    if not re.fullmatch(r"[a-z][a-z0-9_.-]{0,63}", kind):
        raise ValueError(f"invalid action kind {kind!r}")
    d.appliers[kind] = Applier(kind, apply_fn, rollback_fn, validate)


# -- validation at submit and modify time ------------------------------------------------------
def patch_fragment(action: dict[str, Any], ctx: Any) -> Entity:
    """The expanded attributes of a hub.patch action (normalized, concise or keyValues)."""
    attrs = action.get("attrs")
    if not attrs:
        raise BadRequestData("action.attrs: hub.patch needs at least one attribute")
    reserved = sorted(set(attrs) & RESERVED_ENTITY)
    if reserved:
        raise BadRequestData(f"action.attrs: {', '.join(reserved)} cannot be patched")
    doc = attrs
    if action.get("format") == "keyValues":
        doc = {k: (v if v == NULL_URI else {"value": v}) for k, v in attrs.items()}
    try:
        frag = expand_fragment(doc, ctx)
    except BadRequestData as exc:
        raise BadRequestData(f"action.attrs: {exc.detail}") from None
    return {"attrs": frag["attrs"]}


def check_action(d: Decisions, tenant: str, action: dict[str, Any], targets: list[str],
                 tx: Tx | None = None) -> None:
    """Refuse (400/404) an action that could not apply as given."""
    kind = action["kind"]
    reader = tx if tx is not None else d.s.store.reader()
    if kind == HUB_PATCH:
        if "params" in action:
            raise BadRequestData("action.params: hub.patch takes attrs, not params")
        if len(targets) != 1:
            raise BadRequestData("target: hub.patch changes exactly one entity")
        if targets[0].startswith(PREFIX):
            raise BadRequestData("target: a proposal cannot change AIProposal entities")
        patch_fragment(action, d.s.resolver.resolve(None))
        if reader.get_entity(tenant, targets[0]) is None:
            raise ResourceNotFound(f"target: entity {targets[0]} not found")
        return
    applier = d.appliers.get(kind)
    if applier is None:
        known = ", ".join(sorted([HUB_PATCH, *d.appliers]))
        raise BadRequestData(f"action.kind: unknown action kind {kind!r} (known: {known})")
    if "attrs" in action:
        raise BadRequestData(f"action.attrs: only hub.patch takes attrs; {kind} takes params")
    if applier.validate is not None:
        try:
            applier.validate(action.get("params") or {}, targets)
        except ValueError as exc:
            raise BadRequestData(f"action.params: {exc}") from None


# -- applying -------------------------------------------------------------------------------
def apply(d: Decisions, tenant: str, pid: str) -> tuple[dict[str, Any], bool]:
    """(the proposal, whether this call applied it); a no-op unless it is approved."""
    doc = d.s.store.reader().get_json(KIND, tenant, pid)
    if doc is None:
        raise ResourceNotFound(f"proposal {pid} not found")
    if doc["status"] != "approved":
        return public(doc), False
    if doc["action"]["kind"] == HUB_PATCH:
        return _apply_patch(d, tenant, pid)
    return _apply_external(d, tenant, pid)


Outcome = tuple[dict[str, Any], bool]


def _apply_patch(d: Decisions, tenant: str, pid: str) -> Outcome:
    def op(tx: Tx) -> Outcome:
        doc = d.locked(tx, tenant, pid)
        if doc["status"] != "approved":
            return doc, False  # another attempt got here first: nothing to do
        now = d.clock()
        if is_expired(doc, now):
            return d.expire_in(tx, tenant, doc, now), False
        eid = doc["target"][0]
        frag = patch_fragment(doc["action"], d.s.resolver.resolve(None))
        old = tx.get_entity(tenant, eid)
        if old is None:
            raise ResourceNotFound(f"target entity {eid} not found")
        before = {iri: copy.deepcopy(old["attrs"].get(iri, [])) for iri in frag["attrs"]}
        d.s.hub._merge(tx, tenant, eid, frag, f"proposal:{pid}")
        new_ent = tx.get_entity(tenant, eid) or {"attrs": {}}
        new = d.moved(doc, "applied", ENGINE, now)
        new["appliedAt"] = iso(now)
        new["undo"] = {"entity": eid, "names": sorted(doc["action"]["attrs"]), "before": before,
                       "after": {iri: new_ent["attrs"].get(iri, []) for iri in frag["attrs"]}}
        d.commit(tx, tenant, new, ENGINE, [ProposalApplied(
            tenant, ENGINE, pid, automatic=doc["route"] == "auto")])
        return new, True

    try:
        doc, done = d.s.store.write(op)
    except NgsiError as exc:  # the action cannot apply as it is (entity gone, invalid merge)
        return _fail(d, tenant, pid, type(exc).__name__, exc.detail), False
    return public(doc), done


def _unconfirmed(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The last attempt of an external applier whose outcome is unknown."""
    attempts = doc.get("attempts") or []
    return attempts[-1] if attempts and attempts[-1].get("outcome") is None else None


def settle_overdue(d: Decisions, tx: Tx, tenant: str, doc: dict[str, Any],
                   now: datetime) -> dict[str, Any] | None:
    """An overdue open proposal becomes expired, or failed when an interrupted applier may
    have acted; None while an applier may still be running (it decides the outcome)."""
    attempt = _unconfirmed(doc)
    if attempt is None:
        return d.expire_in(tx, tenant, doc, now)
    if now - parse_time(attempt["at"], "at") < timedelta(seconds=LEASE_S):
        return None
    return _fail_in(d, tx, tenant, doc, now, "ApplyInterrupted",
                    "the applier was interrupted and the proposal expired before the engine "
                    "could confirm it; reconcile with the applier using the proposal id")


def _apply_external(d: Decisions, tenant: str, pid: str) -> Outcome:
    doc0 = d.s.store.reader().get_json(KIND, tenant, pid)
    if doc0 is None:
        raise ResourceNotFound(f"proposal {pid} not found")
    kind = doc0["action"]["kind"]
    applier = d.appliers.get(kind)
    if applier is None:
        # the service registers its applier at start-up; until then the proposal waits
        log.warning("no applier registered for a %s proposal; it waits", kind)
        return public(doc0), False

    def start(tx: Tx) -> tuple[dict[str, Any], bool]:
        doc = d.locked(tx, tenant, pid)
        if doc["status"] != "approved":
            return doc, False
        now = d.clock()
        if is_expired(doc, now):
            return settle_overdue(d, tx, tenant, doc, now) or doc, False
        attempt = _unconfirmed(doc)
        if attempt and now - parse_time(attempt["at"], "at") < timedelta(seconds=LEASE_S):
            return doc, False  # another worker is calling the applier right now
        new = copy.deepcopy(doc)
        new["attempts"].append({"at": iso(now), "outcome": None})
        tx.put_json(KIND, tenant, pid, new)
        return new, True

    doc, go = d.s.store.write(start)
    if not go:
        return public(doc), False
    try:
        result = applier.apply(tenant, public(doc), pid)
    except RetryLater:
        return public(d.s.store.write(lambda tx: _outcome(d, tx, tenant, pid, "retry"))), False
    except Exception as exc:  # noqa: BLE001 - an applier's error fails only its proposal
        log.warning("applier %s failed: %s", applier.kind, type(exc).__name__)
        return _fail(d, tenant, pid, type(exc).__name__, "the applier raised an error"), False

    def finish(tx: Tx) -> Outcome:
        cur = d.locked(tx, tenant, pid)
        if cur["status"] != "approved":
            return cur, False
        now = d.clock()
        new = d.moved(cur, "applied", ENGINE, now)
        new["appliedAt"] = iso(now)
        new["result"] = result
        if new["attempts"]:
            new["attempts"][-1]["outcome"] = "applied"
        d.commit(tx, tenant, new, ENGINE, [ProposalApplied(
            tenant, ENGINE, pid, automatic=cur["route"] == "auto")])
        return new, True

    doc, done = d.s.store.write(finish)
    return public(doc), done


def _outcome(d: Decisions, tx: Tx, tenant: str, pid: str, outcome: str) -> dict[str, Any]:
    doc = d.locked(tx, tenant, pid)
    if doc["attempts"] and doc["attempts"][-1].get("outcome") is None:
        doc["attempts"][-1]["outcome"] = outcome
        tx.put_json(KIND, tenant, pid, doc)
    return doc


def _fail_in(d: Decisions, tx: Tx, tenant: str, doc: dict[str, Any], now: datetime,
             error: str, detail: str) -> dict[str, Any]:
    new = d.moved(doc, "failed", ENGINE, now)
    new["error"] = {"type": error, "detail": detail[:500]}
    if new["attempts"] and new["attempts"][-1].get("outcome") is None:
        new["attempts"][-1]["outcome"] = "failed"
    d.commit(tx, tenant, new, ENGINE, [ProposalFailed(tenant, ENGINE, doc["id"], error=error)])
    return new


def _fail(d: Decisions, tenant: str, pid: str, error: str, detail: str) -> dict[str, Any]:
    def op(tx: Tx) -> dict[str, Any]:
        doc = d.locked(tx, tenant, pid)
        if doc["status"] != "approved":
            return doc
        return _fail_in(d, tx, tenant, doc, d.clock(), error, detail)

    return public(d.s.store.write(op))


# -- rollback -------------------------------------------------------------------------------
def _plain(insts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [{k: v for k, v in i.items() if k not in SYS} for i in insts]
    return sorted(out, key=lambda i: str(i.get("datasetId", "")))


def _restore(d: Decisions, tx: Tx, tenant: str, undo: dict[str, Any], actor: str) -> list[str]:
    """Put back the patched attributes' previous instances as a new change; the attributes
    someone else changed after the apply (those changes are overwritten too)."""
    hub = d.s.hub
    eid = undo["entity"]
    ent = tx.get_entity(tenant, eid)
    if ent is None:
        raise Conflict(f"target entity {eid} no longer exists; there is nothing to roll back")
    changed_since: list[str] = []
    frag: dict[str, list[dict[str, Any]]] = {}
    for iri, before in undo["before"].items():
        current = ent["attrs"].get(iri, [])
        if _plain(current) != _plain(undo["after"].get(iri, [])):
            changed_since.append(iri)
        if _plain(current) == _plain(before):
            continue
        keep = {i.get("datasetId", "") for i in before}
        for inst in current:
            ds = inst.get("datasetId", "")
            if ds not in keep:
                hub._delete_attr(tx, tenant, eid, iri, ds or None, False, actor)
        if before:
            frag[iri] = [{k: v for k, v in i.items() if k not in SYS} for i in before]
    if frag:
        hub._attrs_write(tx, tenant, eid, {"attrs": frag}, actor, "append")
    ctx = d.s.resolver.resolve(None)
    return sorted(ctx.compact_iri(iri) for iri in changed_since)


def rollback(d: Decisions, tenant: str, pid: str, actor: str, reason: str) -> dict[str, Any]:
    doc = d.s.store.reader().get_json(KIND, tenant, pid)
    if doc is None:
        raise ResourceNotFound(f"proposal {pid} not found")
    if doc["status"] != "applied":
        raise Conflict(f"proposal {pid} is {doc['status']}; only an applied one rolls back")
    kind = doc["action"]["kind"]
    result: Any = None
    if kind != HUB_PATCH:
        applier = d.appliers.get(kind)
        if applier is None:
            raise Conflict(f"no applier is registered for {kind}; cannot roll back now")
        try:
            result = applier.rollback(tenant, public(doc), pid)
        except NgsiError:
            raise
        except Exception as exc:
            raise InternalError(f"the {kind} applier could not roll back proposal {pid} "
                                f"({type(exc).__name__}); it stays applied") from exc

    def op(tx: Tx) -> dict[str, Any]:
        cur = d.locked(tx, tenant, pid)
        if cur["status"] != "applied":
            raise Conflict(f"proposal {pid} is {cur['status']}; only an applied one rolls back")
        now = d.clock()
        changed = _restore(d, tx, tenant, cur["undo"], actor) if kind == HUB_PATCH else []
        new = d.moved(cur, "rolledBack", actor, now)
        new.update(overridden=True, reason=reason, rollback={
            "actor": actor, "at": iso(now), "reason": reason, "changedSince": changed,
            "result": result})
        d.commit(tx, tenant, new, actor, [ProposalRolledBack(tenant, actor, pid)])
        return new

    return public(d.s.store.write(op))


# -- jobs -----------------------------------------------------------------------------------
def _open(d: Decisions) -> list[tuple[str, str, dict[str, Any]]]:
    rows: list[tuple[str, str, dict[str, Any]]] = d.s.store.reader().list_json(OPEN_KIND, None)
    return rows


def expire_due(d: Decisions) -> int:
    now = d.clock()
    n = 0
    for tenant, pid, entry in _open(d):
        if now < parse_time(entry["expiresAt"], "expiresAt"):
            continue

        def op(tx: Tx, tenant: str = tenant, pid: str = pid) -> bool:
            doc = d.locked(tx, tenant, pid)
            if doc["status"] not in OPEN or not is_expired(doc, now):
                return False
            settled = settle_overdue(d, tx, tenant, doc, now)
            return settled is not None and settled["status"] == "expired"

        try:
            n += bool(d.s.store.write(op))
        except ResourceNotFound:
            continue  # removed between the listing and the write
    return n


def apply_pending(d: Decisions) -> int:
    n = 0
    for tenant, pid, entry in _open(d):
        if entry.get("status") != "approved":
            continue
        try:
            n += apply(d, tenant, pid)[1]
        except Exception:  # noqa: BLE001 - one stuck proposal must not stop the others
            log.exception("resuming a proposal's apply failed; the next run retries")
    return n
