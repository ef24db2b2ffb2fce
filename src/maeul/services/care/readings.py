"""Household power readings from CSV files (plain or gzipped), parsed with numpy.

Columns are found by name in the header line (case-insensitive; the separator is whichever of
``;``, ``,`` or tab the header uses), or named with :class:`CsvSpec` (``maeul care eval
--time-col/--power-col/--unit/--household-col``):

* UCI "Individual household electric power consumption" (the default):
  ``Date;Time;Global_active_power;...`` with ``dd/mm/yyyy`` dates, ``hh:mm:ss`` times and ``?``
  for a missing value.
* Simple: ``timestamp,power_kw`` with ISO 8601 timestamps (``2024-03-01T07:15:00``; a ``T`` or a
  space, seconds optional, an offset such as ``+09:00`` or ``Z`` allowed).
* Others: one time column (``timestamp``, ``datetime``, ``time``, ...; ISO 8601, ``dd/mm/yyyy
  hh:mm``, or Unix epoch seconds or milliseconds) or ``Date`` and ``Time``; a power column whose
  name gives its unit (``power_w``, ``watts``, ``kW``) or an energy column per reading
  (``kWh``, ``energy_wh``, London's ``KWH/hh (per half hour)``), or a plain ``power``/``load``/
  ``energy`` whose unit is read from its values (a median over 20 is taken as W or Wh); and,
  optionally, a household column (``household_id``, ``meter_id``, ``LCLid``, ``dataid``, ...)
  when one file holds several homes.

Times are household wall-clock time. A time written with an offset, and an epoch time, is
converted to the zone ``CsvSpec.tz`` when one is given; without it the offset is dropped (the
wall time as written is kept) and epoch times are read as UTC. The model learns the rhythm of a
day, so the clock the household lives by is the one that matters.

Values become active power in kW: watts are divided by 1000; energy per reading is divided by
the home's reading interval (the median gap; a reading is taken to cover the interval that
starts at its time); a cumulative meter register (``CsvSpec.cumulative``) by the gap to the
next reading. Readings further apart than a slot (15 minutes; half-hourly or hourly meters) are
held over the slots they cover, so the model sees every quarter hour. An empty field, ``?``,
``nan``, ``null`` or ``NA`` is a missing reading (NaN).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from .csvfields import (
    MAX_KW,
    ReadingsError,
    epoch_times,
    fields,
    floats,
    iso_fast,
    parse_clock,
    parse_date,
    parse_stamp,
    parse_unique,
    to_seconds,
    utc_to_wall,
)

__all__ = ["MAX_KW", "CsvSpec", "FileInfo", "Readings", "ReadingsError", "iter_readings",
           "load_households", "load_readings", "to_datetime", "to_seconds"]

TIME_COLUMNS = ("timestamp", "date_time", "datetime", "time_stamp", "timestamp_local",
                "local_time", "datetime_local", "reading_time", "read_time", "time", "ts",
                "timestamp_utc", "utc", "date")
#: words that make a column a time column when no name above is present (``unix_ms``)
TIME_WORDS = {"timestamp", "datetime", "time", "ts", "epoch", "unix", "utc"}
#: power or energy columns known by name, with their unit
KNOWN_COLUMNS = {"global_active_power": "kW", "power_kw": "kW", "kw": "kW"}
#: words that make a column a power (kW or W) or energy (kWh or Wh) reading when no unit is named
POWER_WORDS = ("power", "active_power", "activepower", "load", "demand", "use", "value")
ENERGY_WORDS = ("energy", "consumption", "usage", "active_energy")
NOT_ACTIVE = ("reactive", "apparent", "voltage", "current", "intensity", "sub_metering",
              "submetering", "factor", "gen", "generation", "export", "solar")
HOUSEHOLD_COLUMNS = ("household", "household_id", "householdid", "home", "home_id", "house",
                     "house_id", "meter", "meter_id", "meterid", "lclid", "customer",
                     "customer_id", "dataid", "building", "building_id", "site", "site_id")
UNITS = ("kW", "W", "kWh", "Wh")
MAX_INTERVAL_S = 3600  # coarser readings cannot show a morning's activity
SLOT_S = 900  # the model's slot (``slots.SLOT_S``; not imported: slots imports this module)
_CHUNK = 8 << 20


@dataclass(frozen=True)
class Readings:
    """One household's readings: ``t`` wall-clock seconds since 1970, ``kw`` (NaN: missing)."""

    t: npt.NDArray[np.int64]
    kw: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.t.shape != self.kw.shape or self.t.ndim != 1:
            raise ValueError("t and kw must be one-dimensional arrays of the same length")

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @classmethod
    def from_pairs(cls, times: list[datetime], kw: list[float]) -> Readings:
        """Readings from wall-clock datetimes (naive or aware; the wall time is kept)."""
        t = np.array([to_seconds(x) for x in times], dtype=np.int64)
        return cls(t, np.asarray(kw, dtype=np.float64))

    def between(self, start: int, end: int) -> Readings:
        """The readings with ``start <= t < end`` (seconds)."""
        i, j = np.searchsorted(self.t, [start, end])
        return Readings(self.t[i:j], self.kw[i:j])

    def interval_s(self) -> int:
        """The typical spacing of readings in seconds (the median gap)."""
        if len(self) < 2:
            return 60
        return int(np.median(np.diff(self.t[: min(len(self), 100_000)])))


@dataclass(frozen=True)
class CsvSpec:
    """How to read a file; every field left at None is found from the header (and values).

    ``time_col`` is one column or ``"Date+Time"``; ``unit`` one of :data:`UNITS` (energy units
    are per reading unless ``cumulative``, a meter register); ``household`` picks one home of a
    file with a household column; ``tz`` is an IANA zone such as ``Asia/Seoul``."""

    time_col: str | None = None
    power_col: str | None = None
    unit: str | None = None
    cumulative: bool = False
    household_col: str | None = None
    household: str | None = None
    tz: str | None = None

    def zone(self) -> tzinfo | None:
        if self.tz is None:
            return None
        try:
            return ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ReadingsError(f"unknown time zone {self.tz!r} (an IANA name such as "
                                "'Asia/Seoul' or 'Europe/London')") from None


@dataclass
class FileInfo:
    """What was read from a file, for the report: columns, unit and how the unit was known."""

    time_col: str
    power_col: str
    unit: str
    unit_from: str  # "name", "option" or "values"
    cumulative: bool = False
    household_col: str | None = None
    households: int = 1
    interval_s: dict[str, int] = field(default_factory=dict)  # per home, as read
    rows: dict[str, int] = field(default_factory=dict)  # per home: readings in the file

    def to_json(self) -> dict[str, Any]:
        return {"time_column": self.time_col, "power_column": self.power_col,
                "unit": self.unit + (" (cumulative)" if self.cumulative else ""),
                "unit_from": self.unit_from, "household_column": self.household_col,
                "households": self.households}


def to_datetime(seconds: int | np.integer) -> datetime:
    """The naive wall-clock datetime of ``seconds``."""
    return datetime(1970, 1, 1) + timedelta(seconds=int(seconds))


def load_readings(path: Path | str, spec: CsvSpec | None = None) -> Readings:
    """All readings of one home, sorted by time (duplicate times keep the first reading).

    A file with several homes needs ``spec.household`` (or :func:`load_households`)."""
    homes, info = load_households(path, spec)
    if len(homes) > 1:
        names = ", ".join(list(homes)[:5]) + (", ..." if len(homes) > 5 else "")
        raise ReadingsError(
            f"{Path(path).name}: {len(homes)} households in column {info.household_col} "
            f"({names}): choose one (--household) or evaluate them all")
    return next(iter(homes.values()))


def load_households(path: Path | str, spec: CsvSpec | None = None
                    ) -> tuple[dict[str, Readings], FileInfo]:
    """Every home of a file (one, named ``""``, without a household column), in kW."""
    spec = spec or CsvSpec()
    if spec.unit is not None and spec.unit not in UNITS:
        raise ReadingsError(f"unknown unit {spec.unit!r}: one of {', '.join(UNITS)}")
    if spec.cumulative and spec.unit not in (None, "kWh", "Wh"):
        raise ReadingsError("a cumulative register is energy: its unit is kWh or Wh")
    fname = Path(path).name
    parts: list[_Chunk] = []
    layout: _Layout | None = None
    for found, chunk in _iter_chunks(Path(path), spec):
        layout = found
        parts.append(chunk)
    if layout is None or not parts or sum(len(c.t) for c in parts) == 0:
        raise ReadingsError(f"{fname}: no readings after the header")
    t = np.concatenate([c.t for c in parts])
    v = np.concatenate([c.v for c in parts])
    line = np.concatenate([c.line for c in parts])
    unit, unit_from = layout.unit, "option" if spec.unit else "name"
    if unit.endswith("?"):  # the column's name gives no unit: read it from the values
        pos = v[np.isfinite(v) & (v > 0)]
        big = pos.size > 0 and float(np.median(pos)) > 20.0
        unit = ("W" if big else "kW") if unit == "power?" else ("Wh" if big else "kWh")
        unit_from = "values"
    cumulative = spec.cumulative
    info = FileInfo(layout.time_name, layout.names[layout.power_col], unit, unit_from,
                    cumulative, layout.names[layout.hh_col] if layout.hh_col is not None else None)
    if layout.hh_col is None:
        groups = {"": np.arange(t.size)}
    else:
        ids = np.concatenate([c.ids for c in parts if c.ids is not None])
        uniq, inv = np.unique(ids, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        cuts = np.flatnonzero(np.diff(inv[order])) + 1
        groups = {u.decode(errors="replace"): idx
                  for u, idx in zip(uniq, np.split(order, cuts), strict=True)}
        if spec.household is not None:
            if spec.household not in groups:
                names = ", ".join(list(groups)[:5]) + (", ..." if len(groups) > 5 else "")
                raise ReadingsError(f"{fname}: no household {spec.household!r} in column "
                                    f"{info.household_col} (found {len(groups)}: {names})")
            groups = {spec.household: groups[spec.household]}
    homes: dict[str, Readings] = {}
    for hid, idx in groups.items():
        r, gap = _to_kw(t[idx], v[idx], line[idx], unit, cumulative, fname, info.power_col, hid)
        info.interval_s[hid] = gap
        info.rows[hid] = int(idx.size)
        homes[hid] = r
    info.households = len(homes)
    return homes, info


def _to_kw(t: npt.NDArray[np.int64], v: npt.NDArray[np.float64], line: npt.NDArray[np.int64],
           unit: str, cumulative: bool, fname: str, col: str, hid: str
           ) -> tuple[Readings, int]:
    """One home's values in kW, sorted and on the model's slots; and its reading interval."""
    who = f" (household {hid})" if hid else ""
    if t.size > 1 and bool(np.any(np.diff(t) <= 0)):
        order = np.argsort(t, kind="stable")
        t, v, line = t[order], v[order], line[order]
        keep = np.r_[True, np.diff(t) > 0]
        t, v, line = t[keep], v[keep], line[keep]
    gaps = np.diff(t)
    gap = int(np.median(gaps)) if gaps.size else 60
    if gap > MAX_INTERVAL_S:
        raise ReadingsError(
            f"{fname}{who}: readings every {gap / 3600:.1f} h: the model needs readings at least "
            "hourly (1 to 15 minutes is best) to see when a day begins")
    scale = 1.0 if unit in ("kW", "kWh") else 1e-3
    if cumulative:
        dt = np.r_[gaps, 0].astype(np.float64)
        de = np.r_[np.diff(v), np.nan]
        ok = (dt > 0) & (dt <= 3 * gap) & (de >= 0)  # a reset or a long gap: unknown use
        kw = np.full(v.shape, np.nan)
        kw[ok] = de[ok] * scale * 3600.0 / dt[ok]
    elif unit in ("kWh", "Wh"):
        kw = v * scale * 3600.0 / max(gap, 1)
    else:
        kw = v * scale
    bad = np.flatnonzero(~np.isnan(kw) & ~(kw <= MAX_KW))
    if bad.size:
        i = int(bad[0])
        raise ReadingsError(
            f"{fname}: line {int(line[i])}, column {col}{who}: {v[i]:g} {unit} is "
            f"{kw[i]:g} kW, above {MAX_KW:g} kW (implausibly large for a household)")
    if gap > SLOT_S:  # hold each reading over the slots it covers
        cover = np.minimum(np.r_[gaps, gap], gap)
        n = np.maximum(1, -(-cover // SLOT_S)).astype(np.int64)
        rep = np.repeat(np.arange(t.size), n)
        step = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
        t = t[rep] + step * SLOT_S
        kw = kw[rep]
    return Readings(t.astype(np.int64), kw), gap


@dataclass
class _Chunk:
    t: npt.NDArray[np.int64]
    v: npt.NDArray[np.float64]
    line: npt.NDArray[np.int64]
    ids: npt.NDArray[np.bytes_] | None

    def __len__(self) -> int:
        return int(self.t.shape[0])


def iter_readings(path: Path | str, spec: CsvSpec | None = None) -> Iterator[Readings]:
    """Values in file order, a chunk (a few MB of text) at a time, as written (not in kW when
    the file has another unit; every home together)."""
    for _, c in _iter_chunks(Path(path), spec or CsvSpec()):
        yield Readings(c.t, c.v)


def _iter_chunks(path: Path, spec: CsvSpec) -> Iterator[tuple[_Layout, _Chunk]]:
    if not path.is_file():
        raise ReadingsError(f"{path.name}: no such file")
    opener = cast(IO[bytes], gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb"))
    with opener as fh:
        try:
            head = fh.readline()
        except (OSError, EOFError) as exc:
            raise ReadingsError(f"{path.name}: unreadable ({exc})") from exc
        if not head.strip():
            raise ReadingsError(f"{path.name}: empty file (no header line)")
        layout = _Layout.from_header(head.lstrip(b"\xef\xbb\xbf"), path.name, spec)
        line_no = 2
        rest = b""
        while True:
            try:
                block = fh.read(_CHUNK)
            except (OSError, EOFError) as exc:
                raise ReadingsError(
                    f"{path.name}: unreadable after line {line_no} ({exc})") from exc
            data = rest + block
            if not block:
                rest = b""
            else:
                cut = data.rfind(b"\n")
                if cut < 0:
                    rest = data
                    continue
                data, rest = data[: cut + 1], data[cut + 1 :]
            if data:
                out, n = layout.parse(data, line_no, path.name)
                line_no += n
                if len(out):
                    yield layout, out
            if not block:
                break


def _tokens(name: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]


def _unit_of(name: str) -> str | None:
    """The unit a column's name gives ("power?"/"energy?": a power or energy word, no unit);
    None for a column that is not active power or energy."""
    low = name.lower().strip()
    if low in KNOWN_COLUMNS:
        return KNOWN_COLUMNS[low]
    words = _tokens(low)
    joined = "_".join(words)
    if any(x in joined for x in NOT_ACTIVE):
        return None
    for unit, marks in (("kWh", ("kwh",)), ("Wh", ("wh",)), ("kW", ("kw",)),
                        ("W", ("w", "watt", "watts"))):
        if any(m in words for m in marks):
            return unit
    if joined in POWER_WORDS or any(w in ("power", "load", "demand") for w in words):
        return "power?"
    if joined in ENERGY_WORDS or any(w in ("energy", "consumption") for w in words):
        return "energy?"
    return None


class _Layout:
    def __init__(self, sep: bytes, names: list[str], time_cols: list[int], power_col: int,
                 unit: str, hh_col: int | None, zone: tzinfo | None) -> None:
        self.sep = sep
        self.names = names
        self.time_cols = time_cols
        self.power_col = power_col
        self.unit = unit
        self.hh_col = hh_col
        self.zone = zone
        self.time_name = "+".join(names[c] for c in time_cols)

    @classmethod
    def from_header(cls, head: bytes, fname: str, spec: CsvSpec | None = None) -> _Layout:
        spec = spec or CsvSpec()
        zone = spec.zone()
        text = head.decode("utf-8", errors="replace").rstrip("\r\n")
        counts = {s: text.count(s) for s in (";", ",", "\t")}
        sep = max(counts, key=lambda s: counts[s])
        if counts[sep] == 0:
            raise ReadingsError(
                f"{fname}: line 1 is not a header of separated columns: expected e.g. "
                "'Date;Time;Global_active_power;...' or 'timestamp,power_kw'"
            )
        names = [c.strip().strip('"').strip() for c in text.split(sep)]
        low = [n.lower() for n in names]
        found = ", ".join(names)

        def named(col: str, what: str) -> int:
            if col.lower() not in low:
                raise ReadingsError(f"{fname}: line 1 has no {what} column {col!r} "
                                    f"(found: {found})")
            return low.index(col.lower())

        if spec.time_col:
            time_cols = [named(c.strip(), "time") for c in spec.time_col.split("+")]
            if len(time_cols) > 2:
                raise ReadingsError("--time-col: one column, or a date and a clock column "
                                    "joined by '+' (e.g. 'Date+Time')")
        elif "date" in low and "time" in low:
            time_cols = [low.index("date"), low.index("time")]
        else:
            hits = [low.index(c) for c in TIME_COLUMNS if c in low] or [
                k for k, n in enumerate(names)
                if set(_tokens(n)) & TIME_WORDS and _unit_of(n) is None]
            if not hits:
                raise ReadingsError(
                    f"{fname}: line 1 has no time column: need Date and Time, or one of "
                    f"{', '.join(TIME_COLUMNS)}, or name it with --time-col (found: {found})"
                )
            time_cols = [hits[0]]
        if spec.power_col:
            power = named(spec.power_col, "power")
            unit = spec.unit or _unit_of(names[power]) or "power?"
        else:
            units = [(_unit_of(n), k) for k, n in enumerate(names) if k not in time_cols]
            rank = {"kW": 0, "W": 0, "kWh": 0, "Wh": 0, "power?": 1, "energy?": 2}
            known = [k for k, n in enumerate(low) if n in KNOWN_COLUMNS]
            cands = sorted(((rank[u], k) for u, k in units if u is not None))
            if not known and not cands:
                raise ReadingsError(
                    f"{fname}: line 1 has no power column: need one of "
                    f"{', '.join(KNOWN_COLUMNS)}, a name with its unit (power_w, kWh, ...), or "
                    f"--power-col (found: {found})"
                )
            power = known[0] if known else cands[0][1]
            unit = spec.unit or _unit_of(names[power]) or "power?"
        if spec.cumulative and unit in ("power?", "energy?"):
            unit = "energy?"
        if spec.cumulative and unit in ("kW", "W"):
            raise ReadingsError(f"--cumulative: column {names[power]} is power ({unit}), "
                                "not a meter register")
        hh: int | None = None
        if spec.household_col:
            hh = named(spec.household_col, "household")
        else:
            hits = [low.index(c) for c in HOUSEHOLD_COLUMNS if c in low]
            hh = hits[0] if hits else None
        if spec.household is not None and hh is None:
            raise ReadingsError(f"{fname}: --household needs a household column (one of "
                                f"{', '.join(HOUSEHOLD_COLUMNS)}, or --household-col)")
        if hh is not None and (hh == power or hh in time_cols):
            raise ReadingsError(f"{fname}: column {names[hh]} cannot be the household and "
                                "the time or power column at once")
        return cls(sep.encode(), names, time_cols, power, unit, hh, zone)

    def parse(self, data: bytes, first_line: int, fname: str) -> tuple[_Chunk, int]:
        """Parse whole lines; returns the values and the number of lines consumed."""
        data = data.replace(b"\r", b"")
        arr = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(arr == 10)
        if data and data[-1:] != b"\n":
            nl = np.r_[nl, len(arr)]
        starts = np.r_[0, nl[:-1] + 1]
        ends = nl
        n_lines = int(starts.size)
        line_nos = first_line + np.arange(n_lines)
        keep = ends > starts  # blank lines are skipped
        starts, ends, line_nos = starts[keep], ends[keep], line_nos[keep]
        if starts.size == 0:
            return _Chunk(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64),
                          None), n_lines
        ncol = len(self.names)
        seps = np.flatnonzero(arr == self.sep[0])
        per_line = np.searchsorted(seps, ends) - np.searchsorted(seps, starts)
        bad = np.flatnonzero(per_line != ncol - 1)
        if bad.size:
            i = int(bad[0])
            raise ReadingsError(
                f"{fname}: line {int(line_nos[i])} has {int(per_line[i]) + 1} fields, the header "
                f"has {ncol} (separator {self.sep.decode()!r}; quoted separators are not supported)"
            )
        first = np.searchsorted(seps, starts)
        cols = {}
        wanted = set(self.time_cols) | {self.power_col}
        if self.hh_col is not None:
            wanted.add(self.hh_col)
        for c in wanted:
            s = starts if c == 0 else seps[first + c - 1] + 1
            e = ends if c == ncol - 1 else seps[first + c]
            cols[c] = fields(arr, s, e, fname, self.names[c], line_nos)
        t = self._times(cols, line_nos, fname)
        v = floats(cols[self.power_col], line_nos, fname, self.names[self.power_col],
                    self.unit)
        ids = None
        if self.hh_col is not None:
            ids = cols[self.hh_col]
            empty = np.flatnonzero(ids == b"")
            if empty.size:
                raise ReadingsError(f"{fname}: line {int(line_nos[int(empty[0])])}, column "
                                    f"{self.names[self.hh_col]}: no household")
        return _Chunk(t, v, line_nos.astype(np.int64), ids), n_lines

    def _times(
        self, cols: dict[int, npt.NDArray[np.bytes_]], lines: npt.NDArray[np.int64], fname: str
    ) -> npt.NDArray[np.int64]:
        if len(self.time_cols) == 2:
            d, h = self.time_cols
            days = parse_unique(cols[d], lines, fname, self.names[d], parse_date)
            secs = parse_unique(cols[h], lines, fname, self.names[h], parse_clock)
            return days * 86400 + secs
        c = self.time_cols[0]
        fast = iso_fast(cols[c])
        if fast is not None:
            return fast
        epoch = epoch_times(cols[c])
        if epoch is not None:
            return utc_to_wall(epoch, self.zone or UTC)
        zone = self.zone

        def stamp(text: str) -> int:
            return parse_stamp(text, zone)

        return parse_unique(cols[c], lines, fname, self.names[c], stamp)
