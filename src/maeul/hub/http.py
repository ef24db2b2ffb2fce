"""HTTP plumbing shared by the API modules: body parsing, @context negotiation, responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .auth import ADMIN, Caller
from .errors import (
    BadRequestData,
    InvalidRequest,
    LdContextNotAvailable,
    NgsiError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from .ldcontext import (
    CORE_CONTEXT_URL,
    Context,
    ContextError,
    ContextResolver,
    link_header,
    parse_link_header,
)

JSON = "application/json"
LD = "application/ld+json"
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
TENANT_HEADER = "ngsild-tenant"
DEFAULT_TENANT = "default"


@dataclass
class Req:
    """What every NGSI-LD handler needs from a request."""

    tenant: str
    caller: Caller
    ctx: Context
    accept: str
    body: Any = None
    body_json: bool = False  # Prefer: body=json (GeoJSON without @context in the body)


def request_caller(services: Any, request: Request) -> Caller:
    """The caller of a request: its API key (Bearer or X-API-Key) verified, or anonymous;
    admin for every request when the settings turn authentication off (tests only)."""
    if not services.settings.auth_enabled:
        return ADMIN
    auth = request.headers.get("authorization", "")
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    key = key or request.headers.get("x-api-key")
    caller: Caller = services.keys.verify(key)
    return caller


def problem_response(err: NgsiError, instance: str | None = None) -> Response:
    body = orjson.dumps(err.problem(instance))
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return Response(body, status_code=err.status, media_type="application/json",
                    headers=headers)


def check_tenant(t: str, name: str = "NGSILD-Tenant") -> str:
    """``t`` if it is a well-formed tenant name; BadRequestData naming ``name`` otherwise."""
    if len(t) > 64 or not all(c.isalnum() or c in "-_." for c in t):
        raise BadRequestData(f"{name} must be up to 64 letters, digits, '-', '_' or '.'")
    return t


def tenant_of(request: Request) -> str:
    return check_tenant(request.headers.get(TENANT_HEADER) or DEFAULT_TENANT)


def negotiate(request: Request, allow_geojson: bool = False) -> str:
    """The representation for a request's Accept header (clause 6.3.4).

    Each offer takes the weight of the most specific media range that matches it (RFC 9110
    5.3.2: ``q=0`` refuses it, a malformed q keeps the default 1); the heaviest offer wins
    and a tie goes to the first of application/json, application/ld+json,
    application/geo+json (the order 6.3.4 makes significant)."""
    header = request.headers.get("accept")
    if not header:
        return JSON
    plain = header.strip().lower()
    if plain in (JSON, "*/*", "application/*"):
        return JSON
    if plain == LD:
        return LD
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        bits = part.split(";")
        media = bits[0].strip().lower()
        if not media:
            continue
        weight = 1.0
        for param in bits[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    w = float(value.strip())
                except ValueError:
                    continue
                if 0.0 <= w <= 1.0:
                    weight = w
        ranges.append((media, weight))
    best, best_weight = None, 0.0
    for offer in (JSON, LD, GEOJSON) if allow_geojson else (JSON, LD):
        rank, weight = -1, 0.0
        for media, w in ranges:
            r = 2 if media == offer else 1 if media == "application/*" else \
                0 if media == "*/*" else -1
            if r > rank or (r == rank and r >= 0 and w > weight):
                rank, weight = r, w
        if rank >= 0 and weight > best_weight:
            best, best_weight = offer, weight
    if best is None:
        raise NotAcceptable(f"cannot produce any of: {header}")
    return best


def prefers_body_json(request: Request) -> bool:
    """``Prefer: body=json`` (clause 6.3.6): a GeoJSON answer carries its @context in the
    Link header instead of the body."""
    prefer = request.headers.get("prefer")
    if not prefer:
        return False
    return any(p.split(";")[0].strip().lower().replace(" ", "") == "body=json"
               for p in prefer.split(","))


def resolve_ctx(resolver: ContextResolver, source: Any) -> Context:
    try:
        return resolver.resolve(source, count=True)  # a request uses it (numberOfHits)
    except ContextError as exc:
        if exc.kind == "LdContextNotAvailable":
            raise LdContextNotAvailable(str(exc)) from None
        raise BadRequestData(f"invalid @context: {exc}") from None


def link_context(request: Request) -> Any:
    raw = request.headers.get("link")
    if not raw:
        return None
    try:
        return parse_link_header(raw)
    except ContextError as exc:
        raise BadRequestData(f"invalid Link header: {exc}") from None


async def read_json(
    request: Request, max_bytes: int, allowed: tuple[str, ...] = (JSON, LD),
    too_large: str = "request body larger than {} bytes",
) -> tuple[Any, str]:
    """The parsed JSON body and its media type: 415 for another Content-Type, 413 past
    ``max_bytes`` (declared or streamed), InvalidRequest for an empty or malformed body."""
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type must be one of {', '.join(allowed)}, got {ctype or 'nothing'}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(too_large.format(max_bytes))
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(too_large.format(max_bytes))
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise InvalidRequest("the request body is empty")
    try:
        return orjson.loads(raw), ctype
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None


async def read_body(
    request: Request, max_bytes: int, allowed: tuple[str, ...] = (JSON, LD)
) -> tuple[Any, Any]:
    """The parsed JSON body and its @context (from the body or the Link header)."""
    body, ctype = await read_json(request, max_bytes, allowed)
    ctx_source: Any = None
    if ctype == LD:
        if isinstance(body, dict):
            if "@context" not in body:
                raise BadRequestData("application/ld+json needs @context in the body")
            ctx_source = body.pop("@context")
        elif isinstance(body, list):
            dicts = [i for i in body if isinstance(i, dict)]
            # a batch delete is a plain array of ids: it has no member to carry @context
            for item in dicts:
                if "@context" not in item:
                    raise BadRequestData("application/ld+json needs @context in every item")
            ctx_source = dicts[0]["@context"] if dicts else None
            for item in dicts:
                item.pop("@context")
        if request.headers.get("link"):
            raise BadRequestData("a Link header is not allowed with application/ld+json")
    else:
        items = body if isinstance(body, list) else [body]
        if any(isinstance(i, dict) and "@context" in i for i in items):
            raise BadRequestData("@context in the body needs Content-Type application/ld+json")
        ctx_source = link_context(request)
    return body, ctx_source


def respond(
    data: Any,
    req: Req,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """JSON, JSON-LD (with @context) or GeoJSON, echoing the requester's context."""
    hdrs = dict(headers or {})
    source = req.ctx.source
    if req.accept == GEOJSON and not req.body_json and isinstance(data, dict):
        # 6.3.15: a GeoJSON body carries the @context unless Prefer: body=json
        ctx_out = source if source is not None else CORE_CONTEXT_URL
        data = {**data, "@context": [ctx_out] if isinstance(ctx_out, str) else ctx_out}
        media = GEOJSON
    elif req.accept == LD:
        ctx_out = source if source is not None else CORE_CONTEXT_URL
        if isinstance(data, list):
            data = [{**d, "@context": ctx_out} if isinstance(d, dict) else d for d in data]
        elif isinstance(data, dict):
            data = {**data, "@context": ctx_out}
        media = LD
    else:
        url = source if isinstance(source, str) else CORE_CONTEXT_URL
        hdrs["Link"] = link_header(url)
        media = GEOJSON if req.accept == GEOJSON else JSON
    return Response(orjson.dumps(data), status_code=status, media_type=media, headers=hdrs)


def no_content(headers: dict[str, str] | None = None, status: int = 204) -> Response:
    if headers and "Location" in headers:
        # ids may hold any Unicode; a header must be ASCII
        headers = {**headers, "Location": quote(headers["Location"], safe="/:@!$&'()*+,;=-._~")}
    return Response(status_code=status, headers=headers)


def body_attrs(body: dict[str, Any]) -> list[str]:
    """The `attrs` member of a query body: a name or a list of names."""
    attrs = body["attrs"]
    if isinstance(attrs, str):
        attrs = [attrs]
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        raise BadRequestData("attrs must be a list of attribute names")
    return attrs


def qparam_list(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    items = [p.strip() for p in raw.split(",") if p.strip()]
    if not items:
        raise BadRequestData(f"{name} must not be empty")
    return items


def qparam_int(request: Request, name: str, default: int, lo: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequestData(f"{name} must be an integer") from None
    if v < lo:
        raise BadRequestData(f"{name} must be at least {lo}")
    return v


def options_of(request: Request) -> set[str]:
    raw = request.query_params.get("options", "")
    return {o.strip() for o in raw.split(",") if o.strip()}
