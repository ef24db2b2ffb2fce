"""The `tuned` controller: weights chosen per network by simulation, cached by file content."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from maeul.services.signals import bench, tuning
from maeul.services.signals.bench import cli_bench
from maeul.services.signals.controllers import DelayPressure, make
from maeul.services.signals.tuning import (
    check_params,
    cli_tune,
    load,
    tune_many,
    tuned_controller,
)

# ignoring approaching and long-waiting vehicles (plain halted counts): on the crossing about
# 1.2 s worse than the default weights on every seed
GOOD, BAD = {"out": 1.0}, {"out": 1.0, "moving": 0.0, "wait": 0.0}


def test_parameters_are_checked() -> None:
    assert check_params({"out": 0, "switch": 3, "gate": True}) == {
        "out": 0.0, "switch": 3.0, "gate": True}
    for bad in ({"speed": 1.0}, {"out": -1.0}, {"out": math.inf}, {"out": math.nan},
                {"out": "0"}, {"switch": True}, {"gate": 1}, {"gate": "yes"}):
        with pytest.raises(ValueError):
            check_params(bad)  # type: ignore[arg-type]
    c = make("tuned", {"out": 0.0, "switch": 3.0, "gate": True})
    assert isinstance(c, DelayPressure) and c.name == "tuned"
    assert (c.out, c.switch, c.gate, c.moving) == (0.0, 3.0, True, DelayPressure().moving)
    assert make("tuned") == DelayPressure(name="tuned")  # no tuning: the default weights
    with pytest.raises(ValueError, match="takes no parameters"):
        make("maxpressure", {"out": 0.0})


def test_tuning_picks_the_lowest_mean_delay_and_caches_it(
        make_scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cfg = make_scenario(end=400)
    cache = tmp_path / "tuned"
    found = tune_many([str(cfg)], workers=1, cache_dir=cache, seeds=(100, 101),
                      candidates=(BAD, GOOD))
    t = found[str(cfg)]
    assert [c["params"] for c in t.candidates] == [BAD, GOOD]
    means = [c["mean"] for c in t.candidates]
    for c in t.candidates:
        assert len(c["delays"]) == 2 and c["mean"] == pytest.approx(sum(c["delays"]) / 2, abs=0.01)
    assert means[1] < means[0] - 0.5
    assert t.best == GOOD
    # the same delays as a bench run of those weights on those seeds
    again = bench.run_one((str(cfg), "tuned", 101, None, GOOD))
    assert again["delay"] == pytest.approx(t.candidates[1]["delays"][1], abs=0.01)

    # what the live service runs as `tuned`: the cached weights, or the defaults untuned
    assert tuned_controller(cfg, cache).weights() == {"out": 1.0, "switch": 0.0, "gate": False}
    assert tuned_controller(cfg, tmp_path / "none") == DelayPressure(name="tuned")

    files = list(cache.glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["best"] == GOOD

    def no_runs(*_a: object, **_k: object) -> None:
        raise AssertionError("a cached tuning ran simulations again")

    monkeypatch.setattr(bench, "run_jobs", no_runs)
    cached = tune_many([str(cfg)], workers=1, cache_dir=cache, seeds=(100, 101),
                       candidates=(BAD, GOOD))
    assert cached[str(cfg)].best == GOOD and cached[str(cfg)].candidates == t.candidates
    # other seeds or candidates, or a changed route file: not the cached answer
    assert load(cfg, cache, (100,), (BAD, GOOD)) is None
    assert load(cfg, cache, (100, 101), (GOOD,)) is None
    routes = cfg.parent / "routes.rou.xml"
    routes.write_text(routes.read_text().replace("</routes>", "<!-- changed --></routes>"))
    assert load(cfg, cache, (100, 101), (BAD, GOOD)) is None
    # a corrupt cache file is ignored, not trusted
    routes.write_text(routes.read_text().replace("<!-- changed -->", ""))
    files[0].write_text('{"network": "x", "best": {"out": -5}}')
    assert load(cfg, cache, (100, 101), (BAD, GOOD)) is None
    doc = cached[str(cfg)].as_dict() | {"best": {"out": -5}}  # altered by hand
    files[0].write_text(json.dumps(doc))
    assert load(cfg, cache, (100, 101), (BAD, GOOD)) is None
    files[0].write_text(json.dumps(doc | {"candidates": "x"}))
    assert load(cfg, cache, (100, 101), (BAD, GOOD)) is None


def _bench_args(net: list[Path], tmp: Path, **kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"net": net, "controllers": "delaypressure,tuned", "seeds": 1,
                               "json": True, "workers": 1, "end": None, "seed_start": 0,
                               "tuning_dir": tmp / "tuned"}
    return argparse.Namespace(**(base | kw))


def test_bench_tunes_first_and_keeps_report_seeds_apart(
        make_scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    cfg = make_scenario(end=300)
    monkeypatch.setattr(tuning, "CANDIDATES", (GOOD, BAD))
    monkeypatch.setattr(tuning, "TUNING_SEEDS", (100,))
    assert cli_bench(None, _bench_args([cfg], tmp_path)) == 0
    captured = capsys.readouterr()
    assert "tuning 1 network(s): 2 candidates x 1 seeds" in captured.err
    lines = [json.loads(x) for x in captured.out.splitlines()]
    assert [x["controller"] for x in lines] == ["delaypressure", "tuned"]
    assert lines[1]["params"] == GOOD and "params" not in lines[0]
    # a report on the usual tuning seeds: the weights are chosen on the seeds after its own
    assert cli_bench(None, _bench_args([cfg], tmp_path, seed_start=99, seeds=2)) == 0
    captured = capsys.readouterr()
    assert "tuning on seeds 101 instead" in captured.err
    assert [json.loads(x)["seeds"] for x in captured.out.splitlines()] == [2, 2]
    cached = [json.loads(f.read_text()) for f in (tmp_path / "tuned").glob("*.json")]
    assert sorted(c["seeds"] for c in cached) == [[100], [101]]
    assert tuning.tuning_seeds(range(0, 5)) is None
    assert tuning.tuning_seeds(range(100, 105)) == (105,)


def test_tune_command_prints_the_choice(make_scenario, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    cfg = make_scenario(end=300)
    monkeypatch.setattr(tuning, "CANDIDATES", (BAD, GOOD))
    monkeypatch.setattr(tuning, "TUNING_SEEDS", (100,))
    args = argparse.Namespace(net=[cfg], workers=1, end=None, tuning_dir=tmp_path / "t",
                              json=False)
    assert cli_tune(None, args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("cross: seeds 100")
    assert any(line.endswith("<- chosen") and "moving" not in line for line in out)
    assert json.loads(out[-1])["best"] == GOOD
    bad = argparse.Namespace(net=[tmp_path / "missing.sumocfg"], workers=1, end=None,
                             tuning_dir=tmp_path / "t", json=True)
    assert cli_tune(None, bad) == 2
    assert "not found" in capsys.readouterr().err


def test_a_tie_keeps_the_earlier_candidate(make_scenario) -> None:  # type: ignore[no-untyped-def]
    # one crossing: nothing downstream, so the outgoing-queue weight changes nothing
    cfg = str(make_scenario(end=300))
    half = {"out": 0.5}
    for order in ((GOOD, half), (half, GOOD)):
        t = tune_many([cfg], workers=1, cache_dir=None, seeds=(100,), candidates=order)[cfg]
        assert t.candidates[0]["mean"] == t.candidates[1]["mean"]
        assert t.best == order[0]
