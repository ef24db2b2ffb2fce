"""Commands of the AI services (``maeul care ...``, ``maeul signals ...``).

Parsers are declared here; each command's work lives in its service package (``cli_*``).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from ..config import Settings

COMMANDS = {"care", "signals"}


def add_parsers(sub: Any, add_common: Any) -> None:
    care = sub.add_parser("care", help="care alerts for elderly people living alone")
    csub = care.add_subparsers(dest="care_command", required=True)
    ce = csub.add_parser("eval", help="false alerts and detection delay on household power data")
    ce.add_argument("--data", type=Path, required=True,
                    help="CSV (or .csv.gz) of timestamped household power readings")
    ce.add_argument("--events", type=int, default=300,
                    help="incapacitation events injected at random moments")
    ce.add_argument("--seed", type=int, default=7)
    ce.add_argument("--json", action="store_true", help="print JSON only")

    sig = sub.add_parser("signals", help="adaptive traffic signal control on a SUMO twin")
    ssub = sig.add_subparsers(dest="signals_command", required=True)
    sb = ssub.add_parser("bench", help="compare controllers on SUMO networks")
    sb.add_argument("--net", type=Path, action="append", required=True,
                    help="a .sumocfg file or a RESCO network name (repeatable)")
    sb.add_argument("--controllers", default="fixed,actuated,maxpressure",
                    help="comma-separated controller names")
    sb.add_argument("--seeds", type=int, default=5)
    sb.add_argument("--json", action="store_true", help="print JSON lines only")
    sb.add_argument("--workers", type=int, default=2,
                    help="parallel simulations (one per process)")
    sb.add_argument("--end", type=float, help="override the configuration's end time (s)")
    sb.add_argument("--seed-start", type=int, default=0,
                    help="first seed (tuning used 100 and up; reports use 0..N-1)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    module, fn = {
        ("care", "eval"): ("care.evaluation", "cli_eval"),
        ("signals", "bench"): ("signals.bench", "cli_bench"),
    }[(args.command, getattr(args, f"{args.command}_command"))]
    mod = importlib.import_module(f"maeul.services.{module}")
    code: int = getattr(mod, fn)(settings, args)
    return code
