"""Console sessions: a signed, HttpOnly, SameSite=Strict cookie naming a stored session.

The cookie holds ``<session id>.<HMAC-SHA256 of the id>``, keyed by ``web-session.key`` in
``settings.secrets_dir``; the session itself is a store document (kv kind ``websession``)
with its principal (``user:<name>`` or ``key:<id>``), tenant, CSRF token and expiry. Each
request re-reads the account or key behind it, so removing a user, revoking a key or
changing a role takes effect at once, and signing out deletes the document.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..hub.auth import KIND as KEY_KIND
from ..hub.auth import Caller
from ..hub.entities import parse_time
from ..hub.store.base import Tx
from ..trust.pseudonym import KeyFile
from .users import Users

KIND = "websession"
COOKIE = "maeul_session"
SECRET_FILE = "web-session.key"
TTL_S = 8 * 3600  # one working shift


@dataclass(frozen=True)
class Session:
    """A signed-in person: who they act as, in which tenant, and their CSRF token."""

    sid: str
    caller: Caller
    tenant: str
    csrf: str
    expires: float  # epoch seconds

    @property
    def role(self) -> str:
        return self.caller.role or ""

    @property
    def label(self) -> str:
        return self.caller.actor


class Sessions:
    """Creates, loads and ends sessions."""

    def __init__(self, services: Any, ttl_s: float = TTL_S) -> None:
        self.s = services
        self.ttl_s = ttl_s
        self.secret = KeyFile(services.settings.secrets_dir, SECRET_FILE)
        self.users = Users(services.store)
        self.clock: Callable[[], float] = time.time

    # -- the cookie ----------------------------------------------------------------------
    def _sign(self, sid: str) -> str:
        return hmac.new(self.secret.get(), sid.encode(), hashlib.sha256).hexdigest()

    def cookie_value(self, sid: str) -> str:
        return f"{sid}.{self._sign(sid)}"

    def _sid(self, value: str | None) -> str | None:
        if not value or value.count(".") != 1:
            return None
        sid, sig = value.split(".")
        if len(sid) != 43 or not hmac.compare_digest(sig, self._sign(sid)):
            return None
        return sid

    # -- life cycle ------------------------------------------------------------------------
    def create(self, principal: str, caller: Caller, tenant: str) -> tuple[str, Session]:
        """A new session for a verified principal; returns the cookie value and the session."""
        now = self.clock()
        sid = secrets.token_urlsafe(32)
        doc: dict[str, Any] = {"sid": sid, "principal": principal, "tenant": tenant,
               "csrf": secrets.token_urlsafe(24), "createdAt": now, "expires": now + self.ttl_s}

        def op(tx: Tx) -> None:
            # sign-ins are rare: sweeping expired sessions here keeps the table small
            for _t, key, old in tx.list_json(KIND, ""):
                if old.get("expires", 0) <= now:
                    tx.delete_json(KIND, "", key)
            tx.put_json(KIND, "", sid, doc)
            tx.audit(tenant, caller.actor, "web.signin", caller.actor, {"role": caller.role})

        self.s.store.write(op)
        return self.cookie_value(sid), Session(sid, caller, tenant, doc["csrf"], doc["expires"])

    def load(self, value: str | None) -> Session | None:
        """The live session of a cookie value; None when forged, ended, expired or revoked."""
        sid = self._sid(value)
        if sid is None:
            return None
        doc = self.s.store.reader().get_json(KIND, "", sid)
        if doc is None or doc["expires"] <= self.clock():
            return None
        caller = self.principal_caller(doc["principal"])
        if caller is None:
            return None
        return Session(sid, caller, doc["tenant"], doc["csrf"], doc["expires"])

    def end(self, session: Session) -> None:
        def op(tx: Tx) -> None:
            tx.delete_json(KIND, "", session.sid)
            tx.audit(session.tenant, session.caller.actor, "web.signout", session.caller.actor,
                     {})

        self.s.store.write(op)

    def principal_caller(self, principal: str) -> Caller | None:
        """The current rights of ``user:<name>`` or ``key:<id>`` (None once revoked)."""
        kind, _, name = principal.partition(":")
        if kind == "user":
            return self.users.caller(name)
        if kind != "key":
            return None
        doc = self.s.store.reader().get_json(KEY_KIND, "", name)
        if doc is None or doc.get("revoked"):
            return None
        exp = doc.get("expiresAt")
        if exp and parse_time(exp, "expiresAt") <= datetime.fromtimestamp(self.clock(), UTC):
            return None
        return Caller(actor=f"key:{doc['id']}", role=doc["role"], tenant=doc.get("tenant"),
                      purposes=frozenset(doc.get("purposes", [])))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, token or "")
