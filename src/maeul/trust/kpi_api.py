"""HTTP routes of the trust layer's KPI component.

``/trust/v1/kpis...``: every KPI and the definitions (reading needs ``read``, changing needs
``admin``). ``/public/v1/kpis...`` and ``/public/v1/reports/...``: public KPIs only, open to
anonymous callers.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from ..hub.api import Api
from ..hub.errors import Unauthorized
from ..hub.http import qparam_int, tenant_of
from .http import PUBLIC, TRUST, BadRequestData, ResourceNotFound, TrustApi
from .kpi_model import KpiDefinition, field_errors
from .kpi_report import parse_quarter, render_report

MAX_POINTS = 10_000


class KpiApi(TrustApi):
    @property
    def kpis(self) -> Any:
        return self.s.trust.kpis

    def _member(self, request: Request) -> str:
        """The tenant, for a caller with a key that may read it: these views include
        non-public KPIs, so the hub's anonymous read access does not open them."""
        tenant, caller = self.authorize(request, "read")
        if caller.anonymous:
            raise Unauthorized("an API key is required: non-public KPIs are included here")
        return tenant

    @staticmethod
    def _parse(data: Any) -> KpiDefinition:
        try:
            return KpiDefinition.model_validate(data)
        except ValidationError as exc:
            raise BadRequestData(field_errors(exc)) from None

    # -- definitions (admin) ---------------------------------------------------------------
    async def list_definitions(self, request: Request) -> Response:
        """Every effective definition of the tenant, with where it comes from."""
        tenant = self._member(request)
        defs = await run_in_threadpool(self.kpis.definitions, tenant)
        return self.ok([{**d.doc(), "source": src} for d, src in defs])

    async def get_definition(self, request: Request) -> Response:
        tenant = self._member(request)
        d, src = await run_in_threadpool(self.kpis.definition, tenant,
                                         request.path_params["kpi"])
        return self.ok({**d.doc(), "source": src})

    async def create_definition(self, request: Request) -> Response:
        tenant, caller = self.authorize(request, "admin")
        d = self._parse(await self.body(request))
        await run_in_threadpool(self.kpis.create_definition, tenant, d, caller.actor)
        return self.ok({**d.doc(), "source": "custom"}, status=201,
                       headers={"Location": f"{TRUST}/kpis/definitions/{d.id}"})

    async def update_definition(self, request: Request) -> Response:
        """Replace a definition (a built-in one too: the change is kept per tenant)."""
        tenant, caller = self.authorize(request, "admin")
        kpi_id = request.path_params["kpi"]
        data = await self.body(request)
        if isinstance(data, dict):
            if data.get("id", kpi_id) != kpi_id:
                raise BadRequestData(f"id: the body's id must be {kpi_id!r} (the path's id)")
            data = {**data, "id": kpi_id}
        d = self._parse(data)
        await run_in_threadpool(self.kpis.update_definition, tenant, d, caller.actor)
        src = "changed" if kpi_id in self.kpis.builtins else "custom"
        return self.ok({**d.doc(), "source": src})

    async def delete_definition(self, request: Request) -> Response:
        tenant, caller = self.authorize(request, "admin")
        await run_in_threadpool(self.kpis.delete_definition, tenant,
                                request.path_params["kpi"], caller.actor)
        return Response(status_code=204)

    # -- values ----------------------------------------------------------------------------
    async def all_kpis(self, request: Request) -> Response:
        """Latest values of every KPI, public or not."""
        tenant = self._member(request)
        return self.ok(await run_in_threadpool(self.kpis.latest, tenant, False))

    async def compute(self, request: Request) -> Response:
        """Compute every KPI of the tenant now."""
        tenant, _ = self.authorize(request, "admin")
        results = await run_in_threadpool(self.kpis.compute, tenant)
        return self.ok([r.as_dict() for r in results])

    # -- public (anonymous) ----------------------------------------------------------------
    def _public_definition(self, tenant: str, kpi_id: str) -> None:
        try:
            d, _src = self.kpis.definition(tenant, kpi_id)
        except ResourceNotFound:
            d = None
        if d is None or not d.public:
            # a non-public KPI answers like a missing one: its existence is not public
            raise ResourceNotFound(f"public KPI {kpi_id} not found")

    async def public_list(self, request: Request) -> Response:
        """Public KPIs: latest value, target and status."""
        tenant = tenant_of(request)
        return self.ok(await run_in_threadpool(self.kpis.latest, tenant, True))

    async def public_one(self, request: Request) -> Response:
        tenant = tenant_of(request)
        kpi_id = request.path_params["kpi"]

        def one() -> dict[str, Any]:
            self._public_definition(tenant, kpi_id)
            return next(k for k in self.kpis.latest(tenant, True) if k["id"] == kpi_id)

        return self.ok(await run_in_threadpool(one))

    async def public_history(self, request: Request) -> Response:
        """The KPI's series from the hub's history; ``from``/``to`` (ISO 8601) and
        ``lastN`` (default 1000) narrow it."""
        tenant = tenant_of(request)
        kpi_id = request.path_params["kpi"]
        last_n = qparam_int(request, "lastN", 1000, lo=1)
        if last_n > MAX_POINTS:
            raise BadRequestData(f"lastN must be at most {MAX_POINTS}")
        start = request.query_params.get("from")
        end = request.query_params.get("to")

        def series() -> dict[str, Any]:
            self._public_definition(tenant, kpi_id)
            points = self.kpis.history(tenant, kpi_id, start, end, last_n)
            return {"id": kpi_id, "entity": f"urn:ngsi-ld:KeyPerformanceIndicator:{kpi_id}",
                    "points": points}

        return self.ok(await run_in_threadpool(series))

    async def public_report(self, request: Request) -> Response:
        """The quarterly report as printable HTML."""
        tenant = tenant_of(request)
        try:
            quarter = parse_quarter(request.path_params["quarter"])
        except ValueError as exc:
            raise BadRequestData(f"quarter: {exc}") from None
        html = await run_in_threadpool(render_report, self.s, tenant, quarter)
        return HTMLResponse(html)


def routes(services: Any) -> list[BaseRoute]:
    api = KpiApi(services)
    w = Api.wrap
    d = f"{TRUST}/kpis/definitions"
    return [
        Route(f"{TRUST}/kpis", w(api.all_kpis), methods=["GET"]),
        Route(f"{TRUST}/kpis/compute", w(api.compute), methods=["POST"]),
        Route(d, w(api.list_definitions), methods=["GET"]),
        Route(d, w(api.create_definition), methods=["POST"]),
        Route(d + "/{kpi}", w(api.get_definition), methods=["GET"]),
        Route(d + "/{kpi}", w(api.update_definition), methods=["PUT"]),
        Route(d + "/{kpi}", w(api.delete_definition), methods=["DELETE"]),
        Route(f"{PUBLIC}/kpis", w(api.public_list), methods=["GET"]),
        Route(f"{PUBLIC}/kpis/{{kpi}}", w(api.public_one), methods=["GET"]),
        Route(f"{PUBLIC}/kpis/{{kpi}}/history", w(api.public_history), methods=["GET"]),
        Route(f"{PUBLIC}/reports/{{quarter}}.html", w(api.public_report), methods=["GET"]),
    ]
