"""``maeul care eval``: false alerts on real household data and delay to detect injected events.

The model streams through the file as it would in service: at any moment it knows only the
readings before that moment. The first ``WARMUP_DAYS`` are learning only (KEPCO's service also
learns 60 days first) and are left out of every rate.

* False alerts: every alert raised on the real data is counted as false (the data has no
  incident in it; its holidays and days out are exactly what a care service must live with).
  A *case* is one episode (an alert and its escalations); a *notification* is each new or
  escalated alert.
* Detection: at ``--events`` random moments (seeded), the model's state is copied and run
  forward on up to 48 h in which the home is left at standby: the real readings after the
  moment are replaced by readings copied from the home's own standby periods (each day's three
  quietest hours, from days within 30 days of the event; fridge cycling and the small automatic
  loads of those hours come with them). Detection is the first 주의 or 심각 alert of any kind;
  an event that begins while a 주의/심각 case is already open is counted apart, not timed.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .bound import SpellData, hindsight_bound
from .model import Alert, HouseholdModel
from .readings import CsvSpec, FileInfo, Readings, ReadingsError, load_households, to_datetime
from .slots import SLOT_S, Slots, summarise
from .stats import CareParams

WARMUP_DAYS = 60
HORIZON_H = 48
TARGETS = {"median_h": 4.0, "p95_h": 12.0, "false_per_household_month": 1.0}


@dataclass
class EventResult:
    start: int  # wall-clock seconds
    first_attention_h: float  # inf when nothing was raised within the horizon
    first_caution_h: float
    kind: str  # kind of the detecting alert ("" when undetected)
    open_case: bool = False  # a 주의/심각 case was already open when the event began
    spell_start: int = 0  # slot at which the quiet spell the event fell into began
    elapsed: int = 0  # quiet slots already behind it


def cli_eval(settings: Any, args: argparse.Namespace) -> int:
    """Run the evaluation of ``args.data``; prints a table and a JSON object (or JSON only)."""
    spec = CsvSpec(time_col=getattr(args, "time_col", None),
                   power_col=getattr(args, "power_col", None),
                   unit=getattr(args, "unit", None),
                   cumulative=bool(getattr(args, "cumulative", False)),
                   household_col=getattr(args, "household_col", None),
                   household=getattr(args, "household", None),
                   tz=getattr(args, "tz", None))
    try:
        homes, info = load_households(args.data, spec)
    except ReadingsError as exc:
        print(f"maeul care eval: {exc}", file=sys.stderr)
        return 2
    try:
        report = evaluate_homes(homes, info, events=args.events, seed=args.seed,
                                name=Path(args.data).name,
                                workers=max(1, int(getattr(args, "workers", 1) or 1)))
    except ValueError as exc:
        print(f"maeul care eval: {exc}", file=sys.stderr)
        return 2
    if not args.json:
        print(format_table(report))
    print(json.dumps(report, ensure_ascii=False))
    return 0


def evaluate_homes(homes: dict[str, Readings], info: FileInfo | None = None, *,
                   events: int = 300, seed: int = 7, name: str = "",
                   params: CareParams | None = None, workers: int = 1) -> dict[str, Any]:
    """:func:`evaluate` for every home of a file: ``events`` per home (seeds ``seed``,
    ``seed + 1``, ... in the order of the homes' ids), rates per household-month over all
    homes together, delays pooled; homes too short to evaluate are listed, not fatal."""
    if len(homes) == 1:
        (hid, r), = homes.items()
        rep = evaluate(r, events=events, seed=seed, name=name, params=params)
        _as_read(rep, info, [hid])
        return rep
    t_start = time.monotonic()
    params = params or CareParams()
    ids = sorted(homes)
    jobs = [(homes[h], events, seed + k, params, f"home-{k}") for k, h in enumerate(ids)]
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            outs = list(pool.map(_stream_job, jobs))
    else:
        outs = [_stream_job(j) for j in jobs]
    runs: list[tuple[str, Run]] = []
    skipped: dict[str, str] = {}
    for h, out in zip(ids, outs, strict=True):
        if isinstance(out, str):
            skipped[h] = out
        else:
            runs.append((h, out))
    if not runs:
        raise ValueError(f"none of the {len(ids)} households can be evaluated: "
                         + "; ".join(f"{h}: {why}" for h, why in list(skipped.items())[:3]))
    alerts = [a for _, run in runs for a in run.alerts]
    res = [e for _, run in runs for e in run.events]
    months = sum(run.months for _, run in runs)
    rs = [run.readings for _, run in runs]
    rep = _report(name, rs, alerts, months, res, events, seed, params, WARMUP_DAYS,
                  time.monotonic() - t_start)
    # each home its own 48 thresholds in hindsight, the false cases counted over all homes
    rep["detection"]["bound_06_22"] = hindsight_bound([spell_data(run) for _, run in runs])
    _as_read(rep, info, [h for h, _ in runs])
    rep["households"] = {
        "evaluated": len(runs), "skipped": skipped,
        "per_home": [_home_row(h, run) for h, run in runs]}
    return rep


def _as_read(rep: dict[str, Any], info: FileInfo | None, homes: list[str]) -> None:
    """The file's own readings and interval in the report (not the slots they were held
    over), and how its columns were read."""
    if info is None:
        return
    rep["file"] = info.to_json()
    if all(h in info.rows for h in homes):
        rep["readings"] = sum(info.rows[h] for h in homes)
        rep["interval_s"] = int(np.median([info.interval_s[h] for h in homes]))


def _stream_job(job: tuple[Readings, int, int, CareParams, str]) -> Run | str:
    r, events, seed, params, home = job
    try:
        return stream(r, events=events, seed=seed, params=params, home=home)
    except ValueError as exc:
        return str(exc)


def _cases(alerts: list[Alert]) -> dict[str, int]:
    """Each case (episode) with the highest grade it reached."""
    cases: dict[str, int] = {}
    for a in alerts:
        cases[a.episode] = max(cases.get(a.episode, 0), a.grade)
    return cases


def _home_row(hid: str, run: Run) -> dict[str, Any]:
    cases = _cases(run.alerts)
    day = _delays([e for e in run.events if 6 <= to_datetime(e.start).hour < 22])
    return {"household": hid, "months_evaluated": round(run.months, 2),
            "caution_or_serious_per_month":
                round(sum(1 for g in cases.values() if g >= 2) / run.months, 3),
            "events_06_22": day["events"], "median_h": day["median_h"], "p95_h": day["p95_h"]}


def evaluate(readings: Readings, *, events: int = 300, seed: int = 7, name: str = "",
             params: CareParams | None = None, warmup_days: int = WARMUP_DAYS,
             end: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Stream ``readings`` (up to ``end`` seconds) through a model; see the module docstring."""
    t_start = time.monotonic()
    params = params or CareParams()
    run = stream(readings, events=events, seed=seed, params=params, warmup_days=warmup_days,
                 end=end, progress=progress)
    rep = _report(name, [run.readings], run.alerts, run.months, run.events, events, seed,
                  params, warmup_days, time.monotonic() - t_start)
    rep["detection"]["bound_06_22"] = hindsight_bound(spell_data(run))
    return rep


def spell_data(run: Run) -> SpellData:
    """The run's real quiet spells and its timed events starting 06:00-22:00, for the bound."""
    ev = [e for e in run.events
          if not e.open_case and 6 <= to_datetime(e.start).hour < 22]
    sp = np.array(run.spells, np.int64).reshape(-1, 2)
    return SpellData(
        spell_start=sp[:, 0], spell_len=sp[:, 1],
        event_start=np.array([e.spell_start for e in ev], np.int64),
        event_elapsed=np.array([e.elapsed for e in ev], np.int64),
        event_offset_h=np.array([(e.start % SLOT_S) / 3600 for e in ev], np.float64),
        months=run.months)


@dataclass
class Run:
    """Everything one evaluation run produced (``alerts``: counted real alerts)."""

    readings: Readings
    alerts: list[Alert]
    months: float
    events: list[EventResult]
    spells: list[tuple[int, int]]  # real quiet spells after the warm-up: (start slot, length)


def stream(readings: Readings, *, events: int, seed: int, params: CareParams,
           warmup_days: int = WARMUP_DAYS, end: int | None = None,
           progress: bool = False, home: str = "eval") -> Run:
    """The evaluation's model run: real alerts after the warm-up and the injected events."""
    if end is not None:
        readings = readings.between(int(readings.t[0]), end)
    if events < 0:
        raise ValueError("--events must not be negative")
    slots = summarise(readings)
    g0 = slots.start
    warm = g0 + warmup_days * 96
    g_end = g0 + len(slots)
    if g_end - warm < 7 * 96:
        days = len(slots) / 96
        raise ValueError(f"{days:.0f} days of readings: need at least {warmup_days + 7} days "
                         f"({warmup_days} to learn, then a week to evaluate)")
    rng = np.random.default_rng(seed)
    latest = (g_end - HORIZON_H * 4) * SLOT_S
    lo = warm * SLOT_S
    starts = np.sort(rng.integers(lo, max(lo + 1, latest), size=events)) if latest > lo else (
        np.zeros(0, np.int64))
    library = _StandbyLibrary(readings, slots)
    model = HouseholdModel(home, params)
    log: list[tuple[int, int, int]] = []
    model.batch.spell_log = log
    real: list[Alert] = []
    results: list[EventResult] = []
    pos = 0
    for t0 in starts:
        ge = int(t0) // SLOT_S
        if ge > g0 + pos:
            w = slots.window(pos, ge - g0)
            real.extend(model.process_slots(w.start, w.mean, w.low, w.count))
            pos = ge - g0
        results.append(_inject(model, readings, library, int(t0), rng))
        if progress:
            print(f"\r{len(results)}/{len(starts)} events", end="", file=sys.stderr)
    w = slots.window(pos, len(slots))
    real.extend(model.process_slots(w.start, w.mean, w.low, w.count))
    if progress:
        print(file=sys.stderr)
    counted = [a for a in real if _secs(a) >= warm * SLOT_S]
    spells = [(s, n) for _, s, n in log if s + n > warm]
    return Run(readings, counted, (g_end - warm) / 96 / 30.44, results, spells)


def _secs(a: Alert) -> int:
    return int((a.time - to_datetime(0)).total_seconds())


# standby hours more than this many times the median of their 61-day window are not standby
BUSY = 2.0


class _StandbyLibrary:
    """The home's standby hours: each day's three quietest whole hours (by mean power)."""

    def __init__(self, r: Readings, slots: Slots) -> None:
        self.r = r
        g = slots.start + np.arange(len(slots))
        hour = g // 4
        h0 = int(hour[0])
        ok = slots.count > 0
        sums = np.bincount(hour - h0, weights=np.where(ok, slots.mean, 0.0))
        seen = np.bincount(hour - h0, weights=ok.astype(np.float64))
        mean = np.where(seen == 4, sums / 4, np.inf)
        hours = h0 + np.arange(mean.size)
        order = np.lexsort((mean, hours // 24))  # by day, quietest first
        day = (hours // 24)[order]
        rank = np.arange(order.size) - np.searchsorted(day, day)
        pick = order[(rank < 3) & np.isfinite(mean[order])]
        if pick.size == 0:
            raise ValueError("no standby hours found (the data needs whole hours of readings)")
        pick = np.sort(pick)
        self.hours = hours[pick].astype(np.int64) * 3600  # starts of standby hours
        self.mean = mean[pick]  # their mean power (kW)

    def trace(self, t0: int, hours: int, rng: np.random.Generator) -> Readings:
        """``hours`` of standby readings starting at ``t0``, from days within 30 days of it.

        A day that had no quiet hour (at home and busy all day, a heater on for hours) gives
        hours far above the others: those over ``BUSY`` times the window's median are left
        out, since the incident leaves the home at its standby level, and a load of a kW and
        more switching on at a random hour would be taken for someone at home."""
        sel = np.abs(self.hours - t0) <= 30 * 86400
        near, mean = self.hours[sel], self.mean[sel]
        if near.size:
            near = near[mean <= BUSY * np.median(mean)]
        pool = near if near.size >= 10 else self.hours
        ts, ks = [], []
        for i, h in enumerate(rng.choice(pool, size=hours)):
            a, b = np.searchsorted(self.r.t, [h, h + 3600])
            ts.append(self.r.t[a:b] - h + t0 + i * 3600)
            ks.append(self.r.kw[a:b])
        return Readings(np.concatenate(ts), np.concatenate(ks))


def _inject(model: HouseholdModel, r: Readings, lib: _StandbyLibrary, t0: int,
            rng: np.random.Generator) -> EventResult:
    """Copy the model at ``t0``'s slot and run it forward with the home left at standby."""
    m = model.copy()
    if int(m.batch.ep[0].max()) >= 2:  # already alerted: the case is open, nothing new to raise
        return EventResult(t0, math.inf, math.inf, "", open_case=True)
    g = t0 // SLOT_S
    quiet = int(m.batch.aq[0])  # the alert clock's spell (automatic cycles held)
    spell = int(m.batch.aqs[0]) if quiet else g
    before = r.between(g * SLOT_S, t0)
    trace = lib.trace(t0, HORIZON_H, rng)
    merged = Readings(np.concatenate([before.t, trace.t]), np.concatenate([before.kw, trace.kw]))
    sl = summarise(merged, g, g + HORIZON_H * 4)
    att = cau = math.inf
    kind = ""
    for i in range(0, len(sl), 4):  # an hour at a time, so the run can stop once detected
        w = sl.window(i, i + 4)
        for a in m.process_slots(w.start, w.mean, w.low, w.count):
            h = (_secs(a) - t0) / 3600
            att = min(att, h)
            if a.grade >= 2 and h < cau:
                cau, kind = h, a.kind
        if math.isfinite(cau):
            break
    return EventResult(t0, att, cau, kind, spell_start=spell, elapsed=quiet)


def _delays(all_res: list[EventResult]) -> dict[str, Any]:
    res = [e for e in all_res if not e.open_case]
    d = np.array([e.first_caution_h for e in res])
    a = np.array([e.first_attention_h for e in res])

    def q(x: npt.NDArray[np.float64], p: float) -> float | None:
        if x.size == 0:
            return None
        v = float(np.quantile(x, p, method="inverted_cdf"))
        return round(v, 2) if math.isfinite(v) else None

    kinds: dict[str, int] = {}
    for e in res:
        if e.kind:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
    return {
        "events": len(res),
        "skipped_open_case": len(all_res) - len(res),
        "median_h": q(d, 0.5), "p95_h": q(d, 0.95),
        "detected_within_12h": round(float((d <= 12).mean()), 3) if d.size else None,
        "detected_within_24h": round(float((d <= 24).mean()), 3) if d.size else None,
        "undetected_after_48h": int((~np.isfinite(d)).sum()),
        "attention_median_h": q(a, 0.5), "attention_p95_h": q(a, 0.95),
        "detected_by": kinds,
    }


def _report(name: str, rs: list[Readings], alerts: list[Alert], months: float,
            res: list[EventResult], events: int, seed: int, params: CareParams,
            warmup_days: int, seconds: float) -> dict[str, Any]:
    cases = _cases(alerts)
    by_kind: dict[str, dict[str, int]] = {}
    for a in alerts:
        k = by_kind.setdefault(a.kind, {"관심": 0, "주의": 0, "심각": 0})
        k[a.grade_ko] += 1
    serious_cases = sum(1 for g in cases.values() if g >= 2)
    serious_notes = sum(1 for a in alerts if a.grade >= 2)
    attention = sum(1 for a in alerts if a.grade == 1)
    day = [e for e in res if 6 <= to_datetime(e.start).hour < 22]
    night = [e for e in res if not 6 <= to_datetime(e.start).hour < 22]
    day_d = _delays(day)
    per_month = round(serious_cases / months, 3)
    return {
        "data": name,
        "readings": sum(len(r) for r in rs),
        "interval_s": int(np.median([r.interval_s() for r in rs])),
        "first": to_datetime(min(int(r.t[0]) for r in rs)).isoformat(),
        "last": to_datetime(max(int(r.t[-1]) for r in rs)).isoformat(),
        "warmup_days": warmup_days,
        "months_evaluated": round(months, 2),
        "false_alerts": {
            "caution_or_serious_per_household_month": per_month,
            "caution_or_serious_notifications_per_household_month":
                round(serious_notes / months, 3),
            "attention_per_household_month": round(attention / months, 3),
            "cases": len(cases), "caution_or_serious_cases": serious_cases,
            "by_kind": by_kind,
        },
        "detection": {"seed": seed, "horizon_h": HORIZON_H, "events_requested": events,
                      "start_06_22": day_d, "start_22_06": _delays(night),
                      "all": _delays(res)},
        "targets": {**TARGETS, "met": {
            "median": day_d["median_h"] is not None and day_d["median_h"] < TARGETS["median_h"],
            "p95": day_d["p95_h"] is not None and day_d["p95_h"] < TARGETS["p95_h"],
            "false_alerts": per_month <= TARGETS["false_per_household_month"]}},
        "params": params.to_json(),
        "runtime_s": round(seconds, 1),
    }


def format_table(rep: dict[str, Any]) -> str:
    """A readable summary of a report from ``evaluate``."""
    fa, det = rep["false_alerts"], rep["detection"]

    def h(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} h"

    lines = [
        f"care eval: {rep['data']} ({rep['readings']:,} readings every {rep['interval_s']} s, "
        f"{rep['first'][:10]} .. {rep['last'][:10]}; first {rep['warmup_days']} days learning "
        f"only, {rep['months_evaluated']} months evaluated)",
    ]
    fi = rep.get("file")
    if fi:
        how = {"name": "from its name", "option": "as given", "values": "from its values"}
        lines.append(f"columns: time {fi['time_column']}, power {fi['power_column']} in "
                     f"{fi['unit']} ({how.get(fi['unit_from'], fi['unit_from'])}; --unit to "
                     "override)" + (f", households in {fi['household_column']}"
                                    if fi.get("household_column") else ""))
    hh = rep.get("households")
    if hh:
        lines.append(f"households: {hh['evaluated']} evaluated, {len(hh['skipped'])} too short "
                     f"or unusable; {det['events_requested']} events each; rates per "
                     "household-month over all of them, delays pooled")
    lines += [
        "",
        "false alerts on the real data, per household-month",
        f"  주의/심각 cases (episodes)        {fa['caution_or_serious_per_household_month']:>7}"
        f"   target <= {TARGETS['false_per_household_month']}",
        f"  주의/심각 notifications           "
        f"{fa['caution_or_serious_notifications_per_household_month']:>7}",
        f"  관심 notifications                {fa['attention_per_household_month']:>7}",
        "",
        f"injected incapacitation (seed {det['seed']}, {det['horizon_h']} h horizon); "
        "detection = first 주의 or 심각",
        f"  {'start':<12}{'events':>7}{'median':>10}{'p95':>10}{'<=12h':>7}{'<=24h':>7}"
        f"{'missed':>7}{'관심 med':>10}{'관심 p95':>10}",
    ]
    for label, key in (("06:00-22:00", "start_06_22"), ("22:00-06:00", "start_22_06"),
                       ("all", "all")):
        d = det[key]
        w12 = "-" if d["detected_within_12h"] is None else f"{d['detected_within_12h']:.0%}"
        w24 = "-" if d["detected_within_24h"] is None else f"{d['detected_within_24h']:.0%}"
        lines.append(f"  {label:<12}{d['events']:>7}{h(d['median_h']):>10}{h(d['p95_h']):>10}"
                     f"{w12:>7}{w24:>7}{d['undetected_after_48h']:>7}"
                     f"{h(d['attention_median_h']):>10}{h(d['attention_p95_h']):>10}")
    bd = det.get("bound_06_22")
    each = " for each home" if hh else ""
    if bd and bd.get("skipped"):
        lines += ["", f"hindsight bound, events 06:00-22:00: not computed: {bd['skipped']}"]
    elif bd and bd.get("events"):
        cost = bd["false_per_month_for_median_under_4h"]
        lines += ["", "hindsight bound, events 06:00-22:00: the best 48 quiet-spell thresholds "
                  f"(start hour x weekday/weekend){each}", "chosen after seeing this file's "
                  f"spells and events, with at most {bd['false_cases_allowed']} false cases: "
                  f"median {h(bd['median_h'])}, p95 {h(bd['p95_h'])}; "
                  + ("what a median under 4 h needs was not searched (too large a search)"
                     if not bd.get("median_under_4h_searched", True) else
                     "a median under 4 h needs " + ("more than 20" if cost is None else
                                                    f"{cost}") + " false cases a month")]
    if hh:
        lines += ["", f"  {'household':<20}{'months':>8}{'주의/심각/mo':>13}{'events':>8}"
                  f"{'median':>10}{'p95':>10}"]
        for row in hh["per_home"][:30]:
            lines.append(f"  {row['household'][:20]:<20}{row['months_evaluated']:>8}"
                         f"{row['caution_or_serious_per_month']:>13}{row['events_06_22']:>8}"
                         f"{h(row['median_h']):>10}{h(row['p95_h']):>10}")
        if len(hh["per_home"]) > 30:
            lines.append(f"  ... {len(hh['per_home']) - 30} more in the JSON")
    met = rep["targets"]["met"]
    lines += ["", "targets (events 06:00-22:00): median < 4 h "
              f"[{'met' if met['median'] else 'not met'}], p95 < 12 h "
              f"[{'met' if met['p95'] else 'not met'}], <= 1 false 주의/심각 case a month "
              f"[{'met' if met['false_alerts'] else 'not met'}]", ""]
    return "\n".join(lines)
