"""HTTP routes of the decision engine: ``/trust/v1/proposals`` (the operators' queue)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..hub.api import Api
from ..hub.auth import Caller
from ..hub.errors import BadRequestData, Unauthorized
from ..hub.http import qparam_int
from .decisions_model import ApproveIn, ModifyIn, ReasonIn
from .http import TRUST, M, TrustApi, validation_message

BASE = f"{TRUST}/proposals"


class DecisionsApi(TrustApi):
    @property
    def engine(self) -> Any:
        return self.s.trust.decisions

    def reader(self, request: Request) -> tuple[str, Caller]:
        tenant, caller = self.authorize(request, "read")
        if caller.anonymous:
            raise Unauthorized("an API key is required to see proposals")
        return tenant, caller

    async def optional(self, request: Request, model: type[M]) -> M:
        """An optional JSON body: no body at all reads as ``{}``."""
        if (await request.body()).strip():
            return await self.model(request, model)
        try:
            return model.model_validate({})
        except ValidationError as exc:
            raise BadRequestData(validation_message(exc)) from None

    async def submit(self, request: Request) -> Response:
        """Submit a proposal (service, operator and admin keys)."""
        tenant, caller = self.authorize(request, "write")
        data = await self.body(request)
        doc, created = await run_in_threadpool(
            self.engine.submit_with_status, tenant, data, caller)
        if not created:
            return self.ok(doc, 200)
        return self.ok(doc, 201, {"Location": f"{BASE}/{doc['id']}"})

    async def list(self, request: Request) -> Response:
        """Proposals, newest first: ``status``, ``system``, ``limit``, ``offset``."""
        tenant, _ = self.reader(request)
        qp = request.query_params
        out = await run_in_threadpool(
            self.engine.list_proposals, tenant, qp.get("status"), qp.get("system"),
            qparam_int(request, "limit", 20, lo=1), qparam_int(request, "offset", 0))
        return self.ok(out)

    async def one(self, request: Request) -> Response:
        tenant, _ = self.reader(request)
        doc = await run_in_threadpool(self.engine.get, tenant, request.path_params["pid"])
        return self.ok(doc)

    async def approve(self, request: Request) -> Response:
        """Approve (operator and admin keys); the body and its ``reason`` are optional."""
        tenant, caller = self.authorize(request, "write")
        body = await self.optional(request, ApproveIn)
        doc = await run_in_threadpool(
            self.engine.approve, tenant, request.path_params["pid"], caller, body.reason)
        return self.ok(doc)

    async def reject(self, request: Request) -> Response:
        tenant, caller = self.authorize(request, "write")
        body = await self.optional(request, ReasonIn)
        doc = await run_in_threadpool(
            self.engine.reject, tenant, request.path_params["pid"], caller, body.reason)
        return self.ok(doc)

    async def modify(self, request: Request) -> Response:
        tenant, caller = self.authorize(request, "write")
        body = await self.model(request, ModifyIn)
        doc = await run_in_threadpool(
            self.engine.modify, tenant, request.path_params["pid"], caller, body)
        return self.ok(doc)

    async def rollback(self, request: Request) -> Response:
        tenant, caller = self.authorize(request, "write")
        body = await self.optional(request, ReasonIn)
        doc = await run_in_threadpool(
            self.engine.rollback, tenant, request.path_params["pid"], caller, body.reason)
        return self.ok(doc)


def routes(services: Any) -> list[BaseRoute]:
    api = DecisionsApi(services)
    w = Api.wrap
    return [
        Route(BASE, w(api.submit), methods=["POST"]),
        Route(BASE, w(api.list), methods=["GET"]),
        Route(f"{BASE}/{{pid}}", w(api.one), methods=["GET"]),
        Route(f"{BASE}/{{pid}}/approve", w(api.approve), methods=["POST"]),
        Route(f"{BASE}/{{pid}}/reject", w(api.reject), methods=["POST"]),
        Route(f"{BASE}/{{pid}}/modify", w(api.modify), methods=["POST"]),
        Route(f"{BASE}/{{pid}}/rollback", w(api.rollback), methods=["POST"]),
    ]
