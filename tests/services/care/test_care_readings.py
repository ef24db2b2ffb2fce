"""The readings loader on the real UCI file (both layouts) and on bad files."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maeul.services.care.readings import ReadingsError, load_readings, to_datetime, to_seconds


def _uci_original(lines: list[str]) -> str:
    """The same rows in the original UCI layout: ';', d/m/yyyy dates, '?' for missing."""
    out = ["Date;Time;Global_active_power;Global_reactive_power;Voltage;Global_intensity;"
           "Sub_metering_1;Sub_metering_2;Sub_metering_3\n"]
    for i, line in enumerate(lines[1:]):
        stamp, *vals = line.rstrip("\n").split(",")
        d = datetime.fromisoformat(stamp)
        if i % 1000 == 7:
            vals = ["?"] * len(vals)
        out.append(f"{d.day}/{d.month}/{d.year};{d:%H:%M:%S};" + ";".join(vals) + "\n")
    return "".join(out)


def test_real_slice_in_every_layout(uci_path: Path, uci_head: Any, tmp_path: Path) -> None:
    lines = list(uci_head(uci_path, 20_000))
    plain = tmp_path / "slice.csv"
    plain.write_text("".join(lines))
    gz = tmp_path / "slice.csv.gz"
    gz.write_bytes(gzip.compress("".join(lines).encode()))
    uci = tmp_path / "slice_uci.txt"
    uci.write_text(_uci_original(lines))
    a, b, c = load_readings(plain), load_readings(gz), load_readings(uci)
    assert len(a) == len(b) == len(c) == 20_000
    assert to_datetime(a.t[0]) == datetime(2006, 12, 16, 17, 24)
    assert a.kw[:3].tolist() == [4.216, 5.36, 5.374]
    assert np.array_equal(a.t, c.t) and np.array_equal(a.kw, b.kw)
    missing = np.isnan(c.kw)
    assert missing.sum() == 20 and np.array_equal(c.kw[~missing], a.kw[~missing])
    assert a.interval_s() == 60


def test_whole_real_file(uci_path: Path) -> None:
    r = load_readings(uci_path)
    assert len(r) == 2_075_259
    assert to_datetime(r.t[-1]) == datetime(2010, 11, 26, 21, 2)
    assert not np.isnan(r.kw).any() and bool(np.all(np.diff(r.t) > 0))


def test_simple_layout(tmp_path: Path) -> None:
    p = tmp_path / "simple.csv"
    p.write_text("timestamp,power_kw\n"
                 "2024-03-01T07:15:00+09:00,0.25\n"
                 "2024-03-01 07:30,\n"
                 "2024-03-01T07:00:00Z,1.5\n")
    r = load_readings(p)
    assert [to_datetime(t) for t in r.t] == [datetime(2024, 3, 1, 7, 0),
                                             datetime(2024, 3, 1, 7, 15),
                                             datetime(2024, 3, 1, 7, 30)]
    assert r.kw[0] == 1.5 and np.isnan(r.kw[2])  # sorted by time, wall-clock kept
    assert to_seconds(datetime(2024, 3, 1, 7, 15)) == r.t[1]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("timestamp,power_kw\n", "no readings"),
    ("when,power_kw\n2024-01-01 00:00,1\n", "no time column"),
    ("timestamp,temperature\n2024-01-01 00:00,1\n", "no power column"),
    ("timestamp,power_kw\n2024-01-01 00:00,1\n2024-13-01 00:15,1\n", "line 3, column timestamp"),
    ("timestamp,power_kw\n2024-01-01 00:00,1\nyesterday,1\n", "line 3"),
    ("timestamp,power_kw\n2024-01-01 00:00,1\n2024-01-01 00:15\n", "line 3 has 1 fields"),
    ("timestamp,power_kw\n2024-01-01 00:00,1e9\n", "outside 0..1000 kW"),
    ("timestamp,power_kw\n2024-01-01 00:00,-0.5\n", "outside 0..1000 kW"),
    ("timestamp,power_kw\n2024-01-01 00:00,inf\n", "outside 0..1000 kW"),
    ("timestamp,power_kw\n2024-01-01 00:00,1.2 kW\n", "not a number"),
    ("Date;Time;Global_active_power\n31/04/2007;00:00:00;1\n", "line 2, column Date"),
    ("Date;Time;Global_active_power\n1/4/2007;25:00:00;1\n", "line 2, column Time"),
    ("just one column\n1\n", "not a header"),
])
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ReadingsError, match=message):
        load_readings(p)


def test_missing_and_corrupt_gzip(tmp_path: Path) -> None:
    with pytest.raises(ReadingsError, match="no such file"):
        load_readings(tmp_path / "nope.csv")
    p = tmp_path / "broken.csv.gz"
    p.write_bytes(gzip.compress(b"timestamp,power_kw\n2024-01-01 00:00,1\n" * 50)[:60])
    with pytest.raises(ReadingsError, match="unreadable"):
        load_readings(p)
