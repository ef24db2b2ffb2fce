"""HTTP device ingest (for devices without MQTT) and device provisioning routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..hub.errors import BadRequestData, PayloadTooLarge, ResourceNotFound
from ..hub.http import no_content, read_body, respond
from .devices import MAX_PAYLOAD, DeviceIngest, IngestError, validate_device


def ingest_routes(api: Any) -> list[BaseRoute]:
    """Routes under /ingest/v1 (measurements) and /maeul/v1/devices (provisioning)."""
    svc = api.s
    if svc.ingest is None:
        svc.ingest = DeviceIngestHolder(DeviceIngest(svc.hub))
    ingest: DeviceIngest = svc.ingest.ingest

    async def post_measurement(request: Request) -> Response:
        """Apply one device measurement (a flat JSON object) to the device's entity."""
        r = await api.req(request, "write")
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip()
        if ctype != "application/json":
            from ..hub.errors import UnsupportedMediaType

            raise UnsupportedMediaType("measurements must be sent as application/json")
        raw = await request.body()
        if len(raw) > MAX_PAYLOAD:
            raise PayloadTooLarge(f"a measurement may be at most {MAX_PAYLOAD} bytes")
        device_id = request.path_params["device"]
        try:
            eid = await api.write(
                lambda: ingest.handle(r.tenant, device_id, raw, r.caller.actor)
            )
        except IngestError as exc:
            if exc.reason == "unknown_device":
                raise ResourceNotFound(f"device {device_id} is not provisioned") from None
            raise BadRequestData(exc.detail) from None
        return Response(orjson.dumps({"entityId": eid}), status_code=200,
                        media_type="application/json")

    async def stats(request: Request) -> Response:
        """Counters of received, accepted, unknown-device and malformed messages."""
        await api.req(request, "read")
        return Response(orjson.dumps(ingest.stats.as_dict()), media_type="application/json")

    async def provision(request: Request) -> Response:
        """Provision (create or replace) a device and its mapping to an entity."""
        r = await api.req(request, "write", body=True)
        dev = validate_device(r.body, r.ctx)
        await api.write(lambda: ingest.provision(r.tenant, dev, r.caller.actor))
        return no_content({"Location": f"/maeul/v1/devices/{dev['deviceId']}"}, status=201)

    async def list_devices(request: Request) -> Response:
        """List the tenant's provisioned devices."""
        r = await api.req(request, "read")
        return respond(ingest.devices(r.tenant), r)

    async def get_device(request: Request) -> Response:
        """One provisioned device."""
        r = await api.req(request, "read")
        dev = ingest.device(r.tenant, request.path_params["device"])
        if dev is None:
            raise ResourceNotFound("device not found")
        return respond(dev, r)

    async def delete_device(request: Request) -> Response:
        """Remove a device's provisioning (its entity and history stay)."""
        r = await api.req(request, "write")
        device_id = request.path_params["device"]
        await api.write(lambda: ingest.remove(r.tenant, device_id, r.caller.actor))
        return no_content()

    w = api.wrap
    return [
        Route("/ingest/v1/{device}/attrs", w(post_measurement), methods=["POST"]),
        Route("/ingest/v1/stats", w(stats), methods=["GET"]),
        Route("/maeul/v1/devices", w(provision), methods=["POST"]),
        Route("/maeul/v1/devices", w(list_devices), methods=["GET"]),
        Route("/maeul/v1/devices/{device}", w(get_device), methods=["GET"]),
        Route("/maeul/v1/devices/{device}", w(delete_device), methods=["DELETE"]),
    ]


class DeviceIngestHolder:
    """Keeps the HTTP ingest and the optional MQTT agent together for shutdown."""

    def __init__(self, ingest: DeviceIngest) -> None:
        self.ingest = ingest
        self.mqtt: Any = None

    def stop(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()


__all__ = ["ingest_routes", "read_body"]
