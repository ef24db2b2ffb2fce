"""Distributed reads (NGSI-LD 5.7.1, 5.7.2): retrieve entity and query entities (GET and
POST) across the local store and the registered context sources, merged per entity."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .csources import mode_of
from .distributed import (
    Answer,
    Call,
    Distributor,
    Handler,
    _forward_params,
    _query_infos,
    _replay,
    aux_last,
    body_of,
    entity_infos,
    json_response,
    merge_entity,
    registered_attrs,
    supports,
    type_names,
    with_warnings,
)
from .errors import BadRequestData
from .ldcontext import Context, ContextError


class Reads:
    """Retrieve entity and query entities across the local store and context sources."""

    def __init__(self, d: Distributor) -> None:
        self.d = d

    def _owned(self, call: Call, regs: list[dict[str, Any]], eid: str) -> Callable[[str], bool]:
        names: set[str] = set()
        for reg in regs:
            if mode_of(reg) in ("exclusive", "redirect"):
                attrs = registered_attrs(entity_infos(reg, eid))
                names |= {call.ctx.compact_iri(a) for a in attrs or ()}
        return lambda k: k in names

    async def retrieve(self, request: Request, local: Handler) -> Response:
        call = self.d.call_for(request)
        if call is None or call.loop or _geojson(request):
            return await local(request)
        eid = request.path_params["eid"]
        wanted = _wanted_attrs(request, call.ctx)
        if request.query_params.get("csf"):
            call.regs = self.d.csf_filter(call, request.query_params["csf"])
        regs = []
        for reg in call.regs:
            if not (supports(reg, "retrieveEntity") or supports(reg, "queryEntity")
                    or supports(reg, "queryBatch")):
                continue
            infos = entity_infos(reg, eid)
            if not infos:
                continue
            attrs = registered_attrs(infos)
            if wanted is not None and attrs is not None and not (wanted & attrs):
                continue
            regs.append((reg, attrs))
        if not regs:
            return await local(request)
        jobs = [self._retrieve_one(call, reg, attrs, eid, wanted) for reg, attrs in regs]
        answers, resp = await asyncio.gather(self.d.gather(jobs), local(request))
        for a in answers:
            if a.ok and not isinstance(a.body, dict):
                a.warning = f'111 {a.reg.get("id")} "invalid payload"'
        found = [a for a in aux_last(answers) if a.ok and isinstance(a.body, dict)]
        if not found or resp.status_code not in (200, 404):
            return with_warnings(resp, answers)
        base = body_of(resp) if resp.status_code == 200 else None
        if not isinstance(base, dict):
            base = {"id": eid}
            resp_tpl = None
        else:
            resp_tpl = resp
        owned = self._owned(call, [r for r, _ in regs], eid)
        for a in found:
            base = merge_entity(base, a.body, owned, fill_only=mode_of(a.reg) == "auxiliary")
        if "@context" not in base and "ld+json" in request.headers.get("accept", ""):
            ctx = found[0].body.get("@context")
            if ctx is not None:
                base["@context"] = ctx
        if resp_tpl is None and "ld+json" not in request.headers.get("accept", ""):
            link = request.headers.get("link")
            tpl = Response(media_type="application/json",
                           headers={"Link": link} if link else None)
            return json_response(base, 200, tpl, answers)
        return json_response(base, 200, resp_tpl, answers)

    async def _retrieve_one(self, call: Call, reg: dict[str, Any], attrs: set[str] | None,
                            eid: str, wanted: set[str] | None) -> Answer:
        params = _forward_params(call.request, drop=("local",))
        narrowed = _narrow(wanted, attrs, mode_of(reg))
        params = [(k, v) for k, v in params if k != "attrs"]
        if narrowed:
            params.append(("attrs", ",".join(sorted(call.ctx.compact_iri(a)
                                                    for a in narrowed))))
        if supports(reg, "retrieveEntity"):
            return await self.d.send(call, reg, "GET", f"/entities/{quote(eid, safe=':')}",
                                     params)
        # a source that only queries: ask for this id (and the registered types)
        tnames = sorted({call.ctx.compact_iri(e["type"]) for i in entity_infos(reg, eid)
                         for e in i.get("entities") or [] if e.get("type")})
        if supports(reg, "queryEntity"):
            params += [("id", eid)] + ([("type", ",".join(tnames))] if tnames else [])
            ans = await self.d.send(call, reg, "GET", "/entities", params)
        else:
            sel: dict[str, Any] = {"id": eid}
            if tnames:
                sel["type"] = tnames[0]
            query: dict[str, Any] = {"type": "Query", "entities": [sel]}
            if narrowed:
                query["attrs"] = sorted(call.ctx.compact_iri(a) for a in narrowed)
            ans = await self.d.send(call, reg, "POST", "/entityOperations/query",
                                    [(k, v) for k, v in params if k != "attrs"], query)
        if ans.ok:
            items = ans.body if isinstance(ans.body, list) else [ans.body]
            hit = [e for e in items if isinstance(e, dict) and e.get("id") == eid]
            ans.body = hit[0] if hit else None
            if not hit:
                ans.status = 404
        return ans

    async def query(self, request: Request, local: Handler, post: bool = False) -> Response:
        call = self.d.call_for(request)
        if call is None or call.loop or _geojson(request):
            return await local(request)
        body: Any = None
        if post:
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return await local(_replay(request, raw))
            if not isinstance(body, dict):
                return await local(_replay(request, raw))
            call.raw = raw
            sel = _body_selection(body)
            if "@context" in body:
                try:
                    call.ctx = self.d.s.resolver.resolve(body["@context"])
                except ContextError:
                    return await local(_replay(request, raw))
        else:
            sel = _param_selection(request)
        if sel.get("csf"):
            call.regs = self.d.csf_filter(call, sel["csf"])
        types = {call.ctx.expand_term(t) for t in type_names(sel.get("type"))} or None
        ids = set(sel["id"].split(",")) if sel.get("id") else None
        wanted = ({call.ctx.expand_term(a) for a in sel["attrs"].split(",") if a}
                  if sel.get("attrs") else None)
        regs = []
        for reg in call.regs:
            if not (supports(reg, "queryEntity") or (post and supports(reg, "queryBatch"))):
                continue
            infos = _query_infos(reg, types, ids)
            if not infos:
                continue
            attrs = registered_attrs(infos)
            if wanted is not None and attrs is not None and not (wanted & attrs):
                continue
            regs.append((reg, infos, attrs))
        if not regs:
            return await local(_replay(request, call.raw) if post else request)
        if request.query_params.get("orderBy"):
            raise BadRequestData("orderBy is not supported by a distributed query; "
                                 "add local=true to order the local entities")
        jobs = [self._query_one(call, reg, infos, attrs, sel, wanted, body)
                for reg, infos, attrs in regs]
        answers, resp = await asyncio.gather(
            self.d.gather(jobs), local(_replay(request, call.raw) if post else request))
        if resp.status_code != 200:
            return with_warnings(resp, answers)
        local_items = body_of(resp)
        if not isinstance(local_items, list):
            return with_warnings(resp, answers)
        merged: dict[str, dict[str, Any]] = {}
        for e in local_items:
            if isinstance(e, dict) and isinstance(e.get("id"), str):
                merged[e["id"]] = e
        added = 0
        for a in aux_last(answers):
            if not a.ok:
                continue
            if not isinstance(a.body, list):
                a.warning = f'111 {a.reg.get("id")} "invalid payload"'
                continue
            for e in a.body:
                if not isinstance(e, dict) or not isinstance(e.get("id"), str):
                    continue
                eid = e["id"]
                owned = self._owned(call, [a.reg], eid)
                if eid in merged:
                    merged[eid] = merge_entity(merged[eid], e, owned,
                                               fill_only=mode_of(a.reg) == "auxiliary")
                else:
                    merged[eid] = e
                    added += 1
        limit = _int(request.query_params.get("limit"), self.d.s.settings.default_limit)
        items = list(merged.values())[:limit]
        out = json_response(items, 200, resp, answers)
        count = resp.headers.get("ngsild-results-count")
        if count is not None and count.isdigit():
            out.headers["NGSILD-Results-Count"] = str(int(count) + added)
        return out

    async def _query_one(self, call: Call, reg: dict[str, Any], infos: list[dict[str, Any]],
                         attrs: set[str] | None, sel: dict[str, str],
                         wanted: set[str] | None, body: Any) -> Answer:
        mode = mode_of(reg)
        narrowed = _narrow(wanted, attrs, mode)
        if body is not None and supports(reg, "queryBatch"):
            fwd = dict(body)
            if narrowed:
                fwd["attrs"] = sorted(call.ctx.compact_iri(a) for a in narrowed)
            ld = "@context" in fwd
            return await self.d.send(call, reg, "POST", "/entityOperations/query",
                                     _paging(call.request), fwd, ld=ld)
        params: list[tuple[str, str]] = []
        split = call.request.query_params.get("splitEntities") == "true"
        for key, value in sel.items():
            if key in ("attrs",) or (split and key in ("q", "scopeQ")):
                continue
            params.append((key, value))
        if not sel.get("type"):
            tnames = sorted({call.ctx.compact_iri(e["type"]) for i in infos
                             for e in i.get("entities") or [] if e.get("type")})
            if tnames:
                params.append(("type", ",".join(tnames)))
        if not sel.get("id"):
            sels = [e for i in infos for e in i.get("entities") or []]
            rids = sorted({e["id"] for e in sels if "id" in e})
            if rids and all("id" in e for e in sels):
                params.append(("id", ",".join(rids)))
        if narrowed:
            params.append(("attrs", ",".join(sorted(call.ctx.compact_iri(a)
                                                    for a in narrowed))))
        params += _paging(call.request)
        return await self.d.send(call, reg, "GET", "/entities", params)


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() else default


def _paging(request: Request) -> list[tuple[str, str]]:
    out = []
    for key in ("options", "format", "lang"):
        if key in request.query_params:
            out.append((key, request.query_params[key]))
    limit = _int(request.query_params.get("limit"), 0) + _int(
        request.query_params.get("offset"), 0)
    if limit:
        out.append(("limit", str(limit)))
    return out


def _narrow(wanted: set[str] | None, attrs: set[str] | None, mode: str) -> set[str] | None:
    """The attributes to ask a source for: the requested ones it registered, or all it
    registered (4.3.6.1: the registration's constraints are respected)."""
    if attrs is None:
        return wanted
    if wanted is None:
        return attrs
    return wanted & attrs


def _wanted_attrs(request: Request, ctx: Context) -> set[str] | None:
    raw = request.query_params.get("attrs")
    return {ctx.expand_term(a) for a in raw.split(",") if a} if raw else None


def _geojson(request: Request) -> bool:
    return "geo+json" in request.headers.get("accept", "")


def _param_selection(request: Request) -> dict[str, str]:
    keep = ("type", "id", "idPattern", "attrs", "q", "scopeQ", "georel", "geometry",
            "coordinates", "geoproperty", "csf", "datasetId", "pick", "omit")
    return {k: request.query_params[k] for k in keep if request.query_params.get(k)}


def _body_selection(body: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    raw_ents = body.get("entities")
    ents: list[Any] = raw_ents if isinstance(raw_ents, list) else []
    types = [e["type"] for e in ents if isinstance(e, dict) and isinstance(e.get("type"), str)]
    ids = [e["id"] for e in ents if isinstance(e, dict) and isinstance(e.get("id"), str)]
    pats = [e["idPattern"] for e in ents
            if isinstance(e, dict) and isinstance(e.get("idPattern"), str)]
    if types:
        out["type"] = ",".join(types)
    if ids:
        out["id"] = ",".join(ids)
    if pats:
        out["idPattern"] = "|".join(pats)
    for key in ("q", "scopeQ", "csf"):
        if isinstance(body.get(key), str):
            out[key] = body[key]
    attrs = body.get("attrs")
    if isinstance(attrs, list):
        out["attrs"] = ",".join(a for a in attrs if isinstance(a, str))
    elif isinstance(attrs, str):
        out["attrs"] = attrs
    geo = body.get("geoQ")
    if isinstance(geo, dict):
        for key in ("georel", "geometry", "geoproperty"):
            if isinstance(geo.get(key), str):
                out[key] = geo[key]
        if "coordinates" in geo:
            c = geo["coordinates"]
            out["coordinates"] = c if isinstance(c, str) else orjson.dumps(c).decode()
    return out


__all__ = ["Reads"]
