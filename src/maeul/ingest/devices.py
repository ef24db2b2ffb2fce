"""Device provisioning and the measurement mapping shared by MQTT and HTTP ingest.

A device publishes a flat JSON object of measurements. Its provisioning maps it to one entity
(id and type) and maps payload keys to attribute names, with units. Unknown devices and
malformed payloads are counted and logged by device id and reason only, never with values.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..hub.core import Hub, upsert_entity
from ..hub.entities import canonical_time, check_entity_id, check_name, is_uri, now_iso
from ..hub.errors import BadRequestData, NgsiError, ResourceNotFound
from ..hub.ldcontext import Context
from ..hub.store.base import Tx

log = logging.getLogger(__name__)
KIND = "device"
MAX_PAYLOAD = 64 * 1024
TIME_KEYS = ("observedAt", "ts", "time", "timestamp")


@dataclass
class IngestStats:
    received: int = 0
    accepted: int = 0
    unknown_device: int = 0
    malformed: int = 0
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {k: getattr(self, k) for k in
                    ("received", "accepted", "unknown_device", "malformed", "rejected")}


class IngestError(Exception):
    """Why one message was not accepted: reason is unknown_device, malformed or rejected."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def validate_device(doc: Any, ctx: Context) -> dict[str, Any]:
    """A provisioning document checked and expanded (attribute names and type to IRIs)."""
    if not isinstance(doc, dict):
        raise BadRequestData("a device must be a JSON object")
    dev_id = doc.get("deviceId")
    if not isinstance(dev_id, str) or not dev_id or len(dev_id) > 128 or not all(
        c.isalnum() or c in "-_." for c in dev_id
    ):
        raise BadRequestData("deviceId must be 1-128 letters, digits, '-', '_' or '.'")
    eid = check_entity_id(doc.get("entityId"))
    etype = doc.get("entityType")
    if not isinstance(etype, str) or not etype:
        raise BadRequestData("entityType is required")
    check_name(etype, "type")
    attrs = doc.get("attributes", {})
    if not isinstance(attrs, dict) or not attrs:
        raise BadRequestData("attributes must map payload keys to attribute definitions")
    mapping: dict[str, dict[str, Any]] = {}
    for key, spec in attrs.items():
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise BadRequestData(f"attributes.{key} needs a name")
        check_name(spec["name"], "attribute")
        item: dict[str, Any] = {"name": ctx.expand_term(spec["name"])}
        if "unitCode" in spec:
            if not isinstance(spec["unitCode"], str):
                raise BadRequestData(f"attributes.{key}.unitCode must be a string")
            item["unitCode"] = spec["unitCode"]
        kind = spec.get("type", "Property")
        if kind not in ("Property", "Relationship", "GeoProperty"):
            raise BadRequestData(f"attributes.{key}.type must be Property, Relationship or "
                                 "GeoProperty")
        item["type"] = kind
        mapping[key] = item
    out: dict[str, Any] = {
        "deviceId": dev_id,
        "entityId": eid,
        "entityType": ctx.expand_term(etype),
        "attributes": mapping,
    }
    if "location" in doc:
        from ..hub.geo import GeoQueryError, validate_geojson

        try:
            validate_geojson(doc["location"])
        except GeoQueryError as exc:
            raise BadRequestData(f"location: {exc}") from None
        out["location"] = doc["location"]
    return out


def _observed_at(payload: dict[str, Any]) -> str:
    for key in TIME_KEYS:
        if key in payload:
            raw = payload[key]
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                if raw > 1e11:  # milliseconds since the epoch
                    raw = raw / 1000
                try:
                    return datetime.fromtimestamp(raw, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                except (OverflowError, OSError, ValueError):
                    raise IngestError("malformed", f"{key} is not a valid time") from None
            try:
                return canonical_time(raw, key)
            except BadRequestData:
                raise IngestError("malformed", f"{key} is not a valid time") from None
    return now_iso()


class DeviceIngest:
    """Turns device messages into entity updates through the hub core."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.stats = IngestStats()
        self._cache: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def provision(self, tenant: str, device: dict[str, Any], actor: str) -> None:
        def op(tx: Tx) -> None:
            tx.ensure_tenant(tenant)
            tx.put_json(KIND, tenant, device["deviceId"], device)
            tx.audit(tenant, actor, "device.provision", device["deviceId"], {})

        self.hub.store.write(op)
        with self._lock:
            self._cache.pop((tenant, device["deviceId"]), None)
        if "location" in device:
            # the entity exists from provisioning on, where the device is installed
            loc = {"type": "GeoProperty", "value": device["location"]}
            ent = {"id": device["entityId"], "type": [device["entityType"]],
                   "attrs": {"https://uri.etsi.org/ngsi-ld/location": [loc]}}
            upsert_entity(self.hub, tenant, ent, actor)

    def remove(self, tenant: str, device_id: str, actor: str) -> None:
        def op(tx: Tx) -> None:
            if not tx.delete_json(KIND, tenant, device_id):
                raise ResourceNotFound(f"device {device_id} not found")
            tx.audit(tenant, actor, "device.remove", device_id, {})

        self.hub.store.write(op)
        with self._lock:
            self._cache.pop((tenant, device_id), None)

    def device(self, tenant: str, device_id: str) -> dict[str, Any] | None:
        key = (tenant, device_id)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        doc = self.hub.store.reader().get_json(KIND, tenant, device_id)
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = doc
        return doc

    def devices(self, tenant: str) -> list[dict[str, Any]]:
        return [d for _t, _k, d in self.hub.store.reader().list_json(KIND, tenant)]

    def handle(self, tenant: str, device_id: str, raw: bytes | Any, actor: str) -> str:
        """Apply one message; returns the entity id. Raises IngestError (and counts it)."""
        self.stats.bump("received")
        try:
            eid = self._handle(tenant, device_id, raw, actor)
        except IngestError as exc:
            self.stats.bump(exc.reason)
            log.warning("ingest %s: device=%s tenant=%s reason=%s", exc.reason, device_id,
                        tenant, exc.detail)
            raise
        self.stats.bump("accepted")
        return eid

    def _handle(self, tenant: str, device_id: str, raw: bytes | Any, actor: str) -> str:
        if isinstance(raw, bytes | bytearray):
            if len(raw) > MAX_PAYLOAD:
                raise IngestError("malformed", f"payload larger than {MAX_PAYLOAD} bytes")
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise IngestError("malformed", "payload is not valid JSON") from None
        else:
            payload = raw
        if not isinstance(payload, dict):
            raise IngestError("malformed", "payload must be a JSON object")
        dev = self.device(tenant, device_id)
        if dev is None:
            raise IngestError("unknown_device", "device is not provisioned")
        observed = _observed_at(payload)
        attrs: dict[str, list[dict[str, Any]]] = {}
        for key, value in payload.items():
            spec = dev["attributes"].get(key)
            if spec is None:
                continue
            if value is None or isinstance(value, dict | list) and spec["type"] == "Property" \
                    and not value:
                raise IngestError("malformed", f"{key} has no value")
            if spec["type"] == "Relationship":
                if not is_uri(value):
                    raise IngestError("malformed", f"{key} must be a URI")
                inst: dict[str, Any] = {"type": "Relationship", "object": value}
            elif spec["type"] == "GeoProperty":
                from ..hub.geo import GeoQueryError, validate_geojson

                try:
                    validate_geojson(value)
                except GeoQueryError:
                    raise IngestError("malformed", f"{key} is not GeoJSON") from None
                inst = {"type": "GeoProperty", "value": value}
            else:
                inst = {"type": "Property", "value": value}
            inst["observedAt"] = observed
            if "unitCode" in spec:
                inst["unitCode"] = spec["unitCode"]
            attrs[spec["name"]] = [inst]
        if not attrs:
            raise IngestError("malformed", "payload has none of the provisioned attributes")
        ent = {"id": dev["entityId"], "type": [dev["entityType"]], "attrs": attrs}
        try:
            upsert_entity(self.hub, tenant, ent, actor)
        except NgsiError as exc:
            raise IngestError("rejected", exc.detail) from None
        return str(dev["entityId"])
