"""The hindsight bound: the best 48 quiet-spell thresholds for a file, found exactly."""

from __future__ import annotations

import numpy as np

from maeul.services.care.bound import SpellData, best_detected, hindsight_bound

DAY = 96  # slots; day 4 after 1970-01-01 is a Monday, so bins 0-23 are weekday hours


def _slot(day: int, hour: int) -> int:
    return day * DAY + hour * 4


def _data(spells: list[tuple[int, int]], events: list[tuple[int, int]],
          months: float = 1.0) -> SpellData:
    sp = np.array(spells, np.int64).reshape(-1, 2)
    ev = np.array(events, np.int64).reshape(-1, 2)
    return SpellData(sp[:, 0], sp[:, 1], ev[:, 0], ev[:, 1], np.zeros(len(ev)), months)


def test_thresholds_spend_false_cases_where_they_buy_detections() -> None:
    # Monday 09:00: normal spells of 2 h and 8 h; Monday 15:00: one normal spell of 6 h
    spells = [(_slot(4, 9), 8), (_slot(4, 9), 32), (_slot(4, 15), 24)]
    # three events fall at the start of a 09:00 spell, one at the start of a 15:00 spell
    events = [(_slot(11, 9), 0)] * 3 + [(_slot(11, 15), 0)]
    d = _data(spells, events)
    # within 1 h (4 slots) without a false case: impossible (every threshold <= 4 slots is
    # reached by a normal spell)
    assert best_detected(d, 1.0, 0)[0] == 0
    # within 1 h the threshold is at most 4 slots, which every normal spell reaches: one false
    # case buys the 15:00 event, two buy the three 09:00 events instead, three buy all four
    assert list(best_detected(d, 1.0, 3)) == [0, 1, 3, 4]
    # within 3 h (12 slots) the 2 h spell at 09:00 stays below the threshold
    assert list(best_detected(d, 3.0, 2)) == [0, 3, 4]
    # events already two hours into their spell are detected two hours sooner
    late = _data(spells, [(_slot(11, 9), 8)] * 3)
    assert best_detected(late, 1.0, 0)[0] == 0 and best_detected(late, 7.0, 0)[0] == 3


def test_bound_reports_median_p95_and_the_cost_of_four_hours() -> None:
    # 8 h spells at Monday 09:00, one a month over ten months, and ten events at the start
    # of such a spell
    spells = [(_slot(4 + 7 * i, 9), 32) for i in range(10)]
    events = [(_slot(102, 9), 0)] * 10
    rep = hindsight_bound(_data(spells, events, months=10.0), per_month=0.5)
    # five false cases are not enough to go below the spells' length: 33 slots
    assert rep["false_cases_allowed"] == 5
    assert rep["median_h"] == rep["p95_h"] == 8.25
    assert rep["share_within_4h"] == 0.0 and rep["share_within_12h"] == 1.0
    # going under 4 h means alerting on every one of the ten spells: one a month
    assert rep["false_per_month_for_median_under_4h"] == 1.0
    assert hindsight_bound(_data(spells, [], months=10.0)) == {"events": 0}


def test_several_homes_share_the_false_cases_and_pool_their_events() -> None:
    """Each home has its own thresholds; the false cases a month are counted over all homes,
    so a home whose normal spells are short can alert early while another spends nothing."""
    # home A: 8 h spells at Monday 09:00, one a month; home B: only 2 h spells there
    a = _data([(_slot(4 + 7 * i, 9), 32) for i in range(10)], [(_slot(102, 9), 0)] * 10,
              months=10.0)
    b = _data([(_slot(4 + 7 * i, 9), 8) for i in range(10)], [(_slot(102, 9), 0)] * 10,
              months=10.0)
    # alone, A's ten events need its ten spells as false cases to be found within 4 h ...
    assert list(best_detected(a, 4.0, 10))[9:] == [0, 10]
    # ... B's are found within 3 h at no cost (a threshold above 2 h and under 3 h)
    assert best_detected(b, 3.0, 0)[0] == 10
    both = best_detected([a, b], 3.0, 10)
    assert both[0] == 10 and both[10] == 20
    rep = hindsight_bound([a, b], per_month=0.5)  # 10 false cases over 20 home-months
    assert rep["events"] == 20 and rep["false_cases_allowed"] == 10
    # ten false cases buy A's events at once (a threshold of one slot: 0.25 h), B's come free
    # at 2.25 h (a threshold of 9 slots, past its 2 h spells): half the events within
    # 0.25 h, all within 2.25 h
    assert rep["median_h"] == 0.25 and rep["p95_h"] == 2.25
    assert rep["false_per_month_for_median_under_4h"] == 0.0
    assert rep["median_under_4h_searched"]
    # a search too large for the exact bound is named, not run
    many = [a] * 30
    far = hindsight_bound(many, per_month=10.0)
    assert "too many homes or months" in far["skipped"] and far["events"] == 300
