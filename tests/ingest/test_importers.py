"""Importers on the real shared data files (skipped when ../shared/data is absent)."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from maeul.ingest.importers import (
    IMPORTERS,
    SEOUL_STATIONS,
    ImportDataError,
    ImportStats,
    iter_air_seoul_daily,
    iter_parking,
    iter_sdm_examples,
    iter_traffic_los,
)
from maeul.ingest.sdm import sdm_context_preload

SDM = "https://smartdatamodels.org/"
PARKING = SDM + "dataModel.Parking/"
ENV = SDM + "dataModel.Environment/"
TRANSPORT = SDM + "dataModel.Transportation/"
SPEED = TRANSPORT + "averageVehicleSpeed"
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CORE_KEYS = {"id", "type", "@context", "scope"}


def _data_dir() -> Path:
    env = os.environ.get("MAEUL_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    root = _data_dir()
    if not (root / "parking" / "birmingham_parking.csv").is_file():
        pytest.skip(f"shared data not found at {root} (set MAEUL_DATA_DIR to the data folder)")
    return root


# --- NGSI-LD normalized form check -------------------------------------------------------------


def _is_uri(text: Any) -> bool:
    if not isinstance(text, str) or not text or any(c.isspace() for c in text):
        return False
    return bool(urlsplit(text).scheme)


def _check_geo(value: Any) -> None:
    assert isinstance(value, dict) and "type" in value and "coordinates" in value, value

    def positions(coords: Any) -> Iterable[list[float]]:
        if coords and isinstance(coords[0], (int, float)):
            yield coords
        else:
            for item in coords:
                yield from positions(item)

    for pos in positions(value["coordinates"]):
        lon, lat = pos[0], pos[1]
        assert -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0, pos


def assert_normalized(entity: dict[str, Any], *, absolute: bool = True) -> None:
    assert _is_uri(entity.get("id")), entity.get("id")
    etype = entity.get("type")
    assert isinstance(etype, str) and etype
    if absolute:
        assert _is_uri(etype) and etype.startswith(SDM), etype
    for key, attr in entity.items():
        if key in CORE_KEYS:
            continue
        if absolute:
            assert key == "location" or (_is_uri(key) and key.startswith(SDM)), key
        instances = attr if isinstance(attr, list) else [attr]
        for inst in instances:
            assert isinstance(inst, dict), (key, inst)
            kind = inst.get("type")
            assert kind in {"Property", "GeoProperty", "Relationship"}, (key, kind)
            if kind == "Relationship":
                obj = inst.get("object")  # NGSI-LD >= 1.8 also allows a list of URIs
                assert all(_is_uri(o) for o in (obj if isinstance(obj, list) else [obj])), inst
            else:
                assert "value" in inst, (key, inst)
            if kind == "GeoProperty":
                _check_geo(inst["value"])
            if absolute and "observedAt" in inst:
                assert UTC_Z.match(inst["observedAt"]), inst
    if absolute:
        assert "@context" not in entity


def _observed(entity: dict[str, Any]) -> str:
    attr = entity.get(SDM + "dateObserved") or entity[PARKING + "totalSpotNumber"]
    return str(attr["observedAt"])


# --- parking -----------------------------------------------------------------------------------


def test_parking_counts_order_and_form(data_dir: Path) -> None:
    stats = ImportStats(0, 0, 0, 0)
    snaps = list(iter_parking(data_dir / "parking" / "birmingham_parking.csv", stats=stats))
    assert stats == ImportStats(rows=35717, entities=30, snapshots=35717, skipped=0)
    assert len(snaps) == 35717
    assert len({s["id"] for s in snaps}) == 30
    times = [_observed(s) for s in snaps]
    assert times == sorted(times)
    for snap in snaps[::97]:
        assert_normalized(snap)
        assert "location" not in snap  # no coordinates in the source: none invented
        total = snap[PARKING + "totalSpotNumber"]["value"]
        free = snap[PARKING + "availableSpotNumber"]["value"]
        used = snap[PARKING + "occupiedSpotNumber"]["value"]
        assert 0 <= free <= total and used + free == total
        assert 0.0 <= snap[PARKING + "occupancy"]["value"] <= 1.0


def test_parking_hand_computed_row(data_dir: Path) -> None:
    # First row: BHMBCCMKT01,577,61,2016-10-04 07:59:42 (BST = UTC+1)
    snap = next(
        s
        for s in iter_parking(data_dir / "parking" / "birmingham_parking.csv")
        if s["id"] == "urn:ngsi-ld:OffStreetParking:birmingham-BHMBCCMKT01"
    )
    assert snap["type"] == PARKING + "OffStreetParking"
    total = snap[PARKING + "totalSpotNumber"]
    assert total == {
        "type": "Property",
        "value": 577,
        "observedAt": "2016-10-04T06:59:42Z",
        "unitCode": "C62",
    }
    assert snap[PARKING + "availableSpotNumber"]["value"] == 577 - 61
    assert snap[PARKING + "occupiedSpotNumber"]["value"] == 61
    assert snap[PARKING + "occupancy"]["value"] == pytest.approx(61 / 577, abs=1e-4)
    assert snap[SDM + "name"]["value"] == "BHMBCCMKT01"
    address = snap[SDM + "address"]["value"]
    assert address[SDM + "addressLocality"] == "Birmingham"
    assert address[SDM + "addressCountry"] == "GB"


def test_parking_winter_time_is_utc(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "SystemCodeNumber,Capacity,Occupancy,LastUpdated\n"
        "B,100,120,2016-12-01 08:00:00\n"
        "A,100,-3,2016-10-04 08:00:00\n"
    )
    snaps = list(iter_parking(path))
    # sorted globally: October (BST, UTC+1) before December (GMT, UTC+0)
    assert [_observed(s) for s in snaps] == ["2016-10-04T07:00:00Z", "2016-12-01T08:00:00Z"]
    # negative / above-capacity counts are clamped to the SDM range
    assert snaps[0][PARKING + "availableSpotNumber"]["value"] == 100
    assert snaps[1][PARKING + "availableSpotNumber"]["value"] == 0
    assert snaps[1][PARKING + "occupancy"]["value"] == 1.0


HEADER = "SystemCodeNumber,Capacity,Occupancy,LastUpdated\n"
GOOD = "A,10,5,2016-10-04 08:00:00\n"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (HEADER + GOOD + "A,ten,5,2016-10-04 08:30:00\n", 3, "Capacity"),
        (HEADER + GOOD + GOOD + "A,10,5.5,2016-10-04 08:30:00\n", 4, "Occupancy"),
        (HEADER + "A,10,5,04/10/2016 08:00\n", 2, "LastUpdated"),
        (HEADER + GOOD + "A,10,5\n", 3, "LastUpdated"),
        ("SystemCodeNumber,Capacity,LastUpdated\n" + "A,10,2016-10-04 08:00:00\n", 1, "Occupancy"),
    ],
)
def test_parking_malformed_raises(tmp_path: Path, text: str, line: int, column: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ImportDataError) as info:
        list(iter_parking(path))
    err = info.value
    assert (err.path, err.line, err.column) == (path, line, column)
    assert f"line {line}" in str(err) and repr(column) in str(err) and "bad.csv" in str(err)


def test_skip_bad_rows_counts(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + GOOD + "A,ten,5,2016-10-04 08:30:00\nB,10\n" + GOOD.replace("A", "B"))
    stats = ImportStats(0, 0, 0, 0)
    snaps = list(iter_parking(path, skip_bad_rows=True, stats=stats))
    assert len(snaps) == 2
    assert stats == ImportStats(rows=4, entities=2, snapshots=2, skipped=2)
    # a bad header is never skipped
    (tmp_path / "h.csv").write_text("code,cap\nA,1\n")
    with pytest.raises(ImportDataError):
        list(iter_parking(tmp_path / "h.csv", skip_bad_rows=True))


# --- Seoul air ---------------------------------------------------------------------------------


def test_air_counts_and_form(data_dir: Path) -> None:
    path = data_dir / "air" / "seoul_air_2022.utf8.csv"
    stats = ImportStats(0, 0, 0, 0)
    snaps = list(iter_air_seoul_daily(path, stats=stats))
    with path.open(encoding="utf-8-sig", newline="") as handle:
        raw = list(csv.reader(handle))[1:]
    stations = {r[1] for r in raw}
    assert len(stations) == 50 and set(SEOUL_STATIONS) >= stations
    assert stats.rows == len(raw) == 18250 == 50 * 365
    all_empty = sum(all(c == "" for c in r[2:]) for r in raw)
    assert stats.snapshots == len(snaps) == len(raw) - all_empty
    assert stats.entities == 50 and stats.skipped == 0
    days = {s[SDM + "dateObserved"]["value"] for s in snaps}
    assert len(days) == 365
    times = [_observed(s) for s in snaps]
    assert times == sorted(times)
    for snap in snaps[::37]:
        assert_normalized(snap)
        assert snap["type"] == ENV + "AirQualityObserved"
        assert snap[SDM + "address"]["value"][SDM + "addressLocality"] == "서울특별시"
    # empty cells are omitted, never reported as 0
    empty_pm25 = sum(1 for r in raw if r[7] == "" and any(r[2:7]))
    assert sum(1 for s in snaps if ENV + "pm25" not in s) == empty_pm25 > 0
    located = {s["id"] for s in snaps if "location" in s}
    assert len(located) >= 25


def test_air_hand_computed_row(data_dir: Path) -> None:
    # 20220101,강남구,0.029,0.014,0.5,0.003,25,12 -> 2022-01-01 00:00 KST = 2021-12-31 15:00Z
    snap = next(iter_air_seoul_daily(data_dir / "air" / "seoul_air_2022.utf8.csv"))
    assert snap["id"] == "urn:ngsi-ld:AirQualityObserved:seoul-gangnam-gu"
    assert snap[SDM + "name"]["value"] == "강남구"
    assert snap[SDM + "address"]["value"][SDM + "district"] == "강남구"
    at = "2021-12-31T15:00:00Z"
    assert snap[SDM + "dateObserved"]["value"] == at
    assert snap[ENV + "no2"] == {
        "type": "Property",
        "value": 0.029,
        "observedAt": at,
        "unitCode": "59",
    }
    assert snap[ENV + "pm10"]["value"] == 25 and snap[ENV + "pm10"]["unitCode"] == "GQ"
    assert snap[ENV + "pm25"]["value"] == 12 and snap[ENV + "co"]["unitCode"] == "59"
    lon, lat = snap["location"]["value"]["coordinates"]
    assert 126.7 < lon < 127.3 and 37.4 < lat < 37.75  # inside Seoul


AIR_HEADER = (
    "측정일시,측정소명,이산화질소농도(ppm),오존농도(ppm),일산화탄소농도(ppm),"
    "아황산가스농도(ppm),미세먼지농도(㎍/㎥),초미세먼지농도(㎍/㎥)\n"
)


def test_air_empty_unknown_station_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "air.csv"
    path.write_text(AIR_HEADER + "20220102,새 측정소,0.02,,0.4,0.003,30,\n", encoding="utf-8")
    (snap,) = list(iter_air_seoul_daily(path))
    assert ENV + "o3" not in snap and ENV + "pm25" not in snap
    assert snap[ENV + "no2"]["value"] == 0.02
    assert snap["id"].startswith("urn:ngsi-ld:AirQualityObserved:seoul-%")
    assert "location" not in snap
    assert_normalized(snap)

    path.write_text(AIR_HEADER + "20220102,강남구,0.02,x,0.4,0.003,30,1\n", encoding="utf-8")
    with pytest.raises(ImportDataError) as info:
        list(iter_air_seoul_daily(path))
    assert info.value.line == 2 and info.value.column == "오존농도(ppm)"
    path.write_text(AIR_HEADER + "2022-01-02,강남구,0.02,0.1,0.4,0.003,30,1\n", encoding="utf-8")
    with pytest.raises(ImportDataError) as info:
        list(iter_air_seoul_daily(path))
    assert info.value.line == 2 and info.value.column == "측정일시"


# --- METR-LA traffic ---------------------------------------------------------------------------


def test_traffic_first_rows(data_dir: Path) -> None:
    traffic = data_dir / "traffic"
    stats = ImportStats(0, 0, 0, 0)
    snaps = list(
        iter_traffic_los(traffic / "los_speed.csv", traffic / "loc.csv", limit_rows=2, stats=stats)
    )
    assert stats.rows == 2 and stats.skipped == 0
    first = [s for s in snaps if s[SDM + "dateObserved"]["value"] == "2012-03-01T08:00:00Z"]
    second = [s for s in snaps if s[SDM + "dateObserved"]["value"] == "2012-03-01T08:05:00Z"]
    assert 0 < len(first) <= 207 and 0 < len(second) <= 207
    assert snaps == first + second  # row by row
    assert stats.entities == len({s["id"] for s in snaps}) <= 207
    for snap in snaps:
        assert_normalized(snap)
        assert snap["type"] == TRANSPORT + "TrafficFlowObserved"
        lon, lat = snap["location"]["value"]["coordinates"]
        assert -119.0 < lon < -117.5 and 33.5 < lat < 34.5  # Los Angeles
        assert snap[SPEED]["unitCode"] == "KMH" and snap[SPEED]["value"] > 0
    # hand-computed: sensor 773869, row 0 = 64.375 mph = 103.60152 km/h
    s0 = snaps[0]
    assert s0["id"] == "urn:ngsi-ld:TrafficFlowObserved:metr-la-773869"
    assert s0[SPEED]["value"] == pytest.approx(103.602, abs=1e-3)
    assert s0[SPEED]["observedAt"] == "2012-03-01T08:00:00Z"
    assert s0["location"]["value"]["coordinates"] == [-118.31829, 34.15497]


def test_traffic_zero_is_missing_and_time_steps(tmp_path: Path) -> None:
    speed, loc = tmp_path / "los_speed.csv", tmp_path / "loc.csv"
    speed.write_text("1,2,3\n60,0,30\n,50,0\n10,20,30\n")
    loc.write_text("index,sensor_id,latitude,longitude\n0,1,34.1,-118.2\n1,2,34.2,-118.3\n")
    start = datetime(2012, 3, 10, 23, 55, tzinfo=ZoneInfo("America/Los_Angeles"))
    stats = ImportStats(0, 0, 0, 0)
    snaps = list(iter_traffic_los(speed, loc, start=start, step_minutes=60, stats=stats))
    got = [(s["id"][-1], s[SDM + "dateObserved"]["value"], s[SPEED]["value"]) for s in snaps]
    # 23:55 PST = 07:55Z; steps are real elapsed time (the DST change at 02:00 is irrelevant)
    assert got == [
        ("1", "2012-03-11T07:55:00Z", pytest.approx(96.561, abs=1e-3)),
        ("3", "2012-03-11T07:55:00Z", pytest.approx(48.280, abs=1e-3)),
        ("2", "2012-03-11T08:55:00Z", pytest.approx(80.467, abs=1e-3)),
        ("1", "2012-03-11T09:55:00Z", pytest.approx(16.093, abs=1e-3)),
        ("2", "2012-03-11T09:55:00Z", pytest.approx(32.187, abs=1e-3)),
        ("3", "2012-03-11T09:55:00Z", pytest.approx(48.280, abs=1e-3)),
    ]
    assert "location" not in snaps[1]  # sensor 3 has no coordinates
    assert stats == ImportStats(rows=3, entities=3, snapshots=6, skipped=0)

    speed.write_text("1,2,3\n60,0,30\n60,fast,30\n61,2,3\n")
    with pytest.raises(ImportDataError) as info:
        list(iter_traffic_los(speed, loc))
    assert (info.value.line, info.value.column) == (3, "2")
    stats = ImportStats(0, 0, 0, 0)
    snaps = list(iter_traffic_los(speed, loc, skip_bad_rows=True, stats=stats))
    assert stats.skipped == 1 and stats.rows == 3
    assert snaps[-1][SDM + "dateObserved"]["value"] == "2012-03-01T08:10:00Z"  # time kept

    loc.write_text("index,sensor_id,latitude,longitude\n0,1,134.1,-118.2\n")
    with pytest.raises(ImportDataError) as info:
        list(iter_traffic_los(speed, loc))
    assert (info.value.line, info.value.column) == (2, "latitude")


# --- Smart Data Models examples and contexts ---------------------------------------------------


def test_sdm_examples_and_preload(data_dir: Path) -> None:
    root = data_dir / "smart_data_models"
    examples = list(iter_sdm_examples(root))
    assert len(examples) == len(list(root.glob("*/*/examples/example-normalized.jsonld"))) >= 10
    preload = sdm_context_preload(root)
    domains = sorted(p.name for p in root.glob("dataModel.*") if (p / "context.jsonld").is_file())
    assert len(preload) == 2 * len(domains)
    for domain in domains:
        raw = f"https://raw.githubusercontent.com/smart-data-models/{domain}/master/context.jsonld"
        io = f"https://smart-data-models.github.io/{domain}/context.jsonld"
        assert preload[raw] is preload[io]
        assert "@context" in preload[raw]
    parking_ctx = preload[
        "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
    ]["@context"]
    assert parking_ctx["availableSpotNumber"] == PARKING + "availableSpotNumber"
    for entity in examples:
        assert "@context" in entity
        assert_normalized(entity, absolute=False)
        ctx = entity["@context"]
        for url in ctx if isinstance(ctx, list) else [ctx]:
            assert "smart-data-models" not in url or url in preload, url
    assert sdm_context_preload(data_dir) == preload  # the parent folder works too
    assert sdm_context_preload(data_dir / "nowhere") == {}


def test_sdm_bad_json(tmp_path: Path) -> None:
    bad = tmp_path / "dataModel.X" / "Thing" / "examples"
    bad.mkdir(parents=True)
    (bad / "example-normalized.jsonld").write_text('{"id": "urn:x",\n  oops}')
    with pytest.raises(ImportDataError) as info:
        list(iter_sdm_examples(tmp_path))
    assert info.value.line == 2
    stats = ImportStats(0, 0, 0, 0)
    assert list(iter_sdm_examples(tmp_path, skip_bad_rows=True, stats=stats)) == []
    assert stats.skipped == 1


# --- registry ----------------------------------------------------------------------------------


def test_registry(data_dir: Path) -> None:
    assert set(IMPORTERS) == {"parking", "air", "traffic", "sdm-examples"}
    for name, spec in IMPORTERS.items():
        assert spec.name == name and spec.description
        first = list(islice(spec.run(data_dir / spec.default_path), 3))
        assert len(first) == 3
        for entity in first:
            assert_normalized(entity, absolute=name != "sdm-examples")
    traffic = IMPORTERS["traffic"].run(data_dir / "traffic", limit_rows=1)
    assert 0 < sum(1 for _ in traffic) <= 207
