"""Readings files in other layouts: other units, energy per reading, meter registers, Unix
times and time zones, several homes in one file; and ``maeul care eval`` on such a file."""

from __future__ import annotations

import argparse
import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maeul.services.care.evaluation import cli_eval
from maeul.services.care.readings import (
    CsvSpec,
    ReadingsError,
    load_households,
    load_readings,
    to_datetime,
    to_seconds,
)


def _write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _stamps(r: Any) -> list[datetime]:
    return [to_datetime(t) for t in r.t]


@pytest.mark.parametrize(("header", "values", "unit", "kw"), [
    ("power_w", "250,1500", "W", [0.25, 1.5]),
    ("Watts", "250,1500", "W", [0.25, 1.5]),
    ("power (kW)", "0.25,1.5", "kW", [0.25, 1.5]),
    ("power", "250,1500", "W", [0.25, 1.5]),  # no unit in the name: read from the values
    ("power", "0.25,1.5", "kW", [0.25, 1.5]),
    ("energy_wh", "62.5,375", "Wh", [0.25, 1.5]),  # per 15-minute reading
    ("kWh", "0.0625,0.375", "kWh", [0.25, 1.5]),
])
def test_units(tmp_path: Path, header: str, values: str, unit: str, kw: list[float]) -> None:
    a, b = values.split(",")
    p = _write(tmp_path, f"timestamp,{header}\n2024-01-01 00:00,{a}\n2024-01-01 00:15,{b}\n"
                         f"2024-01-01 00:30,{a}\n")
    homes, info = load_households(p)
    assert info.unit == unit and info.power_col == header
    assert np.allclose(homes[""].kw, [kw[0], kw[1], kw[0]])


def test_unit_given_overrides_the_name_and_is_checked(tmp_path: Path) -> None:
    p = _write(tmp_path, "timestamp,value\n2024-01-01 00:00,300\n2024-01-01 00:15,400\n")
    assert np.allclose(load_readings(p).kw, [0.3, 0.4])  # read as W from the values
    assert np.allclose(load_readings(p, CsvSpec(unit="Wh")).kw, [1.2, 1.6])
    with pytest.raises(ReadingsError, match="unknown unit 'MW'"):
        load_readings(p, CsvSpec(unit="MW"))
    # 300 kWh in a quarter hour is 1,200 kW: not a household
    with pytest.raises(ReadingsError, match="line 2, column value: 300 kWh is 1200 kW"):
        load_readings(p, CsvSpec(unit="kWh"))


def test_reactive_power_and_sub_meters_are_not_taken_for_power(tmp_path: Path) -> None:
    p = _write(tmp_path, "timestamp,reactive_power_kw,sub_metering_1,load_w\n"
                         "2024-01-01 00:00,0.1,5,800\n")
    homes, info = load_households(p)
    assert info.power_col == "load_w" and homes[""].kw.tolist() == [0.8]


def test_half_hourly_energy_of_several_homes(tmp_path: Path) -> None:
    """London's smart-meter layout: a home id, kWh per half hour, times with 7 decimals."""
    rows = ["LCLid,stdorToU,DateTime,KWH/hh (per half hour) "]
    for home, base in (("MAC000002", 0.1), ("MAC000003", 0.5)):
        for k in range(4):
            rows.append(f"{home},Std,2012-10-12 0{k // 2}:{30 * (k % 2):02d}:00.0000000,"
                        f"{base * (k + 1):.3f}")
    rows.insert(3, "MAC000003,Std,2012-10-12 02:00:00.0000000,Null")
    p = _write(tmp_path, "\n".join(rows) + "\n")
    homes, info = load_households(p)
    assert sorted(homes) == ["MAC000002", "MAC000003"] and info.household_col == "LCLid"
    assert info.unit == "kWh" and info.interval_s == {"MAC000002": 1800, "MAC000003": 1800}
    r = homes["MAC000002"]
    # each half hour is held over its two quarter hours, as mean power (kWh / 0.5 h)
    assert _stamps(r)[:3] == [datetime(2012, 10, 12, 0, 0), datetime(2012, 10, 12, 0, 15),
                              datetime(2012, 10, 12, 0, 30)]
    assert np.allclose(r.kw, [0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8])
    assert np.isnan(homes["MAC000003"].kw[-2:]).all()  # "Null" is a missing reading
    one = load_readings(p, CsvSpec(household="MAC000003"))
    assert np.allclose(one.kw[:2], [1.0, 1.0])
    with pytest.raises(ReadingsError, match="2 households in column LCLid"):
        load_readings(p)
    with pytest.raises(ReadingsError, match="no household 'MAC9'"):
        load_households(p, CsvSpec(household="MAC9"))


def test_unix_times_and_time_zones(tmp_path: Path) -> None:
    # 2024-01-01T00:00Z in seconds and in milliseconds
    for stamp in ("1704067200", "1704067200000"):
        p = _write(tmp_path, f"ts,power_kw\n{stamp},1\n")
        assert _stamps(load_readings(p)) == [datetime(2024, 1, 1, 0, 0)]  # UTC by default
        assert _stamps(load_readings(p, CsvSpec(tz="Asia/Seoul"))) == [datetime(2024, 1, 1, 9)]
    # the clocks go forward in London at 01:00 UTC on 31 March 2024
    p = _write(tmp_path, "timestamp,power_kw\n" + "".join(
        f"2024-03-31T0{m // 60}:{m % 60:02d}:00Z,1\n" for m in (30, 45, 60, 75)))
    assert _stamps(load_readings(p, CsvSpec(tz="Europe/London"))) == [
        datetime(2024, 3, 31, 0, 30), datetime(2024, 3, 31, 0, 45),
        datetime(2024, 3, 31, 2, 0), datetime(2024, 3, 31, 2, 15)]
    assert _stamps(load_readings(p))[2:] == [datetime(2024, 3, 31, 1, 0),
                                             datetime(2024, 3, 31, 1, 15)]  # offset dropped
    with pytest.raises(ReadingsError, match="unknown time zone 'Mars/Base'"):
        load_readings(p, CsvSpec(tz="Mars/Base"))


def test_cumulative_register(tmp_path: Path) -> None:
    rows = ["time,meter_kwh"]
    reg = [100.0, 100.25, 100.5, 100.5, 99.0, 99.25]  # 1 kW, 1 kW, 0, a reset, 1 kW
    for k, v in enumerate(reg):
        rows.append(f"2024-05-01 10:{15 * k % 60:02d}:00".replace("10:", f"{10 + k // 4}:"))
        rows[-1] += f",{v}"
    p = _write(tmp_path, "\n".join(rows) + "\n")
    r = load_readings(p, CsvSpec(cumulative=True))
    assert np.allclose(r.kw[:3], [1.0, 1.0, 0.0])
    assert np.isnan(r.kw[3]) and r.kw[4] == 1.0 and np.isnan(r.kw[5])
    with pytest.raises(ReadingsError, match="register is energy"):
        load_readings(p, CsvSpec(cumulative=True, unit="kW"))


@pytest.mark.parametrize(("text", "spec", "message"), [
    ("timestamp,power_kw\n2024-01-01 00:00,1\n2024-01-01 02:00,1\n2024-01-01 04:00,1\n",
     CsvSpec(), "readings every 2.0 h"),
    ("timestamp,power_kw\n2024-01-01 00:00,1\n", CsvSpec(household="a"),
     "--household needs a household column"),
    ("timestamp,power_kw\n2024-01-01 00:00,1\n", CsvSpec(power_col="watts"),
     "no power column 'watts'"),
    ("timestamp,power_kw\n2024-01-01 00:00,1\n", CsvSpec(time_col="Date+Time"),
     "no time column 'Date'"),
    ("meter_id,timestamp,power_kw\n,2024-01-01 00:00,1\n", CsvSpec(), "no household"),
    ("timestamp,power_w\n2024-01-01 00:00,-5\n", CsvSpec(), "outside 0..1e\\+06 W"),
    ("timestamp,energy\n2024-01-01 00:00,-5\n", CsvSpec(), "outside 0 or more"),
    ("ts,power_kw\n17040672,1\n", CsvSpec(), "line 2, column ts"),
])
def test_bad_layouts(tmp_path: Path, text: str, spec: CsvSpec, message: str) -> None:
    with pytest.raises(ReadingsError, match=message):
        load_households(_write(tmp_path, text), spec)


def test_named_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, "day;clock;house;w_total\n01/02/2024;07:00;A;500\n"
                         "01/02/2024;07:15;A;700\n")
    homes, info = load_households(p, CsvSpec(time_col="day+clock", power_col="w_total",
                                             household_col="house"))
    assert list(homes) == ["A"] and info.unit == "W" and info.time_col == "day+clock"
    assert _stamps(homes["A"]) == [datetime(2024, 2, 1, 7, 0), datetime(2024, 2, 1, 7, 15)]
    assert np.allclose(homes["A"].kw, [0.5, 0.7])


def _eval_args(path: Path, **kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {"data": path, "events": 8, "seed": 2, "json": True,
                            "time_col": None, "power_col": None, "unit": None,
                            "cumulative": False, "household_col": None, "household": None,
                            "tz": None, "workers": 1}
    base.update(kw)
    return argparse.Namespace(**base)


def test_eval_of_several_homes_in_watts(uci_path: Path, uci_head: Any, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Two homes made of real UCI months (Dec 2006 - Mar 2007 and the next 100 days), 15-minute
    means in watts, Unix times in milliseconds, one file; and a home too short to judge."""
    lines = list(uci_head(uci_path, 200 * 1440))[1:]
    t = np.array([to_seconds(datetime.fromisoformat(x.split(",")[0])) for x in lines])
    kw = np.array([float(x.split(",")[1]) for x in lines])
    q = t // 900
    u, inv = np.unique(q, return_inverse=True)
    mean = np.bincount(inv, weights=kw) / np.bincount(inv)
    out = ["home_id,unix_ms,active_power_w"]
    half = u.size // 2
    for k in range(u.size):
        home = "north" if k < half else "south"
        out.append(f"{home},{u[k] * 900 * 1000},{mean[k] * 1000:.1f}")
    for k in range(96 * 10):  # ten days: too short to learn
        out.append(f"tiny,{(u[0] + k) * 900 * 1000},{mean[k] * 1000:.1f}")
    p = tmp_path / "homes.csv.gz"
    p.write_bytes(gzip.compress(("\n".join(out) + "\n").encode()))
    assert cli_eval(None, _eval_args(p)) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["file"] == {"time_column": "unix_ms", "power_column": "active_power_w",
                           "unit": "W", "unit_from": "name", "household_column": "home_id",
                           "households": 3}
    hh = rep["households"]
    assert hh["evaluated"] == 2 and list(hh["skipped"]) == ["tiny"]
    assert "need at least 67 days" in hh["skipped"]["tiny"]
    rows = {r["household"]: r for r in hh["per_home"]}
    assert set(rows) == {"north", "south"}
    assert abs(rep["months_evaluated"] - sum(r["months_evaluated"] for r in rows.values())) < 0.02
    assert rep["interval_s"] == 900 and rep["readings"] == u.size
    det = rep["detection"]["all"]
    assert det["events"] + det["skipped_open_case"] == 16  # 8 per evaluated home
    # the hindsight bound over both homes: their daytime events pooled, no more than one
    # false case a month over the homes' months together
    bound = rep["detection"]["bound_06_22"]
    assert bound["events"] == rep["detection"]["start_06_22"]["events"]
    assert bound["false_cases_allowed"] == int(rep["months_evaluated"])
    assert bound["events"] == 0 or bound["median_h"] is not None
    # one home alone gives that home's own row
    assert cli_eval(None, _eval_args(p, household="south")) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["months_evaluated"] == rows["south"]["months_evaluated"]
    assert "households" not in one and one["detection"]["bound_06_22"]["events"] >= 0
    # a file of only a short home is refused with the reason
    assert cli_eval(None, _eval_args(p, household="tiny")) == 2
    assert "need at least 67 days" in capsys.readouterr().err
