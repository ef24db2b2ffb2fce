"""HTTP adapter for the NGSI-LD API: request → core call → response. No entity logic here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .auth import Caller
from .compaction import View
from .core import Query
from .entities import (
    dataset_filter,
    expand_attribute,
    expand_entity,
    expand_fragment,
    is_uri,
    type_filter,
)
from .errors import (
    BadRequestData,
    Forbidden,
    InternalError,
    InvalidRequest,
    NgsiError,
    NonexistentTenant,
    ResourceNotFound,
)
from .geo import GeoQueryError, compile_geo, distance_m, parse_geo_query, query_bbox
from .http import (
    GEOJSON,
    LD,
    MERGE_PATCH,
    TENANT_HEADER,
    Req,
    body_attrs,
    link_context,
    negotiate,
    no_content,
    options_of,
    prefers_body_json,
    problem_response,
    qparam_int,
    qparam_list,
    read_body,
    request_caller,
    resolve_ctx,
    respond,
    tenant_of,
)
from .lifecycle import hide_expired, purge_entities
from .linked import Join, Linker, parse_join
from .qprefilter import prefilter
from .query import QueryError, compile_q, parse_q, parse_scope_q
from .validate import (
    check_batch,
    check_body_object,
    check_entity_payload,
    check_id_pattern,
    check_query_body,
    check_request,
    projection_tree,
)

log = logging.getLogger(__name__)
BASE = "/ngsi-ld/v1"
Handler = Callable[[Request], Awaitable[Response]]
_LENGTH_REQUIRED = frozenset({"POST", "PATCH", "PUT"})


_Q_CACHE: dict[tuple[int, str], tuple[Any, Any, Any]] = {}
_Q_CACHE_SIZE = 512


def _compiled_q(text: str, ctx: Any) -> tuple[Any, Any]:
    """The predicate and store prefilter of a q expression in a context, compiled once for
    the queries that repeat it (a dashboard's polling). Both are pure functions of the text
    and the context's terms; an entry holds its context, so the id in its key stays valid."""
    key = (id(ctx), text)
    hit = _Q_CACHE.get(key)
    if hit is not None and hit[0] is ctx:
        return hit[1], hit[2]
    try:
        tree = parse_q(text)
        pred = compile_q(tree, ctx.expand_term)
    except QueryError as exc:
        raise BadRequestData(f"invalid q: {exc}") from None
    pre = prefilter(tree, ctx.expand_term)
    if len(_Q_CACHE) >= _Q_CACHE_SIZE:
        _Q_CACHE.clear()
    _Q_CACHE[key] = (ctx, pred, pre)
    return pred, pre


class Api:
    """Route handlers bound to the process's services (see maeul.hub.app.Services)."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.settings = services.settings

    # -- request plumbing ------------------------------------------------------------------
    def caller(self, request: Request) -> Caller:
        return request_caller(self.s, request)

    async def req(
        self, request: Request, right: str, body: bool = False, geojson: bool = False,
        allowed: tuple[str, ...] = ("application/json", LD),
    ) -> Req:
        tenant = tenant_of(request)
        caller = self.caller(request)
        caller.require(tenant, right)
        accept = negotiate(request, allow_geojson=geojson)
        payload: Any = None
        if body:
            payload, source = await read_body(request, self.settings.max_body_bytes, allowed)
        else:
            source = link_context(request)
        ctx = resolve_ctx(self.s.resolver, source)
        if right == "read" and tenant != "default" and not self.s.hub.tenant_exists(tenant):
            raise NonexistentTenant(f"tenant {tenant!r} does not exist")
        return Req(tenant, caller, ctx, accept, payload,
                   body_json=accept == GEOJSON and prefers_body_json(request))

    async def write(self, fn: Callable[[], Any]) -> Any:
        # writes wait for the group commit; the store runs them where it commits them
        return await self.s.store.run_write(fn)

    def view(self, request: Request, r: Req, fmt: str | None = "") -> View:
        opts = options_of(request)
        if fmt == "":
            fmt = request.query_params.get("format")
        if fmt is None:
            fmt = "keyValues" if ("keyValues" in opts or "simplified" in opts) else (
                "concise" if "concise" in opts else "normalized"
            )
        attrs = qparam_list(request, "attrs")
        pick = qparam_list(request, "pick")
        omit = qparam_list(request, "omit")
        if pick is not None and omit is not None:
            raise BadRequestData("pick and omit cannot be used together")
        linked_pick = linked_omit = None
        if pick is not None and "{" in request.query_params["pick"]:
            tree = projection_tree(request.query_params["pick"], "pick")
            pick = list(tree)
            linked_pick = {k: v for k, v in tree.items() if v is not None}
        if omit is not None and "{" in request.query_params["omit"]:
            tree = projection_tree(request.query_params["omit"], "omit")
            omit = [k for k, v in tree.items() if v is None] or None
            linked_omit = {k: v for k, v in tree.items() if v is not None}
        ds = request.query_params.get("datasetId")
        view = View(
            r.ctx,
            fmt=fmt,
            attrs={r.ctx.expand_term(a) for a in attrs} if attrs else None,
            pick=set(pick) if pick else None,
            omit=set(omit) if omit else None,
            lang=request.query_params.get("lang"),
            sys_attrs="sysAttrs" in opts,
            datasets=None if ds is None else dataset_filter(ds),
        )
        view.linked_pick, view.linked_omit = linked_pick, linked_omit
        return view

    def public_check(self, r: Req, types: list[str]) -> None:
        if r.caller.anonymous and not (set(types) & self.s.keys.public_types(r.tenant)):
            raise ResourceNotFound("entity not found")

    # -- access guards (installed by the trust layer): what a caller may see ---------------
    @staticmethod
    def shown_attrs(view: View, ent: dict[str, Any]) -> list[str]:
        """The attribute IRIs of ``ent`` that ``view`` puts into a response."""
        out = []
        for iri in ent["attrs"]:
            if view.attrs is not None and iri not in view.attrs:
                continue
            name = view.ctx.compact_iri(iri)
            if (view.pick is not None and name not in view.pick) or (
                view.omit is not None and name in view.omit
            ):
                continue
            out.append(iri)
        return out

    async def record_reads(
        self, r: Req, shown: list[tuple[str, list[str], list[str]]]
    ) -> None:
        """Record (audit) what was shown, before it is sent."""
        op = self.s.hub.read_recorder(r.tenant, r.caller, shown)
        if op is not None:
            await self.write(lambda: self.s.store.write(op))

    def all_hidden(self, r: Req, types: list[str], attrs: set[str]) -> bool:
        hide = self.s.hub.hidden(r.tenant, r.caller, types)
        return hide is not None and bool(attrs) and all(hide(a) for a in attrs)

    # -- entities --------------------------------------------------------------------------
    async def create_entity(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True)
        check_entity_payload(check_body_object(r.body, "an entity"), create=True)
        ent = expand_entity(r.body, r.ctx)
        await self.write(lambda: self.s.hub.create_entity(r.tenant, ent, r.caller.actor))
        return no_content({"Location": f"{BASE}/entities/{ent['id']}"}, status=201)

    async def get_entity(self, request: Request) -> Response:
        r = await self.req(request, "read", geojson=True)
        eid = request.path_params["eid"]
        join = parse_join(request.query_params.get("join"), request.query_params.get("joinLevel"))
        stored = self.s.hub.get_entity(r.tenant, eid)
        self.public_check(r, stored["type"])
        view = self.view(request, r)
        ent = self.s.hub.visible(r.tenant, r.caller, stored)
        if view.attrs is not None and not (view.attrs & ent["attrs"].keys()):
            if view.attrs & stored["attrs"].keys():
                raise Forbidden(
                    f"the requested attributes of {eid} are not shown to this key: they need "
                    "a key whose purposes the entity type allows"
                )
            raise ResourceNotFound(f"entity {eid} has none of the requested attributes")
        shown = view.entity(ent)
        if not shown:  # 5.7.1.4: pick/omit left nothing of the entity
            raise ResourceNotFound(f"pick/omit leave nothing of entity {eid}")
        linker = self.linker(r, view, join)
        linked = linker.apply([(ent, shown)]) if linker is not None else []
        reads = [(ent["id"], ent["type"], self.shown_attrs(view, ent))]
        await self.record_reads(r, reads + (linker.reads() if linker is not None else []))
        if join is not None and join.mode == "flat":
            return self._respond_many(request, r, [ent], [shown], linked, linker, {})
        if r.accept == GEOJSON:
            shown = self._feature(request, r, ent, shown)
        return respond(shown, r)

    def linker(self, r: Req, view: View, join: Join | None) -> Linker | None:
        """What follows relationships for this caller (None without a join)."""
        if join is None:
            return None
        public = self.s.keys.public_types(r.tenant) if r.caller.anonymous else None
        return Linker(self.s.hub, r.tenant, join, view,
                      lambda e: self.s.hub.visible(r.tenant, r.caller, e),
                      lambda e: public is None or bool(public & set(e["type"])))

    def _respond_many(self, request: Request, r: Req, ents: list[dict[str, Any]],
                      shown: list[dict[str, Any]], linked: list[dict[str, Any]],
                      linker: Linker | None, headers: dict[str, str]) -> Response:
        if linker is not None and linked:
            ents = ents + linked
            shown = shown + [linker.render(e) for e in linked]
        if r.accept == GEOJSON:
            feats = [self._feature(request, r, e, s) for e, s in zip(ents, shown, strict=True)]
            return respond({"type": "FeatureCollection", "features": feats}, r, headers=headers)
        return respond(shown, r, headers=headers)

    def _feature(self, request: Request, r: Req, ent: dict[str, Any], shown: dict[str, Any]
                 ) -> dict[str, Any]:
        prop = r.ctx.expand_term(request.query_params.get("geometryProperty", "location"))
        insts = ent["attrs"].get(prop) or [{}]
        props = {k: v for k, v in shown.items() if k != "id"}
        return {"id": ent["id"], "type": "Feature", "geometry": insts[0].get("value"),
                "properties": props}

    async def replace_entity(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True)
        eid = request.path_params["eid"]
        if isinstance(r.body, dict):
            if r.body.get("id", eid) != eid:
                raise BadRequestData("the id in the body differs from the one in the URL")
            r.body["id"] = eid
        ent = expand_entity(r.body, r.ctx)
        await self.write(lambda: self.s.hub.replace_entity(r.tenant, ent, r.caller.actor))
        return no_content()

    async def merge_entity(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True,
                           allowed=("application/json", LD, MERGE_PATCH))
        eid = request.path_params["eid"]
        frag = expand_fragment(r.body, r.ctx, partial=True)
        if frag.get("id", eid) != eid:
            raise BadRequestData("the id in the body differs from the one in the URL")
        await self.write(lambda: self.s.hub.merge_entity(r.tenant, eid, frag, r.caller.actor))
        return no_content()

    async def delete_entity(self, request: Request) -> Response:
        r = await self.req(request, "write")
        eid = request.path_params["eid"]
        if not is_uri(eid):
            raise BadRequestData(f"entity id must be a URI, got {eid!r}")
        await self.write(lambda: self.s.hub.delete_entity(r.tenant, eid, r.caller.actor))
        return no_content()

    async def purge_entities(self, request: Request) -> Response:
        """DELETE /entities: every entity the type/id/idPattern/q/scopeQ/geo filters match."""
        r = await self.req(request, "write")
        params = dict(request.query_params)
        for key in ("attrs", "pick", "omit"):
            if key in params:
                raise BadRequestData(f"purge deletes whole entities: {key} is not supported")
        q = self.build_query(params, r)
        if self.s.hub.access_guards:  # filters see what the caller sees, as in a query
            q.view = lambda e: self.s.hub.visible(r.tenant, r.caller, e)
        chunk = self.settings.purge_chunk_entities
        await self.write(lambda: purge_entities(self.s.hub, r.tenant, q, r.caller.actor, chunk))
        return no_content()

    async def append_attrs(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True)
        eid = request.path_params["eid"]
        frag = expand_fragment(r.body, r.ctx)
        no_overwrite = "noOverwrite" in options_of(request)
        res = await self.write(
            lambda: self.s.hub.append_attrs(r.tenant, eid, frag, no_overwrite, r.caller.actor)
        )
        return self._attrs_result(res, r)

    async def update_attrs(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True,
                           allowed=("application/json", LD, MERGE_PATCH))
        eid = request.path_params["eid"]
        frag = expand_fragment(r.body, r.ctx)
        res = await self.write(
            lambda: self.s.hub.update_attrs(r.tenant, eid, frag, r.caller.actor)
        )
        return self._attrs_result(res, r)

    def _attrs_result(self, res: Any, r: Req) -> Response:
        if not res.not_updated:
            return no_content()
        body = {
            "updated": [r.ctx.compact_iri(a) for a in res.updated],
            "notUpdated": [
                {"attributeName": r.ctx.compact_iri(a), "reason": why}
                for a, why in res.not_updated
            ],
        }
        return respond(body, r, status=207)

    async def patch_attr(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True,
                           allowed=("application/json", LD, MERGE_PATCH))
        eid = request.path_params["eid"]
        iri = r.ctx.expand_term(request.path_params["attr"])
        if not isinstance(r.body, dict):
            raise BadRequestData("the payload must be a JSON object")
        check_entity_payload({request.path_params["attr"]: r.body}, create=False)
        patch = expand_attribute(request.path_params["attr"], r.body, r.ctx, partial=True)
        await self.write(
            lambda: self.s.hub.partial_update_attr(r.tenant, eid, iri, patch, r.caller.actor)
        )
        return no_content()

    async def replace_attr(self, request: Request) -> Response:
        r = await self.req(request, "write", body=True)
        eid = request.path_params["eid"]
        name = request.path_params["attr"]
        if not isinstance(r.body, dict):
            raise BadRequestData("the payload must be a JSON object")
        frag = expand_fragment({name: r.body}, r.ctx)
        res = await self.write(lambda: self.s.hub.update_attrs(r.tenant, eid, frag,
                                                               r.caller.actor))
        if res.not_updated:
            raise ResourceNotFound(f"attribute {name} not found in {eid}")
        return no_content()

    async def delete_attr(self, request: Request) -> Response:
        r = await self.req(request, "write")
        eid = request.path_params["eid"]
        iri = r.ctx.expand_term(request.path_params["attr"])
        ds = request.query_params.get("datasetId")
        delete_all = request.query_params.get("deleteAll", "false").lower() == "true"
        await self.write(
            lambda: self.s.hub.delete_attr(r.tenant, eid, iri, ds, delete_all, r.caller.actor)
        )
        return no_content()

    # -- query -----------------------------------------------------------------------------
    def build_query(self, params: dict[str, Any], r: Req, *, require_filter: bool = True) -> Query:
        ctx = r.ctx
        q = Query()
        type_expr = params.get("type")
        if type_expr:
            q.types, type_pred = type_filter(type_expr, ctx.expand_term)
            if type_pred is not None:
                inner = type_pred
                q.q = lambda e, p=inner: p(e["type"])
        ids = params.get("id")
        if ids:
            id_list = ids if isinstance(ids, list) else [i for i in str(ids).split(",") if i]
            for i in id_list:
                if not is_uri(i):
                    raise BadRequestData(f"id {i!r} is not a URI")
            q.ids = tuple(id_list)
        if params.get("idPattern"):
            q.id_pattern = check_id_pattern(params["idPattern"])
        attrs = params.get("attrs")
        if attrs:
            names = attrs if isinstance(attrs, list) else str(attrs).split(",")
            q.attrs = {ctx.expand_term(a) for a in names if a}
        if params.get("q"):
            pred, q.prefilter = _compiled_q(str(params["q"]), ctx)
            prev = q.q
            q.q = pred if prev is None else (lambda e, a=prev, b=pred: a(e) and b(e))
        if params.get("scopeQ"):
            try:
                q.scope_q = parse_scope_q(params["scopeQ"])
            except QueryError as exc:
                raise BadRequestData(f"invalid scopeQ: {exc}") from None
        geo = params.get("geoQ")
        if geo is None and params.get("georel"):
            geo = {k: params.get(k) for k in ("georel", "geometry", "coordinates", "geoproperty")}
        if geo:
            try:
                gq = parse_geo_query(
                    str(geo.get("georel") or ""), str(geo.get("geometry") or ""),
                    geo.get("coordinates") or "", geo.get("geoproperty"),
                )
            except GeoQueryError as exc:
                raise BadRequestData(f"invalid geo-query: {exc}") from None
            q.geo = compile_geo(gq)
            q.geo_property = ctx.expand_term(gq.geoproperty)
            q.geo_bbox = query_bbox(gq)
            if gq.georel == "near":
                q.geo_distance = lambda g, gq=gq: distance_m(gq, g) if g else float("inf")
        if require_filter and not (
            q.types or q.ids or q.id_pattern or q.attrs or q.q or q.geo or q.scope_q
        ):
            raise BadRequestData("give at least one of type, id, idPattern, attrs, q or geo-query")
        return q

    async def query_entities(self, request: Request) -> Response:
        r = await self.req(request, "read", geojson=True)
        params = dict(request.query_params)
        q = self.build_query(params, r)
        q.limit = qparam_int(request, "limit", self.settings.default_limit)
        q.offset = qparam_int(request, "offset", 0)
        q.count = "count" in options_of(request) or request.query_params.get("count") == "true"
        if q.limit == 0 and not q.count:
            raise BadRequestData("limit=0 is only allowed with count")
        return await self._query_response(request, r, q)

    async def _query_response(self, request: Request, r: Req, q: Query,
                              join: Join | None = None) -> Response:
        if join is None:
            join = parse_join(request.query_params.get("join"),
                              request.query_params.get("joinLevel"))
        hide_expired(q)
        if r.caller.anonymous:
            public = self.s.keys.public_types(r.tenant)
            prev = q.q
            q.q = lambda e, p=prev: bool(public & set(e["type"])) and (p is None or p(e))
        if self.s.hub.access_guards:
            # filters run on what the caller may see, so q cannot probe hidden values
            if q.types and q.attrs and all(
                self.all_hidden(r, [t], q.attrs) for t in q.types
            ):
                raise Forbidden("the requested attributes are not shown to this key: they need "
                                "a key whose purposes the entity type allows")
            q.view = lambda e: self.s.hub.visible(r.tenant, r.caller, e)
        ents, total = self.s.hub.query(r.tenant, q)
        view = self.view(request, r)
        shown = [view.entity(e) for e in ents]
        linker = self.linker(r, view, join)
        linked = linker.apply(list(zip(ents, shown, strict=True))) if linker else []
        await self.record_reads(r, [(e["id"], e["type"], self.shown_attrs(view, e))
                                    for e in ents] + (linker.reads() if linker else []))
        headers = {}
        if total is not None:
            headers["NGSILD-Results-Count"] = str(total)
        return self._respond_many(request, r, ents, shown, linked, linker, headers)

    async def query_post(self, request: Request) -> Response:
        r = await self.req(request, "read", body=True, geojson=True)
        if not isinstance(r.body, dict) or r.body.get("type") != "Query":
            raise BadRequestData("the body must be an object of type Query")
        body = r.body
        check_query_body(body, temporal=False)
        params: dict[str, Any] = {}
        ents = body.get("entities")
        if ents is not None:
            if not isinstance(ents, list) or not all(isinstance(e, dict) for e in ents):
                raise BadRequestData("entities must be a list of objects")
            types = [e["type"] for e in ents if isinstance(e.get("type"), str)]
            if types:
                params["type"] = ",".join(types)
            ids = [e["id"] for e in ents if "id" in e]
            if not all(isinstance(i, str) for i in ids):
                raise BadRequestData("entities.id must be a string")
            if ids:
                params["id"] = ids
            pats = [e["idPattern"] for e in ents if "idPattern" in e]
            if not all(isinstance(p, str) for p in pats):
                raise BadRequestData("entities.idPattern must be a string")
            if pats:
                params["idPattern"] = "|".join(f"(?:{p})" for p in pats)
        for key in ("q", "scopeQ"):
            if key in body:
                if not isinstance(body[key], str):
                    raise BadRequestData(f"{key} must be a string")
                params[key] = body[key]
        if "attrs" in body:
            params["attrs"] = body_attrs(body)
        if "geoQ" in body:
            if not isinstance(body["geoQ"], dict):
                raise BadRequestData("geoQ must be an object")
            params["geoQ"] = body["geoQ"]
        join = parse_join(body["join"], body.get("joinLevel")) if "join" in body else None
        q = self.build_query(params, r)
        q.limit = qparam_int(request, "limit", self.settings.default_limit)
        q.offset = qparam_int(request, "offset", 0)
        q.count = "count" in options_of(request)
        return await self._query_response(request, r, q, join)

    # -- batch -----------------------------------------------------------------------------
    async def batch(self, request: Request) -> Response:
        op = request.path_params["op"]
        if op == "query":
            return await self.query_post(request)
        if op not in ("create", "upsert", "update", "delete", "merge"):
            raise ResourceNotFound(f"unknown batch operation {op!r}")
        r = await self.req(request, "write", body=True,
                           allowed=("application/json", LD))
        if not isinstance(r.body, list):
            raise BadRequestData("a batch payload must be a JSON array")
        check_batch(op, r.body)
        if len(r.body) > self.settings.max_batch_entities:
            raise BadRequestData(
                f"a batch may hold at most {self.settings.max_batch_entities} entities"
            )
        items: list[Any] = []
        errors: list[dict[str, Any]] = []
        for raw in r.body:
            try:
                if op == "delete":
                    if not is_uri(raw):
                        raise BadRequestData(f"{raw!r} is not an entity id")
                    items.append(raw)
                elif op in ("create", "upsert"):
                    check_entity_payload(raw, create=op == "create")
                    items.append(expand_entity(raw, r.ctx))
                else:
                    check_entity_payload(raw, create=False)
                    frag = expand_fragment(raw, r.ctx, partial=op == "merge")
                    if "id" not in frag:
                        raise BadRequestData("entity id is missing")
                    items.append(frag)
            except NgsiError as exc:
                eid = raw.get("id") if isinstance(raw, dict) else raw
                errors.append({"entityId": eid if isinstance(eid, str) else "",
                               "error": exc.problem()})
        opts = options_of(request)
        res = await self.write(lambda: self.s.hub.batch(
            r.tenant, op, items, r.caller.actor,
            no_overwrite="noOverwrite" in opts,
            upsert_replace="update" not in opts,
        ))
        res.errors = errors + res.errors
        if not res.errors:
            if op == "create":
                return respond(res.success, r, status=201)
            if op == "upsert":
                # 201 with the ids of the entities created; 204 when all existed
                return no_content() if not res.created else respond(res.created, r, status=201)
            return no_content()
        return respond({"success": res.success, "errors": res.errors}, r, status=207)

    # -- types and attributes --------------------------------------------------------------
    async def no_entity_id(self, request: Request) -> Response:
        # PUT/PATCH /entities[/] (no id; the slash redirects here) would otherwise be 405
        raise BadRequestData("the entity id is missing from the path")

    # -- routing ---------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        from .types_api import TypesApi

        w, t = self.wrap, TypesApi(self)
        return [
            Route(f"{BASE}/entities", w(self.query_entities), methods=["GET"]),
            Route(f"{BASE}/entities", w(self.create_entity), methods=["POST"]),
            Route(f"{BASE}/entities", w(self.purge_entities), methods=["DELETE"]),
            Route(f"{BASE}/entities", w(self.no_entity_id), methods=["PUT", "PATCH"]),
            Route(f"{BASE}/entities/{{eid}}", w(self.get_entity), methods=["GET"]),
            Route(f"{BASE}/entities/{{eid}}", w(self.replace_entity), methods=["PUT"]),
            Route(f"{BASE}/entities/{{eid}}", w(self.merge_entity), methods=["PATCH"]),
            Route(f"{BASE}/entities/{{eid}}", w(self.delete_entity), methods=["DELETE"]),
            Route(f"{BASE}/entities/{{eid}}/attrs", w(self.append_attrs), methods=["POST"]),
            Route(f"{BASE}/entities/{{eid}}/attrs", w(self.update_attrs), methods=["PATCH"]),
            Route(f"{BASE}/entities/{{eid}}/attrs/{{attr}}", w(self.patch_attr),
                  methods=["PATCH"]),
            Route(f"{BASE}/entities/{{eid}}/attrs/{{attr}}", w(self.replace_attr),
                  methods=["PUT"]),
            Route(f"{BASE}/entities/{{eid}}/attrs/{{attr}}", w(self.delete_attr),
                  methods=["DELETE"]),
            Route(f"{BASE}/entityOperations/{{op}}", w(self.batch), methods=["POST"]),
            Route(f"{BASE}/types", w(t.types), methods=["GET"]),
            Route(f"{BASE}/types/{{type:path}}", w(t.type_info), methods=["GET"]),
            Route(f"{BASE}/attributes", w(t.attributes), methods=["GET"]),
            Route(f"{BASE}/attributes/{{attr:path}}", w(t.attribute_info), methods=["GET"]),
        ]

    @staticmethod
    def wrap(fn: Handler) -> Handler:
        async def handler(request: Request) -> Response:
            if request.method in _LENGTH_REQUIRED and "content-length" not in request.headers:
                # 6.3.4: a POST, PATCH or PUT without Content-Length gets a bare 411
                return Response(status_code=411)
            try:
                check_request(request.scope["path"], request.method, request.path_params,
                              request.query_params)
                response = await fn(request)
            except NgsiError as exc:
                response = problem_response(exc, str(request.url.path))
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                response = problem_response(InternalError("internal error; see the server log"))
            tenant = request.headers.get(TENANT_HEADER)
            if tenant is not None and tenant.isascii():
                response.headers["NGSILD-Tenant"] = tenant  # 6.3.14: the tenant applied
            return response

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler


__all__ = ["Api", "BASE", "Forbidden", "InvalidRequest", "Starlette"]
