"""API keys (stored hashed) with roles scoped to tenants, and the per-request caller."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .entities import now_iso, parse_time
from .errors import Forbidden, Unauthorized
from .store.base import Store, Tx

ROLES = ("admin", "operator", "service", "reader")
KIND = "apikey"
TENANT_CFG = "tenantcfg"
# what each role may do; "admin" covers key and tenant management
_RIGHTS = {
    "admin": {"read", "write", "subscribe", "admin"},
    "operator": {"read", "write", "subscribe"},
    "service": {"read", "write", "subscribe"},
    "reader": {"read"},
}


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's id, role, tenant scope and purposes, or anonymous."""

    actor: str
    role: str | None  # None = anonymous
    tenant: str | None = None  # None = every tenant
    purposes: frozenset[str] = field(default_factory=frozenset)

    @property
    def anonymous(self) -> bool:
        return self.role is None

    def require(self, tenant: str, right: str) -> None:
        if self.role is None:
            if right != "read":
                raise Unauthorized("an API key is required for this operation")
            return
        if self.tenant is not None and self.tenant != tenant:
            raise Forbidden(f"this key is not valid for tenant {tenant!r}")
        if right not in _RIGHTS[self.role]:
            raise Forbidden(f"role {self.role!r} may not {right}")


ADMIN = Caller(actor="system", role="admin")
ANONYMOUS = Caller(actor="anonymous", role=None)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Keys:
    """Creates and verifies keys. A key is ``mk_<id>_<secret>``; only the secret's hash is kept."""

    def __init__(self, store: Store, cache_ttl_s: float = 5.0) -> None:
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        role: str,
        tenant: str | None = None,
        purposes: list[str] | None = None,
        expires_at: str | None = None,
        label: str = "",
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        if expires_at is not None:
            parse_time(expires_at, "expires_at")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        doc = {
            "id": key_id,
            "hash": _digest(secret),
            "role": role,
            "tenant": tenant,
            "purposes": sorted(set(purposes or [])),
            "createdAt": now_iso(),
            "expiresAt": expires_at,
            "revoked": False,
            "label": label,
        }

        def op(tx: Tx) -> None:
            tx.put_json(KIND, "", key_id, doc)
            tx.audit(tenant or "*", "cli", "key.create", key_id, {"role": role})

        self.store.write(op)
        return f"mk_{key_id}_{secret}"

    def revoke(self, key_id: str) -> bool:
        def op(tx: Tx) -> bool:
            doc = tx.get_json(KIND, "", key_id)
            if doc is None:
                return False
            doc["revoked"] = True
            tx.put_json(KIND, "", key_id, doc)
            tx.audit(doc.get("tenant") or "*", "cli", "key.revoke", key_id, {})
            return True

        ok = self.store.write(op)
        with self._lock:
            self._cache.clear()
        return ok

    def all(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in d.items() if k != "hash"}
            for _t, _k, d in self.store.reader().list_json(KIND, "")
        ]

    def verify(self, presented: str | None) -> Caller:
        """The caller for a presented key; Unauthorized for unknown, revoked or expired keys."""
        if not presented:
            return ANONYMOUS
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(presented)
        if hit is not None and now - hit[0] < self.cache_ttl_s:
            return hit[1]
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "mk":
            raise Unauthorized("malformed API key")
        doc = self.store.reader().get_json(KIND, "", parts[1])
        if doc is None or not hmac.compare_digest(doc["hash"], _digest(parts[2])):
            raise Unauthorized("unknown API key")
        if doc.get("revoked"):
            raise Unauthorized("this API key was revoked")
        exp = doc.get("expiresAt")
        if exp and parse_time(exp, "expiresAt") <= datetime.now(UTC):
            raise Unauthorized("this API key has expired")
        caller = Caller(
            actor=f"key:{doc['id']}",
            role=doc["role"],
            tenant=doc.get("tenant"),
            purposes=frozenset(doc.get("purposes", [])),
        )
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[presented] = (now, caller)
        return caller

    # -- tenant settings: which entity types anonymous readers may see --------------------
    def public_types(self, tenant: str) -> set[str]:
        doc = self.store.reader().get_json(TENANT_CFG, tenant, "settings") or {}
        return set(doc.get("publicTypes", []))

    def set_public_types(self, tenant: str, types: list[str], actor: str) -> None:
        def op(tx: Tx) -> None:
            tx.ensure_tenant(tenant)
            doc = tx.get_json(TENANT_CFG, tenant, "settings") or {}
            doc["publicTypes"] = sorted(set(types))
            tx.put_json(TENANT_CFG, tenant, "settings", doc)
            tx.audit(tenant, actor, "tenant.publicTypes", tenant, {"types": doc["publicTypes"]})

        self.store.write(op)
