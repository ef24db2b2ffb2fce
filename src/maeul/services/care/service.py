"""The care service in the city: enrolment, readings from the hub, alerts as proposals.

- ``enroll`` creates a ``CareHousehold`` and its ``EnergyMeter`` in the hub (the privacy policy
  pseudonymises ``residentId`` and ``meterId`` at ingest, so raw identifiers are never stored)
  and provisions the meter as a device, so its readings arrive through device ingest like any
  sensor's.
- ``tick`` (a scheduled job) feeds each household's new ``activePower`` history into its model
  (state kept in the store), and submits each new or escalated alert to the decision engine
  as a ``care.response`` proposal that always needs a care worker's review.
- The worker answers through the decision engine: approve (check-in call made, all well),
  modify with ``outcome`` (``visit``, ``false-alarm``) or reject (a false alarm). The answer
  feeds back into the model and stamps ``lastCheckInAt`` on the household.
- Announced absences silence alerts.

Readings and alerts are welfare data: the hub shows them only to keys with the ``care``
purpose (privacy policy), and this service's own API checks the purpose and audits reads.
"""

from __future__ import annotations

import logging
import threading
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...hub.auth import Caller
from ...hub.core import upsert_entity
from ...hub.entities import expand_entity, now_iso, parse_time
from ...hub.errors import BadRequestData, Forbidden, ResourceNotFound
from ...hub.store.base import TemporalFilter, Tx
from ...trust.events import SensitiveRead, emit
from ...trust.http import validation_message
from ...trust.jobs import Job
from .model import FORMAT, OUTCOMES, Alert, Evidence, HouseholdModel
from .registry import ACTION_KIND, SYSTEM_ID, ensure_registered

log = logging.getLogger(__name__)
PURPOSE = "care"
HH_KIND = "carehh"  # the service's record of a household (pseudonymous ids only)
MODEL_KIND = "caremodel"  # the household model's state
FED_KIND = "carefed"  # rejected proposals already fed back as false alarms
HH_TYPE = "CareHousehold"
METER_TYPE = "EnergyMeter"
POWER = "activePower"
#: sensors a household may consent to besides the meter: payload key -> (attribute, unit);
#: a reading with a value above 0 (or true) is an event: someone is at home
SENSORS = {"motion": ("motionDetected", None), "door": ("doorOpened", None),
           "water": ("waterFlow", "LTR")}
ACTOR = "service:care"
EXPIRY_H = {1: 24, 2: 12, 3: 6}  # an unanswered alert stays actionable this long


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    given: Literal[True]
    date: str = Field(min_length=10, max_length=40)
    scope: list[Literal["electricity", "water", "motion", "door"]] = Field(
        default=["electricity"], min_length=1)


class EnrollIn(BaseModel):
    """What a welfare officer enters to enrol a household (raw ids are pseudonymised)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    residentId: str = Field(min_length=1, max_length=64)
    meterId: str = Field(min_length=1, max_length=64)
    district: str = Field(min_length=1, max_length=64)
    careWorker: str = Field(min_length=1, max_length=128)
    consent: Consent
    livesAlone: bool = True


class AbsenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    start: str
    end: str
    reason: Literal["hospital", "family-visit", "travel", "other"] = "other"


def _check(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequestData(validation_message(exc)) from None


def alert_from_json(d: dict[str, Any]) -> Alert:
    ev = d["evidence"]
    return Alert(str(d["household"]), str(d["kind"]), int(d["grade"]),
                 datetime.fromisoformat(d["time"]), datetime.fromisoformat(d["since"]),
                 Evidence(float(ev["expected"]), float(ev["seen"]), str(ev["unit"]),
                          float(ev["rate_per_month"]), str(ev["ko"]), str(ev["en"])))


class CareService:
    """One per process; ``services.care``."""

    def __init__(self, services: Any, tz: str = "Asia/Seoul", interval_s: float = 60.0) -> None:
        self.s = services
        self.tz = ZoneInfo(tz)
        self.interval_s = interval_s
        self._lock = threading.Lock()  # one tick at a time in this process
        self.s.trust.decisions.register_applier(ACTION_KIND, self._apply, self._rollback,
                                                validate=self._validate)

    # -- helpers ---------------------------------------------------------------------------
    def _ctx(self) -> Any:
        return self.s.resolver.resolve(None)

    def _short(self, tenant: str, raw: str) -> str:
        return str(self.s.trust.privacy.pseudonym(tenant, raw)).rsplit(":", 1)[-1][:24]

    def require_purpose(self, caller: Caller) -> None:
        if PURPOSE not in caller.purposes:
            raise Forbidden("care data needs a key with the 'care' purpose")

    def households(self, tenant: str) -> list[dict[str, Any]]:
        return [d for _t, _k, d in self.s.store.reader().list_json(HH_KIND, tenant)]

    def household(self, tenant: str, hid: str) -> dict[str, Any]:
        doc = self.s.store.reader().get_json(HH_KIND, tenant, hid)
        if doc is None:
            raise ResourceNotFound(f"household {hid} is not enrolled")
        return doc  # type: ignore[no-any-return]

    def _model(self, tx: Tx, tenant: str, hid: str) -> HouseholdModel:
        state = tx.get_json(MODEL_KIND, tenant, hid)
        return HouseholdModel.from_json(state) if state else HouseholdModel(hid)

    # -- enrolment -------------------------------------------------------------------------
    def enroll(self, tenant: str, data: Any, actor: str) -> dict[str, Any]:
        """Enrol a consenting household; the ids a meter and the care worker will use."""
        e: EnrollIn = _check(EnrollIn, data)
        parse_time(e.consent.date, "consent.date")
        ensure_registered(self.s, tenant)
        hid = self._short(tenant, e.residentId)
        mid = self._short(tenant, e.meterId)
        hh_eid = f"urn:ngsi-ld:{HH_TYPE}:{hid}"
        meter_eid = f"urn:ngsi-ld:{METER_TYPE}:{mid}"
        device_id = f"meter-{mid}"
        ctx = self._ctx()
        hh = expand_entity({
            "id": hh_eid, "type": HH_TYPE,
            "residentId": {"type": "Property", "value": e.residentId},
            "meterId": {"type": "Property", "value": e.meterId},
            "district": {"type": "Property", "value": e.district},
            "careWorker": {"type": "Property", "value": e.careWorker},
            "enrolled": {"type": "Property", "value": True},
            "livesAlone": {"type": "Property", "value": e.livesAlone},
            "consentGivenAt": {"type": "Property", "value": e.consent.date},
            "consentScope": {"type": "Property", "value": e.consent.scope},
            "careStatus": {"type": "Property", "value": "learning"},
        }, ctx)
        meter = expand_entity({
            "id": meter_eid, "type": METER_TYPE,
            "meterId": {"type": "Property", "value": e.meterId},
            "refHousehold": {"type": "Relationship", "object": hh_eid},
            "district": {"type": "Property", "value": e.district},
        }, ctx)
        from ...ingest.devices import validate_device

        device = validate_device({
            "deviceId": device_id, "entityId": meter_eid, "entityType": METER_TYPE,
            "attributes": {"power": {"name": POWER, "unitCode": "KWT"}},
        }, ctx)
        # the sensors consented to: one device each, writing to the meter's entity (the
        # home's measuring point); only consented kinds are provisioned, so no other reading
        # of the home is accepted
        sensors = {k: SENSORS[k] for k in e.consent.scope if k in SENSORS}
        sensor_devices = {k: validate_device({
            "deviceId": f"{k}-{mid}", "entityId": meter_eid, "entityType": METER_TYPE,
            "attributes": {k: {"name": name, **({"unitCode": unit} if unit else {})}},
        }, ctx) for k, (name, unit) in sensors.items()}
        upsert_entity(self.s.hub, tenant, hh, actor)
        upsert_entity(self.s.hub, tenant, meter, actor)
        self._provision(tenant, device, actor)
        for d in sensor_devices.values():
            self._provision(tenant, d, actor)
        doc: dict[str, Any] = {"id": hid, "entity": hh_eid, "meter": meter_eid, "device": device_id,
               "district": e.district, "careWorker": e.careWorker, "enrolledAt": now_iso(),
               "processedUntil": None, "open": {},
               "sensors": sorted(name for name, _u in sensors.values()), "sensedUntil": None}

        def op(tx: Tx) -> None:
            old = tx.get_json(HH_KIND, tenant, hid)
            if old is not None:  # re-enrolment keeps what the model has learned
                doc["processedUntil"] = old.get("processedUntil")
                doc["sensedUntil"] = old.get("sensedUntil")
                doc["open"] = old.get("open", {})
            tx.put_json(HH_KIND, tenant, hid, doc)

        self.s.store.write(op)
        return {"household": hid, "entity": hh_eid, "meter": meter_eid, "deviceId": device_id,
                "sensorDevices": {k: f"{k}-{mid}" for k in sensors}}

    def _provision(self, tenant: str, device: dict[str, Any], actor: str) -> None:
        if self.s.ingest is None:
            from ...ingest.devices import DeviceIngest
            from ...ingest.http import DeviceIngestHolder

            self.s.ingest = DeviceIngestHolder(DeviceIngest(self.s.hub))
        self.s.ingest.ingest.provision(tenant, device, actor)

    def absence(self, tenant: str, hid: str, data: Any, actor: str) -> dict[str, Any]:
        """An announced absence (hospital stay, family visit): no alerts in it."""
        a: AbsenceIn = _check(AbsenceIn, data)
        start, end = parse_time(a.start, "start"), parse_time(a.end, "end")
        if end <= start:
            raise BadRequestData("end: the absence must end after it starts")
        self.household(tenant, hid)

        def op(tx: Tx) -> None:
            m = self._model(tx, tenant, hid)
            m.announce_absence(self._wall(start), self._wall(end), a.reason)
            tx.put_json(MODEL_KIND, tenant, hid, m.to_json())

        self.s.store.write(op)
        return {"household": hid, "start": a.start, "end": a.end, "reason": a.reason}

    def status(self, tenant: str, hid: str, caller: Caller) -> dict[str, Any]:
        """What the model has learned and the open alerts; care purpose only, audited."""
        self.require_purpose(caller)
        doc = self.household(tenant, hid)
        state = self.s.store.reader().get_json(MODEL_KIND, tenant, hid)
        learned = HouseholdModel.from_json(state).status() if state else None
        self.s.store.write(lambda tx: emit(tx, SensitiveRead(
            tenant, caller.actor, doc["entity"], purpose=PURPOSE, attrs=["careModel"])))
        return {"household": hid, "entity": doc["entity"], "district": doc["district"],
                "learned": learned, "openAlerts": doc.get("open", {})}

    # -- the scheduled step ----------------------------------------------------------------
    def _wall(self, t: datetime) -> datetime:
        """A UTC time as the household's wall-clock time (the model thinks in local time)."""
        return t.astimezone(self.tz).replace(tzinfo=None)

    def tick(self, tenant: str, now: datetime | None = None) -> dict[str, int]:
        """Feed new readings, raise alerts as proposals, learn from rejections."""
        now = now or datetime.now(UTC)
        out = {"households": 0, "readings": 0, "alerts": 0, "proposals": 0, "fed_back": 0}
        with self._lock:
            out["fed_back"] = self._learn_from_rejections(tenant)
            power = self._ctx().expand_term(POWER)
            for doc in self.households(tenant):
                out["households"] += 1
                n, alerts = self._step(tenant, doc, power, now)
                out["readings"] += n
                out["alerts"] += len(alerts)
                out["proposals"] += self._propose(tenant, doc["id"], alerts, now)
        return out

    def tick_all(self) -> None:
        for tenant in self.s.store.tenants():
            if self.s.store.reader().list_json(HH_KIND, tenant):
                self.tick(tenant)

    def _step(self, tenant: str, doc: dict[str, Any], power: str,
              now: datetime) -> tuple[int, list[Alert]]:
        since = doc.get("processedUntil")
        flt = TemporalFilter(attrs=(power,), timerel="after" if since else None,
                             time_at=since)
        rows = [r for r in self.s.store.history(tenant, doc["meter"], flt)
                if r.observed_at and (since is None or r.observed_at > since)]
        rows.sort(key=lambda r: str(r.observed_at))
        pairs = []
        for r in rows:
            v = r.doc.get("value")
            if isinstance(v, int | float) and not isinstance(v, bool):
                pairs.append((self._wall(parse_time(str(r.observed_at), "observedAt")),
                              float(v)))
        events, sensed_until = self._events(tenant, doc)
        hid = doc["id"]
        alerts: list[Alert] = []

        def op(tx: Tx) -> None:
            m = self._model(tx, tenant, hid)
            if events:
                m.sense(events)
            if pairs:
                m.update(pairs)
            alerts.extend(m.detect(self._wall(now)))
            tx.put_json(MODEL_KIND, tenant, hid, m.to_json())
            cur = tx.get_json(HH_KIND, tenant, hid) or doc
            if rows:
                cur["processedUntil"] = rows[-1].observed_at
            if sensed_until:
                cur["sensedUntil"] = sensed_until
            tx.put_json(HH_KIND, tenant, hid, cur)

        self.s.store.write(op)
        return len(pairs), alerts

    def _events(self, tenant: str, doc: dict[str, Any]) -> tuple[list[datetime], str | None]:
        """New events of the home's consented sensors (wall-clock times) and the newest
        reading's time (the cursor); a reading of 0 or false is no event."""
        names = doc.get("sensors") or []
        if not names:
            return [], None
        since = doc.get("sensedUntil")
        ctx = self._ctx()
        flt = TemporalFilter(attrs=tuple(ctx.expand_term(n) for n in names),
                             timerel="after" if since else None, time_at=since)
        rows = [r for r in self.s.store.history(tenant, doc["meter"], flt)
                if r.observed_at and (since is None or r.observed_at > since)]
        events = []
        for r in rows:
            v = r.doc.get("value")
            if (v is True or (isinstance(v, int | float) and not isinstance(v, bool)
                              and v > 0)):
                events.append(self._wall(parse_time(str(r.observed_at), "observedAt")))
        newest = max((str(r.observed_at) for r in rows), default=None)
        return events, newest

    def _propose(self, tenant: str, hid: str, alerts: list[Alert], now: datetime) -> int:
        doc = self.household(tenant, hid)
        opened = dict(doc.get("open", {}))
        n = 0
        for a in alerts:
            prev = opened.get(a.episode)
            if prev is not None and int(prev["grade"]) >= a.grade:
                continue  # already in the worker's queue at this grade or higher
            suggested = "visit" if a.grade >= 3 else "check-in-call"
            ev = a.evidence
            why = (f"[{a.grade_ko}/{a.grade_en}] {ev.text_ko} / {ev.text_en}")[:2000]
            p = self.s.trust.decisions.submit(tenant, {
                "system": SYSTEM_ID,
                "action": {"kind": ACTION_KIND,
                           "params": {"household": hid, "alert": a.to_json(),
                                      "suggested": suggested}},
                "target": doc["entity"],
                "why": why,
                "evidence": {"links": [{"entity": doc["meter"], "attrs": [POWER]}],
                             "modelVersion": FORMAT},
                "expectedEffect": {"response": suggested, "grade": a.grade},
                # the engine's clock, not the data's: replayed readings still get a live expiry
                "expiresAt": (self.s.trust.decisions.clock()
                              + timedelta(hours=EXPIRY_H[a.grade])).isoformat(),
                "review": "required",
            }, ACTOR)
            opened[a.episode] = {"grade": a.grade, "proposal": p["id"]}
            n += 1
        if n:
            def op(tx: Tx) -> None:
                cur = tx.get_json(HH_KIND, tenant, hid) or doc
                cur["open"] = opened
                tx.put_json(HH_KIND, tenant, hid, cur)

            self.s.store.write(op)
            self.s.hub.append_attrs(tenant, doc["entity"], expand_entity({
                "id": doc["entity"], "type": HH_TYPE,
                "careStatus": {"type": "Property", "value": "alert"},
                "lastAlertGrade": {"type": "Property",
                                   "value": max(int(v["grade"]) for v in opened.values())},
            }, self._ctx()), False, ACTOR)
        return n

    def _learn_from_rejections(self, tenant: str) -> int:
        got = self.s.trust.decisions.list_proposals(tenant, status="rejected", system=SYSTEM_ID,
                                                    limit=1000)
        n = 0
        for p in got["items"]:
            if self.s.store.reader().get_json(FED_KIND, tenant, p["id"]) is not None:
                continue
            params = p["action"].get("params") or {}
            self._feedback(tenant, params, "false-alarm", p["id"])
            n += 1
        return n

    # -- the worker's answer ---------------------------------------------------------------
    def _validate(self, params: dict[str, Any], targets: list[str]) -> None:
        if not isinstance(params.get("household"), str) or not isinstance(
                params.get("alert"), dict):
            raise BadRequestData("action.params needs household and alert")
        outcome = params.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            raise BadRequestData(f"action.params.outcome must be one of {', '.join(OUTCOMES)}")

    def _feedback(self, tenant: str, params: dict[str, Any], outcome: str, pid: str) -> None:
        hid = str(params["household"])
        alert = alert_from_json(params["alert"])

        def op(tx: Tx) -> None:
            if tx.get_json(FED_KIND, tenant, pid) is not None:
                return  # a retried apply feeds the model once
            m = self._model(tx, tenant, hid)
            m.feedback(alert, outcome)
            tx.put_json(MODEL_KIND, tenant, hid, m.to_json())
            tx.put_json(FED_KIND, tenant, pid, {"outcome": outcome, "at": now_iso()})
            cur = tx.get_json(HH_KIND, tenant, hid)
            if cur is not None:
                cur["open"] = {k: v for k, v in cur.get("open", {}).items()
                               if v.get("proposal") != pid and k != alert.episode}
                tx.put_json(HH_KIND, tenant, hid, cur)

        self.s.store.write(op)

    def _apply(self, tenant: str, proposal: dict[str, Any], key: str) -> dict[str, Any]:
        params = proposal["action"].get("params") or {}
        outcome = str(params.get("outcome") or "check-in-ok")
        self._feedback(tenant, params, outcome, key)
        doc = self.s.store.reader().get_json(HH_KIND, tenant, str(params["household"]))
        if doc is not None:
            status = {"false-alarm": "ok", "check-in-ok": "ok", "visit": "visited"}[outcome]
            self.s.hub.append_attrs(tenant, doc["entity"], expand_entity({
                "id": doc["entity"], "type": HH_TYPE,
                "lastCheckInAt": {"type": "Property", "value": now_iso()},
                "careStatus": {"type": "Property", "value": status},
            }, self._ctx()), False, ACTOR)
        return {"outcome": outcome}

    def _rollback(self, tenant: str, proposal: dict[str, Any], key: str) -> dict[str, Any]:
        # a call or a visit cannot be undone; the model keeps what it learned from it
        return {"note": "a response that happened cannot be undone"}

    # -- empty houses, for planners ---------------------------------------------------------
    def vacancy_by_district(self, tenant: str, now: datetime | None = None,
                            min_homes: int | None = None) -> dict[str, Any]:
        """Empty-house risk per district from every metered building's last 90 days; a
        district with too few buildings is withheld, and no building's own score leaves."""
        from ...hub.core import Query
        from .readings import Readings
        from .vacancy import MIN_HOMES, district_vacancy, vacancy

        now = now or datetime.now(UTC)
        ctx = self._ctx()
        power, district = ctx.expand_term(POWER), ctx.expand_term("district")
        since = (now - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        by_district: dict[str, dict[str, float]] = {}
        offset = 0
        while True:
            page, _ = self.s.hub.query(tenant, Query(types=(ctx.expand_term(METER_TYPE),),
                                                     limit=1000, offset=offset))
            for ent in page:
                d = (ent.get("attrs", {}).get(district) or [{}])[0].get("value")
                if not isinstance(d, str):
                    continue
                flt = TemporalFilter(attrs=(power,), timerel="after", time_at=since)
                pairs = [(self._wall(parse_time(str(r.observed_at), "observedAt")),
                          float(r.doc["value"]))
                         for r in self.s.store.history(tenant, ent["id"], flt)
                         if r.observed_at and isinstance(r.doc.get("value"), int | float)]
                if not pairs:
                    continue
                pairs.sort()
                with warnings.catch_warnings():
                    # days with too few hours are NaN rows by design; numpy warns about them
                    warnings.simplefilter("ignore", RuntimeWarning)
                    score = vacancy(Readings.from_pairs([p[0] for p in pairs],
                                                        [p[1] for p in pairs])).score
                by_district.setdefault(d, {})[ent["id"]] = score
            if len(page) < 1000:
                break
            offset += 1000
        k = min_homes if min_homes is not None else MIN_HOMES
        out: dict[str, Any] = {}
        for d, scores in sorted(by_district.items()):
            agg = district_vacancy(scores, min_homes=k)
            out[d] = agg if agg is not None else {
                "withheld": f"fewer than {k} metered buildings"}
        return {"computedAt": now.isoformat(), "minBuildings": k, "districts": out}

    def jobs(self) -> list[Job]:
        return [Job("care-tick", self.interval_s, self.tick_all, first_s=5.0)]
