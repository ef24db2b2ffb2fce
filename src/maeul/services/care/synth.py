"""Synthetic households at 15-minute readings, for load tests and tests of the model.

Each home draws its own routine: standby level and fridge, wake and bed times (later at
weekends), meals and how often they are cooked at home, TV and lights, night-time trips, a
washing machine, an electric water heater on a night timer, electric heating in winter for some,
days out and a holiday or two a year. Homes are generated a day at a time for all homes at once
(arrays of homes x 96 slots), so 10,000 homes cost a few milliseconds a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from .readings import Readings, to_seconds

SPD = 96
F = npt.NDArray[np.float64]


@dataclass
class Homes:
    """Per-home routine parameters (one entry per home)."""

    standby: F
    fridge: F
    wake: F  # weekday wake time, hours
    weekend_shift: F
    bed: F
    cook_p: F  # chance of cooking a given meal at home
    cook_kw: F
    tv_kw: F
    daytime_home: F  # share of daytime hours spent at home
    night_trips: F  # expected night-time trips (bathroom, kitchen)
    water_heater: F  # kW, 0 for none
    heating: F  # kW of electric heating in winter, 0 for none
    out_p: F  # chance of a day out
    holidays: npt.NDArray[np.int64]  # first day (index) of each home's holiday, -1 for none
    holiday_len: npt.NDArray[np.int64]


class SynthCity:
    """``n`` homes with their own routines; ``day(d)`` gives day ``d``'s slot readings."""

    def __init__(self, n: int, *, seed: int = 0, start: datetime = datetime(2024, 1, 1),
                 days_per_year: int = 365) -> None:
        self.n = n
        self.seed = seed
        self.start = start
        self.t0 = to_seconds(start)
        rng = np.random.default_rng(seed)
        u = rng.uniform
        self.homes = Homes(
            standby=rng.lognormal(np.log(0.12), 0.5, n),
            fridge=u(0.03, 0.12, n),
            wake=np.clip(rng.normal(7.0, 1.0, n), 4.5, 10.5),
            weekend_shift=u(0.0, 1.5, n),
            bed=np.clip(rng.normal(22.8, 0.8, n), 20.5, 25.5),
            cook_p=u(0.3, 0.95, n),
            cook_kw=u(0.8, 2.5, n),
            tv_kw=u(0.05, 0.25, n),
            daytime_home=u(0.2, 0.95, n),
            night_trips=rng.exponential(0.8, n),
            water_heater=np.where(u(0, 1, n) < 0.4, u(1.2, 2.4, n), 0.0),
            heating=np.where(u(0, 1, n) < 0.25, u(0.8, 2.5, n), 0.0),
            out_p=u(0.02, 0.2, n),
            holidays=np.where(u(0, 1, n) < 0.7, rng.integers(0, days_per_year, n), -1),
            holiday_len=rng.integers(3, 15, n),
        )

    def day(self, d: int) -> npt.NDArray[np.float32]:
        """Mean kW of each home in each 15-minute slot of day ``d`` (homes x 96)."""
        h, n = self.homes, self.n
        rng = np.random.default_rng((self.seed, d))
        slot_h = (np.arange(SPD) + 0.5) / 4  # slot centres in hours
        date = np.datetime64(self.start.date()) + np.timedelta64(d, "D")
        weekday = int((date.astype("datetime64[D]").astype(np.int64) + 3) % 7)
        weekend = weekday >= 5
        doy = int((date - date.astype("datetime64[Y]")).astype(np.int64))
        winter = max(0.0, np.cos(2 * np.pi * (doy - 15) / 365))  # 1 in mid-January
        dark = 17.0 + 3.5 * (1 - winter)  # lights needed after this hour
        kw = np.repeat(h.standby[:, None], SPD, 1)
        kw += h.fridge[:, None] * rng.uniform(0.2, 0.8, (n, SPD))
        wake = h.wake + (h.weekend_shift if weekend else 0) + rng.normal(0, 0.4, n)
        bed = h.bed + (0.5 if weekend else 0) + rng.normal(0, 0.4, n)
        hol_day = (d % 365 - h.holidays) % 365
        away = (h.holidays >= 0) & (hol_day < h.holiday_len)
        out = rng.uniform(0, 1, n) < h.out_p
        out_start = rng.uniform(9, 15, n)
        out_end = out_start + rng.uniform(2, 8, n)
        awake = (slot_h[None, :] >= wake[:, None]) & (slot_h[None, :] < bed[:, None])
        home = awake & ~((slot_h[None, :] >= out_start[:, None]) &
                         (slot_h[None, :] < out_end[:, None]) & out[:, None])
        # outings for errands during the day, more for homes that are often out
        errands = rng.uniform(0, 1, (n, SPD)) > h.daytime_home[:, None]
        midday = (slot_h >= 9.5) & (slot_h < 17.5)
        home &= ~(_runs(errands) & midday[None, :])
        # morning routine, meals, TV and lights while at home
        act = np.zeros((n, SPD))
        first = np.argmax(home, axis=1)
        rows = np.arange(n)
        has = home.any(1)
        for k in range(3):
            s = np.minimum(first + k, SPD - 1)
            act[rows[has], s[has]] += rng.uniform(0.3, 2.0, has.sum())  # kettle, shower, toast
        for centre, width in ((12.5, 0.6), (18.8, 0.8)):
            t_meal = centre + rng.normal(0, width, n)
            cook = rng.uniform(0, 1, n) < h.cook_p
            m = (np.abs(slot_h[None, :] - t_meal[:, None]) < 0.5) & home & cook[:, None]
            act += m * h.cook_kw[:, None] * rng.uniform(0.5, 1.0, (n, SPD))
        evening = home & (slot_h[None, :] >= 18)
        act += evening * h.tv_kw[:, None]
        act += home * (slot_h[None, :] >= dark) * rng.uniform(0.05, 0.15, (n, 1))
        act += home * rng.exponential(0.08, (n, SPD))  # small uses: computer, radio, hair dryer
        night = ~awake & (rng.uniform(0, 1, (n, SPD)) < h.night_trips[:, None] / 40)
        act += night * rng.uniform(0.05, 0.3, (n, SPD))
        wash = (rng.uniform(0, 1, n) < 2 / 7)
        ws = np.clip((wake + rng.uniform(1, 5, n)) * 4, 0, SPD - 6).astype(int)
        for k in range(5):
            act[rows[wash], ws[wash] + k] += 1.8 * home[rows[wash], ws[wash]]
        act[away] = 0.0
        kw += act
        # automatic loads: the water heater on its night timer, thermostatic heating in winter
        wh = (slot_h >= 1) & (slot_h < 5)
        use = np.where(away, 0.1, 1.0)
        wh_on = rng.uniform(0, 1, (n, SPD)) < (0.25 * use)[:, None]
        kw += (h.water_heater[:, None] * wh[None, :]) * wh_on
        # heating follows the thermostat: on for hours at a steady, modulated level, more in
        # the morning and evening, a low frost-guard level while the home is away
        cold = winter * rng.uniform(0.5, 1.0, n)
        heat_on = home | (~awake & (rng.uniform(0, 1, (n, 1)) < cold[:, None] * 0.5))
        level = np.where(away, 0.3, 1.0) * cold
        kw += (h.heating * level)[:, None] * np.where(heat_on | away[:, None], 1.0, 0.2) * (
            rng.uniform(0.8, 1.0, (n, SPD)))
        return kw.astype(np.float32)

    def readings(self, home: int, days: int, first_day: int = 0) -> Readings:
        """One home's readings (every 15 minutes) over ``days`` days."""
        kw = np.concatenate([self.day(d)[home] for d in range(first_day, first_day + days)])
        t = self.t0 + first_day * 86400 + np.arange(kw.size, dtype=np.int64) * 900
        return Readings(t, kw.astype(np.float64))


def _runs(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Stretch single random slots into outings of an hour or more (so errands are spells)."""
    out = mask.copy()
    for shift in (1, 2, 3):
        out[:, shift:] |= mask[:, :-shift]
    return out
