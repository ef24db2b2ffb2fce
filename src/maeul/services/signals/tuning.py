"""``tuned``: delaypressure with its weights chosen for each network by simulation (or, where
they do better there, the network's own programs or queue clearance: ``CANDIDATES``).

The best weights differ between networks (tuning seeds 100-102, mean delay in seconds):

- not subtracting outgoing queues (``out`` 0; the room cap still guards against spillback)
  took cologne8 from 33.9 to 20.6 and grid4x4 from 35.2 to 32.5, but ingolstadt7 from 31.2 to
  34.6 and Bologna's acosta from 354 to 509;
- a switch cost (``switch`` 3) took arterial4x4 (with ``out`` 0) from 720 to 650;
- the exit hold (``gate``) ended ingolstadt21's lock-ups (188 to 70) but gridlocks acosta
  (354 to 1,176).

No one setting is best everywhere, so the controller optimises its weights on the network it
runs on: each candidate runs the network's own demand on the first three tuning seeds (never
the seeds a report uses); the finalists, within 5% of the lowest mean, run three more, and the
one with the lowest mean RESCO delay over the seeds it ran wins. A mean within 1% of the
lowest counts as a tie, won by the earlier candidate; the first is delaypressure's default, so
a network where the weights make no real difference keeps it. The choice is cached, keyed by
the content of the network's files, so a changed network is tuned again.

Cost: candidates x 3 simulations of the network (15 x 3 with the defaults), and 3 more for
each of at most three finalists, spread over the worker processes: about 5 minutes for
ingolstadt21 on 2 cores. The issue allows 30 minutes
of training per network on 2 cores, and a network we have not seen may be far larger, so
tuning keeps to a time budget (``BUDGET_S``): the default candidate runs first, its runs
time the network, and only as many other candidates as fit in what is left are tried, in
``PRIORITY`` order (the rest are recorded as skipped).
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .twin import TwinError, read_config, require_lights

log = logging.getLogger(__name__)

#: weights tried, in order (the first is delaypressure's default, kept on ties)
CANDIDATES: tuple[dict[str, float], ...] = tuple(
    {"out": out, "switch": switch, "gate": gate} for gate in (False, True)
    for out in (1.0, 0.5, 0.0) for switch in (0.0, 3.0)) + (
    # the network's own programs (with emergency priority): after the weights, so that
    # weights within 1% of the plans win, and kept only where no weights beat them (Bologna's
    # acosta)
    {"plan": True},
    # queue clearance (GuardedActuated), for networks whose programs have many phases a
    # pressure rule under-serves (a netgenerate grid with left-turn phases and crossings)
    {"actuated": True},
    # plain max-pressure without our guards (PlainPressure): last, for networks where the
    # guards cost more than they save (TAVF-Hamburg)
    {"pressure": True})
#: the order candidates are tried in when the budget cannot fit them all (indices into
#: CANDIDATES): the defaults, then the city's own plans (the check that tuning does no harm),
#: queue clearance and plain max-pressure (the other kinds of rule), then by how often and
#: how much each won on
#: the ten scenarios of docs/signals.md
#: (out=1 switch=0 on cologne1 and ingolstadt1; out=0 on cologne8 and grid4x4; switch=3 on
#: cologne3 and acosta; out=0.5 on ingolstadt7; out=0 switch=3 on arterial4x4; out=0.5
#: switch=3 on TAVF-Hamburg; the exit hold only on ingolstadt21)
PRIORITY: tuple[int, ...] = (0, 12, 13, 14, 4, 1, 2, 5, 3, 8, 6, 10, 7, 9, 11)
#: wall-clock seconds of simulation a network's tuning may take on the workers given (the
#: issue: training within 30 minutes per network on 2 cores)
BUDGET_S = 1800.0
#: seeds the tuner simulates; reports use 0..N-1. Every candidate runs the first
#: FIRST_ROUND of them; the finalists (``finalists``) run the rest as well, and the choice
#: among them is made on all of them
TUNING_SEEDS: tuple[int, ...] = (100, 101, 102, 103, 104, 105)
FIRST_ROUND = 3
#: at most this many candidates go on to the validation seeds: those whose first-round mean
#: is within FINAL_MARGIN of the lowest (as ``choose`` counts it, the unguarded margin
#: included)
FINALISTS = 3
FINAL_MARGIN = 0.05
#: means within this fraction of the lowest count as equal (the earlier candidate wins)
TIE = 0.01
#: a candidate without our guards (plain max-pressure) must beat the best guarded one by
#: more than this fraction: three tuning seeds cannot show a lock-up that comes once in
#: twenty runs (plain max-pressure won cologne3's tuning seeds by 3.8% and locked up on one
#: of its five report seeds, 30.9 +- 25.8 s against 20.2)
UNGUARDED = 0.10
#: where choices are kept unless told otherwise (relative to the working directory)
DEFAULT_DIR = Path("var/signals/tuned")
# parameters a candidate may set (DelayPressure's fields): numbers, and switches
PARAMS = frozenset({"moving", "wait", "out", "switch", "sat_flow", "max_red"})
SWITCHES = frozenset({"gate", "box", "plan", "actuated", "pressure"})


@dataclass
class Tuning:
    """The outcome of tuning one network: every candidate's delays and the winner."""

    network: str
    fingerprint: str
    seeds: list[int]
    candidates: list[dict[str, Any]] = field(default_factory=list)  # params, delays, mean
    best: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the tuning pool this network's runs shared
    # estimated wall time of this network's own runs on the workers (simulation seconds
    # summed over its runs, divided by the workers), and the budget it was held to
    run_seconds: float = 0.0
    budget_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(config: str | Path) -> str:
    """SHA-256 over the configuration and every file it names (network, routes, additionals)."""
    cfg = read_config(config)
    h = hashlib.sha256()
    for name in [cfg.path.name, *cfg.net_files, *cfg.route_files, *cfg.additional_files]:
        path = cfg.path if name == cfg.path.name else cfg.path.parent / name
        h.update(name.encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def check_params(params: dict[str, Any]) -> dict[str, float]:
    """A candidate's parameters, checked: known names, finite non-negative numbers."""
    out: dict[str, float] = {}
    for key, value in params.items():
        if key in SWITCHES:
            if not isinstance(value, bool):
                raise ValueError(f"parameter {key} must be true or false, not {value!r}")
            out[key] = value
            continue
        if key not in PARAMS:
            raise ValueError(f"unknown delaypressure parameter {key!r}; "
                             f"known: {', '.join(sorted(PARAMS | SWITCHES))}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 <= float(value) < float("inf")):
            raise ValueError(f"parameter {key} must be a non-negative number, not {value!r}")
        out[key] = float(value)
    if out.get("plan") and len(out) > 1:
        raise ValueError("the candidate 'plan' (the network's own programs) takes no weights")
    if out.get("actuated") and set(out) - {"actuated", "max_red", "box"}:
        raise ValueError("the candidate 'actuated' (queue clearance) takes no pressure weights")
    if out.get("pressure") and len(out) > 1:
        raise ValueError("the candidate 'pressure' (plain max-pressure) takes no weights")
    return out


def _cache_path(cache_dir: Path, config: str | Path, fp: str, seeds: tuple[int, ...],
                cands: list[dict[str, float]]) -> Path:
    """One file per network content and way of tuning (seeds and candidates)."""
    from .bench import display_name

    how = hashlib.sha256(json.dumps([list(seeds), cands]).encode()).hexdigest()[:8]
    return cache_dir / f"{display_name(str(config))}-{fp[:16]}-{how}.json"


def load(config: str | Path, cache_dir: Path = DEFAULT_DIR,
         seeds: tuple[int, ...] | None = None,
         candidates: tuple[dict[str, float], ...] | None = None) -> Tuning | None:
    """The cached tuning of this network's current files, if one was made the same way
    (by default: the module's TUNING_SEEDS and CANDIDATES)."""
    seeds = TUNING_SEEDS if seeds is None else seeds
    wanted = [check_params(c) for c in (CANDIDATES if candidates is None else candidates)]
    fp = fingerprint(config)
    path = _cache_path(cache_dir, config, fp, seeds, wanted)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        t = Tuning(**doc)
        if (t.fingerprint != fp or t.seeds != list(seeds)
                or [c.get("params") for c in t.candidates] != wanted):
            return None
        check_params(t.best)  # a file altered by hand is not trusted
        # chosen again from the cached means: a change of the rule applies at once
        t.best = check_params(decide([c["params"] for c in t.candidates], t.candidates))
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None  # absent, unreadable, altered or from another version: tune again
    return t


def choose(cands: list[dict[str, Any]], means: list[float | None]) -> dict[str, Any]:
    """The candidate with the lowest mean delay; a mean within TIE of the lowest is noise, so
    the earliest such candidate wins, and one without guards counts UNGUARDED more."""
    eff = _effective(cands, means)
    low = min(m for m in eff if m is not None)
    return dict(cands[next(i for i, m in enumerate(eff) if m is not None
                           and m <= low * (1 + TIE))])


def _effective(cands: list[dict[str, Any]], means: list[float | None]) -> list[float | None]:
    return [None if m is None else m * (1 + UNGUARDED) if c.get("pressure") else m
            for c, m in zip(cands, means, strict=True)]


def finalists(cands: list[dict[str, Any]], means: list[float | None],
              delays: list[list[float]] | None = None) -> list[int]:
    """The candidates worth more seeds: at most FINALISTS, lowest first-round mean first,
    each within FINAL_MARGIN of the lowest (as ``choose`` counts it). A candidate whose
    first-round delays are another's to the digit ran the same simulation (a weight that makes
    no difference on the network): only the earlier of them goes on. No finalists (an empty
    list) when only one is that close: more seeds cannot change a choice without a rival."""
    eff = _effective(cands, means)
    known = sorted((m, i) for i, m in enumerate(eff) if m is not None)
    if not known:
        return []
    low = known[0][0]
    close: list[int] = []
    seen: set[tuple[float, ...]] = set()
    for m, i in known:  # by mean, then by position: the earlier of identical runs first
        if m > low * (1 + FINAL_MARGIN) or len(close) == FINALISTS:
            break
        if delays is not None:
            runs = tuple(round(d, 2) for d in delays[i])
            if runs in seen:
                continue
            seen.add(runs)
        close.append(i)
    return sorted(close) if len(close) > 1 else []


def decide(cands: list[dict[str, Any]], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The choice from a tuning's records: among the finalists, by their mean over every
    seed they ran (``mean_all``); without finalists, by the first round's means."""
    if any(e.get("mean_all") is not None for e in entries):
        return choose(cands, [e.get("mean_all") for e in entries])
    return choose(cands, [e.get("mean") for e in entries])


def tuning_seeds(report: range) -> tuple[int, ...] | None:
    """None when the report's seeds keep clear of TUNING_SEEDS; otherwise as many seeds just
    after the report's last, so that no report is made on the seeds its weights were chosen
    on."""
    if not set(report) & set(TUNING_SEEDS):
        return None
    start = max(report) + 1
    return tuple(range(start, start + len(TUNING_SEEDS)))


def tuned_controller(config: str | Path, cache_dir: Path = DEFAULT_DIR) -> Any:
    """The ``tuned`` controller for a network: its cached weights (``maeul signals tune``),
    or delaypressure's defaults when it has not been tuned."""
    from .controllers import make

    found = load(config, cache_dir)
    if found is None:
        log.info("signals: %s has no cached tuning in %s; the tuned controller starts with "
                 "delaypressure's weights (run maeul signals tune)", read_config(config).name,
                 cache_dir)
    return make("tuned", found.best if found is not None else None)


def describe(params: dict[str, Any]) -> str:
    """Weights in one short line: out=0 switch=3 gate=on."""
    return " ".join(f"{k}={('on' if v else 'off') if isinstance(v, bool) else f'{v:g}'}"
                    for k, v in params.items())


def tune_many(configs: list[str], workers: int = 2, cache_dir: Path | None = DEFAULT_DIR,
              seeds: tuple[int, ...] | None = None,
              candidates: tuple[dict[str, float], ...] | None = None,
              end: float | None = None, log: Any = None,
              budget_s: float | None = BUDGET_S) -> dict[str, Tuning]:
    """Tune every network (cached ones are read back); all their runs share one pool.
    Without ``seeds`` and ``candidates``, the module's TUNING_SEEDS and CANDIDATES (tried in
    PRIORITY order; given candidates are tried in the order given). ``budget_s`` (None: no
    limit) caps each network's simulation time on the workers: the first candidate always
    runs; others run only as far as the time its runs took says they fit."""
    from . import bench

    seeds = TUNING_SEEDS if seeds is None else seeds
    candidates = CANDIDATES if candidates is None else candidates
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"the tuning budget must be a positive number of seconds, not {budget_s}")
    if not candidates or not seeds:
        raise ValueError("tuning needs at least one candidate and one seed")
    cands = tuple(check_params(c) for c in candidates)
    done: dict[str, Tuning] = {}
    todo: list[str] = []
    for net in configs:
        cached = load(net, cache_dir, seeds, cands) if cache_dir is not None and end is None \
            else None
        if cached is not None and any(c.get("mean") is None for c in cached.candidates) and (
                budget_s is None or cached.budget_s is None or budget_s > cached.budget_s):
            cached = None  # cut short by a smaller budget than this call's: tune again
        if cached is not None:
            done[net] = cached
        else:
            todo.append(net)
    if not todo:
        return done
    if log is not None:
        print(f"tuning {len(todo)} network(s): {len(cands)} candidates x "
              f"{len(seeds[:FIRST_ROUND])} seeds"
              + (f", finalists on {len(seeds[FIRST_ROUND:])} more" if seeds[FIRST_ROUND:]
                 else ""), file=log, flush=True)
    order = list(PRIORITY) if candidates is CANDIDATES else list(range(len(cands)))
    if sorted(order) != list(range(len(cands))):
        raise ValueError("PRIORITY must list every candidate once")
    first = seeds[:FIRST_ROUND]
    later = seeds[FIRST_ROUND:]
    t0 = time.monotonic()
    # the first candidate (the defaults) on every first-round seed: it also times each network
    rows = bench.run_jobs([(net, "tuned", seed, end, cands[order[0]])
                           for net in todo for seed in first], workers)
    spent = {net: sum(r.get("seconds", 0.0) for r in rows if r["net"] == net) / workers
             for net in todo}
    per_run = {net: spent[net] / len(first) for net in todo}  # wall seconds on the workers
    tried = {net: [order[0]] for net in todo}
    for net in todo:
        per_candidate = spent[net]  # the same number of runs as the first candidate's
        rest = order[1:]
        if budget_s is not None and per_candidate > 0:
            fit = int(max(0.0, budget_s - spent[net]) // per_candidate)
            rest = rest[:fit]
        tried[net] += rest
        if log is not None and len(tried[net]) < len(cands):
            print(f"tuning {bench.display_name(net)}: {per_candidate:.0f} s per candidate; "
                  f"{len(tried[net])} of {len(cands)} candidates fit the budget of "
                  f"{budget_s:.0f} s", file=log, flush=True)
    rows += bench.run_jobs([(net, "tuned", seed, end, cands[i])
                            for net in todo for i in tried[net][1:] for seed in first], workers)

    def delays_of(net: str, cand: dict[str, float], among: tuple[int, ...]) -> list[float]:
        return [r["delay"] for r in rows
                if r["net"] == net and r["params"] == cand and r["seed"] in among]

    means: dict[str, list[float | None]] = {
        net: [statistics.fmean(delays_of(net, c, first)) if i in tried[net] else None
              for i, c in enumerate(cands)] for net in todo}
    # the finalists of the first round run the validation seeds, as far as the budget lets
    final: dict[str, list[int]] = {}
    for net in todo:
        final[net] = finalists(list(cands), means[net],
                               [delays_of(net, c, first) for c in cands]) if later else []
        if final[net] and budget_s is not None:
            left = budget_s - spent[net] * len(tried[net])
            fit = int(max(0.0, left) // (per_run[net] * len(later))) if per_run[net] > 0 \
                else len(final[net])
            if fit < 2:  # one finalist alone cannot change the choice
                final[net] = []
            else:  # the lowest first-round means keep their places
                keep = sorted(final[net], key=lambda i: means[net][i] or 0.0)[:fit]
                final[net] = sorted(keep)
            if log is not None and not final[net]:
                print(f"tuning {bench.display_name(net)}: no time left in the budget for the "
                      "validation seeds; chosen on the first round", file=log, flush=True)
    jobs: list[bench.Job] = [(net, "tuned", seed, end, cands[i]) for net in todo
                             for i in final[net] for seed in later]
    if jobs:
        rows += bench.run_jobs(jobs, workers)
    seconds = time.monotonic() - t0
    for net in todo:
        t = Tuning(bench.display_name(net), fingerprint(net), list(seeds),
                   seconds=round(seconds, 1), budget_s=budget_s,
                   run_seconds=round(sum(r.get("seconds", 0.0) for r in rows
                                         if r["net"] == net) / workers, 3))
        for i, cand in enumerate(cands):
            if i not in tried[net]:
                t.candidates.append({"params": cand, "delays": [], "mean": None,
                                     "skipped": "budget"})
                continue
            delays = delays_of(net, cand, first)
            entry: dict[str, Any] = {"params": cand, "delays": [round(d, 2) for d in delays],
                                     "mean": round(means[net][i] or 0.0, 2)}
            if i in final[net]:
                more = delays_of(net, cand, later)
                entry["validation"] = [round(d, 2) for d in more]
                entry["mean_all"] = round(statistics.fmean(delays + more), 2)
            t.candidates.append(entry)
        t.best = decide(list(cands), t.candidates)
        if cache_dir is not None and end is None:
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                path = _cache_path(cache_dir, net, t.fingerprint, seeds, list(cands))
                path.write_text(json.dumps(t.as_dict(), indent=1) + "\n", encoding="utf-8")
            except OSError as exc:  # a read-only place: the result stands, uncached
                print(f"maeul signals: tuning of {t.network} not cached: {exc}", file=sys.stderr)
        done[net] = t
    return done


def format_tuning(t: Tuning) -> str:
    lines = [f"{t.network}: seeds {', '.join(map(str, t.seeds))}"]
    for c in t.candidates:
        params = describe(c["params"])
        if c.get("mean") is None:
            lines.append(f"  {params:<30}{'-':>10}  (skipped: over the time budget)")
            continue
        mark = " <- chosen" if c["params"] == t.best else ""
        more = ""
        if c.get("validation"):
            more = (f"; validation {', '.join(f'{d:.1f}' for d in c['validation'])}, "
                    f"all seeds {c['mean_all']:.2f}")
        lines.append(f"  {params:<30}{c['mean']:>10.2f}  "
                     f"({', '.join(f'{d:.1f}' for d in c['delays'])}{more}){mark}")
    return "\n".join(lines)


def budget_of(args: Any) -> float | None:
    """``--tuning-budget`` minutes as seconds (0: no limit); BUDGET_S when not given."""
    minutes = getattr(args, "tuning_budget", None)
    if minutes is None:
        return BUDGET_S
    if not minutes >= 0 or minutes == float("inf"):
        raise ValueError(f"--tuning-budget must be a number of minutes >= 0, not {minutes}")
    return None if minutes == 0 else 60.0 * minutes


def cli_tune(settings: Any, args: Any) -> int:
    """``maeul signals tune``: choose (or show the cached choice of) each network's weights."""
    nets = [str(n) for n in args.net]
    try:
        for n in nets:
            require_lights(n)
        found = tune_many(nets, max(1, int(args.workers)), Path(args.tuning_dir),
                          end=args.end, log=sys.stderr, budget_s=budget_of(args))
    except (ValueError, TwinError) as exc:
        print(f"maeul signals tune: {exc}", file=sys.stderr)
        return 2
    for net in nets:
        t = found[net]
        if not args.json:
            print(format_tuning(t))
        print(json.dumps({"network": t.network, "best": t.best,
                          "candidates": t.candidates, "seconds": t.seconds,
                          "run_seconds": t.run_seconds, "budget_s": t.budget_s}))
    return 0
