"""KPI formulas on both stores: every aggregation, windows, paths, elapsed times, history
peaks, ratios and changes, and each built-in KPI against hand-computed values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from maeul.hub.entities import expand_entity, expand_fragment
from maeul.trust.kpi_model import KpiDefinition
from support import make_settings

AT = datetime(2026, 6, 1, tzinfo=UTC)
SDM_TRAFFIC = "https://smartdatamodels.org/dataModel.Transportation/TrafficFlowObserved"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(**kw: float) -> str:
    return iso(AT - timedelta(**kw))


@pytest.fixture
def svc(store_url: str, tmp_path: Path) -> Iterator[Any]:
    from maeul.hub.app import Services

    s = Services(make_settings(store_url, tmp_path, trust_jobs=False))
    yield s
    s.close()


def put(svc: Any, doc: dict[str, Any], tenant: str = "default") -> None:
    svc.hub.create_entity(tenant, expand_entity(doc, svc.resolver.resolve(None)))


def observe(svc: Any, eid: str, attr: str, value: Any, at: str, tenant: str = "default") -> None:
    frag = expand_fragment({attr: {"type": "Property", "value": value, "observedAt": at}},
                           svc.resolver.resolve(None))
    svc.hub.merge_entity(tenant, eid, frag)


def kdef(formula: dict[str, Any], **over: Any) -> KpiDefinition:
    doc: dict[str, Any] = {
        "id": "t", "name": {"ko": "시험", "en": "Test"}, "description": {"ko": "시험", "en": "T"},
        "formula": formula, "unit": "x", "target": {"value": 5, "direction": "lower"},
        "owner": "QA", "category": "test", "decimals": 6,
    }
    doc.update(over)
    return KpiDefinition.model_validate(doc)


def value(svc: Any, formula: dict[str, Any], tenant: str = "default", **over: Any) -> Any:
    return svc.trust.kpis.evaluate(tenant, kdef(formula, **over), AT)


def builtin(svc: Any, kpi_id: str, tenant: str = "default") -> Any:
    d, src = svc.trust.kpis.definition(tenant, kpi_id)
    assert src == "builtin"
    return svc.trust.kpis.evaluate(tenant, d, AT)


# -- sensors: readings 1, 2, 3, 4, 10; three measured within the last day, two 3 days ago ---
READINGS = [(1, ago(hours=2)), (2, ago(hours=5)), (3, ago(hours=20)), (4, ago(days=3, hours=-1)),
            (10, ago(days=3, hours=-2))]


@pytest.fixture
def sensors(svc: Any) -> Any:
    for i, (v, t) in enumerate(READINGS):
        put(svc, {"id": f"urn:ngsi-ld:Sensor:{i}", "type": "Sensor",
                  "reading": {"type": "Property", "value": v, "observedAt": t},
                  "measuredAt": {"type": "Property", "value": {"@type": "DateTime", "@value": t}},
                  "meta": {"type": "Property", "value": {"load": {"kw": v * 2}}}})
    put(svc, {"id": "urn:ngsi-ld:Sensor:text", "type": "Sensor",
              "reading": {"type": "Property", "value": "n/a"}})
    return svc


def agg(op: str, **kw: Any) -> dict[str, Any]:
    sel = {"type": "Sensor", **kw.pop("sel", {})}
    return {"op": op, "from": sel, **kw}


def test_every_aggregation_hand_computed(sensors: Any) -> None:
    expect = {"sum": 20, "avg": 4, "min": 1, "max": 10, "median": 3,
              # sorted 1 2 3 4 10: rank 0.9 * 4 = 3.6 -> 4 + 0.6 * (10 - 4)
              "p90": 7.6}
    for op, want in expect.items():
        r = value(sensors, agg(op, value="reading"))
        assert r.value == pytest.approx(want), op
        assert r.samples == 5 and r.skipped == 1  # the text reading is skipped, not zero
    r = value(sensors, agg("percentile", value="reading", p=25))
    assert r.value == pytest.approx(2)
    assert value(sensors, agg("count")).value == 6
    assert value(sensors, agg("count", value="measuredAt")).value == 5


def test_q_filter_and_paths_into_values(sensors: Any) -> None:
    assert value(sensors, agg("count", sel={"q": "reading>2"})).value == 3
    assert value(sensors, agg("sum", value="reading", sel={"q": "reading<3|reading==10"})
                 ).value == 13
    # a dotted path runs into the compound value; brackets work as in q
    assert value(sensors, agg("max", value="meta.load.kw")).value == 20
    assert value(sensors, agg("max", value="meta[load][kw]")).value == 20
    assert value(sensors, agg("sum", value="meta.load.missing")).value is None


def test_windows_relative_to_the_computation_time(sensors: Any) -> None:
    last_day = {"last": "P1D", "on": "measuredAt"}
    assert value(sensors, agg("count", sel={"window": last_day})).value == 3
    assert value(sensors, agg("avg", value="reading", sel={"window": last_day})).value == 2
    # observedAt of the attribute places entities the same way
    on_obs = {"last": "P1D", "on": "reading.observedAt"}
    assert value(sensors, agg("sum", value="reading", sel={"window": on_obs})).value == 6
    # the day that ended two days ago holds the other two readings
    earlier = {"last": "P1D", "offset": "P2D", "on": "measuredAt"}
    assert value(sensors, agg("sum", value="reading", sel={"window": earlier})).value == 14
    # entities created just now are outside a window that ended an hour ago
    modified = {"last": "P1D", "offset": "PT1H"}
    r = sensors.trust.kpis.evaluate("default", kdef(agg("count", sel={"window": modified})),
                                    datetime.now(UTC))
    assert r.value == 0


def test_ratio_difference_and_percent_change(sensors: Any) -> None:
    low = agg("count", sel={"q": "reading<3"})
    high = agg("count", sel={"q": "reading>=3"})
    assert value(sensors, {"op": "ratio", "numerator": low, "denominator": high, "scale": 100}
                 ).value == pytest.approx(200 / 3)
    assert value(sensors, {"op": "difference", "baseline": low, "current": high}).value == 1
    assert value(sensors, {"op": "percentChange", "baseline": low, "current": high}
                 ).value == pytest.approx(50)
    assert value(sensors, {"op": "percentReduction", "baseline": high, "current": low}
                 ).value == pytest.approx(100 / 3)
    # between two windows of one formula: 3 readings in the last day, 2 in the one before
    windows = {"op": "percentChange", "formula": agg("count", sel={"window": {
        "last": "P1D", "on": "measuredAt"}}),
        "baselineWindow": {"last": "P1D", "offset": "P2D"}, "currentWindow": {"last": "P1D"}}
    assert value(sensors, windows).value == pytest.approx(50)


def test_no_data_is_said_never_zero(svc: Any, sensors: Any) -> None:
    r = value(svc, {"op": "count", "from": {"type": "Nothing"}})
    assert r.value is None and r.reason == "no data: no Nothing entities"
    r = value(svc, agg("avg", value="reading", sel={"q": "reading>100"}))
    assert r.value is None and r.reason.startswith("no data")
    zero = agg("count", sel={"q": "reading>100"})
    r = value(svc, {"op": "ratio", "numerator": agg("count"), "denominator": zero})
    assert r.value is None and "denominator is zero" in r.reason
    r = value(svc, {"op": "percentChange", "baseline": zero, "current": agg("count")})
    assert r.value is None and "baseline is zero" in r.reason
    r = value(svc, {"op": "ratio", "numerator": agg("count"),
                    "denominator": {"op": "count", "from": {"type": "Nothing"}}})
    assert r.value is None and r.status == "noData"
    assert r.reason == "denominator: no data: no Nothing entities"


def test_other_tenants_are_not_counted(sensors: Any) -> None:
    put(sensors, {"id": "urn:ngsi-ld:Sensor:x", "type": "Sensor",
                  "reading": {"type": "Property", "value": 100}}, tenant="other")
    assert value(sensors, agg("sum", value="reading"), tenant="other").value == 100
    assert value(sensors, agg("sum", value="reading")).value == 20


# -- the built-in definitions ----------------------------------------------------------------
def test_complaint_resolution_median_of_closed_requests(svc: Any) -> None:
    def req(n: int, status: str, requested: str, **closing: str) -> None:
        doc: dict[str, Any] = {"id": f"urn:ngsi-ld:ServiceRequest:{n}", "type": "ServiceRequest",
                               "status": status, "requested_datetime": requested}
        doc.update(closing)
        put(svc, doc)

    # resolution times 2 h, 5 h (closedAt wins over updated_datetime) and 30 h
    req(1, "closed", ago(days=3), updated_datetime=ago(days=3, hours=-2))
    req(2, "closed", ago(days=10), closedAt=ago(days=10, hours=-5),
        updated_datetime=ago(days=1))
    req(3, "closed", ago(days=40), updated_datetime=ago(days=40, hours=-30))
    req(4, "open", ago(days=2), updated_datetime=ago(days=1))  # open: not resolved
    req(5, "closed", ago(days=200), updated_datetime=ago(days=199))  # closed before the window
    r = builtin(svc, "complaint-resolution-time")
    assert r.value == 5.0 and r.samples == 3
    assert r.status == "met"  # target: at most 72 hours
    assert r.period_to == AT and r.period_from == AT - timedelta(days=90)


def test_ai_override_share_uses_the_decisions_contract(svc: Any) -> None:
    rows = [("applied", False), ("applied", False), ("rejected", True), ("rolledBack", True),
            ("pending", False), ("expired", False)]
    for i, (status, overridden) in enumerate(rows):
        doc = {"id": f"urn:ngsi-ld:AIProposal:p{i}", "type": "AIProposal", "status": status,
               "route": "queue", "overridden": overridden, "submittedAt": ago(days=5)}
        if status != "pending":
            doc["decidedAt"] = ago(days=4)
        put(svc, doc)
    put(svc, {"id": "urn:ngsi-ld:AIProposal:old", "type": "AIProposal", "status": "rejected",
              "route": "queue", "overridden": True, "submittedAt": ago(days=300),
              "decidedAt": ago(days=300)})
    r = builtin(svc, "ai-override-share")
    assert r.value == 50.0  # 2 overridden / 4 applied, rejected or rolled back
    assert r.status == "notMet"  # target: at most 20 %


def test_emergency_response_p90(svc: Any) -> None:
    for i, minutes in enumerate([5, 6, 7, 8, 20]):
        reported = AT - timedelta(days=i + 1)
        key = "respondedAt" if i == 1 else "arrivedAt"
        put(svc, {"id": f"urn:ngsi-ld:EmergencyIncident:{i}", "type": "EmergencyIncident",
                  "reportedAt": iso(reported), key: iso(reported + timedelta(minutes=minutes))})
    put(svc, {"id": "urn:ngsi-ld:EmergencyIncident:open", "type": "EmergencyIncident",
              "reportedAt": ago(hours=1)})
    r = builtin(svc, "emergency-response-time")
    assert r.value == pytest.approx(15.2)  # 8 + 0.6 * (20 - 8)
    assert r.samples == 5 and r.skipped == 1
    assert r.status == "notMet"


def test_vulnerable_reach_share(svc: Any) -> None:
    for i, (enrolled, days) in enumerate([(True, 1), (True, 10), (True, 29), (True, 40),
                                          (False, 2)]):
        put(svc, {"id": f"urn:ngsi-ld:CareHousehold:{i}", "type": "CareHousehold",
                  "enrolled": enrolled, "lastCheckInAt": ago(days=days)})
    r = builtin(svc, "vulnerable-reach")
    assert r.value == 75.0 and r.status == "notMet"


def test_traffic_delay_mean_from_history(svc: Any) -> None:
    eid = "urn:ngsi-ld:TrafficFlowObserved:a"
    put(svc, {"id": eid, "type": SDM_TRAFFIC,
              "averageDelay": {"type": "Property", "value": 30, "observedAt": ago(days=2)}})
    observe(svc, eid, "averageDelay", 50, ago(days=1))
    observe(svc, eid, "averageDelay", 400, ago(days=9))  # before the 7-day window
    put(svc, {"id": "urn:ngsi-ld:TrafficFlowObserved:b", "type": SDM_TRAFFIC,
              "averageDelay": {"type": "Property", "value": 40, "observedAt": ago(hours=3)}})
    r = builtin(svc, "traffic-delay")
    assert r.value == 40.0 and r.samples == 3 and r.status == "met"


def test_energy_peak_reduction_of_summed_meters(svc: Any) -> None:
    base = AT - timedelta(days=380)  # inside the baseline window, a year back
    cur = AT - timedelta(days=10)

    def t(start: datetime, minutes: int) -> str:
        return iso(start + timedelta(minutes=minutes))

    put(svc, {"id": "urn:ngsi-ld:EnergyMeter:a", "type": "EnergyMeter",
              "activePower": {"type": "Property", "value": 100, "observedAt": t(base, 0)}})
    put(svc, {"id": "urn:ngsi-ld:EnergyMeter:b", "type": "EnergyMeter",
              "activePower": {"type": "Property", "value": 50, "observedAt": t(base, 5)}})
    observe(svc, "urn:ngsi-ld:EnergyMeter:a", "activePower", 80, t(base, 60))
    observe(svc, "urn:ngsi-ld:EnergyMeter:b", "activePower", 20, t(base, 61))
    # current: meter a reads 80 and 100 in one 15-minute bucket (mean 90), b reads 45
    observe(svc, "urn:ngsi-ld:EnergyMeter:a", "activePower", 80, t(cur, 0))
    observe(svc, "urn:ngsi-ld:EnergyMeter:a", "activePower", 100, t(cur, 10))
    observe(svc, "urn:ngsi-ld:EnergyMeter:b", "activePower", 45, t(cur, 3))
    observe(svc, "urn:ngsi-ld:EnergyMeter:b", "activePower", 120, t(cur, 600))  # 120 alone
    r = builtin(svc, "energy-peak-reduction")
    # baseline peak 100 + 50 = 150, current peak 90 + 45 = 135: (150 - 135) / 150 = 10 %
    assert r.value == 10.0 and r.status == "met"
    raw = value(svc, {"op": "max", "value": "activePower", "from": {
        "type": "EnergyMeter", "history": {}, "window": {"last": "P28D"}}})
    assert raw.value == 120 and raw.samples == 4


def test_every_builtin_says_no_data_on_an_empty_tenant(svc: Any) -> None:
    results = svc.trust.kpis.compute("empty", at=AT)
    assert {r.definition.id for r in results} == {
        "traffic-delay", "emergency-response-time", "energy-peak-reduction",
        "vulnerable-reach", "complaint-resolution-time", "ai-override-share"}
    for r in results:
        assert r.value is None and r.status == "noData", r.definition.id
        assert r.reason and "no data" in r.reason, r.definition.id
