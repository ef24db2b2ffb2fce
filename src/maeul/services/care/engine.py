"""The care model as arrays over many homes at once (one row per home, one call per slot).

Every statistic is the home's own and decays with a half-life, so the model follows a household
whose habits change. All homes advance in lock-step, one 15-minute slot per ``step``; a home
without data in a slot passes ``count == 0``. Daily work (quantiles, tail fits, thresholds)
happens when the first slot of a new day arrives.

How a grade is set: for each kind of departure the model estimates from the home's history how
often a departure at least this large happens (occurrences per month, ``rate``). A grade is
raised when that rate falls below the grade's limit: 관심 (attention) first, 주의 (caution) and
심각 (serious) only as the evidence grows. See docs/care.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .slots import SLOTS_PER_DAY
from .stats import (
    MONTH_DAYS,
    MORNING,
    NLB,
    NLV,
    NW,
    CareParams,
    allocate,
    len_bin,
    lvl_bin,
    nan_quantile_rows,
    pool_spells,
    quantile,
    row_hist,
    spell_bin,
    tail_fit,
    thresholds,
    wake_lengths,
    weekend,
)

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

GROUPS = ("inactivity", "appliance_on", "unusual_night", "low_use")
G_INACT, G_APPL, G_NIGHT, G_LOW = range(4)
NIGHT_END = 20  # night activity is counted from 00:00 to 05:00
CONTINUE_SLOTS = 48 * 4  # a new quiet spell this soon after a closed case ...
CONTINUE_ACTIVE = 8  # ... with fewer active slots in between continues that case
_POP4 = np.array([bin(i).count("1") for i in range(16)], dtype=np.int8)


@dataclass
class StepResult:
    """What one slot raised: ``grade[n, group]`` > 0 where an alert is new or escalated."""

    grade: npt.NDArray[np.int8]
    morning: B  # for inactivity: raised as "no morning activity"
    homes: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # rows with any alert


class CareBatch:
    """Model state of ``n`` homes; all arrays have the home as first axis."""

    ARRAYS = (
        "b", "theta", "theta_strong", "theta_on", "lvl_hist", "idle_ring", "act_hist",
        "exposure", "days_seen", "bits", "qlen", "qstart", "tainted", "spell", "absences",
        "thr_q", "wake_hist", "woke", "wake_slot", "thr_m", "onlen", "on_spell", "thr_on",
        "night_cnt", "night_hist", "night_rate", "day_mean", "day_low", "day_silent",
        "energy_hist", "low_rate", "ep", "ep_since", "tol", "was_silenced", "last_night",
        "last_day_kwh", "last_sus", "prev_grade", "prev_since", "prev_end", "act_since", "gap",
        "held_bin", "held_len", "act_time", "aq", "aqs", "pend", "refit",
    )
    # arrays that states saved before them lack: such states still load
    ADDED = frozenset({"act_time", "aq", "aqs", "pend", "refit"})

    def __init__(self, n: int, params: CareParams | None = None) -> None:
        self.n = n
        self.p = params or CareParams()
        self.day = -1  # day number of the slots being collected
        self.g = -1  # last slot processed
        z = np.zeros
        self.b: F32 = z(n, np.float32)
        self.theta: F32 = np.full(n, np.inf, np.float32)
        self.theta_strong: F32 = np.full(n, np.inf, np.float32)
        self.theta_on: F32 = np.full(n, np.inf, np.float32)
        self.lvl_hist: F32 = z((n, NLV), np.float32)
        self.idle_ring: F32 = np.full((n, self.p.idle_days), np.nan, np.float32)
        self.act_hist: F32 = z((n, NLV), np.float32)
        self.exposure: F32 = z(n, np.float32)  # decayed days of data
        self.days_seen: I32 = z(n, np.int32)
        self.bits = z(n, np.uint8)
        self.qlen: I32 = z(n, np.int32)
        self.qstart: I64 = z(n, np.int64)
        self.tainted: B = z(n, bool)
        # the alert clock: the quiet spell as judged, which a short automatic cycle during a long
        # spell does not end (``bridge_slots``); the same as qlen / qstart without bridging
        self.aq: I32 = z(n, np.int32)
        self.aqs: I64 = z(n, np.int64)
        self.pend: I32 = z(n, np.int32)  # slots of activity held as an automatic cycle so far
        self.refit: B = z(n, bool)  # thresholds to refit at the end of this slot
        self.spell: F32 = z((n, 48, NLB), np.float32)  # by start hour, weekday / weekend
        self.act_time: F32 = z((n, 48), np.float32)  # slots with no quiet spell running, by bin
        self.absences: F32 = z(n, np.float32)
        self.thr_q: I32 = np.full((n, 48, 3), 1 << 20, np.int32)
        self.wake_hist: F32 = z((n, 2, NW), np.float32)
        self.woke: B = z(n, bool)
        self.wake_slot: I32 = np.full(n, -1, np.int32)
        self.thr_m: I32 = np.full((n, 2, 3), 1 << 20, np.int32)  # slots after 04:00
        self.onlen: I32 = z(n, np.int32)
        self.on_spell: F32 = z((n, NLB), np.float32)
        self.thr_on: I32 = np.full((n, 3), 1 << 20, np.int32)
        self.night_cnt: I32 = z(n, np.int32)
        self.night_hist: F32 = z((n, NIGHT_END + 1), np.float32)
        self.night_rate: F32 = np.full((n, NIGHT_END + 1), np.inf, np.float32)
        self.day_mean: F32 = np.full((n, SLOTS_PER_DAY), np.nan, np.float32)
        self.day_low: F32 = np.full((n, SLOTS_PER_DAY), np.nan, np.float32)
        self.day_silent: B = z(n, bool)
        self.energy_hist: F32 = z((n, NLV), np.float32)
        self.low_rate: F32 = np.full((n, NLV), np.inf, np.float32)
        self.ep = z((n, 4), np.int8)  # grade of each open episode
        self.ep_since: I64 = z((n, 4), np.int64)  # slot at which the episode's departure began
        self.last_sus: I64 = z(n, np.int64)  # last slot of sustained activity
        self.prev_grade = z(n, np.int8)  # the last closed 주의/심각 inactivity case ...
        self.prev_since: I64 = z(n, np.int64)
        self.prev_end: I64 = z(n, np.int64)
        self.act_since: I32 = z(n, np.int32)  # ... and the active slots since it closed
        self.gap: I32 = z(n, np.int32)  # slots without data in a row
        self.held_bin: I64 = z(n, np.int64)  # the last spell that alerted, until feedback
        self.held_len: I32 = z(n, np.int32)
        self.tol: F32 = z((n, 4, 24), np.float32)  # feedback: log2 of extra tolerance
        self.was_silenced: B = z(n, bool)
        self.last_night: I32 = z(n, np.int32)  # evidence of the latest night and day
        self.last_day_kwh: F32 = np.full(n, np.nan, np.float32)
        # (home, start slot, length) of every quiet spell that activity ended (as the alert
        # clock saw it: automatic cycles held), when a caller
        # (the evaluation's hindsight bound) asks for them by setting a list here
        self.spell_log: list[tuple[int, int, int]] | None = None

    # ---- state -----------------------------------------------------------------------------
    def copy(self) -> CareBatch:
        """An independent copy (a snapshot to run a what-if forward)."""
        c = CareBatch.__new__(CareBatch)
        c.n, c.p, c.day, c.g = self.n, self.p, self.day, self.g
        c.spell_log = None
        for name in self.ARRAYS:
            setattr(c, name, getattr(self, name).copy())
        return c

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_arrays(cls, params: CareParams, day: int, g: int,
                    arrays: dict[str, npt.NDArray[Any]]) -> CareBatch:
        n = int(arrays["b"].shape[0])
        c = cls(n, params)
        c.day, c.g = day, g
        for name in cls.ARRAYS:
            if name in cls.ADDED and name not in arrays:
                continue  # a state saved before this array existed: learned from here on
            ref = getattr(c, name)
            a = np.asarray(arrays[name], dtype=ref.dtype)
            if a.shape != ref.shape:
                raise ValueError(f"model state {name}: shape {a.shape}, expected {ref.shape}")
            setattr(c, name, a)
        if "aq" not in arrays:
            c.aq, c.aqs = c.qlen.copy(), c.qstart.copy()
        return c

    # ---- one slot ----------------------------------------------------------------------------
    def step(self, g: int, mean: npt.ArrayLike, low: npt.ArrayLike, count: npt.ArrayLike,
             silenced: npt.ArrayLike | None = None,
             sensed: npt.ArrayLike | None = None) -> StepResult:
        """Take slot ``g`` (slot number since 1970) of every home and return what it raised.

        ``sensed`` marks homes whose motion, door or water sensor saw someone in the slot:
        that is activity whatever the meter shows (one event ends a quiet spell)."""
        if g <= self.g:
            raise ValueError(f"slot {g} is not after the last slot {self.g}")
        day, k = divmod(g, SLOTS_PER_DAY)
        grade = np.zeros((self.n, 4), np.int8)
        if day != self.day:
            if self.day >= 0:
                quiet_day = self._close_day(day)
                grade[quiet_day, G_LOW] = 1
                self.ep_since[quiet_day, G_LOW] = self.day * SLOTS_PER_DAY
            self.day = day
        self.g = g
        p = self.p
        m = np.asarray(mean, dtype=np.float32)
        lo = np.asarray(low, dtype=np.float32)
        obs = np.asarray(count) > 0
        sil = np.zeros(self.n, bool) if silenced is None else np.asarray(silenced, bool)
        self.day_mean[:, k] = np.where(obs, m, np.nan)
        self.day_low[:, k] = np.where(obs, lo, np.nan)
        self.day_silent |= sil
        back = self.was_silenced & ~sil  # an announced absence just ended: start afresh
        if back.any():
            self.qlen[back], self.qstart[back], self.tainted[back] = 0, g, False
            self.aq[back], self.aqs[back], self.pend[back] = 0, g, 0
            self.ep[back] = 0
            self.woke[back], self.last_sus[back] = True, g  # the day is not judged
        self.was_silenced = sil

        # time in which an incident would start a new quiet spell of this slot's bin
        hb = k // 4 + 24 * int(weekend(day))
        self.act_time[:, hb] += obs & (self.aq == 0)
        e = np.where(obs, m - self.b, 0.0).astype(np.float32)
        sen = np.zeros(self.n, bool) if sensed is None else np.asarray(sensed, bool) & obs
        active = (obs & (e > self.theta)) | sen
        self.bits = (((self.bits << 1) | active) & 15).astype(np.uint8)
        sig = active & ((_POP4[self.bits] >= 2) | (e > self.theta_strong) | sen)

        # quiet spells: record the one that activity has just ended
        # after an hour or more without data the spell starts afresh: a quiet spell is not
        # judged across a gap, and the part before the gap is not learned
        back = obs & (self.gap >= 4)
        if back.any():
            self.qlen[back], self.qstart[back], self.tainted[back] = 0, g, True
            self.aq[back], self.aqs[back], self.pend[back] = 0, g, 0
            self.ep[back, G_INACT] = 0
            self.woke[back], self.last_sus[back] = True, g
        self.gap = np.where(obs, 0, self.gap + 1).astype(np.int32)
        self.qlen = np.where(sig, 0, self.qlen + obs).astype(np.int32)
        self.qstart = np.where(sig, g + 1, self.qstart)
        # the alert clock: activity during a long quiet spell that stays below the strong level
        # is held for up to bridge_slots slots; if it stops by then (an automatic cycle) the
        # spell goes on, otherwise it ended where that activity began
        hold = np.zeros(self.n, bool)
        if p.bridge_slots > 0:
            hold = (sig & ~sen & (e <= self.theta_strong) & (self.pend < p.bridge_slots) &
                    (np.where(obs, lo - self.b, 0.0) <= self.theta * p.bridge_low) &
                    (self.aq - self.pend >= int(p.bridge_min_h * 4)))
        bend = sig & ~hold & (self.aq > 0)
        alen = np.maximum(self.aq - self.pend, 0).astype(np.int32)  # before the held activity
        if self.spell_log is not None:  # the spells the alert clock judged, cycles held
            self.spell_log.extend((int(i), int(self.aqs[i]), int(alen[i]))
                                  for i in np.flatnonzero(bend & (alen > 0)))
        learn = bend & ~self.tainted & ~sil & (self.days_seen >= 2) & (alen > 0)
        if learn.any():
            idx = np.flatnonzero(learn)
            self._record_spell(idx, self.aqs[idx], alen[idx])
            # a spell long enough to have alerted moves the thresholds: refit them now
            self.refit[idx[alen[idx] >= self.thr_q[idx, spell_bin(self.aqs[idx]), 0]]] = True
        # a spell that raised 주의 or 심각 and ended by itself is learned as normal life; it is
        # kept aside so that a care worker's "visit" (it was an incident) can take it back
        held = learn & (self.ep[:, G_INACT] >= 2) & (alen < self.p.absence_h * 4)
        self.held_bin[held] = spell_bin(self.aqs[held])
        self.held_len[held] = alen[held]
        quiet_end = sig & ~hold
        self.aq = np.where(quiet_end, 0, self.aq + obs).astype(np.int32)
        self.aqs = np.where(quiet_end, g + 1, self.aqs)
        self.pend = np.where(hold, self.pend + 1, 0).astype(np.int32)
        self.tainted = np.where(quiet_end, False, self.tainted | sil)
        # the morning: sustained activity (3 of the last 4 slots) marks the day's start, so a
        # water heater on a night timer or a single automatic cycle does not count as waking
        sustained = active & (_POP4[self.bits] >= 3)
        self.last_sus = np.where(sustained, g, self.last_sus)
        in_morning = MORNING[0] <= k < MORNING[1]
        if in_morning:
            first = sustained & ~self.woke
            self.wake_slot[first] = max(k - 3, MORNING[0])
            self.woke |= sustained
        asleep = in_morning & ~self.woke & (self.last_sus < day * SLOTS_PER_DAY + MORNING[0])
        # an open inactivity episode ends with activity; before the day has begun, only with
        # sustained activity
        closed = (self.ep[:, G_INACT] > 0) & sig & ~hold & ~asleep
        # remember a closed 주의/심각 case: if the home falls quiet again after little activity
        # (an automatic cycle during an absence), the new spell continues that case
        serious = closed & ((self.ep[:, G_INACT] >= 2) | (
            (self.prev_grade > 0) & (self.ep_since[:, G_INACT] == self.prev_since)))
        self.prev_grade[serious] = np.maximum(self.ep[serious, G_INACT], self.prev_grade[serious])
        self.prev_since[serious] = self.ep_since[serious, G_INACT]
        self.prev_end[serious] = g
        self.act_since = np.where(serious, 0, self.act_since + active).astype(np.int32)
        self.ep[closed, G_INACT] = 0

        ready = (self.days_seen >= p.min_days) & ~sil & obs
        sb = spell_bin(self.aqs)
        thr = self.thr_q[np.arange(self.n), sb]
        gi = np.where(hold, 0, (self.aq[:, None] >= thr).sum(1)).astype(np.int8)
        since = self.aqs.copy()
        morning = np.zeros(self.n, bool)
        if in_morning and asleep.any():
            wk = int(weekend(day))
            late = k - MORNING[0] + 1  # slots since 04:00 without the day beginning
            gm = np.where(asleep, (late >= self.thr_m[:, wk]).sum(1), 0).astype(np.int8)
            morning = asleep & (gm >= gi) & (gm > 0)
            since = np.where(morning, self.last_sus + 1, since)
            gi = np.maximum(gi, gm)
        cont = (ready & (gi > 0) & (self.ep[:, G_INACT] == 0) & (self.prev_grade > 0) &
                (g - self.prev_end < CONTINUE_SLOTS) & (self.act_since < CONTINUE_ACTIVE))
        if cont.any():
            # the case goes on (same episode); the home falling quiet again is notified afresh
            self.ep_since[cont, G_INACT] = self.prev_since[cont]
        new = ready & (gi > self.ep[:, G_INACT])
        opened = new & (self.ep[:, G_INACT] == 0) & ~cont
        self.ep_since[opened, G_INACT] = since[opened]
        grade[new, G_INACT] = gi[new]
        self.ep[new, G_INACT] = gi[new]

        # an appliance left on: a continuous load far above standby for unusually long
        on = obs & (lo - self.b > self.theta_on)
        stop = obs & ~on & (self.onlen > 0)
        learn = stop & ~sil & (self.days_seen >= 2)
        if learn.any():
            idx = np.flatnonzero(learn)
            self.on_spell[idx, len_bin(self.onlen[idx])] += 1.0
        self.onlen = np.where(on, self.onlen + 1, np.where(obs, 0, self.onlen)).astype(np.int32)
        ga = (self.onlen[:, None] >= self.thr_on).sum(1).astype(np.int8)
        self.ep[stop, G_APPL] = 0
        new = ready & on & (ga > self.ep[:, G_APPL])
        opened = new & (self.ep[:, G_APPL] == 0)
        self.ep_since[opened, G_APPL] = g + 1 - self.onlen[opened]
        grade[new, G_APPL] = ga[new]
        self.ep[new, G_APPL] = ga[new]

        # the night: how many active slots between 00:00 and 05:00, against the home's nights
        if k < NIGHT_END:
            self.night_cnt += active
        elif k == NIGHT_END:
            cnt = np.minimum(self.night_cnt, NIGHT_END)
            rate = self.night_rate[np.arange(self.n), cnt]
            gn = ready & (rate <= p.c_night * np.exp2(-self.tol[:, G_NIGHT, 0]))
            grade[gn, G_NIGHT] = 1
            self.ep_since[gn, G_NIGHT] = day * SLOTS_PER_DAY
            keep = ~self.day_silent & (self.days_seen >= 2)
            self.night_hist[keep, cnt[keep]] += 1.0
            self.last_night = cnt.astype(np.int32)
            self.night_cnt[:] = 0

        # the daily refit of thresholds is spread over the day's slots (home i at slot i % 96),
        # so no single slot carries the whole day's work
        rows = np.arange(k, self.n, SLOTS_PER_DAY)
        if self.refit.any():
            rows = np.union1d(rows, np.flatnonzero(self.refit))
        self.derive(rows)
        homes = np.flatnonzero(grade.any(1)).astype(np.int64)
        return StepResult(grade, morning, homes)

    def _c(self, group: int, bins: I64, c: tuple[float, float, float]) -> F32:
        out: F32 = (np.asarray(c, np.float32)[None, :] * np.exp2(
            -self.tol[np.arange(self.n), group, bins])[:, None]).astype(np.float32)
        return out

    def _record_spell(self, idx: I64, start: I64, length: I32) -> None:
        absent = length >= self.p.absence_h * 4
        self.absences[idx[absent]] += 1.0
        keep = ~absent
        self.spell[idx[keep], spell_bin(start[keep]), len_bin(length[keep])] += 1.0

    # ---- the end of a day ------------------------------------------------------------------
    def _close_day(self, new_day: int) -> I64:
        """Learn from the day that ended; returns the homes whose day was of unusually low use."""
        p = self.p
        lam = np.float32(0.5 ** (1.0 / p.half_life_days))
        gap = max(1, new_day - self.day)
        decay = np.float32(lam ** gap)
        for h in (self.act_hist, self.spell, self.act_time, self.absences, self.wake_hist,
                  self.on_spell, self.night_hist, self.energy_hist):
            h *= decay
        fast = np.float32(0.5 ** (gap / p.level_half_life_days))
        self.lvl_hist *= fast
        self.tol *= np.float32(0.5 ** (gap / 90.0))  # feedback fades over a few months
        dm, dl = self.day_mean, self.day_low
        nobs = (~np.isnan(dm)).sum(1)
        full = nobs >= SLOTS_PER_DAY // 2
        learn = full & ~self.day_silent
        self.exposure = (self.exposure * decay + full).astype(np.float32)
        self.days_seen += full
        rows = np.flatnonzero(learn)
        if rows.size:
            self._learn_levels(rows, dm[rows], dl[rows])
            wk = int(weekend(self.day))
            ws = np.where(self.woke[rows], self.wake_slot[rows] - MORNING[0], NW - 1)
            self.wake_hist[rows, wk, np.clip(ws, 0, NW - 1)] += 1.0
        low = self._low_use_check(rows, nobs)
        self.woke[:] = False
        self.wake_slot[:] = -1
        self.day_mean[:] = np.nan
        self.day_low[:] = np.nan
        self.day_silent = self.was_silenced.copy()
        return low

    def _learn_levels(self, rows: I64, dm: F32, dl: F32) -> None:
        p = self.p
        self.lvl_hist[rows] += row_hist(dl)
        # the day's quietest stretch of idle_hours (lowest mean, whole slots only)
        w = p.idle_hours * 4
        filled = np.where(np.isnan(dm), np.inf, dm).astype(np.float64)
        cs = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(filled, axis=1)], axis=1)
        sums = cs[:, w:] - cs[:, :-w]
        start = np.argmin(np.where(np.isnan(sums), np.inf, sums), axis=1)
        quiet = np.take_along_axis(filled, start[:, None] + np.arange(w)[None, :], axis=1)
        ex = np.where(np.isfinite(quiet), quiet - self.b[rows, None], np.nan)
        # the spread of the quiet stretch: how high standby alone goes (fridge, small cycles)
        spread = nan_quantile_rows(ex, 0.9)
        self.idle_ring[rows, self.day % p.idle_days] = spread.astype(np.float32)
        act = dm - self.b[rows, None]
        self.act_hist[rows] += row_hist(np.where(act > self.theta[rows, None], act, np.nan))

    def _low_use_check(self, rows: I64, nobs: I32) -> I64:
        """A day of unusually low use (whole days only); one alert per run of such days."""
        p = self.p
        done = nobs >= SLOTS_PER_DAY * 3 // 4
        mean = np.where(done, np.nanmean(np.where(done[:, None], self.day_mean, 0), axis=1), np.nan)
        ok = np.flatnonzero(done)
        self.last_day_kwh = (mean * 24).astype(np.float32)
        bins = lvl_bin(mean[ok])
        rate = self.low_rate[ok, bins]
        ready = (self.days_seen[ok] >= p.min_days) & ~self.day_silent[ok]
        low = ready & (rate <= p.c_low * np.exp2(-self.tol[ok, G_LOW, 0]))
        out: I64 = ok[low & (self.ep[ok, G_LOW] == 0)].astype(np.int64)
        self.ep[ok[~low], G_LOW] = 0
        self.ep[ok[low], G_LOW] = 1
        learn = np.intersect1d(ok, rows)
        self.energy_hist[learn, lvl_bin(mean[learn])] += 1.0
        return out

    # ---- thresholds from the histories -----------------------------------------------------
    def derive(self, rows: I64, force: bool = False) -> None:
        """Recompute levels and alert thresholds of ``rows`` from their histories."""
        if rows.size == 0:
            return
        p = self.p
        months = (np.maximum(self.exposure[rows], 7.0) / MONTH_DAYS).astype(np.float32)
        b = quantile(self.lvl_hist[rows], p.base_q)
        has = self.lvl_hist[rows].sum(1) > 0
        self.b[rows] = np.where(has, b, self.b[rows])
        ring = self.idle_ring[rows]
        has = np.asarray(np.isfinite(ring).any(axis=1))
        spread = nan_quantile_rows(np.where(has[:, None], ring, 0.0), 0.75)
        theta = np.maximum(spread, 0.008) * p.idle_factor  # 20 W: below that is meter noise
        self.theta[rows] = np.where(has, theta, np.inf)
        self.theta_strong[rows] = np.where(has, theta * p.strong_factor, np.inf)
        act = self.act_hist[rows]
        on = np.maximum(quantile(act, 0.5), theta * 3)
        self.theta_on[rows] = np.where(act.sum(1) > 0, on, np.inf)
        # quiet spells by the hour they began, pooled with the neighbouring hours
        pooled = pool_spells(self.spell[rows], p.other_daytype)
        c = np.asarray(p.c_inactive, np.float32)[None, None, :] * np.exp2(
            -np.tile(self.tol[rows, G_INACT, :], (1, 2)))[:, :, None]
        fit = tail_fit(pooled, months[:, None], p.anchor_k, p.beta_min_h, p.beta_max_h)
        thr = thresholds(self.p, pooled, months[:, None], c, fit)
        if p.budget > 0:
            # 주의 where the false-case budget buys the most (refitted weekly, the costliest
            # part of the refit, and on the day alerts begin); 관심 no later, 심각 no earlier
            t2 = self.thr_q[rows, :, 1]
            sel = np.flatnonzero(force | self.refit[rows] | (self.days_seen[rows] == p.min_days) |
                                 ((self.day + rows // SLOTS_PER_DAY) % p.alloc_every == 0))
            if sel.size:
                r2 = rows[sel]
                w = 2.0 * (1.0 + p.other_daytype)  # each spell's weight in ``pooled``
                at = self.act_time[r2].reshape(-1, 2, 24)
                act = (at + p.other_daytype * at[:, ::-1]).reshape(-1, 48) / (
                    (1.0 + p.other_daytype) * months[sel, None])
                cost = np.exp2(np.tile(self.tol[r2, G_INACT, :], (1, 2))).astype(np.float32)
                # with equal weight for both day types, weekday and weekend bins are pooled
                # alike: solve the 24 hours once, with half the budget
                nb = 24 if p.other_daytype == 1.0 else 48
                f2 = tuple(x[sel, :nb] for x in fit)
                t = allocate(p, f2, act[:, :nb].astype(np.float32), months[sel],  # type: ignore[arg-type]
                             p.budget * nb / 48, w, cost[:, :nb])
                t2[sel] = np.tile(t, (1, 48 // nb))
            # 관심 keeps its lead on 주의 (at least a slot, as far as its floor allows)
            lead = np.maximum(thr[..., 1] - thr[..., 0], 1)
            thr[..., 0] = np.maximum(np.minimum(thr[..., 0], t2 - lead), int(p.floor_h[0] * 4))
            thr[..., 1] = t2
            thr[..., 2] = np.maximum(thr[..., 2], t2)
        self.thr_q[rows] = thr
        self.refit[rows] = False
        ca = np.asarray(p.c_appliance, np.float32)[None, None, :] * np.exp2(
            -self.tol[rows, G_APPL, :1])[:, :, None]
        self.thr_on[rows] = thresholds(self.p, self.on_spell[rows][:, None, :], months[:, None],
                                             ca)[:, 0, :]
        # the day's start: mornings per month that began later, read like the quiet spells
        # (mornings without any activity by 14:00 are absences, not wake times)
        wl = wake_lengths(self.wake_hist[rows], p.other_daytype_morning)
        tol = self.tol[rows, G_INACT, MORNING[0] // 4:MORNING[1] // 4].max(1)
        cm = p.c_inactive if p.c_morning is None else p.c_morning
        c = np.asarray(cm, np.float32)[None, None, :] * np.exp2(-tol)[:, None, None]
        thr = thresholds(self.p, wl, months[:, None], np.broadcast_to(c, (len(rows), 2, 3)))
        self.thr_m[rows] = np.where(wl.sum(2, keepdims=True) >= 5, thr, 1 << 20)
        nh = self.night_hist[rows]
        tail = np.cumsum(nh[:, ::-1], axis=1)[:, ::-1]
        self.night_rate[rows] = np.where(nh.sum(1, keepdims=True) >= 14,
                                         tail / months[:, None], np.inf)
        eh = self.energy_hist[rows]
        self.low_rate[rows] = np.where(eh.sum(1, keepdims=True) >= 14,
                                       np.cumsum(eh, axis=1) / months[:, None], np.inf)

    # ---- feedback --------------------------------------------------------------------------
    def feedback(self, row: int, group: int, hour: int, outcome: str) -> None:
        """A care worker's answer to an alert: raise or lower tolerance at that hour."""
        delta = {"false-alarm": 1.0, "check-in-ok": 0.5, "visit": -1.0}[outcome]
        t = self.tol[row, group]
        if group != G_INACT:  # one tolerance for the whole day
            t[:] = np.maximum(t + delta, 0.0)
        for d, wgt in ((0, 1.0), (-1, 0.5), (1, 0.5)) if group == G_INACT else ():
            j = (hour + d) % 24
            t[j] = max(0.0, float(t[j]) + delta * wgt)
        if group == G_INACT:
            if self.ep[row, group] > 0 and self.aq[row] > 0:  # still quiet: all is well now
                if outcome != "visit" and not self.tainted[row]:
                    self._record_spell(np.array([row]), self.aqs[row:row + 1],
                                       self.aq[row:row + 1])  # a normal quiet spell after all
                self.qlen[row], self.qstart[row] = 0, self.g + 1
                self.aq[row], self.aqs[row], self.pend[row] = 0, self.g + 1, 0
            elif self.held_len[row] > 0 and outcome == "visit":  # an incident, not normal life
                cell = (row, self.held_bin[row], len_bin(self.held_len[row:row + 1])[0])
                self.spell[cell] = max(0.0, float(self.spell[cell]) - 1.0)
            self.held_len[row] = 0
        self.ep[row, group] = 0
        self.derive(np.array([row]), force=True)


