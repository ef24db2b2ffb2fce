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


def test_no_approach_waits_beyond_max_red(make_scenario: Any, tmp_path: Path,
                                          discovered: Any) -> None:
    # a rule that always prefers west-east: only the guard can serve the side street
    class Greedy(DelayPressure):
        def scores(self, inter: Intersection, obs: Observation) -> list[float]:
            return [100.0 if "AC_0" in ins else 0.0 for ins in inter.phase_in]

    cfg = make_scenario(end=900, we=900, ns=120)
    (inter,) = discovered(cfg)
    # the crossing's greens that give the north approach green
    ns_greens = {inter.green_state(g) for g, ins in enumerate(inter.phase_in) if "NC_0" in ins}
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


def test_links_into_a_full_exit_are_held_red() -> None:
    from maeul.services.signals.controllers import exit_blocked

    # one green serves three signal indices; index 1 controls two connections (o1 and o2),
    # index 2 leads into a short link to the next light (o3)
    states = ["GGG", "yyy", "rrG", "rry"]
    inter = Intersection("X", "0", states, [30.0, 3.0, 30.0, 3.0], [0, 2],
                         [("i0", "o0"), ("i1", "o1"), ("i2", "o3")], ["i0", "i1", "i2"],
                         ["o0", "o1", "o2", "o3"], [["i0", "i1", "i2"], ["i2"]],
                         [["o0", "o1", "o2", "o3"], ["o3"]],
                         exits=[["o0"], ["o1", "o2"], ["o3"]],
                         room_length={"o3": 20.0}, short_out=["o3"])
    free = LaneState(room=5.0, room_halted=5.0)
    lanes = {"o0": free, "o1": free, "o2": free, "o3": LaneState(room=2.0, room_halted=2.0)}
    obs = Observation(0.0, 0, 20.0, lanes)
    assert exit_blocked(inter, obs, 0) == frozenset()
    assert exit_blocked(inter, obs, 1) == frozenset()
    # halted vehicles fill o0: index 0 is held; o2 full holds index 1 although o1 has room
    lanes["o0"] = LaneState(room=0.5, room_halted=0.5)
    lanes["o2"] = LaneState(room=0.0, room_halted=0.0)
    assert exit_blocked(inter, obs, 0) == {0, 1}
    # on a long exit moving vehicles are leaving: not held while halted ones leave room
    lanes["o0"] = LaneState(room=0.5, room_halted=3.0)
    assert exit_blocked(inter, obs, 0) == {1}
    # on a short link to the next light they are about to stop there: every vehicle counts
    lanes["o3"] = LaneState(room=0.5, room_halted=2.0)
    assert exit_blocked(inter, obs, 0) == {1, 2}
    # the rule is a guard of ours: off, nothing is held
    assert DelayPressure().hold(inter, obs, 0) == frozenset()  # off by default
    assert DelayPressure(gate=True).hold(inter, obs, 0) == {1, 2}
    # a state with held links still reads as its green; a yellow does not
    assert inter.shown(0, frozenset({1, 2})) == "Grr"
    assert inter.phase_of("Grr") == 0 and inter.phase_of("GGG") == 0
    assert inter.phase_of("rrG") == 1 and inter.phase_of("rrr") is None
    assert inter.phase_of("Gyr") is None  # a yellow (between greens, or holding a link)


def _pair_run(cfg: Path, ctl: DelayPressure, out: Path) -> tuple[list[bool], list[str], int]:
    """Per step at C1: whether the guard's rule holds the link into the short link C1->C2
    (the twin's own reading of its room), and the state that link shows; and the longest
    standstill of a vehicle inside C1's junction box."""
    full: list[bool] = []
    shown: list[str] = []
    longest = [0]
    seen: dict[str, Intersection] = {}

    class Spy(type(ctl)):  # type: ignore[misc]
        def reset(self, intersections: list[Intersection]) -> None:
            seen.update({i.id: i for i in intersections})

    spy = Spy(gate=ctl.gate)

    def watch(conn: Any, now: float) -> None:
        from maeul.services.signals.controllers import exit_blocked
        from maeul.services.signals.twin import observe_exits

        inter = seen["C1"]
        k = next(i for i, (a, b) in enumerate(inter.links) if a == "WC1_0" and b == "C1C2_0")
        state = conn.trafficlight.getRedYellowGreenState("C1")
        g = next(g for g in range(len(inter.greens)) if inter.green_state(g)[k] in "Gg")
        obs = Observation(now, g, 0.0, observe_exits(conn, inter, inter.short_out))
        full.append(k in exit_blocked(inter, obs, g))
        shown.append(state[k])
        for lane in (v for chain in inter.via for v in chain):
            for v in conn.lane.getLastStepVehicleIDs(lane):
                longest[0] = max(longest[0], int(conn.vehicle.getWaitingTime(v)))

    simulate(cfg, spy, out, on_step=watch)
    return full, shown, longest[0]


def test_short_link_between_two_lights_is_not_fed_while_full(light_pair: Path,
                                                              tmp_path: Path) -> None:
    import sumolib

    conf = read_config(light_pair)
    conn = open_sumo(["-c", str(light_pair), "--no-step-log", "true"])
    try:
        net = sumolib.net.readNet(str(conf.path.parent / conf.net_files[0]))
        by_id = {i.id: i for i in discover(conn, net, 75.0)}
    finally:
        conn.close()
    # found from the network: the link between the lights ends at C2 before 50 m
    c1 = by_id["C1"]
    assert c1.short_out == ["C1C2_0"] and by_id["C2"].short_out == []
    assert c1.short_links == {k for k, e in enumerate(c1.exits) if "C1C2_0" in e}
    full, shown, _ = _pair_run(light_pair, DelayPressure(gate=True), tmp_path / "on.xml")
    inter_short = sum(full)
    assert inter_short > 20  # the short link really filled up while C2 served its cross street
    # the rule: once the short link is full, the link into it turns yellow (3 s) and then red
    # until there is room again; it never jumps from green to red
    late = [t for t in range(5, len(full)) if all(full[t - 5:t + 1]) and shown[t] in "Gg"]
    assert late == []
    jumps = [t for t in range(1, len(shown)) if shown[t - 1] in "Gg" and shown[t] == "r"]
    assert jumps == []
    # without the guard the light keeps feeding the full link
    full0, shown0, _ = _pair_run(light_pair, DelayPressure(gate=False), tmp_path / "off.xml")
    assert [t for t in range(5, len(full0)) if all(full0[t - 5:t + 1]) and shown0[t] in "Gg"]
