"""The decision engine: oversight routes, reviewers, reasons, expiry, crash-safe idempotent
apply, rollback, the AIProposal entities, the HTTP API and bad input (both stores)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from maeul.hub.app import Services
from maeul.hub.auth import Caller
from maeul.hub.compaction import View
from maeul.hub.entities import expand_entity
from maeul.hub.errors import BadRequestData, Conflict, Forbidden
from maeul.hub.store.base import TemporalFilter
from maeul.trust.decisions import Decisions, RetryLater
from maeul.trust.jobs import Job
from support import make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
T = "default"
SIG = "urn:ngsi-ld:TrafficSignal:1"
P = "/trust/v1/proposals"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"
SERVICE = Caller("key:svc", "service", T)
OP1 = Caller("key:op1", "operator", T)
OP2 = Caller("key:op2", "operator", T)
READER = Caller("key:rd", "reader", T)


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


@pytest.fixture
def svc(store_url: str, tmp_path: Path) -> Iterator[Services]:
    s = Services(make_settings(store_url, tmp_path, trust_jobs=False))
    _city(s)
    yield s
    s.close()


def _city(s: Services) -> None:
    for sid, level in (("auto1", 1), ("auto2", 2), ("lvl3", 3), ("lvl4", 4), ("new", None)):
        def op(tx: Any, sid: str = sid, level: int | None = level) -> None:
            tx.put_json("registry", T, sid, {"id": sid, "status": "operational"})
            if level is not None:
                tx.put_json("assessment", T, sid, {"level": level})
        s.store.write(op)
    s.store.write(lambda tx: tx.put_json("registry", T, "old", {"id": "old", "status": "retired"}))
    ctx = s.resolver.resolve(None)
    if s.store.reader().get_entity(T, SIG) is None:
        s.hub.create_entity(T, expand_entity({
            "id": SIG, "type": "TrafficSignal",
            "greenTime": {"type": "Property", "value": 30, "unitCode": "SEC"}}, ctx))


def proposal(system: str = "lvl3", green: Any = 45, **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "system": system,
        "action": {"kind": "hub.patch",
                   "attrs": {"greenTime": {"type": "Property", "value": green}}},
        "target": SIG,
        "why": "the queue on the north approach is three times longer than usual",
        "evidence": {"links": [{"entity": SIG, "attrs": ["greenTime"],
                                "start": "2026-05-01T08:00:00Z", "end": "2026-05-01T09:00:00Z"}],
                     "modelVersion": "signals-2.1"},
        "expectedEffect": {"delayReductionPct": 12},
    }
    p.update(over)
    return p


def kv(s: Services, eid: str) -> dict[str, Any]:
    return View(s.resolver.resolve(None), "keyValues").entity(s.hub.get_entity(T, eid))


def green(s: Services) -> Any:
    return kv(s, SIG)["greenTime"]


def entity(s: Services, pid: str) -> dict[str, Any]:
    return kv(s, f"urn:ngsi-ld:AIProposal:{pid}")


def history(s: Services, attr: str = "greenTime") -> int:
    """Recorded instances of one attribute of the signal (one per change)."""
    return len(s.store.history(T, SIG, TemporalFilter(attrs=(DV + attr,))))


def actions(s: Services) -> list[str]:
    return [r["action"] for r in reversed(s.store.audit_log(T, 1000))]


def later(d: Decisions, **delta: float) -> None:
    when = datetime.now(UTC) + timedelta(**delta)
    d.clock = lambda: when


# -- oversight routes -------------------------------------------------------------------------
@pytest.mark.parametrize("system,level", [("auto1", 1), ("auto2", 2)])
def test_levels_one_and_two_apply_automatically(svc: Services, system: str, level: int) -> None:
    d = svc.trust.decisions
    before = history(svc)
    p = d.submit(T, proposal(system), SERVICE)
    assert (p["status"], p["route"], p["impactLevel"]) == ("applied", "auto", level)
    assert green(svc) == 45 and history(svc) == before + 1
    e = entity(svc, p["id"])
    assert (e["status"], e["route"], e["impactLevel"], e["overridden"]) == (
        "applied", "auto", level, False)
    assert e["reviewers"] == 0 and "appliedAt" in e and "decidedAt" in e
    log = actions(svc)
    assert log.index("proposal.submit") < log.index("proposal.apply")
    # monitoring and override: an operator can roll it back afterwards
    r = d.rollback(T, p["id"], OP1, "the plan made the side street worse")
    assert r["status"] == "rolledBack" and green(svc) == 30
    assert entity(svc, p["id"])["overridden"] is True


def test_a_service_may_ask_for_review_but_never_for_less(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal("auto2", review="required"), SERVICE)
    assert (p["status"], p["route"], p["reviewersNeeded"]) == ("pending", "queue", 1)
    assert green(svc) == 30
    assert d.approve(T, p["id"], OP1)["status"] == "applied" and green(svc) == 45
    # on a level that already needs review it changes nothing
    p4 = d.submit(T, proposal("lvl4", review="required"), SERVICE)
    assert p4["reviewersNeeded"] == 2
    with pytest.raises(BadRequestData, match="review"):
        d.submit(T, proposal("auto2", review="optional"), SERVICE)


@pytest.mark.parametrize("system,level", [("lvl3", 3), ("new", None)])
def test_level_three_and_unassessed_wait_for_one_approval(
        svc: Services, system: str, level: int | None) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(system), SERVICE)
    assert (p["status"], p["route"], p["reviewersNeeded"], p["impactLevel"]) == (
        "pending", "queue", 1, level)
    assert green(svc) == 30
    e = entity(svc, p["id"])
    assert e["status"] == "pending" and "appliedAt" not in e and "decidedAt" not in e
    assert ("impactLevel" in e) == (level is not None)
    a = d.approve(T, p["id"], OP1)
    assert a["status"] == "applied" and green(svc) == 45
    assert [x["actor"] for x in a["approvals"]] == ["key:op1"]


def test_level_four_needs_two_distinct_reviewers(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal("lvl4"), SERVICE)
    assert p["reviewersNeeded"] == 2
    one = d.approve(T, p["id"], OP1, reason="looks right")
    assert one["status"] == "pending" and green(svc) == 30
    assert entity(svc, p["id"])["reviewers"] == 1
    with pytest.raises(Conflict, match="another reviewer"):
        d.approve(T, p["id"], OP1)
    assert d.get(T, p["id"])["approvals"][0]["actor"] == "key:op1"
    two = d.approve(T, p["id"], OP2)
    assert two["status"] == "applied" and green(svc) == 45
    assert entity(svc, p["id"])["reviewers"] == 2


def test_submitter_cannot_approve_its_own_proposal(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(), OP1)
    with pytest.raises(Forbidden, match="submitted"):
        d.approve(T, p["id"], OP1)
    assert d.approve(T, p["id"], OP2)["status"] == "applied"


def test_only_operators_and_admins_decide(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(), SERVICE)
    for who in (READER, SERVICE):
        for call in (lambda c: d.approve(T, p["id"], c),
                     lambda c: d.reject(T, p["id"], c, "no"),
                     lambda c: d.rollback(T, p["id"], c, "no")):
            with pytest.raises(Forbidden):
                call(who)
    with pytest.raises(Forbidden):
        d.submit(T, proposal(), READER)
    with pytest.raises(Forbidden):  # a key of another tenant
        d.approve(T, p["id"], Caller("key:x", "operator", "elsewhere"))
    assert d.approve(T, p["id"], Caller("key:adm", "admin"))["status"] == "applied"


# -- reasons, reject, modify ------------------------------------------------------------------
def test_reject_needs_a_reason_and_blocks_approval(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(), SERVICE)
    for bad in (None, "", "   "):
        with pytest.raises(BadRequestData, match="reason"):
            d.reject(T, p["id"], OP1, bad)
    r = d.reject(T, p["id"], OP1, "a marathon closes this road today")
    assert (r["status"], r["overridden"], r["reason"]) == (
        "rejected", True, "a marathon closes this road today")
    e = entity(svc, p["id"])
    assert (e["status"], e["overridden"], e["reason"]) == ("rejected", True, r["reason"])
    assert "decidedAt" in e and "appliedAt" not in e
    with pytest.raises(Conflict, match="rejected"):
        d.approve(T, p["id"], OP2)
    with pytest.raises(Conflict):
        d.reject(T, p["id"], OP2, "again")
    assert green(svc) == 30


def test_modify_changes_the_action_with_a_reason(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal("lvl4"), SERVICE)
    d.approve(T, p["id"], OP1)
    change = {"action": {"kind": "hub.patch", "format": "keyValues",
                         "attrs": {"greenTime": 40}}}
    with pytest.raises(BadRequestData, match="reason"):
        d.modify(T, p["id"], OP2, change)
    with pytest.raises(BadRequestData, match="action"):
        d.modify(T, p["id"], OP2, {"reason": "x"})
    m = d.modify(T, p["id"], OP2, {**change, "reason": "45 s starves the cross street"})
    assert m["status"] == "pending" and m["overridden"] is True
    assert m["approvals"] == []  # the earlier approval was for another action
    assert m["modifications"][0]["previous"]["action"]["attrs"]["greenTime"]["value"] == 45
    assert m["modifications"][0]["droppedApprovals"] == ["key:op1"]
    e = entity(svc, p["id"])
    assert (e["overridden"], e["reason"], e["reviewers"]) == (
        True, "45 s starves the cross street", 0)
    assert "proposal.modify" in actions(svc)
    d.approve(T, p["id"], OP1)  # the modified proposal needs its two approvals again
    assert d.approve(T, p["id"], OP2)["status"] == "applied"
    assert green(svc) == 40


def test_modify_and_approve_in_one_call(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(), SERVICE)
    out = d.modify(T, p["id"], OP1, {"action": {"kind": "hub.patch", "format": "keyValues",
                                                "attrs": {"greenTime": 35}},
                                     "reason": "a smaller step first", "approve": True})
    assert out["status"] == "applied" and green(svc) == 35 and out["overridden"] is True


# -- expiry -------------------------------------------------------------------------------------
def test_expired_proposal_never_applies(svc: Services) -> None:
    d = svc.trust.decisions
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    p = d.submit(T, proposal(expiresAt=soon), SERVICE)
    later(d, minutes=6)
    with pytest.raises(Conflict, match="expired"):
        d.approve(T, p["id"], OP1)
    assert d.get(T, p["id"])["status"] == "expired"
    assert entity(svc, p["id"])["status"] == "expired"
    assert green(svc) == 30 and "proposal.expire" in actions(svc)
    with pytest.raises(Conflict):
        d.approve(T, p["id"], OP1)


def test_approved_proposal_that_expires_before_apply_expires(svc: Services) -> None:
    d = svc.trust.decisions
    d.apply_on_decide = False
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    p = d.submit(T, proposal(expiresAt=soon), SERVICE)
    assert d.approve(T, p["id"], OP1)["status"] == "approved"
    before = history(svc)
    later(d, minutes=6)
    assert d.apply(T, p["id"])["status"] == "expired"
    assert green(svc) == 30 and history(svc) == before
    assert d.recover() == {"expired": 0, "applied": 0}


def test_expiry_job_marks_overdue_proposals(svc: Services) -> None:
    d = svc.trust.decisions
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    overdue = d.submit(T, proposal(expiresAt=soon), SERVICE)
    fresh = d.submit(T, proposal(green=50), SERVICE)  # default TTL
    assert d.expire_due() == 0
    later(d, minutes=6)
    assert d.recover() == {"expired": 1, "applied": 0}
    assert d.get(T, overdue["id"])["status"] == "expired"
    assert d.get(T, fresh["id"])["status"] == "pending"
    assert d.expire_due() == 0


def test_jobs_run_recovery_on_the_configured_interval(svc: Services) -> None:
    [job] = svc.trust.decisions.jobs()
    assert isinstance(job, Job) and job.interval_s == svc.settings.decisions_interval_s
    assert job.fn() == {"expired": 0, "applied": 0}


# -- crash safety and idempotency -------------------------------------------------------------
def test_crash_between_approve_and_apply(store_url: str, tmp_path: Path) -> None:
    settings = make_settings(store_url, tmp_path, trust_jobs=False)
    first = Services(settings)
    _city(first)
    first.trust.decisions.apply_on_decide = False  # the process dies right after approval
    p = first.trust.decisions.submit(T, proposal(), SERVICE)
    assert first.trust.decisions.approve(T, p["id"], OP1)["status"] == "approved"
    before = history(first)
    first.close()

    second = Services(settings)  # a restart over the same store
    try:
        assert second.trust.decisions.recover() == {"expired": 0, "applied": 1}
        assert second.trust.decisions.recover() == {"expired": 0, "applied": 0}
        assert second.trust.decisions.apply(T, p["id"])["status"] == "applied"
        assert green(second) == 45 and history(second) == before + 1
        assert actions(second).count("proposal.apply") == 1
        assert entity(second, p["id"])["status"] == "applied"
    finally:
        second.close()


def test_crash_inside_the_apply_step_leaves_nothing_half_done(
        svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(), SERVICE)
    real = svc.hub._merge
    before = history(svc)

    def merge_then_die(*args: Any, **kw: Any) -> None:
        real(*args, **kw)  # the entity change is made inside the transaction ...
        raise Crash()  # ... and the process dies before it commits

    monkeypatch.setattr(svc.hub, "_merge", merge_then_die)
    with pytest.raises(Crash):
        d.approve(T, p["id"], OP1)
    assert d.get(T, p["id"])["status"] == "approved"  # the approval was committed first
    assert green(svc) == 30 and history(svc) == before
    monkeypatch.setattr(svc.hub, "_merge", real)
    assert d.apply_pending() == 1
    assert d.apply_pending() == 0
    assert green(svc) == 45 and history(svc) == before + 1


def test_concurrent_workers_apply_once(svc: Services) -> None:
    """Several replicas' recovery jobs racing on one approved proposal apply it once."""
    import threading

    d = svc.trust.decisions
    d.apply_on_decide = False
    p = d.submit(T, proposal(), SERVICE)
    d.approve(T, p["id"], OP1)
    before = history(svc)
    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(d.apply_pending()))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 1 and history(svc) == before + 1
    assert actions(svc).count("proposal.apply") == 1


def test_concurrent_reviewers_both_count(svc: Services) -> None:
    import threading

    d = svc.trust.decisions
    p = d.submit(T, proposal("lvl4"), SERVICE)
    threads = [threading.Thread(target=d.approve, args=(T, p["id"], who))
               for who in (OP1, OP2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = d.get(T, p["id"])
    assert done["status"] == "applied" and len(done["approvals"]) == 2
    assert green(svc) == 45


def test_retried_apply_and_submit_are_idempotent(svc: Services) -> None:
    d = svc.trust.decisions
    before = history(svc)
    p = d.submit(T, proposal("auto1", id="plan-0001"), SERVICE)
    assert p["id"] == "plan-0001" and p["status"] == "applied"
    for _ in range(3):
        assert d.apply(T, p["id"])["status"] == "applied"
        d.recover()
    again, created = d.submit_with_status(T, proposal("auto1", id="plan-0001"), SERVICE)
    assert not created and again["status"] == "applied"
    assert history(svc) == before + 1 and actions(svc).count("proposal.submit") == 1
    with pytest.raises(Conflict, match="id"):
        d.submit(T, proposal("auto1", green=99, id="plan-0001"), SERVICE)
    # a re-send is recognised even after a reviewer modified the proposal
    q = d.submit(T, proposal(id="plan-0002"), SERVICE)
    d.modify(T, q["id"], OP1, {"action": {"kind": "hub.patch", "format": "keyValues",
                                          "attrs": {"greenTime": 33}}, "reason": "smaller"})
    q2, created = d.submit_with_status(T, proposal(id="plan-0002"), SERVICE)
    assert not created and q2["action"]["attrs"] == {"greenTime": 33}


# -- rollback ---------------------------------------------------------------------------------
def test_rollback_restores_the_previous_values(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(action={"kind": "hub.patch", "attrs": {
        "greenTime": {"type": "Property", "value": 50},
        "plan": {"type": "Property", "value": "peak-b"}}}), SERVICE)
    with pytest.raises(Conflict, match="pending"):
        d.rollback(T, p["id"], OP1, "not applied yet")
    d.approve(T, p["id"], OP1)
    assert kv(svc, SIG)["plan"] == "peak-b" and green(svc) == 50
    before = history(svc)
    with pytest.raises(BadRequestData, match="reason"):
        d.rollback(T, p["id"], OP2, None)
    r = d.rollback(T, p["id"], OP2, "traffic got worse")
    assert r["status"] == "rolledBack" and r["rollback"]["changedSince"] == []
    ent = kv(svc, SIG)
    assert ent["greenTime"] == 30 and "plan" not in ent  # added by the patch: removed again
    full = svc.hub.get_entity(T, SIG)["attrs"][DV + "greenTime"][0]
    assert full["unitCode"] == "SEC"
    assert history(svc) == before + 1  # the restore is a new, recorded change
    log = svc.store.audit_log(T, 100)
    assert any(x["action"] == "proposal.rollback" and x["actor"] == "key:op2" for x in log)
    assert any(x["target"] == SIG and x["actor"] == "key:op2" for x in log)
    e = entity(svc, p["id"])
    assert (e["status"], e["overridden"], e["reason"]) == ("rolledBack", True, r["reason"])
    with pytest.raises(Conflict):
        d.rollback(T, p["id"], OP2, "twice")
    with pytest.raises(Conflict):
        d.approve(T, p["id"], OP2)


def test_rollback_reports_later_changes(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal("auto1"), SERVICE)
    svc.hub.merge_entity(T, SIG, {"attrs": {DV + "greenTime": [
        {"type": "Property", "value": 60}]}}, actor="key:manual")
    r = d.rollback(T, p["id"], OP1, "back to the plan before the proposal")
    assert r["rollback"]["changedSince"] == ["greenTime"] and green(svc) == 30


def test_approving_an_applied_proposal_conflicts(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(), SERVICE)
    d.approve(T, p["id"], OP1)
    with pytest.raises(Conflict, match="applied"):
        d.approve(T, p["id"], OP2)


# -- failure, entity projection ---------------------------------------------------------------
def test_apply_that_cannot_succeed_fails(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal(), SERVICE)
    svc.hub.delete_entity(T, SIG)
    f = d.approve(T, p["id"], OP1)
    assert f["status"] == "failed" and f["error"]["type"] == "ResourceNotFound"
    assert entity(svc, p["id"])["status"] == "failed" and "proposal.fail" in actions(svc)
    assert d.recover() == {"expired": 0, "applied": 0}


def test_entity_reflects_each_state(svc: Services) -> None:
    d = svc.trust.decisions
    p = d.submit(T, proposal("lvl4"), SERVICE)
    e = entity(svc, p["id"])
    assert e["type"] == "AIProposal"
    assert {k: e[k] for k in ("system", "status", "route", "impactLevel", "overridden",
                              "reviewers", "target", "actionKind", "modelVersion")} == {
        "system": "lvl4", "status": "pending", "route": "queue", "impactLevel": 4,
        "overridden": False, "reviewers": 0, "target": SIG, "actionKind": "hub.patch",
        "modelVersion": "signals-2.1"}
    assert e["submittedAt"].endswith("Z") and e["expiresAt"] > e["submittedAt"]
    assert not {"reason", "decidedAt", "appliedAt"} & set(e)
    full = svc.hub.get_entity(T, f"urn:ngsi-ld:AIProposal:{p['id']}")
    assert full["attrs"][DV + "target"][0]["type"] == "Relationship"
    d.approve(T, p["id"], OP1)
    assert entity(svc, p["id"])["reviewers"] == 1
    d.apply_on_decide = False
    d.approve(T, p["id"], OP2, reason="checked twice")
    e = entity(svc, p["id"])
    assert (e["status"], e["reviewers"], e["reason"]) == ("approved", 2, "checked twice")
    assert "decidedAt" in e and "appliedAt" not in e
    d.apply(T, p["id"])
    assert entity(svc, p["id"])["status"] == "applied" and "appliedAt" in entity(svc, p["id"])
    d.rollback(T, p["id"], OP1, "undo")
    assert entity(svc, p["id"])["status"] == "rolledBack"
    # the entity keeps a history of its states, for KPIs over time
    states = svc.store.history(T, f"urn:ngsi-ld:AIProposal:{p['id']}",
                               TemporalFilter(attrs=("https://uri.etsi.org/ngsi-ld/status",)))
    assert [h.doc["value"] for h in states] == ["pending", "approved", "applied", "rolledBack"]


# -- registered appliers ----------------------------------------------------------------------
class Gate:
    """An external system that acts at most once per idempotency key."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.done: dict[str, dict[str, Any]] = {}
        self.undone: list[str] = []
        self.mode = "ok"

    def apply(self, tenant: str, proposal: dict[str, Any], key: str) -> dict[str, Any]:
        self.calls.append(key)
        if self.mode == "retry":
            raise RetryLater()
        if self.mode == "error":
            raise RuntimeError("gate jammed")
        self.done.setdefault(key, {"opened": proposal["action"]["params"]["gate"]})
        if self.mode == "crash":
            raise Crash()  # acted, then died before the engine heard back
        return self.done[key]

    def rollback(self, tenant: str, proposal: dict[str, Any], key: str) -> None:
        self.undone.append(key)

    @staticmethod
    def validate(params: dict[str, Any], targets: list[str]) -> None:
        if not isinstance(params.get("gate"), int):
            raise ValueError("gate must be an integer")


def gate_proposal(system: str = "auto1", **over: Any) -> dict[str, Any]:
    return proposal(system, action={"kind": "flood.gate", "params": {"gate": 3}},
                    target="urn:ngsi-ld:FloodGate:3", **over)


def test_registered_applier_gets_the_proposal_id_as_idempotency_key(svc: Services) -> None:
    d = svc.trust.decisions
    gate = Gate()
    d.register_applier("flood.gate", gate.apply, gate.rollback, gate.validate)
    p = d.submit(T, gate_proposal(), SERVICE)
    assert p["status"] == "applied" and p["result"] == {"opened": 3}
    assert gate.calls == [p["id"]]
    d.apply(T, p["id"])
    assert gate.calls == [p["id"]]
    r = d.rollback(T, p["id"], OP1, "river level fell")
    assert r["status"] == "rolledBack" and gate.undone == [p["id"]]
    with pytest.raises(BadRequestData, match="action.params: gate must be an integer"):
        d.submit(T, proposal("auto1", action={"kind": "flood.gate", "params": {"gate": "x"}}),
                 SERVICE)
    with pytest.raises(BadRequestData, match="action.kind"):
        d.submit(T, proposal("auto1", action={"kind": "teleport", "params": {}}), SERVICE)
    with pytest.raises(ValueError):
        d.register_applier("hub.patch", gate.apply, gate.rollback)


def test_registered_applier_crash_is_retried_with_the_same_key(svc: Services) -> None:
    d = svc.trust.decisions
    gate = Gate()
    d.register_applier("flood.gate", gate.apply, gate.rollback)
    gate.mode = "crash"
    with pytest.raises(Crash):
        d.submit(T, gate_proposal(), SERVICE)
    [p] = d.list_proposals(T)["items"]
    assert p["status"] == "approved" and p["attempts"][-1]["outcome"] is None
    gate.mode = "ok"
    assert d.recover() == {"expired": 0, "applied": 0}  # maybe still running: wait
    later(d, seconds=120)
    assert d.recover() == {"expired": 0, "applied": 1}
    assert gate.calls == [p["id"], p["id"]] and len(gate.done) == 1
    assert d.get(T, p["id"])["status"] == "applied"


def test_registered_applier_retry_later_and_errors(svc: Services) -> None:
    d = svc.trust.decisions
    gate = Gate()
    d.register_applier("flood.gate", gate.apply, gate.rollback)
    gate.mode = "retry"
    p = d.submit(T, gate_proposal(), SERVICE)
    assert p["status"] == "approved"
    gate.mode = "ok"
    assert d.apply_pending() == 1 and d.get(T, p["id"])["status"] == "applied"
    gate.mode = "error"
    q = d.submit(T, gate_proposal(), SERVICE)
    assert q["status"] == "failed" and q["error"]["type"] == "RuntimeError"


def test_interrupted_applier_past_expiry_fails_rather_than_expires(svc: Services) -> None:
    d = svc.trust.decisions
    gate = Gate()
    d.register_applier("flood.gate", gate.apply, gate.rollback)
    gate.mode = "crash"
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    with pytest.raises(Crash):
        d.submit(T, gate_proposal(expiresAt=soon), SERVICE)
    later(d, minutes=10)
    assert d.recover() == {"expired": 0, "applied": 0}
    [p] = d.list_proposals(T, status="failed")["items"]
    assert p["error"]["type"] == "ApplyInterrupted"
