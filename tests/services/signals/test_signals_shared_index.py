"""One signal index that controls connections from several incoming lanes.

On ingolstadt21's light 243641585 index 0 controls four connections from two lanes: discovery
used to keep the first connection of each index, so the second lane's queue was never seen.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from maeul.services.signals.controllers import DelayPressure, MaxPressure
from maeul.services.signals.metrics import trip_metrics
from maeul.services.signals.runner import simulate
from maeul.services.signals.twin import discover, open_sumo, read_config, sumo_tool

CFG = """<configuration>
  <input><net-file value="net.net.xml"/><route-files value="routes.rou.xml"/></input>
  <time><begin value="0"/><end value="600"/></time>
</configuration>"""
NODES = """<nodes>
  <node id="W" x="-300" y="0"/><node id="C" x="0" y="0" type="traffic_light"/>
  <node id="E" x="300" y="0"/><node id="N" x="0" y="300"/><node id="S" x="0" y="-300"/>
</nodes>"""
EDGES = """<edges>
  <edge id="WC" from="W" to="C" numLanes="2" speed="13.9">
    <lane index="0" allow="bus"/>
  </edge>
  <edge id="CE" from="C" to="E" numLanes="2" speed="13.9"/>
  <edge id="NC" from="N" to="C" numLanes="1" speed="13.9"/>
  <edge id="CS" from="C" to="S" numLanes="1" speed="13.9"/>
</edges>"""
CONNECTIONS = """<connections>
  <connection from="WC" to="CE" fromLane="0" toLane="0"/>
  <connection from="WC" to="CE" fromLane="1" toLane="1"/>
  <connection from="NC" to="CS" fromLane="0" toLane="0"/>
</connections>"""
# both lanes of WC on signal index 0; the north approach on index 1
TLS = """<tlLogics>
  <tlLogic id="C" type="static" programID="0" offset="0">
    <phase duration="30" state="Gr"/><phase duration="3" state="yr"/>
    <phase duration="30" state="rG"/><phase duration="3" state="ry"/>
  </tlLogic>
  <connection from="WC" to="CE" fromLane="0" toLane="0" tl="C" linkIndex="0"/>
  <connection from="WC" to="CE" fromLane="1" toLane="1" tl="C" linkIndex="0"/>
  <connection from="NC" to="CS" fromLane="0" toLane="0" tl="C" linkIndex="1"/>
</tlLogics>"""
# west-east cars on the second lane only (the one the first connection does not name; the
# first lane is for buses)
ROUTES = """<routes>
  <vType id="car" vClass="passenger"/>
  <flow id="we" type="car" begin="0" end="{end}" vehsPerHour="400" from="WC" to="CE"
        departLane="1"/>
  <flow id="ns" type="car" begin="0" end="{end}" vehsPerHour="300" from="NC" to="CS"/>
</routes>"""


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("shared")
    for name, text in (("n.nod.xml", NODES), ("e.edg.xml", EDGES),
                       ("c.con.xml", CONNECTIONS), ("t.tll.xml", TLS)):
        (tmp / name).write_text(text)
    subprocess.run([sumo_tool("netconvert"), "-n", "n.nod.xml", "-e", "e.edg.xml",
                    "-x", "c.con.xml", "-i", "t.tll.xml", "-o", "net.net.xml",
                    "--no-turnarounds", "true"], cwd=tmp, check=True, capture_output=True)
    (tmp / "routes.rou.xml").write_text(ROUTES.format(end=600))
    cfg = tmp / "shared.sumocfg"
    cfg.write_text(CFG)
    return cfg


def test_every_lane_of_a_shared_index_is_watched(shared_index: Path) -> None:
    import sumolib

    cfg = read_config(shared_index)
    conn = open_sumo(["-c", str(shared_index), "--no-step-log", "true"])
    try:
        groups = conn.trafficlight.getControlledLinks("C")
        assert {c[0] for c in groups[0]} == {"WC_0", "WC_1"}  # the network is as meant
        net = sumolib.net.readNet(str(cfg.path.parent / cfg.net_files[0]))
        (inter,) = discover(conn, net, 75.0)
    finally:
        conn.close()
    assert set(inter.in_lanes) == {"WC_0", "WC_1", "NC_0"}
    assert set(inter.out_lanes) == {"CE_0", "CE_1", "CS_0"}
    we = next(g for g in range(len(inter.greens)) if inter.green_state(g)[0] == "G")
    assert inter.phase_in[we] == ["WC_0", "WC_1"]
    assert inter.phase_out[we] == ["CE_0", "CE_1"]
    assert inter.phase_links[we] == {"WC_0": ["CE_0"], "WC_1": ["CE_1"]}
    assert inter.connections(0) == [("WC_0", "CE_0"), ("WC_1", "CE_1")]
    assert "WC_1" in inter.detect
    # vehicles inside the junction are counted on both connections' internal lanes
    assert {lane.rsplit("_", 1)[0] for lane in inter.via[0]} == {
        c[2].rsplit("_", 1)[0] for c in groups[0]}
    assert len(inter.via[0]) == 2


@pytest.mark.parametrize("controller", [MaxPressure, DelayPressure])
def test_a_queue_on_the_second_lane_is_served(shared_index: Path, tmp_path: Path,
                                               controller: type) -> None:
    # unseen, the west-east queue had no pressure and (max-pressure) never got its green
    res = simulate(shared_index, controller(), tmp_path / "trips.xml", seed=0)
    m = trip_metrics(res.tripinfo, res.end)
    assert m.throughput > 0.8 * (400 + 300) * 600 / 3600
    assert m.delay < 40
