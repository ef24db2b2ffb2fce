"""HTTP adapter for context source registrations (/csourceRegistrations, discovery) and
csourceSubscriptions: request -> ContextSources call -> response."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .api import BASE, Api
from .csource_subs import time_sel, validate_csource_subscription
from .csources import (
    Filter,
    Selector,
    check_mode,
    q_expand,
    render,
    validate_registration,
)
from .entities import is_uri, type_filter
from .errors import BadRequestData, InvalidRequest, TooManyResults
from .geo import GeoQueryError, compile_geo, parse_geo_query
from .http import LD, Req, no_content, options_of, qparam_int, resolve_ctx, respond
from .query import QueryError, compile_q, parse_q, parse_scope_q
from .validate import check_body_object, check_id_pattern

REGS = f"{BASE}/csourceRegistrations"
SUBS = f"{BASE}/csourceSubscriptions"
# a PATCH without Content-Type is read as JSON (the conformance suite sends such requests)
_PATCH_TYPES = ("application/json", LD, "")
_FILTERS = ("type", "id", "idPattern", "attrs", "q", "csf", "georel", "scopeQ", "timerel")
_SUB_LIST_PARAMS = {"limit", "offset", "options", "count"}


def _page_links(request: Request, path: str, limit: int, offset: int, total: int) -> str:
    """Link header values for the previous and next page (clause 5.5.9)."""
    keep = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit",
                                                                                 "offset")]

    def link(off: int, rel: str) -> str:
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe=',:;')}" for k, v in keep)
        query = f"{query}&" if query else ""
        return f'<{path}?{query}limit={limit}&offset={off}>;rel="{rel}";type="{LD}"'

    links = []
    if offset > 0 and limit > 0:
        links.append(link(max(0, offset - limit), "prev"))
    if limit > 0 and offset + limit < total:
        links.append(link(offset + limit, "next"))
    return ", ".join(links)


def _check_id(value: str, what: str) -> str:
    if not is_uri(value):
        raise BadRequestData(f"{what} must be a URI, got {value!r}")
    return value


class CSourceApi:
    """Route handlers; plumbing (tenant, key, @context, body, writes) comes from ``Api``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.s = api.s

    def _page(self, request: Request, r: Req, items: list[dict[str, Any]], path: str,
              shown: Any) -> Response:
        settings = self.api.settings
        limit = qparam_int(request, "limit", settings.default_limit)
        offset = qparam_int(request, "offset", 0)
        opts = options_of(request)
        count = "count" in opts or request.query_params.get("count") == "true"
        if limit > settings.max_limit:
            raise TooManyResults(f"limit {limit} is above the maximum {settings.max_limit}")
        if limit == 0 and not count:
            raise BadRequestData("limit=0 is only allowed with count")
        headers = {"NGSILD-Results-Count": str(len(items))} if count else {}
        resp = respond([shown(d) for d in items[offset:offset + limit]], r, headers=headers)
        links = _page_links(request, path, limit, offset, len(items))
        if links:
            ctx_link = resp.headers.get("link")
            resp.headers["Link"] = f"{ctx_link}, {links}" if ctx_link else links
        return resp

    # -- registrations ---------------------------------------------------------------------
    async def create_registration(self, request: Request) -> Response:
        """Register a context source (ContextSourceRegistration)."""
        r = await self.api.req(request, "write", body=True)
        reg = validate_registration(check_body_object(r.body, "a registration"), r.ctx)
        check_mode(reg)
        rid = await self.api.write(
            lambda: self.s.csources.create(r.tenant, reg, r.caller.actor))
        return no_content({"Location": f"{REGS}/{rid}"}, status=201)

    async def query_registrations(self, request: Request) -> Response:
        """Discover context source registrations (type, id, idPattern, attrs, q, csf,
        geo-query, scopeQ, temporal query)."""
        r = await self.api.req(request, "read")
        flt = self.discovery_filter(dict(request.query_params), r)
        regs = self.s.csources.query(r.tenant, flt)
        sys_attrs = "sysAttrs" in options_of(request)
        return self._page(request, r, regs, REGS,
                          lambda d: render(d, r.ctx, sys_attrs=sys_attrs))

    def discovery_filter(self, params: dict[str, Any], r: Req) -> Filter:
        if not any(params.get(k) for k in _FILTERS):
            raise BadRequestData("give at least one of type, id, idPattern, attrs, q, csf, "
                                 "a geo-query, scopeQ or a temporal query")
        ctx = r.ctx
        sel = Selector()
        if params.get("type"):
            iris, pred = type_filter(params["type"], ctx.expand_term)

            def types(t: str) -> bool:
                return pred([t]) if pred is not None else t in iris

            sel.types = types
        if params.get("id"):
            ids = [i for i in params["id"].split(",") if i]
            for i in ids:
                _check_id(i, "id")
            sel.ids = frozenset(ids)
        if params.get("idPattern"):
            sel.pattern = check_id_pattern(params["idPattern"])
        if params.get("attrs"):
            sel.attrs = frozenset(ctx.expand_term(a) for a in params["attrs"].split(",") if a)
        flt = Filter(selectors=[sel])
        expand = q_expand(ctx)
        for key in ("q", "csf"):
            if params.get(key):
                try:
                    setattr(flt, key, compile_q(parse_q(params[key]), expand))
                except QueryError as exc:
                    raise BadRequestData(f"invalid {key}: {exc}") from None
        if params.get("scopeQ"):
            try:
                flt.scope = parse_scope_q(params["scopeQ"])
            except QueryError as exc:
                raise BadRequestData(f"invalid scopeQ: {exc}") from None
        if params.get("georel") or params.get("geometry") or params.get("coordinates"):
            try:
                gq = parse_geo_query(str(params.get("georel") or ""),
                                     str(params.get("geometry") or ""),
                                     params.get("coordinates") or "", params.get("geoproperty"))
            except GeoQueryError as exc:
                raise BadRequestData(f"invalid geo-query: {exc}") from None
            flt.geo, flt.geoproperty = compile_geo(gq), gq.geoproperty
        flt.time = time_sel(params.get("timerel"), params.get("timeAt"),
                            params.get("endTimeAt"), params.get("timeproperty"))
        return flt

    async def get_registration(self, request: Request) -> Response:
        """Retrieve one context source registration."""
        r = await self.api.req(request, "read")
        rid = _check_id(request.path_params["rid"], "registration id")
        reg = self.s.csources.get(r.tenant, rid)
        return respond(render(reg, r.ctx, sys_attrs="sysAttrs" in options_of(request)), r)

    async def update_registration(self, request: Request) -> Response:
        """Update members of a context source registration (each given member replaced)."""
        rid = _check_id(request.path_params["rid"], "registration id")
        r = await self.api.req(request, "write", body=True, allowed=_PATCH_TYPES)
        body = check_body_object(r.body, "a registration fragment")
        if body.get("id", rid) != rid:
            raise BadRequestData("the id in the body differs from the one in the URL")
        patch = validate_registration(body, r.ctx, partial=True)
        if not patch:
            raise BadRequestData("the fragment changes nothing")
        await self.api.write(lambda: self.s.csources.update(r.tenant, rid, patch,
                                                             r.caller.actor, check_mode))
        return no_content()

    async def delete_registration(self, request: Request) -> Response:
        """Delete a context source registration."""
        rid = _check_id(request.path_params["rid"], "registration id")
        r = await self.api.req(request, "write")
        await self.api.write(lambda: self.s.csources.delete(r.tenant, rid, r.caller.actor))
        return no_content()

    # -- csourceSubscriptions --------------------------------------------------------------
    async def create_subscription(self, request: Request) -> Response:
        """Subscribe to context source registrations (ContextSourceNotification)."""
        r = await self.api.req(request, "subscribe", body=True)
        doc = validate_csource_subscription(r.body, r.ctx)
        if "jsonldContext" in doc:
            resolve_ctx(self.s.resolver, doc["jsonldContext"])
        source = r.ctx.source
        sid = await self.api.write(
            lambda: self.s.csources.subscribe(r.tenant, doc, source, r.caller.actor))
        return no_content({"Location": f"{SUBS}/{sid}"}, status=201)

    async def list_subscriptions(self, request: Request) -> Response:
        """List csourceSubscriptions (limit, offset, options=count)."""
        r = await self.api.req(request, "subscribe")
        unknown = set(request.query_params) - _SUB_LIST_PARAMS
        if unknown:
            raise InvalidRequest(f"unknown query parameter(s) {sorted(unknown)}")
        sys_attrs = "sysAttrs" in options_of(request)
        return self._page(request, r, self.s.csources.subscriptions(r.tenant), SUBS,
                          lambda d: self.s.subs.render(d, r.ctx, sys_attrs))

    async def get_subscription(self, request: Request) -> Response:
        """Retrieve one csourceSubscription."""
        r = await self.api.req(request, "subscribe")
        doc = self.s.csources.subscription(r.tenant, request.path_params["sid"])
        return respond(self.s.subs.render(doc, r.ctx, "sysAttrs" in options_of(request)), r)

    async def update_subscription(self, request: Request) -> Response:
        """Update a csourceSubscription; notifies every matching registration again."""
        r = await self.api.req(request, "subscribe", body=True, allowed=_PATCH_TYPES)
        sid = request.path_params["sid"]
        body = check_body_object(r.body, "a subscription fragment")
        if body.get("id", sid) != sid:
            raise BadRequestData("the id in the body differs from the one in the URL")
        patch = validate_csource_subscription(body, r.ctx, partial=True)
        if "jsonldContext" in patch:
            resolve_ctx(self.s.resolver, patch["jsonldContext"])
        await self.api.write(lambda: self.s.csources.update_subscription(
            r.tenant, sid, patch, r.caller.actor))
        return no_content()

    async def delete_subscription(self, request: Request) -> Response:
        """Delete a csourceSubscription."""
        r = await self.api.req(request, "subscribe")
        sid = request.path_params["sid"]
        await self.api.write(lambda: self.s.csources.unsubscribe(r.tenant, sid,
                                                                  r.caller.actor))
        return no_content()

    def routes(self) -> list[BaseRoute]:
        w = self.api.wrap
        return [
            Route(REGS, w(self.query_registrations), methods=["GET"]),
            Route(REGS, w(self.create_registration), methods=["POST"]),
            Route(f"{REGS}/{{rid}}", w(self.get_registration), methods=["GET"]),
            Route(f"{REGS}/{{rid}}", w(self.update_registration), methods=["PATCH"]),
            Route(f"{REGS}/{{rid}}", w(self.delete_registration), methods=["DELETE"]),
            Route(SUBS, w(self.list_subscriptions), methods=["GET"]),
            Route(SUBS, w(self.create_subscription), methods=["POST"]),
            Route(f"{SUBS}/{{sid}}", w(self.get_subscription), methods=["GET"]),
            Route(f"{SUBS}/{{sid}}", w(self.update_subscription), methods=["PATCH"]),
            Route(f"{SUBS}/{{sid}}", w(self.delete_subscription), methods=["DELETE"]),
        ]


def csource_routes(api: Api) -> list[BaseRoute]:
    """The /csourceRegistrations and /csourceSubscriptions routes of a hub API."""
    return CSourceApi(api).routes()


__all__ = ["csource_routes", "CSourceApi"]
