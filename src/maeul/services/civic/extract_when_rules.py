"""The time grammar of ``extract_when``: regular patterns for Korean and English time words,
each turned into an ``Atom`` (a day range, a part of day, a clock time or a point in time)
resolved against ``now``. Relative past words are resolved here so that they can never land
after ``now``; grouping atoms and picking a clock time's day happen in ``extract_when``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

_H = "가-힣"


@dataclass(slots=True)
class Atom:
    """One time word (or a tight phrase) and what it contributes to an expression."""

    start: int
    end: int
    kind: str  # "day" | "part" | "clock" | "point"
    d0: date | None = None  # day range, inclusive
    d1: date | None = None
    week_start: date | None = None  # the range is a whole week: a weekday picks a day in it
    month: tuple[int, int] | None = None  # the range is a month: a day of month picks a day
    weekday: int | None = None
    dom: int | None = None
    part: str | None = None  # canonical part-of-day name
    hours: tuple[float, float] | None = None  # that part's hours after the day's midnight
    clock: tuple[int, int] | None = None
    has_minutes: bool = False
    meridiem: str | None = None
    approx: bool = False
    at: datetime | None = None
    earliest: datetime | None = None
    latest: datetime | None = None
    ongoing: bool = False
    weak: bool = False  # "at 10": a time only beside a day or a part of day


PARTS: dict[str, tuple[str, tuple[float, float]]] = {
    "새벽": ("새벽", (0, 6)), "아침": ("아침", (6, 10)), "오전": ("오전", (6, 12)),
    "점심": ("점심", (11, 14)), "낮": ("낮", (10, 17)), "오후": ("오후", (12, 18)),
    "저녁": ("저녁", (17, 21)), "밤": ("밤", (19, 28)), "한밤": ("한밤", (22, 28)),
    "한밤중": ("한밤", (22, 28)), "심야": ("심야", (23, 29)),
    "morning": ("morning", (6, 12)), "afternoon": ("afternoon", (12, 18)),
    "evening": ("evening", (17, 22)), "night": ("night", (19, 28)),
    "overnight": ("night", (19, 30)),
}
_KNUM = {"한": 1, "하나": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7,
         "여덟": 8, "아홉": 9, "열": 10, "열한": 11, "열두": 12, "스무": 20}
_KDAYS = {"하루": 1, "이틀": 2, "사흘": 3, "나흘": 4, "닷새": 5, "엿새": 6, "이레": 7,
          "열흘": 10, "보름": 15, "일주일": 7}
_ENUM = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
         "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_VAGUE_EN = {"a few", "few", "several", "a couple of", "couple of", "some", "many"}
_KWEEK = "월화수목금토일"
_EWEEK = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_EMONTH = {m: i + 1 for i, ms in enumerate(
    ["jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july",
     "aug august", "sep sept september", "oct october", "nov november", "dec december"])
    for m in ms.split()}

_KN = r"\d{1,3}|열두|열한|스무|다섯|여섯|일곱|여덟|아홉|한|두|세|네|열|몇"
_EN_N = r"\d{1,3}|a couple of|couple of|a few|few|several|some|many|an?|" + "|".join(
    k for k in _ENUM if k not in ("a", "an"))
_MON = "|".join(sorted(_EMONTH, key=len, reverse=True))


class _Ctx:
    def __init__(self, text: str, now: datetime) -> None:
        self.text = text
        self.now = now
        self.today = now.date()
        self.monday = self.today - timedelta(days=self.today.weekday())

    def day(self, m: re.Match[str], d0: date, d1: date | None = None, **kw: object) -> Atom:
        d1 = d0 if d1 is None else d1
        if d0 <= self.today:  # a past range never reaches into the future
            d1 = min(d1, self.today)
        return Atom(m.start(), m.end(), "day", d0, d1, **kw)  # type: ignore[arg-type]

    def point(self, m: re.Match[str], ago: timedelta, lo: timedelta, hi: timedelta,
              ongoing: bool = False) -> Atom:
        return Atom(m.start(), m.end(), "point", at=self.now - ago, earliest=self.now - lo,
                    latest=self.now - hi, ongoing=ongoing)


def _num(word: str) -> int | None:
    """A count written in digits, Korean or English words; None for vague ones (몇, a few)."""
    w = word.strip().lower()
    if w.isdigit():
        return int(w)
    return _KNUM.get(w, _ENUM.get(w))


_MAX_DAYS = 36_600  # a century: beyond that a number is not a time ago


def _ago(c: _Ctx, m: re.Match[str], unit: str, n: int | None, since: bool) -> Atom | None:
    """``n`` units before now (None = a few); ``since`` = it has gone on that long."""
    t = c.today
    if unit == "day":
        if n is None:
            return c.day(m, t - timedelta(days=6), t - timedelta(days=2), ongoing=since)
        if n > _MAX_DAYS:
            return None
        d1 = t - timedelta(days=max(n - 1, 0)) if since else t - timedelta(days=n)
        return c.day(m, t - timedelta(days=n), d1, ongoing=since)
    if unit in ("week", "month", "year"):
        span, slack = {"week": (7, 3), "month": (30, 10), "year": (365, 60)}[unit]
        if n is None:
            return c.day(m, t - timedelta(days=6 * span), t - timedelta(days=2 * span),
                         ongoing=since)
        if n * span > _MAX_DAYS:
            return None
        mid = t - timedelta(days=n * span)
        return c.day(m, mid - timedelta(days=slack), mid + timedelta(days=slack), ongoing=since)
    size = timedelta(hours=1) if unit == "hour" else timedelta(minutes=1)
    if n is None:
        return c.point(m, 3 * size, 6 * size, 2 * size, since)
    if n * size > timedelta(days=_MAX_DAYS):
        return None
    pad = timedelta(minutes=30) if unit == "hour" else timedelta(minutes=2)
    return c.point(m, n * size, n * size + pad, max(n * size - pad, timedelta(0)), since)


_KUNIT = {"일": "day", "주": "week", "주일": "week", "달": "month", "개월": "month",
          "년": "year", "시간": "hour", "분": "minute"}


def _ko_amount(c: _Ctx, m: re.Match[str]) -> Atom | None:
    num, unit, word, tail = m.group(1), m.group(2), m.group(3), m.group(4)
    since = tail != "전"
    if word:
        if word in ("며칠", "몇일"):
            return _ago(c, m, "day", None, since)
        if word == "일주일":
            return _ago(c, m, "week", 1, since)
        return _ago(c, m, "day", _KDAYS[word], since)
    return _ago(c, m, _KUNIT[unit], _num(num), since)


def _en_for(c: _Ctx, m: re.Match[str]) -> Atom | None:
    """"for 3 days", "for days", "for the past week": going on since then."""
    lead, num, word = m.group(1).lower(), m.group(2), m.group(3).lower()
    if num:
        n = None if num.lower() in _VAGUE_EN else _num(num)
    elif word.endswith("s"):
        n = None  # "for days"
    elif "past" in lead or "last" in lead:
        n = 1
    else:
        return None
    return _ago(c, m, word.rstrip("s"), n, since=True)


def _recent(c: _Ctx, month: int, day: int, year: int | None) -> date | None:
    """The date; without a year, its most recent occurrence on or before today."""
    if year is not None:
        year = year + 2000 if year < 100 else year
        try:
            return date(year, month, day)
        except ValueError:
            return None
    for y in range(c.today.year, c.today.year - 5, -1):
        try:
            d = date(y, month, day)
        except ValueError:
            continue
        if d <= c.today:
            return d
    return None


def _date(c: _Ctx, m: re.Match[str], y: str | None, mo: str, d: str) -> Atom | None:
    day = _recent(c, int(mo), int(d), int(y) if y else None)
    return c.day(m, day) if day else None


def _dom(c: _Ctx, m: re.Match[str]) -> Atom | None:
    n = int(m.group(1))
    t = c.today
    for back in range(0, 4):
        y, mo = t.year, t.month - back
        while mo < 1:
            y, mo = y - 1, mo + 12
        try:
            d = date(y, mo, n)
        except ValueError:
            continue
        if d <= t:
            return c.day(m, d, dom=n)
    return None


def _month_atom(c: _Ctx, m: re.Match[str], y: int, mo: int) -> Atom:
    while mo < 1:
        y, mo = y - 1, mo + 12
    while mo > 12:
        y, mo = y + 1, mo - 12
    first = date(y, mo, 1)
    nxt = date(y + (mo == 12), mo % 12 + 1, 1)
    return c.day(m, first, nxt - timedelta(days=1), month=(y, mo))


def _month_part(c: _Ctx, m: re.Match[str]) -> Atom | None:
    """"지난달 말", "3월 초", "이번 달 중순": the first, middle or last ten days of a month."""
    g = [x for x in m.groups()]
    rel, word, num, part = (g[0] or g[4], g[1] or g[5], g[2] or g[6], g[3] or g[7])
    if num:
        if not 1 <= int(num) <= 12:
            return None
        base = _month_name(c, m, int(num))
    else:
        last = rel in ("지난", "저번") or word == "지난달"
        base = _month_atom(c, m, c.today.year, c.today.month - (1 if last else 0))
    assert base.d0 is not None
    first = base.d0
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    if part.startswith(("초", "상")):
        return c.day(m, first, first + timedelta(days=9))
    if part == "중순":
        return c.day(m, first + timedelta(days=10), first + timedelta(days=19))
    return c.day(m, first + timedelta(days=20), nxt - timedelta(days=1))


def _month_name(c: _Ctx, m: re.Match[str], mo: int) -> Atom:
    y = c.today.year if mo <= c.today.month else c.today.year - 1
    return _month_atom(c, m, y, mo)


def _week(c: _Ctx, m: re.Match[str], offset: int) -> Atom:
    start = c.monday + timedelta(days=7 * offset)
    return c.day(m, start, start + timedelta(days=6), week_start=start)


def _weekend(c: _Ctx, m: re.Match[str], last: bool) -> Atom:
    sat = c.monday + timedelta(days=5)
    if last or sat > c.today:
        sat -= timedelta(days=7)
    return c.day(m, sat, sat + timedelta(days=1))


def _weekday(c: _Ctx, m: re.Match[str], mode: str, wd: int) -> Atom:
    t = c.today
    back = (t.weekday() - wd) % 7
    if mode == "last" and back == 0:
        back = 7
    if mode == "next":
        ahead = (wd - t.weekday()) % 7 or 7
        d = t + timedelta(days=ahead)
    else:
        d = t - timedelta(days=back)
    return c.day(m, d, weekday=wd)


def _ko_weekday(c: _Ctx, m: re.Match[str]) -> Atom:
    mode = {"지난": "last", "저번": "last", "다음": "next"}.get((m.group(1) or "").strip(), "")
    return _weekday(c, m, mode, _KWEEK.index(m.group(2)))


def _en_weekday(c: _Ctx, m: re.Match[str]) -> Atom:
    lead = (m.group(1) or "").lower()
    mode = "last" if lead in ("last", "past") else "next" if lead == "next" else ""
    return _weekday(c, m, mode, _EWEEK.index(m.group(2).lower()))


def _part(m: re.Match[str], word: str, offset_day: tuple[_Ctx, int] | None = None) -> Atom:
    name, hours = PARTS[word]
    if offset_day is None:
        return Atom(m.start(), m.end(), "part", part=name, hours=hours)
    c, back = offset_day
    d = c.today - timedelta(days=back)
    return c.day(m, d, part=name, hours=hours)


def _clock(m: re.Match[str], h: int, mi: int, has_min: bool, mer: str | None,
           approx: bool, weak: bool = False) -> Atom | None:
    if h > 24 or mi > 59 or (h == 24 and mi):
        return None
    return Atom(m.start(), m.end(), "clock", clock=(h, mi), has_minutes=has_min, meridiem=mer,
                approx=approx, weak=weak)


def _ko_clock(c: _Ctx, m: re.Match[str]) -> Atom | None:
    h = _num(m.group("h") or m.group("hw"))
    if h is None:
        return None
    mi = 30 if m.group("half") else int(m.group("m") or 0)
    has_min = bool(m.group("m") or m.group("half"))
    return _clock(m, h, mi, has_min, None, bool(m.group("pre") or m.group("post")))


def _en_clock(c: _Ctx, m: re.Match[str]) -> Atom | None:
    mer = m.group(4).lower().replace(".", "") if m.group(4) else None
    approx = bool(m.group(1)) and m.group(1).strip().lower() not in ("at", "@")
    return _clock(m, int(m.group(2)), int(m.group(3) or 0), bool(m.group(3)), mer, approx)


_Rule = tuple[re.Pattern[str], Callable[[_Ctx, re.Match[str]], Atom | None]]
_I = re.IGNORECASE


def _r(pattern: str, fn: Callable[[_Ctx, re.Match[str]], Atom | None], flags: int = 0) -> _Rule:
    return re.compile(pattern, flags), fn


_KO_DAY_BACK = {"어제": 1, "어젯": 1, "엊": 1, "지난": 1, "간": 1, "오늘": 0, "그제": 2,
                "그저께": 2}
RULES: list[_Rule] = [
    # --- Korean ---
    _r(rf"(?<![{_H}])(어젯|어제|오늘|그저께|그제|지난|엊(?=저녁)|간(?=밤))\s?"
       r"(밤|저녁|아침|새벽|오후|오전|낮(?![은게아춰추])|점심)",
       lambda c, m: _part(m, m.group(2), (c, _KO_DAY_BACK[m.group(1)]))),
    _r(rf"(?<![{_H}])(오늘|금일)", lambda c, m: c.day(m, c.today)),
    _r(rf"(?<![{_H}])(어제|작일)", lambda c, m: c.day(m, c.today - timedelta(days=1))),
    _r(rf"(?<![{_H}])(그저께|그제)", lambda c, m: c.day(m, c.today - timedelta(days=2))),
    _r(rf"(?<![{_H}])그끄(?:저께|제)", lambda c, m: c.day(m, c.today - timedelta(days=3))),
    _r(rf"(?<![{_H}])엊그(?:저께|제)",
       lambda c, m: c.day(m, c.today - timedelta(days=3), c.today - timedelta(days=2))),
    _r(rf"(?<![{_H}])(?:지난|저번)\s?주말", lambda c, m: _weekend(c, m, True)),
    _r(rf"(?<![{_H}])(?:이번\s?)?주말", lambda c, m: _weekend(c, m, False)),
    _r(rf"(?<![{_H}])(?:지난|저번)\s?주(?![말일])",
       lambda c, m: _week(c, m, -1)),
    _r(rf"(?<![{_H}])(?:이번\s?주|금주)(?!말)", lambda c, m: _week(c, m, 0)),
    _r(rf"(?<![{_H}])다음\s?주(?!말)", lambda c, m: _week(c, m, 1)),
    _r(rf"(?<![{_H}])(?:지난|저번)\s?달|(?<![{_H}])지난달|(?<![{_H}])전월",
       lambda c, m: _month_atom(c, m, c.today.year, c.today.month - 1)),
    _r(rf"(?<![{_H}])(?:이번\s?달|이달)", lambda c, m: _month_atom(c, m, c.today.year,
                                                              c.today.month)),
    _r(rf"(?<![{_H}])(?:(지난|저번|이번)\s?달|(지난달|이달)|(\d{{1,2}})\s?월)\s?(초|초순|상순|중순|말|하순|"
       rf"말경|말쯤)(?![{_H}])|(?<![{_H}])(?:(지난|저번|이번)\s?달|(지난달|이달)|(\d{{1,2}})\s?월)\s?"
       r"(초|말)(?=부터|에|쯤|경|께)", _month_part),
    _r(rf"(?<![{_H}])(?:작년|지난\s?해)", lambda c, m: c.day(
        m, date(c.today.year - 1, 1, 1), date(c.today.year - 1, 12, 31))),
    _r(rf"(?<![{_H}])(?:올해|금년)", lambda c, m: c.day(m, date(c.today.year, 1, 1), c.today)),
    _r(rf"(?<![{_H}])(?:요즘|요새|최근)", lambda c, m: c.day(m, c.today - timedelta(days=14),
                                                         c.today)),
    _r(rf"(?<![{_H}])내일", lambda c, m: c.day(m, c.today + timedelta(days=1))),
    _r(rf"(?<![{_H}])(지난|저번|이번|다음)?\s?([{_KWEEK}])요일", _ko_weekday),
    _r(rf"(?<![{_H}\d])(?:({_KN})\s?(일|주일|주|달|개월|년|시간|분)|"
       r"(일주일|하루|이틀|사흘|나흘|닷새|엿새|이레|열흘|보름|며칠|몇일))\s?"
       r"(전|째|동안|간|넘게|이상|가까이|넘도록|내내)", _ko_amount),
    _r(rf"(?<![{_H}])방금",
       lambda c, m: c.point(m, timedelta(minutes=5), timedelta(minutes=15), timedelta(0))),
    _r(rf"(?<![{_H}])아까",
       lambda c, m: c.point(m, timedelta(hours=1), timedelta(hours=6), timedelta(minutes=5))),
    _r(rf"(?<![{_H}])(?:조금|좀)\s?전",
       lambda c, m: c.point(m, timedelta(minutes=30), timedelta(hours=2), timedelta(0))),
    _r(rf"(?<![{_H}])얼마\s?전", lambda c, m: c.day(m, c.today - timedelta(days=14),
                                                  c.today - timedelta(days=1))),
    _r(rf"(?:(?<![{_H}])|(?<=요일))(한밤중|한밤|새벽|아침|오전|점심|낮(?![은게아춰추])|오후|"
       rf"저녁|심야|밤)(?:때|시간|중|무렵|녘)?", lambda c, m: _part(m, m.group(1))),
    _r(rf"(?P<pre>약\s?)?(?:(?<![\d.:])(?P<h>\d{{1,2}})|(?<![{_H}])(?P<hw>{_KN}))\s?"
       r"시(?![간청민내장설외작계적])\s?(?:(?P<m>\d{1,2})\s?분|(?P<half>반))?"
       r"\s?(?P<post>쯤|경|께|무렵|즈음|정도)?", _ko_clock),
    _r(r"(?<![\d.])(\d{4}|\d{2})\s?년\s?(\d{1,2})\s?월\s?(\d{1,2})\s?일",
       lambda c, m: _date(c, m, m.group(1), m.group(2), m.group(3))),
    _r(r"(?<![\d.])(\d{1,2})\s?월\s?(\d{1,2})\s?일",
       lambda c, m: _date(c, m, None, m.group(1), m.group(2))),
    _r(r"(?<![\d.])(\d{1,2})\s?월(?![\s\d]*일)(?!요)",
       lambda c, m: _month_name(c, m, int(m.group(1))) if 1 <= int(m.group(1)) <= 12 else None),
    _r(r"(?<![\d.월\-/:])(\d{1,2})\s?일(?!\s?(?:전|째|동안|간|후|뒤|만|이내|정도|이상|가량|씩|마다))",
       _dom),
    # --- numeric dates, both languages ---
    _r(r"(?<![\d.])(\d{4})\s?([-./])\s?(\d{1,2})\s?\2\s?(\d{1,2})(?![\d])\.?",
       lambda c, m: _date(c, m, m.group(1), m.group(3), m.group(4))),
    _r(r"(?<![\d./:,-])(\d{1,2})/(\d{1,2})(?![\d/])",
       lambda c, m: _date(c, m, None, m.group(1), m.group(2))),
    # --- English ---
    _r(r"\b(?:the\s+)?day\s+before\s+yesterday\b",
       lambda c, m: c.day(m, c.today - timedelta(days=2)), _I),
    _r(r"\b(?:earlier\s+)?today\b", lambda c, m: c.day(m, c.today), _I),
    _r(r"\byesterday\b", lambda c, m: c.day(m, c.today - timedelta(days=1)), _I),
    _r(r"\btomorrow\b", lambda c, m: c.day(m, c.today + timedelta(days=1)), _I),
    _r(r"\blast\s+night\b", lambda c, m: _part(m, "night", (c, 1)), _I),
    _r(r"\btonight\b", lambda c, m: _part(m, "night", (c, 0)), _I),
    _r(r"\bthis\s+(morning|afternoon|evening)\b",
       lambda c, m: _part(m, m.group(1).lower(), (c, 0)), _I),
    _r(r"(?<!good )\b(?:in\s+the\s+|at\s+)?(morning|afternoon|evening|night|overnight)s?\b",
       lambda c, m: _part(m, m.group(1).lower()), _I),
    _r(r"\b(?:last|past)\s+weekend\b", lambda c, m: _weekend(c, m, True), _I),
    _r(r"\b(?:this|the)\s+weekend\b", lambda c, m: _weekend(c, m, False), _I),
    _r(r"\b(?:last|past)\s+week\b", lambda c, m: _week(c, m, -1), _I),
    _r(r"\bthis\s+week\b", lambda c, m: _week(c, m, 0), _I),
    _r(r"\ball\s+week\b", lambda c, m: replace(_week(c, m, 0), ongoing=True), _I),
    _r(r"\bnext\s+week\b", lambda c, m: _week(c, m, 1), _I),
    _r(r"\blast\s+month\b",
       lambda c, m: _month_atom(c, m, c.today.year, c.today.month - 1), _I),
    _r(r"\bthis\s+month\b", lambda c, m: _month_atom(c, m, c.today.year, c.today.month), _I),
    _r(r"\blast\s+year\b", lambda c, m: c.day(
        m, date(c.today.year - 1, 1, 1), date(c.today.year - 1, 12, 31)), _I),
    _r(r"\b(?:recently|lately)\b",
       lambda c, m: c.day(m, c.today - timedelta(days=14), c.today), _I),
    _r(r"\bjust\s+now\b",
       lambda c, m: c.point(m, timedelta(minutes=5), timedelta(minutes=15), timedelta(0)), _I),
    _r(r"\b(?:(last|past|this|on|next)\s+)?(monday|tuesday|wednesday|thursday|friday|"
       r"saturday|sunday)s?\b", _en_weekday, _I),
    _r(rf"\b({_EN_N})\s+(minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)\s+ago\b",
       lambda c, m: _en_amount_ago(c, m), _I),
    _r(rf"\b(for\s+(?:the\s+(?:past|last)\s+)?)(?:({_EN_N})\s+)?"
       r"(minutes|hours|days|weeks|months|years|minute|hour|day|week|month|year)\b",
       _en_for, _I),
    _r(rf"\b({_MON})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?",
       lambda c, m: _en_date(c, m, m.group(1), m.group(2), m.group(3)), _I),
    _r(rf"\b(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MON})\b\.?(?:,?\s+(\d{{4}}))?",
       lambda c, m: _en_date(c, m, m.group(2), m.group(1), m.group(3)), _I),
    _r(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b", _dom, _I),
    _r(r"(\b(?:at|around|about|approximately|approx\.?)\s+|~\s?|@\s?)?\b(\d{1,2})"
       r"(?::(\d{2}))?\s?(a\.?m\.?|p\.?m\.?)(?![a-z])", _en_clock, _I),
    _r(r"(\b(?:at|around|about|approximately)\s+|~\s?|@\s?)?(?<![\d.:])(\d{1,2}):(\d{2})"
       r"(?::\d{2})?(?![\d:])()", _en_clock, _I),
    _r(r"\b(around|about|approximately)?\s?\b(\d{1,2})\s?o'?clock\b",
       lambda c, m: _clock(m, int(m.group(2)), 0, False, None, bool(m.group(1))), _I),
    _r(r"\b(?:at|around|about)\s+(\d{1,2})(?![\d:.,]|\s?(?-i:[A-Z])|\s?(?:st|nd|rd|th|%|min|hour|"
       r"hr|day|week|month|year|feet|ft|foot|meter|metre|m\b|km|mile|inch|people|car|time|percent))",
       lambda c, m: _clock(m, int(m.group(1)), 0, False, None, False, weak=True), _I),
    _r(r"\b(?:at\s+)?(noon|midday|midnight)\b",
       lambda c, m: _clock(m, 24 if m.group(1).lower() == "midnight" else 12, 0, True,
                           None, False), _I),
    _r(rf"(?<![{_H}])(정오|자정)",
       lambda c, m: _clock(m, 12 if m.group(1) == "정오" else 24, 0, True, None, False)),
]


def _en_amount_ago(c: _Ctx, m: re.Match[str]) -> Atom | None:
    num, unit = m.group(1).lower(), m.group(2).lower()
    unit = {"min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour"}.get(unit, unit)
    n = None if num in _VAGUE_EN else _num(num)
    return _ago(c, m, unit.rstrip("s"), n, since=False)


def _en_date(c: _Ctx, m: re.Match[str], mon: str, day: str, year: str | None) -> Atom | None:
    if mon.lower() == "may" and not mon[0].isupper():
        return None  # the verb, not the month
    return _date(c, m, year, str(_EMONTH[mon.lower()]), day)


_SINCE_BEFORE = re.compile(r"\b(?:since|ever\s+since|starting)\s+$", re.IGNORECASE)
_SINCE_AFTER = re.compile(r"^\s?(?:부터|이후로?)")


def find_atoms(text: str, now: datetime) -> list[Atom]:
    """Non-overlapping time atoms in text order (the longest match wins an overlap)."""
    c = _Ctx(text, now)
    found: list[Atom] = []
    for pattern, fn in RULES:
        for m in pattern.finditer(text):
            if m.end() == m.start():
                continue
            try:
                atom = fn(c, m)
            except (OverflowError, ValueError):
                continue  # a date outside what datetime can hold
            if atom is not None:
                found.append(atom)
    found.sort(key=lambda a: (a.start - a.end, a.start))
    taken: list[Atom] = []
    for a in found:
        if all(a.end <= b.start or a.start >= b.end for b in taken):
            taken.append(a)
    taken.sort(key=lambda a: a.start)
    for a in taken:
        # "since Monday", "지난주부터": the expression names when an ongoing problem began
        before = _SINCE_BEFORE.search(text, max(0, a.start - 14), a.start)
        if before and before.end() == a.start:
            a.start, a.ongoing = before.start(), True
        after = _SINCE_AFTER.match(text[a.end : a.end + 8])
        if after:
            a.end, a.ongoing = a.end + after.end(), True
    # stripped match edges (a leading "at " or a trailing space) are not part of the words
    for a in taken:
        while a.end > a.start and text[a.end - 1].isspace():
            a.end -= 1
        while a.start < a.end and text[a.start].isspace():
            a.start += 1
    return taken
