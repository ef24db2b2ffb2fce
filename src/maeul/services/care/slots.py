"""Readings of any interval (1 to 15 minutes) summarised into 15-minute slots.

The model works on slots so that a home read every minute and a home read every quarter hour
are judged the same way; the slot keeps the mean (energy), the lowest and highest reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .readings import Readings

SLOT_S = 900
SLOTS_PER_DAY = 96


@dataclass
class Slots:
    """Dense slot summaries from slot ``start`` on; ``count == 0`` marks a slot without data."""

    start: int
    mean: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    count: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    def window(self, i: int, j: int) -> Slots:
        """Slots ``i`` to ``j`` (positions, not slot numbers)."""
        return Slots(self.start + i, self.mean[i:j], self.low[i:j], self.high[i:j],
                     self.count[i:j])


def summarise(r: Readings, start: int | None = None, end: int | None = None) -> Slots:
    """Slot summaries of ``r`` over slots ``start`` .. ``end`` - 1 (default: the readings' span)."""
    ok = ~np.isnan(r.kw)
    t, kw = r.t[ok], r.kw[ok]
    g = t // SLOT_S
    s0 = int(start if start is not None else (g[0] if g.size else 0))
    s1 = int(end if end is not None else (g[-1] + 1 if g.size else s0))
    n = max(0, s1 - s0)
    mean = np.full(n, np.nan)
    low = np.full(n, np.nan)
    high = np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int32)
    sel = (g >= s0) & (g < s1)
    g, kw = g[sel] - s0, kw[sel]
    if g.size:
        if bool(np.any(np.diff(g) < 0)):
            order = np.argsort(g, kind="stable")
            g, kw = g[order], kw[order]
        first = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
        idx = g[first]
        cnt = np.diff(np.r_[first, g.size])
        mean[idx] = np.add.reduceat(kw, first) / cnt
        low[idx] = np.minimum.reduceat(kw, first)
        high[idx] = np.maximum.reduceat(kw, first)
        count[idx] = cnt
    return Slots(s0, mean, low, high, count)
