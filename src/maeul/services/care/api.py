"""HTTP routes of the care service (``/care/v1``): enrolment, absences, a household's status."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...hub.api import Api
from ...hub.errors import Forbidden
from ...trust.http import TrustApi

BASE = "/care/v1"


class CareApi(TrustApi):
    def _officer(self, request: Request) -> tuple[str, Any]:
        tenant, caller = self.authorize(request, "write")
        if caller.role not in ("admin", "operator"):
            raise Forbidden("an operator or admin key with the 'care' purpose is needed")
        self.s.care.require_purpose(caller)
        return tenant, caller

    async def enroll(self, request: Request) -> Response:
        """Enrol a household with its consent (operator keys with the care purpose)."""
        tenant, caller = self._officer(request)
        body = await self.body(request)
        out = await run_in_threadpool(self.s.care.enroll, tenant, body, caller.actor)
        return self.ok(out, status=201)

    async def absence(self, request: Request) -> Response:
        """Announce an absence (hospital stay, family visit): no alerts during it."""
        tenant, caller = self._officer(request)
        body = await self.body(request)
        hid = request.path_params["hid"]
        out = await run_in_threadpool(self.s.care.absence, tenant, hid, body, caller.actor)
        return self.ok(out, status=201)

    async def status(self, request: Request) -> Response:
        """What the household's model has learned and its open alerts (care purpose)."""
        tenant, caller = self.authorize(request, "read")
        hid = request.path_params["hid"]
        return self.ok(await run_in_threadpool(self.s.care.status, tenant, hid, caller))

    async def tick(self, request: Request) -> Response:
        """Process new readings now (admin)."""
        tenant, _caller = self.authorize(request, "admin")
        return self.ok(await run_in_threadpool(self.s.care.tick, tenant))


    async def vacancy(self, request: Request) -> Response:
        """Empty-house risk per district, for planners and the public (anonymous)."""
        from ...hub.http import tenant_of

        tenant = tenant_of(request)
        return self.ok(await run_in_threadpool(self.s.care.vacancy_by_district, tenant))


def routes(services: Any) -> list[BaseRoute]:
    api = CareApi(services)
    w = Api.wrap
    return [
        Route(f"{BASE}/households", w(api.enroll), methods=["POST"]),
        Route(f"{BASE}/households/{{hid}}", w(api.status), methods=["GET"]),
        Route(f"{BASE}/households/{{hid}}/absences", w(api.absence), methods=["POST"]),
        Route(f"{BASE}/tick", w(api.tick), methods=["POST"]),
        Route("/public/v1/vacancy", w(api.vacancy), methods=["GET"]),
    ]
