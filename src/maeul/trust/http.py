"""HTTP plumbing for the trust layer's JSON APIs (``/trust/v1``, ``/public/v1``).

Trust routes speak plain JSON, authenticate with the hub's API keys, and report errors as
ProblemDetails through the hub's error types, so clients handle one error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..hub.auth import Caller
from ..hub.errors import BadRequestData, Conflict, Forbidden, ResourceNotFound
from ..hub.http import JSON, read_body, request_caller, tenant_of

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]
TRUST = "/trust/v1"
PUBLIC = "/public/v1"

__all__ = [
    "PUBLIC", "TRUST", "BadRequestData", "Conflict", "Forbidden", "ResourceNotFound",
    "TrustApi", "validation_message",
]


def validation_message(exc: ValidationError) -> str:
    """A one-line message naming each bad field (``answers.q3: Input should be ...``)."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


class TrustApi:
    """Base for trust route handlers: caller, tenant, body parsing and JSON responses."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.settings = services.settings

    def caller(self, request: Request) -> Caller:
        return request_caller(self.s, request)

    def authorize(self, request: Request, right: str) -> tuple[str, Caller]:
        """The tenant and caller; raises Unauthorized/Forbidden unless ``right`` is held."""
        tenant = tenant_of(request)
        caller = self.caller(request)
        caller.require(tenant, right)
        return tenant, caller

    async def body(self, request: Request) -> Any:
        data, _ctx = await read_body(request, self.settings.max_body_bytes, (JSON,))
        return data

    async def model(self, request: Request, model: type[M]) -> M:
        """The JSON body validated against ``model``; BadRequestData names each bad field."""
        data = await self.body(request)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise BadRequestData(validation_message(exc)) from None

    @staticmethod
    def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type=JSON,
                        headers=headers)
