"""HTTP routes of the AI registry: the operators' API, the export, and the citizens' view."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..hub.api import Api
from ..hub.auth import Caller
from ..hub.errors import Forbidden, Unauthorized
from ..hub.http import tenant_of
from . import registry_feedback
from .http import PUBLIC, TRUST, TrustApi

EDITORS = ("admin", "operator")


class RegistryApi(TrustApi):
    def reader(self, request: Request) -> tuple[str, Caller]:
        """Trust reads show contacts and unpublished entries: a key is needed."""
        tenant, caller = self.authorize(request, "read")
        if caller.anonymous:
            raise Unauthorized("an API key is required; citizens use /public/v1/registry")
        return tenant, caller

    def editor(self, request: Request) -> tuple[str, Caller]:
        tenant, caller = self.authorize(request, "write")
        if caller.role not in EDITORS:
            raise Forbidden(f"role {caller.role!r} may not change the registry: "
                            "an admin or operator key is needed")
        return tenant, caller

    @property
    def reg(self) -> Any:
        return self.s.trust.registry

    async def list(self, request: Request) -> Response:
        """Every entry of the tenant (``status`` filters)."""
        tenant, _ = self.reader(request)
        status = request.query_params.get("status")
        return self.ok(await run_in_threadpool(self.reg.list, tenant, status))

    async def create(self, request: Request) -> Response:
        """Register a system (admin or operator keys)."""
        tenant, caller = self.editor(request)
        data = await self.body(request)
        doc = await run_in_threadpool(self.reg.create, tenant, data, caller.actor)
        return self.ok(doc, status=201, headers={"Location": f"{TRUST}/registry/{doc['id']}"})

    async def read(self, request: Request) -> Response:
        tenant, _ = self.reader(request)
        return self.ok(await run_in_threadpool(self.reg.view, tenant,
                                               request.path_params["id"]))

    async def update(self, request: Request) -> Response:
        """Change fields of an entry (JSON Merge Patch)."""
        tenant, caller = self.editor(request)
        patch = await self.body(request)
        return self.ok(await run_in_threadpool(self.reg.update, tenant,
                                               request.path_params["id"], patch, caller.actor))

    async def retire(self, request: Request) -> Response:
        tenant, caller = self.editor(request)
        return self.ok(await run_in_threadpool(self.reg.retire, tenant,
                                               request.path_params["id"], caller.actor))

    async def evaluations(self, request: Request) -> Response:
        """The evaluation records behind an entry's measured performance."""
        tenant, _ = self.reader(request)
        return self.ok(await run_in_threadpool(self.reg.evaluations, tenant,
                                               request.path_params["id"]))

    async def export(self, request: Request) -> Response:
        """The registry in the standard's field names (``lang`` for one language)."""
        tenant, _ = self.reader(request)
        lang = request.query_params.get("lang")
        return self.ok(await run_in_threadpool(self.reg.export, tenant, lang))

    async def feedback_inbox(self, request: Request) -> Response:
        """Citizens' feedback for operators (``department``, ``system`` filter)."""
        tenant, caller = self.editor(request)
        q = request.query_params
        return self.ok(await run_in_threadpool(registry_feedback.inbox, self.s, tenant,
                                               q.get("department"), q.get("system"), caller))

    # -- citizens -------------------------------------------------------------------------
    async def public_list(self, request: Request) -> Response:
        """Published entries in one language (``lang``, default ko); anonymous."""
        tenant = tenant_of(request)
        lang = request.query_params.get("lang", "ko")
        return self.ok(await run_in_threadpool(self.reg.public_list, tenant, lang))

    async def public_read(self, request: Request) -> Response:
        tenant = tenant_of(request)
        lang = request.query_params.get("lang", "ko")
        return self.ok(await run_in_threadpool(self.reg.public_get, tenant,
                                               request.path_params["id"], lang))

    async def public_feedback(self, request: Request) -> Response:
        """A citizen's feedback or objection, for the responsible department; anonymous."""
        tenant = tenant_of(request)
        data = await self.body(request)
        receipt = await run_in_threadpool(registry_feedback.submit, self.s, tenant,
                                          request.path_params["id"], data, "anonymous")
        return self.ok(receipt, status=201)


def routes(services: Any) -> list[BaseRoute]:
    api = RegistryApi(services)
    w = Api.wrap
    reg = f"{TRUST}/registry"
    pub = f"{PUBLIC}/registry"
    return [
        Route(reg, w(api.list), methods=["GET"]),
        Route(reg, w(api.create), methods=["POST"]),
        Route(f"{reg}/export", w(api.export), methods=["GET"]),  # before {id}
        Route(f"{reg}/{{id}}", w(api.read), methods=["GET"]),
        Route(f"{reg}/{{id}}", w(api.update), methods=["PATCH"]),
        Route(f"{reg}/{{id}}/retire", w(api.retire), methods=["POST"]),
        Route(f"{reg}/{{id}}/evaluations", w(api.evaluations), methods=["GET"]),
        Route(f"{TRUST}/feedback", w(api.feedback_inbox), methods=["GET"]),
        Route(pub, w(api.public_list), methods=["GET"]),
        Route(f"{pub}/{{id}}", w(api.public_read), methods=["GET"]),
        Route(f"{pub}/{{id}}/feedback", w(api.public_feedback), methods=["POST"]),
    ]
