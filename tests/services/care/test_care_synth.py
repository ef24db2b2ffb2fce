"""The synthetic multi-home generator."""

from __future__ import annotations

import numpy as np

from maeul.services.care.synth import SynthCity


def test_days_are_reproducible_and_plausible() -> None:
    a, b = SynthCity(500, seed=4), SynthCity(500, seed=4)
    x = a.day(10)
    assert x.shape == (500, 96) and x.dtype == np.float32
    assert np.array_equal(x, b.day(10)) and not np.array_equal(x, a.day(11))
    assert float(x.min()) > 0 and float(x.max()) < 15
    daily_kwh = x.sum(1) / 4
    assert 2 < float(np.median(daily_kwh)) < 25  # a household's day, not a factory's


def test_routines_differ_and_holidays_are_quiet() -> None:
    c = SynthCity(200, seed=9)
    h = c.homes
    assert h.wake.std() > 0.5 and (h.water_heater > 0).any() and (h.heating > 0).any()
    home = int(np.flatnonzero((h.holidays > 10) & (h.holidays < 300) & (h.heating == 0))[0])
    d0 = int(h.holidays[home])
    away = np.stack([c.day(d)[home] for d in range(d0, d0 + int(h.holiday_len[home]))])
    home_days = np.stack([c.day(d)[home] for d in range(d0 - 10, d0)])
    assert away.sum(1).mean() < 0.6 * home_days.sum(1).mean()
    # people get up around their own wake time: morning use rises after it
    r = c.readings(0, 14)
    per_slot = r.kw.reshape(14, 96).mean(0)
    wake_slot = int(h.wake[0] * 4)
    assert per_slot[wake_slot:wake_slot + 8].mean() > per_slot[8:12].mean()
