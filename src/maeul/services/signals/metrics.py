"""Trip metrics from SUMO's tripinfo output, with RESCO's definition of delay.

RESCO's delay of a trip is timeLoss + departDelay; unfinished trips count with what they
accumulated by the end, and vehicles never inserted count with end - scheduled depart.
People on foot (``personinfo``) are counted apart: RESCO's figures are vehicles only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path


class MetricsError(ValueError):
    """A tripinfo or pending file that cannot be read; the message names the file."""


@dataclass
class TripMetrics:
    delay: float  # s, RESCO: mean of timeLoss + departDelay over all trips
    trip_time: float  # s, mean duration of trips that were inserted
    waiting_time: float  # s, mean waitingTime of trips that were inserted
    throughput: int  # vehicles that arrived
    trips: int  # inserted (finished or not) plus never inserted
    unfinished: int
    never_inserted: int
    co2_kg: float  # summed CO2 of all inserted vehicles
    people: int = 0  # people on foot who set out (finished or not)
    walk_delay: float = 0.0  # s, their mean timeLoss (slower than they would walk, waiting)
    walk_waiting: float = 0.0  # s, their mean waitingTime (standing: at red crossings)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _f(el: ET.Element, key: str, path: Path) -> float:
    v = el.get(key)
    if v is None:
        raise MetricsError(f"{path}: {el.tag} {el.get('id')!r} lacks attribute {key!r}")
    try:
        return float(v)
    except ValueError as exc:
        raise MetricsError(f"{path}: {el.tag} {el.get('id')!r} has {key}={v!r}") from exc


def _person(el: ET.Element, key: str, path: Path) -> float:
    """A person's total: the personinfo's own attribute, or (older SUMO, or a plan of rides
    and stops) the sum over its stages of those that have it."""
    if el.get(key) is not None:
        return _f(el, key, path)
    return sum(_f(stage, key, path) for stage in el if stage.get(key) is not None)


def read_pending(path: Path) -> list[tuple[str, float]]:
    """(vehicle id, scheduled depart) of vehicles still waiting for insertion at the end."""
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip()
        if header != "id,depart":
            raise MetricsError(f"{path}: expected header 'id,depart', got {header!r}")
        for n, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            vid, _, dep = line.rstrip("\n").rpartition(",")
            try:
                rows.append((vid, float(dep)))
            except ValueError as exc:
                raise MetricsError(f"{path}:{n}: bad depart {dep!r}") from exc
    return rows


def trip_metrics(tripinfo: str | Path, end: float,
                 pending: list[tuple[str, float]] | None = None) -> TripMetrics:
    """Stream the tripinfo file; `pending` defaults to the run's ``.pending.csv`` beside it."""
    path = Path(tripinfo)
    if not path.is_file():
        raise MetricsError(f"tripinfo file not found: {path}")
    if pending is None:
        pending = read_pending(path.with_suffix(".pending.csv"))
    delay = duration = waiting = co2 = walk_loss = walk_wait = 0.0
    n = arrived = unfinished = people = 0
    try:
        for _, el in ET.iterparse(path, events=("end",)):
            if el.tag == "emissions":
                co2 += float(el.get("CO2_abs", "0"))
            elif el.tag == "tripinfo":
                n += 1
                delay += _f(el, "timeLoss", path) + _f(el, "departDelay", path)
                duration += _f(el, "duration", path)
                waiting += _f(el, "waitingTime", path)
                if _f(el, "arrival", path) < 0:
                    unfinished += 1
                else:
                    arrived += 1
                el.clear()
            elif el.tag == "personinfo":
                people += 1
                walk_loss += _person(el, "timeLoss", path)
                walk_wait += _person(el, "waitingTime", path)
                el.clear()
    except ET.ParseError as exc:
        raise MetricsError(f"{path}: not a valid tripinfo file ({exc})") from exc
    for _vid, dep in pending:
        delay += max(0.0, end - dep)
    total = n + len(pending)
    return TripMetrics(
        delay=delay / total if total else 0.0,
        trip_time=duration / n if n else 0.0,
        waiting_time=waiting / n if n else 0.0,
        throughput=arrived,
        trips=total,
        unfinished=unfinished,
        never_inserted=len(pending),
        co2_kg=co2 / 1e6,  # SUMO writes mg
        people=people,
        walk_delay=walk_loss / people if people else 0.0,
        walk_waiting=walk_wait / people if people else 0.0,
    )
