"""``GET /ngsi-ld/v1/info/sourceIdentity``: who this broker is (NGSI-LD clause 5.15.1).

The answer names the broker (a stable ``urn:ngsi-ld:ContextSourceIdentity:<uuid>``, made once
and kept in the store), an alias per tenant (``contextSourceAlias``: what a peer puts into a
registration, so a Via chain tells the tenants of one broker apart), how long this process
has been up and the time of the answer.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .api import BASE, Api
from .http import tenant_of

KIND = "hubInfo"  # store kind of the broker's own identity document
_STARTED = time.monotonic()


def iso_duration(seconds: float) -> str:
    """An ISO 8601 duration (``P1DT2H3M4.5S``) for a number of seconds."""
    s = max(0.0, seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{int(days)}D" if days else "")
    out += "T" + (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    return out + f"{secs:.3f}".rstrip("0").rstrip(".") + "S"


class InfoApi:
    def __init__(self, api: Api) -> None:
        self.api = api
        self._id: str | None = None

    def broker_id(self) -> str:
        """This broker's uuid, made at its first answer and kept in the store."""
        if self._id is None:
            store = self.api.s.store

            def op(tx: Any) -> str:
                doc = tx.get_json(KIND, "", "identity")
                if doc is None:
                    doc = {"uuid": str(uuid.uuid4())}
                    tx.put_json(KIND, "", "identity", doc)
                return str(doc["uuid"])

            self._id = store.write(op)
        return self._id

    async def source_identity(self, request: Request) -> Response:
        tenant = tenant_of(request)
        self.api.caller(request).require(tenant, "read")
        bid = self._id or await self.api.write(self.broker_id)
        body = {
            "id": f"urn:ngsi-ld:ContextSourceIdentity:{bid}",
            "type": "ContextSourceIdentity",
            # stable, and one per tenant: a peer's registration carries it
            "contextSourceAlias": f"urn:ngsi-ld:maeul:{bid}:{tenant}",
            "contextSourceUptime": iso_duration(time.monotonic() - _STARTED),
            "contextSourceTimeAt": datetime.now(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "contextSourceExtras": {"software": "maeul"},
        }
        return Response(orjson.dumps(body), media_type="application/json")


def info_routes(api: Api) -> list[BaseRoute]:
    i = InfoApi(api)
    return [Route(f"{BASE}/info/sourceIdentity", api.wrap(i.source_identity), methods=["GET"])]


__all__ = ["info_routes", "iso_duration"]
