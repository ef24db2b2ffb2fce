"""Trust layer: the decision engine: proposals, oversight, approval, apply, rollback.

A service never acts on the city directly: it submits a proposal, and the engine applies the
system's oversight (``Impact.oversight``): levels I-II apply at once (recorded, and open to a
human rollback afterwards), level III waits for one operator approval, level IV for two
distinct ones; a system not yet assessed is treated like level III.

State (kv kind ``proposal``): pending -> approved -> applied, or rejected, expired, failed,
rolledBack. Every transition is one store transaction that writes the document, the public
``AIProposal`` entity and the typed audit event together. Approving and applying are separate
transactions, so an approval survives a crash; applying is idempotent (see decisions_apply).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError

from ..hub.auth import Caller
from ..hub.entities import canonical_time, parse_time
from ..hub.errors import BadRequestData, Conflict, Forbidden, ResourceNotFound, Unauthorized
from ..hub.store.base import Tx
from . import decisions_apply as ap
from .decisions_entity import entity_id, write_projection
from .decisions_model import (
    ENGINE,
    KIND,
    OPEN,
    OPEN_KIND,
    STATUSES,
    ApproveIn,
    ModifyIn,
    ProposalIn,
    ReasonIn,
    is_expired,
    iso,
    public,
)
from .events import (
    Event,
    ProposalApproved,
    ProposalExpired,
    ProposalModified,
    ProposalRejected,
    ProposalSubmitted,
    emit,
)
from .http import validation_message
from .impact import Oversight
from .jobs import Job

SUBMIT_ROLES = ("service", "operator", "admin")
DECIDE_ROLES = ("operator", "admin")
Actor = Caller | str

__all__ = ["ENGINE", "HUB_PATCH", "KIND", "OPEN_KIND", "Decisions", "RetryLater"]
RetryLater = ap.RetryLater
HUB_PATCH = ap.HUB_PATCH


def parse(model: Any, data: Any) -> Any:
    """``data`` validated against a pydantic model; BadRequestData names each bad field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequestData(validation_message(exc)) from None


def as_submitted(doc: dict[str, Any]) -> dict[str, Any]:
    """What the service sent, before any reviewer's modification (to recognise a re-send)."""
    out = {k: doc.get(k) for k in ("system", "action", "target", "why", "evidence",
                                   "expectedEffect")}
    if doc.get("modifications"):
        out.update(doc["modifications"][0]["previous"])
    return out


def who(actor: Actor, tenant: str, roles: tuple[str, ...], what: str) -> str:
    """The actor id; checks a Caller's role and tenant scope (a plain string is trusted)."""
    if isinstance(actor, str):
        if not actor:
            raise ValueError("an actor is required")
        return actor
    if actor.role is None:
        raise Unauthorized(f"an API key is required to {what}")
    if actor.tenant is not None and actor.tenant != tenant:
        raise Forbidden(f"this key is not valid for tenant {tenant!r}")
    if actor.role not in roles:
        raise Forbidden(f"role {actor.role!r} may not {what}")
    return actor.actor


class Decisions:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.appliers: dict[str, ap.Applier] = {}
        # False leaves applying to the recovery job (a deployment where one process applies)
        self.apply_on_decide = True
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.default_ttl_s = float(services.settings.decisions_default_ttl_s)

    # -- extension point ---------------------------------------------------------------------
    def register_applier(
        self,
        kind: str,
        apply_fn: ap.ApplyFn,
        rollback_fn: ap.ApplyFn,
        validate: ap.ValidateFn | None = None,
    ) -> None:
        """Add an action kind applied outside the hub's transaction.

        ``apply_fn(tenant, proposal, idempotency_key)`` acts and may return a small JSON
        result; the key is the proposal id, the same on every retry, so the applier must act
        at most once per key. Raising ``RetryLater`` keeps the proposal approved for the
        recovery job; any other exception marks it failed. ``rollback_fn`` undoes the act.
        ``validate(params, targets)`` raises ValueError to refuse a proposal at submit time.
        """
        ap.register(self, kind, apply_fn, rollback_fn, validate)

    def jobs(self) -> list[Job]:
        return [Job("decisions.recover", self.s.settings.decisions_interval_s, self.recover)]

    # -- reads -------------------------------------------------------------------------------
    def get(self, tenant: str, pid: str) -> dict[str, Any]:
        doc = self.s.store.reader().get_json(KIND, tenant, pid)
        if doc is None:
            raise ResourceNotFound(f"proposal {pid} not found")
        return public(doc)

    def list_proposals(
        self, tenant: str, status: str | None = None, system: str | None = None,
        limit: int = 20, offset: int = 0,
    ) -> dict[str, Any]:
        """Newest first; ``total`` counts every match before paging."""
        if status is not None and status not in STATUSES:
            raise BadRequestData(f"status: must be one of {', '.join(STATUSES)}")
        if not 1 <= limit <= 1000:
            raise BadRequestData("limit: must be between 1 and 1000")
        if offset < 0:
            raise BadRequestData("offset: must be at least 0")
        docs = [d for _t, _k, d in self.s.store.reader().list_json(KIND, tenant)
                if (status is None or d["status"] == status)
                and (system is None or d["system"] == system)]
        docs.sort(key=lambda d: (d["submittedAt"], d["id"]), reverse=True)
        return {"items": [public(d) for d in docs[offset: offset + limit]],
                "total": len(docs), "limit": limit, "offset": offset}

    # -- transitions: shared plumbing --------------------------------------------------------
    def locked(self, tx: Tx, tenant: str, pid: str) -> dict[str, Any]:
        """The proposal's document, read to be changed inside ``tx``."""
        # reading the entity first takes its row lock on PostgreSQL, which serialises two
        # replicas (or two reviewers) deciding on the same proposal
        tx.get_entity(tenant, entity_id(pid))
        doc = tx.get_json(KIND, tenant, pid)
        if doc is None:
            raise ResourceNotFound(f"proposal {pid} not found")
        return doc

    def commit(self, tx: Tx, tenant: str, doc: dict[str, Any], actor: str,
               events: list[Event]) -> None:
        """Write a proposal's new state, its open-index entry, entity and events (in ``tx``)."""
        pid = doc["id"]
        tx.put_json(KIND, tenant, pid, doc)
        if doc["status"] in OPEN:
            tx.put_json(OPEN_KIND, tenant, pid, {"status": doc["status"],
                                                 "expiresAt": doc["expiresAt"]})
        else:
            tx.delete_json(OPEN_KIND, tenant, pid)
        write_projection(tx, self.s.hub, self.s.resolver.resolve(None), tenant, doc, actor)
        for event in events:
            emit(tx, event)

    @staticmethod
    def moved(doc: dict[str, Any], status: str, actor: str, now: datetime) -> dict[str, Any]:
        """A copy of ``doc`` in ``status``, with the step logged in its history."""
        new = copy.deepcopy(doc)
        new["status"] = status
        new["history"].append({"status": status, "actor": actor, "at": iso(now)})
        return new

    def expire_in(self, tx: Tx, tenant: str, doc: dict[str, Any],
                  now: datetime) -> dict[str, Any]:
        new = self.moved(doc, "expired", ENGINE, now)
        self.commit(tx, tenant, new, ENGINE, [ProposalExpired(tenant, ENGINE, doc["id"])])
        return new

    def _transition(self, tenant: str, pid: str,
                    fn: Callable[[Tx, dict[str, Any], datetime], dict[str, Any]]
                    ) -> dict[str, Any]:
        """Run ``fn(tx, doc, now)`` on a pending proposal; an overdue one is expired (409)."""

        def op(tx: Tx) -> tuple[bool, dict[str, Any]]:
            doc = self.locked(tx, tenant, pid)
            now = self.clock()
            if doc["status"] != "pending":
                raise Conflict(f"proposal {pid} is {doc['status']}, not pending")
            if is_expired(doc, now):
                return False, self.expire_in(tx, tenant, doc, now)
            return True, fn(tx, doc, now)

        ok, doc = cast(tuple[bool, dict[str, Any]], self.s.store.write(op))
        if not ok:
            raise Conflict(f"proposal {pid} expired at {doc['expiresAt']}; it will not apply")
        return doc

    def _then_apply(self, tenant: str, doc: dict[str, Any]) -> dict[str, Any]:
        if doc["status"] == "approved" and self.apply_on_decide:
            return self.apply(tenant, doc["id"])
        return public(doc)

    # -- submit ------------------------------------------------------------------------------
    def submit(self, tenant: str, data: Any, actor: Actor) -> dict[str, Any]:
        """Record a proposal; apply it at once (levels I-II) or queue it for review."""
        return self.submit_with_status(tenant, data, actor)[0]

    def submit_with_status(self, tenant: str, data: Any,
                           actor: Actor) -> tuple[dict[str, Any], bool]:
        """(proposal, created): a re-sent proposal with the same ``id`` is returned as is."""
        submitter = who(actor, tenant, SUBMIT_ROLES, "submit proposals")
        p: ProposalIn = parse(ProposalIn, data)
        now = self.clock()
        if p.expiresAt is not None:
            expires = parse_time(p.expiresAt, "expiresAt")
            if expires <= now:
                raise BadRequestData("expiresAt: must be in the future")
        else:
            expires = now + timedelta(seconds=self.default_ttl_s)
        entry = self.s.trust.registry.get(tenant, p.system)
        if entry is None:
            raise ResourceNotFound(f"system: no registry entry {p.system!r} in this tenant")
        if entry.get("status") == "retired":
            raise BadRequestData(f"system: {p.system!r} is retired and may not act")
        action = p.action.model_dump(exclude_none=True)
        targets = p.targets()
        ap.check_action(self, tenant, action, targets)
        ov = self.s.trust.impact.oversight(tenant, p.system)
        if p.review == "required" and ov.auto_apply:
            ov = Oversight(ov.level, False, 1,
                           [*ov.obligations, "human approval requested by the service"])
        pid = p.id or uuid.uuid4().hex
        stamp = iso(now)
        auto = bool(ov.auto_apply)
        doc: dict[str, Any] = {
            "id": pid, "system": p.system, "action": action, "target": targets, "why": p.why,
            "evidence": p.evidence.model_dump(exclude_none=True),
            "expectedEffect": p.expectedEffect, "expiresAt": canonical_time(iso(expires)),
            "status": "approved" if auto else "pending", "route": "auto" if auto else "queue",
            "impactLevel": ov.level, "reviewersNeeded": 0 if auto else max(1, ov.reviewers),
            "obligations": list(ov.obligations), "submittedBy": submitter,
            "submittedAt": stamp, "decidedAt": stamp if auto else None, "appliedAt": None,
            "approvals": [], "modifications": [], "reason": None, "overridden": False,
            "rejection": None, "rollback": None, "error": None, "result": None,
            "attempts": [], "history": [{"status": "pending", "actor": submitter, "at": stamp}],
        }
        if auto:
            doc["history"].append({"status": "approved", "actor": ENGINE, "at": stamp})
        def op(tx: Tx) -> tuple[dict[str, Any], bool]:
            old = tx.get_json(KIND, tenant, pid)
            if old is not None:
                if as_submitted(old) == as_submitted(doc):
                    return old, False
                raise Conflict(f"id: another proposal with id {pid} exists")
            self.commit(tx, tenant, doc, submitter, [ProposalSubmitted(
                tenant, submitter, pid, system=p.system, level=ov.level or 0,
                route=doc["route"])])
            return doc, True

        stored, created = self.s.store.write(op)
        if not created:
            return public(stored), False
        return self._then_apply(tenant, stored), True

    # -- human decisions ---------------------------------------------------------------------
    def approve(self, tenant: str, pid: str, actor: Actor,
                reason: str | None = None) -> dict[str, Any]:
        """One approval; the last one needed approves the proposal and applies it."""
        reviewer = who(actor, tenant, DECIDE_ROLES, "decide on proposals")
        parse(ApproveIn, {"reason": reason})

        def fn(tx: Tx, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
            if doc["submittedBy"] == reviewer:
                raise Forbidden("a proposal cannot be approved by the key that submitted it")
            if any(a["actor"] == reviewer for a in doc["approvals"]):
                raise Conflict(f"{reviewer} already approved proposal {pid}; "
                               "a second approval must come from another reviewer")
            new = copy.deepcopy(doc)
            new["approvals"].append({"actor": reviewer, "at": iso(now), "reason": reason})
            if reason:
                new["reason"] = reason
            need = new["reviewersNeeded"]
            if len(new["approvals"]) >= need:
                new = self.moved(new, "approved", reviewer, now)
                new["decidedAt"] = iso(now)
            self.commit(tx, tenant, new, reviewer, [ProposalApproved(
                tenant, reviewer, pid, approvals=len(new["approvals"]), needed=need)])
            return new

        return self._then_apply(tenant, self._transition(tenant, pid, fn))

    def reject(self, tenant: str, pid: str, actor: Actor,
               reason: str | None) -> dict[str, Any]:
        """Reject a pending proposal; a reason is required."""
        reviewer = who(actor, tenant, DECIDE_ROLES, "decide on proposals")
        reason = parse(ReasonIn, {} if reason is None else {"reason": reason}).reason

        def fn(tx: Tx, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
            new = self.moved(doc, "rejected", reviewer, now)
            new.update(reason=reason, overridden=True, decidedAt=iso(now),
                       rejection={"actor": reviewer, "at": iso(now), "reason": reason})
            self.commit(tx, tenant, new, reviewer, [ProposalRejected(tenant, reviewer, pid)])
            return new

        return public(self._transition(tenant, pid, fn))

    def modify(self, tenant: str, pid: str, actor: Actor, data: Any) -> dict[str, Any]:
        """Change a pending proposal's action (and target) with a reason.

        Earlier approvals approved something else, so they are dropped; ``approve: true`` in
        ``data`` approves the modified proposal in the same call.
        """
        reviewer = who(actor, tenant, DECIDE_ROLES, "decide on proposals")
        m: ModifyIn = parse(ModifyIn, data)
        action = m.action.model_dump(exclude_none=True)

        def fn(tx: Tx, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
            targets = m.targets() or doc["target"]
            ap.check_action(self, tenant, action, targets, tx)
            new = copy.deepcopy(doc)
            new["modifications"].append({
                "actor": reviewer, "at": iso(now), "reason": m.reason,
                "previous": {"action": doc["action"], "target": doc["target"]},
                "droppedApprovals": [a["actor"] for a in doc["approvals"]],
            })
            new.update(action=action, target=targets, approvals=[], reason=m.reason,
                       overridden=True)
            self.commit(tx, tenant, new, reviewer, [ProposalModified(tenant, reviewer, pid)])
            return new

        doc = self._transition(tenant, pid, fn)
        if m.approve:
            return self.approve(tenant, pid, actor)
        return public(doc)

    def rollback(self, tenant: str, pid: str, actor: Actor,
                 reason: str | None) -> dict[str, Any]:
        """Undo an applied proposal (a human override); a reason is required."""
        reviewer = who(actor, tenant, DECIDE_ROLES, "roll back proposals")
        r: ReasonIn = parse(ReasonIn, {} if reason is None else {"reason": reason})
        return ap.rollback(self, tenant, pid, reviewer, r.reason)

    # -- applying and the jobs ---------------------------------------------------------------
    def apply(self, tenant: str, pid: str) -> dict[str, Any]:
        """Apply an approved proposal; a no-op for any other state, so retries are safe."""
        return ap.apply(self, tenant, pid)[0]

    def expire_due(self) -> int:
        """Mark every overdue pending or approved proposal expired; how many were."""
        return ap.expire_due(self)

    def apply_pending(self) -> int:
        """Apply approved proposals an interrupted step left behind; how many applied."""
        return ap.apply_pending(self)

    def recover(self) -> dict[str, int]:
        """The periodic job: expire overdue proposals, then resume interrupted applies."""
        expired = self.expire_due()
        return {"expired": expired, "applied": self.apply_pending()}
