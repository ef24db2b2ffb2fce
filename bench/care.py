"""Load benchmark of the care model: many homes at 15-minute readings, in real time.

Synthetic homes (``maeul.services.care.synth``) are generated a day at a time. The model of
all homes is one ``CareBatch`` (arrays with one row per home); every 15-minute tick it takes
one reading per home and returns the alerts raised. After ``--warmup-days`` of learning, the
next ``--days`` are timed tick by tick (update + detect, alerts turned into objects with their
evidence). A sample of homes also runs through the per-home ``HouseholdModel`` for comparison.

    .venv/bin/python bench/care.py                    # 10,000 homes, 60 days warm-up, 1 day
    .venv/bin/python bench/care.py --homes 1000 --warmup-days 14 --json

Prints a table and one JSON line. No assertions: the 15-minute budget is printed beside.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

from maeul.services.care.engine import CareBatch
from maeul.services.care.model import HouseholdModel
from maeul.services.care.synth import SynthCity

BUDGET_S = 900.0


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--homes", type=int, default=10_000)
    ap.add_argument("--warmup-days", type=int, default=60)
    ap.add_argument("--days", type=int, default=1, help="days timed after the warm-up")
    ap.add_argument("--sample", type=int, default=100,
                    help="homes also run one by one through HouseholdModel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the JSON line only")
    a = ap.parse_args()
    n = a.homes
    rss0 = rss_mib()
    city = SynthCity(n, seed=a.seed)
    batch = CareBatch(n)
    g0 = city.t0 // 900
    ones = np.ones(n, np.int32)
    t = time.perf_counter()
    gen_s = 0.0
    for d in range(a.warmup_days):
        t1 = time.perf_counter()
        x = city.day(d)
        gen_s += time.perf_counter() - t1
        for k in range(96):
            batch.step(g0 + d * 96 + k, x[:, k], x[:, k], ones)
        print(f"\rwarm-up day {d + 1}/{a.warmup_days}", end="", file=sys.stderr)
    print(file=sys.stderr)
    warm_s = time.perf_counter() - t - gen_s
    lat: list[float] = []
    alerts = np.zeros(4, np.int64)  # by grade
    for d in range(a.warmup_days, a.warmup_days + a.days):
        x = city.day(d)
        for k in range(96):
            t1 = time.perf_counter()
            res = batch.step(g0 + d * 96 + k, x[:, k], x[:, k], ones)
            for row in res.homes:  # what a service does with them: one record per alert
                for grp in np.flatnonzero(res.grade[row]):
                    gr = int(res.grade[row, grp])
                    alerts[gr] += 1
                    _ = {"home": int(row), "group": int(grp), "grade": gr}
            lat.append(time.perf_counter() - t1)
    state_bytes = sum(v.nbytes for v in batch.arrays().values())
    lat_ms = np.array(lat) * 1000
    ticks = len(lat)
    homes_per_s = n * ticks / max(sum(lat), 1e-9)
    # per-home objects: the same readings through HouseholdModel, one home at a time
    sample = min(a.sample, n)
    per_home_s = float("nan")
    json_kib = float("nan")
    if sample:
        models = [HouseholdModel(f"h{i}") for i in range(sample)]
        days = a.warmup_days + a.days
        xs = [city.day(d)[:sample] for d in range(days)]
        t1 = time.perf_counter()
        for i, m in enumerate(models):
            kw = np.concatenate([x[i] for x in xs]).astype(np.float64)
            m.process_slots(g0, kw, kw, np.ones(kw.size, np.int32))
        per_home_s = (time.perf_counter() - t1) / (sample * days * 96)
        json_kib = float(np.mean([len(json.dumps(m.to_json())) for m in models[:20]])) / 1024
    rep = {
        "bench": "care", "homes": n, "cores": os.cpu_count(), "process": "single",
        "warmup_days": a.warmup_days, "timed_days": a.days, "ticks": ticks,
        "homes_per_s": round(homes_per_s),
        "tick_ms": {"p50": round(float(np.percentile(lat_ms, 50)), 2),
                    "p95": round(float(np.percentile(lat_ms, 95)), 2),
                    "max": round(float(lat_ms.max()), 2)},
        "budget_ms": BUDGET_S * 1000,
        "share_of_budget_p95": round(float(np.percentile(lat_ms, 95)) / (BUDGET_S * 1000), 6),
        "warmup_homes_per_s": round(n * a.warmup_days * 96 / max(warm_s, 1e-9)),
        "state_bytes_per_home": round(state_bytes / n),
        "rss_mib": round(rss_mib(), 1), "rss_growth_mib": round(rss_mib() - rss0, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "alerts_per_home_month": {
            name: round(float(alerts[i]) / n / a.days * 30.44, 3)
            for i, name in ((1, "attention"), (2, "caution"), (3, "serious"))},
        "household_model_us_per_home_slot": round(per_home_s * 1e6, 1),
        "household_model_10k_tick_s": round(per_home_s * 10_000, 2),
        "household_state_json_kib": round(json_kib, 1),
    }
    if not a.json:
        print(f"care bench: {n:,} homes, 15-minute readings, {a.warmup_days} days warm-up, "
              f"{a.days} day(s) timed ({ticks} ticks), one process on a {os.cpu_count()}-core "
              "machine")
        print(f"  throughput               {rep['homes_per_s']:>14,} home-slots/s")
        print(f"  tick latency p50/p95/max {rep['tick_ms']['p50']:>8} / {rep['tick_ms']['p95']} / "
              f"{rep['tick_ms']['max']} ms   (budget {BUDGET_S:.0f} s a tick)")
        print(f"  state per home           {rep['state_bytes_per_home']:>14,} bytes "
              f"(JSON of one HouseholdModel: {rep['household_state_json_kib']} KiB)")
        print(f"  process RSS              {rep['rss_mib']:>14} MiB (peak {rep['peak_rss_mib']})")
        print(f"  HouseholdModel one by one {rep['household_model_us_per_home_slot']:>13} us per "
              f"home-slot -> {rep['household_model_10k_tick_s']} s a tick for 10,000 homes")
        per = rep["alerts_per_home_month"]
        print(f"  alerts in the timed day(s), per home-month: 관심 {per['attention']}, "
              f"주의 {per['caution']}, 심각 {per['serious']} (synthetic homes: a sanity figure)")
    print(json.dumps(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
