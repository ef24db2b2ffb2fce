"""The trust layer's commands: ``audit``, ``registry``, ``impact``, ``privacy``, ``kpi``.

Parsers are declared here; each command's work lives in its component module (``cli_*``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from ..config import Settings


def add_parsers(sub: Any, add_common: Any) -> None:
    audit = sub.add_parser("audit", help="verify or export the hash-chained audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    av = asub.add_parser("verify", help="exit 0 on an intact chain, 1 naming the first bad record")
    add_common(av)
    av.add_argument("--log", type=Path, help="verify an exported JSON Lines file instead")
    ae = asub.add_parser("export", help="write the sealed chain as JSON Lines")
    add_common(ae)
    ae.add_argument("--out", type=Path, help="file to write (default: standard output)")

    reg = sub.add_parser("registry", help="the public AI registry")
    rsub = reg.add_subparsers(dest="registry_command", required=True)
    rex = rsub.add_parser("export", help="print the registry as JSON (ATS v0.3.1 field names)")
    add_common(rex)
    rex.add_argument("--tenant", default="default")

    imp = sub.add_parser("impact", help="algorithmic impact assessment")
    isub = imp.add_subparsers(dest="impact_command", required=True)
    isc = isub.add_parser("score", help="score a filled questionnaire; print level, obligations")
    isc.add_argument("file", type=Path, help="JSON file of answers")
    isc.add_argument("--json", action="store_true", help="print JSON only")

    prv = sub.add_parser("privacy", help="privacy jobs")
    psub = prv.add_subparsers(dest="privacy_command", required=True)
    pr = psub.add_parser("retention", help="apply the retention policy now; report what went")
    add_common(pr)
    pr.add_argument("--tenant", default=None, help="one tenant (default: all)")

    kpi = sub.add_parser("kpi", help="public KPIs")
    ksub = kpi.add_subparsers(dest="kpi_command", required=True)
    kc = ksub.add_parser("compute", help="compute every KPI now and print them as JSON")
    add_common(kc)
    kc.add_argument("--tenant", default="default")
    kr = ksub.add_parser("report", help="write the quarterly report as HTML")
    add_common(kr)
    kr.add_argument("--tenant", default="default")
    kr.add_argument("--quarter", help="e.g. 2026Q3 (default: the current quarter)")
    kr.add_argument("--out", type=Path, help="file to write (default: standard output)")


COMMANDS = {"audit", "registry", "impact", "privacy", "kpi"}


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "audit":
        return _audit(args, settings)
    module, fn = {
        ("registry", "export"): ("registry", "cli_export"),
        ("impact", "score"): ("impact", "cli_score"),
        ("privacy", "retention"): ("privacy", "cli_retention"),
        ("kpi", "compute"): ("kpi", "cli_compute"),
        ("kpi", "report"): ("kpi", "cli_report"),
    }[(args.command, getattr(args, f"{args.command}_command"))]
    mod = importlib.import_module(f"maeul.trust.{module}")
    code: int = getattr(mod, fn)(settings, args)
    return code


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from . import audit

    if args.audit_command == "verify" and args.log is not None:
        if not args.log.is_file():
            print(f"maeul: no audit log file at {args.log}", file=sys.stderr)
            return 2
        result = audit.verify_file(args.log)
    else:
        from ..hub.store.base import open_store

        store = open_store(settings.store_url, synchronous=settings.sqlite_synchronous)
        try:
            if args.audit_command == "export":
                if args.out is not None:
                    with args.out.open("w", encoding="utf-8") as fh:
                        n = audit.export(store, fh)
                    print(f"wrote {n} audit records to {args.out}", file=sys.stderr)
                else:
                    audit.export(store, sys.stdout)
                return 0
            result = audit.verify_store(store)
        finally:
            store.close()
    if result.ok:
        print(result.message())
        return 0
    print(result.message(), file=sys.stderr)
    return 1
