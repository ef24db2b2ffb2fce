"""The ASGI application: NGSI-LD routes, ingest routes, OpenAPI, health, lifecycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config import Settings
from .api_more import MoreApi
from .app import Services
from .errors import BadRequestData, InvalidRequest, ResourceNotFound
from .http import problem_response

log = logging.getLogger(__name__)


def build_app(settings: Settings, services: Services | None = None,
              background: bool = True) -> Starlette:
    """An ASGI app; it starts the notification worker, expiry and the trust layer's jobs on
    startup (``background=False``: a further worker process that only answers requests)."""
    from .fastmaps import install

    install()
    svc = services or Services(settings)
    api = MoreApi(svc)
    from .distributed import distribute_routes

    routes = distribute_routes(api.routes(), svc)

    from ..ingest.http import ingest_routes

    routes += ingest_routes(api)

    from .contexts_api import context_routes

    routes += context_routes(api)

    from .info_api import info_routes

    routes += info_routes(api)

    from .csources_api import csource_routes

    routes += csource_routes(api)

    from ..trust.app import trust_routes

    routes += trust_routes(svc)

    from ..services.routes import service_routes

    routes += service_routes(svc)

    from ..web.routes import web_routes

    routes += web_routes(svc)

    async def health(request: Request) -> Response:
        return Response(orjson.dumps({"status": "ok", "store": svc.store.url.split("://")[0]}),
                        media_type="application/json")

    async def openapi(request: Request) -> Response:
        from .openapi import build_openapi

        return Response(orjson.dumps(build_openapi(app_routes)), media_type="application/json")

    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app_routes: list[Any] = list(routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if background:
            svc.start()
        try:
            yield
        finally:
            if services is None:
                svc.close()
            else:
                svc.subs.stop()
                svc.expiry.stop()
                svc.trust.stop()

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/ngsi-ld/v1/") and "//" in request.url.path:
            # an empty id or name in the path is malformed input, not a missing resource
            return problem_response(BadRequestData(
                f"empty path segment (entity id or attribute name) in {request.url.path}"))
        return problem_response(ResourceNotFound(f"no resource at {request.url.path}"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        err = InvalidRequest(f"{request.method} is not allowed on {request.url.path}")
        err.status = 405
        return problem_response(err)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed},
    )
    app.state.services = svc
    return app
