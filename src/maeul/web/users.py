"""Operator accounts for the web console: a username and a password, hashed with scrypt.

Accounts are store documents (kv kind ``webuser``, tenant ``""``, like API keys), so every
replica sees the same accounts and a change is audited in the same transaction. A signed-in
user acts as a hub ``Caller`` (``actor`` ``user:<name>``) with the account's role, tenant and
purposes: the console checks the same rights as the API does for a key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from ..hub.auth import ROLES, Caller
from ..hub.entities import now_iso
from ..hub.store.base import Store, Tx

KIND = "webuser"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PURPOSE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
# scrypt cost: about 50 ms and 16 MiB per check on one core, which slows guessing
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class UserError(ValueError):
    """A bad username, password, role or purpose; the message names the field."""


def _hash(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=params["n"], r=params["r"],
                          p=params["p"], dklen=params["dklen"], maxmem=64 * 1024 * 1024)


# checked when the username is unknown, so a miss costs the same time as a wrong password
_DUMMY: dict[str, Any] = {"salt": "00" * 16, "hash": "00" * 32, "scrypt": SCRYPT}


def check_username(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UserError("username: 1 to 64 lower-case letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters (at most {MAX_PASSWORD})")
    return password


class Users:
    """Creates, lists, removes and verifies operator accounts."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, username: str, password: str, role: str, tenant: str | None = None,
            purposes: list[str] | None = None, actor: str = "cli") -> dict[str, Any]:
        """Create an account; UserError for bad input or a taken name."""
        check_username(username)
        check_password(password)
        if role not in ROLES:
            raise UserError(f"role: one of {', '.join(ROLES)}")
        for p in purposes or []:
            if not PURPOSE_RE.match(p):
                raise UserError(f"purpose {p!r}: lower-case letters, digits and '-'")
        salt = secrets.token_bytes(16)
        doc = {
            "username": username,
            "role": role,
            "tenant": tenant,
            "purposes": sorted(set(purposes or [])),
            "salt": salt.hex(),
            "hash": _hash(password, salt, SCRYPT).hex(),
            "scrypt": dict(SCRYPT),
            "createdAt": now_iso(),
        }

        def op(tx: Tx) -> None:
            if tx.get_json(KIND, "", username) is not None:
                raise UserError(f"username: {username!r} already exists")
            tx.put_json(KIND, "", username, doc)
            tx.audit(tenant or "*", actor, "user.create", f"user:{username}", {"role": role})

        self.store.write(op)
        return self.public(doc)

    def remove(self, username: str, actor: str = "cli") -> bool:
        def op(tx: Tx) -> bool:
            doc = tx.get_json(KIND, "", username)
            if doc is None:
                return False
            tx.delete_json(KIND, "", username)
            tx.audit(doc.get("tenant") or "*", actor, "user.remove", f"user:{username}", {})
            return True

        ok: bool = self.store.write(op)
        return ok

    @staticmethod
    def public(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: doc.get(k) for k in ("username", "role", "tenant", "purposes", "createdAt")}

    def list(self) -> list[dict[str, Any]]:
        docs = [d for _t, _k, d in self.store.reader().list_json(KIND, "")]
        return sorted((self.public(d) for d in docs), key=lambda d: d["username"])

    def caller(self, username: str) -> Caller | None:
        """The account's current rights (None once it is removed)."""
        doc = self.store.reader().get_json(KIND, "", username)
        if doc is None:
            return None
        return Caller(actor=f"user:{username}", role=doc["role"], tenant=doc.get("tenant"),
                      purposes=frozenset(doc.get("purposes", [])))

    def verify(self, username: str, password: str) -> Caller | None:
        """The caller for a correct username and password, else None."""
        doc = None
        if isinstance(username, str) and NAME_RE.match(username):
            doc = self.store.reader().get_json(KIND, "", username)
        ref = doc or _DUMMY
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            password = ""
        got = _hash(password, bytes.fromhex(ref["salt"]), ref["scrypt"])
        if not hmac.compare_digest(got, bytes.fromhex(ref["hash"])) or doc is None:
            return None
        return self.caller(username)
