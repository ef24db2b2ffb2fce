"""Every controller obeys the safety rules on a real simulation; max-pressure's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maeul.services.signals.controllers import (
    CONTROLLERS,
    DelayPressure,
    MaxPressure,
    make,
    phase_pressures,
)
from maeul.services.signals.runner import simulate
from maeul.services.signals.twin import (
    GREEN,
    Intersection,
    LaneState,
    Observation,
    Proposal,
    Timing,
    read_config,
)


def _shown_states(cfg: Path, name: str, tmp: Path, **kw: Any) -> tuple[list[str], list[str]]:
    """Signal state shown at C each second, and the network's program states."""
    shown: list[str] = []
    program: list[str] = []

    def watch(conn: Any, now: float) -> None:
        if not program:
            lg = conn.trafficlight.getAllProgramLogics("C")
            program.extend(p.state for lg_ in lg for p in lg_.phases)
        shown.append(conn.trafficlight.getRedYellowGreenState("C"))

    simulate(cfg, make(name), tmp / f"{name}.xml", on_step=watch, **kw)
    return shown, program


def _runs(states: list[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for s in states:
        if runs and runs[-1][0] == s:
            runs[-1] = (s, runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return runs


@pytest.mark.parametrize("name", [c for c in CONTROLLERS if c != "fixed"])
def test_adaptive_controllers_obey_safety_rules(crossing: Path, tmp_path: Path,
                                                name: str) -> None:
    timing = Timing(decision=10, yellow=3)
    shown, program = _shown_states(crossing, name, tmp_path, timing=timing)
    greens = {s for s in program if "y" not in s and any(c in GREEN for c in s)}
    runs = _runs(shown)
    changes = 0
    for k, (state, length) in enumerate(runs):
        if "y" in state:
            # yellow: exactly the twin's yellow time, between two different greens
            prev, nxt = runs[k - 1][0], runs[k + 1][0] if k + 1 < len(runs) else None
            assert length == timing.yellow
            assert prev in greens and prev != nxt
            if nxt is not None:
                assert nxt in greens
                for a, y, b in zip(prev, state, nxt, strict=True):
                    if a in GREEN and b not in GREEN:
                        assert y == "y"  # every link losing green shows yellow first
            changes += 1
        else:
            assert state in greens, f"{name} showed {state}, not a green of the network"
            if 0 < k < len(runs) - 1:
                assert length >= timing.min_green_s
                assert "y" in runs[k - 1][0] and "y" in runs[k + 1][0]
    assert changes >= 3  # the test saw real switching


def test_fixed_runs_the_network_program_untouched(crossing: Path, tmp_path: Path) -> None:
    shown, program = _shown_states(crossing, "fixed", tmp_path)
    assert set(shown) <= set(program)
    assert len(set(shown)) == len(set(program))


def _four_phase() -> Intersection:
    # four greens over four approaches; phase k serves in lane i{k} into out lane o{k}
    states = ["Grrr", "yrrr", "rGrr", "ryrr", "rrGr", "rryr", "rrrG", "rrry"]
    links = [(f"i{k}", f"o{k}") for k in range(4)]
    return Intersection("X", "0", states, [30.0, 3.0] * 4, [0, 2, 4, 6], links,
                        [f"i{k}" for k in range(4)], [f"o{k}" for k in range(4)],
                        [[f"i{k}"] for k in range(4)], [[f"o{k}"] for k in range(4)])


def test_max_pressure_picks_highest_pressure_phase() -> None:
    inter = _four_phase()
    lanes = {"i0": LaneState(queue=5), "o0": LaneState(queue=4),  # pressure 1
             "i1": LaneState(queue=3), "o1": LaneState(queue=0),  # 3
             "i2": LaneState(queue=9), "o2": LaneState(queue=2),  # 7: the highest
             "i3": LaneState(queue=6), "o3": LaneState(queue=8)}  # -2
    obs = Observation(0.0, 0, 20.0, lanes)
    assert phase_pressures(inter, obs) == [1, 3, 7, -2]
    assert MaxPressure().choose(inter, obs) == 2
    # a tie with the current green keeps it (no needless yellow)
    lanes["i0"] = LaneState(queue=11)
    assert MaxPressure().choose(inter, Observation(0.0, 0, 20.0, lanes)) == 0


def test_delay_pressure_counts_approaching_vehicles() -> None:
    inter = _four_phase()
    lanes = {f"i{k}": LaneState() for k in range(4)} | {f"o{k}": LaneState() for k in range(4)}
    lanes["i1"] = LaneState(queue=2, count=2)
    lanes["i3"] = LaneState(queue=1, count=7)  # a platoon arriving behind one halted car
    obs = Observation(0.0, 0, 20.0, lanes)
    assert MaxPressure().choose(inter, obs) == 1
    assert DelayPressure().choose(inter, obs) == 3


def test_yellow_covers_every_link_losing_green() -> None:
    inter = _four_phase()
    assert inter.yellow_between(0, 1) == "yrrr"
    # the network's yellow after a green that keeps a permissive link is extended
    inter.states[1] = "ygrr"
    inter.states[0] = "Ggrr"
    assert inter.yellow_between(0, 2) == "yyrr"


def test_proposal_refused_by_policy_is_not_applied(crossing: Path, tmp_path: Path) -> None:
    seen: list[Proposal] = []

    def refuse(p: Proposal) -> bool:
        seen.append(p)
        return False

    applied: list[str] = []
    shown, _ = _shown_states(crossing, "maxpressure", tmp_path, approval=refuse,
                             on_plan_change=lambda t, p, r: applied.append(t))
    assert seen and not applied
    assert len(set(shown)) == 1  # the first green stays: nothing acts without approval


def test_unknown_controller_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown controller 'psychic'"):
        make("psychic")
    assert read_config("cologne1").name == "cologne1"
