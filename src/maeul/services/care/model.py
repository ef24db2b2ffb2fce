"""One household's model of normal daily life: feed readings, ask for alerts.

``HouseholdModel`` wraps the array engine (``engine.CareBatch`` with one row) with what a care
service needs around it: readings arriving at any pace, announced absences, a care worker's
feedback, alerts with their evidence in Korean and English, and a JSON-able state that can be
kept in the hub's store between readings.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from . import engine as E
from . import stats as S
from .readings import Readings, to_datetime, to_seconds
from .slots import SLOT_S, SLOTS_PER_DAY, summarise

GRADES_KO = ("", "관심", "주의", "심각")
GRADES_EN = ("", "attention", "caution", "serious")
KINDS = ("inactivity", "no_morning_activity", "appliance_on", "unusual_night", "low_use")
OUTCOMES = ("check-in-ok", "visit", "false-alarm")
_GROUP = {"inactivity": E.G_INACT, "no_morning_activity": E.G_INACT,
          "appliance_on": E.G_APPL, "unusual_night": E.G_NIGHT, "low_use": E.G_LOW}
_DAYS_KO = "월화수목금토일"
_DAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
FORMAT = "maeul.care.household/1"


@dataclass(frozen=True)
class Evidence:
    """What was expected and what was seen, in numbers and in words."""

    expected: float
    seen: float
    unit: str  # "h" (hours), "clock" (hour of day), "slots" (quarter hours) or "kWh"
    rate_per_month: float  # how often the home's history shows a departure at least this large
    text_ko: str
    text_en: str


@dataclass(frozen=True)
class Alert:
    """An alert, new or escalated; alerts of one episode share ``episode``."""

    household: str
    kind: str
    grade: int  # 1 관심 (attention), 2 주의 (caution), 3 심각 (serious)
    time: datetime  # wall-clock time at which the evidence was complete
    since: datetime  # when the departure began (the last activity, the load switching on ...)
    evidence: Evidence

    @property
    def grade_ko(self) -> str:
        return GRADES_KO[self.grade]

    @property
    def grade_en(self) -> str:
        return GRADES_EN[self.grade]

    @property
    def episode(self) -> str:
        group = E.GROUPS[_GROUP[self.kind]]
        return f"{self.household}:{group}:{self.since.isoformat(timespec='minutes')}"

    def to_json(self) -> dict[str, Any]:
        ev = self.evidence
        return {
            "household": self.household, "kind": self.kind, "grade": self.grade,
            "grade_ko": self.grade_ko, "grade_en": self.grade_en,
            "time": self.time.isoformat(), "since": self.since.isoformat(),
            "episode": self.episode,
            "evidence": {"expected": ev.expected, "seen": ev.seen, "unit": ev.unit,
                         "rate_per_month": ev.rate_per_month, "ko": ev.text_ko,
                         "en": ev.text_en},
        }


@dataclass
class Absence:
    """An announced absence (hospital stay, family visit): no alerts from ``start`` to ``end``."""

    start: int  # wall-clock seconds
    end: int
    reason: str = ""


@dataclass
class HouseholdModel:
    """The model of one household (see the module docstring)."""

    household: str = ""
    params: S.CareParams = field(default_factory=S.CareParams)

    def __post_init__(self) -> None:
        self.batch = E.CareBatch(1, self.params)
        self.absences: list[Absence] = []
        self._t = np.zeros(0, np.int64)  # readings of slots not yet closed
        self._kw = np.zeros(0, np.float64)
        self._pending: list[Alert] = []
        self.late_readings = 0
        # slots in which a motion, door or water sensor saw someone, not yet judged
        self._sensed = np.zeros(0, np.int64)
        self.late_events = 0

    # ---- feeding -------------------------------------------------------------------------
    def update(self, readings: Readings | Iterable[tuple[datetime, float]]) -> None:
        """Add readings (in time order); slots before the newest reading's slot are judged."""
        if not isinstance(readings, Readings):
            pairs = list(readings)
            readings = Readings.from_pairs([p[0] for p in pairs], [p[1] for p in pairs])
        if len(readings) == 0:
            return
        first_open = self.batch.g + 1
        keep = readings.t // SLOT_S >= first_open if self.batch.g >= 0 else np.ones(
            len(readings), bool)
        self.late_readings += int((~keep).sum())
        self._t = np.concatenate([self._t, readings.t[keep]])
        self._kw = np.concatenate([self._kw, readings.kw[keep]])
        if self._t.size:
            self._advance(int(self._t.max() // SLOT_S))

    def sense(self, times: Iterable[datetime | int]) -> None:
        """Events of the home's motion, door or water sensors (wall-clock times): someone is
        there, so the slot of each is activity whatever the meter shows. Events of slots
        already judged are counted (``late_events``) and dropped."""
        slots = np.array([(t if isinstance(t, int) else to_seconds(t)) // SLOT_S
                          for t in times], np.int64)
        if slots.size == 0:
            return
        keep = slots > self.batch.g
        self.late_events += int((~keep).sum())
        self._sensed = np.unique(np.concatenate([self._sensed, slots[keep]]))

    def detect(self, now: datetime | int) -> list[Alert]:
        """Judge every slot that has ended by ``now``; return the alerts raised since last asked."""
        s = now if isinstance(now, int) else to_seconds(now)
        self._advance(s // SLOT_S)
        out, self._pending = self._pending, []
        return out

    def _advance(self, until: int) -> None:
        """Close slots up to (not including) slot ``until``."""
        g0 = self.batch.g + 1 if self.batch.g >= 0 else (
            int(self._t.min() // SLOT_S) if self._t.size else until)
        if until <= g0:
            return
        order = np.argsort(self._t, kind="stable")
        r = Readings(self._t[order], self._kw[order])
        sl = summarise(r, g0, until)
        rest = r.t // SLOT_S >= until
        self._t, self._kw = r.t[rest], r.kw[rest]
        self.process_slots(g0, sl.mean, sl.low, sl.count)

    def process_slots(self, g0: int, mean: np.ndarray[Any, Any], low: np.ndarray[Any, Any],
                      count: np.ndarray[Any, Any]) -> list[Alert]:
        """Judge consecutive slots from slot ``g0`` (summaries, see ``slots.summarise``)."""
        raised: list[Alert] = []
        silent = self._silenced(g0, len(mean))
        n = len(mean)
        sensed = np.isin(g0 + np.arange(n), self._sensed)
        self._sensed = self._sensed[self._sensed >= g0 + n]
        step = self.batch.step
        for i in range(n):
            res = step(g0 + i, mean[i:i + 1], low[i:i + 1], count[i:i + 1], silent[i:i + 1],
                       sensed[i:i + 1])
            if res.homes.size:
                raised.extend(self._alerts(g0 + i, res))
        self._pending.extend(raised)
        return raised

    def copy(self) -> HouseholdModel:
        """An independent copy (to run a what-if forward from this moment)."""
        m = HouseholdModel(self.household, self.params)
        m.batch = self.batch.copy()
        m.absences = [Absence(a.start, a.end, a.reason) for a in self.absences]
        m._t, m._kw = self._t.copy(), self._kw.copy()
        m.late_readings = self.late_readings
        m._sensed, m.late_events = self._sensed.copy(), self.late_events
        return m

    # ---- absences and feedback -----------------------------------------------------------
    def announce_absence(self, start: datetime | int, end: datetime | int,
                         reason: str = "") -> Absence:
        """No alerts (and nothing learned) from ``start`` to ``end``."""
        a = Absence(start if isinstance(start, int) else to_seconds(start),
                    end if isinstance(end, int) else to_seconds(end), reason)
        if a.end <= a.start:
            raise ValueError("an absence must end after it starts")
        self.absences.append(a)
        return a

    def cancel_absence(self, absence: Absence) -> None:
        self.absences = [a for a in self.absences if a != absence]

    def _silenced(self, g0: int, n: int) -> np.ndarray[Any, Any]:
        mid = (g0 + np.arange(n)) * SLOT_S + SLOT_S // 2
        out = np.zeros(n, bool)
        for a in self.absences:
            out |= (mid >= a.start) & (mid < a.end)
        horizon = (g0 + n) * SLOT_S - 86400  # forget absences over a day ago
        self.absences = [a for a in self.absences if a.end > horizon]
        return out

    def feedback(self, alert: Alert, outcome: str) -> None:
        """The care worker's answer: ``check-in-ok``, ``visit`` or ``false-alarm``.

        A false alarm (and, less, a check-in that found all well) raises the tolerance of that
        time of day, so the same situation must be rarer before it alerts again; a visit (the
        alert was needed) lowers it. The open episode is closed either way."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        group = _GROUP[alert.kind]
        hour = alert.since.hour if alert.kind == "inactivity" else alert.time.hour
        self.batch.feedback(0, group, hour, outcome)

    # ---- what it has learned -----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The learned picture of the home, for the care worker's screen."""
        b = self.batch
        wk = b.wake_hist[0].sum(0)
        wake = _median_bin(wk[:-1]) if wk[:-1].sum() > 0 else None
        days = float(b.energy_hist[0].sum())
        return {
            "days_of_history": int(b.days_seen[0]),
            "standby_kw": round(float(b.b[0]), 3),
            "activity_above_standby_kw": _r(float(b.theta[0])),
            "usual_first_activity": None if wake is None else _clock(S.MORNING[0] + wake),
            "usual_day_kwh": None if days == 0 else round(
                float(S.level_of_bin(np.array([_median_bin(b.energy_hist[0])]))[0]) * 24, 1),
            "quiet_now_h": round(int(b.aq[0]) / 4, 2),
            "open_grades": {E.GROUPS[i]: int(b.ep[0, i]) for i in range(4)},
        }

    # ---- state -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-able state (numbers as compressed base64 arrays); see ``from_json``."""
        b = self.batch
        arrays = {k: {"dtype": str(v.dtype), "shape": list(v.shape),
                      "z": base64.b64encode(zlib.compress(v.tobytes(), 6)).decode()}
                  for k, v in b.arrays().items()}
        return {
            "format": FORMAT, "household": self.household, "params": self.params.to_json(),
            "day": b.day, "slot": b.g, "arrays": arrays,
            "absences": [[a.start, a.end, a.reason] for a in self.absences],
            "buffer": {"t": self._t.tolist(), "kw": self._kw.tolist()},
            "late_readings": self.late_readings,
            "sensed": self._sensed.tolist(), "late_events": self.late_events,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HouseholdModel:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a care model state (format {d.get('format')!r})")
        m = cls(d["household"], S.CareParams.from_json(d["params"]))
        arrays = {}
        for k, v in d["arrays"].items():
            raw = zlib.decompress(base64.b64decode(v["z"]))
            arrays[k] = np.frombuffer(raw, dtype=v["dtype"]).reshape(v["shape"]).copy()
        m.batch = E.CareBatch.from_arrays(m.params, int(d["day"]), int(d["slot"]), arrays)
        m.absences = [Absence(int(a), int(b), str(r)) for a, b, r in d["absences"]]
        m._t = np.asarray(d["buffer"]["t"], np.int64)
        m._kw = np.asarray(d["buffer"]["kw"], np.float64)
        m.late_readings = int(d.get("late_readings", 0))
        m._sensed = np.asarray(d.get("sensed", []), np.int64)  # absent in older states
        m.late_events = int(d.get("late_events", 0))
        return m

    # ---- alerts --------------------------------------------------------------------------
    def _alerts(self, g: int, res: E.StepResult) -> list[Alert]:
        out = []
        end = to_datetime((g + 1) * SLOT_S)
        for group in range(4):
            gr = int(res.grade[0, group])
            if gr:
                kind, since, ev = self._evidence(group, g, bool(res.morning[0]))
                out.append(Alert(self.household, kind, gr, end, since, ev))
        return out

    def _evidence(self, group: int, g: int, morning: bool) -> tuple[str, datetime, Evidence]:
        b, p = self.batch, self.params
        months = max(float(b.exposure[0]), 7.0) / S.MONTH_DAYS
        since = to_datetime(int(b.ep_since[0, group]) * SLOT_S)
        if group == E.G_INACT:
            if morning:
                return "no_morning_activity", since, self._morning(g, since, months)
            q0 = int(b.aqs[0])
            hours = int(b.aq[0]) / 4
            sb = int(S.spell_bin(np.array([q0]))[0])
            pooled = S.pool_spells(b.spell[:1], p.other_daytype)[0, sb]
            rate = S.spell_rate(pooled, months, int(b.aq[0]), p)
            usual = _usual_length(pooled, months, p) / 4
            start = to_datetime(q0 * SLOT_S)
            day = start.weekday()
            ko = (f"{start:%H:%M}({_DAYS_KO[day]})부터 {hours:.1f}시간째 대기전력 수준만 사용 중. "
                  f"이 시간대에 시작된 조용한 시간은 보통 {usual:.1f}시간 이내(월 1회 정도)이며, "
                  f"이만큼 긴 경우는 {_every_ko(rate)}.")
            en = (f"Only standby-level use for {hours:.1f} h since {start:%H:%M} "
                  f"({_DAYS_EN[day]}). Quiet spells beginning around this hour usually end "
                  f"within {usual:.1f} h (about once a month); one this long happens "
                  f"{_every_en(rate)}.")
            return "inactivity", since, Evidence(usual, hours, "h", rate, ko, en)
        if group == E.G_APPL:
            hours = int(b.onlen[0]) / 4
            rate = S.spell_rate(b.on_spell[0], months, int(b.onlen[0]), p)
            usual = _usual_length(b.on_spell[0], months, p) / 4
            kw = float(b.theta_on[0])
            ko = (f"{since:%H:%M}부터 {hours:.1f}시간째 대기전력보다 {kw:.1f}kW 이상 높은 부하가 "
                  f"계속됨. 이 집의 연속 부하는 보통 {usual:.1f}시간 안에 끝나며, 이만큼 긴 "
                  f"경우는 {_every_ko(rate)}.")
            en = (f"A continuous load over {kw:.1f} kW above standby for {hours:.1f} h since "
                  f"{since:%H:%M}. This home's continuous loads usually end within "
                  f"{usual:.1f} h; one this long happens {_every_en(rate)}.")
            return "appliance_on", since, Evidence(usual, hours, "h", rate, ko, en)
        if group == E.G_NIGHT:
            usual = float(_median_bin(b.night_hist[0]))
            cnt = int(b.last_night[0])
            seen = float(cnt)
            rate = float(b.night_rate[0, min(cnt, E.NIGHT_END)])
            ko = (f"00:00~05:00 사이 15분 단위 {E.NIGHT_END}칸 중 {cnt}칸에서 활동이 있었음. "
                  f"평소에는 {usual:.0f}칸이며, 이런 밤은 {_every_ko(rate)}.")
            en = (f"Activity in {cnt} of the {E.NIGHT_END} quarter-hours between 00:00 and "
                  f"05:00; usually {usual:.0f}. A night like this happens {_every_en(rate)}.")
            return "unusual_night", since, Evidence(usual, seen, "slots", rate, ko, en)
        eh = b.energy_hist[0]
        usual = float(S.level_of_bin(np.array([_median_bin(eh)]))[0]) * 24
        seen = float(b.last_day_kwh[0])
        rate = float(b.low_rate[0, int(S.lvl_bin(np.array([seen / 24]))[0])])
        ko = (f"{since:%m/%d} 하루 사용량 {seen:.1f}kWh, 평소 {usual:.1f}kWh. "
              f"이만큼 적은 날은 {_every_ko(rate)}.")
        en = (f"{seen:.1f} kWh used on {since:%d %b}; usually {usual:.1f} kWh. A day this "
              f"low happens {_every_en(rate)}.")
        return "low_use", since, Evidence(usual, seen, "kWh", rate, ko, en)

    def _morning(self, g: int, since: datetime, months: float) -> Evidence:
        b = self.batch
        k = g % SLOTS_PER_DAY
        wk = int(S.weekend(g // SLOTS_PER_DAY))
        w = b.wake_hist[0, wk]
        med = S.MORNING[0] + _median_bin(w[:-1])
        q90 = S.MORNING[0] + _quantile_bin(w[:-1], 0.9)
        wl = S.wake_lengths(b.wake_hist[:1], self.params.other_daytype_morning)[0, wk]
        rate = S.spell_rate(wl, months, k - S.MORNING[0] + 1, self.params)
        now = to_datetime((g + 1) * SLOT_S)
        ko = (f"오늘 {now:%H:%M}까지 아침 활동 없음(마지막 활동 {since:%H:%M}). 평소 첫 활동은 "
              f"{_clock(med)}경이고 10일 중 9일은 {_clock(q90)} 전. 이렇게 늦은 아침은 "
              f"{_every_ko(rate)}.")
        en = (f"No activity this morning by {now:%H:%M} (last activity {since:%H:%M}). The "
              f"first activity is usually at {_clock(med)}, 9 mornings in 10 by {_clock(q90)}; "
              f"a morning this late happens {_every_en(rate)}.")
        return Evidence(med / 4, (k + 1) / 4, "clock", rate, ko, en)


def _usual_length(pooled: np.ndarray[Any, Any], months: float, p: S.CareParams) -> float:
    """Spell length (slots) that the home reaches about once a month."""
    open_p = replace(p, floor_h=(0.0, 0.0, 0.0), cap_h=(96.0, 96.0, 96.0))
    c = np.ones((1, 1, 3), np.float32)
    return float(S.thresholds(open_p, pooled[None, None, :].astype(np.float32),
                              np.array([[months]], np.float32), c)[0, 0, 0])


def _median_bin(h: np.ndarray[Any, Any]) -> int:
    return _quantile_bin(h, 0.5)


def _quantile_bin(h: np.ndarray[Any, Any], q: float) -> int:
    c = np.cumsum(h)
    return int((c < q * max(float(c[-1]), 1e-9)).sum()) if c.size else 0


def _clock(slot: int) -> str:
    return f"{slot // 4:02d}:{(slot % 4) * 15:02d}"


def _r(x: float) -> float | None:
    return round(x, 3) if np.isfinite(x) else None


def _every_en(rate: float) -> str:
    if rate >= 1:
        return f"about {rate:.1f} times a month"
    if rate <= 1 / 120:
        return "less than once in 10 years"
    return f"about once every {1 / rate:.0f} months"


def _every_ko(rate: float) -> str:
    if rate >= 1:
        return f"한 달에 약 {rate:.1f}번 있습니다"
    if rate <= 1 / 120:
        return "10년에 한 번도 드뭅니다"
    return f"약 {1 / rate:.0f}개월에 한 번 있습니다"
