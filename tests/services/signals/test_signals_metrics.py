"""RESCO's delay on a hand-made tripinfo file; bad files; the bench command end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from maeul.services.signals.bench import cli_bench, format_table, summarise
from maeul.services.signals.metrics import MetricsError, trip_metrics

TRIPINFO = """<tripinfos>
  <tripinfo id="a" depart="10.00" departDelay="2.00" arrival="70.00" duration="60.00"
            waitingTime="5.00" timeLoss="20.00">
    <emissions CO2_abs="1000000.00"/>
  </tripinfo>
  <tripinfo id="b" depart="20.00" departDelay="0.00" arrival="50.00" duration="30.00"
            waitingTime="0.00" timeLoss="4.00">
    <emissions CO2_abs="500000.00"/>
  </tripinfo>
  <tripinfo id="c" depart="90.00" departDelay="1.00" arrival="-1.00" duration="10.00"
            waitingTime="8.00" timeLoss="9.00" vaporized="end">
    <emissions CO2_abs="250000.00"/>
  </tripinfo>
</tripinfos>
"""


def test_resco_delay_counts_unfinished_and_never_inserted(tmp_path: Path) -> None:
    ti = tmp_path / "run.xml"
    ti.write_text(TRIPINFO)
    # d was scheduled at 60 s and still waited for insertion when the run ended at 100 s
    (tmp_path / "run.pending.csv").write_text("id,depart\nd,60.00\n")
    m = trip_metrics(ti, end=100.0)
    assert m.trips == 4 and m.never_inserted == 1 and m.unfinished == 1
    assert m.delay == pytest.approx((22 + 4 + 10 + 40) / 4)
    assert m.trip_time == pytest.approx(100 / 3)
    assert m.waiting_time == pytest.approx(13 / 3)
    assert m.throughput == 2
    assert m.co2_kg == pytest.approx(1.75)


def test_bad_tripinfo_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match="not found"):
        trip_metrics(tmp_path / "none.xml", 100.0)
    broken = tmp_path / "broken.xml"
    broken.write_text("<tripinfos><tripinfo id='a'")
    with pytest.raises(MetricsError, match="not a valid tripinfo"):
        trip_metrics(broken, 100.0)
    lacking = tmp_path / "lacking.xml"
    lacking.write_text("<tripinfos><tripinfo id='a' duration='1'/></tripinfos>")
    with pytest.raises(MetricsError, match="lacks attribute 'timeLoss'"):
        trip_metrics(lacking, 100.0)
    ok = tmp_path / "ok.xml"
    ok.write_text(TRIPINFO)
    (tmp_path / "ok.pending.csv").write_text("vehicle;when\n")
    with pytest.raises(MetricsError, match="expected header"):
        trip_metrics(ok, 100.0)


def _args(net: list[Path], **kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"net": net, "controllers": "fixed,maxpressure,delaypressure",
                               "seeds": 2, "json": True, "workers": 1, "end": 300.0}
    return argparse.Namespace(**(base | kw))


def test_bench_prints_one_json_line_per_controller(crossing: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_bench(None, _args([crossing])) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["controller"] for x in lines] == ["fixed", "maxpressure", "delaypressure"]
    for x in lines:
        assert x["seeds"] == 2 and x["throughput_mean"] > 0 and x["delay_mean"] >= 0
        # decision time per intersection: reading detectors plus choosing, and choosing alone
        assert 0 <= x["choose_us"] <= x["decision_us"] <= x["decision_us_max"]
    assert lines[0]["delay_ratio_fixed"] == 1.0
    assert lines[0]["decision_us"] == 0.0  # the network's own programs decide nothing
    assert all(x["people_mean"] == 0 and x["walk_delay_mean"] == 0 for x in lines)


def test_bench_table_on_a_resco_network(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args([Path("cologne1")], controllers="fixed,maxpressure", seeds=1, json=False,
                 end=25200.0 + 600)
    assert cli_bench(None, args) == 0
    out = capsys.readouterr().out
    assert "cologne1" in out and "26.05" in out  # RESCO's published best, for reference


def test_bench_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_bench(None, _args([tmp_path / "missing.sumocfg"])) == 2
    assert "not found" in capsys.readouterr().err
    assert cli_bench(None, _args([Path("cologne1")], controllers="fixed,oracle")) == 2
    assert "unknown controller 'oracle'" in capsys.readouterr().err
    assert cli_bench(None, _args([Path("cologne1")], seeds=0)) == 2


def test_people_on_foot_are_counted_apart_from_vehicles(tmp_path: Path) -> None:
    ti = tmp_path / "walk.xml"
    ti.write_text(TRIPINFO.replace("</tripinfos>", """
  <personinfo id="p1" depart="3.00" duration="71.00" waitingTime="12.00" timeLoss="20.00">
    <walk depart="3.00" arrival="74.00" duration="71.00" timeLoss="20.00" waitingTime="12.00"/>
  </personinfo>
  <personinfo id="p2" depart="9.00" duration="40.00" waitingTime="0.00" timeLoss="4.00">
    <walk depart="9.00" arrival="-1.00" duration="40.00" timeLoss="4.00" waitingTime="0.00"/>
  </personinfo>
</tripinfos>"""))
    m = trip_metrics(ti, end=100.0, pending=[])
    # the vehicles' figures are those of the file without people
    assert m.trips == 3 and m.delay == pytest.approx((22 + 4 + 10) / 3)
    assert m.people == 2
    assert m.walk_delay == pytest.approx(12.0) and m.walk_waiting == pytest.approx(6.0)
    # without the totals, the stages that have them are summed (a ride has none)
    staged = tmp_path / "staged.xml"
    staged.write_text("<tripinfos><personinfo id='p' depart='0'>"
                      "<walk timeLoss='3' waitingTime='1'/><ride waitingTime='40'/>"
                      "<walk timeLoss='5' waitingTime='2'/></personinfo></tripinfos>")
    m = trip_metrics(staged, 100.0, pending=[])
    assert m.people == 1 and m.walk_delay == 8.0 and m.walk_waiting == 43.0
    bad = tmp_path / "bad.xml"
    bad.write_text("<tripinfos><personinfo id='p' waitingTime='1' timeLoss='x'/></tripinfos>")
    with pytest.raises(MetricsError, match="personinfo 'p' has timeLoss='x'"):
        trip_metrics(bad, 100.0, pending=[])


def test_table_shows_people_only_where_people_walk() -> None:
    row = {"net": "ped.sumocfg", "controller": "fixed", "seed": 0, "delay": 60.0,
           "trip_time": 90.0, "waiting_time": 30.0, "throughput": 100, "co2_kg": 5.0,
           "people": 0, "walk_delay": 0.0, "decision_us": 0.0, "choose_us": 0.0}
    cars = format_table(summarise([row, row | {"seed": 1}]))
    assert "walk delay" not in cars and "people" not in cars
    walking = format_table(summarise([row | {"people": 40, "walk_delay": 20.0},
                                      row | {"seed": 1, "people": 40, "walk_delay": 30.0}]))
    assert "walk delay s" in walking.splitlines()[0]
    assert walking.splitlines()[2].rstrip().endswith("40      25.0 ± 7.1")
