"""Empty-house risk from a building's own meter: months of near-standby use.

A day counts as *near-standby* when even its busier hours stay close to the building's lowest
level: the day's third-highest hourly mean (so one or two automatic cycles, a water heater or a
defrost, do not count as use) rises less than ``REL`` of the building's usual daily rise above
its quietest hour. The score is the share of the last 90 days that were near-standby, so
three months empty give 1.0 and a three-week holiday about 0.25.

District figures are published only over enough buildings that none can be singled out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .readings import Readings

WINDOW_DAYS = 90
REL = 0.15  # a near-standby day rises less than this share of a usual day's rise
MIN_RISE_KW = 0.5  # a building never seen in use: compare with a modest home's daily rise
MIN_HOMES = 10  # district figures over fewer buildings are withheld


@dataclass(frozen=True)
class Vacancy:
    """The score and what it was computed from."""

    score: float  # share of the last 90 days at near-standby use, in [0, 1]
    standby_days: int
    days_with_data: int
    usual_rise_kw: float  # the building's usual daily rise above its quietest hour
    last_day: str  # ISO date of the last day considered

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "standby_days": self.standby_days,
                "days_with_data": self.days_with_data, "usual_rise_kw": self.usual_rise_kw,
                "last_day": self.last_day}


def vacancy_score(readings: Readings) -> float:
    """Empty-house risk in [0, 1] from the readings' last 90 days (see the module docstring)."""
    return vacancy(readings).score


def vacancy(readings: Readings) -> Vacancy:
    """The vacancy score with its evidence."""
    ok = ~np.isnan(readings.kw)
    t, kw = readings.t[ok], readings.kw[ok]
    if t.size == 0:
        raise ValueError("no readings to score")
    hour = t // 3600
    h0 = int(hour.min())
    sums = np.bincount(hour - h0, weights=kw)
    cnt = np.bincount(hour - h0)
    mean = np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan)
    first_day = h0 // 24
    pad = h0 - first_day * 24
    n_days = -(-(pad + mean.size) // 24)
    grid = np.full(n_days * 24, np.nan)
    grid[pad:pad + mean.size] = mean
    days = grid.reshape(n_days, 24)
    have = np.isfinite(days).sum(1) >= 18  # a day needs most of its hours
    srt = np.sort(np.where(np.isfinite(days), days, -np.inf), axis=1)
    third_high = srt[:, -3]
    quietest = np.nanmin(np.where(have[:, None], days, np.nan), axis=1) if have.any() else (
        np.full(n_days, np.nan))
    rise = third_high - quietest
    usual = float(np.nanquantile(rise[have], 0.75)) if have.any() else 0.0
    usual = max(usual, MIN_RISE_KW)
    standby = have & (rise < REL * usual)
    recent = slice(max(0, n_days - WINDOW_DAYS), n_days)
    sb = int(standby[recent].sum())
    last = np.datetime64("1970-01-01", "D") + np.timedelta64(first_day + n_days - 1, "D")
    return Vacancy(round(sb / WINDOW_DAYS, 3), sb, int(have[recent].sum()), round(usual, 3),
                   str(last))


def district_vacancy(scores: Mapping[str, float], *, min_homes: int = MIN_HOMES,
                     high: float = 0.8) -> dict[str, Any] | None:
    """Aggregate scores of one district; ``None`` when there are too few buildings to publish.

    Returns the number of buildings, the mean score and the share with a score of at least
    ``high`` (likely empty), never a building's own figure."""
    vals = np.array([float(v) for v in scores.values()], dtype=np.float64)
    if vals.size < min_homes:
        return None
    if np.any((vals < 0) | (vals > 1) | ~np.isfinite(vals)):
        raise ValueError("vacancy scores must lie in [0, 1]")
    return {"buildings": int(vals.size), "mean_score": round(float(vals.mean()), 3),
            "share_likely_empty": round(float((vals >= high).mean()), 3)}
