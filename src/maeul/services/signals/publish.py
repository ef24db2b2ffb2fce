"""Simulated detectors: the twin publishes into the hub through device ingest.

Each incoming approach of a controlled intersection (the controlled lanes of one edge, with
their upstream detection extension) is a device whose entity is a Smart Data Models
``TrafficFlowObserved``; each traffic light is a device whose entity is a maeul
``TrafficSignal``. Devices are provisioned with ``validate_device`` and every reading goes
through ``DeviceIngest.handle``, the path real detectors use, so the readings have history,
subscriptions and audit like any other.

Smart Data Models attributes use their full IRIs (so the entities meet the importers' and the
KPI's ``TrafficFlowObserved``); ``averageDelay`` and the signal's attributes are maeul terms
in the default vocabulary, as the KPI ``traffic-delay`` expects.
"""

from __future__ import annotations

import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...ingest.devices import IngestError, validate_device
from .twin import Intersection, open_xml

log = logging.getLogger(__name__)
SDM = "https://smartdatamodels.org/dataModel.Transportation/"
FLOW_TYPE = SDM + "TrafficFlowObserved"
SIGNAL_TYPE = "TrafficSignal"  # maeul term: Smart Data Models has no traffic-light model
FLOW_ATTRS: dict[str, dict[str, Any]] = {
    "intensity": {"name": SDM + "intensity"},
    "occupancy": {"name": SDM + "occupancy"},
    "averageVehicleSpeed": {"name": SDM + "averageVehicleSpeed", "unitCode": "KMH"},
    "congested": {"name": SDM + "congested"},
    "laneDirection": {"name": SDM + "laneDirection"},
    "dateObserved": {"name": "https://smartdatamodels.org/dateObserved"},
    "dateObservedFrom": {"name": SDM + "dateObservedFrom"},
    "dateObservedTo": {"name": SDM + "dateObservedTo"},
    "refRoadSegment": {"name": SDM + "refRoadSegment", "type": "Relationship"},
    "averageDelay": {"name": "averageDelay", "unitCode": "SEC"},
    "queueLength": {"name": "queueLength"},
    "laneCount": {"name": "laneCount"},
    "refTrafficSignal": {"name": "refTrafficSignal", "type": "Relationship"},
}
SIGNAL_ATTRS: dict[str, dict[str, Any]] = {
    "currentPhase": {"name": "currentPhase"},
    "signalState": {"name": "signalState"},
    "phaseCount": {"name": "phaseCount"},
    "phaseDurations": {"name": "phaseDurations", "unitCode": "SEC"},
    "planChanges": {"name": "planChanges"},
    "controller": {"name": "controller"},
    "modelVersion": {"name": "modelVersion"},
    "approvalPolicy": {"name": "approvalPolicy"},
    "lastPlanChange": {"name": "lastPlanChange"},
    "simulationTime": {"name": "simulationTime", "unitCode": "SEC"},
    "refTwin": {"name": "refTwin"},
}
# stop-and-go: slower than a fifth of the limit on an approach at least a quarter occupied
CONGESTED_SPEED_SHARE = 0.2
CONGESTED_OCCUPANCY = 0.25
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_id(text: str) -> str:
    """``text`` usable in entity and device ids; a short hash keeps altered ids distinct."""
    clean = _SAFE.sub("_", text)
    if clean == text:
        return text
    return f"{clean}.{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def signal_entity_id(twin: str, tls: str) -> str:
    return f"urn:ngsi-ld:TrafficSignal:{safe_id(twin)}-{safe_id(tls)}"


def flow_entity_id(twin: str, edge: str) -> str:
    return f"urn:ngsi-ld:TrafficFlowObserved:{safe_id(twin)}-{safe_id(edge)}"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Approach:
    """One incoming edge of an intersection and what its detectors counted this period."""

    tls: str
    edge: str
    lanes: list[str]  # the controlled lanes of this edge
    watch: dict[str, tuple[float, float]]  # lane -> watched [start, end) (upstream included)
    entity: str
    device: str
    allowed: float = 13.9  # m/s, the fastest lane limit (for the congestion flag)
    inside: dict[str, float] = field(default_factory=dict)  # vehicle -> timeLoss at entry
    steps: int = 0
    occ_sum: float = 0.0
    speed_sum: float = 0.0  # sum over vehicle-steps of speed (m/s)
    veh_steps: int = 0
    halted_sum: float = 0.0
    passed: int = 0
    delay_sum: float = 0.0

    def reset(self) -> None:
        self.steps = self.veh_steps = self.passed = 0
        self.occ_sum = self.speed_sum = self.halted_sum = self.delay_sum = 0.0


def approaches_of(twin: str, inter: Intersection) -> list[Approach]:
    """The approaches of one intersection: its controlled lanes grouped by edge."""
    by_edge: dict[str, list[str]] = {}
    for lane in inter.in_lanes:
        by_edge.setdefault(lane.rsplit("_", 1)[0], []).append(lane)
    out = []
    for edge, lanes in sorted(by_edge.items()):
        watch: dict[str, tuple[float, float]] = {}
        for lane in lanes:
            for seg in inter.detect.get(lane, []):
                lo, hi = watch.get(seg.lane, (seg.start, seg.end))
                watch[seg.lane] = (min(lo, seg.start), max(hi, seg.end))
        dev = f"sumo.{safe_id(twin)}.{safe_id(inter.id)}.{safe_id(edge)}"[:128]
        out.append(Approach(inter.id, edge, lanes, watch, flow_entity_id(twin, edge), dev))
    return out


class DetectorPublisher:
    """Accumulates detector readings every simulated second; publishes every ``period_s``.

    Runs in the simulation thread (it reads SUMO through ``conn``). ``signal_info`` gives the
    service's view of each light (controller, policy, last plan change) for its entity."""

    def __init__(self, services: Any, tenant: str, twin: str, period_s: float = 60.0,
                 actor: str = "signals-twin", geo: bool = True) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.ingest = services.ingest.ingest
        self.ctx = services.resolver.resolve(None)
        self.tenant, self.twin, self.period, self.actor = tenant, twin, period_s, actor
        self.geo = geo  # False: the network has no projection, so no locations
        self.inters: dict[str, Intersection] = {}
        self.approaches: list[Approach] = []
        self.green_time: dict[str, list[float]] = {}
        self.changes: dict[str, int] = {}
        self.period_start: float | None = None
        self.wall_start = datetime.now(UTC)
        self.published = 0
        self.failed = 0

    # -- set-up -------------------------------------------------------------------------------
    def setup(self, conn: Any, inters: list[Intersection], signal_info: dict[str, Any]) -> None:
        """Provision a device per approach and per light (with its location when the network
        is geo-referenced) and publish the lights' first state."""
        self.inters = {i.id: i for i in inters}
        self.approaches = [a for i in inters for a in approaches_of(self.twin, i)]
        for a in self.approaches:
            a.allowed = max(conn.lane.getMaxSpeed(lane) for lane in a.lanes)
            line = _line(conn, conn.lane.getShape(a.lanes[0])) if self.geo else None
            self._provision(a.device, a.entity, FLOW_TYPE, FLOW_ATTRS, line)
        for inter in inters:
            self.green_time[inter.id] = [0.0] * len(inter.greens)
            self.changes[inter.id] = 0
            ends = [conn.lane.getShape(lane)[-1] for lane in inter.in_lanes]
            point = None
            if ends and self.geo:
                x = sum(p[0] for p in ends) / len(ends)
                y = sum(p[1] for p in ends) / len(ends)
                point = _point(conn, x, y)
            self._provision(self._signal_device(inter.id),
                            signal_entity_id(self.twin, inter.id), SIGNAL_TYPE,
                            SIGNAL_ATTRS, point)
        now = conn.simulation.getTime()
        self.period_start = now
        self.wall_start = datetime.now(UTC)
        for inter in inters:
            self._send(self._signal_device(inter.id),
                       self._signal_payload(conn, inter, now, signal_info.get(inter.id, {})))

    def _signal_device(self, tls: str) -> str:
        return f"sumo.{safe_id(self.twin)}.{safe_id(tls)}.signal"[:128]

    def _provision(self, device: str, entity: str, etype: str,
                   attrs: dict[str, dict[str, Any]], location: dict[str, Any] | None) -> None:
        doc: dict[str, Any] = {"deviceId": device, "entityId": entity, "entityType": etype,
                               "attributes": attrs}
        if location is not None:
            doc["location"] = location
        self.ingest.provision(self.tenant, validate_device(doc, self.ctx), self.actor)

    # -- every step ---------------------------------------------------------------------------
    def step(self, conn: Any, t: float, signal_info: dict[str, Any]) -> None:
        """Count this second; publish when a period is complete."""
        if self.period_start is None:
            return
        arrived = set(conn.simulation.getArrivedIDList())
        lane_api, veh_api = conn.lane, conn.vehicle
        for a in self.approaches:
            present: set[str] = set()
            occ = length = 0.0
            for lane, (start, end) in a.watch.items():
                ids = lane_api.getLastStepVehicleIDs(lane)
                full = lane_api.getLength(lane)
                if start <= 0.0 and end >= full:
                    occ += lane_api.getLastStepOccupancy(lane) * full
                    length += full
                else:
                    ids = [v for v in ids if start <= veh_api.getLanePosition(v) < end]
                    occ += sum(veh_api.getLength(v) for v in ids)
                    length += min(end, full) - max(0.0, start)
                present.update(ids)
            for v in present:
                speed = veh_api.getSpeed(v)
                a.speed_sum += speed
                a.halted_sum += speed < 0.1
                if v not in a.inside:
                    a.inside[v] = veh_api.getTimeLoss(v)
            a.veh_steps += len(present)
            a.occ_sum += occ / length if length > 0 else 0.0
            a.steps += 1
            for v in [v for v in a.inside if v not in present]:
                entry = a.inside.pop(v)
                if v in arrived:
                    continue  # it ended its trip on the approach: no crossing to count
                a.passed += 1
                a.delay_sum += max(0.0, veh_api.getTimeLoss(v) - entry)
        for tls, inter in self.inters.items():
            g = inter.phase_of(conn.trafficlight.getRedYellowGreenState(tls))
            if g is not None:  # a green, possibly with links held red (full exits)
                self.green_time[tls][g] += 1.0
        if t - self.period_start >= self.period - 1e-6:
            self.publish(conn, t, signal_info)

    @property
    def pending(self) -> bool:
        """Readings counted since the last publication."""
        return any(a.steps for a in self.approaches)

    def plan_changed(self, tls: str) -> None:
        if tls in self.changes:
            self.changes[tls] += 1

    # -- publishing ---------------------------------------------------------------------------
    def publish(self, conn: Any, t: float, signal_info: dict[str, Any]) -> None:
        """One reading per approach and per light, through device ingest."""
        wall_end = datetime.now(UTC)
        period = (self.wall_start, wall_end)
        for a in self.approaches:
            self._send(a.device, self._flow_payload(a, period))
            a.reset()
        for tls, inter in self.inters.items():
            self._send(self._signal_device(tls),
                       self._signal_payload(conn, inter, t, signal_info.get(tls, {})))
            self.green_time[tls] = [0.0] * len(inter.greens)
            self.changes[tls] = 0
        self.period_start, self.wall_start = t, wall_end

    def _flow_payload(self, a: Approach, period: tuple[datetime, datetime]) -> dict[str, Any]:
        start, end = _iso(period[0]), _iso(period[1])
        steps = max(1, a.steps)
        occupancy = a.occ_sum / steps
        out: dict[str, Any] = {
            "observedAt": end,
            "dateObserved": f"{start}/{end}",
            "dateObservedFrom": start,
            "dateObservedTo": end,
            "intensity": a.passed,
            "occupancy": round(min(1.0, occupancy), 4),
            "queueLength": round(a.halted_sum / steps, 2),
            "laneCount": len(a.lanes),
            "laneDirection": "forward",
            "refRoadSegment": f"urn:ngsi-ld:RoadSegment:{safe_id(self.twin)}-{safe_id(a.edge)}",
            "refTrafficSignal": signal_entity_id(self.twin, a.tls),
        }
        if a.veh_steps:
            mean = a.speed_sum / a.veh_steps
            out["averageVehicleSpeed"] = round(mean * 3.6, 2)
            out["congested"] = bool(mean < CONGESTED_SPEED_SHARE * a.allowed
                                    and occupancy >= CONGESTED_OCCUPANCY)
        else:
            out["congested"] = False
        if a.passed:
            out["averageDelay"] = round(a.delay_sum / a.passed, 2)
        return out

    def _signal_payload(self, conn: Any, inter: Intersection, t: float,
                        info: dict[str, Any]) -> dict[str, Any]:
        state = conn.trafficlight.getRedYellowGreenState(inter.id)
        current = inter.phase_of(state)
        if current is None:
            current = info.get("phase")
        out: dict[str, Any] = {
            "observedAt": _iso(datetime.now(UTC)),
            "signalState": state,
            "phaseCount": len(inter.greens),
            "phaseDurations": [round(x, 1) for x in self.green_time.get(inter.id, [])],
            "planChanges": self.changes.get(inter.id, 0),
            "simulationTime": t,
            "refTwin": self.twin,
        }
        if current is not None:
            out["currentPhase"] = current
        for key in ("controller", "modelVersion", "approvalPolicy", "lastPlanChange"):
            if info.get(key) is not None:
                out[key] = info[key]
        if not out["phaseDurations"]:
            del out["phaseDurations"]
        return out

    def _send(self, device: str, payload: dict[str, Any]) -> None:
        try:
            self.ingest.handle(self.tenant, device, payload, self.actor)
            self.published += 1
        except IngestError:
            self.failed += 1  # counted and logged by the ingest itself


def georeferenced(net_file: Path) -> bool:
    """Whether a SUMO network has a geo projection (its ``location`` element says so)."""
    try:
        with open_xml(net_file) as fh:
            for _event, el in ET.iterparse(fh, events=("start",)):
                if el.tag == "location":
                    return el.get("projParameter", "!") not in ("!", "")
    except (OSError, ET.ParseError):
        return False
    return False


def _point(conn: Any, x: float, y: float) -> dict[str, Any] | None:
    try:
        lon, lat = conn.simulation.convertGeo(x, y)
    except Exception:  # noqa: BLE001 - a network without a projection has no location
        return None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or (lon, lat) == (x, y):
        return None
    return {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}


def _line(conn: Any, shape: Any) -> dict[str, Any] | None:
    pts = [_point(conn, x, y) for x, y in shape]
    if len(pts) < 2 or any(p is None for p in pts):
        return None
    return {"type": "LineString", "coordinates": [p["coordinates"] for p in pts if p]}
