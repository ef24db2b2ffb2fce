"""Pedestrian crossings: discovery keeps them apart from vehicle lanes, and the starvation guard
serves people waiting at a crossing whose green no vehicle queue asks for."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from maeul.services.signals.controllers import DelayPressure, GuardedActuated, make
from maeul.services.signals.lights import box_clear
from maeul.services.signals.metrics import TripMetrics, trip_metrics
from maeul.services.signals.runner import simulate
from maeul.services.signals.twin import Timing, sumo_home, sumo_tool

NODES = """<nodes>
  <node id="W" x="-200" y="0"/><node id="C" x="0" y="0" type="traffic_light"/>
  <node id="E" x="200" y="0"/><node id="N" x="0" y="200"/><node id="S" x="0" y="-200"/>
</nodes>"""
EDGES = """<edges>
  <edge id="WC" from="W" to="C" numLanes="1" speed="11.1"/>
  <edge id="CE" from="C" to="E" numLanes="1" speed="11.1"/>
  <edge id="NC" from="N" to="C" numLanes="1" speed="11.1"/>
  <edge id="CS" from="C" to="S" numLanes="1" speed="11.1"/>
</edges>"""
ROUTES = """<routes>
  <vType id="car" vClass="passenger"/>
  <flow id="we" type="car" begin="0" end="{end}" vehsPerHour="900" from="WC" to="CE"/>
  <flow id="ns" type="car" begin="0" end="{end}" vehsPerHour="500" from="NC" to="CS"/>
  <personFlow id="walk" begin="20" end="{walk_end}" period="30">
    <walk from="NC" to="CS"/>
  </personFlow>
</routes>"""


def _scramble(tmp: Path, end: int = 900, walk_end: int = 400) -> Path:
    """One crossing with sidewalks and crossings, run by a program in which people cross only
    in a phase of their own (every vehicle red): no vehicle queue ever asks for it."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "n.nod.xml").write_text(NODES)
    (tmp / "e.edg.xml").write_text(EDGES)
    subprocess.run([sumo_tool("netconvert"), "-n", "n.nod.xml", "-e", "e.edg.xml",
                    "-o", "net.net.xml", "--no-turnarounds", "true", "--tls.yellow.time", "3",
                    "--sidewalks.guess", "true", "--crossings.guess", "true"],
                   cwd=tmp, check=True, capture_output=True)
    root = ET.parse(tmp / "net.net.xml").getroot()
    walk = {int(c.get("linkIndex", "-1")) for c in root.iter("connection")
            if c.get("tl") == "C" and c.get("from", "").startswith(":")}
    logic = root.find("tlLogic[@id='C']")
    assert logic is not None and walk
    states = [p.get("state", "") for p in logic.iter("phase")]
    n = len(states[0])

    def veh(state: str) -> str:  # the crossings red in the vehicles' phases
        return "".join("r" if k in walk else c for k, c in enumerate(state))

    greens = [veh(s) for s in states if "G" in veh(s) and "y" not in s]
    phases = []
    for g in dict.fromkeys(greens):
        phases.append((30, g))
        phases.append((3, "".join("y" if c in "Gg" else c for c in g)))
    phases.append((15, "".join("G" if k in walk else "r" for k in range(n))))
    phases.append((3, "".join("r" for _ in range(n))))
    (tmp / "scramble.add.xml").write_text(
        '<additional><tlLogic id="C" type="static" programID="scramble" offset="0">'
        + "".join(f'<phase duration="{d}" state="{s}"/>' for d, s in phases)
        + "</tlLogic></additional>")
    (tmp / "routes.rou.xml").write_text(ROUTES.format(end=end, walk_end=walk_end))
    cfg = tmp / "walk.sumocfg"
    cfg.write_text('<configuration><input><net-file value="net.net.xml"/>'
                   '<route-files value="routes.rou.xml"/>'
                   '<additional-files value="scramble.add.xml"/></input>'
                   f'<time><begin value="0"/><end value="{end}"/></time></configuration>')
    return cfg


def _longest_walk_wait(cfg: Path, ctl: Any, out: Path) -> tuple[float, int]:
    waits: dict[str, float] = {}

    def watch(conn: Any, now: float) -> None:
        for p in conn.person.getIDList():
            waits[p] = max(waits.get(p, 0.0), conn.person.getWaitingTime(p))

    simulate(cfg, ctl, out, on_step=watch)
    arrived = sum(1 for el in ET.parse(out).getroot().iter("personinfo")
                  if all(float(w.get("arrival", "-1") or -1) >= 0 for w in el.iter("walk")))
    return max(waits.values(), default=0.0), arrived


def test_crossings_are_found_and_people_waiting_there_are_served(tmp_path: Path,
                                                                 discovered: Any) -> None:
    cfg = _scramble(tmp_path / "s")
    (inter,) = discovered(cfg)
    # the crossings' links run from walking areas; no vehicle lane list holds an internal lane
    assert inter.crossings and all(a.startswith(":") and b.startswith(":")
                                   for pairs in inter.crossings.values() for a, b in pairs)
    assert not any(lane.startswith(":") for lane in inter.in_lanes + inter.out_lanes)
    assert all(inter.connections(k) == [] for k in inter.crossings)
    assert len(inter.greens) == 3  # two for vehicles, one for people

    guarded, got = _longest_walk_wait(cfg, DelayPressure(), tmp_path / "a.xml")
    starved, got_none = _longest_walk_wait(cfg, DelayPressure(max_red=0), tmp_path / "b.xml")
    # the guard serves them within max_red and the next decision and yellow (10 + 3 s)
    assert guarded <= 60 + 13 + 1, guarded
    assert got >= 10
    # without it the people's phase has no queue to ask for it: they wait far longer
    assert starved > 2 * guarded and got_none < got
    # queue clearance (tuned's `actuated` candidate) skips greens without a vehicle queue:
    # the same guard brings the people's turn round
    clearing = make("tuned", {"actuated": True})
    assert isinstance(clearing, GuardedActuated) and clearing.weights() == {"actuated": True}
    waited, crossed = _longest_walk_wait(cfg, clearing, tmp_path / "c.xml")
    assert waited <= 60 + 13 + 1 and crossed >= got - 1
    starved, _ = _longest_walk_wait(cfg, GuardedActuated(max_red=0), tmp_path / "d.xml")
    assert starved > 2 * waited


def test_network_with_crossings_runs_every_controller(tmp_path: Path) -> None:
    cfg = _scramble(tmp_path / "s", end=300, walk_end=200)
    for name in ("actuated", "maxpressure", "maxpressure-guard", "delaypressure"):
        res = simulate(cfg, make(name), tmp_path / f"{name}.xml")
        assert res.decisions > 0


CROSS_NODES = """<nodes>
  <node id="W" x="-150" y="0"/><node id="C" x="0" y="0" type="traffic_light"/>
  <node id="E" x="150" y="0"/><node id="N" x="0" y="150"/><node id="S" x="0" y="-150"/>
</nodes>"""
CROSS_EDGES = "<edges>" + "".join(
    f'<edge id="{a}{b}" from="{a}" to="{b}" numLanes="1" speed="11.1"/>'
    for a, b in (("W", "C"), ("C", "W"), ("E", "C"), ("C", "E"), ("N", "C"), ("C", "N"),
                 ("S", "C"), ("C", "S"))) + "</edges>"
# left turners from both directions wait inside the junction for a gap in heavy oncoming
# traffic; people cross every arm
CROSS_ROUTES = """<routes>
  <vType id="car" vClass="passenger"/>
  <flow id="wn" type="car" begin="0" end="600" vehsPerHour="300" from="WC" to="CN"/>
  <flow id="ew" type="car" begin="0" end="600" vehsPerHour="700" from="EC" to="CW"/>
  <flow id="es" type="car" begin="0" end="600" vehsPerHour="300" from="EC" to="CS"/>
  <flow id="we" type="car" begin="0" end="600" vehsPerHour="700" from="WC" to="CE"/>
  <flow id="ns" type="car" begin="0" end="600" vehsPerHour="400" from="NC" to="CS"/>
  <flow id="sn" type="car" begin="0" end="600" vehsPerHour="400" from="SC" to="CN"/>
  <personFlow id="p1" begin="0" end="600" period="8"><walk from="NC" to="CE"/></personFlow>
  <personFlow id="p2" begin="0" end="600" period="8"><walk from="SC" to="CW"/></personFlow>
  <personFlow id="p3" begin="0" end="600" period="8"><walk from="EC" to="CS"/></personFlow>
  <personFlow id="p4" begin="0" end="600" period="8"><walk from="WC" to="CN"/></personFlow>
</routes>"""


def _crossroads(tmp: Path, people: bool = True) -> Path:
    """A four-arm crossing whose own program gives each crossing green with the traffic
    beside it, so the turners of one green must cross the people of the next."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "n.nod.xml").write_text(CROSS_NODES)
    (tmp / "e.edg.xml").write_text(CROSS_EDGES)
    subprocess.run([sumo_tool("netconvert"), "-n", "n.nod.xml", "-e", "e.edg.xml",
                    "-o", "net.net.xml", "--no-turnarounds", "true",
                    "--sidewalks.guess", "true", "--crossings.guess", "true"],
                   cwd=tmp, check=True, capture_output=True)
    routes = CROSS_ROUTES if people else "\n".join(
        line for line in CROSS_ROUTES.splitlines() if "personFlow" not in line)
    (tmp / "routes.rou.xml").write_text(routes)
    cfg = tmp / "cross.sumocfg"
    cfg.write_text('<configuration><input><net-file value="net.net.xml"/>'
                   '<route-files value="routes.rou.xml"/></input>'
                   '<time><begin value="0"/><end value="700"/></time></configuration>')
    return cfg


def _walk_greens(cfg: Path, inter: Any, timing: Timing, out: Path) -> tuple[int, int]:
    """(crossing greens, of which shown while a vehicle that crosses it was inside)."""
    busy: dict[int, bool] = {}
    before: dict[str, str] = {}
    count = [0, 0]

    def watch(conn: Any, now: float) -> None:
        state = conn.trafficlight.getRedYellowGreenState(inter.id)
        prev = before.get("s", state)
        for k in inter.crossings:
            if state[k] in "Gg" and prev[k] not in "Gg":  # set in the previous step
                count[0] += 1
                count[1] += busy.get(k, False)
        before["s"] = state
        # what the twin sees this step, before it sets the lights
        for k in inter.crossings:
            busy[k] = bool(box_clear(conn, inter, frozenset({k})))

    simulate(cfg, make("actuated"), out, timing=timing, on_step=watch)
    return count[0], count[1]


def test_a_crossing_turns_green_only_once_vehicles_that_cross_it_have_left(
        tmp_path: Path, discovered: Any) -> None:
    cfg = _crossroads(tmp_path / "x")
    (inter,) = discovered(cfg)
    # SUMO's conflict matrix: each crossing is crossed by the movements entering or
    # leaving over its arm
    assert set(inter.crossings) <= set(inter.box_foes)
    # ... and at a light with crossings every vehicle link waits for the box too
    assert set(inter.box_foes) == set(range(len(inter.links)))
    greens, early = _walk_greens(cfg, inter, Timing(), tmp_path / "a.xml")
    assert greens >= 20 and early == 0, (greens, early)
    greens_off, early_off = _walk_greens(cfg, inter, Timing(box_wait=0),
                                         tmp_path / "b.xml")
    # without it turners stranded when their green ends meet the next green's people
    assert greens_off >= 20 and early_off >= 3, (greens_off, early_off)


def _with_and_without(cfg: Path, ctl: str, tmp: Path, params: dict[str, Any] | None = None,
                      **kw: Any) -> tuple[TripMetrics, TripMetrics]:
    """The same run with the wait for the box (its default) and without it."""
    out = []
    for wait in (Timing().box_wait, 0.0):
        path = tmp / f"{cfg.parent.name}-{wait}.xml"
        res = simulate(cfg, make(ctl, params), path, timing=Timing(box_wait=wait), **kw)
        out.append(trip_metrics(path, res.end))
    return out[0], out[1]


def test_without_people_vehicles_do_not_wait_for_the_box(tmp_path: Path) -> None:
    """The same crossing with no one walking: nothing slows the vehicles inside the box, so
    the rule holds no vehicle link and the run is the one without it, to the digit."""
    held, free = _with_and_without(_crossroads(tmp_path / "x", people=False), "actuated",
                                   tmp_path)
    assert held.trips > 100 and held == free
    # with people, the vehicle links do wait: the runs differ
    held, free = _with_and_without(_crossroads(tmp_path / "p"), "actuated", tmp_path)
    assert held.delay != free.delay


def _people_grid(tmp: Path) -> Path:
    """SUMO's own tools' 3x3 grid of two-lane streets with sidewalks and signalised
    crossings, half an hour of random cars and people (randomTrips' fixed seed)."""
    tmp.mkdir(parents=True, exist_ok=True)
    subprocess.run([sumo_tool("netgenerate"), "--grid", "--grid.number", "3",
                    "--grid.length", "120", "--default.lanenumber", "2", "--tls.guess",
                    "--sidewalks.guess", "--crossings.guess", "--no-turnarounds",
                    "-o", "net.net.xml"], cwd=tmp, check=True, capture_output=True)
    trips = str(sumo_home() / "tools" / "randomTrips.py")
    env = {**os.environ, "SUMO_HOME": str(sumo_home())}
    for args in (["-p", "1.5", "--validate", "-o", "cars.trips.xml", "-r", "cars.rou.xml"],
                 ["-p", "3", "--pedestrians", "--prefix", "p", "-o", "ped.trips.xml",
                  "-r", "ped.rou.xml"]):
        subprocess.run([sys.executable, trips, "-n", "net.net.xml", "-e", "1800", *args],
                       cwd=tmp, check=True, capture_output=True, env=env)
    cfg = tmp / "run.sumocfg"
    cfg.write_text('<configuration><input><net-file value="net.net.xml"/>'
                   '<route-files value="cars.rou.xml,ped.rou.xml"/></input>'
                   '<time><begin value="0"/><end value="1800"/></time></configuration>')
    return cfg


def test_people_grid_no_longer_locks_up(tmp_path: Path) -> None:
    """On this grid queue clearance locked up for good on seed 3 (no vehicle teleports):
    turners stranded in the box when their green ended met the people of the next green,
    and vehicles of three approaches ended up waiting on each other inside the junction."""
    held, free = _with_and_without(_people_grid(tmp_path / "g"), "tuned", tmp_path,
                                   {"actuated": True}, seed=3, end=3600)
    assert held.throughput == held.trips and held.delay < 80, held
    assert free.throughput < free.trips and free.delay > 3 * held.delay, free
