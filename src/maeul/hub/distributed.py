"""Distributed operations (NGSI-LD 4.3.6): requests on the entity API that match a context
source registration are forwarded to the registered endpoint and the answers merged with
the local ones.

The forwarding layer wraps the entity routes (``distribute_routes``); with no registration
in a tenant (a cached check) or with ``local=true`` it calls the local handler directly, so
a hub without registrations pays one dict look-up per request. This module holds the
registrations cache, the HTTP calls and the merging; reads are in ``distributed_reads``,
writes in ``distributed_writes``, type and attribute discovery in ``distributed_types``."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .csource_subs import REG
from .csources import as_entity, attr_names, expired, mode_of, operations_of, q_expand
from .errors import BadRequestData, InternalError, NgsiError
from .http import DEFAULT_TENANT, TENANT_HEADER, link_context, problem_response
from .ldcontext import CORE_CONTEXT_URL, Context, ContextError, link_header
from .query import QueryError, compile_q, parse_q

log = logging.getLogger(__name__)
BASE = "/ngsi-ld/v1"
Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_TIMEOUT_S = 3.0
CACHE_TTL_S = 10.0
# headers a contextSourceInfo pair may not set (6.3.x: binding information is the broker's)
_RESERVED = frozenset({"ngsild-tenant", "via", "content-length", "content-type", "host",
                       "link", "accept", "transfer-encoding", "connection"})
_ENTITY_KEYS = frozenset({"id", "type", "@context", "scope"})
_STEERING = frozenset({"contentType", "jsonldContext", "accept"})


MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a larger answer is not incorporated (warning 111)


class _TooLarge(Exception):
    pass


class LoopDetected(NgsiError):
    """A request came back to this broker through a registration (6.3.17)."""

    type_name, status, title = "LoopDetected", 508, "Loop detected"


@dataclass
class Answer:
    """What one context source answered (or why it did not)."""

    reg: dict[str, Any]
    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.warning is None and 200 <= self.status < 300


@dataclass
class Call:
    """One incoming request that matches registrations."""

    request: Request
    tenant: str
    ctx: Context
    regs: list[dict[str, Any]]
    loop: bool
    raw: bytes = b""


class Distributor:
    """Registrations per tenant (cached) and the HTTP calls to context sources."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.via_id = f"maeul-{uuid.uuid4().hex[:12]}"
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._cooling: dict[str, float] = {}  # registration id -> monotonic time it may retry
        self._generation = 0  # bumped by every invalidation: a read racing one is not cached

    # -- registrations -------------------------------------------------------------------
    def invalidate(self, tenant: str | None = None) -> None:
        self._generation += 1
        if tenant is None:
            self._cache.clear()
        else:
            self._cache.pop(tenant, None)

    def registrations(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's registrations; the list is cached, invalidated on every change made
        through this process and refreshed after CACHE_TTL_S (other replicas)."""
        now = time.monotonic()
        hit = self._cache.get(tenant)
        if hit is not None and hit[0] > now:
            docs = hit[1]
        else:
            gen = self._generation
            docs = [d for _t, _k, d in self.s.store.reader().list_json(REG, tenant)]
            if gen == self._generation:
                self._cache[tenant] = (now + CACHE_TTL_S, docs)
        if not docs:
            return docs
        return [d for d in docs if not expired(d)]

    def call_for(self, request: Request) -> Call | None:
        """The registrations that may take part in this request, or None (serve locally)."""
        if request.query_params.get("local") == "true":
            return None
        tenant = request.headers.get(TENANT_HEADER) or DEFAULT_TENANT
        regs = self.registrations(tenant)
        if not regs:
            return None
        via = request.headers.get("via", "")
        loop = self.via_id in via
        try:
            ctx = self.s.resolver.resolve(link_context(request))
        except (ContextError, NgsiError):
            return None  # the local handler reports the bad @context
        return Call(request, tenant, ctx, regs, loop)

    # -- forwarding ----------------------------------------------------------------------
    def csf_filter(self, call: Call, expr: str) -> list[dict[str, Any]]:
        """The registrations a Context Source filter (csf) selects."""
        try:
            pred = compile_q(parse_q(expr), q_expand(call.ctx))
        except QueryError as exc:
            raise BadRequestData(f"invalid csf: {exc}") from None
        return [r for r in call.regs if pred(as_entity(r))]

    @staticmethod
    def steering(reg: dict[str, Any]) -> dict[str, str]:
        """The contextSourceInfo pairs that steer the request itself (4.3.6.6):
        contentType, jsonldContext, accept."""
        out = {}
        for pair in reg.get("contextSourceInfo") or []:
            key = str(pair.get("key", ""))
            if key in _STEERING:
                out[key] = str(pair.get("value", ""))
        return out

    def headers_for(self, call: Call, reg: dict[str, Any]) -> dict[str, str]:
        req = call.request
        out: dict[str, str] = {}
        for pair in reg.get("contextSourceInfo") or []:
            key, value = str(pair.get("key", "")), str(pair.get("value", ""))
            if not key or key.lower() in _RESERVED or key in _STEERING:
                continue
            if value == "urn:ngsi-ld:request":
                if key.lower() in req.headers:
                    out[key] = req.headers[key.lower()]
                continue
            out[key] = value
        prev = req.headers.get("via")
        out["Via"] = f"{prev}, 1.1 {self.via_id}" if prev else f"1.1 {self.via_id}"
        if reg.get("tenant"):
            out["NGSILD-Tenant"] = str(reg["tenant"])
        accept = req.headers.get("accept", "application/json")
        out["Accept"] = "application/ld+json" if "ld+json" in accept else "application/json"
        return out

    def shape(self, call: Call, reg: dict[str, Any], headers: dict[str, str],
              params: list[tuple[str, str]], body: Any, ld: bool, ctx: Context | None
              ) -> tuple[list[tuple[str, str]], Any]:
        """Content-Type, Link and @context of a forwarded request, as the registration's
        contentType / jsonldContext / accept ask (default: as the request came)."""
        steer = self.steering(reg)
        src = ctx or call.ctx
        if steer.get("accept"):
            headers["Accept"] = steer["accept"]
        target = steer.get("jsonldContext")
        if target:
            try:
                dst = self.s.resolver.resolve(target)
            except ContextError:
                dst = None
            if dst is not None:
                body = _recompact(body, src, dst)
                params = [(k, _recompact_names(v, src, dst) if k in ("attrs", "type") else v)
                          for k, v in params]
                headers["Link"] = link_header(target)
                if body is not None:
                    headers["Content-Type"] = "application/json"
                return params, body
        source = src.source if src.source is not None else CORE_CONTEXT_URL
        if isinstance(source, list) and len(source) == 1 and isinstance(source[0], str):
            source = source[0]
        # by default a payload travels as JSON with its @context in a Link header (6.3.5)
        ld = "ld+json" in steer["contentType"] if steer.get("contentType") else False
        if body is not None and not isinstance(source, str):
            ld = True  # an inline @context cannot travel in a Link header
        if body is not None:
            if ld:
                body = _with_context(body, source)
                headers["Content-Type"] = "application/ld+json"
                return params, body
            body = _strip_context(body)
            headers["Content-Type"] = "application/json"
        link = call.request.headers.get("link")
        if link and body is None:
            headers["Link"] = link
        elif isinstance(source, str) and source != CORE_CONTEXT_URL:
            headers["Link"] = link_header(source)
        return params, body

    def url_for(self, reg: dict[str, Any], path: str, params: list[tuple[str, str]]) -> str:
        url = str(reg["endpoint"]).rstrip("/") + BASE + path
        return f"{url}?{urlencode(params, safe=':,/')}" if params else url

    @staticmethod
    def timeout_of(reg: dict[str, Any]) -> float:
        ms = (reg.get("management") or {}).get("timeout")
        return float(ms) / 1000.0 if ms else DEFAULT_TIMEOUT_S

    @staticmethod
    def local_only(reg: dict[str, Any]) -> bool:
        if (reg.get("management") or {}).get("localOnly"):
            return True
        props = reg.get("properties") or {}
        return any(k.endswith("localOnly") and v in (True, "true") for k, v in props.items())

    async def send(self, call: Call, reg: dict[str, Any], method: str, path: str,
                   params: list[tuple[str, str]] | None = None, body: Any = None,
                   ld: bool = False, ctx: Context | None = None) -> Answer:
        """One request to a context source; never raises, never waits past its timeout."""
        ans = Answer(reg)
        rid = str(reg.get("id"))
        until = self._cooling.get(rid)
        if until is not None and until > time.monotonic():
            ans.warning = f'111 {rid} "context source in cooldown after a failure"'
            return ans
        params = list(params or [])
        if self.local_only(reg) and not any(k == "local" for k, _ in params):
            params.append(("local", "true"))
        headers = self.headers_for(call, reg)
        params, body = self.shape(call, reg, headers, params, body, ld, ctx)
        url = self.url_for(reg, path, params)
        content = orjson.dumps(body) if body is not None else None
        timeout = self.timeout_of(reg)
        try:
            resp, raw = await asyncio.wait_for(
                self._fetch(method, url, headers, content, timeout), timeout + 1.0)
        except _TooLarge:
            ans.warning = f'111 {rid} "answer from {_short(url)} over {MAX_ANSWER_BYTES} bytes"'
            return ans
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            log.info("context source %s (%s) did not answer: %s", rid, url, type(exc).__name__)
            ans.warning = f'111 {rid} "no answer from {_short(url)}: {type(exc).__name__}"'
            self._cool(reg)
            return ans
        ans.status = resp.status_code
        ans.headers = dict(resp.headers)
        if raw:
            try:
                ans.body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                if 200 <= resp.status_code < 300:
                    ans.warning = f'111 {rid} "invalid payload from {_short(url)}"'
                    return ans
        if resp.status_code >= 400 and resp.status_code != 404:
            ans.warning = f'299 {rid} "error {resp.status_code} from {_short(url)}"'
            self._cool(reg)
        return ans

    async def _fetch(self, method: str, url: str, headers: dict[str, str],
                     content: bytes | None, timeout: float) -> tuple[httpx.Response, bytes]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            async with client.stream(method, url, headers=headers, content=content) as resp:
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise _TooLarge
                    chunks.append(chunk)
                return resp, b"".join(chunks)

    def _cool(self, reg: dict[str, Any]) -> None:
        ms = (reg.get("management") or {}).get("cooldown")
        if ms:
            self._cooling[str(reg.get("id"))] = time.monotonic() + float(ms) / 1000.0

    async def gather(self, jobs: Sequence[Awaitable[Answer]]) -> list[Answer]:
        return list(await asyncio.gather(*jobs)) if jobs else []


def _short(url: str) -> str:
    return url.split("?", 1)[0].replace('"', "")


def _with_context(body: Any, source: Any) -> Any:
    if isinstance(body, dict):
        return body if "@context" in body else {**body, "@context": source}
    if isinstance(body, list):
        return [_with_context(b, source) if isinstance(b, dict) else b for b in body]
    return body


def _strip_context(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k != "@context"}
    if isinstance(body, list):
        return [_strip_context(b) for b in body]
    return body


def _recompact_names(value: str, src: Context, dst: Context) -> str:
    return ",".join(dst.compact_iri(src.expand_term(n)) if n else n
                    for n in value.split(","))


def _recompact(body: Any, src: Context, dst: Context) -> Any:
    """An entity (or list of them, or a Query) with its attribute names and types
    re-compacted from ``src`` to ``dst``, without @context."""
    if isinstance(body, list):
        return [_recompact(b, src, dst) for b in body]
    if not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "@context":
            continue
        if key == "type":
            if isinstance(value, str):
                value = dst.compact_iri(src.expand_term(value))
            elif isinstance(value, list):
                value = [dst.compact_iri(src.expand_term(v)) if isinstance(v, str) else v
                         for v in value]
            out[key] = value
        elif key in _ENTITY_KEYS or key in ("entities", "q", "attrs", "geoQ"):
            out[key] = value
        else:
            out[dst.compact_iri(src.expand_term(key))] = value
    return out


# -- matching ------------------------------------------------------------------------------
def supports(reg: dict[str, Any], op: str) -> bool:
    return op in operations_of(reg)


def entity_infos(reg: dict[str, Any], eid: str, etype: set[str] | None = None
                 ) -> list[dict[str, Any]]:
    """The RegistrationInfo items of ``reg`` that cover entity ``eid``."""
    return _query_infos(reg, etype, {eid})


def _id_matches(pattern: str, value: str) -> bool:
    """idPattern as most brokers read it: a regular expression matched from the start."""
    try:
        return re.match(pattern, value) is not None
    except re.error:
        return False


def registered_attrs(infos: list[dict[str, Any]]) -> set[str] | None:
    """The attribute IRIs the infos name; None when one of them covers every attribute."""
    out: set[str] = set()
    for info in infos:
        names = attr_names(info)
        if not names:
            return None
        out |= set(names)
    return out


def type_names(expr: str | None) -> list[str]:
    """The type names of a type expression (A,B / A|B / A;B / parentheses)."""
    if not expr:
        return []
    return [t for t in re.split(r"[,;|()]", expr) if t.strip()]


# -- merging -------------------------------------------------------------------------------
def _stamp(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("observedAt") or value.get("modifiedAt") or "")
    return ""


def merge_entity(base: dict[str, Any], extra: dict[str, Any],
                 owned: Callable[[str], bool], fill_only: bool = False) -> dict[str, Any]:
    """``base`` with the attributes of ``extra``: an attribute both have keeps the most
    recent (observedAt, then modifiedAt), or the remote one where a registration owns it
    (exclusive, redirect); with ``fill_only`` (an auxiliary source) only missing
    attributes are added."""
    out = dict(base)
    for key, value in extra.items():
        if key in ("id", "@context"):
            continue
        if key == "type":
            mine = out.get("type")
            if mine is None:
                out["type"] = value
            elif mine != value:
                a = mine if isinstance(mine, list) else [mine]
                b = value if isinstance(value, list) else [value]
                out["type"] = a + [t for t in b if t not in a]
            continue
        if key not in out or (not fill_only and (
                owned(key) or _stamp(value) > _stamp(out[key]))):
            out[key] = value
    return out


def aux_last(answers: list[Answer]) -> list[Answer]:
    """Answers in merge order: auxiliary sources last, so others take precedence."""
    return sorted(answers, key=lambda a: mode_of(a.reg) == "auxiliary")


def warning_header(answers: list[Answer]) -> str | None:
    warns = [a.warning for a in answers if a.warning]
    return ", ".join(warns) if warns else None


def with_warnings(resp: Response, answers: list[Answer]) -> Response:
    warn = warning_header(answers)
    if warn:
        resp.headers["NGSILD-Warning"] = warn
    return resp


def json_response(body: Any, status: int, template: Response | None,
                  answers: list[Answer]) -> Response:
    """A JSON response with the local response's headers (Link, Content-Type)."""
    headers = {}
    media = "application/json"
    if template is not None:
        for k, v in template.headers.items():
            if k.lower() in ("link", "ngsild-results-count"):
                headers[k] = v
        media = template.media_type or template.headers.get("content-type", media)
    resp = Response(orjson.dumps(body), status_code=status, media_type=media, headers=headers)
    return with_warnings(resp, answers)


def body_of(resp: Response) -> Any:
    try:
        return orjson.loads(bytes(resp.body)) if resp.body else None
    except orjson.JSONDecodeError:
        return None


def _forward_params(request: Request, drop: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k not in drop]


def _query_infos(reg: dict[str, Any], types: set[str] | None, ids: set[str] | None
                 ) -> list[dict[str, Any]]:
    """The RegistrationInfo items of ``reg`` that may hold entities of ``types`` with ``ids``
    (None: any)."""
    out = []
    for info in reg.get("information", []):
        ents = info.get("entities")
        if not ents:
            out.append(info)
            continue
        for e in ents:
            if types and e.get("type") not in types:
                continue
            if ids and "id" in e and e["id"] not in ids:
                continue
            if ids and "idPattern" in e and not any(_id_matches(e["idPattern"], i)
                                                    for i in ids):
                continue
            out.append(info)
            break
    return out


def _replay(request: Request, raw: bytes) -> Request:
    """A request whose body can be read again (the first reader consumed the stream)."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(request.scope, receive)


# -- wiring --------------------------------------------------------------------------------
def distribute_routes(routes: list[BaseRoute], services: Any) -> list[BaseRoute]:
    """The entity routes, wrapped so that matching requests reach context sources."""
    from .distributed_reads import Reads
    from .distributed_types import Discovery
    from .distributed_writes import Writes

    d = Distributor(services)
    services.distributor = d
    services.csources.on_change.append(d.invalidate)
    reads, writes = Reads(d), Writes(d)
    plan: dict[tuple[str, str], Callable[[Handler], Handler]] = {
        (f"{BASE}/entities", "GET"): lambda h: lambda r: reads.query(r, h),
        (f"{BASE}/entities/{{eid}}", "GET"): lambda h: lambda r: reads.retrieve(r, h),
    }
    plan.update(writes.plan(reads))
    plan.update(Discovery(d).plan())
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and route.methods:
            method = next((m for m in route.methods if m != "HEAD"), "")
            make = plan.get((route.path, method))
            if make is not None:
                out.append(Route(route.path, _guard(make(route.endpoint)),
                                 methods=[method], name=route.name))
                continue
        out.append(route)
    return out


def _guard(fn: Handler) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            return await fn(request)
        except NgsiError as exc:
            return problem_response(exc, str(request.url.path))
        except Exception:
            log.exception("distributed %s %s failed", request.method, request.url.path)
            return problem_response(InternalError("internal error; see the server log"))

    handler.__name__ = getattr(fn, "__name__", "distributed")
    return handler


__all__ = ["Answer", "Call", "Distributor", "LoopDetected", "distribute_routes",
           "merge_entity"]
