"""Distributed type and attribute discovery (NGSI-LD 5.7.5 - 5.7.10): ``/types`` and
``/attributes`` also list what the registered context sources hold, asked with the
operations retrieveEntityTypes / retrieveEntityTypeDetails / retrieveEntityTypeInfo and
retrieveAttrTypes / retrieveAttrTypeDetails / retrieveAttrTypeInfo."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .distributed import (
    BASE,
    Answer,
    Distributor,
    Handler,
    _forward_params,
    body_of,
    json_response,
    supports,
    with_warnings,
)


class Discovery:
    """Handlers for the type and attribute routes."""

    def __init__(self, d: Distributor) -> None:
        self.d = d

    def plan(self) -> dict[tuple[str, str], Callable[[Handler], Handler]]:
        t, a = f"{BASE}/types", f"{BASE}/attributes"
        return {
            (t, "GET"): lambda h: lambda r: self.listing(r, h, "types"),
            (a, "GET"): lambda h: lambda r: self.listing(r, h, "attributes"),
            (f"{t}/{{type:path}}", "GET"): lambda h: lambda r: self.info(r, h, "types"),
            (f"{a}/{{attr:path}}", "GET"): lambda h: lambda r: self.info(r, h, "attributes"),
        }

    def _ops(self, kind: str, details: bool, info: bool) -> str:
        base = "retrieveEntityType" if kind == "types" else "retrieveAttrType"
        return base + ("Info" if info else "Details" if details else "s")

    async def _ask(self, request: Request, local: Handler, kind: str, info: bool
                   ) -> tuple[Response, list[Answer]] | None:
        call = self.d.call_for(request)
        if call is None or call.loop:
            return None
        op = self._ops(kind, request.query_params.get("details") == "true", info)
        regs = [r for r in call.regs if supports(r, op)]
        if not regs:
            return None
        path = request.url.path[request.url.path.index(BASE) + len(BASE):]
        params = _forward_params(request, drop=("local",))
        jobs = [self.d.send(call, reg, "GET", quote(path, safe="/:"), params) for reg in regs]
        answers, resp = await asyncio.gather(self.d.gather(jobs), local(request))
        return resp, answers

    async def listing(self, request: Request, local: Handler, kind: str) -> Response:
        got = await self._ask(request, local, kind, info=False)
        if got is None:
            return await local(request)
        resp, answers = got
        if resp.status_code != 200:
            return with_warnings(resp, answers)
        body = body_of(resp)
        remote = [a.body for a in answers if a.ok]
        key = "typeList" if kind == "types" else "attributeList"
        if isinstance(body, dict) and isinstance(body.get(key), list):
            names = list(body[key])
            for rb in remote:
                if isinstance(rb, dict) and isinstance(rb.get(key), list):
                    names += [n for n in rb[key] if isinstance(n, str) and n not in names]
            return json_response({**body, key: sorted(names)}, 200, resp, answers)
        if isinstance(body, list):  # details: one object per type / attribute
            by_id = {str(i.get("id")): i for i in body if isinstance(i, dict)}
            for rb in remote:
                for item in rb if isinstance(rb, list) else []:
                    if isinstance(item, dict) and "id" in item:
                        by_id[str(item["id"])] = _merge_detail(by_id.get(str(item["id"])),
                                                               item)
            return json_response(sorted(by_id.values(), key=lambda i: str(i.get("id"))),
                                 200, resp, answers)
        return with_warnings(resp, answers)

    async def info(self, request: Request, local: Handler, kind: str) -> Response:
        got = await self._ask(request, local, kind, info=True)
        if got is None:
            return await local(request)
        resp, answers = got
        remote = [a.body for a in answers if a.ok and isinstance(a.body, dict)]
        if not remote:
            return with_warnings(resp, answers)
        base = body_of(resp) if resp.status_code == 200 else None
        out: dict[str, Any] = base if isinstance(base, dict) else {}
        for rb in remote:
            out = _merge_detail(out or None, rb)
        return json_response(out, 200, resp if isinstance(base, dict) else None, answers)


def _merge_detail(mine: dict[str, Any] | None, other: dict[str, Any]) -> dict[str, Any]:
    """Two descriptions of one type or attribute: counts added, name lists joined."""
    if mine is None:
        return dict(other)
    out = dict(mine)
    for key, value in other.items():
        if key not in out:
            out[key] = value
        elif key in ("entityCount", "attributeCount") and isinstance(value, int) and (
                isinstance(out[key], int)):
            out[key] = out[key] + value
        elif isinstance(value, list) and isinstance(out[key], list):
            seen = [_key(v) for v in out[key]]
            out[key] = out[key] + [v for v in value if _key(v) not in seen]
    return out


def _key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


__all__ = ["Discovery"]
