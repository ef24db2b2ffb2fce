"""When did it happen? Time expressions in Korean and English complaints.

``extract_time(text, now)`` finds the most specific time expression and resolves it against
``now`` (timezone-aware; the city's zone). Words next to each other ("어제 밤 10시쯤",
"last Monday at 10:30 pm") form one expression. The contract:

- past wording (어제, 지난주, N일 전, ago, last, since, 째) never resolves after ``now``;
- a bare hour takes the part of day when given ("밤 10시" → 22:00), otherwise the most recent
  past occurrence (at 09:00, "10시" is yesterday 22:00; at 23:00 it is today 22:00);
- ``earliest``/``latest`` bound what the words can mean and are clipped at ``now``; ``at`` is
  the best single estimate (the stated clock time, else the middle of the interval);
- ``ongoing`` is true for "since", "부터" and "째" ("며칠째" = going on for a few days): then
  the interval is when it started.

The grammar lives in ``extract_when_rules`` (patterns → atoms); this module groups the atoms
and resolves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from maeul.services.civic.extract_when_rules import Atom, find_atoms

MAX_TEXT = 10_000

# tokens allowed between two atoms of one expression ("어제 밤에 10시", "Monday at 10 pm")
_JOIN = frozenset(
    "에 의 에서 at on in the around about approximately approx t of 약 대략 경 쯤 무렵 ,".split()
)
_SPLIT = re.compile(r"[\s,]+")
_RECURRING = re.compile(
    r"(?<![가-힣])(?:매일|매주|매번|매일같이|날마다|밤마다|아침마다|저녁마다|새벽마다|주말마다|평일마다|"
    r"[월화수목금토일]요일마다)|(?i:\b(?:every|each)\s+(?:day|night|morning|evening|afternoon|"
    r"weekend|week|time|monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b|"
    r"\b(?:nightly|daily)\b)"
)


@dataclass(frozen=True, slots=True)
class TimeRef:
    """A time expression found in a text: the words, their span, and what they mean."""

    text: str
    start: int
    end: int
    at: datetime
    earliest: datetime
    latest: datetime
    ongoing: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "at": self.at.isoformat(),
            "earliest": self.earliest.isoformat(),
            "latest": self.latest.isoformat(),
            "ongoing": self.ongoing,
        }


def check_text(text: str) -> None:
    """Shared input contract of the extractors: a str of at most ``MAX_TEXT`` characters."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ValueError(f"text is {len(text)} characters; at most {MAX_TEXT} are accepted")


def _check_now(now: datetime) -> None:
    if not isinstance(now, datetime):
        raise TypeError("now must be a datetime")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (the city's zone, e.g. Asia/Seoul)")


def extract_times(text: str, now: datetime) -> list[TimeRef]:
    """Every time expression in ``text``, in text order."""
    check_text(text)
    _check_now(now)
    if not text.strip():
        return []
    atoms = find_atoms(text, now)
    out: list[TimeRef] = []
    recurring = _RECURRING.search(text) is not None
    for group in _groups(text, atoms):
        if recurring and not any(a.kind == "day" or a.kind == "point" for a in group):
            continue  # "매일 밤 10시", "every night after 11 pm": a habit, not a moment
        try:
            ref = _resolve(text, group, now)
        except OverflowError:
            continue  # at the edge of the calendar datetime can hold
        if ref is not None:
            out.append(ref)
    return out


def extract_time(text: str, now: datetime) -> TimeRef | None:
    """The most specific time expression in ``text`` (a clock time beats a part of day beats a
    day; the first wins a tie), or None."""
    best: tuple[int, TimeRef] | None = None
    for ref in extract_times(text, now):
        rank = _specificity(ref)
        if best is None or rank > best[0]:
            best = (rank, ref)
    return best[1] if best else None


def _specificity(ref: TimeRef) -> int:
    width = (ref.latest - ref.earliest).total_seconds()
    if width <= 2 * 3600:
        return 3
    if width <= 12 * 3600:
        return 2
    return 1


# --- grouping -------------------------------------------------------------------------------


def _fits(group: list[Atom], atom: Atom) -> bool:
    """Whether ``atom`` can join ``group`` without contradicting it."""
    if atom.kind == "point" or any(a.kind == "point" for a in group):
        return False
    if atom.clock is not None and any(a.clock is not None for a in group):
        return False
    if atom.part is not None and any(a.part is not None for a in group):
        return False
    if atom.kind == "day":
        days = [a for a in group if a.kind == "day"]
        if len(days) >= 2:
            return False
        for a in days:
            refines = (a.week_start is not None and atom.weekday is not None) or (
                a.weekday is not None and atom.week_start is not None
            )
            month = (a.month is not None and atom.dom is not None) or (
                a.dom is not None and atom.month is not None
            )
            explicit = a.weekday is not None or atom.weekday is not None
            if not (refines or month or explicit):
                return False
    return True


def _groups(text: str, atoms: list[Atom]) -> list[list[Atom]]:
    groups: list[list[Atom]] = []
    for atom in atoms:
        if groups:
            last = groups[-1]
            gap = text[last[-1].end : atom.start]
            words = [w.lower() for w in _SPLIT.split(gap) if w]
            if all(w in _JOIN for w in words) and len(gap) <= 12 and _fits(last, atom):
                last.append(atom)
                continue
        groups.append([atom])
    # a weak clock ("at 10") alone is not a time: it may be a house number or a count
    return [g for g in groups if not all(a.weak for a in g)]


# --- resolution -----------------------------------------------------------------------------


def _midnight(d: date, now: datetime) -> datetime:
    return datetime.combine(d, time(0), tzinfo=now.tzinfo)


def _day_range(group: list[Atom]) -> tuple[date, date] | None:
    days = [a for a in group if a.kind == "day"]
    if not days:
        return None
    week = next((a for a in days if a.week_start is not None), None)
    wday = next((a for a in days if a.weekday is not None), None)
    if week is not None and wday is not None and week.week_start is not None:
        d = week.week_start + timedelta(days=wday.weekday or 0)
        return d, d
    month = next((a for a in days if a.month is not None), None)
    dom = next((a for a in days if a.dom is not None), None)
    if month is not None and dom is not None and month.month is not None and dom.dom:
        try:
            d = date(month.month[0], month.month[1], dom.dom)
        except ValueError:
            return None
        return d, d
    # an explicit date beats the weekday written beside it ("3월 14일 목요일")
    best = min(days, key=lambda a: (a.weekday is not None, _width(a)))
    assert best.d0 is not None and best.d1 is not None
    return best.d0, best.d1


def _width(a: Atom) -> int:
    assert a.d0 is not None and a.d1 is not None
    return (a.d1 - a.d0).days


def _hours(atom: Atom, part: str | None) -> list[float]:
    """Hours after the base day's midnight that a clock atom can mean (may exceed 24)."""
    assert atom.clock is not None
    h, m = atom.clock
    frac = m / 60
    if h == 0 or h >= 13:
        return [h + frac]
    if atom.meridiem == "am":
        return [h % 12 + frac]
    if atom.meridiem == "pm":
        return [h % 12 + 12 + frac]
    if part in ("오후", "저녁", "afternoon", "evening"):
        return [h % 12 + 12 + frac]
    if part in ("밤", "한밤", "심야", "night"):
        if h == 12:
            return [24 + frac]
        return [(24 if h <= 5 else 12) + h + frac]
    if part in ("새벽", "아침", "오전", "morning"):
        return [h % 12 + frac]
    if part in ("낮", "점심"):
        return [(h if h >= 10 else h + 12) + frac]
    return [h % 12 + frac, h % 12 + 12 + frac]


def _pick(cands: list[datetime], now: datetime) -> datetime:
    past = [c for c in cands if c <= now]
    return max(past) if past else min(cands)


def _resolve(text: str, group: list[Atom], now: datetime) -> TimeRef | None:
    start = min(a.start for a in group)
    end = max(a.end for a in group)
    ongoing = any(a.ongoing for a in group)
    point = next((a for a in group if a.kind == "point"), None)
    clock = next((a for a in group if a.clock is not None), None)
    part_atom = next((a for a in group if a.part is not None), None)
    part = part_atom.part if part_atom else None
    hours = part_atom.hours if part_atom else None
    days = _day_range(group)
    today = now.date()
    if point is not None:
        assert point.at and point.earliest and point.latest
        at, lo, hi = point.at, point.earliest, point.latest
    elif clock is not None:
        hs = _hours(clock, part)
        if days is None:
            base = [today - timedelta(days=k) for k in (0, 1, 2)]
        else:
            base = [days[0] + timedelta(days=k) for k in range((days[1] - days[0]).days + 1)]
        at = _pick([_midnight(d, now) + timedelta(hours=h) for d in base for h in hs], now)
        minutes = clock.clock[1] if clock.clock else 0
        exact = minutes != 0 or clock.has_minutes
        pad = timedelta(minutes=(15 if clock.approx else 5) if exact else (
            60 if clock.approx else 30))
        lo, hi = at - pad, at + pad
    elif hours is not None:
        p0, p1 = hours
        if days is None:
            d = today if _midnight(today, now) + timedelta(hours=p0) <= now else (
                today - timedelta(days=1)
            )
            days = (d, d)
        lo = _midnight(days[0], now) + timedelta(hours=p0)
        hi = _midnight(days[1], now) + timedelta(hours=p1)
        at = lo + (min(hi, now) - lo) / 2 if lo <= now else lo + (hi - lo) / 2
    elif days is not None:
        lo = _midnight(days[0], now)
        hi = _midnight(days[1] + timedelta(days=1), now) - timedelta(seconds=1)
        at = lo + (min(hi, now) - lo) / 2 if lo <= now else lo + (hi - lo) / 2
    else:
        return None
    if lo <= now:
        hi = min(hi, now)
        at = min(max(at, lo), hi)
    # an estimate is good to the minute (the middle of a day is 12:00, not 11:59:59.5)
    rounded = (at + timedelta(seconds=30)).replace(second=0, microsecond=0)
    at = rounded if lo <= rounded <= hi else at
    return TimeRef(text[start:end], start, end, at, lo, hi, ongoing)
