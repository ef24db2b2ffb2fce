"""Type and attribute discovery: ``/types`` and ``/attributes``.

What the store counts per type and which attributes each type has, in the caller's
@context; the routes stay in ``Api.routes`` so that context sources join the answers
(``distributed_types``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import ResourceNotFound
from .http import respond

if TYPE_CHECKING:
    from .api import Api


class TypesApi:
    def __init__(self, api: Api) -> None:
        self.api = api

    async def types(self, request: Request) -> Response:
        r = await self.api.req(request, "read")
        counts = self.api.s.store.count_types(r.tenant)
        details = request.query_params.get("details") == "true"
        if not details:
            body: Any = {
                "id": f"urn:ngsi-ld:EntityTypeList:{r.tenant}",
                "type": "EntityTypeList",
                "typeList": sorted(r.ctx.compact_iri(t) for t in counts),
            }
            return respond(body, r)
        summary = self.api.s.store.attribute_summary(r.tenant)
        out = []
        for t in sorted(counts):
            attrs = sorted(r.ctx.compact_iri(a) for a, ts in summary.items() if t in ts)
            out.append({"id": t, "type": "EntityType", "typeName": r.ctx.compact_iri(t),
                        "attributeNames": attrs})
        return respond(out, r)

    async def type_info(self, request: Request) -> Response:
        if not request.path_params["type"]:  # GET /types/ is the collection
            return await self.types(request)
        r = await self.api.req(request, "read")
        iri = r.ctx.expand_term(request.path_params["type"])
        counts = self.api.s.store.count_types(r.tenant)
        if iri not in counts:
            raise ResourceNotFound(f"no entity of type {request.path_params['type']}")
        summary = self.api.s.store.attribute_summary(r.tenant)
        attrs = [
            {"id": a, "type": "Attribute", "attributeName": r.ctx.compact_iri(a)}
            for a, ts in sorted(summary.items()) if iri in ts
        ]
        body = {"id": iri, "type": "EntityTypeInfo", "typeName": r.ctx.compact_iri(iri),
                "entityCount": counts[iri], "attributeDetails": attrs}
        return respond(body, r)

    async def attributes(self, request: Request) -> Response:
        r = await self.api.req(request, "read")
        summary = self.api.s.store.attribute_summary(r.tenant)
        if request.query_params.get("details") == "true":
            out = [
                {"id": a, "type": "Attribute", "attributeName": r.ctx.compact_iri(a),
                 "typeNames": sorted(r.ctx.compact_iri(t) for t in ts)}
                for a, ts in sorted(summary.items())
            ]
            return respond(out, r)
        body = {
            "id": f"urn:ngsi-ld:AttributeList:{r.tenant}",
            "type": "AttributeList",
            "attributeList": sorted(r.ctx.compact_iri(a) for a in summary),
        }
        return respond(body, r)

    async def attribute_info(self, request: Request) -> Response:
        if not request.path_params["attr"]:  # GET /attributes/ is the collection
            return await self.attributes(request)
        r = await self.api.req(request, "read")
        iri = r.ctx.expand_term(request.path_params["attr"])
        summary = self.api.s.store.attribute_summary(r.tenant)
        if iri not in summary:
            raise ResourceNotFound(f"no attribute {request.path_params['attr']}")
        body = {"id": iri, "type": "Attribute", "attributeName": r.ctx.compact_iri(iri),
                "typeNames": sorted(r.ctx.compact_iri(t) for t in summary[iri])}
        return respond(body, r)
