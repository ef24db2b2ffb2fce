"""Statistics of the care model: its settings, histogram helpers and the tail rule.

Every alert threshold comes from one rule: the rate (occurrences per month) of departures at
least as large as the one seen, read from the home's own decaying histogram, and past the
last few recorded cases from an exponential tail fitted to them (``tail_fit``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from .slots import SLOTS_PER_DAY

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

MONTH_DAYS = 30.44
# quiet-spell lengths in slots: fine bins for short spells, coarse ones for long spells
LEN_EDGES = np.r_[np.arange(0, 8), np.arange(8, 32, 2), np.arange(32, 96, 4),
                  np.arange(96, 385, 16)].astype(np.int32)
LEN_MID = np.r_[(LEN_EDGES[:-1] + LEN_EDGES[1:]) / 2, LEN_EDGES[-1] + 8].astype(np.float32)
NLB = int(LEN_EDGES.size)
LEVEL_EDGES = np.geomspace(0.005, 50.0, 72).astype(np.float32)  # kW, for levels and excesses
NLV = int(LEVEL_EDGES.size) + 1
MORNING = (16, 56)  # 04:00 to 14:00: the window in which the first activity of a day is sought
NW = MORNING[1] - MORNING[0] + 1  # one bin per slot plus "no activity by 14:00"


@dataclass(frozen=True)
class CareParams:
    """Settings of the model; the defaults are those reported in docs/care.md."""

    half_life_days: float = 240.0
    level_half_life_days: float = 14.0  # standby and quiet levels follow the season faster
    min_days: int = 14  # no alert before this many days of data
    base_q: float = 0.05  # standby level: this quantile of the slot lows
    idle_hours: int = 4  # each day's quietest stretch teaches what "nobody active" looks like
    idle_days: int = 28  # ... over this many recent days
    idle_factor: float = 2.5  # activity: a slot mean this far above the quiet stretches' spread
    strong_factor: float = 6.0  # one slot this far above is activity by itself
    other_daytype: float = 1.0  # weight of weekday spells for weekend thresholds and back
    other_daytype_morning: float = 0.25  # the same for the day's start (weekends start later)
    c_inactive: tuple[float, float, float] = (0.25, 0.06, 0.015)  # per month: 관심/주의/심각
    # the day's start (no activity by the usual time), per month: 관심/주의/심각 (None: as
    # c_inactive). 관심 only: its 주의 and 심각 added false cases (0.68 -> 0.50 a month without
    # them) and shortened no delay on the tuning data; the quiet-spell rule raises those
    c_morning: tuple[float, float, float] | None = (0.25, 0.0, 0.0)
    c_appliance: tuple[float, float, float] = (0.2, 0.04, 0.0)  # 0: grade never raised
    c_night: float = 0.3
    c_low: float = 0.3
    anchor_k: float = 2.0  # tail fits start where fewer than this many spells remain
    beta_min_h: float = 0.5
    beta_max_h: float = 8.0
    floor_h: tuple[float, float, float] = (1.0, 2.0, 4.0)
    cap_h: tuple[float, float, float] = (24.0, 30.0, 48.0)
    absence_h: float = 20.0  # quiet spells this long are absences, not everyday life
    # 주의 thresholds of the quiet-spell detector: this many false cases a month, spread over
    # the 48 start bins where they shorten incidents' delays most (``allocate``); 0 for one
    # rate limit (c_inactive) per bin
    budget: float = 1.0
    alloc_iter: int = 12  # bisection steps for the budget's price (log10, 0 to 12)
    alloc_every: int = 7  # days between refits of the allocation
    # an automatic cycle does not end a quiet spell of at least bridge_min_h hours: activity of
    # at most bridge_slots slots, no slot strong, and the slot's lowest reading within
    # bridge_low activity thresholds of standby (the load comes and goes, as a thermostat does)
    bridge_slots: int = 4
    bridge_min_h: float = 4.0
    bridge_low: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CareParams:
        names = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in d.items() if k in names}
        return cls(**kw)


Fit = tuple[F32, I64, F32, F32, F32]


def thresholds(p: CareParams, pooled: F32, months: F32, c: F32, fit: Fit | None = None) -> I32:
    """Spell length (slots) at which each grade is reached: where the rate of spells at
    least that long falls below ``c``, read from the histogram and past its data from an
    exponential tail fitted to the longest spells (``fit``: ``tail_fit`` of the same)."""
    if fit is None:
        fit = tail_fit(pooled, months, p.anchor_k, p.beta_min_h, p.beta_max_h)
    T, la, La, Ra, beta = fit
    emp = T / months[..., None]  # (M, S, LB), decreasing along the last axis
    out = np.empty(c.shape, np.int32)
    for gi in range(c.shape[-1]):
        cg = c[..., gi]
        lc = (emp > cg[..., None]).sum(-1)
        ext = La + beta * np.log(np.maximum(Ra, 1e-9) / np.maximum(cg, 1e-12))
        L = np.where(lc <= la, LEN_EDGES[np.minimum(lc, NLB - 1)], np.maximum(ext, La))
        L = np.clip(L, p.floor_h[gi] * 4, p.cap_h[gi] * 4)
        out[..., gi] = np.where(cg > 0, np.ceil(L), 1 << 20).astype(np.int32)
    return out


_GRID = 30 * 4  # thresholds are allocated up to 30 h (the 주의 cap) ...
_STEP = 2  # ... in steps of half an hour
# spells at least t slots long (t = 0 .. _GRID + 1), linear between the histogram's edges
_ge = np.arange(_GRID + 2)
_SEG = np.clip(np.searchsorted(LEN_EDGES, _ge, side="right") - 1, 0, NLB - 2)
_FR = ((_ge - LEN_EDGES[_SEG]) / (LEN_EDGES[_SEG + 1] - LEN_EDGES[_SEG])).astype(np.float32)


def allocate(p: CareParams, fit: Fit, act: F32, months: F32, budget: float,
             weight: float, cost: F32) -> I32:
    """주의 thresholds (slots) of the 48 start bins of each row, spending ``budget`` false
    cases a month where they shorten the delays of incidents most.

    An incident at a random moment either starts a quiet spell (the home was active: ``act``,
    slots a month of each bin's hour with no spell running) or falls into a spell of bin b at
    elapsed e, with weight the number of spells longer than e; it is found when the spell
    reaches the bin's threshold T. Per bin, the expected squared delay D_b(T) (long delays
    weigh more) plus lambda times the false rate F_b(T) (histogram, then the exponential tail
    fit, so the longest spell seen is not a wall; ``cost`` weighs a bin's false alerts, from
    feedback) is minimised; lambda is set per row by bisection so that the false rates add up
    to ``budget``. ``fit`` is ``tail_fit`` of histograms (rows, bins, NLB) and per-month rates
    that count each spell ``weight`` times in all."""
    T, la, La, Ra, beta = fit
    rows, bins = La.shape
    m = rows * bins
    # (slot, row x bin) layout, so that the running sums run over contiguous rows
    Tt = np.ascontiguousarray(T.reshape(m, NLB).T) / (weight * months.repeat(bins))[None, :]
    ge = Tt[_SEG] * (1 - _FR)[:, None] + Tt[_SEG + 1] * _FR[:, None]  # per month, spells >= t
    t = np.arange(_GRID + 2, dtype=np.float32)[:, None]
    La_, beta_ = La.reshape(1, m), beta.reshape(1, m)
    tail = (Ra.reshape(1, m) / weight) * np.exp(-np.maximum(t - La_, 0) / beta_)
    ge = np.where(t > La_, tail, ge).astype(np.float32)
    gt = ge[1:]  # spells longer than e (e = 0 .. _GRID)
    e = t[:-1]
    c1, c2, c3 = (np.cumsum(x, 0) for x in (gt, gt * e, gt * e * e))
    lo_t, hi_t = max(int(p.floor_h[1] * 4), 1), int(min(p.cap_h[1] * 4, _GRID))
    sel = np.arange(lo_t, hi_t + 1, _STEP)
    Tg = e[sel]
    pre = sel - 1  # sums over e < T
    D = (Tg * Tg * (act.reshape(1, m) + c1[pre]) - 2 * Tg * c2[pre] + c3[pre])
    F = ge[sel] * cost.reshape(1, m)
    D, F = np.ascontiguousarray(D.T), np.ascontiguousarray(F.T)  # (row x bin, T)
    Tg = Tg[:, 0]
    each = np.arange(m)
    lo = np.zeros(rows, np.float32)  # log10 lambda
    hi = np.full(rows, 12.0, np.float32)
    for _ in range(p.alloc_iter):
        mid = (lo + hi) / 2
        j = (D + np.repeat(10.0 ** mid, bins)[:, None] * F).argmin(1)
        over = F[each, j].reshape(rows, bins).sum(1) > budget
        lo = np.where(over, mid, lo)
        hi = np.where(over, hi, mid)
    j = (D + np.repeat(10.0 ** hi, bins)[:, None] * F).argmin(1)
    out: I32 = Tg[j].reshape(rows, bins).astype(np.int32)
    return out


def tail_fit(pooled: F32, months: F32, k: float, bmin: float, bmax: float
             ) -> tuple[F32, I64, F32, F32, F32]:
    """Tail counts and an exponential tail past the ``k`` longest spells.

    Returns ``T`` (spells at least each bin's length), the anchor bin ``la``, its length ``La``
    (slots), the rate there ``Ra`` (per month) and the tail's mean excess ``beta`` (slots)."""
    T = np.cumsum(pooled[..., ::-1], axis=-1)[..., ::-1]
    la = np.maximum((T >= k).sum(-1) - 1, 0).astype(np.int64)
    La = LEN_EDGES[la].astype(np.float32)
    Ta = np.take_along_axis(T, la[..., None], -1)[..., 0]
    beyond = np.arange(NLB) >= la[..., None]
    excess = (pooled * np.maximum(LEN_MID - La[..., None], 0) * beyond).sum(-1)
    beta = np.clip(excess / np.maximum(Ta, 1e-6), bmin * 4, bmax * 4).astype(np.float32)
    Ra = (Ta / months).astype(np.float32)
    return T.astype(np.float32), la, La, Ra, beta


def spell_rate(pooled: F32, months: float, length: int, p: CareParams) -> float:
    """Spells per month at least ``length`` slots long, for one home and start hour."""
    T, la, La, Ra, beta = tail_fit(pooled[None], np.array([months], np.float32), p.anchor_k,
                                   p.beta_min_h, p.beta_max_h)
    lb = int(len_bin(np.array([length]))[0])
    if lb <= int(la[0]):
        return float(T[0, lb]) / months
    return float(Ra[0]) * math.exp(-(length - float(La[0])) / float(beta[0]))


def spell_bin(start: I64) -> I64:
    """Bin of a quiet spell: the hour it began, plus 24 when that day was a weekend day."""
    day, k = np.divmod(start, SLOTS_PER_DAY)
    out: I64 = (k // 4 + 24 * ((day + 3) % 7 >= 5)).astype(np.int64)
    return out


_WAKE_TO_LEN = np.eye(NLB, dtype=np.float32)[
    (np.searchsorted(LEN_EDGES, np.arange(NW - 1), side="right") - 1)]


def wake_lengths(w: F32, other: float) -> F32:
    """Wake histograms (slots after 04:00) as spell-length histograms, pooled over day types."""
    wl: F32 = (w[..., :-1] @ _WAKE_TO_LEN).astype(np.float32)
    out: F32 = wl + other * wl[:, ::-1]
    return out


def pool_spells(h: F32, other: float) -> F32:
    """Spells of each bin pooled with the neighbouring hours and the other kind of day."""
    w = h.reshape(h.shape[0], 2, 24, -1)
    near = w.copy()
    near[:, :, 1:] += 0.5 * w[:, :, :-1]
    near[:, :, :1] += 0.5 * w[:, :, -1:]
    near[:, :, :-1] += 0.5 * w[:, :, 1:]
    near[:, :, -1:] += 0.5 * w[:, :, :1]
    near += other * near[:, ::-1].copy()
    out: F32 = near.reshape(h.shape)
    return out


def grade_of(rate: F32, c: F32) -> npt.NDArray[np.int8]:
    out: npt.NDArray[np.int8] = (rate[:, None] <= c).sum(1).astype(np.int8)
    return out


def weekend(day: int) -> bool:
    return (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday


def len_bin(L: npt.NDArray[Any]) -> I64:
    return (np.searchsorted(LEN_EDGES, L, side="right") - 1).astype(np.int64)


def lvl_bin(x: npt.NDArray[Any]) -> I64:
    out: I64 = np.searchsorted(LEVEL_EDGES, np.maximum(x, 0), side="right").astype(np.int64)
    return out


def level_of_bin(i: npt.NDArray[Any]) -> F32:
    """A representative kW value of level bins (the bin's upper edge)."""
    out: F32 = LEVEL_EDGES[np.clip(i, 0, NLV - 2)]
    return out


def nan_quantile_rows(x: npt.NDArray[Any], q: float) -> F32:
    """Quantile of each row ignoring NaN (linear interpolation); NaN for an all-NaN row."""
    srt = np.sort(x, axis=1)  # NaN sort last
    cnt = np.isfinite(srt).sum(1)
    pos = q * np.maximum(cnt - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(cnt - 1, 0))
    a = np.take_along_axis(srt, lo[:, None], 1)[:, 0]
    b = np.take_along_axis(srt, hi[:, None], 1)[:, 0]
    out = a + (b - a) * (pos - lo)
    res: F32 = np.where(cnt > 0, out, np.nan).astype(np.float32)
    return res


def row_hist(x: npt.NDArray[Any]) -> F32:
    """Level histogram of each row of ``x`` (NaN entries left out)."""
    rows = np.broadcast_to(np.arange(x.shape[0])[:, None], x.shape)
    ok = np.isfinite(x)
    idx = rows[ok] * NLV + lvl_bin(x[ok])
    out: F32 = np.bincount(idx, minlength=x.shape[0] * NLV).reshape(x.shape[0], NLV).astype(
        np.float32)
    return out


def quantile(h: F32, q: float) -> F32:
    """Quantile of level histograms (one per row), as the upper edge of the bin reached."""
    c = np.cumsum(h, axis=1)
    tot = np.maximum(c[:, -1:], 1e-9)
    i = (c < q * tot).sum(1)
    return level_of_bin(i)
