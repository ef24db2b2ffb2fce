"""``maeul users add|list|remove``: operator accounts for the web console.

The password is read from standard input with ``--password-stdin`` (for scripts), else
asked twice at the terminal; it is never taken from the command line, where other users of
the machine could read it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from ..config import Settings
from ..hub.auth import ROLES

COMMANDS = {"users"}


def add_parsers(sub: Any, add_common: Any) -> None:
    users = sub.add_parser("users", help="operator accounts for the web console")
    usub = users.add_subparsers(dest="users_command", required=True)
    ua = usub.add_parser("add", help="create an account (asks for the password)")
    add_common(ua)
    ua.add_argument("username")
    ua.add_argument("--role", required=True, choices=list(ROLES))
    ua.add_argument("--tenant", help="limit the account to one tenant")
    ua.add_argument("--purpose", action="append", default=[],
                    help="a purpose for sensitive attributes (repeatable)")
    ua.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input")
    ul = usub.add_parser("list", help="list accounts (never their password hashes)")
    add_common(ul)
    ur = usub.add_parser("remove", help="remove an account; its sessions end at once")
    add_common(ur)
    ur.add_argument("username")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValueError("password: the two entries differ")
    return first


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..hub.store.base import open_store
    from .users import UserError, Users

    store = open_store(settings.store_url, synchronous=settings.sqlite_synchronous)
    try:
        users = Users(store)
        if args.users_command == "add":
            try:
                doc = users.add(args.username, _password(args), args.role, args.tenant,
                                args.purpose)
            except (UserError, ValueError) as exc:
                print(f"maeul: {exc}", file=sys.stderr)
                return 2
            print(json.dumps(doc, ensure_ascii=False))
        elif args.users_command == "list":
            for doc in users.list():
                print(json.dumps(doc, ensure_ascii=False))
        else:
            if not users.remove(args.username):
                print(f"maeul: no user {args.username}", file=sys.stderr)
                return 1
            print(f"removed {args.username}")
    finally:
        store.close()
    return 0
