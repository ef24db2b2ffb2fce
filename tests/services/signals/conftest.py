"""Tiny SUMO scenarios built with netconvert: one signalised crossing with a short entry lane."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("libsumo")
pytest.importorskip("sumolib")

from maeul.services.signals.twin import sumo_tool  # noqa: E402

NODES = """<nodes>
  <node id="W" x="-300" y="0"/><node id="A" x="-1" y="0" type="priority"/>
  <node id="C" x="0" y="0" type="{ctype}"/><node id="E" x="300" y="0"/>
  <node id="N" x="0" y="300"/><node id="S" x="0" y="-300"/>
</nodes>"""
EDGES = """<edges>
  <edge id="WA" from="W" to="A" numLanes="1" speed="13.9"/>
  <edge id="AC" from="A" to="C" numLanes="1" speed="13.9"/>
  <edge id="CE" from="C" to="E" numLanes="1" speed="13.9"/>
  <edge id="NC" from="N" to="C" numLanes="1" speed="13.9"/>
  <edge id="CS" from="C" to="S" numLanes="1" speed="13.9"/>
</edges>"""
ROUTES = """<routes>
  <vType id="car" vClass="passenger"/>
  <vType id="ambulance" vClass="emergency" guiShape="emergency"/>
  <flow id="we" type="car" begin="0" end="{end}" vehsPerHour="{we}" from="WA" to="CE"/>
  <flow id="ns" type="car" begin="0" end="{end}" vehsPerHour="{ns}" from="NC" to="CS"/>
  {extra}
</routes>"""
CFG = """<configuration>
  <input><net-file value="net.net.xml"/><route-files value="routes.rou.xml"/></input>
  <time><begin value="0"/>{end_opt}</time>{extra_cfg}
</configuration>"""
# a 1 m exit lane after the crossing (east), then the road on: the twin must watch past it
SHORT_EXIT_NODES = NODES.replace('<node id="E" x="300" y="0"/>',
                                 '<node id="B" x="1" y="0" type="priority"/>'
                                 '<node id="E" x="300" y="0"/>')
SHORT_EXIT_EDGES = EDGES.replace(
    '<edge id="CE" from="C" to="E" numLanes="1" speed="13.9"/>',
    '<edge id="CB" from="C" to="B" numLanes="1" speed="13.9"/>'
    '<edge id="CE" from="B" to="E" numLanes="1" speed="13.9"/>')


def _netconvert(tmp: Path, nodes: str, edges: str) -> None:
    """tmp/net.net.xml from plain node and edge XML (3 s yellow, no turnarounds)."""
    (tmp / "n.nod.xml").write_text(nodes)
    (tmp / "e.edg.xml").write_text(edges)
    subprocess.run([sumo_tool("netconvert"), "-n", "n.nod.xml", "-e", "e.edg.xml",
                    "-o", "net.net.xml", "--no-turnarounds", "true", "--tls.yellow.time", "3"],
                   cwd=tmp, check=True, capture_output=True)


def build(tmp: Path, ctype: str = "traffic_light", end: int = 600, we: int = 600,
          ns: int = 300, extra: str = "", short_exit: bool = False, cfg_end: bool = True,
          extra_cfg: str = "") -> Path:
    """Write the crossing scenario into tmp and return its .sumocfg."""
    tmp.mkdir(parents=True, exist_ok=True)
    nodes, edges = (SHORT_EXIT_NODES, SHORT_EXIT_EDGES) if short_exit else (NODES, EDGES)
    _netconvert(tmp, nodes.format(ctype=ctype), edges)
    (tmp / "routes.rou.xml").write_text(ROUTES.format(end=end, we=we, ns=ns, extra=extra))
    cfg = tmp / "cross.sumocfg"
    end_opt = f'<end value="{end}"/>' if cfg_end else ""
    cfg.write_text(CFG.format(end_opt=end_opt, extra_cfg=extra_cfg))
    return cfg


@pytest.fixture(scope="session")
def crossing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("crossing"))


@pytest.fixture
def make_scenario(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory: make_scenario(**kw) builds a crossing variant in its own folder."""
    count = iter(range(100))

    def make(**kw: object) -> Path:
        return build(tmp_path / f"s{next(count)}", **kw)  # type: ignore[arg-type]

    return make


# two lights joined by a short link (C1 -> C2), each with a cross street
PAIR_NODES = """<nodes>
  <node id="W" x="-300" y="0"/><node id="C1" x="0" y="0" type="traffic_light"/>
  <node id="C2" x="{gap}" y="0" type="traffic_light"/><node id="E" x="{east}" y="0"/>
  <node id="N1" x="0" y="300"/><node id="S1" x="0" y="-300"/>
  <node id="N2" x="{gap}" y="300"/><node id="S2" x="{gap}" y="-300"/>
</nodes>"""
PAIR_EDGES = """<edges>
  <edge id="WC1" from="W" to="C1" numLanes="1" speed="13.9"/>
  <edge id="C1C2" from="C1" to="C2" numLanes="1" speed="13.9"/>
  <edge id="C2E" from="C2" to="E" numLanes="1" speed="13.9"/>
  <edge id="N1C1" from="N1" to="C1" numLanes="1" speed="13.9"/>
  <edge id="C1S1" from="C1" to="S1" numLanes="1" speed="13.9"/>
  <edge id="N2C2" from="N2" to="C2" numLanes="1" speed="13.9"/>
  <edge id="C2S2" from="C2" to="S2" numLanes="1" speed="13.9"/>
</edges>"""
PAIR_ROUTES = """<routes>
  <vType id="car" vClass="passenger"/>
  <flow id="we" type="car" begin="0" end="{end}" vehsPerHour="{we}" from="WC1" to="C2E"/>
  <flow id="ns1" type="car" begin="0" end="{end}" vehsPerHour="{ns1}" from="N1C1" to="C1S1"/>
  <flow id="ns2" type="car" begin="0" end="{end}" vehsPerHour="{ns2}" from="N2C2" to="C2S2"/>
</routes>"""


def build_pair(tmp: Path, gap: float = 30.0, end: int = 600, we: int = 700, ns1: int = 200,
               ns2: int = 900) -> Path:
    """Two signalised crossings `gap` metres apart: the link between them holds a few cars."""
    tmp.mkdir(parents=True, exist_ok=True)
    _netconvert(tmp, PAIR_NODES.format(gap=gap, east=gap + 300), PAIR_EDGES)
    (tmp / "routes.rou.xml").write_text(PAIR_ROUTES.format(end=end, we=we, ns1=ns1, ns2=ns2))
    cfg = tmp / "pair.sumocfg"
    cfg.write_text(CFG.format(end_opt=f'<end value="{end}"/>', extra_cfg=""))
    return cfg


@pytest.fixture(scope="session")
def light_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pair(tmp_path_factory.mktemp("pair"))


def discover_in(cfg: Path, length: float = 75.0) -> list[Any]:
    """The intersections discovery finds in a scenario (SUMO started and closed again)."""
    import sumolib

    from maeul.services.signals.twin import discover, open_sumo, read_config

    conf = read_config(cfg)
    conn = open_sumo(["-c", str(cfg), "--no-step-log", "true"])
    try:
        net = sumolib.net.readNet(str(conf.path.parent / conf.net_files[0]))
        return discover(conn, net, length)  # type: ignore[no-any-return]
    finally:
        conn.close()


@pytest.fixture(scope="session")
def discovered() -> Any:
    """``discovered(cfg, length=75.0)``: the intersections discovery finds in a scenario."""
    return discover_in
