"""The web's routes: operator console, citizen portal, sign-in, map data, static files.

``web_routes(services)`` is added to the hub's app by ``maeul.hub.server.build_app``, so
``maeul serve`` serves the pages beside the API; nothing needs building first.
"""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..hub.api import Api
from .base import STATIC, Web
from .basemap import Basemap
from .citizen import Citizen
from .console import Console
from .mapdata import MapData, parse_bbox, parse_layers
from .portal import Portal
from .signin import SignIn

GEOJSON = "application/geo+json"
GZIP_MIN = 16_384  # smaller answers are sent as they are: compressing them saves nothing


async def packed(request: Request, body: bytes, media_type: str) -> Response:
    """A private, uncached JSON answer, gzip-compressed when it is large and accepted.

    Level 1: on a city's own network the time to compress matters more than the last bytes
    (10,000 points: about a fifth of the size in a few milliseconds)."""
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if len(body) >= GZIP_MIN and "gzip" in request.headers.get("accept-encoding", ""):
        body = await run_in_threadpool(gzip.compress, body, 1)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=media_type, headers=headers)


class MapApi:
    """JSON endpoints behind the map (errors are ProblemDetails, like the API's)."""

    def __init__(self, web: Web) -> None:
        self.w = web
        self.data = MapData(web.s)
        self.basemap = Basemap(web.s)

    async def basemap_geojson(self, request: Request) -> Response:
        """Road lines from the city's own geometry (cached)."""
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        caller.require(tenant, "read")
        body = await run_in_threadpool(self.basemap.geojson, tenant)
        return Response(body, media_type=GEOJSON,
                        headers={"Cache-Control": "private, max-age=300"})

    async def layers(self, request: Request) -> Response:
        """One point per entity of the chosen layers (``layers``, ``bbox``)."""
        bbox = parse_bbox(request.query_params.get("bbox"))
        layers = parse_layers(request.query_params.get("layers"))
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        out = await run_in_threadpool(self.data.layers, tenant, caller, layers, bbox)
        return await packed(request, orjson.dumps(out), GEOJSON)

    async def points(self, request: Request) -> Response:
        """The same points in the compact form the console's map reads (``layers``, ``bbox``)."""
        bbox = parse_bbox(request.query_params.get("bbox"))
        layers = parse_layers(request.query_params.get("layers"))
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        body = await run_in_threadpool(self.data.points, tenant, caller, layers, bbox)
        return await packed(request, body, "application/json")

    async def entity(self, request: Request) -> Response:
        """An entity's latest values and recent numeric history, for a popup."""
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        out = await run_in_threadpool(self.data.entity, tenant, caller,
                                      request.path_params["eid"])
        return Response(orjson.dumps(out), media_type="application/json",
                        headers={"Cache-Control": "no-store"})


class Static(StaticFiles):
    """Static files; the vendored libraries (their version is in VENDORED.md, they change
    only with a release) may be kept a day without asking again, our own files revalidate."""

    VENDORED = ("leaflet/", "uplot/", "htmx/")

    async def get_response(self, path: str, scope: Any) -> Response:
        resp = await super().get_response(path, scope)
        if resp.status_code in (200, 304):
            vendored = path.replace("\\", "/").startswith(self.VENDORED)
            resp.headers["Cache-Control"] = "public, max-age=86400" if vendored else "no-cache"
        return resp


def web_routes(services: Any) -> list[BaseRoute]:
    web = Web(services)
    api = MapApi(web)
    con = Console(web, api.data)
    por = Portal(web)
    civ = Citizen(web)
    sign = SignIn(web)
    page = web.page
    signed = {"signed_in": True}

    async def root(request: Request) -> Response:
        return RedirectResponse("/portal", status_code=303)

    def get(path: str, fn: Any, name: str) -> Route:
        return Route(path, fn, name=f"web_{name}", methods=["GET"])

    def post(path: str, fn: Any, name: str) -> Route:
        return Route(path, fn, name=f"web_{name}", methods=["POST"])

    return [
        get("/", root, "root"),
        get("/lang/{code}", page(sign.language), "language"),
        get("/signin", page(sign.form_page), "signin_form"),
        post("/signin", page(sign.submit), "signin"),
        post("/signout", page(sign.signout), "signout"),
        # operator console
        get("/console", page(con.map, **signed), "console_map"),
        get("/console/decisions", page(con.decisions, **signed), "decisions"),
        get("/console/decisions/{pid}", page(con.proposal, **signed), "proposal"),
        post("/console/decisions/{pid}/{action}", web.checked_post(con.decide), "decide"),
        get("/console/alerts", page(con.alerts, **signed), "alerts"),
        get("/console/kpis", page(con.kpis, **signed), "console_kpis"),
        get("/console/audit", page(con.audit, **signed), "audit"),
        post("/console/audit/verify", web.checked_post(con.verify), "audit_verify"),
        # citizen portal
        get("/portal", page(por.home), "portal"),
        get("/portal/registry", page(por.registry), "registry"),
        get("/portal/registry/{id}", page(por.registry_entry), "registry_entry"),
        get("/portal/kpis", page(por.kpis), "public_kpis"),
        get("/portal/data", page(por.open_data), "open_data"),
        get("/portal/data/{name}.{fmt}", Api.wrap(por.download), "download"),
        get("/portal/report", page(civ.report_form), "report_form"),
        post("/portal/report", page(civ.report_submit), "report"),
        post("/portal/report/{rid}/confirm", page(civ.confirm), "report_confirm"),
        get("/portal/track", page(civ.track_form), "track"),
        get("/portal/requests/{rid}", page(civ.request_page), "request"),
        get("/portal/ask", page(civ.ask_form), "ask_form"),
        post("/portal/ask", page(civ.ask_submit), "ask"),
        # map data
        get("/web/basemap.geojson", Api.wrap(api.basemap_geojson), "basemap"),
        get("/web/layers.geojson", Api.wrap(api.layers), "layers"),
        get("/web/points.json", Api.wrap(api.points), "points"),
        get("/web/entity/{eid}", Api.wrap(api.entity), "entity"),
        Mount("/static", app=Static(directory=STATIC), name="static"),
    ]
