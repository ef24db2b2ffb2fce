"""What every file importer shares: its errors and counters, NGSI-LD property builders and a
CSV reader that checks the header and numbers the lines.

``ImportDataError`` and ``ImportStats`` are re-exported by :mod:`maeul.ingest.importers`,
where callers find them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Entity = dict[str, Any]

# --- errors and statistics ---------------------------------------------------------------------


class ImportDataError(ValueError):
    """A malformed input file or row; names the file, the 1-based line and the column."""

    def __init__(
        self, message: str, *, path: Path, line: int | None = None, column: str | None = None
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.reason = message
        where = str(self.path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


@dataclass
class ImportStats:
    """Counters filled in by an importer while it is iterated.

    ``rows``: data rows read; ``entities``: distinct entity ids yielded; ``snapshots``: entity
    bodies yielded; ``skipped``: malformed rows skipped (only with ``skip_bad_rows=True``).
    """

    rows: int = 0
    entities: int = 0
    snapshots: int = 0
    skipped: int = 0


class EntityCounter:
    """Keeps ``ImportStats.entities`` as the number of distinct ids yielded."""

    def __init__(self, stats: ImportStats | None) -> None:
        self.stats = stats if stats is not None else ImportStats()
        self._ids: set[str] = set()

    def emit(self, entity: Entity) -> Entity:
        self.stats.snapshots += 1
        eid = entity["id"]
        if eid not in self._ids:
            self._ids.add(eid)
            self.stats.entities = len(self._ids)
        return entity


# --- NGSI-LD helpers ---------------------------------------------------------------------------


def utc_iso(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` suffix (no fractional seconds: the sources have none)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prop(value: Any, *, observed_at: str | None = None, unit: str | None = None) -> Entity:
    attr: Entity = {"type": "Property", "value": value}
    if observed_at is not None:
        attr["observedAt"] = observed_at
    if unit is not None:
        attr["unitCode"] = unit
    return attr


def point(lon: float, lat: float) -> Entity:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


# --- CSV helpers -------------------------------------------------------------------------------


class CsvTable:
    """A CSV file read with line numbers and header checks."""

    def __init__(self, path: Path, required: Sequence[str], *, encoding: str = "utf-8-sig"):
        self.path = Path(path)
        self.required = list(required)
        self._encoding = encoding

    def rows(self) -> Iterator[tuple[int, dict[str, str] | RowError]]:
        """Yield ``(line_number, {column: cell})``, or ``(line, error)`` for a short row."""
        with self.path.open(encoding=self._encoding, newline="") as handle:
            reader = csv.reader(handle)
            try:
                header = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ImportDataError(f"unreadable header: {exc}", path=self.path, line=1) from exc
            if header is None:
                raise ImportDataError("empty file (no header)", path=self.path, line=1)
            header = [h.strip() for h in header]
            index: dict[str, int] = {}
            for pos, name in enumerate(header):
                index.setdefault(name, pos)
            for name in self.required:
                if name not in index:
                    raise ImportDataError(
                        f"missing column in header {header!r}",
                        path=self.path,
                        line=1,
                        column=name,
                    )
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise ImportDataError(
                        f"unreadable row: {exc}", path=self.path, line=reader.line_num + 1
                    ) from exc
                line = reader.line_num
                if not cells or all(not c.strip() for c in cells):
                    continue  # blank line
                missing = [n for n in self.required if index[n] >= len(cells)]
                if missing:
                    yield line, RowError(f"row has only {len(cells)} fields", line, missing[0])
                    continue
                yield line, {name: cells[index[name]].strip() for name in self.required}

    def error(self, exc: RowError) -> ImportDataError:
        return ImportDataError(exc.reason, path=self.path, line=exc.line, column=exc.column)


class RowError(Exception):
    """Internal: a bad cell; turned into ImportDataError with the file name by the caller."""

    def __init__(self, reason: str, line: int, column: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column


def parse_int(text: str, line: int, column: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RowError(f"not an integer: {text!r}", line, column) from None


def parse_float(text: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"not a number: {text!r}", line, column) from None
    if not math.isfinite(value):
        raise RowError(f"not a finite number: {text!r}", line, column)
    return value


def rows_checked(
    table: CsvTable,
    parse: Callable[[int, dict[str, str]], Any],
    skip_bad_rows: bool,
    stats: ImportStats,
) -> Iterator[Any]:
    """Run ``parse`` on every row; a bad row raises or (with skip_bad_rows) is counted."""
    for line, row in table.rows():
        stats.rows += 1
        try:
            if isinstance(row, RowError):
                raise row
            yield parse(line, row)
        except RowError as exc:
            if not skip_bad_rows:
                raise table.error(exc) from None
            stats.skipped += 1
