"""Household power readings from CSV files (plain or gzipped), parsed with numpy.

Two layouts are recognised from the header line (names are case-insensitive, the separator is
whichever of ``;``, ``,`` or tab the header uses):

* UCI "Individual household electric power consumption": ``Date;Time;Global_active_power;...``
  with ``dd/mm/yyyy`` dates, ``hh:mm:ss`` times and ``?`` for a missing value. A single
  ``date_time`` (or ``datetime``) column in ISO form is accepted in place of Date and Time.
* Simple: ``timestamp,power_kw`` with ISO 8601 timestamps (``2024-03-01T07:15:00``; a ``T`` or a
  space, seconds optional, an offset such as ``+09:00`` or ``Z`` allowed).

Times are household wall-clock time as written (an offset is dropped, not applied): the model
learns the rhythm of a day, so the clock the household lives by is the one that matters.
Power is active power in kW; an empty field, ``?`` or ``nan`` is a missing reading (NaN).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, cast

import numpy as np
import numpy.typing as npt

TIME_COLUMNS = ("timestamp", "date_time", "datetime", "time_stamp")
POWER_COLUMNS = ("global_active_power", "power_kw", "kw")
MAX_KW = 1000.0  # far above any household; larger values are corrupt data, not consumption
_CHUNK = 8 << 20
_EPOCH_DAY = np.datetime64("1970-01-01", "D")


class ReadingsError(ValueError):
    """A readings file that cannot be used; the message names the line and column."""


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


def to_seconds(x: datetime) -> int:
    """Wall-clock seconds since 1970-01-01 (an offset, if any, is dropped, not applied)."""
    x = x.replace(tzinfo=None)
    return int((x - datetime(1970, 1, 1)).total_seconds())


def to_datetime(seconds: int | np.integer) -> datetime:
    """The naive wall-clock datetime of ``seconds``."""
    return datetime(1970, 1, 1) + timedelta(seconds=int(seconds))


def load_readings(path: Path | str) -> Readings:
    """All readings of a file, sorted by time (duplicate times keep the first reading)."""
    parts = list(iter_readings(path))
    if not parts or sum(len(p) for p in parts) == 0:
        raise ReadingsError(f"{Path(path).name}: no readings after the header")
    t = np.concatenate([p.t for p in parts])
    kw = np.concatenate([p.kw for p in parts])
    if t.size > 1 and bool(np.any(np.diff(t) <= 0)):
        order = np.argsort(t, kind="stable")
        t, kw = t[order], kw[order]
        keep = np.r_[True, np.diff(t) > 0]
        t, kw = t[keep], kw[keep]
    return Readings(t, kw)


def iter_readings(path: Path | str) -> Iterator[Readings]:
    """Readings in file order, a chunk (a few MB of text) at a time."""
    path = Path(path)
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
        layout = _Layout.from_header(head.lstrip(b"\xef\xbb\xbf"), path.name)
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
                    yield out
            if not block:
                break


class _Layout:
    def __init__(self, sep: bytes, names: list[str], time_cols: list[int], power_col: int) -> None:
        self.sep = sep
        self.names = names
        self.time_cols = time_cols
        self.power_col = power_col

    @classmethod
    def from_header(cls, head: bytes, fname: str) -> _Layout:
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
        if "date" in low and "time" in low:
            time_cols = [low.index("date"), low.index("time")]
        else:
            found = [low.index(c) for c in TIME_COLUMNS if c in low]
            if not found:
                raise ReadingsError(
                    f"{fname}: line 1 has no time column: need Date and Time, or one of "
                    f"{', '.join(TIME_COLUMNS)} (found: {', '.join(names)})"
                )
            time_cols = [found[0]]
        power = [low.index(c) for c in POWER_COLUMNS if c in low]
        if not power:
            raise ReadingsError(
                f"{fname}: line 1 has no power column: need one of {', '.join(POWER_COLUMNS)} "
                f"in kW (found: {', '.join(names)})"
            )
        return cls(sep.encode(), names, time_cols, power[0])

    def parse(self, data: bytes, first_line: int, fname: str) -> tuple[Readings, int]:
        """Parse whole lines; returns the readings and the number of lines consumed."""
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
            return Readings(np.zeros(0, np.int64), np.zeros(0)), n_lines
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
        for c in set(self.time_cols) | {self.power_col}:
            s = starts if c == 0 else seps[first + c - 1] + 1
            e = ends if c == ncol - 1 else seps[first + c]
            cols[c] = _fields(arr, s, e, fname, self.names[c], line_nos)
        t = self._times(cols, line_nos, fname)
        kw = _floats(cols[self.power_col], line_nos, fname, self.names[self.power_col])
        return Readings(t, kw), n_lines

    def _times(
        self, cols: dict[int, npt.NDArray[np.bytes_]], lines: npt.NDArray[np.int64], fname: str
    ) -> npt.NDArray[np.int64]:
        if len(self.time_cols) == 2:
            d, h = self.time_cols
            days = _parse_unique(cols[d], lines, fname, self.names[d], _parse_date)
            secs = _parse_unique(cols[h], lines, fname, self.names[h], _parse_clock)
            return days * 86400 + secs
        c = self.time_cols[0]
        fast = _iso_fast(cols[c])
        if fast is not None:
            return fast
        return _parse_unique(cols[c], lines, fname, self.names[c], _parse_stamp)


def _fields(
    arr: npt.NDArray[np.uint8],
    s: npt.NDArray[np.int64],
    e: npt.NDArray[np.int64],
    fname: str,
    col: str,
    lines: npt.NDArray[np.int64],
) -> npt.NDArray[np.bytes_]:
    """Field text of every line as a fixed-width bytes array, blanks and quotes stripped."""
    width = e - s
    w = int(width.max()) if width.size else 0
    if w > 64:
        i = int(np.argmax(width))
        raise ReadingsError(
            f"{fname}: line {int(lines[i])}, column {col}: field too long ({w} characters)")
    if w == 0:
        return np.zeros(s.shape, dtype="S1")
    j = np.arange(w)
    idx = np.minimum(s[:, None] + j[None, :], arr.size - 1)
    mat = np.where(j[None, :] < width[:, None], arr[idx], 0).astype(np.uint8)
    out: npt.NDArray[np.bytes_] = np.ascontiguousarray(mat).view(f"S{w}").ravel()
    if bool(np.any(mat[:, 0] == ord('"'))) or bool(np.any(mat[:, 0] == ord(" "))):
        out = np.char.strip(np.char.strip(out), b'"')
    return out


def _floats(
    f: npt.NDArray[np.bytes_], lines: npt.NDArray[np.int64], fname: str, col: str
) -> npt.NDArray[np.float64]:
    missing = (f == b"") | (f == b"?") | (np.char.lower(f) == b"nan") if f.size else f == b""
    vals = np.full(f.shape, np.nan)
    try:
        vals[~missing] = f[~missing].astype(np.float64)
    except ValueError:
        for j in np.flatnonzero(~missing):
            try:
                float(f[j])
            except ValueError:
                raise ReadingsError(
                    f"{fname}: line {int(lines[j])}, column {col}: not a number: "
                    f"{f[j].decode(errors='replace')[:20]!r}"
                ) from None
    bad = np.flatnonzero(~missing & ~((vals >= 0) & (vals <= MAX_KW)))
    if bad.size:
        i = int(bad[0])
        raise ReadingsError(
            f"{fname}: line {int(lines[i])}, column {col}: power {vals[i]:g} kW is outside "
            f"0..{MAX_KW:g} kW (negative, infinite or implausibly large)"
        )
    return vals


def _parse_unique(
    f: npt.NDArray[np.bytes_],
    lines: npt.NDArray[np.int64],
    fname: str,
    col: str,
    parse: object,
) -> npt.NDArray[np.int64]:
    """Parse each distinct value once (dates and clock times repeat a lot)."""
    uniq, inv = np.unique(f, return_inverse=True)
    out = np.empty(uniq.size, dtype=np.int64)
    for k, u in enumerate(uniq):
        text = u.decode(errors="replace")
        try:
            out[k] = parse(text)  # type: ignore[operator]
        except ValueError:
            i = int(np.flatnonzero(inv == k)[0])
            raise ReadingsError(
                f"{fname}: line {int(lines[i])}, column {col}: cannot read {text[:30]!r} as a "
                "date/time (UCI: dd/mm/yyyy and hh:mm:ss; simple: ISO 8601)"
            ) from None
    result: npt.NDArray[np.int64] = out[inv.ravel()]
    return result


def _parse_date(text: str) -> int:
    if "/" in text:
        d = datetime.strptime(text, "%d/%m/%Y")
    else:
        d = datetime.strptime(text, "%Y-%m-%d")
    return (d - datetime(1970, 1, 1)).days


def _parse_clock(text: str) -> int:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    h, m = int(parts[0]), int(parts[1])
    s = int(parts[2]) if len(parts) == 3 else 0
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        raise ValueError(text)
    return h * 3600 + m * 60 + s


def _parse_stamp(text: str) -> int:
    if "/" in text:
        for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
            try:
                return to_seconds(datetime.strptime(text, fmt))
            except ValueError:
                pass
        raise ValueError(text)
    if len(text) < 16:  # a date alone has no time of day
        raise ValueError(text)
    return to_seconds(datetime.fromisoformat(text))


def _iso_fast(f: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int64] | None:
    """Vectorised 'YYYY-MM-DD HH:MM[:SS]' (or T); None when the column has another form."""
    if f.size == 0 or f.dtype.itemsize not in (16, 19):
        return None
    w = f.dtype.itemsize
    m = np.frombuffer(f.tobytes(), dtype=np.uint8).reshape(-1, w)
    if np.any(m[:, w - 1] == 0):  # shorter values: not all of one form
        return None
    punct = {4: b"-", 7: b"-", 13: b":"} | ({16: b":"} if w == 19 else {})
    for pos, ch in punct.items():
        if not bool(np.all(m[:, pos] == ch[0])):
            return None
    if not bool(np.all((m[:, 10] == ord(" ")) | (m[:, 10] == ord("T")))):
        return None
    dig = [p for p in range(w) if p not in punct and p != 10]
    d = m[:, dig].astype(np.int64) - 48
    if bool(np.any((d < 0) | (d > 9))):
        return None
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    mon, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hh, mi = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11]
    ss = d[:, 12] * 10 + d[:, 13] if w == 19 else np.zeros_like(hh)
    ok = (mon >= 1) & (mon <= 12) & (day >= 1) & (hh < 24) & (mi < 60) & (ss < 61)
    if not bool(np.all(ok)):
        return None
    months = (year - 1970) * 12 + (mon - 1)
    first = (np.datetime64("1970-01", "M") + months.astype("timedelta64[M]")).astype("M8[D]")
    dates = first + (day - 1).astype("timedelta64[D]")
    # a day past the month's end (31 April) rolls over silently above; reject it instead
    if bool(np.any(dates.astype("M8[M]") != first.astype("M8[M]"))):
        return None
    days = (dates - _EPOCH_DAY).astype(np.int64)
    result: npt.NDArray[np.int64] = days * 86400 + hh * 3600 + mi * 60 + ss
    return result
