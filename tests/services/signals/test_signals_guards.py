"""The guards of our pressure rules: spillback, starvation (max red), vehicles left inside the
junction; and what the twin observes for them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from maeul.services.signals.controllers import (
    DelayPressure,
    GuardedMaxPressure,
    MaxPressure,
    clear_box,
)
from maeul.services.signals.runner import simulate
from maeul.services.signals.twin import (
    Intersection,
    LaneState,
    Observation,
    TwinError,
    discover,
    open_sumo,
    read_config,
)


def _two_phase() -> Intersection:
    # green 0 serves i0 -> o0, green 1 serves i1 -> o1
    states = ["Gr", "yr", "rG", "ry"]
    return Intersection("X", "0", states, [30.0, 3.0] * 2, [0, 2], [("i0", "o0"), ("i1", "o1")],
                        ["i0", "i1"], ["o0", "o1"], [["i0"], ["i1"]], [["o0"], ["o1"]],
                        phase_links=[{"i0": ["o0"]}, {"i1": ["o1"]}])


def test_movement_into_a_full_lane_gets_no_credit() -> None:
    inter = _two_phase()
    lanes = {"i0": LaneState(queue=12, count=12), "o0": LaneState(room=0.4, room_halted=0.4),
             "i1": LaneState(queue=3, count=3), "o1": LaneState()}
    obs = Observation(0.0, 1, 20.0, lanes)
    assert MaxPressure().choose(inter, obs) == 0  # plain max-pressure sends them into the jam
    assert GuardedMaxPressure().choose(inter, obs) == 1
    assert DelayPressure().choose(inter, obs) == 1
    assert DelayPressure().scores(inter, obs)[0] == 0.0
    # with room for 4 more, the long queue gets credit for 4 only
    lanes["o0"] = LaneState(room=4.0, room_halted=4.0)
    assert DelayPressure().scores(inter, obs)[0] == pytest.approx(4.0)


def test_spillback_in_simulation_blocked_green_is_not_chosen(make_scenario: Any,
                                                              tmp_path: Path) -> None:
    # a car parks at the end of the east exit: the exit fills, west-east traffic cannot leave
    blocker = ('<vehicle id="blocker" type="car" depart="0"><route edges="CE"/>'
               '<stop lane="CE_0" endPos="295" duration="100000"/></vehicle>')
    cfg = make_scenario(end=500, we=1500, ns=200, extra=blocker)
    seen: list[tuple[float, int]] = []

    class Spy(DelayPressure):
        def choose(self, inter: Intersection, obs: Observation) -> int:
            pick = super().choose(inter, obs)
            we = next(g for g, ins in enumerate(inter.phase_in) if "AC_0" in ins)
            seen.append((obs.lanes["CE_0"].room_halted, pick == we))
            return pick

    simulate(cfg, Spy(), tmp_path / "ti.xml")
    full = [chose_we for room, chose_we in seen if room < 1.0]
    assert len(full) >= 10  # the exit really filled up
    assert not any(full)  # and the blocked green was never chosen while it was full
    assert any(chose_we for room, chose_we in seen if room >= 1.0)  # before, it was served


def test_no_approach_waits_beyond_max_red(make_scenario: Any, tmp_path: Path) -> None:
    # a rule that always prefers west-east: only the guard can serve the side street
    class Greedy(DelayPressure):
        def scores(self, inter: Intersection, obs: Observation) -> list[float]:
            return [100.0 if "AC_0" in ins else 0.0 for ins in inter.phase_in]

    cfg = make_scenario(end=900, we=900, ns=120)
    ns_greens = side_street_greens(cfg)
    for max_red in (40.0, 0.0):
        longest, ns_green = _watch_side_street(cfg, Greedy(max_red=max_red), ns_greens,
                                               tmp_path / f"ti{max_red}.xml")
        if max_red:
            assert sum(ns_green) > 50 and len(longest) > 15  # it switched, cars came
            assert max(longest.values()) <= max_red + 1  # one-second steps
        else:
            assert not any(ns_green[30:])  # without the guard: never served after the start
            assert max(longest.values()) > 500


def _watch_side_street(cfg: Path, ctl: DelayPressure, greens: set[str],
                       out: Path) -> tuple[dict[str, float], list[bool]]:
    """Longest standstill of each side-street car, and whether the side street had green."""
    longest: dict[str, float] = {}
    ns_green: list[bool] = []

    def watch(conn: Any, now: float) -> None:
        for v in conn.lane.getLastStepVehicleIDs("NC_0"):
            longest[v] = max(longest.get(v, 0.0), conn.vehicle.getWaitingTime(v))
        ns_green.append(conn.trafficlight.getRedYellowGreenState("C") in greens)

    simulate(cfg, ctl, out, on_step=watch)
    return longest, ns_green


def side_street_greens(cfg: Path) -> set[str]:
    """States of the crossing's greens that give the north approach green."""
    import sumolib

    conf = read_config(cfg)
    conn = open_sumo(["-c", str(cfg), "--no-step-log", "true"])
    try:
        net = sumolib.net.readNet(str(conf.path.parent / conf.net_files[0]))
        (inter,) = discover(conn, net, 75.0)
    finally:
        conn.close()
    return {inter.green_state(g) for g, ins in enumerate(inter.phase_in) if "NC_0" in ins}


def test_permissive_turners_inside_the_junction_are_not_stranded() -> None:
    # green 0: through G and a permissive left g; green 1: protected left; green 2: cross
    states = ["Ggr", "yyr", "rGr", "ryr", "rrG", "rry"]
    links = [("i0", "o0"), ("i0", "o1"), ("i2", "o2")]
    inter = Intersection("X", "0", states, [30.0, 3.0] * 3, [0, 2, 4], links, ["i0", "i2"],
                         ["o0", "o1", "o2"], [["i0"], ["i0"], ["i2"]],
                         [["o0", "o1"], ["o1"], ["o2"]])
    obs = Observation(0.0, 0, 20.0, {}, inside=[0, 2, 0])  # two left-turners in the junction
    # the cross street scores best, but the protected left (keeps link 1 green) goes first
    assert clear_box(inter, obs, [1.0, 2.0, 9.0], 2) == 1
    # when the protected left scores no better than now, the current green holds
    assert clear_box(inter, obs, [3.0, 2.0, 9.0], 2) == 0
    # with the junction empty, or only protected links occupied, the choice stands
    assert clear_box(inter, Observation(0.0, 0, 20.0, {}, inside=[0, 0, 0]), [1, 2, 9], 2) == 2
    assert clear_box(inter, Observation(0.0, 0, 20.0, {}, inside=[3, 0, 0]), [1, 2, 9], 2) == 2


def test_short_exit_lane_is_watched_downstream(make_scenario: Any) -> None:
    import sumolib

    cfg_path = make_scenario(short_exit=True, end=60)
    cfg = read_config(cfg_path)
    conn = open_sumo(["-c", str(cfg_path), "--no-step-log", "true"])
    try:
        net = sumolib.net.readNet(str(cfg.path.parent / cfg.net_files[0]))
        (inter,) = discover(conn, net, 75.0, spill_length=50.0)
    finally:
        conn.close()
    segs = inter.downstream["CB_0"]
    cb = net.getLane("CB_0").getLength()
    assert cb < 5
    assert [s.lane for s in segs] == ["CB_0", "CE_0"]
    assert segs[0].whole and segs[1].end == pytest.approx(50.0 - cb)
    assert inter.room_length["CB_0"] == pytest.approx(50.0)
    # a long exit needs no extension; the green serving AC feeds CB
    assert [s.lane for s in inter.downstream["CS_0"]] == ["CS_0"]
    assert inter.downstream["CS_0"][0].end == math.inf
    g = next(k for k, ins in enumerate(inter.phase_in) if "AC_0" in ins)
    assert "CB_0" in inter.phase_links[g]["AC_0"]


def test_config_without_end_runs_to_the_last_departure(make_scenario: Any,
                                                       tmp_path: Path) -> None:
    cfg = make_scenario(end=237, cfg_end=False,
                        extra_cfg='<gui_only><gui-settings-file value="none.xml"/></gui_only>')
    assert read_config(cfg).end == 240.0  # flows end at 237 s: rounded up to the minute
    # the GUI settings file does not exist: a headless run ignores it
    res = simulate(cfg, DelayPressure(), tmp_path / "ti.xml")
    assert res.end == 240.0 and res.decisions > 0
    (cfg.parent / "routes.rou.xml").write_text("<routes><vehicle id='a' depart=")
    with pytest.raises(TwinError, match="not a valid route file"):
        read_config(cfg)
    (cfg.parent / "routes.rou.xml").unlink()
    with pytest.raises(TwinError, match="route file not found"):
        read_config(cfg)
