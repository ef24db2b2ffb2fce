"""HTTP adapter for subscriptions and the temporal API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .api import BASE, Api
from .compaction import View
from .contexts_api import implicit_context
from .entities import check_entity_id, expand_attrs, expand_types, is_uri
from .errors import (
    BadRequestData,
    Forbidden,
    InvalidRequest,
    ResourceNotFound,
    TooManyResults,
)
from .http import (
    LD,
    MERGE_PATCH,
    body_attrs,
    no_content,
    options_of,
    qparam_int,
    resolve_ctx,
    respond,
)
from .store.base import TemporalFilter
from .store.sqlbase import TIME_COLUMNS
from .subscriptions import validate_subscription
from .temporal import AGGR_METHODS, TemporalOptions, parse_duration, time_filter
from .temporal_query import TemporalSelection, render_page, select
from .validate import check_body_object, check_entity_payload, check_query_body

_TEMPORAL_FORMATS = ("temporalValues", "aggregatedValues")
_NOT_ATTRIBUTES = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt",
                             "@context"})
_SUB_LIST_PARAMS = {"limit", "offset", "options", "count"}


class MoreApi(Api):
    # -- subscriptions ---------------------------------------------------------------------
    async def create_subscription(self, request: Request) -> Response:
        r = await self.req(request, "subscribe", body=True)
        doc = validate_subscription(r.body, r.ctx)
        if "jsonldContext" in doc:
            # notifications are compacted with it: it must be available now
            resolve_ctx(self.s.resolver, doc["jsonldContext"])
        elif (implicit := await implicit_context(self, request, r)) is not None:
            doc["jsonldContext"] = implicit  # an @context notifications can name by its URL
        source = r.ctx.source
        sid = await self.write(lambda: self.s.subs.create(r.tenant, doc, source, r.caller.actor,
                                                          caller=r.caller))
        return no_content({"Location": f"{BASE}/subscriptions/{sid}"}, status=201)

    async def list_subscriptions(self, request: Request) -> Response:
        r = await self.req(request, "subscribe")
        unknown = set(request.query_params) - _SUB_LIST_PARAMS
        if unknown:
            raise InvalidRequest(f"unknown query parameter(s) {sorted(unknown)}")
        subs = self.s.subs.all(r.tenant)
        limit = qparam_int(request, "limit", self.settings.default_limit)
        offset = qparam_int(request, "offset", 0)
        page = subs[offset : offset + limit]
        headers = {}
        if "count" in options_of(request):
            headers["NGSILD-Results-Count"] = str(len(subs))
        sys_attrs = "sysAttrs" in options_of(request)
        resp = respond([self.s.subs.render(d, r.ctx, sys_attrs) for d in page], r,
                       headers=headers)
        from .csources_api import _page_links

        links = _page_links(request, f"{BASE}/subscriptions", limit, offset, len(subs))
        if links:  # 5.5.9: the previous and next pages, beside any @context link
            ctx_link = resp.headers.get("link")
            resp.headers["Link"] = f"{ctx_link}, {links}" if ctx_link else links
        return resp

    async def get_subscription(self, request: Request) -> Response:
        r = await self.req(request, "subscribe")
        sid = request.path_params["sid"]
        if not is_uri(sid):
            raise BadRequestData(f"subscription id must be a URI, got {sid!r}")
        return respond(self.s.subs.render(self.s.subs.get(r.tenant, sid), r.ctx,
                                          "sysAttrs" in options_of(request)), r)

    async def update_subscription(self, request: Request) -> Response:
        # 6.3.4: a PATCH may be application/merge-patch+json (its @context: the Link header)
        r = await self.req(request, "subscribe", body=True,
                           allowed=("application/json", LD, MERGE_PATCH))
        sid = request.path_params["sid"]
        if isinstance(r.body, dict) and r.body.get("id", sid) != sid:
            raise BadRequestData("the id in the body differs from the one in the URL")
        patch = validate_subscription(r.body, r.ctx, partial=True)
        if "jsonldContext" in patch:
            resolve_ctx(self.s.resolver, patch["jsonldContext"])
        await self.write(lambda: self.s.subs.update(r.tenant, sid, patch, r.caller.actor,
                                                    caller=r.caller))
        return no_content()

    async def delete_subscription(self, request: Request) -> Response:
        r = await self.req(request, "subscribe")
        sid = request.path_params["sid"]
        if not is_uri(sid):
            raise BadRequestData(f"subscription id must be a URI, got {sid!r}")
        await self.write(lambda: self.s.subs.delete(r.tenant, sid, r.caller.actor))
        return no_content()

    # -- temporal --------------------------------------------------------------------------
    def _temporal_params(
        self, request: Request, params: dict[str, Any], view: View
    ) -> tuple[TemporalFilter, TemporalOptions]:
        timerel, t1, t2 = time_filter(
            params.get("timerel"), params.get("timeAt"), params.get("endTimeAt")
        )
        tprop = params.get("timeproperty", "observedAt")
        if tprop not in TIME_COLUMNS:
            raise BadRequestData(
                "timeproperty must be observedAt, modifiedAt, createdAt or deletedAt")
        last_n = None
        if params.get("lastN") is not None:
            try:
                last_n = int(params["lastN"])
            except ValueError:
                raise BadRequestData("lastN must be a positive integer") from None
            if last_n < 1:
                raise BadRequestData("lastN must be a positive integer")
            last_n = min(last_n, 2**31 - 1)
        opts = options_of(request)
        fmt = params.get("format")
        if fmt is None:
            fmt = ("temporalValues" if "temporalValues" in opts else
                   "aggregatedValues" if "aggregatedValues" in opts else "normalized")
        topts = TemporalOptions(fmt=fmt, max_instances=self.settings.temporal_max_instances)
        if fmt == "aggregatedValues":
            methods = params.get("aggrMethods")
            if not methods:
                raise BadRequestData("aggregatedValues needs aggrMethods")
            ms = tuple(m.strip() for m in str(methods).split(",") if m.strip())
            bad = [m for m in ms if m not in AGGR_METHODS]
            if bad:
                raise BadRequestData(f"unknown aggrMethods {bad}; use {list(AGGR_METHODS)}")
            topts.aggr_methods = ms
            if params.get("aggrPeriodDuration"):
                topts.aggr_period = parse_duration(params["aggrPeriodDuration"])
        elif fmt not in ("normalized", "temporalValues", "concise", "simplified", "keyValues"):
            raise BadRequestData(f"unknown format {fmt!r}")
        flt = TemporalFilter(
            attrs=tuple(sorted(view.attrs)) if view.attrs else None,
            timeproperty=tprop, timerel=timerel, time_at=t1, end_time_at=t2, last_n=last_n,
        )
        return flt, topts

    async def temporal_query(self, request: Request) -> Response:
        r = await self.req(request, "read")
        return await self._temporal_query(request, r, dict(request.query_params))

    async def temporal_query_post(self, request: Request) -> Response:
        r = await self.req(request, "read", body=True)
        body = r.body
        if not isinstance(body, dict) or body.get("type") != "Query":
            raise BadRequestData("the body must be an object of type Query")
        check_query_body(body, temporal=True)
        params: dict[str, Any] = {}
        ents = body.get("entities") or []
        if not isinstance(ents, list) or not all(isinstance(e, dict) for e in ents):
            raise BadRequestData("entities must be a list of objects")
        types, ids, pats = [], [], []
        for e in ents:
            if "type" in e:
                if not isinstance(e["type"], str) or not e["type"]:
                    raise BadRequestData("entities.type must be a non-empty string")
                types.append(e["type"])
            if "id" in e:
                ids.append(check_entity_id(e["id"]))
            if "idPattern" in e:
                if not isinstance(e["idPattern"], str):
                    raise BadRequestData("entities.idPattern must be a string")
                pats.append(e["idPattern"])
        if types:
            params["type"] = ",".join(types)
        if ids:
            params["id"] = ids
        if pats:
            params["idPattern"] = "|".join(f"(?:{p})" for p in pats)
        if "attrs" in body:
            params["attrs"] = ",".join(body_attrs(body))
        tq = body.get("temporalQ") or {}
        if not isinstance(tq, dict):
            raise BadRequestData("temporalQ must be an object")
        for k in ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"):
            if k in tq:
                if not isinstance(tq[k], str | int) or isinstance(tq[k], bool):
                    raise BadRequestData(f"temporalQ.{k} must be a string")
                params[k] = str(tq[k])
        # aggregation in the body (temporalQ, or aggrParams, checked by check_query_body)
        # asks for the aggregated representation, as do body options
        ap = body.get("aggrParams") or {}
        methods = tq.get("aggrMethods") or ap.get("aggrMethods")
        opts = body.get("options")
        opts = opts.split(",") if isinstance(opts, str) else opts
        if methods:
            params["format"] = "aggregatedValues"
            params["aggrMethods"] = ",".join(methods) if isinstance(methods, list) else methods
            period = tq.get("aggrPeriodDuration") or ap.get("aggrPeriodDuration")
            if period:
                params["aggrPeriodDuration"] = period
        elif isinstance(opts, list) and "aggregatedValues" in opts:
            raise BadRequestData("aggregatedValues needs aggrMethods")
        elif isinstance(opts, list) and "temporalValues" in opts:
            params["format"] = "temporalValues"
        for key in ("q", "scopeQ"):
            if key in body:
                if not isinstance(body[key], str):
                    raise BadRequestData(f"{key} must be a string")
                params[key] = body[key]
        if "geoQ" in body:
            if not isinstance(body["geoQ"], dict):
                raise BadRequestData("geoQ must be an object")
            params["geoQ"] = body["geoQ"]
        return await self._temporal_query(request, r, params)

    def temporal_view(self, request: Request, r: Any) -> View:
        """The entity View of a temporal request (its temporal formats are handled apart)."""
        fmt = request.query_params.get("format")
        return self.view(request, r, fmt=None if fmt in _TEMPORAL_FORMATS else fmt)

    def _public(self, r: Any) -> Callable[[list[str]], bool] | None:
        """For an anonymous caller: whether an entity's types are public in the tenant."""
        if not r.caller.anonymous:
            return None
        public = self.s.keys.public_types(r.tenant)
        return lambda types: bool(public & set(types))

    async def _temporal_query(
        self, request: Request, r: Any, params: dict[str, Any]
    ) -> Response:
        view = self.temporal_view(request, r)
        if params.get("attrs"):
            view.attrs = {r.ctx.expand_term(a) for a in str(params["attrs"]).split(",") if a}
        flt0, topts = self._temporal_params(request, params, view)
        # the same parser and checks as /entities: type expressions, ids, q, scopeQ, geoQ
        q = self.build_query(params, r, require_filter=False)
        if not (q.types or q.ids or q.id_pattern or view.attrs or q.q or q.geo or q.scope_q):
            raise BadRequestData(
                "give at least one of type, id, idPattern, attrs, q or geo-query")
        limit = qparam_int(request, "limit", self.settings.default_limit)
        offset = qparam_int(request, "offset", 0)
        count = "count" in options_of(request) or request.query_params.get("count") == "true"
        if limit > self.settings.max_limit:
            raise TooManyResults(f"limit {limit} is above the maximum {self.settings.max_limit}")
        if limit == 0 and not count:
            raise BadRequestData("limit=0 is only allowed with count")
        flt = replace(flt0, types=q.types, ids=q.ids, id_pattern=q.id_pattern)
        sel = TemporalSelection.of(q, flt, params.get("q"), r.ctx.expand_term)
        sel.types_allowed = self._public(r)
        sel.hidden = lambda types: self.s.hub.hidden(r.tenant, r.caller, types)
        sel.current = lambda eid: self.s.store.reader().get_entity(r.tenant, eid)
        chosen, total = select(self.s.temporal, r.tenant, sel, limit, offset, count)
        out, reads, rng = render_page(self.s.temporal, r.tenant, chosen, flt, view, topts,
                                      keep_empty=flt.attrs is None and flt.timerel is None)
        await self.record_reads(r, reads)
        headers = {"Content-Range": rng} if rng else {}
        if count:
            headers["NGSILD-Results-Count"] = str(total)
        return respond(out, r, status=206 if rng else 200, headers=headers)

    async def temporal_get(self, request: Request) -> Response:
        r = await self.req(request, "read")
        eid = check_entity_id(request.path_params["eid"])
        found = list(self.s.store.temporal_entities(r.tenant, TemporalFilter(ids=(eid,))))
        public = self._public(r)
        if not found or (public is not None and not public(found[0][1])):
            raise ResourceNotFound(f"temporal entity {eid} not found")
        view = self.temporal_view(request, r)
        params = dict(request.query_params)
        flt, topts = self._temporal_params(request, params, view)
        etypes = found[0][1]
        hide = self.s.hub.hidden(r.tenant, r.caller, etypes)
        if hide is not None and view.attrs and all(hide(a) for a in view.attrs):
            raise Forbidden(
                f"the requested attributes of {eid} are not shown to this key: they need a key "
                "whose purposes the entity type allows")
        out, reads, rng = render_page(self.s.temporal, r.tenant, [(eid, etypes, hide)], flt,
                                      view, topts, keep_empty=True)
        if not out[0] or (view.attrs is not None and flt.timerel is None
                          and not set(out[0]) - _NOT_ATTRIBUTES):
            # 5.7.3.4: none of the requested attributes, or pick/omit left nothing
            raise ResourceNotFound(f"temporal entity {eid} has none of the requested members")
        await self.record_reads(r, reads)
        headers = {"Content-Range": rng} if rng else {}
        return respond(out[0], r, status=206 if rng else 200, headers=headers)

    async def temporal_create(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True)
        body = check_body_object(r.body, "a temporal entity")
        check_entity_payload(body, create=False, temporal=True)
        eid = check_entity_id(body.get("id"))
        if "type" not in body:
            raise BadRequestData("entity type is missing")
        types = expand_types(body["type"], r.ctx)
        attrs = expand_attrs(body, r.ctx, temporal=True)
        new = await self.write(
            lambda: self.s.temporal.add(r.tenant, eid, types, attrs, r.caller.actor, False)
        )
        if new:
            return no_content({"Location": f"{BASE}/temporal/entities/{eid}"}, status=201)
        return no_content()

    async def temporal_add_attrs(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True)
        eid = check_entity_id(request.path_params["eid"])
        if not isinstance(r.body, dict):
            raise BadRequestData("the payload must be a JSON object")
        attrs = expand_attrs(r.body, r.ctx, temporal=True)
        await self.write(
            lambda: self.s.temporal.add(r.tenant, eid, None, attrs, r.caller.actor, True)
        )
        return no_content()

    async def temporal_delete(self, request: Request) -> Response:
        r = await self.req(request, "write")
        eid = check_entity_id(request.path_params["eid"])
        await self.write(lambda: self.s.temporal.delete(r.tenant, eid, r.caller.actor))
        return no_content()

    async def temporal_delete_attr(self, request: Request) -> Response:
        r = await self.req(request, "write")
        eid = check_entity_id(request.path_params["eid"])
        iri = r.ctx.expand_term(request.path_params["attr"])
        delete_all = request.query_params.get("deleteAll", "false") == "true"
        ds = None if delete_all else request.query_params.get("datasetId", "")
        await self.write(lambda: self.s.temporal.delete(r.tenant, eid, r.caller.actor, iri, ds))
        return no_content()

    async def temporal_patch_instance(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True)
        eid = check_entity_id(request.path_params["eid"])
        name = request.path_params["attr"]
        iri = r.ctx.expand_term(name)
        if not isinstance(r.body, dict):
            raise BadRequestData("the payload must be a JSON object")
        raw = r.body.get(name, r.body)
        if isinstance(raw, list):
            raw = raw[0] if raw else {}
        attrs = expand_attrs({name: raw}, r.ctx, partial=True)
        patch = attrs[iri][0]
        iid = request.path_params["iid"]
        await self.write(lambda: self.s.temporal.modify_instance(
            r.tenant, eid, iri, iid, patch, r.caller.actor))
        return no_content()

    async def temporal_delete_instance(self, request: Request) -> Response:
        r = await self.req(request, "write")
        eid = check_entity_id(request.path_params["eid"])
        iri = r.ctx.expand_term(request.path_params["attr"])
        iid = request.path_params["iid"]
        await self.write(
            lambda: self.s.temporal.delete(r.tenant, eid, r.caller.actor, iri, None, iid)
        )
        return no_content()

    def routes(self) -> list[BaseRoute]:
        w = self.wrap
        t = f"{BASE}/temporal/entities"
        return super().routes() + [
            Route(f"{BASE}/subscriptions", w(self.list_subscriptions), methods=["GET"]),
            Route(f"{BASE}/subscriptions", w(self.create_subscription), methods=["POST"]),
            Route(f"{BASE}/subscriptions/{{sid}}", w(self.get_subscription), methods=["GET"]),
            Route(f"{BASE}/subscriptions/{{sid}}", w(self.update_subscription),
                  methods=["PATCH"]),
            Route(f"{BASE}/subscriptions/{{sid}}", w(self.delete_subscription),
                  methods=["DELETE"]),
            Route(t, w(self.temporal_query), methods=["GET"]),
            Route(t, w(self.temporal_create), methods=["POST"]),
            Route(f"{BASE}/temporal/entityOperations/query", w(self.temporal_query_post),
                  methods=["POST"]),
            Route(f"{t}/{{eid}}", w(self.temporal_get), methods=["GET"]),
            Route(f"{t}/{{eid}}", w(self.temporal_delete), methods=["DELETE"]),
            Route(f"{t}/{{eid}}/attrs", w(self.temporal_add_attrs), methods=["POST"]),
            Route(f"{t}/{{eid}}/attrs/{{attr}}", w(self.temporal_delete_attr),
                  methods=["DELETE"]),
            Route(f"{t}/{{eid}}/attrs/{{attr}}/{{iid}}", w(self.temporal_patch_instance),
                  methods=["PATCH"]),
            Route(f"{t}/{{eid}}/attrs/{{attr}}/{{iid}}", w(self.temporal_delete_instance),
                  methods=["DELETE"]),
        ]
