"""HTTP routes of the civic desk.

- Open311 GeoReport v2 (``/open311/v2``): discovery, service list, service definitions,
  POST and GET requests, one request; ``.json`` or ``.xml``. Errors are Open311 error lists
  (``[{"code": 400, "description": "..."}]``) with the HTTP status, as Open311 clients expect.
  ``jurisdiction_id`` selects the tenant (else the ``NGSILD-Tenant`` header). An ``api_key``
  parameter is read like the ``X-API-Key`` header.
- maeul's own (``/civic/v1``): routing preview, grounded answers, confirming a category,
  operators' status changes and re-routing, photos.
"""

from __future__ import annotations

import hashlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...hub.api import Api
from ...hub.errors import BadRequestData, Forbidden, NgsiError, ResourceNotFound
from ...hub.http import TENANT_HEADER, check_tenant, tenant_of
from ...trust.http import TrustApi

log = logging.getLogger(__name__)
O311 = "/open311/v2"
BASE = "/civic/v1"
Handler = Callable[[Request], Awaitable[Response]]
_MAGIC = ((b"\xff\xd8\xff", "jpg", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "png", "image/png"))


def _tenant(request: Request, params: dict[str, Any]) -> str:
    jid = params.get("jurisdiction_id")
    if jid:
        if not isinstance(jid, str):
            raise BadRequestData("jurisdiction_id must be a text")
        check_tenant(jid, "jurisdiction_id")
        header = request.headers.get(TENANT_HEADER)
        if header and header != jid:
            raise BadRequestData("jurisdiction_id and the NGSILD-Tenant header disagree")
        return jid
    return tenant_of(request)


def _xml(root: str, item: str, rows: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    top = ET.Element(root)
    for row in rows if isinstance(rows, list) else [rows]:
        el = ET.SubElement(top, item)
        for k, v in row.items():
            child = ET.SubElement(el, k)
            if isinstance(v, list):
                for x in v:
                    sub = ET.SubElement(child, "value" if not isinstance(x, dict) else "item")
                    if isinstance(x, dict):
                        for kk, vv in x.items():
                            ET.SubElement(sub, kk).text = "" if vv is None else str(vv)
                    else:
                        sub.text = str(x)
            elif isinstance(v, bool):
                child.text = "true" if v else "false"
            else:
                child.text = "" if v is None else str(v)
    out: bytes = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return out


def _fmt(request: Request) -> str:
    fmt = request.path_params.get("fmt", "json")
    if fmt not in ("json", "xml"):
        raise ResourceNotFound(f"format .{fmt[:10]} is not offered; use .json or .xml")
    return str(fmt)


def _reply(request: Request, data: Any, root: str, item: str, status: int = 200) -> Response:
    if request.path_params.get("fmt") == "xml":
        return Response(_xml(root, item, data), status_code=status,
                        media_type="text/xml; charset=utf-8")
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def open311(fn: Handler) -> Handler:
    """Open311 error lists instead of ProblemDetails."""

    async def handler(request: Request) -> Response:
        try:
            return await fn(request)
        except NgsiError as exc:
            err = [{"code": exc.status, "description": exc.detail}]
            if request.path_params.get("fmt") == "xml":
                return Response(_xml("errors", "error", err), status_code=exc.status,
                                media_type="text/xml; charset=utf-8")
            return Response(orjson.dumps(err), status_code=exc.status,
                            media_type="application/json")
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            err = [{"code": 500, "description": "internal error; see the server log"}]
            return Response(orjson.dumps(err), status_code=500, media_type="application/json")

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def save_media(settings: Any, tenant: str, blob: bytes, base_url: str) -> str:
    """Check a photo (JPEG, PNG or WebP by its first bytes, at most ``civic_media_max_bytes``),
    keep it under ``civic_media_dir/<tenant>/`` by content hash, and return its URL
    (``BadRequestData`` naming ``media`` otherwise). Shared by Open311 and the web portal."""
    limit = settings.civic_media_max_bytes
    if len(blob) > limit:
        raise BadRequestData(f"media: larger than {limit} bytes")
    kind = next(((ext, mt) for magic, ext, mt in _MAGIC if blob.startswith(magic)), None)
    if kind is None and blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        kind = ("webp", "image/webp")
    if kind is None:
        raise BadRequestData("media: a JPEG, PNG or WebP photo is accepted")
    name = f"{hashlib.sha256(blob).hexdigest()[:32]}.{kind[0]}"
    folder = Path(settings.civic_media_dir) / tenant
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(blob)
        tmp.replace(path)
    return f"{base_url.rstrip('/')}{BASE}/media/{tenant}/{name}"


class CivicApi(TrustApi):
    @property
    def civic(self) -> Any:
        return self.s.civic

    def _lang(self, request: Request) -> str:
        lang = request.query_params.get("lang") or ""
        if lang in ("ko", "en"):
            return lang
        accept = request.headers.get("accept-language", "")
        return "en" if accept.lower().startswith("en") else "ko"

    # -- Open311 -----------------------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        """Open311 discovery: where the endpoint is and what it speaks."""
        _fmt(request)
        base = str(request.base_url).rstrip("/") + O311
        data = {"changeset": "2026-11-23T00:00:00Z", "contact": "maeul civic desk",
                "key_service": "API keys are issued by the city's IT team",
                "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2",
                               "url": base, "changeset": "2026-11-23T00:00:00Z",
                               "type": "production", "formats": ["application/json",
                                                                 "text/xml"]}]}
        return _reply(request, data, "discovery", "endpoint")

    async def services(self, request: Request) -> Response:
        """The service list (the city's complaint categories)."""
        _fmt(request)
        _tenant(request, dict(request.query_params))
        data = await run_in_threadpool(self.civic.service_list, self._lang(request))
        return _reply(request, data, "services", "service")

    async def definition(self, request: Request) -> Response:
        """One service's definition (its extra attributes)."""
        _fmt(request)
        code = request.path_params["code"]
        data = await run_in_threadpool(self.civic.definition, code, self._lang(request))
        if request.path_params.get("fmt") == "xml":
            return Response(_xml("service_definition", "attributes", data["attributes"]),
                            media_type="text/xml; charset=utf-8")
        return _reply(request, data, "service_definition", "attribute")

    async def _form(self, request: Request) -> tuple[dict[str, Any], bytes | None]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        length = int(request.headers.get("content-length") or 0)
        limit = self.settings.civic_media_max_bytes + self.settings.max_body_bytes
        if length > limit:
            raise BadRequestData(f"the request body is {length} bytes; at most {limit}")
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form(max_files=1, max_fields=200)
            try:
                data: dict[str, Any] = {}
                media = None
                for k, v in form.multi_items():
                    if isinstance(v, UploadFile):
                        if k != "media":
                            raise BadRequestData(f"{k}: only one file, named 'media', is "
                                                 "accepted")
                        media = await v.read(self.settings.civic_media_max_bytes + 1)
                    elif k.endswith("[]"):
                        data.setdefault(k, []).append(v)
                    else:
                        data[k] = v
            finally:
                await form.close()
            return data, media
        if not ctype and length == 0:
            return {}, None  # an empty request: parse_request names what is missing
        if ctype == "application/json":
            data = await self.body(request)
            if not isinstance(data, dict):
                raise BadRequestData("a service request must be a JSON object")
            return data, None
        raise BadRequestData("send form fields (application/x-www-form-urlencoded or "
                             "multipart/form-data) or a JSON object")

    async def post_request(self, request: Request) -> Response:
        """File a report (Open311 POST requests; ``service_code`` optional: maeul routes the
        description). Answers ``[{service_request_id, service_notice, token, ...}]``."""
        _fmt(request)
        data, media = await self._form(request)
        tenant = _tenant(request, data)
        key = data.pop("api_key", None)
        caller = self.s.keys.verify(key) if key and self.settings.auth_enabled \
            else self.caller(request)
        if caller.anonymous:
            if not self.settings.civic_anonymous_reports:
                raise Forbidden("this city asks for an api_key to file requests")
        else:
            caller.require(tenant, "write")
        media_url = None
        if media is not None:
            media_url = await self._save_media(request, tenant, media)
        data.pop("jurisdiction_id", None)
        out = await run_in_threadpool(self.civic.submit, tenant, data, caller.actor,
                                      media_url=media_url)
        return _reply(request, [out], "service_requests", "request", status=201)

    async def _save_media(self, request: Request, tenant: str, blob: bytes) -> str:
        base = self.settings.public_url or str(request.base_url)
        return await run_in_threadpool(save_media, self.settings, tenant, blob, base)

    async def get_requests(self, request: Request) -> Response:
        """Search requests (``service_request_id``, ``service_code``, ``status``,
        ``start_date``, ``end_date``; the last 90 days by default)."""
        _fmt(request)
        params = dict(request.query_params)
        tenant = _tenant(request, params)
        caller = self.caller(request)
        caller.require(tenant, "read")
        rows = await run_in_threadpool(self.civic.search, tenant, params, caller)
        return _reply(request, rows, "service_requests", "request")

    async def get_request(self, request: Request) -> Response:
        """One request by its id (Open311 answers a list of one)."""
        _fmt(request)
        tenant = _tenant(request, dict(request.query_params))
        caller = self.caller(request)
        caller.require(tenant, "read")
        row = await run_in_threadpool(self.civic.get, tenant, request.path_params["rid"],
                                      caller)
        return _reply(request, [row], "service_requests", "request")

    # -- maeul's own --------------------------------------------------------------------------
    async def classify(self, request: Request) -> Response:
        """Route a text without filing it: category, department, confidence, alternatives,
        place and time (apps show the choice before sending)."""
        tenant = tenant_of(request)
        body = await self.body(request)
        if not isinstance(body, dict):
            raise BadRequestData("send {\"text\": \"...\"}")
        return self.ok(await run_in_threadpool(self.civic.route, tenant, body.get("text")))

    async def ask(self, request: Request) -> Response:
        """A grounded answer from the city's documents, with citations, or a refusal."""
        tenant = tenant_of(request)
        caller = self.caller(request)
        body = await self.body(request)
        if not isinstance(body, dict):
            raise BadRequestData("send {\"question\": \"...\"}")
        lang = body.get("lang")
        if lang is not None and lang not in ("ko", "en"):
            raise BadRequestData("lang: ko or en")
        out = await run_in_threadpool(self.civic.ask, tenant, body.get("question"), lang,
                                      caller.actor)
        return self.ok(out)

    async def confirm(self, request: Request) -> Response:
        """The citizen confirms one of the offered categories (with the filing token)."""
        tenant = tenant_of(request)
        caller = self.caller(request)
        body = await self.body(request)
        out = await run_in_threadpool(self.civic.confirm, tenant, request.path_params["rid"],
                                      body, caller.actor)
        return self.ok(out)

    async def update(self, request: Request) -> Response:
        """An operator changes status or notes, or re-routes (operator/admin keys)."""
        tenant, caller = self.authorize(request, "write")
        if caller.role not in ("admin", "operator"):
            raise Forbidden("an operator or admin key is needed to change a request")
        body = await self.body(request)
        out = await run_in_threadpool(self.civic.update, tenant, request.path_params["rid"],
                                      body, caller.actor)
        return self.ok(out)

    async def media(self, request: Request) -> Response:
        """A photo attached to a request."""
        tenant, name = request.path_params["tenant"], request.path_params["name"]
        if not all(c.isalnum() or c in "-_." for c in tenant + name) or ".." in name:
            raise BadRequestData("malformed media name")
        path = Path(self.settings.civic_media_dir) / tenant / name
        if not path.is_file():
            raise ResourceNotFound("no such photo")
        mt = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(
            name.rsplit(".", 1)[-1], "application/octet-stream")
        return Response(path.read_bytes(), media_type=mt,
                        headers={"Cache-Control": "private, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


def routes(services: Any) -> list[BaseRoute]:
    api = CivicApi(services)
    w = Api.wrap
    return [
        Route(f"{O311}/discovery.{{fmt}}", open311(api.discovery), methods=["GET"]),
        Route(f"{O311}/services.{{fmt}}", open311(api.services), methods=["GET"]),
        Route(f"{O311}/services/{{code}}.{{fmt}}", open311(api.definition), methods=["GET"]),
        Route(f"{O311}/requests.{{fmt}}", open311(api.post_request), methods=["POST"]),
        Route(f"{O311}/requests.{{fmt}}", open311(api.get_requests), methods=["GET"]),
        Route(f"{O311}/requests/{{rid}}.{{fmt}}", open311(api.get_request), methods=["GET"]),
        Route(f"{BASE}/classify", w(api.classify), methods=["POST"]),
        Route(f"{BASE}/ask", w(api.ask), methods=["POST"]),
        Route(f"{BASE}/requests/{{rid}}/confirm", w(api.confirm), methods=["POST"]),
        Route(f"{BASE}/requests/{{rid}}", w(api.update), methods=["PATCH"]),
        Route(f"{BASE}/media/{{tenant}}/{{name}}", w(api.media), methods=["GET"]),
    ]
