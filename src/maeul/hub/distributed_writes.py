"""Distributed writes (NGSI-LD 4.3.6): entity, attribute and batch operations forwarded to
the context sources whose registrations cover them.

Per mode: an inclusive registration gets the whole request and the local store does it too;
an exclusive or redirect registration gets the attributes it registered (the whole entity
when it names none), which the local store then leaves out; an auxiliary one gets no write.
A source that fails, or that must take part but does not support the operation, becomes an
entry of a 207 answer when another part succeeded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .csources import mode_of
from .distributed import (
    BASE,
    Answer,
    Call,
    Distributor,
    Handler,
    LoopDetected,
    _forward_params,
    _query_infos,
    _replay,
    body_of,
    entity_infos,
    json_response,
    registered_attrs,
    supports,
    type_names,
    with_warnings,
)
from .distributed_reads import Reads
from .entities import expand_entity, expand_fragment, is_uri
from .errors import BadRequestData, NgsiError
from .http import problem_response
from .ldcontext import Context, ContextError
from .validate import check_body_object, check_entity_payload

_OWNING = ("exclusive", "redirect")
_BATCH_OPS = {"create": "createBatch", "upsert": "upsertBatch", "update": "updateBatch",
              "delete": "deleteBatch", "merge": "mergeBatch"}
_KEEP = frozenset({"id", "type", "@context", "scope"})


@dataclass
class Part:
    """What one registration gets of one entity (attrs None: the whole entity)."""

    reg: dict[str, Any]
    attrs: set[str] | None


@dataclass
class Plan:
    """How one entity's write splits between context sources and the local store."""

    parts: list[Part] = field(default_factory=list)
    unsupported: list[dict[str, Any]] = field(default_factory=list)
    owned: set[str] = field(default_factory=set)
    whole_remote: bool = False

    @property
    def remote(self) -> bool:
        return bool(self.parts or self.unsupported)


def _expanded(doc: dict[str, Any], ctx: Context) -> dict[str, str]:
    """Attribute IRI -> name as written, for the attributes of an entity fragment."""
    return {ctx.expand_term(k): k for k in doc if k not in _KEEP}


def _types(doc: Any, ctx: Context) -> set[str] | None:
    if not isinstance(doc, dict):
        return None
    t = doc.get("type")
    names = t if isinstance(t, list) else [t] if isinstance(t, str) else []
    return {ctx.expand_term(n) for n in names if isinstance(n, str)} or None


def _restrict(doc: dict[str, Any], names: dict[str, str], keep: set[str] | None,
              drop: set[str]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k in _KEEP}
    for iri, name in names.items():
        if (keep is None or iri in keep) and iri not in drop:
            out[name] = doc[name]
    return out


class Writes:
    """The write handlers; ``plan`` maps (path, method) to a handler factory."""

    def __init__(self, d: Distributor) -> None:
        self.d = d

    def plan(self, reads: Reads) -> dict[tuple[str, str], Callable[[Handler], Handler]]:
        e, a = f"{BASE}/entities", f"{BASE}/entities/{{eid}}"
        ops = {
            (e, "POST"): "createEntity", (a, "PUT"): "replaceEntity",
            (a, "PATCH"): "mergeEntity", (a, "DELETE"): "deleteEntity",
            (f"{a}/attrs", "POST"): "appendAttrs", (f"{a}/attrs", "PATCH"): "updateEntity",
            (f"{a}/attrs/{{attr}}", "PATCH"): "updateAttrs",
            (f"{a}/attrs/{{attr}}", "PUT"): "replaceAttrs",
            (f"{a}/attrs/{{attr}}", "DELETE"): "deleteAttrs",
        }

        def single(op: str) -> Callable[[Handler], Handler]:
            return lambda h: lambda r: self.single(r, h, op)

        out: dict[tuple[str, str], Callable[[Handler], Handler]] = {
            k: single(op) for k, op in ops.items()}
        out[(e, "DELETE")] = lambda h: lambda r: self.purge(r, h)
        out[(f"{BASE}/entityOperations/{{op}}", "POST")] = (
            lambda h: lambda r: self.batch(r, h, reads))
        return out

    # -- planning ------------------------------------------------------------------------
    def plan_entity(self, call: Call, eid: str, etype: set[str] | None,
                    touched: set[str] | None, op: str) -> Plan:
        plan = Plan()
        for reg in call.regs:
            mode = mode_of(reg)
            if mode == "auxiliary":
                continue
            infos = entity_infos(reg, eid, etype)
            if not infos:
                continue
            attrs = registered_attrs(infos)
            if attrs is None:
                part = touched
            else:
                part = attrs if touched is None else touched & attrs
                if touched is not None and not part:
                    continue
            if mode in _OWNING:
                if call.loop:
                    raise LoopDetected(f"the request for {eid} already went through this "
                                       f"broker (registration {reg.get('id')})")
                if attrs is None:
                    plan.whole_remote = True
                else:
                    plan.owned |= part or set()
            elif call.loop:
                continue
            if not supports(reg, op):
                if mode in _OWNING:
                    plan.unsupported.append(reg)
                continue
            plan.parts.append(Part(reg, part if attrs is not None else None))
        return plan

    def _ctx(self, call: Call, request: Request, body: Any) -> Context:
        ctype = request.headers.get("content-type", "")
        item = body[0] if isinstance(body, list) and body else body
        if "ld+json" in ctype and isinstance(item, dict) and "@context" in item:
            try:
                return self.d.s.resolver.resolve(item["@context"])  # type: ignore[no-any-return]
            except ContextError:
                return call.ctx
        return call.ctx

    # -- single entity -------------------------------------------------------------------
    async def single(self, request: Request, local: Handler, op: str) -> Response:
        call = self.d.call_for(request)
        if call is None:
            return await local(request)
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return await local(_replay(request, raw))
        eid = request.path_params.get("eid")
        if eid is None:
            eid = body.get("id") if isinstance(body, dict) else None
        if not isinstance(eid, str) or (raw and not isinstance(body, dict)):
            return await local(_replay(request, raw))
        ctx = self._ctx(call, request, body)
        names = _expanded(body, ctx) if isinstance(body, dict) else {}
        attr = request.path_params.get("attr")
        touched: set[str] | None
        if attr is not None:
            touched = {ctx.expand_term(attr)}
        elif op in ("deleteEntity",):
            touched = None
        else:
            touched = set(names)
        plan = self.plan_entity(call, eid, _types(body, ctx), touched, op)
        if not plan.remote:
            return await local(_replay(request, raw))
        try:  # bad input is refused here, before any source sees it
            _check(op, body, ctx, eid, attr)
        except NgsiError as exc:
            return problem_response(exc, str(request.url.path))
        path = request.url.path[request.url.path.index(BASE) + len(BASE):]
        params = _forward_params(request, drop=("local",))
        ld = "ld+json" in request.headers.get("content-type", "")
        jobs = []
        for part in plan.parts:
            fwd = body
            if isinstance(body, dict) and part.attrs is not None and attr is None:
                fwd = _restrict(body, names, part.attrs, set())
            jobs.append(self.d.send(call, part.reg, request.method, quote(path, safe="/:"),
                                    params, fwd, ld=ld and isinstance(fwd, dict), ctx=ctx))
        local_req: Request | None = _replay(request, raw)
        if plan.whole_remote:
            local_req = None
        elif plan.owned and touched is not None:
            rest = touched - plan.owned
            if not rest and op != "deleteEntity":
                local_req = None
            elif isinstance(body, dict) and attr is None:
                trimmed = _restrict(body, names, None, plan.owned)
                local_req = _with_body(request, orjson.dumps(trimmed))
        answers, resp = await asyncio.gather(
            self.d.gather(jobs), local(local_req) if local_req is not None else _none())
        return self.combine(op, eid, resp, answers, plan.unsupported)

    def combine(self, op: str, eid: str, resp: Response | None, answers: list[Answer],
                unsupported: list[dict[str, Any]]) -> Response:
        """One answer from the local one and the sources': the usual success status when
        every part succeeded, a part's own error when there was one part, else 207 with
        ``success`` and ``errors`` (each naming the entity and, when remote, the
        registration)."""
        errors: list[dict[str, Any]] = []
        done = 0
        # attributes missing here (a local 207) count as done when a source did them all
        full_remote = any(a.ok and a.status != 207 for a in answers)
        if resp is not None:
            if resp.status_code < 300 and (resp.status_code != 207 or full_remote):
                done += 1
            else:
                errors.append({"entityId": eid, "error": _local_problem(resp)})
        for a in answers:
            if a.ok and a.status != 207:
                done += 1
            elif a.ok and len(answers) + len(unsupported) == 1 and resp is None:
                return json_response(a.body, 207, None, answers)  # the source's own 207
            else:
                errors.append({"entityId": eid, "registrationId": a.reg.get("id"),
                               "error": _remote_problem(a, op)})
        for reg in unsupported:
            errors.append({"entityId": eid, "registrationId": reg.get("id"),
                           "error": _problem(409, f"registration {reg.get('id')} does "
                                                  f"not support {op}")})
        if not errors:
            if resp is not None and resp.status_code != 207:
                return with_warnings(resp, answers)
            if op == "createEntity":
                out = Response(status_code=201, headers={
                    "Location": quote(f"{BASE}/entities/{eid}", safe="/:")})
                return with_warnings(out, answers)
            return with_warnings(Response(status_code=204), answers)
        if done + len(errors) == 1:
            if resp is not None:
                return with_warnings(resp, answers)
            err = errors[0]["error"]
            status = err.get("status") if isinstance(err.get("status"), int) else 500
            return json_response(err, status, None, answers)
        return json_response({"success": [eid] if done and eid else [], "errors": errors},
                             207, None, answers)

    # -- purge ---------------------------------------------------------------------------
    async def purge(self, request: Request, local: Handler) -> Response:
        call = self.d.call_for(request)
        if call is None:
            return await local(request)
        types = {call.ctx.expand_term(t)
                 for t in type_names(request.query_params.get("type"))} or None
        ids = set(request.query_params.get("id", "").split(",")) - {""} or None
        jobs, unsupported = [], []
        for reg in call.regs:
            if mode_of(reg) == "auxiliary" or not _query_infos(reg, types, ids):
                continue
            if call.loop:
                if mode_of(reg) in _OWNING:
                    raise LoopDetected("the purge already went through this broker")
                continue
            # a source that deletes entities one by one takes purges too
            if not (supports(reg, "purgeEntity") or supports(reg, "deleteEntity")):
                if mode_of(reg) in _OWNING:
                    unsupported.append(reg)
                continue
            jobs.append(self.d.send(call, reg, "DELETE", "/entities",
                                    _forward_params(request, drop=("local",))))
        if not jobs and not unsupported:
            return await local(request)
        answers, resp = await asyncio.gather(self.d.gather(jobs), local(request))
        return self.combine("purgeEntity", "", resp, answers, unsupported)

    # -- batch ---------------------------------------------------------------------------
    async def batch(self, request: Request, local: Handler, reads: Reads) -> Response:
        op = request.path_params.get("op", "")
        if op == "query":
            return await reads.query(request, local, post=True)
        call = self.d.call_for(request) if op in _BATCH_OPS else None
        if call is None:
            return await local(request)
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return await local(_replay(request, raw))
        if not isinstance(body, list):
            return await local(_replay(request, raw))
        ctx = self._ctx(call, request, body)
        bop = _BATCH_OPS[op]
        single_op = {"create": "createEntity", "upsert": "createEntity",
                     "update": "updateEntity", "delete": "deleteEntity",
                     "merge": "mergeEntity"}[op]
        per_reg: dict[str, tuple[dict[str, Any], list[Any]]] = {}
        local_items: list[Any] = []
        errors: list[dict[str, Any]] = []
        touched_any = False
        for item in body:
            eid = item if isinstance(item, str) else (
                item.get("id") if isinstance(item, dict) else None)
            if not isinstance(eid, str):
                local_items.append(item)
                continue
            names = _expanded(item, ctx) if isinstance(item, dict) else {}
            touched = set(names) if isinstance(item, dict) else None
            plan = Plan()
            for reg in call.regs:  # batch ops name both the batch and the entity operation
                if supports(reg, bop) and not supports(reg, single_op):
                    reg = {**reg, "operations": [*reg.get("operations", []), single_op]}
                plan_one = self.plan_entity(Call(call.request, call.tenant, call.ctx, [reg],
                                                 call.loop), eid, _types(item, ctx), touched,
                                            single_op)
                plan.parts += plan_one.parts
                plan.unsupported += plan_one.unsupported
                plan.owned |= plan_one.owned
                plan.whole_remote |= plan_one.whole_remote
            if plan.remote:
                touched_any = True
            for part in plan.parts:
                fwd = item
                if isinstance(item, dict) and part.attrs is not None:
                    fwd = _restrict(item, names, part.attrs, set())
                rid = str(part.reg.get("id"))
                per_reg.setdefault(rid, (part.reg, []))[1].append(fwd)
            for reg in plan.unsupported:
                errors.append({"entityId": eid, "error": {
                    "type": "https://uri.etsi.org/ngsi-ld/errors/Conflict", "status": 409,
                    "title": "Conflict",
                    "detail": f"registration {reg.get('id')} does not support {bop}"}})
            if plan.whole_remote:
                continue
            if plan.owned and isinstance(item, dict) and touched is not None:
                rest = touched - plan.owned
                if not rest:
                    continue
                local_items.append(_restrict(item, names, None, plan.owned))
            else:
                local_items.append(item)
        if not touched_any:
            return await local(_replay(request, raw))
        params = _forward_params(request, drop=("local",))
        ld = "ld+json" in request.headers.get("content-type", "")
        regs = list(per_reg.values())
        jobs = [self.d.send(call, reg, "POST", f"/entityOperations/{op}", params, items,
                            ld=ld, ctx=ctx) for reg, items in regs]
        local_req = _with_body(request, orjson.dumps(local_items)) if local_items else None
        answers, resp = await asyncio.gather(
            self.d.gather(jobs), local(local_req) if local_req is not None else _none())
        success: list[str] = []
        created = False
        if resp is not None:
            lb = body_of(resp)
            if resp.status_code == 201 and isinstance(lb, list):
                success += [i for i in lb if isinstance(i, str)]
                created = True
            elif resp.status_code == 204:
                success += [_id(i) for i in local_items]
            elif resp.status_code == 207 and isinstance(lb, dict):
                success += [i for i in lb.get("success", []) if isinstance(i, str)]
                errors += [e for e in lb.get("errors", []) if isinstance(e, dict)]
            else:
                return with_warnings(resp, answers)
        for (_reg, items), a in zip(regs, answers, strict=True):
            ids = [_id(i) for i in items]
            if a.ok and a.status == 207 and isinstance(a.body, dict):
                success += [i for i in a.body.get("success", []) if isinstance(i, str)]
                errors += [e for e in a.body.get("errors", []) if isinstance(e, dict)]
            elif a.ok:
                success += ids
                created = created or a.status == 201
            else:
                for eid in ids:
                    errors.append({"entityId": eid, "error": {
                        "type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                        "status": a.status or 504, "title": "Context source failed",
                        "detail": a.warning or f"status {a.status}"}})
        success = list(dict.fromkeys(success))
        failed = {e.get("entityId") for e in errors}
        success = [s for s in success if s not in failed]
        if not errors:
            if op == "create" or (op == "upsert" and created):
                return json_response(success, 201, None, answers)
            return with_warnings(Response(status_code=204), answers)
        return json_response({"success": success, "errors": errors}, 207, None, answers)


_TYPES = {400: "BadRequestData", 404: "ResourceNotFound", 409: "AlreadyExists",
          422: "OperationNotSupported"}


def _problem(status: int, detail: str) -> dict[str, Any]:
    name = "Conflict" if status == 409 else _TYPES.get(status, "InternalError")
    return {"type": f"https://uri.etsi.org/ngsi-ld/errors/{name}", "title": name,
            "status": status, "detail": detail}


def _local_problem(resp: Response) -> dict[str, Any]:
    body = body_of(resp)
    if isinstance(body, dict) and isinstance(body.get("status"), int):
        return body
    if resp.status_code == 207:  # attributes not updated here
        return _problem(404, f"not updated locally: {orjson.dumps(body).decode()}")
    return _problem(resp.status_code, "the local operation failed")


def _remote_problem(a: Answer, op: str) -> dict[str, Any]:
    if isinstance(a.body, dict) and isinstance(a.body.get("status"), int):
        return a.body
    if a.status == 207:
        return _problem(400, "the context source did not do all of it: "
                             + orjson.dumps(a.body).decode()[:500])
    if a.status >= 400:
        err = _problem(a.status, f"the context source answered {a.status}")
        if a.status == 409 and op in ("createEntity", "createBatch"):
            err["type"] = "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"
            err["title"] = "AlreadyExists"
        return err
    return _problem(504, a.warning or f"unexpected answer {a.status}")


def _id(item: Any) -> str:
    if isinstance(item, str):
        return item
    return str(item.get("id", "")) if isinstance(item, dict) else ""


def _check(op: str, body: Any, ctx: Context, eid: str, attr: str | None) -> None:
    """The checks the local handler makes, for a request that goes to sources too."""
    if not is_uri(eid):
        raise BadRequestData(f"entity id must be a URI, got {eid!r}")
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
    if op in ("createEntity", "replaceEntity"):
        doc = check_body_object({**body, "id": eid} if isinstance(body, dict) else body,
                                "an entity")
        check_entity_payload(doc, create=True)
        expand_entity(doc, ctx)
    elif op in ("appendAttrs", "updateEntity", "mergeEntity"):
        expand_fragment(body, ctx, partial=op == "mergeEntity")
    elif op in ("updateAttrs", "replaceAttrs") and attr is not None:
        if not isinstance(body, dict):
            raise BadRequestData("the payload must be a JSON object")
        check_entity_payload({attr: body}, create=False)


async def _none() -> None:
    return None


def _with_body(request: Request, raw: bytes) -> Request:
    """``request`` with another body (its Content-Length fixed)."""
    scope = dict(request.scope)
    scope["headers"] = [(k, v) for k, v in request.scope["headers"]
                        if k.lower() != b"content-length"]
    scope["headers"].append((b"content-length", str(len(raw)).encode()))
    return _replay(Request(scope, request.receive), raw)


__all__ = ["Writes"]
