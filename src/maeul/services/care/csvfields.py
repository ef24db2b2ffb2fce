"""Field-level parsing of readings files (``readings.py``): fields cut from raw bytes with
numpy, numbers, dates, clock times, ISO 8601 and Unix times, parsed once per distinct value
where they repeat."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo
from typing import cast

import numpy as np
import numpy.typing as npt

MAX_KW = 1000.0  # far above any household; larger values are corrupt data, not consumption
EPOCH_DAY = np.datetime64("1970-01-01", "D")
MISSING = (b"", b"?", b"nan", b"null", b"na", b"n/a", b"none", b"-")


class ReadingsError(ValueError):
    """A readings file that cannot be used; the message names the line and column."""


def to_seconds(x: datetime) -> int:
    """Wall-clock seconds since 1970-01-01 (an offset, if any, is dropped, not applied)."""
    x = x.replace(tzinfo=None)
    return int((x - datetime(1970, 1, 1)).total_seconds())


def epoch_times(f: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int64] | None:
    """Unix times (10-digit seconds or 13-digit milliseconds, a fraction allowed); None when
    the column holds anything else."""
    if f.size == 0:
        return None
    whole = np.char.partition(f, b".")[:, 0]
    if not bool(np.all(np.char.isdigit(whole))):
        return None
    n = np.char.str_len(whole)
    if bool(np.all((n >= 9) & (n <= 10))):
        return whole.astype(np.int64)
    if bool(np.all((n >= 12) & (n <= 13))):
        return whole.astype(np.int64) // 1000
    return None


def utc_to_wall(t: npt.NDArray[np.int64], zone: tzinfo) -> npt.NDArray[np.int64]:
    """UTC seconds to wall-clock seconds in ``zone`` (each distinct hour's offset looked up)."""
    hours, inv = np.unique(t // 3600, return_inverse=True)
    off = np.array([int(cast(timedelta, datetime.fromtimestamp(int(h) * 3600, zone)
                                   .utcoffset()).total_seconds()) for h in hours], np.int64)
    result: npt.NDArray[np.int64] = t + off[inv.ravel()]
    return result


def fields(
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


def floats(
    f: npt.NDArray[np.bytes_], lines: npt.NDArray[np.int64], fname: str, col: str,
    unit: str = "kW",
) -> npt.NDArray[np.float64]:
    if f.size:
        missing = np.isin(np.char.lower(f), MISSING)
    else:
        missing = f == b""
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
    # the file's own unit; kW after conversion is checked per home (``_to_kw``)
    limit = {"kW": MAX_KW, "W": MAX_KW * 1e3}.get(unit, math.inf)
    shown = unit.rstrip("?") if unit in ("kW", "W") else ""
    bad = np.flatnonzero(~missing & ~((vals >= 0) & (vals <= limit) & np.isfinite(vals)))
    if bad.size:
        i = int(bad[0])
        rng = f"0..{limit:g} {shown}" if shown else "0 or more (and finite)"
        raise ReadingsError(
            f"{fname}: line {int(lines[i])}, column {col}: "
            + (f"power {vals[i]:g} {shown}" if shown else f"value {vals[i]:g}")
            + f" is outside {rng} (negative, infinite or implausibly large)"
        )
    return vals


def parse_unique(
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


def parse_date(text: str) -> int:
    if "/" in text:
        d = datetime.strptime(text, "%d/%m/%Y")
    else:
        d = datetime.strptime(text, "%Y-%m-%d")
    return (d - datetime(1970, 1, 1)).days


def parse_clock(text: str) -> int:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    h, m = int(parts[0]), int(parts[1])
    s = int(parts[2]) if len(parts) == 3 else 0
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        raise ValueError(text)
    return h * 3600 + m * 60 + s


def parse_stamp(text: str, zone: tzinfo | None = None) -> int:
    if "/" in text:
        for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
            try:
                return to_seconds(datetime.strptime(text, fmt))
            except ValueError:
                pass
        raise ValueError(text)
    if len(text) < 16:  # a date alone has no time of day
        raise ValueError(text)
    d = datetime.fromisoformat(text)
    if zone is not None and d.tzinfo is not None:
        d = d.astimezone(zone)
    return to_seconds(d)


def iso_fast(f: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int64] | None:
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
    days = (dates - EPOCH_DAY).astype(np.int64)
    result: npt.NDArray[np.int64] = days * 86400 + hh * 3600 + mi * 60 + ss
    return result
