"""Command line: parses arguments and delegates; no logic here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("store_url", "host", "port", "mqtt_url", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "no_auth", False):
        overrides["auth_enabled"] = False
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"maeul: invalid setting: {errs}") from None


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store-url", dest="store_url", help="sqlite:///PATH or postgresql://...")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maeul", description="maeul city data hub")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hub's HTTP API (NGSI-LD on port 1026)")
    _add_common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--mqtt-url", dest="mqtt_url", help="enable MQTT device ingest")
    serve.add_argument("--no-auth", action="store_true", help="no API keys (testing only)")
    serve.add_argument("--workers", type=int,
                       help="worker processes sharing the port (default 1; see workers)")

    demo = sub.add_parser("demo", help="serve a demo city with live sensor updates")
    _add_common(demo)
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--data-dir", type=Path, help="the real open data folder")
    demo.add_argument("--duration", type=float, default=None,
                      help="stop after this many seconds (default: run until Ctrl-C)")

    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create a key; prints it on the last line")
    _add_common(kc)
    kc.add_argument("--role", required=True, choices=["admin", "operator", "service", "reader"])
    kc.add_argument("--tenant", help="limit the key to one tenant")
    kc.add_argument("--purpose", action="append", default=[], help="a purpose (repeatable)")
    kc.add_argument("--expires-at", dest="expires_at", help="ISO 8601 expiry time")
    kc.add_argument("--label", default="")
    kl = ksub.add_parser("list", help="list keys (never their secrets)")
    _add_common(kl)
    kr = ksub.add_parser("revoke", help="revoke a key by its id")
    _add_common(kr)
    kr.add_argument("key_id")

    imp = sub.add_parser("import", help="import an open data file as entities with history")
    _add_common(imp)
    imp.add_argument("importer", help="parking, air, traffic or sdm-examples")
    imp.add_argument("path", type=Path)
    imp.add_argument("--tenant", default="default")
    imp.add_argument("--limit", type=int, default=None, help="stop after N snapshots")

    from .services.cli import add_parsers as add_service_parsers
    from .trust.cli import add_parsers

    add_parsers(sub, _add_common)
    add_service_parsers(sub, _add_common)
    from .web.cli import add_parsers as add_web_parsers

    add_web_parsers(sub, _add_common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "serve":
        from .runner import serve

        serve(settings)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        if args.data_dir is not None:
            settings = settings.model_copy(update={"data_dir": args.data_dir})
        run_demo(settings, duration=args.duration)
        return 0
    if args.command == "keys":
        from .hub.auth import Keys
        from .hub.store.base import open_store

        store = open_store(settings.store_url, synchronous=settings.sqlite_synchronous)
        try:
            keys = Keys(store)
            if args.keys_command == "create":
                try:
                    key = keys.create(args.role, args.tenant, args.purpose, args.expires_at,
                                      args.label)
                except (ValueError, Exception) as exc:  # noqa: BLE001 - shown to the user
                    print(f"maeul: {exc}", file=sys.stderr)
                    return 2
                print(f"role={args.role} tenant={args.tenant or '*'}")
                print(key)
            elif args.keys_command == "list":
                import json

                for k in keys.all():
                    print(json.dumps(k, ensure_ascii=False))
            else:
                if not keys.revoke(args.key_id):
                    print(f"maeul: no key {args.key_id}", file=sys.stderr)
                    return 1
                print(f"revoked {args.key_id}")
        finally:
            store.close()
        return 0
    if args.command == "import":
        from .ingest.load import run_import

        return run_import(settings, args.importer, args.path, args.tenant, args.limit)
    from .services import cli as service_cli
    from .trust import cli as trust_cli

    if args.command in trust_cli.COMMANDS:
        return trust_cli.run(args, settings)
    if args.command in service_cli.COMMANDS:
        return service_cli.run(args, settings)
    if args.command == "users":
        from .web import cli as web_cli

        return web_cli.run(args, settings)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
