"""`tuned` may keep the network's own programs (``Plan``): they run as SUMO runs them, and the
twin steps in only for an emergency vehicle, with a yellow before its green and the program
taking over again afterwards."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from maeul.services.signals import bench
from maeul.services.signals.controllers import DelayPressure, MaxPressure, Plan, make
from maeul.services.signals.runner import simulate
from maeul.services.signals.service import _Gate
from maeul.services.signals.tuning import CANDIDATES, PRIORITY, check_params

# an ambulance from the north that, under the crossing's own program, waits 28 s at the red
AMB = ('<vehicle id="amb" type="ambulance" depart="220" departSpeed="max">'
       '<route edges="NC CS"/></vehicle>')


def _amb_wait(path: Path) -> float:
    for el in ET.parse(path).getroot().iter("tripinfo"):
        if el.get("id") == "amb":
            return float(el.get("waitingTime", "nan"))
    raise AssertionError("ambulance trip missing")


def test_the_plan_is_the_network_program_when_no_emergency_comes(make_scenario: Any) -> None:
    cfg = str(make_scenario(end=300))
    fixed = bench.run_one((cfg, "fixed", 3, None, None))
    plan = bench.run_one((cfg, "tuned", 3, None, {"plan": True}))
    for key in ("delay", "trip_time", "waiting_time", "throughput", "co2_kg"):
        assert plan[key] == fixed[key]
    adaptive = bench.run_one((cfg, "tuned", 3, None, {"out": 1.0}))
    assert adaptive["delay"] != fixed["delay"]  # the comparison can tell runs apart


def test_an_emergency_vehicle_gets_green_with_a_yellow_first_then_the_program_resumes(
        make_scenario: Any, tmp_path: Path) -> None:
    cfg = make_scenario(end=400, we=600, ns=300, extra=AMB)
    seen: list[tuple[float, str, str]] = []

    def watch(conn: Any, now: float) -> None:
        TL = conn.trafficlight
        seen.append((now, TL.getRedYellowGreenState("C"), TL.getProgram("C")))

    changes: list[tuple[str, int, str]] = []
    res = simulate(cfg, Plan(), tmp_path / "plan.xml", record=True, on_step=watch,
                   on_plan_change=lambda t, g, r: changes.append((t, g, r)))
    simulate(cfg, None, tmp_path / "fixed.xml")
    assert _amb_wait(tmp_path / "fixed.xml") > 20  # the program alone holds it at the red
    assert _amb_wait(tmp_path / "plan.xml") == 0.0
    assert changes == [("C", changes[0][1], "emergency")] and res.changes == 1
    kinds = [k for _, _, _, k in res.log]
    assert kinds == ["yellow", "green", "program"]
    # no link ever goes from green straight to red
    for (_, a, _), (_, b, _) in zip(seen, seen[1:], strict=False):
        for ca, cb in zip(a, b, strict=True):
            assert not (ca in "Gg" and cb == "r"), (a, b)
    # the network's program runs again after the ambulance, and before it
    program = seen[0][2]
    handed_back = res.log[-1][0]
    assert all(p == program for t, _, p in seen if t > handed_back or t < res.log[0][0])
    assert any(p != program for _, _, p in seen)  # the twin did take the light over
    # without emergency priority nothing is taken over: the program's own run
    again = simulate(cfg, Plan(), tmp_path / "off.xml", emergency=False, record=True)
    assert again.log == [] and _amb_wait(tmp_path / "off.xml") > 20


def test_plan_is_a_tuning_candidate_without_weights() -> None:
    assert isinstance(make("tuned", {"plan": True}), Plan)
    assert isinstance(make("tuned", {"plan": False, "out": 0.0}), DelayPressure)
    with pytest.raises(ValueError, match="takes no weights"):
        check_params({"plan": True, "out": 0.0})
    with pytest.raises(ValueError):
        check_params({"plan": "yes"})
    # after every set of weights: weights within 1% of it win the tie (queue clearance and
    # plain max-pressure, the other kinds of rule, come after it)
    plan = CANDIDATES.index({"plan": True})
    assert all("plan" not in c and "actuated" not in c for c in CANDIDATES[:plan])
    assert CANDIDATES[plan + 1:] == ({"actuated": True}, {"pressure": True})
    assert PRIORITY[1] == plan  # but tried second when time is short
    assert Plan().weights() == {"plan": True}
    plain = make("tuned", {"pressure": True})
    assert isinstance(plain, MaxPressure) and plain.weights() == {"pressure": True}
    assert plain.name == "tuned"
    assert isinstance(make("tuned", {"pressure": False, "out": 0.5}), DelayPressure)
    with pytest.raises(ValueError, match="plain max-pressure"):
        check_params({"pressure": True, "out": 1.0})


def test_the_service_wrapper_passes_on_what_the_twin_reads() -> None:
    gated = _Gate(None, DelayPressure(gate=True))  # type: ignore[arg-type]
    assert gated.gate is True and gated.hold is not None and not gated.follows_plan
    assert _Gate(None, DelayPressure()).gate is False  # type: ignore[arg-type]
    assert _Gate(None, Plan()).follows_plan is True  # type: ignore[arg-type]
