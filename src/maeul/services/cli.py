"""Commands of the AI services (``maeul care ...``, ``maeul signals ...``).

Parsers are declared here; each command's work lives in its service package (``cli_*``).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from ..config import Settings

COMMANDS = {"care", "signals", "civic"}


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
    ce.add_argument("--time-col", metavar="NAME",
                    help="the time column, or a date and a clock column as 'Date+Time' "
                         "(default: found by name)")
    ce.add_argument("--power-col", metavar="NAME",
                    help="the power or energy column (default: found by name)")
    ce.add_argument("--unit", choices=("kW", "W", "kWh", "Wh"),
                    help="the power column's unit; kWh and Wh are energy per reading "
                         "(default: from the column's name, else from its values)")
    ce.add_argument("--cumulative", action="store_true",
                    help="the energy column is a meter register (total since installation)")
    ce.add_argument("--household-col", metavar="NAME",
                    help="the column naming each home, in a file of several homes "
                         "(default: household_id, meter_id, LCLid, ... when present)")
    ce.add_argument("--household", metavar="ID", help="evaluate this home of the file only")
    ce.add_argument("--tz", metavar="ZONE",
                    help="the homes' time zone (e.g. Asia/Seoul): times with an offset and "
                         "Unix times are converted to it (default: offsets dropped, Unix "
                         "times read as UTC)")
    ce.add_argument("--workers", type=int, default=1,
                    help="homes evaluated in parallel (files of several homes)")

    add_civic_parsers(sub)

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
    sb.add_argument("--tuning-dir", type=Path, default=Path("var/signals/tuned"),
                    help="where the 'tuned' controller keeps each network's chosen weights")
    sb.add_argument("--tuning-budget", type=float, default=None, metavar="MINUTES",
                    help="most simulation time the 'tuned' controller's tuning may take per "
                         "network on the workers (default 30; 0: no limit)")
    st = ssub.add_parser("tune", help="choose delaypressure's weights for networks by "
                         "simulation (the 'tuned' controller)")
    st.add_argument("--net", type=Path, action="append", required=True,
                    help="a .sumocfg file or a RESCO network name (repeatable)")
    st.add_argument("--workers", type=int, default=2,
                    help="parallel simulations (one per process)")
    st.add_argument("--end", type=float,
                    help="override the configuration's end time (s); not cached")
    st.add_argument("--tuning-dir", type=Path, default=Path("var/signals/tuned"),
                    help="where the chosen weights are kept")
    st.add_argument("--tuning-budget", type=float, default=None, metavar="MINUTES",
                    help="most simulation time tuning may take per network on the workers "
                         "(default 30; 0: no limit)")
    st.add_argument("--json", action="store_true", help="print JSON lines only")


def add_civic_parsers(sub: Any) -> None:
    civ = sub.add_parser("civic", help="the citizen service desk: routing and grounded answers")
    vsub = civ.add_subparsers(dest="civic_command", required=True)
    vc = vsub.add_parser("classify", help="route complaints read one per line on stdin")
    vc.add_argument("--taxonomy", type=Path, help="the city's taxonomy JSON (default: built-in)")
    vc.add_argument("--places", type=Path,
                    help="JSON array of NGSI-LD entities with name and location to geocode "
                         "places against")
    vc.add_argument("--now", help="reference time for words like 'yesterday' (ISO 8601)")
    va = vsub.add_parser("ask", help="answer a question from a folder of documents")
    va.add_argument("question", help="the question (Korean or English)")
    va.add_argument("--docs", type=Path, required=True, help="folder of the city's documents")
    va.add_argument("--cache", type=Path, help="index cache folder (default: under the docs)")
    va.add_argument("--generator-url", help="OpenAI-compatible endpoint that phrases answers")
    va.add_argument("--generator-model", help="model name for that endpoint")
    va.add_argument("--generator-key-env", help="environment variable holding its API key")
    va.add_argument("--gguf", type=Path, help="local GGUF model (llama-cpp-python)")
    ve = vsub.add_parser("eval", help="routing accuracy, refusals, citations and latency")
    ve.add_argument("--complaints", type=Path,
                    help="JSON Lines of {text, category} (default: the built-in blind set)")
    ve.add_argument("--questions", type=Path,
                    help="JSON Lines of questions (default: the built-in set)")
    ve.add_argument("--docs", type=Path, help="documents for the questions (default: built-in)")
    ve.add_argument("--taxonomy", type=Path, help="taxonomy JSON (default: built-in)")
    ve.add_argument("--json", action="store_true", help="print JSON only")
    ve.add_argument("--record", action="store_true",
                    help="record the figures in the AI registry of the configured store")


def run(args: argparse.Namespace, settings: Settings) -> int:
    module, fn = {
        ("care", "eval"): ("care.evaluation", "cli_eval"),
        ("signals", "bench"): ("signals.bench", "cli_bench"),
        ("signals", "tune"): ("signals.tuning", "cli_tune"),
        ("civic", "classify"): ("civic.cli", "cli_classify"),
        ("civic", "ask"): ("civic.answer", "cli_ask"),
        ("civic", "eval"): ("civic.evaluation", "cli_eval"),
    }[(args.command, getattr(args, f"{args.command}_command"))]
    mod = importlib.import_module(f"maeul.services.{module}")
    code: int = getattr(mod, fn)(settings, args)
    return code
