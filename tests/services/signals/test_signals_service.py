"""The signal service in the city: device ingest, registry and assessment, proposals that wait
for an operator, and the traffic-delay KPI, on short simulations of a real SUMO crossing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maeul.config import Settings
from maeul.hub.app import Services
from maeul.hub.errors import BadRequestData
from maeul.hub.store.base import TemporalFilter
from maeul.services.signals.controllers import make
from maeul.services.signals.publish import (
    FLOW_TYPE,
    SDM,
    flow_entity_id,
    safe_id,
    signal_entity_id,
)
from maeul.services.signals.registry import SYSTEM_ID, ensure_registered, shipped_answers
from maeul.services.signals.service import SignalService
from maeul.services.signals.twin import TwinError
from maeul.trust.impact import score, shipped_questionnaire
from maeul.trust.registry_model import DECLARED

T = "default"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"


@pytest.fixture(autouse=True)
def _own_declarations() -> Iterator[None]:
    """The service declares its registry entry process-wide; other test files count the
    declared entries, so each test here takes its declaration back."""
    before = dict(DECLARED)
    yield
    DECLARED.clear()
    DECLARED.update(before)


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    s = Services(Settings(store_url=f"sqlite:///{tmp_path}/hub.db", auth_enabled=False,
                          context_cache_dir=tmp_path / "contexts",
                          secrets_dir=tmp_path / "secrets", trust_jobs=False))
    yield s
    s.close()


@pytest.fixture
def running() -> Iterator[list[SignalService]]:
    """Services started by a test; stopped afterwards even when the test fails."""
    started: list[SignalService] = []
    yield started
    for service in started:
        service.stop(timeout=30)


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail("timed out waiting")


def history(s: Services, eid: str, attr: str) -> list[Any]:
    """The recorded values of one attribute, oldest first."""
    rows = s.store.history(T, eid, TemporalFilter(attrs=(attr,)))
    return [r.doc.get("value") for r in rows]


def value(ent: dict[str, Any], iri: str) -> Any:
    inst = ent["attrs"][iri][0]
    return inst.get("value", inst.get("object"))


def test_detectors_and_signal_state_arrive_through_device_ingest(
        svc: Services, crossing: Path) -> None:
    service = SignalService(svc, crossing, "delaypressure", end=300, period_s=30).start()
    assert service.join(60) and service.error is None
    devices = {d["deviceId"]: d for d in svc.ingest.ingest.devices(T)}
    assert set(devices) == {"sumo.cross.C.AC", "sumo.cross.C.NC", "sumo.cross.C.signal"}
    assert devices["sumo.cross.C.AC"]["entityType"] == FLOW_TYPE
    stats = svc.ingest.ingest.stats.as_dict()
    assert stats["accepted"] == service.publisher.published > 0  # type: ignore[union-attr]
    assert stats["malformed"] == stats["rejected"] == 0
    ac = flow_entity_id("cross", "AC")
    ent = svc.store.reader().get_entity(T, ac)
    assert ent["type"] == [FLOW_TYPE]
    # one reading per 30 simulated seconds: the history grows with the run
    assert len(history(svc, ac, SDM + "intensity")) == 10
    assert sum(history(svc, ac, SDM + "intensity")) > 20  # 600 vehicles an hour
    assert 0 <= value(ent, SDM + "occupancy") <= 1
    assert value(ent, SDM + "refRoadSegment") == "urn:ngsi-ld:RoadSegment:cross-AC"
    assert value(ent, DV + "refTrafficSignal") == signal_entity_id("cross", "C")
    assert all(v >= 0 for v in history(svc, ac, DV + "averageDelay"))
    sig = svc.store.reader().get_entity(T, signal_entity_id("cross", "C"))
    assert sig["type"] == [DV + "TrafficSignal"]
    assert value(sig, DV + "phaseCount") == 2
    assert value(sig, DV + "approvalPolicy") == "automatic"
    last = value(sig, DV + "lastPlanChange")
    # every change the twin showed went through the decision engine and was applied there
    assert service.applied and service.counts["auto"] == len(service.applied)
    assert last["proposal"] in {a["proposal"] for a in service.applied}
    doc = svc.trust.decisions.get(T, last["proposal"])
    assert (doc["status"], doc["route"], doc["impactLevel"]) == ("applied", "auto", 2)
    assert doc["evidence"]["modelVersion"].startswith("delaypressure@")
    assert {link["entity"] for link in doc["evidence"]["links"]} == {
        signal_entity_id("cross", "C"), ac, flow_entity_id("cross", "NC")}
    assert "vehicles queue" in doc["why"]


def test_fixed_time_publishes_without_proposals(svc: Services, crossing: Path) -> None:
    service = SignalService(svc, crossing, "fixed", end=120).start()
    assert service.join(60) and service.error is None
    assert service.counts["submitted"] == 0
    assert len(history(svc, flow_entity_id("cross", "NC"), SDM + "intensity")) == 2
    assert svc.trust.decisions.list_proposals(T)["total"] == 0


def test_registry_entry_exists_and_is_assessed_at_level_ii(svc: Services) -> None:
    assert score(shipped_questionnaire(), shipped_answers()["answers"]).level == 2
    assert ensure_registered(svc, T) == 2
    entry = svc.trust.registry.view(T, SYSTEM_ID)
    assert entry["status"] == "pilot"
    assert (entry["algorithm_type"], entry["type"]) == ("rule-based", "prescriptive")
    assert entry["name"]["ko"] and entry["name"]["en"]
    assert entry["impact"]["level"] == 2 and entry["missing"] == []
    # an assessment the city made itself is kept
    answers = {**shipped_answers()["answers"], "project.scrutiny": "yes",
               "system.role": "decide_act", "algorithm.kind": "online", "impact.rights": "high"}
    svc.trust.impact.assess(T, SYSTEM_ID, answers, "city-reviewer")
    assert ensure_registered(svc, T) == 3


def test_operator_policy_holds_a_change_until_approved(svc: Services, crossing: Path,
                                                       running: list[SignalService]) -> None:
    service = SignalService(svc, crossing, "delaypressure", approval_policy="operator",
                            speed=20, period_s=10, expiry_s=600, end=600).start()
    running.append(service)
    d = svc.trust.decisions
    items = wait_for(lambda: d.list_proposals(T, status="pending")["items"])
    p = items[0]
    params = p["action"]["params"]
    assert (p["route"], p["impactLevel"], p["reviewersNeeded"]) == ("queue", 2, 1)
    # two decision steps and a signal reading later, the twin still shows the old green
    wait_for(lambda: (service.sim_time or 0) >= params["simTime"] + 25)
    assert service.applied == []
    sig = svc.store.reader().get_entity(T, signal_entity_id("cross", "C"))
    assert value(sig, DV + "currentPhase") == params["from"]
    assert d.list_proposals(T)["total"] == 1  # one open proposal per intersection
    approved_at = service.sim_time or 0
    done = d.approve(T, p["id"], "operator:kim", "queue on the side street")
    assert done["status"] == "applied"
    assert done["result"]["phase"] == params["to"]
    (change,) = service.applied
    assert change["proposal"] == p["id"] and change["phase"] == params["to"]
    assert change["simTime"] >= approved_at
    assert change["reason"] == "controller, approved"


def test_level_iii_queues_in_automatic_policy_and_rejected_changes_never_apply(
        svc: Services, crossing: Path, running: list[SignalService]) -> None:
    ensure_registered(svc, T)
    answers = {**shipped_answers()["answers"], "project.scrutiny": "yes",
               "system.role": "decide_act", "algorithm.kind": "online", "impact.rights": "high"}
    svc.trust.impact.assess(T, SYSTEM_ID, answers, "city-reviewer")
    service = SignalService(svc, crossing, "delaypressure", speed=25, expiry_s=600,
                            end=600).start()
    running.append(service)
    d = svc.trust.decisions
    first = wait_for(lambda: d.list_proposals(T, status="pending")["items"])[0]
    assert (first["route"], first["impactLevel"]) == ("queue", 3)
    d.reject(T, first["id"], "operator:kim", "keep the main road green")
    # once decided, the controller may propose again; nothing applied meanwhile
    wait_for(lambda: service.counts["queued"] >= 2)
    assert service.applied == []
    statuses = [x["status"] for x in d.list_proposals(T)["items"]]
    assert statuses.count("rejected") == 1 and "applied" not in statuses


def test_emergency_priority_does_not_wait_for_the_operator(
        svc: Services, make_scenario: Any) -> None:
    # the crossing starts on the north-south green; the ambulance comes from the west
    extra = ('<vehicle id="amb" type="ambulance" depart="200" departSpeed="max">'
             '<route edges="WA AC CE"/></vehicle>')
    cfg = make_scenario(end=400, we=30, ns=1200, extra=extra)
    service = SignalService(svc, cfg, "maxpressure", approval_policy="operator",
                            expiry_s=3600, end=400).start()
    assert service.join(60) and service.error is None
    # the controller's wish waits for an operator; the ambulance's green applied at once
    assert service.applied and {a["reason"] for a in service.applied} == {"emergency"}
    for change in service.applied:
        doc = svc.trust.decisions.get(T, change["proposal"])
        assert (doc["route"], doc["status"]) == ("auto", "applied")
    pending = svc.trust.decisions.list_proposals(T, status="pending")["items"]
    assert {p["action"]["params"]["reason"] for p in pending} <= {"controller"}


def test_an_approval_after_the_twin_stopped_fails(svc: Services, crossing: Path) -> None:
    service = SignalService(svc, crossing, "delaypressure", approval_policy="operator",
                            speed=25, expiry_s=600, end=600).start()
    d = svc.trust.decisions
    p = wait_for(lambda: d.list_proposals(T, status="pending")["items"])[0]
    service.stop()
    res = d.approve(T, p["id"], "operator:kim")
    assert res["status"] == "failed" and res["error"]["type"] == "TwinStopped"


def test_traffic_delay_kpi_gets_the_measured_delay(svc: Services, crossing: Path) -> None:
    before = {k.definition.id: k for k in svc.trust.kpis.compute(T)}
    assert before["traffic-delay"].value is None
    service = SignalService(svc, crossing, "maxpressure", end=300).start()
    assert service.join(60) and service.error is None
    kpi = {k.definition.id: k for k in svc.trust.kpis.compute(T)}["traffic-delay"]
    readings = [v for e in ("AC", "NC")
                for v in history(svc, flow_entity_id("cross", e), DV + "averageDelay")]
    assert kpi.samples == len(readings) > 0
    assert kpi.value == pytest.approx(sum(readings) / len(readings), abs=0.05)


def test_bad_settings_and_bad_proposals_are_refused(svc: Services, crossing: Path,
                                                    tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="approval_policy"):
        SignalService(svc, crossing, "delaypressure", approval_policy="sometimes")
    with pytest.raises(ValueError, match="speed"):
        SignalService(svc, crossing, "delaypressure", speed=0)
    with pytest.raises(ValueError, match="unknown controller"):
        SignalService(svc, crossing, "psychic")
    # `tuned` without a cached tuning: delaypressure's weights, named in the model version
    tuned = SignalService(svc, crossing, "tuned", tuning_dir=tmp_path / "none")
    assert tuned.model_version.startswith("tuned(out=1 switch=0 gate=off)@maeul-")
    # every kind of candidate is named, so decisions record which rule acted
    for params, named in (({"actuated": True}, "tuned(actuated=on)@"),
                          ({"pressure": True}, "tuned(pressure=on)@")):
        kind = SignalService(svc, crossing, make("tuned", params))
        assert kind.model_version.startswith(named), kind.model_version
    with pytest.raises(TwinError, match="not found"):
        SignalService(svc, tmp_path / "nope.sumocfg", "delaypressure")
    service = SignalService(svc, crossing, "fixed", end=10).start()
    assert service.join(60)
    with pytest.raises(BadRequestData, match="action.params: to"):
        svc.trust.decisions.submit(T, {
            "system": SYSTEM_ID, "target": signal_entity_id("cross", "C"), "why": "test",
            "action": {"kind": "signals.phase", "params": {
                "twin": "cross", "run": "x", "tls": "C", "from": 0, "to": -1}}}, "svc")


def test_ids_with_odd_characters_stay_distinct() -> None:
    assert safe_id("-32038056#3") != safe_id("-32038056_3")
    assert safe_id("plain_id-1.2") == "plain_id-1.2"
    assert flow_entity_id("cologne1", "a#b").startswith("urn:ngsi-ld:TrafficFlowObserved:")


def test_tuned_keeping_the_plans_still_gives_emergency_priority(
        svc: Services, make_scenario: Any) -> None:
    from maeul.services.signals.controllers import Plan

    extra = ('<vehicle id="amb" type="ambulance" depart="220" departSpeed="max">'
             '<route edges="NC CS"/></vehicle>')
    cfg = make_scenario(end=400, we=600, ns=300, extra=extra)
    service = SignalService(svc, cfg, Plan(), approval_policy="operator", end=400).start()
    assert service.join(60) and service.error is None
    assert service.model_version.startswith("tuned(plan=on)@")
    # the program runs on its own; the one change is the ambulance's, applied at once
    assert [a["reason"] for a in service.applied] == ["emergency"]
    doc = svc.trust.decisions.get(T, service.applied[0]["proposal"])
    assert (doc["route"], doc["status"]) == ("auto", "applied")
    assert svc.trust.decisions.list_proposals(T, status="pending")["items"] == []
