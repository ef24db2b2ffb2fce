"""HTTP adapter for @context management, ``/ngsi-ld/v1/jsonldContexts`` (ETSI GS CIM 009 v1.8,
5.13): Add, List, Serve, Delete and Reload. The store of entries is ``contexts.py``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .api import BASE, Api
from .auth import Caller
from .contexts import CACHED, CORE_ID, KINDS, PATH, Contexts, Entry, needs_implicit
from .errors import (
    BadRequestData,
    InvalidRequest,
    OperationNotSupported,
    ResourceNotFound,
    Unauthorized,
)
from .http import Req, negotiate, no_content, read_json, tenant_of


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise BadRequestData(f"{name} must be true or false, got {raw!r}")


def base_url(api: Api, request: Request) -> str:
    """Where clients reach the hub: ``public_url`` when set, else as this request did."""
    return str(api.settings.public_url or request.base_url).rstrip("/")


class ContextsApi:
    """Route handlers of the @context store."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.contexts: Contexts = api.s.contexts

    def _caller(self, request: Request, right: str) -> tuple[str, Caller]:
        tenant = tenant_of(request)
        caller = self.api.caller(request)
        caller.require(tenant, right)
        return tenant, caller

    def _url(self, request: Request, entry: Entry) -> str:
        return entry.url or f"{base_url(self.api, request)}{PATH}{entry.local_id}"

    async def _body(self, request: Request) -> Any:
        body, _ = await read_json(request, self.contexts.resolver.max_bytes,
                                  too_large="an @context may hold at most {} bytes")
        return body

    async def add_context(self, request: Request) -> Response:
        """Add @context: keep a Hosted @context (5.13.2)."""
        tenant, caller = self._caller(request, "write")
        body = await self._body(request)
        if not isinstance(body, dict) or "@context" not in body:
            raise InvalidRequest("the body must be a JSON object with an @context member")
        extra = sorted(k for k in body if k != "@context")
        if extra:
            raise BadRequestData(f"the body may only hold @context, not {extra}")
        value = body["@context"]
        # resolving may download the URLs it names: not on the event loop
        await run_in_threadpool(self.contexts.check, value)
        lid = await self.api.write(lambda: self.contexts.add(tenant, caller.actor, value))
        return no_content({"Location": f"{PATH}{lid}"}, status=201)

    async def list_contexts(self, request: Request) -> Response:
        """List @contexts: their URLs, or their metadata with details=true (5.13.3)."""
        tenant, caller = self._caller(request, "read")
        if caller.anonymous:
            raise Unauthorized("listing @contexts needs an API key")
        details = _flag(request, "details")
        kind = request.query_params.get("kind")
        if kind is not None and kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        media = negotiate(request)
        entries = self.contexts.entries(tenant, kind)
        body: list[Any] = [
            self.contexts.details(e, self._url(request, e)) if details else self._url(request, e)
            for e in entries
        ]
        return Response(orjson.dumps(body), media_type=media)

    async def serve_context(self, request: Request) -> Response:
        """Serve @context: a Hosted or ImplicitlyCreated @context, or any entry's metadata
        with details=true (5.13.4)."""
        tenant, _caller = self._caller(request, "read")
        details = _flag(request, "details")
        media = negotiate(request)
        cid = request.path_params["contextId"]
        entry = self.contexts.find(tenant, cid)
        if entry is None:
            raise ResourceNotFound(f"no @context {cid!r}")
        if details:
            body: Any = self.contexts.details(entry, self._url(request, entry))
        elif entry.context is None:
            raise OperationNotSupported(
                f"a Cached @context is not served here; its original is at {entry.url}")
        else:
            body = {"@context": entry.context}
        return Response(orjson.dumps(body), media_type=media)

    async def delete_context(self, request: Request) -> Response:
        """Delete an @context, or with reload=true download a Cached one again (5.13.5)."""
        tenant, caller = self._caller(request, "write")
        reload = _flag(request, "reload")
        cid = request.path_params["contextId"]
        entry = self.contexts.find(tenant, cid)
        if reload:
            if entry is None or entry.kind != CACHED:
                what = "unknown" if entry is None else f"of kind {entry.kind}"
                raise BadRequestData(f"only a Cached @context can be reloaded; {cid!r} is {what}")
            caller.require(tenant, "admin")  # the Cached ones are shared by every tenant
            await run_in_threadpool(self.contexts.reload, tenant, caller.actor, entry)
            return no_content()
        if entry is None:
            raise ResourceNotFound(f"no @context {cid!r}")
        if entry.kind == CACHED and entry.local_id != CORE_ID:
            caller.require(tenant, "admin")
        await self.api.write(lambda: self.contexts.delete(tenant, caller.actor, entry))
        return no_content()


async def implicit_context(api: Api, request: Request, r: Req) -> str | None:
    """For a request (a subscription) whose @context is not one URL: the URL of the
    ImplicitlyCreated @context holding it, made when missing (5.13.1); else None."""
    source = r.ctx.source
    if not needs_implicit(source):
        return None
    contexts: Contexts = api.s.contexts
    lid = await api.write(lambda: contexts.implicit(r.tenant, r.caller.actor, source))
    return f"{base_url(api, request)}{PATH}{lid}"


def context_routes(api: Api) -> list[BaseRoute]:
    c = ContextsApi(api)
    w = api.wrap
    one = f"{BASE}/jsonldContexts/{{contextId:path}}"
    return [
        Route(f"{BASE}/jsonldContexts", w(c.list_contexts), methods=["GET"]),
        Route(f"{BASE}/jsonldContexts", w(c.add_context), methods=["POST"]),
        Route(one, w(c.serve_context), methods=["GET"]),
        Route(one, w(c.delete_context), methods=["DELETE"]),
    ]


__all__ = ["ContextsApi", "base_url", "context_routes", "implicit_context"]
