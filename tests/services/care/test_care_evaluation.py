"""``maeul care eval`` end to end on six months of the real UCI household file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from maeul.services.care.evaluation import _StandbyLibrary, cli_eval, evaluate, format_table
from maeul.services.care.readings import Readings, load_readings
from maeul.services.care.slots import summarise


def test_evaluation_on_six_months_of_real_data(uci_six_months: Path) -> None:
    r = load_readings(uci_six_months)
    rep = evaluate(r, events=24, seed=3, name="uci")
    assert rep["readings"] == len(r) and rep["interval_s"] == 60
    assert 3.5 < rep["months_evaluated"] < 4.5  # six months less the 60 days of learning
    fa = rep["false_alerts"]
    for key in ("caution_or_serious_per_household_month", "attention_per_household_month",
                "caution_or_serious_notifications_per_household_month"):
        assert fa[key] >= 0
    det = rep["detection"]
    day, night, both = det["start_06_22"], det["start_22_06"], det["all"]
    assert day["events"] + day["skipped_open_case"] + night["events"] + \
        night["skipped_open_case"] == both["events"] + both["skipped_open_case"] == 24
    assert day["events"] > 0
    for d in (day, both):
        assert d["median_h"] is not None and 0 < d["median_h"] <= 48
        assert 0 <= d["detected_within_12h"] <= d["detected_within_24h"] <= 1
        assert d["attention_median_h"] <= d["median_h"]
    assert set(rep["targets"]["met"]) == {"median", "p95", "false_alerts"}
    # the hindsight bound is taken over the same timed daytime events
    bound = det["bound_06_22"]
    assert bound["events"] == day["events"]
    assert abs(bound["false_cases_allowed"] - rep["months_evaluated"]) < 1
    assert bound["median_h"] is not None and 0 < bound["median_h"] <= bound["p95_h"] <= 48
    text = format_table(rep)
    assert "06:00-22:00" in text and "관심" in text and "hindsight bound" in text
    # the same seed gives the same events
    assert evaluate(r, events=24, seed=3, name="uci")["detection"] == det


def _args(path: Path, **kw: object) -> argparse.Namespace:
    return argparse.Namespace(data=path, events=kw.get("events", 6), seed=1,
                              json=kw.get("json", True))


def test_cli_prints_json(uci_six_months: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_eval(None, _args(uci_six_months)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["data"] == uci_six_months.name and doc["detection"]["events_requested"] == 6
    assert cli_eval(None, _args(uci_six_months, json=False)) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("care eval:") and json.loads(out[-1])["warmup_days"] == 60


def test_cli_refuses_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,power_kw\n2024-01-01 00:00,1\n2024-01-01 00:01,x\n")
    assert cli_eval(None, _args(bad)) == 2
    assert "line 3, column power_kw" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    short.write_text("timestamp,power_kw\n" + "".join(
        f"2024-01-{d:02d} {h:02d}:00,0.5\n" for d in range(1, 29) for h in range(24)))
    assert cli_eval(None, _args(short)) == 2
    assert "need at least 67 days" in capsys.readouterr().err


def test_injected_standby_leaves_out_days_without_a_quiet_hour() -> None:
    """The incident leaves the home at its standby level: the standby hours of a day that had
    no quiet hour (busy all day, a heater on) are not copied into the injected trace."""
    t = np.arange(0, 60 * 86400, 60, dtype=np.int64)
    hour = (t // 3600) % 24
    day = t // 86400
    # 0.2 kW at night, 0.6 kW by day; every fifth day 1.5 kW around the clock
    kw = np.where((hour >= 1) & (hour < 6), 0.2, 0.6)
    kw = np.where(day % 5 == 2, 1.5, kw)
    r = Readings(t, kw.astype(np.float64))
    lib = _StandbyLibrary(r, summarise(r))
    assert lib.hours.size == 60 * 3  # each day's three quietest hours, busy days included
    assert np.isclose(lib.mean.max(), 1.5) and np.isclose(lib.mean.min(), 0.2)
    rng = np.random.default_rng(0)
    trace = lib.trace(30 * 86400, 48, rng)
    assert len(trace) == 48 * 60
    assert np.allclose(trace.kw, 0.2)  # no busy day's hour among 48
    # a window with fewer than ten hours (three days of data): the whole library is the pool
    busy = Readings(t[: 3 * 1440], np.full(3 * 1440, 1.5))  # three days, all busy
    lib2 = _StandbyLibrary(busy, summarise(busy))
    assert len(lib2.trace(86400, 5, rng)) == 5 * 60
