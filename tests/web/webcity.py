"""A small city for the web tests: signals, sensors, parking, air, a complaint, a care
household, registry entries, a pending proposal, accounts and keys (imported by the web
tests as ``webcity``)."""

from __future__ import annotations

from typing import Any

from maeul.hub.entities import expand_entity

T = "default"
SIG = "urn:ngsi-ld:TrafficSignal:web-1"
FLOW = "urn:ngsi-ld:TrafficFlowObserved:web-1"
PARK = "urn:ngsi-ld:OffStreetParking:web-1"
AIR = "urn:ngsi-ld:AirQualityObserved:web-1"
REQ = "urn:ngsi-ld:ServiceRequest:web-1"
CARE = "urn:ngsi-ld:CareHousehold:web-1"
SDM = "https://smartdatamodels.org/dataModel."
FLOW_T = SDM + "Transportation/TrafficFlowObserved"
PARK_T = SDM + "Parking/OffStreetParking"
AIR_T = SDM + "Environment/AirQualityObserved"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"
PUBLIC = [FLOW_T, PARK_T, AIR_T, DV + "TrafficSignal"]
PASSWORD = "correct horse battery"


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def prop(value: Any, **meta: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **meta}


ENTITIES: list[dict[str, Any]] = [
    {"id": SIG, "type": "TrafficSignal", "location": point(6.95, 50.94),
     "greenTime": prop(30, unitCode="SEC"), "signalState": prop("GGrr")},
    {"id": FLOW, "type": FLOW_T, "location": point(6.951, 50.941),
     f"{SDM}Transportation/averageVehicleSpeed": prop(12.5, observedAt="2026-05-01T08:00:00Z"),
     f"{SDM}Transportation/congested": prop(True)},
    {"id": PARK, "type": PARK_T, "location": point(-1.90, 52.48),
     "name": prop("Bull Ring"), "https://smartdatamodels.org/availableSpotNumber": prop(20),
     "https://smartdatamodels.org/totalSpotNumber": prop(200)},
    {"id": AIR, "type": AIR_T, "location": point(126.97, 37.56),
     "https://smartdatamodels.org/dataModel.Environment/pm10": prop(95)},
    {"id": REQ, "type": "ServiceRequest", "location": point(6.952, 50.942),
     "status": prop("open"), "telephone": prop("010-1234-5678"),
     "service_request_id": prop("web-1")},
    {"id": CARE, "type": "CareHousehold", "location": point(6.953, 50.943),
     "careLevel": prop(3), "enrolled": prop(True)},
]


def seed(s: Any) -> None:
    """Entities, public types, registry entries (level III and public), history."""
    ctx = s.resolver.resolve(None)
    for doc in ENTITIES:
        s.hub.create_entity(T, expand_entity(doc, ctx))
    # a second reading: the flow sensor has a history to chart
    s.hub.update_attrs(T, FLOW, expand_entity({
        "id": FLOW, "type": FLOW_T,
        f"{SDM}Transportation/averageVehicleSpeed": prop(18.0,
                                                         observedAt="2026-05-01T08:05:00Z"),
    }, ctx))
    s.keys.set_public_types(T, PUBLIC, "test")

    def op(tx: Any) -> None:
        tx.put_json("registry", T, "lvl3", {"id": "lvl3", "status": "planned"})
        tx.put_json("assessment", T, "lvl3", {"level": 3})

    s.store.write(op)
    s.trust.registry.sync(T)


def proposal(green: int = 45, **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "system": "lvl3",
        "action": {"kind": "hub.patch", "format": "keyValues", "attrs": {"greenTime": green}},
        "target": SIG,
        "why": "the queue on the north approach is three times longer than usual",
        "evidence": {"links": [{"entity": FLOW, "attrs": ["averageVehicleSpeed"],
                                "start": "2026-05-01T08:00:00Z",
                                "end": "2026-05-01T09:00:00Z"}],
                     "modelVersion": "signals-2.1"},
        "expectedEffect": {"delayReductionPct": 12},
    }
    p.update(over)
    return {k: v for k, v in p.items() if v is not None}  # None leaves a field out


def green(s: Any) -> Any:
    ent = s.hub.get_entity(T, SIG)
    return ent["attrs"][DV + "greenTime"][0]["value"]


def accounts(s: Any) -> dict[str, str]:
    """Accounts (password ``PASSWORD``) and keys; returns the keys by role."""
    from maeul.web.users import Users

    users = Users(s.store)
    users.add("olivia", PASSWORD, "operator", T)
    users.add("rita", PASSWORD, "reader", T)
    users.add("adam", PASSWORD, "admin", T)
    users.add("carol", PASSWORD, "operator", T, ["care"])
    return {role: s.keys.create(role, T) for role in ("service", "reader", "operator",
                                                       "admin")}
