"""Loading importer snapshots into a hub (load_snapshots) and the ``maeul import`` command."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from maeul.ingest.importers import ImportDataError
from maeul.ingest.load import load_snapshots, run_import

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

PARKING = "https://smartdatamodels.org/dataModel.Parking/"
OFF_STREET = PARKING + "OffStreetParking"
AVAILABLE = PARKING + "availableSpotNumber"
FIRST = 300


def parking_file(data_dir: Path) -> Path:
    path = data_dir / "parking" / "birmingham_parking.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def first_rows(path: Path, n: int) -> list[tuple[datetime, str, int, int]]:
    """The first n rows in the importer's order (by time, stable), read independently."""
    london = ZoneInfo("Europe/London")
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for rec in csv.DictReader(handle):
            local = datetime.strptime(rec["LastUpdated"].strip(), "%Y-%m-%d %H:%M:%S")
            when = local.replace(tzinfo=london).astimezone(UTC)
            rows.append((when, rec["SystemCodeNumber"].strip(), int(rec["Capacity"]),
                         int(rec["Occupancy"])))
    rows.sort(key=lambda r: r[0])
    return rows[:n]


def test_parking_snapshots_become_entities_with_history(client: Any, data_dir: Path) -> None:
    path = parking_file(data_dir)
    stats = load_snapshots(client.services, "parking", path, limit=FIRST, batch=128)
    assert stats.snapshots == FIRST
    assert 0 < stats.entities <= 30

    r = client.get(f"/ngsi-ld/v1/entities?type={OFF_STREET}&options=count&limit=0")
    assert r.status_code == 200, r.text
    assert int(r.headers["NGSILD-Results-Count"]) == stats.entities

    rows = first_rows(path, FIRST)
    code = rows[0][1]
    mine = [r for r in rows if r[1] == code]
    assert len(mine) > 1
    eid = "urn:ngsi-ld:OffStreetParking:birmingham-" + quote(code, safe="-._~")
    hist = client.get(f"/ngsi-ld/v1/temporal/entities/{eid}?lastN=1000").json()
    insts = sorted(hist[AVAILABLE], key=lambda i: i["observedAt"])
    assert len(insts) == len(mine)
    expected = [cap - min(max(occ, 0), cap) for _w, _c, cap, occ in mine]
    assert [i["value"] for i in insts] == expected
    assert [i["observedAt"][:19] for i in insts] == [
        w.strftime("%Y-%m-%dT%H:%M:%S") for w, *_ in mine
    ]

    ent = client.get(f"/ngsi-ld/v1/entities/{eid}").json()
    assert ent[AVAILABLE]["value"] == expected[-1]
    assert ent[AVAILABLE]["unitCode"] == "C62"


def test_load_snapshots_errors(client: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parking") as exc:
        load_snapshots(client.services, "nope", tmp_path / "x.csv")
    assert "unknown importer" in str(exc.value)
    bad = tmp_path / "bad.csv"
    bad.write_text("SystemCodeNumber,Capacity,Occupancy,LastUpdated\nA,10,x,2016-10-04 08:00:00\n")
    with pytest.raises(ImportDataError, match="line 2"):
        load_snapshots(client.services, "parking", bad)
    with pytest.raises(FileNotFoundError):
        load_snapshots(client.services, "parking", tmp_path / "missing.csv")


def test_run_import_bad_input_returns_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support import make_settings

    settings = make_settings(f"sqlite:///{tmp_path}/hub.db", tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("Code,Capacity\nA,10\n")
    assert run_import(settings, "parking", bad, "default", None) == 2
    err = capsys.readouterr().err
    assert err.startswith("maeul: ") and "bad.csv" in err and "SystemCodeNumber" in err


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAEUL_")}
    env["MAEUL_CONTEXT_CACHE_DIR"] = str(tmp_path / "contexts")
    return subprocess.run(
        [sys.executable, "-m", "maeul.cli", "import", *args,
         "--store-url", f"sqlite:///{tmp_path}/cli.db"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )


def test_cli_import(tmp_path: Path, data_dir: Path) -> None:
    from maeul.hub.app import Services
    from maeul.hub.core import Query
    from support import make_settings

    path = parking_file(data_dir)
    done = _cli(tmp_path, "parking", str(path), "--limit", "50")
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert "50 snapshots" in summary and "entities" in summary and "rows" in summary
    assert " s" in summary

    services = Services(make_settings(f"sqlite:///{tmp_path}/cli.db", tmp_path))
    try:
        ents, _ = services.hub.query("default", Query(types=(OFF_STREET,), limit=100))
        assert 0 < len(ents) <= 30
    finally:
        services.close()


def test_cli_import_missing_file_and_unknown_importer(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.csv"
    done = _cli(tmp_path, "parking", str(missing))
    assert done.returncode == 2
    assert done.stderr.startswith("maeul: ") and "nothing.csv" in done.stderr
    assert "Traceback" not in done.stderr

    done = _cli(tmp_path, "bogus", str(missing))
    assert done.returncode == 2
    assert "unknown importer 'bogus'" in done.stderr and "parking" in done.stderr
    assert "Traceback" not in done.stderr
