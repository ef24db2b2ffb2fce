"""The false-alert budget of the quiet-spell detector and the automatic-cycle rule."""

from __future__ import annotations

import json

import numpy as np

from maeul.services.care.engine import CareBatch
from maeul.services.care.model import HouseholdModel
from maeul.services.care.stats import (
    LEN_EDGES,
    NLB,
    CareParams,
    allocate,
    len_bin,
    pool_spells,
    tail_fit,
)


def _home(rng: np.random.Generator) -> np.ndarray:
    """Spell histogram of one home (48 bins): short spells everywhere, long ones by day."""
    h = np.zeros((48, NLB), np.float32)
    for b in range(48):
        hour = b % 24
        lens = rng.exponential(6 if 9 <= hour < 18 else 2, 60) * 4
        lens = lens[lens < 20 * 4]
        np.add.at(h[b], len_bin(lens.astype(np.int64)), 1.0)
    return h


def _false_rate(p: CareParams, pooled: np.ndarray, months: float, thr: np.ndarray) -> float:
    fit = tail_fit(pooled, np.full((1, 1), months, np.float32), p.anchor_k, p.beta_min_h,
                   p.beta_max_h)
    T = fit[0][0]
    i = np.searchsorted(LEN_EDGES, thr, side="right") - 1
    return float(T[np.arange(48), i].sum() / (4 * months))


def test_budget_is_spent_and_bought_where_it_helps() -> None:
    p = CareParams()
    pooled = pool_spells(_home(np.random.default_rng(3))[None], 1.0)
    months = np.array([6.0], np.float32)
    fit = tail_fit(pooled, months[:, None], p.anchor_k, p.beta_min_h, p.beta_max_h)
    act = np.full((1, 48), 30.0, np.float32)
    cost = np.ones((1, 48), np.float32)
    tight = allocate(p, fit, act, months, 0.3, 4.0, cost)[0]
    loose = allocate(p, fit, act, months, 3.0, 4.0, cost)[0]
    assert tight.shape == (48,) and (tight >= p.floor_h[1] * 4).all()
    assert (loose <= tight).all() and (loose < tight).any()  # more budget, earlier alerts
    # the budget holds (read on the histogram, bins of spells at least that long)
    assert _false_rate(p, pooled[0:1], 6.0, loose) <= 3.0 * 1.5
    # hours whose spells run long (days out) get later thresholds than hours of short ones
    assert tight[3] < tight[12]
    # a bin whose false alerts cost more (feedback) gets a later threshold
    cost2 = cost.copy()
    cost2[0, 12] = 8.0
    assert allocate(p, fit, act, months, 0.3, 4.0, cost2)[0, 12] >= tight[12]


def test_an_automatic_cycle_does_not_restart_a_long_quiet_spell() -> None:
    def run(cycle_low: float) -> CareBatch:
        b = CareBatch(1)
        b.b[:], b.theta[:], b.theta_strong[:] = 0.1, 0.2, 1.2
        b.days_seen[:] = 0  # nothing learned or alerted, only the clock
        g = 1000 * 96 + 10  # not the slot at which this row's thresholds are refitted
        for i in range(6 * 4):  # six quiet hours
            b.step(g + i, [0.12], [0.1], [1])
        for i in range(3):  # a cycle of 45 min, 0.5 kW above standby
            b.step(g + 24 + i, [0.6], [0.1 + cycle_low], [1])
        for i in range(4):
            b.step(g + 27 + i, [0.12], [0.1], [1])
        return b

    held = run(0.05)  # the load came and went within each quarter hour
    assert held.aq[0] == 31 and held.qlen[0] < 10  # judged as one spell, seen as two
    kept_on = run(0.5)  # a steady load: somebody at home
    assert kept_on.aq[0] < 10


def test_states_saved_before_the_new_arrays_still_load() -> None:
    m = HouseholdModel("old", CareParams())
    t0 = 1_700_000_000 // 900 * 900
    m.update([(np.datetime64(t0 + i * 900, "s").astype(object), 0.1) for i in range(200)])
    doc = json.loads(json.dumps(m.to_json()))
    for name in CareBatch.ADDED:
        del doc["arrays"][name]
    back = HouseholdModel.from_json(doc)
    assert back.batch.aq[0] == m.batch.qlen[0] and back.batch.aqs[0] == m.batch.qstart[0]
