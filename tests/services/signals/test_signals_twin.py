"""The twin: discovery, upstream lane extension, bad scenarios, emergency priority."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maeul.services.signals.controllers import MaxPressure
from maeul.services.signals.runner import simulate
from maeul.services.signals.twin import (
    TwinError,
    is_green_phase,
    read_config,
    resolve_config,
)


def test_discovers_phases_lanes_and_extends_short_entry_lane(crossing: Path,
                                                            discovered: Any) -> None:
    (inter,) = discovered(crossing)
    assert inter.id == "C"
    assert len(inter.greens) == 2
    assert all(is_green_phase(inter.states[g]) for g in inter.greens)
    assert any("y" in s for s in inter.states)  # the network's own yellows exist
    assert set(inter.in_lanes) == {"AC_0", "NC_0"}
    assert set(inter.out_lanes) == {"CE_0", "CS_0"}
    # AC is about a metre long: its detector continues onto WA, up to 75 m in all
    segs = inter.detect["AC_0"]
    assert [s.lane for s in segs] == ["AC_0", "WA_0"]
    import sumolib

    net = sumolib.net.readNet(str(crossing.parent / "net.net.xml"))
    ac, wa = net.getLane("AC_0").getLength(), net.getLane("WA_0").getLength()
    assert ac < 5
    assert segs[1].start == pytest.approx(wa - (75.0 - ac))
    # a long lane needs no extension
    assert [s.lane for s in inter.detect["NC_0"]] == ["NC_0"]


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match="not found"):
        read_config(tmp_path / "nope.sumocfg")
    with pytest.raises(TwinError, match="RESCO network name"):
        resolve_config("atlantis7")
    bad = tmp_path / "bad.sumocfg"
    bad.write_text("<configuration><input></input>")
    with pytest.raises(TwinError, match="not a valid SUMO configuration"):
        read_config(bad)
    nonet = tmp_path / "nonet.sumocfg"
    nonet.write_text("<configuration><input/></configuration>")
    with pytest.raises(TwinError, match="no net-file"):
        read_config(nonet)


def test_config_without_traffic_lights_is_refused(make_scenario: Any, tmp_path: Path) -> None:
    cfg = make_scenario(ctype="priority", end=60)
    with pytest.raises(TwinError, match="no traffic lights"):
        simulate(cfg, MaxPressure(), tmp_path / "ti.xml")


def test_resco_names_resolve() -> None:
    assert resolve_config("cologne1").name == "cologne1.sumocfg"
    cfg = read_config("cologne1")
    assert (cfg.begin, cfg.end) == (25200.0, 28800.0)


def test_emergency_vehicle_gets_green(make_scenario: Any, tmp_path: Path) -> None:
    # heavy west-east traffic keeps max-pressure on that green; the ambulance comes from north
    extra = ('<vehicle id="amb" type="ambulance" depart="200" departSpeed="max">'
             '<route edges="NC CS"/></vehicle>')
    cfg = make_scenario(end=400, we=1200, ns=30, extra=extra)
    reasons: list[tuple[str, int, str]] = []
    seen: dict[str, float] = {}

    def watch(conn: Any, now: float) -> None:
        if "amb" in conn.vehicle.getIDList() and conn.vehicle.getRoadID("amb") == "CS":
            seen.setdefault("cross", now)

    simulate(cfg, MaxPressure(), tmp_path / "ti.xml",
             on_plan_change=lambda t, p, r: reasons.append((t, p, r)), on_step=watch)
    assert any(r == "emergency" for _, _, r in reasons)
    with_priority = seen["cross"] - 200
    free = make_scenario(end=400, we=1200, ns=30, extra=extra)
    seen.clear()
    simulate(free, MaxPressure(), tmp_path / "ti2.xml", emergency=False, on_step=watch)
    without = seen["cross"] - 200
    # 300 m at up to 20 m/s: with priority it is not held at the red
    assert _amb_wait(tmp_path / "ti.xml") == 0.0
    assert _amb_wait(tmp_path / "ti2.xml") > 0.0
    assert with_priority < without


def _amb_wait(path: Path) -> float:
    import xml.etree.ElementTree as ET

    for el in ET.parse(path).getroot().iter("tripinfo"):
        if el.get("id") == "amb":
            return float(el.get("waitingTime", "nan"))
    raise AssertionError("ambulance trip missing")


def test_scenario_that_sumo_refuses_is_a_clear_error(make_scenario: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """SUMO's own errors (a route on an edge the network lacks, a missing additional file)
    reach the bench as one line and exit code 2, also from worker processes, whose libsumo
    exceptions cannot be sent back as they are."""
    import argparse

    from maeul.services.signals.bench import cli_bench

    bad = make_scenario(end=120, extra='<vehicle id="lost" depart="5"><route edges="NC XX"/>'
                                       '</vehicle>')
    args = argparse.Namespace(net=[str(bad)], controllers="fixed,maxpressure", seeds=1,
                              json=True, workers=2, end=None, seed_start=0,
                              tuning_dir=tmp_path / "tuned", tuning_budget=30.0)
    assert cli_bench(None, args) == 2
    err = capsys.readouterr().err
    assert err.startswith("maeul signals bench: ") and "XX" in err
    assert "Traceback" not in err and "pickle" not in err
    noadd = make_scenario(end=120)
    text = noadd.read_text().replace("</input>", '<additional-files value="gone.add.xml"/>'
                                                 "</input>")
    noadd.write_text(text)
    with pytest.raises(TwinError, match="additional file not found: gone.add.xml"):
        read_config(noadd)


def test_bench_and_tune_refuse_a_network_without_lights_before_simulating(
        make_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from maeul.services.signals import bench
    from maeul.services.signals.tuning import cli_tune
    from maeul.services.signals.twin import require_lights

    cfg = make_scenario(ctype="priority", end=60)
    ran: list[object] = []
    monkeypatch.setattr(bench, "run_jobs", lambda jobs, workers: ran.append(jobs) or [])
    args = argparse.Namespace(net=[str(cfg)], controllers="fixed,tuned", seeds=1, json=True,
                              workers=1, end=None, seed_start=0, tuning_dir=tmp_path / "t",
                              tuning_budget=30.0)
    assert bench.cli_bench(None, args) == 2
    assert "no traffic lights" in capsys.readouterr().err
    assert cli_tune(None, args) == 2
    assert "no traffic lights" in capsys.readouterr().err
    assert ran == []  # refused before any simulation, tuning's included
    lit = make_scenario(end=60)
    assert require_lights(lit).path == lit
    (lit.parent / "net.net.xml").write_text("<net><edge id='a'")
    with pytest.raises(TwinError, match="not a valid SUMO network"):
        require_lights(lit)
