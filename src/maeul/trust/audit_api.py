"""HTTP routes for the audit log: read it, verify the chain, see the head."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..hub.api import Api
from ..hub.http import qparam_int
from .audit import verify_store
from .http import TRUST, TrustApi


class AuditApi(TrustApi):
    async def log(self, request: Request) -> Response:
        """The newest audit records of the caller's tenant (admins: every tenant)."""
        tenant, caller = self.authorize(request, "admin")
        limit = qparam_int(request, "limit", 100, lo=1)
        scope = None if request.query_params.get("allTenants") == "true" else tenant
        recs = await run_in_threadpool(self.s.store.audit_log, scope, min(limit, 10_000))
        return self.ok(recs)

    async def verify(self, request: Request) -> Response:
        """Seal pending records and verify the whole chain."""
        self.authorize(request, "admin")
        result = await run_in_threadpool(verify_store, self.s.store)
        return self.ok(result.as_dict(), status=200 if result.ok else 409)


def routes(services: Any) -> list[BaseRoute]:
    api = AuditApi(services)
    w = Api.wrap
    return [
        Route(f"{TRUST}/audit", w(api.log), methods=["GET"]),
        Route(f"{TRUST}/audit/verify", w(api.verify), methods=["POST"]),
    ]
