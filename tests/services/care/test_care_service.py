"""The care service in the city: enrolment with consent, readings through device ingest,
alerts as proposals that a care worker answers, absences, privacy of welfare data."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support import app_client, make_settings

B = "/ngsi-ld/v1"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"
T = "default"
KST = timedelta(hours=9)

@pytest.fixture
def city(tmp_path: Path) -> Iterator[Any]:
    settings = make_settings(f"sqlite:///{tmp_path}/care.db", tmp_path, auth_enabled=True,
                             trust_jobs=False)
    with app_client(settings) as c:
        s = c.services
        hdr = lambda key: {"Authorization": f"Bearer {key}"}  # noqa: E731
        c.officer = hdr(s.keys.create("operator", purposes=["care"]))  # type: ignore[attr-defined]
        c.worker = hdr(s.keys.create("operator", purposes=["care"]))  # type: ignore[attr-defined]
        c.plain = hdr(s.keys.create("operator"))  # type: ignore[attr-defined]
        c.reader = hdr(s.keys.create("reader"))  # type: ignore[attr-defined]
        c.admin = hdr(s.keys.create("admin"))  # type: ignore[attr-defined]
        yield c


ENROL = {"residentId": "800101-1234567", "meterId": "KEPCO-0042-7781", "district": "중앙동",
         "careWorker": "worker-17", "consent": {"given": True, "date": "2026-09-01"}}


def _routine_kw(local: datetime, day: int) -> float:
    """A home whose occupant is up at 07:00 and in bed by 22:30, with a fridge cycling."""
    fridge = 0.08 if (local.minute // 15) % 2 else 0.03
    h = local.hour + local.minute / 60
    if 7 <= h < 22.5:
        return 0.35 + 0.25 * (1 + math.sin(h + day)) + fridge
    return 0.05 + fridge


def _feed(c: Any, device: str, start_utc: datetime, days: float,
          kw: Any = _routine_kw) -> datetime:
    ingest = c.services.ingest.ingest
    t = start_utc
    end = start_utc + timedelta(days=days)
    while t < end:
        local = (t + KST).replace(tzinfo=None)
        ingest.handle(T, device, {"power": round(kw(local, (t - start_utc).days), 3),
                                  "observedAt": t.isoformat().replace("+00:00", "Z")}, "meter")
        t += timedelta(minutes=15)
    return t


def test_enrolment_needs_consent_the_purpose_and_keeps_no_raw_ids(city: Any) -> None:
    r = city.post("/care/v1/households", json=ENROL, headers=city.plain)
    assert r.status_code == 403 and "care" in r.json()["detail"]
    assert city.post("/care/v1/households", json=ENROL, headers=city.reader).status_code == 403
    bad = [({**ENROL, "consent": {"given": False, "date": "2026-09-01"}}, "consent.given"),
           ({k: v for k, v in ENROL.items() if k != "consent"}, "consent: Field required"),
           ({**ENROL, "name": "김영희"}, "name: Extra inputs"),
           ({**ENROL, "district": "x" * 65}, "district: String should have at most 64"),
           ({**ENROL, "consent": {"given": True, "date": "yesterday"}}, "consent.date")]
    for body, msg in bad:
        r = city.post("/care/v1/households", json=body, headers=city.officer)
        assert r.status_code == 400 and msg in r.json()["detail"], (body, r.text)
    r = city.post("/care/v1/households", json=ENROL, headers=city.officer)
    assert r.status_code == 201, r.text
    out = r.json()
    assert "800101" not in str(out) and "KEPCO" not in str(out)
    # the raw identifiers are nowhere in the hub or its audit log
    db = Path(city.services.store.path).read_bytes()
    assert b"800101-1234567" not in db and b"KEPCO-0042-7781" not in db
    # welfare attributes only for the care purpose
    hh = city.get(f"{B}/entities/{out['entity']}", headers=city.officer).json()
    assert hh["enrolled"]["value"] is True and hh["careStatus"]["value"] == "learning"
    other = city.get(f"{B}/entities/{out['entity']}", headers=city.plain).json()
    assert "enrolled" not in other
    # the system is registered and assessed at level III
    entry = city.services.trust.registry.get(T, "care-alerts")
    assert entry is not None
    assert city.services.trust.impact.oversight(T, "care-alerts").level == 3


def test_incapacitation_becomes_a_proposal_the_worker_answers(city: Any) -> None:
    hh = city.post("/care/v1/households", json=ENROL, headers=city.officer).json()
    care = city.services.care
    start = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)  # 00:00 in Seoul
    t = _feed(city, hh["deviceId"], start, 20)
    got = care.tick(T, now=t)
    assert got["readings"] == 20 * 96 and got["proposals"] == 0  # a normal routine: no alert
    # day 21: the occupant stops at 09:00 local; only the fridge is seen afterwards
    stop_local = 9

    def stopped(local: datetime, day: int) -> float:
        if local.hour >= stop_local or day > 0:
            return 0.05 + (0.08 if (local.minute // 15) % 2 else 0.03)
        return _routine_kw(local, day)

    now = t
    proposals: list[dict[str, Any]] = []
    for _ in range(16):  # hour by hour
        now = _feed(city, hh["deviceId"], now, 1 / 24, stopped)
        care.tick(T, now=now)
        proposals = city.services.trust.decisions.list_proposals(
            T, system="care-alerts")["items"]
        if proposals:
            break
    assert proposals, "no alert within 16 hours of the stop"
    first = proposals[-1]
    delay_h = (now - (t + timedelta(hours=stop_local))).total_seconds() / 3600
    assert delay_h <= 12
    assert first["status"] == "pending" and first["route"] == "queue"  # a human decides
    assert first["action"]["params"]["alert"]["grade"] in (1, 2, 3)
    assert "800101" not in str(first)
    # the worker answers: a visit was made
    pid = first["id"]
    r = city.post(f"/trust/v1/proposals/{pid}/modify", headers=city.worker, json={
        "action": {"kind": "care.response",
                   "params": {**first["action"]["params"], "outcome": "visit"}},
        "reason": "visited: found on the floor, ambulance called", "approve": True})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "applied"
    ent = city.get(f"{B}/entities/{hh['entity']}", headers=city.officer).json()
    assert ent["careStatus"]["value"] == "visited" and "lastCheckInAt" in ent
    status = city.get(f"/care/v1/households/{hh['household']}", headers=city.worker).json()
    assert status["learned"]["days_of_history"] >= 14
    assert city.get(f"/care/v1/households/{hh['household']}",
                    headers=city.plain).status_code == 403
    reads = [a for a in city.services.store.audit_log(None, 10_000)
             if a["action"] == "privacy.read" and a["target"] == hh["entity"]]
    assert reads


def test_a_consented_motion_sensor_shows_the_resident_is_up(city: Any) -> None:
    """Two homes with the same routine stop using power at 09:00; in one the motion sensor
    (consented at enrolment) sees the resident every half hour until bedtime. Only the other
    is alerted. A sensor kind the household did not consent to has no device, and its
    readings are refused."""
    from maeul.ingest.devices import IngestError

    enrol = {**ENROL, "consent": {"given": True, "date": "2026-09-01",
                                  "scope": ["electricity", "motion"]}}
    hh = city.post("/care/v1/households", json=enrol, headers=city.officer).json()
    other = city.post("/care/v1/households", json={**ENROL, "residentId": "790202-2345678",
                                                   "meterId": "KEPCO-0042-9999"},
                      headers=city.officer).json()
    assert set(hh["sensorDevices"]) == {"motion"} and other["sensorDevices"] == {}
    care, ingest = city.services.care, city.services.ingest.ingest
    start = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)  # 00:00 in Seoul
    for home in (hh, other):
        t = _feed(city, home["deviceId"], start, 20)
    care.tick(T, now=t)

    def stopped(local: datetime, day: int) -> float:
        if local.hour >= 9 or day > 0:
            return 0.05 + (0.08 if (local.minute // 15) % 2 else 0.03)
        return _routine_kw(local, day)

    now = t
    for hour in range(23):
        if 9 <= hour < 22:
            for minute in (10, 40):  # the resident walks about, using no power
                seen = t + timedelta(hours=hour, minutes=minute)
                ingest.handle(T, hh["sensorDevices"]["motion"], {
                    "motion": 1, "observedAt": seen.isoformat().replace("+00:00", "Z")},
                    "sensor")
        for home in (hh, other):
            later = _feed(city, home["deviceId"], now, 1 / 24, stopped)
        now = later
        care.tick(T, now=now)
    raised = city.services.trust.decisions.list_proposals(T, system="care-alerts")["items"]
    homes = {p["target"][0] if isinstance(p["target"], list) else p["target"] for p in raised}
    assert homes == {other["entity"]}
    doc = care.household(T, hh["household"])
    assert doc["sensors"] == ["motionDetected"] and doc["sensedUntil"]
    # the meter's entity shows the motion only to keys with the care purpose
    plain = city.get(f"{B}/entities/{hh['meter']}", headers=city.plain).json()
    assert "motionDetected" not in plain
    seen_by_care = city.get(f"{B}/entities/{hh['meter']}", headers=city.officer).json()
    assert seen_by_care["motionDetected"]["value"] == 1
    mid = hh["deviceId"].split("-", 1)[1]
    with pytest.raises(IngestError):
        ingest.handle(T, f"door-{mid}", {"door": 1}, "sensor")
    with pytest.raises(IngestError):  # the meter's device takes no motion readings either
        ingest.handle(T, hh["deviceId"], {"motion": 1}, "meter")


def test_an_announced_absence_silences_alerts(city: Any) -> None:
    hh = city.post("/care/v1/households", json=ENROL, headers=city.officer).json()
    care = city.services.care
    start = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
    t = _feed(city, hh["deviceId"], start, 20)
    care.tick(T, now=t)
    r = city.post(f"/care/v1/households/{hh['household']}/absences", headers=city.officer,
                  json={"start": t.isoformat(), "end": (t + timedelta(days=3)).isoformat(),
                        "reason": "hospital"})
    assert r.status_code == 201, r.text
    bad = city.post(f"/care/v1/households/{hh['household']}/absences", headers=city.officer,
                    json={"start": t.isoformat(), "end": t.isoformat()})
    assert bad.status_code == 400 and "end" in bad.json()["detail"]
    assert city.post("/care/v1/households/nobody/absences", headers=city.officer,
                     json={"start": t.isoformat(), "end": (t + timedelta(days=1)).isoformat()}
                     ).status_code == 404

    def empty(local: datetime, day: int) -> float:
        return 0.05 + (0.08 if (local.minute // 15) % 2 else 0.03)

    now = _feed(city, hh["deviceId"], t, 2, empty)
    care.tick(T, now=now)
    assert city.services.trust.decisions.list_proposals(T, system="care-alerts")["total"] == 0


def test_vacancy_is_published_per_district_never_per_home(city: Any) -> None:
    from maeul.hub.entities import expand_entity
    from maeul.hub.store.base import HistoryRow

    s = city.services
    ctx = s.resolver.resolve(None)
    power = ctx.expand_term("activePower")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(12):
        district = "중앙동" if i < 10 else "북동"  # 북동 has too few buildings to publish
        eid = f"urn:ngsi-ld:EnergyMeter:v{i}"
        s.hub.create_entity(T, expand_entity({
            "id": eid, "type": "EnergyMeter",
            "district": {"type": "Property", "value": district}}, ctx), "test")
        empty_from = 60 if i < 3 else 10_000  # three homes empty for the last 100 days
        rows = []
        for h in range(160 * 24):
            t = now - timedelta(hours=160 * 24 - h)
            busy = h // 24 < empty_from and 7 <= (t + KST).hour < 22
            kw = 0.6 if busy else 0.04
            ts = t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            rows.append(HistoryRow(eid, power, "", f"i{i}-{h}", ts, ts,
                                   {"type": "Property", "value": kw, "observedAt": ts}))
        s.store.write(lambda tx, rows=rows: tx.add_history(T, rows, ["EnergyMeter"]))
    r = city.get("/public/v1/vacancy")  # anonymous: aggregated figures only
    assert r.status_code == 200
    assert r.json()["districts"]["중앙동"]["buildings"] == 10
    assert "withheld" in r.json()["districts"]["북동"] and "EnergyMeter:v" not in r.text
    out = s.care.vacancy_by_district(T, now=now)
    central = out["districts"]["중앙동"]
    assert central["buildings"] == 10
    assert central["share_likely_empty"] == pytest.approx(0.3)
    assert "withheld" in out["districts"]["북동"]
    assert "EnergyMeter:v" not in str(out)
