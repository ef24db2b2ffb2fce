"""``maeul signals bench``: every controller x network x seed, RESCO's settings and metrics."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .controllers import make
from .metrics import trip_metrics
from .tuning import DEFAULT_DIR
from .twin import TwinError, require_lights

# Best average delay (s) over all methods in RESCO's published results (Ault & Sharon 2021).
RESCO_BEST = {"ingolstadt1": 20.90, "ingolstadt7": 31.19, "ingolstadt21": 59.64,
              "cologne1": 26.05, "cologne3": 23.99, "cologne8": 21.62, "grid4x4": 32.95,
              "arterial4x4": 654.0}
FIELDS = ("delay", "trip_time", "waiting_time", "throughput", "co2_kg", "people", "walk_delay")


#: one simulation: network, controller name, seed, end override, parameters (for ``tuned``)
Job = tuple[str, str, int, float | None, dict[str, float] | None]


def run_one(job: Job) -> dict[str, Any]:
    """One simulation in its own process (libsumo allows one simulation per process)."""
    from .runner import simulate

    net, ctl, seed, end, params = job
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="maeul-bench-") as tmp:
        try:
            res = simulate(net, make(ctl, params), Path(tmp) / "tripinfo.xml", seed=seed,
                           end=end)
        except Exception as exc:
            if type(exc).__name__ not in ("TraCIException", "FatalTraCIError"):
                raise
            # SUMO's own errors cannot cross processes; name the run instead
            raise TwinError(f"{display_name(net)}, {ctl}, seed {seed}: SUMO stopped: {exc}"
                            ) from None
        m = trip_metrics(res.tripinfo, res.end)
    row: dict[str, Any] = {"net": net, "controller": ctl, "seed": seed, "params": params,
                           **m.as_dict()}
    n = max(1, res.decisions)
    # per intersection and decision: reading its detectors and choosing, and choosing alone
    row["decision_us"] = 1e6 * (res.observe_seconds + res.decide_seconds) / n
    row["choose_us"] = 1e6 * res.decide_seconds / n
    row["seconds"] = time.monotonic() - t0  # wall time of the simulation (tuning's budget)
    return row


def run_jobs(jobs: list[Job], workers: int) -> list[dict[str, Any]]:
    if workers <= 1:
        return [run_one(j) for j in jobs]
    # spawn and one task per child: a fresh interpreter for every libsumo simulation
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        return list(pool.map(run_one, jobs))


def _ms(vals: list[float]) -> tuple[float, float]:
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sd per network and controller, with the delay ratio to fixed time."""
    out = []
    keys = list(dict.fromkeys((r["net"], r["controller"]) for r in rows))
    for net, ctl in keys:
        sel = [r for r in rows if r["net"] == net and r["controller"] == ctl]
        s: dict[str, Any] = {"net": net, "controller": ctl, "seeds": len(sel)}
        for f in FIELDS:
            s[f"{f}_mean"], s[f"{f}_sd"] = _ms([float(r[f]) for r in sel])
        s["decision_us"] = statistics.fmean(r["decision_us"] for r in sel)
        s["decision_us_max"] = max(r["decision_us"] for r in sel)
        s["choose_us"] = statistics.fmean(r["choose_us"] for r in sel)
        fixed = [r for r in rows if r["net"] == net and r["controller"] == "fixed"]
        s["delay_ratio_fixed"] = (s["delay_mean"] / statistics.fmean(r["delay"] for r in fixed)
                                  if fixed else None)
        s["resco_best_delay"] = RESCO_BEST.get(display_name(net))
        if sel[0].get("params") is not None:
            s["params"] = sel[0]["params"]
        out.append(s)
    return out


def display_name(net: str) -> str:
    """A RESCO name as given; a .sumocfg by its stem, or by its folder when it is named run*
    (as DLR's scenarios name theirs: acosta/run.sumocfg)."""
    if not net.endswith(".sumocfg"):
        return net
    p = Path(net)
    return p.parent.name if p.stem.startswith("run") else p.stem


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def format_table(summary: list[dict[str, Any]]) -> str:
    """One row per network and controller; the people's columns only where people walk."""
    walkers = any(s.get("people_mean", 0) > 0 for s in summary)
    head = (f"{'network':<14}{'controller':<18}{'delay s':>16}{'trip time s':>16}"
            f"{'waiting s':>14}{'throughput':>16}{'CO2 kg':>14}{'/fixed':>8}{'RESCO':>8}"
            f"{'dec us':>8}" + (f"{'people':>8}{'walk delay s':>16}" if walkers else ""))
    lines = [head, "-" * len(head)]
    for s in summary:
        def cell(f: str, w: int, d: int = 1, s: dict[str, Any] = s) -> str:
            return f"{s[f + '_mean']:.{d}f} ± {s[f + '_sd']:.{d}f}".rjust(w)

        best = s["resco_best_delay"]
        lines.append(f"{display_name(s['net'])[:13]:<14}{s['controller'][:17]:<18}"
                     f"{cell('delay', 16)}"
                     f"{cell('trip_time', 16)}{cell('waiting_time', 14)}"
                     f"{cell('throughput', 16, 0)}{cell('co2_kg', 14, 0)}"
                     f"{_num(s['delay_ratio_fixed']):>8}{(f'{best:.2f}' if best else '-'):>8}"
                     f"{s['decision_us']:>8.1f}"
                     + (f"{s['people_mean']:>8.0f}{cell('walk_delay', 16)}" if walkers else ""))
    return "\n".join(lines)


def cli_bench(settings: Any, args: argparse.Namespace) -> int:
    """Run the benchmark; prints the table (unless --json) and one JSON line per cell."""
    nets = [str(n) for n in args.net]
    ctls = [c.strip() for c in str(args.controllers).split(",") if c.strip()]
    try:
        for c in ctls:
            make(c)
        for n in nets:
            require_lights(n)
    except (ValueError, TwinError) as exc:
        print(f"maeul signals bench: {exc}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("maeul signals bench: --seeds must be at least 1", file=sys.stderr)
        return 2
    workers = max(1, int(args.workers))
    end = args.end
    # reports use seeds first..first+N-1 (--seed-start); `tuned` chooses its weights on others
    first = int(getattr(args, "seed_start", 0) or 0)
    try:
        tuned: dict[str, Any] = {}
        if "tuned" in ctls:  # choose each network's weights first (or read the cached choice)
            from .tuning import budget_of, tune_many, tuning_seeds

            seeds = tuning_seeds(range(first, first + args.seeds))
            if seeds is not None:
                print("maeul signals bench: the report seeds overlap the usual tuning seeds; "
                      f"tuning on seeds {', '.join(map(str, seeds))} instead", file=sys.stderr)
            tuned = tune_many(nets, workers, Path(getattr(args, "tuning_dir", DEFAULT_DIR)),
                              seeds=seeds, end=end, log=sys.stderr, budget_s=budget_of(args))
        jobs: list[Job] = [(n, c, seed, end, tuned[n].best if c == "tuned" else None)
                           for n in nets for c in ctls
                           for seed in range(first, first + args.seeds)]
        rows = run_jobs(jobs, workers)
    except (ValueError, TwinError) as exc:
        print(f"maeul signals bench: {exc}", file=sys.stderr)
        return 2
    summary = summarise(rows)
    if not args.json:
        print(format_table(summary))
    for s in summary:
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                          for k, v in s.items()}))
    return 0
