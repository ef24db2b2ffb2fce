"""How fast any quiet-spell detector could have been on a file, with thresholds set in hindsight.

The inactivity detector judges a quiet spell by three things: how long it has lasted, the hour
it began and whether that day was a weekday (``stats.spell_bin``). Its best possible form, for
one file, is the set of 48 thresholds (one per start bin) chosen *after* seeing both the file's
real quiet spells and the injected events: a real spell at least as long as its bin's threshold
is a false case, an event is detected when its spell reaches the threshold.

``hindsight_bound`` finds those thresholds exactly (a knapsack over the bins: each false case
is spent where it buys the most detections) and reports the smallest median and p95 delay they
reach within a false-case budget. No model that only sees the length, start hour and day type
of a quiet spell can beat it on that file; a model run without hindsight does worse. It tells a
target the data cannot support from a model that falls short.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .stats import spell_bin

NBINS = 48
SLOT_H = 0.25
MAX_PER_MONTH = 20.0  # the cost of a 4 h median is sought up to this many false cases a month
MAX_T = 48 * 4  # thresholds up to 48 h (the evaluation's horizon); beyond that: never alert
# the exact search costs bins x (budget + 1)^2 per pass: past these, it is not run
MAX_BUDGET = 2000
MAX_WORK = 2e9

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass
class SpellData:
    """Real quiet spells (start slot, length in slots) and the injected events' spells."""

    spell_start: I64
    spell_len: I64
    event_start: I64  # slot at which the event's quiet spell began
    event_elapsed: I64  # quiet slots already behind it when the event began
    event_offset_h: F64  # how far into its slot the event began (hours)
    months: float


def _options(d: SpellData, within_h: float) -> tuple[I64, I64]:
    """Per bin and threshold T (1..MAX_T, then "never"): false cases and events detected
    within ``within_h`` hours."""
    T = np.arange(1, MAX_T + 2)  # MAX_T + 1 stands for "never"
    sb, eb = spell_bin(d.spell_start), spell_bin(d.event_start)
    false = np.zeros((NBINS, T.size), np.int64)
    hit = np.zeros((NBINS, T.size), np.int64)
    for b in range(NBINS):
        lens = np.sort(d.spell_len[sb == b])
        false[b] = lens.size - np.searchsorted(lens, T, side="left")  # spells with L >= T
        sel = eb == b
        # the alert comes once the spell has lasted T slots: T - elapsed slots after the event
        # began (at least the event's own slot)
        delay = (np.maximum(T[:, None] - d.event_elapsed[sel][None, :], 1) * SLOT_H
                 - d.event_offset_h[sel][None, :])
        hit[b] = (delay <= within_h + 1e-9).sum(1)
    false[:, -1] = 0
    hit[:, -1] = 0
    return false, hit


def best_detected(d: SpellData | list[SpellData], within_h: float, budget: int) -> I64:
    """For every false-case budget 0..``budget``: the most events that 48 thresholds chosen in
    hindsight detect within ``within_h`` hours. Several homes: 48 thresholds for each home,
    the budget shared by all of them (false cases are counted over all homes together)."""
    parts = [_options(x, within_h) for x in (d if isinstance(d, list) else [d])]
    false = np.concatenate([f for f, _ in parts])
    hit = np.concatenate([h for _, h in parts])
    nb = false.shape[0]
    # for a budget f in a bin, the best threshold is the smallest T with at most f false cases
    # (detections only fall as T grows)
    best = np.zeros((nb, budget + 1), np.int64)
    for f in range(budget + 1):
        ok = false <= f
        first = np.argmax(ok, axis=1)  # "never" always qualifies
        best[:, f] = hit[np.arange(nb), first]
    dp = np.zeros(budget + 1, np.int64)  # most detections with at most k false cases so far
    ks = np.arange(budget + 1)
    for b in range(nb):
        # max-plus convolution of dp with this bin's options
        cand = dp[ks[:, None] - ks[None, :]] + best[b][None, :]
        cand = np.where(ks[None, :] <= ks[:, None], cand, -1)
        dp = cand.max(1)
    return dp


def hindsight_bound(d: SpellData | list[SpellData], per_month: float = 1.0) -> dict[str, Any]:
    """The smallest median and p95 delay of any 48-threshold quiet-spell detector with at most
    ``per_month`` false cases a month on this file, and what 4 h would have cost. Given several
    homes, each has its own 48 thresholds, and the false cases a month are counted over all
    homes together, as the evaluation counts them; the delays are pooled."""
    homes = d if isinstance(d, list) else [d]
    n = sum(int(x.event_start.size) for x in homes)
    if n == 0:
        return {"events": 0}
    months = sum(x.months for x in homes)
    budget = int(math.floor(per_month * months + 1e-9))
    if budget > MAX_BUDGET or len(homes) * NBINS * (budget + 1) ** 2 > MAX_WORK:
        return {"events": n, "false_cases_allowed": budget,
                "skipped": f"too many homes or months for the exact bound ({len(homes)} "
                           f"homes, {budget} false cases allowed)"}
    grid = np.arange(0.25, 48.01, 0.25)

    def smallest(q: float, k: int) -> float | None:
        need = math.ceil(q * n)
        lo, hi = 0, grid.size - 1
        if best_detected(homes, float(grid[hi]), k)[k] < need:
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            if best_detected(homes, float(grid[mid]), k)[k] >= need:
                hi = mid
            else:
                lo = mid + 1
        return float(grid[lo])

    # false cases a month that a median under 4 h would have taken (where that search, up to
    # MAX_PER_MONTH a month, is small enough to run)
    big = max(budget, int(math.ceil(MAX_PER_MONTH * months)))
    k4: int | None = None
    searched = len(homes) * NBINS * (big + 1) ** 2 <= MAX_WORK
    if searched:
        within4 = best_detected(homes, 4.0 - 1e-6, big)
        if within4[-1] >= math.ceil(0.5 * n):
            k4 = int(np.argmax(within4 >= math.ceil(0.5 * n)))
    return {
        "events": n,
        "false_cases_allowed": budget,
        "median_h": smallest(0.5, budget),
        "p95_h": smallest(0.95, budget),
        "share_within_4h": round(float(best_detected(homes, 4.0 - 1e-6, budget)[budget]) / n, 3),
        "share_within_12h": round(float(best_detected(homes, 12.0 - 1e-6, budget)[budget]) / n,
                                  3),
        "false_per_month_for_median_under_4h": None if k4 is None else round(k4 / months, 2),
        "median_under_4h_searched": searched,  # False: too large a search; the figure is None
    }
