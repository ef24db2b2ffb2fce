"""File importers: real open data -> FIWARE Smart Data Models entities (NGSI-LD normalized).

Every importer is a generator of *snapshots*: one complete entity body per observation, in
chronological order, so that the hub can upsert them one after the other and record the
attribute history (each measured property carries ``observedAt``).

The bodies carry no ``@context``: entity types and attribute names are emitted as absolute
Smart Data Models IRIs (taken from the ``context.jsonld`` files of ``dataModel.Parking``,
``dataModel.Environment`` and ``dataModel.Transportation``), so nothing has to be fetched to
interpret them.  Only NGSI-LD core terms stay short (``id``, ``type``, ``location``,
``observedAt``, ``unitCode``, ``value``, ``object``, ``Property``, ``Relationship``,
``GeoProperty``).  Keys inside structured values (``address``) are absolute IRIs as well.

Units are UN/CEFACT common codes: ``59`` ppm, ``GQ`` microgram per cubic metre, ``KMH``
kilometre per hour, ``C62`` "one" (counts and fractions).

Malformed input raises :class:`ImportDataError` naming the file, the line number and the
column.  With ``skip_bad_rows=True`` a malformed *row* is skipped and counted in
:class:`ImportStats` instead; a malformed header always raises.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .importrows import (
    CsvTable,
    Entity,
    EntityCounter,
    ImportDataError,
    ImportStats,
    RowError,
    parse_float,
    parse_int,
    point,
    prop,
    rows_checked,
    utc_iso,
)
from .seoul_stations import SEOUL_STATIONS, SeoulStation

__all__ = [
    "IMPORTERS",
    "ImportDataError",
    "ImportStats",
    "ImporterSpec",
    "SEOUL_STATIONS",
    "SeoulStation",
    "iter_air_seoul_daily",
    "iter_parking",
    "iter_sdm_examples",
    "iter_traffic_los",
]

# --- IRIs (from the Smart Data Models context.jsonld files) ------------------------------------

SDM = "https://smartdatamodels.org/"
SDM_PARKING = SDM + "dataModel.Parking/"
SDM_ENV = SDM + "dataModel.Environment/"
SDM_TRANSPORT = SDM + "dataModel.Transportation/"

T_OFF_STREET_PARKING = SDM_PARKING + "OffStreetParking"
T_AIR_QUALITY_OBSERVED = SDM_ENV + "AirQualityObserved"
T_TRAFFIC_FLOW_OBSERVED = SDM_TRANSPORT + "TrafficFlowObserved"

A_NAME = SDM + "name"
A_ADDRESS = SDM + "address"
A_DATE_OBSERVED = SDM + "dateObserved"
K_ADDRESS_LOCALITY = SDM + "addressLocality"
K_ADDRESS_COUNTRY = SDM + "addressCountry"
K_DISTRICT = SDM + "district"

A_TOTAL_SPOTS = SDM_PARKING + "totalSpotNumber"
A_AVAILABLE_SPOTS = SDM_PARKING + "availableSpotNumber"
A_OCCUPIED_SPOTS = SDM_PARKING + "occupiedSpotNumber"
A_OCCUPANCY = SDM_PARKING + "occupancy"

A_AVG_SPEED = SDM_TRANSPORT + "averageVehicleSpeed"

# UN/CEFACT common codes
U_PPM = "59"
U_UG_M3 = "GQ"
U_KMH = "KMH"
U_ONE = "C62"

MPH_TO_KMH = 1.609344  # exact: 1 international mile = 1609.344 m

LONDON = ZoneInfo("Europe/London")
SEOUL = ZoneInfo("Asia/Seoul")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")

#: Row 0 of ``los_speed.csv`` (METR-LA one-week slice, see the data README).
LOS_DEFAULT_START = datetime(2012, 3, 1, 0, 0, tzinfo=LOS_ANGELES)


# --- Birmingham parking ------------------------------------------------------------------------

PARKING_COLUMNS = ("SystemCodeNumber", "Capacity", "Occupancy", "LastUpdated")


@dataclass(frozen=True)
class _ParkingRow:
    when: datetime
    code: str
    capacity: int
    occupancy: int


def _parse_parking(line: int, row: dict[str, str]) -> _ParkingRow:
    code = row["SystemCodeNumber"]
    if not code:
        raise RowError("empty car park code", line, "SystemCodeNumber")
    capacity = parse_int(row["Capacity"], line, "Capacity")
    if capacity < 0:
        raise RowError(f"negative capacity: {capacity}", line, "Capacity")
    occupancy = parse_int(row["Occupancy"], line, "Occupancy")
    try:
        local = datetime.strptime(row["LastUpdated"], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise RowError(
            f"not a 'YYYY-MM-DD HH:MM:SS' time: {row['LastUpdated']!r}", line, "LastUpdated"
        ) from None
    # Local UK wall-clock time; fold=0 picks the first (BST) instant of the ambiguous hour
    # at the end of summer time (the file has no readings between 00:00 and 07:00 anyway).
    when = local.replace(tzinfo=LONDON).astimezone(UTC)
    return _ParkingRow(when, code, capacity, occupancy)


def _parking_entity(rec: _ParkingRow) -> Entity:
    at = utc_iso(rec.when)
    # The source reports a few negative counts and counts above capacity (sensor drift);
    # SDM requires 0 <= occupiedSpotNumber <= totalSpotNumber, so the count is clamped.
    occupied = min(max(rec.occupancy, 0), rec.capacity)
    entity: Entity = {
        "id": "urn:ngsi-ld:OffStreetParking:birmingham-" + quote(rec.code, safe="-._~"),
        "type": T_OFF_STREET_PARKING,
        A_NAME: prop(rec.code),
        A_ADDRESS: prop({K_ADDRESS_LOCALITY: "Birmingham", K_ADDRESS_COUNTRY: "GB"}),
        A_TOTAL_SPOTS: prop(rec.capacity, observed_at=at, unit=U_ONE),
        A_OCCUPIED_SPOTS: prop(occupied, observed_at=at, unit=U_ONE),
        A_AVAILABLE_SPOTS: prop(rec.capacity - occupied, observed_at=at, unit=U_ONE),
    }
    if rec.capacity > 0:
        entity[A_OCCUPANCY] = prop(round(occupied / rec.capacity, 4), observed_at=at, unit=U_ONE)
    return entity


def iter_parking(
    path: Path, *, skip_bad_rows: bool = False, stats: ImportStats | None = None
) -> Iterator[Entity]:
    """Birmingham car parks (``parking/birmingham_parking.csv``) as ``OffStreetParking``.

    One snapshot per row, sorted by observation time over the whole file (stable, so rows
    with the same time keep the file order).  ``LastUpdated`` is UK local time and is
    converted to UTC.  The file has no coordinates, so no ``location`` is emitted.
    """
    counter = EntityCounter(stats)
    table = CsvTable(path, PARKING_COLUMNS)
    records: list[_ParkingRow] = list(
        rows_checked(table, _parse_parking, skip_bad_rows, counter.stats)
    )
    records.sort(key=lambda r: r.when)
    for rec in records:
        yield counter.emit(_parking_entity(rec))


# --- Seoul daily air quality -------------------------------------------------------------------



AIR_DATE = "측정일시"
AIR_STATION = "측정소명"
# column -> (SDM attribute IRI, unit code)
AIR_MEASURES: dict[str, tuple[str, str]] = {
    "이산화질소농도(ppm)": (SDM_ENV + "no2", U_PPM),
    "오존농도(ppm)": (SDM_ENV + "o3", U_PPM),
    "일산화탄소농도(ppm)": (SDM_ENV + "co", U_PPM),
    "아황산가스농도(ppm)": (SDM_ENV + "so2", U_PPM),
    "미세먼지농도(㎍/㎥)": (SDM_ENV + "pm10", U_UG_M3),
    "초미세먼지농도(㎍/㎥)": (SDM_ENV + "pm25", U_UG_M3),
}


def seoul_station_id(name: str) -> str:
    """Entity id for a station: romanised slug, or the percent-encoded name if unknown."""
    station = SEOUL_STATIONS.get(name)
    slug = station.slug if station is not None else quote(name, safe="")
    return "urn:ngsi-ld:AirQualityObserved:seoul-" + slug


@dataclass(frozen=True)
class _AirRow:
    when: datetime
    station: str
    values: tuple[tuple[str, str, float], ...]  # (attribute IRI, unit, value)


def _parse_air(line: int, row: dict[str, str]) -> _AirRow:
    text = row[AIR_DATE]
    if len(text) != 8 or not text.isdigit():
        raise RowError(f"not a YYYYMMDD date: {text!r}", line, AIR_DATE)
    try:
        day = datetime.strptime(text, "%Y%m%d")
    except ValueError:
        raise RowError(f"not a valid date: {text!r}", line, AIR_DATE) from None
    station = row[AIR_STATION]
    if not station:
        raise RowError("empty station name", line, AIR_STATION)
    values: list[tuple[str, str, float]] = []
    for column, (iri, unit) in AIR_MEASURES.items():
        cell = row[column]
        if cell == "":
            continue  # not measured that day: omitted, never reported as 0
        value = parse_float(cell, line, column)
        if value < 0:
            raise RowError(f"negative concentration: {cell!r}", line, column)
        values.append((iri, unit, value))
    return _AirRow(day.replace(tzinfo=SEOUL).astimezone(UTC), station, tuple(values))


def _air_entity(rec: _AirRow) -> Entity:
    at = utc_iso(rec.when)
    station = SEOUL_STATIONS.get(rec.station)
    address: Entity = {K_ADDRESS_LOCALITY: "서울특별시", K_ADDRESS_COUNTRY: "KR"}
    if station is not None and station.district is not None:
        address[K_DISTRICT] = station.district
    entity: Entity = {
        "id": seoul_station_id(rec.station),
        "type": T_AIR_QUALITY_OBSERVED,
        A_NAME: prop(rec.station),
        A_ADDRESS: prop(address),
        A_DATE_OBSERVED: prop(at, observed_at=at),
    }
    if station is not None and station.lon_lat is not None:
        entity["location"] = point(*station.lon_lat)
    for iri, unit, value in rec.values:
        entity[iri] = prop(value, observed_at=at, unit=unit)
    return entity


def iter_air_seoul_daily(
    path: Path, *, skip_bad_rows: bool = False, stats: ImportStats | None = None
) -> Iterator[Entity]:
    """Seoul daily mean air quality per station (``air/seoul_air_2022.utf8.csv``).

    One ``AirQualityObserved`` snapshot per (day, station) row, sorted by day (stable).
    The values are daily means; ``observedAt``/``dateObserved`` mark the *start* of the
    measuring day, 00:00 Asia/Seoul, written in UTC (the previous day, 15:00Z).
    Empty cells mean "not measured": the attribute is left out of that snapshot; a row with
    no measurement at all yields no snapshot (it is still counted in ``stats.rows``).
    """
    counter = EntityCounter(stats)
    table = CsvTable(path, (AIR_DATE, AIR_STATION, *AIR_MEASURES))
    records: list[_AirRow] = list(rows_checked(table, _parse_air, skip_bad_rows, counter.stats))
    records.sort(key=lambda r: r.when)
    for rec in records:
        if rec.values:
            yield counter.emit(_air_entity(rec))


# --- METR-LA traffic speeds (Los-loop) ---------------------------------------------------------

LOC_COLUMNS = ("sensor_id", "latitude", "longitude")


def _read_sensor_locations(
    loc_path: Path, skip_bad_rows: bool, stats: ImportStats
) -> dict[str, tuple[float, float]]:
    """``loc.csv`` -> {sensor_id: (lon, lat)}; a bad row raises or is skipped (no location)."""

    def parse(line: int, row: dict[str, str]) -> tuple[str, tuple[float, float]]:
        sensor = row["sensor_id"]
        if not sensor:
            raise RowError("empty sensor id", line, "sensor_id")
        lat = parse_float(row["latitude"], line, "latitude")
        if not -90.0 <= lat <= 90.0:
            raise RowError(f"latitude out of range: {lat}", line, "latitude")
        lon = parse_float(row["longitude"], line, "longitude")
        if not -180.0 <= lon <= 180.0:
            raise RowError(f"longitude out of range: {lon}", line, "longitude")
        return sensor, (lon, lat)

    # loc.csv rows are not observations: only skips are reported in the caller's stats.
    local = ImportStats()
    table = CsvTable(loc_path, LOC_COLUMNS)
    found = dict(rows_checked(table, parse, skip_bad_rows, local))
    stats.skipped += local.skipped
    return found


def iter_traffic_los(
    speed_path: Path,
    loc_path: Path,
    *,
    start: datetime = LOS_DEFAULT_START,
    step_minutes: int = 5,
    limit_rows: int | None = None,
    skip_bad_rows: bool = False,
    stats: ImportStats | None = None,
) -> Iterator[Entity]:
    """METR-LA loop detector speeds (``traffic/los_speed.csv`` + ``traffic/loc.csv``).

    The speed file's header holds the sensor ids; each following row is one 5-minute
    interval (row 0 at ``start``; a naive ``start`` is read as Los Angeles time).  Snapshots
    come row by row: every sensor of row 0, then row 1, ...  Speeds are converted from mph to
    km/h.  In METR-LA a speed of exactly 0 is the placeholder for a missing reading (the
    loop reported nothing), not a traffic jam, so zero and empty cells are left out: that
    sensor gets no snapshot for that interval.  Sensors missing from ``loc.csv`` get no
    ``location``.
    """
    if step_minutes <= 0:
        raise ValueError("step_minutes must be positive")
    if limit_rows is not None and limit_rows < 0:
        raise ValueError("limit_rows must be >= 0")
    counter = EntityCounter(stats)
    locations = _read_sensor_locations(loc_path, skip_bad_rows, counter.stats)
    start_utc = start if start.tzinfo is not None else start.replace(tzinfo=LOS_ANGELES)
    start_utc = start_utc.astimezone(UTC)
    step = timedelta(minutes=step_minutes)
    speed_path = Path(speed_path)

    with speed_path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ImportDataError(f"unreadable header: {exc}", path=speed_path, line=1) from exc
        if header is None:
            raise ImportDataError("empty file (no sensor id header)", path=speed_path, line=1)
        sensors = [h.strip() for h in header]
        for pos, sensor in enumerate(sensors):
            if not sensor:
                raise ImportDataError(
                    f"empty sensor id in header at position {pos}",
                    path=speed_path,
                    line=1,
                    column=f"#{pos}",
                )
        if len(set(sensors)) != len(sensors):
            dup = next(s for s in sensors if sensors.count(s) > 1)
            raise ImportDataError("duplicate sensor id", path=speed_path, line=1, column=dup)

        row_index = -1
        while limit_rows is None or row_index + 1 < limit_rows:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise ImportDataError(
                    f"unreadable row: {exc}", path=speed_path, line=reader.line_num + 1
                ) from exc
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            row_index += 1  # time advances even for a skipped row
            counter.stats.rows += 1
            try:
                speeds = _parse_speed_row(cells, sensors, line)
            except RowError as exc:
                if not skip_bad_rows:
                    raise ImportDataError(
                        exc.reason, path=speed_path, line=exc.line, column=exc.column
                    ) from None
                counter.stats.skipped += 1
                continue
            at = utc_iso(start_utc + row_index * step)
            for sensor, mph in speeds:
                entity: Entity = {
                    "id": "urn:ngsi-ld:TrafficFlowObserved:metr-la-" + quote(sensor, safe="-._~"),
                    "type": T_TRAFFIC_FLOW_OBSERVED,
                    A_DATE_OBSERVED: prop(at, observed_at=at),
                    A_AVG_SPEED: prop(round(mph * MPH_TO_KMH, 3), observed_at=at, unit=U_KMH),
                }
                where = locations.get(sensor)
                if where is not None:
                    entity["location"] = point(*where)
                yield counter.emit(entity)


def _parse_speed_row(cells: list[str], sensors: list[str], line: int) -> list[tuple[str, float]]:
    if len(cells) != len(sensors):
        column = sensors[len(cells)] if len(cells) < len(sensors) else f"#{len(sensors)}"
        raise RowError(f"{len(cells)} fields, header has {len(sensors)}", line, column)
    out: list[tuple[str, float]] = []
    for sensor, cell in zip(sensors, cells, strict=True):
        text = cell.strip()
        if text == "":
            continue
        mph = parse_float(text, line, sensor)
        if mph < 0:
            raise RowError(f"negative speed: {text!r}", line, sensor)
        if mph == 0:
            continue  # METR-LA missing-data placeholder
        out.append((sensor, mph))
    return out


# --- Smart Data Models examples ----------------------------------------------------------------


def _sdm_root(root: Path) -> Path:
    root = Path(root)
    nested = root / "smart_data_models"
    return nested if nested.is_dir() else root


def iter_sdm_examples(
    root: Path, *, skip_bad_rows: bool = False, stats: ImportStats | None = None
) -> Iterator[Entity]:
    """Every ``*/*/examples/example-normalized.jsonld`` under ``root`` (the
    ``smart_data_models`` folder, or a folder containing it), returned as-is with its
    ``@context`` (remote Smart Data Models URLs: seed the resolver with
    :func:`maeul.ingest.sdm.sdm_context_preload`).  A file holding a list yields each item.
    ``skip_bad_rows`` skips (and counts) an unreadable file instead of raising.
    """
    counter = EntityCounter(stats)
    base = _sdm_root(root)
    if not base.is_dir():
        raise ImportDataError("not a directory", path=base)
    for path in sorted(base.glob("*/*/examples/example-normalized.jsonld")):
        counter.stats.rows += 1
        try:
            doc = _load_json_entity(path)
        except ImportDataError:
            if not skip_bad_rows:
                raise
            counter.stats.skipped += 1
            continue
        for item in doc:
            yield counter.emit(item)


def _load_json_entity(path: Path) -> list[Entity]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImportDataError(
            f"invalid JSON: {exc.msg} (character {exc.colno})", path=path, line=exc.lineno
        ) from exc
    except UnicodeDecodeError as exc:
        raise ImportDataError(f"not UTF-8: {exc}", path=path) from exc
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ImportDataError("not an entity (object with a string 'id')", path=path)
        if "type" not in item:
            raise ImportDataError("entity without 'type'", path=path, column="type")
    return items


# --- registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImporterSpec:
    """One importer for the CLI: ``IMPORTERS[name].run(path)``.

    ``default_path`` is relative to the shared data directory (``../shared/data``); for
    ``traffic`` it is the folder holding ``los_speed.csv`` and ``loc.csv``.
    """

    name: str
    description: str
    default_path: str
    runner: Callable[..., Iterator[Entity]] = field(repr=False)
    entity_type: str | None = None

    def run(self, path: Path, **options: Any) -> Iterator[Entity]:
        """Iterate the snapshots of ``path``; options go to the importer function."""
        return self.runner(Path(path), **options)


def _run_traffic(folder: Path, **options: Any) -> Iterator[Entity]:
    folder = Path(folder)
    if folder.is_file():  # tolerate being given los_speed.csv itself
        folder = folder.parent
    speed, loc = folder / "los_speed.csv", folder / "loc.csv"
    for needed in (speed, loc):
        if not needed.is_file():
            raise ImportDataError("file not found in the traffic folder", path=needed)
    return iter_traffic_los(speed, loc, **options)


IMPORTERS: dict[str, ImporterSpec] = {
    spec.name: spec
    for spec in (
        ImporterSpec(
            "parking",
            "Birmingham car park occupancy (UCI), Oct-Dec 2016 -> OffStreetParking",
            "parking/birmingham_parking.csv",
            iter_parking,
            T_OFF_STREET_PARKING,
        ),
        ImporterSpec(
            "air",
            "Seoul daily air quality per station (Seoul Open Data), 2022 -> AirQualityObserved",
            "air/seoul_air_2022.utf8.csv",
            iter_air_seoul_daily,
            T_AIR_QUALITY_OBSERVED,
        ),
        ImporterSpec(
            "traffic",
            "METR-LA loop detector speeds (Los Angeles), 1-7 Mar 2012 -> TrafficFlowObserved",
            "traffic",
            _run_traffic,
            T_TRAFFIC_FLOW_OBSERVED,
        ),
        ImporterSpec(
            "sdm-examples",
            "FIWARE Smart Data Models normalized examples, as published (remote @context)",
            "smart_data_models",
            iter_sdm_examples,
            None,
        ),
    )
}
