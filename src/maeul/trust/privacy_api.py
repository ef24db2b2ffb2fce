"""HTTP routes of the trust layer's privacy component (``/trust/v1/privacy``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..hub.api import Api
from ..hub.auth import Caller
from ..hub.errors import Unauthorized
from .http import TRUST, Forbidden, TrustApi

MAX_SCAN_CHARS = 20_000


class ScanRequest(BaseModel):
    """A text to try the scanner on."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=MAX_SCAN_CHARS)


class PrivacyApi(TrustApi):
    def _staff(self, request: Request, right: str = "read") -> tuple[str, Caller]:
        tenant, caller = self.authorize(request, right)
        if caller.anonymous:
            raise Unauthorized("an API key is required for this operation")
        if caller.role not in ("admin", "operator"):
            raise Forbidden("this needs an admin or operator key")
        return tenant, caller

    async def policy(self, request: Request) -> Response:
        """The privacy policy in force (admin, operator)."""
        self._staff(request)
        p = self.s.trust.privacy.policy
        return self.ok({"source": p.source, "policy": p.as_json()})

    async def scan(self, request: Request) -> Response:
        """Mask a text as ingest would; returns the masked text, kinds and spans (operator)."""
        self._staff(request)
        body = await self.model(request, ScanRequest)
        m = self.s.trust.privacy.mask_text(body.text)
        spans = [{"start": s.start, "end": s.end, "kind": s.kind,
                  **({"checkDigitValid": s.valid} if s.valid is not None else {})}
                 for s in m.spans]
        return self.ok({"text": m.text, "kinds": m.kinds, "spans": spans})

    async def retention(self, request: Request) -> Response:
        """Apply the retention policy to this tenant now; returns what went (admin)."""
        tenant, caller = self.authorize(request, "admin")
        summary: dict[str, Any] = await run_in_threadpool(
            lambda: self.s.trust.privacy.apply_retention(tenant, actor=caller.actor))
        return self.ok(summary)

    async def original(self, request: Request) -> Response:
        """The decrypted original of a masked text, for a key with an allowed purpose."""
        tenant, caller = self.authorize(request, "read")
        eid = request.path_params["eid"]
        attr = request.path_params["attr"]
        ds = request.query_params.get("datasetId", "")
        data = await run_in_threadpool(
            lambda: self.s.trust.privacy.original(tenant, caller, eid, attr, ds))
        return self.ok(data)

    def routes(self) -> list[BaseRoute]:
        w = Api.wrap
        base = f"{TRUST}/privacy"
        return [
            Route(f"{base}/policy", w(self.policy), methods=["GET"]),
            Route(f"{base}/scan", w(self.scan), methods=["POST"]),
            Route(f"{base}/retention/run", w(self.retention), methods=["POST"]),
            Route(f"{base}/original/{{eid}}/{{attr:path}}", w(self.original), methods=["GET"]),
        ]


def routes(services: Any) -> list[BaseRoute]:
    return PrivacyApi(services).routes()
