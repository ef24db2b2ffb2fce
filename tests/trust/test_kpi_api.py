"""KPIs over HTTP and the CLI: computed entities and their history, the public JSON, the
definitions API with its errors, the quarterly report, the job and the settings file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from maeul.hub.entities import expand_entity
from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
AT = datetime(2026, 5, 10, 12, tzinfo=UTC)  # in 2026Q2
CRT = "complaint-resolution-time"
KPI_EID = f"urn:ngsi-ld:KeyPerformanceIndicator:{CRT}"
D = "/trust/v1/kpis/definitions"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _client(settings: Any) -> Iterator[Any]:
    with app_client(settings) as c:
        s = c.services
        c.admin = {"Authorization": f"Bearer {s.keys.create('admin')}"}  # type: ignore
        c.reader = {"Authorization": f"Bearer {s.keys.create('reader', 'default')}"}  # type: ignore
        yield c


@pytest.fixture
def hub(store_url: str, tmp_path: Path) -> Iterator[Any]:
    yield from _client(make_settings(store_url, tmp_path, auth_enabled=True, trust_jobs=False))


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Any]:
    """SQLite only: for checks where the store plays no part (validation, parsing)."""
    yield from _client(make_settings(f"sqlite:///{tmp_path}/k.db", tmp_path, auth_enabled=True,
                                     trust_jobs=False))


def put(services: Any, doc: dict[str, Any], tenant: str = "default") -> None:
    services.hub.create_entity(tenant, expand_entity(doc, services.resolver.resolve(None)))


def closed_request(services: Any, n: int, hours: float, closed: datetime = AT) -> None:
    put(services, {"id": f"urn:ngsi-ld:ServiceRequest:{n}", "type": "ServiceRequest",
                   "status": "closed",
                   "requested_datetime": iso(closed - timedelta(hours=hours, minutes=1)),
                   "closedAt": iso(closed - timedelta(minutes=1))})


def definition(kpi_id: str = "custom", **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": kpi_id,
        "name": {"ko": "센서 수", "en": "Sensor count"},
        "description": {"ko": "센서의 수", "en": "How many sensors there are"},
        "formula": {"op": "count", "from": {"type": "Sensor"}},
        "unit": "sensors",
        "target": {"value": 1, "direction": "higher"},
        "owner": "Smart City Division",
        "category": "infrastructure",
    }
    doc.update(over)
    return doc


# -- computation, the KPI entity and its history ---------------------------------------------
def test_compute_writes_kpi_entities_and_history_grows(hub: Any) -> None:
    s = hub.services
    closed_request(s, 1, 10)
    closed_request(s, 2, 20)
    closed_request(s, 3, 60)
    first = {r.definition.id: r for r in s.trust.kpis.compute("default", at=AT)}
    assert first[CRT].value == 20.0 and first[CRT].status == "met"
    closed_request(s, 4, 100, AT + timedelta(minutes=30))
    closed_request(s, 5, 200, AT + timedelta(minutes=30))
    second = {r.definition.id: r for r in s.trust.kpis.compute("default",
                                                                 at=AT + timedelta(hours=1))}
    assert second[CRT].value == 60.0

    r = hub.get(f"/ngsi-ld/v1/entities/{KPI_EID}", headers=hub.admin)
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["type"] == "KeyPerformanceIndicator"
    assert e["kpiValue"]["value"] == 60.0 and e["kpiValue"]["unitCode"] == "HUR"
    assert e["kpiValue"]["observedAt"].startswith("2026-05-10T13:00:00")
    assert e["calculationPeriod"]["value"] == {"from": "2026-02-09T13:00:00Z",
                                               "to": "2026-05-10T13:00:00Z"}
    assert e["calculationFrequency"]["value"] == "hourly"
    assert e["organization"]["value"] == "Civil Affairs Division"
    assert e["category"]["value"] == ["quantitative", "civic"]
    assert e["name"]["languageMap"]["en"].startswith("Complaint resolution time")
    assert e["description"]["languageMap"]["ko"]
    assert e["unit"]["value"] == "h"
    assert e["target"]["value"] == {"value": 72.0, "direction": "lower"}
    assert e["targetStatus"]["value"] == "met"

    # the hub's temporal API holds the series: one instance per computation
    r = hub.get(f"/ngsi-ld/v1/temporal/entities/{KPI_EID}", params={"attrs": "kpiValue"},
                headers=hub.admin)
    assert r.status_code == 200, r.text
    assert [i["value"] for i in r.json()["kpiValue"]] == [20.0, 60.0]
    # static attributes are not rewritten each time
    r = hub.get(f"/ngsi-ld/v1/temporal/entities/{KPI_EID}", params={"attrs": "organization"},
                headers=hub.admin)
    org = r.json()["organization"]
    assert isinstance(org, dict) or len(org) == 1

    # the public history, anonymous
    r = hub.get(f"/public/v1/kpis/{CRT}/history")
    assert r.status_code == 200, r.text
    pts = r.json()["points"]
    assert [(p["value"], p["status"]) for p in pts] == [(20.0, "met"), (60.0, "met")]
    r = hub.get(f"/public/v1/kpis/{CRT}/history", params={"lastN": 1})
    assert [p["value"] for p in r.json()["points"]] == [60.0]
    r = hub.get(f"/public/v1/kpis/{CRT}/history", params={"from": iso(AT + timedelta(minutes=1))})
    assert [p["value"] for p in r.json()["points"]] == [60.0]
    r = hub.get("/public/v1/kpis/traffic-delay/history")
    nodata = r.json()["points"]
    assert len(nodata) == 2 and all(p["value"] is None and p["status"] == "noData"
                                    and p["reason"].startswith("no data") for p in nodata)
    assert hub.get(f"/public/v1/kpis/{CRT}/history",
                   params={"from": "yesterday"}).status_code == 400

    # each computation is audited, naming the KPIs
    recs = [a for a in s.store.audit_log("default", 500) if a["action"] == "kpi.compute"]
    assert len(recs) == 2 and CRT in recs[0]["detail"]["kpis"]


def test_a_kpi_that_loses_its_data_says_so(hub: Any) -> None:
    s = hub.services
    closed_request(s, 1, 10)
    s.trust.kpis.compute("default", at=AT)
    s.hub.delete_entity("default", "urn:ngsi-ld:ServiceRequest:1")
    s.trust.kpis.compute("default", at=AT + timedelta(hours=1))
    e = hub.get(f"/ngsi-ld/v1/entities/{KPI_EID}", headers=hub.admin).json()
    assert "kpiValue" not in e  # no stale value stays on the entity
    assert e["targetStatus"]["value"] == "noData"
    assert e["statusReason"]["value"] == "no data: no ServiceRequest entities"
    pub = {k["id"]: k for k in hub.get("/public/v1/kpis").json()}
    assert pub[CRT]["value"] is None and pub[CRT]["status"] == "noData"
    assert pub[CRT]["reason"] == "no data: no ServiceRequest entities"


def test_public_kpis_are_open_and_hide_non_public_ones(hub: Any) -> None:
    r = hub.post(D, json=definition("secret-count", public=False), headers=hub.admin)
    assert r.status_code == 201, r.text
    put(hub.services, {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"})
    hub.services.trust.kpis.compute("default", at=AT)
    r = hub.get("/public/v1/kpis")
    assert r.status_code == 200
    ids = [k["id"] for k in r.json()]
    assert "secret-count" not in ids and CRT in ids and len(ids) == 6
    item = next(k for k in r.json() if k["id"] == CRT)
    assert item["status"] == "noData" and item["target"] == {
        "value": 72.0, "direction": "lower", "deadline": None}
    assert item["name"] == {"ko": "민원 처리 시간 (중앙값)",
                            "en": "Complaint resolution time (median)"}
    for path in ("/public/v1/kpis/secret-count", "/public/v1/kpis/secret-count/history",
                 "/public/v1/kpis/nope"):
        assert hub.get(path).status_code == 404, path
    assert hub.get(f"/public/v1/kpis/{CRT}").json()["id"] == CRT
    # inside the tenant, readers see every KPI
    assert hub.get("/trust/v1/kpis").status_code == 401
    assert hub.get(D).status_code == 401 and hub.get(f"{D}/secret-count").status_code == 401
    every = {k["id"]: k for k in hub.get("/trust/v1/kpis", headers=hub.reader).json()}
    assert every["secret-count"]["value"] == 1 and every["secret-count"]["status"] == "met"


def test_definitions_crud_is_admin_only_and_audited(hub: Any) -> None:
    assert hub.post(D, json=definition()).status_code == 401
    assert hub.post(D, json=definition(), headers=hub.reader).status_code == 403
    r = hub.post(D, json=definition(), headers=hub.admin)
    assert r.status_code == 201 and r.headers["location"] == f"{D}/custom"
    assert hub.post(D, json=definition(), headers=hub.admin).status_code == 409
    assert hub.get(f"{D}/custom", headers=hub.reader).json()["source"] == "custom"
    changed = definition(target={"value": 3, "direction": "higher"})
    r = hub.put(f"{D}/custom", json=changed, headers=hub.admin)
    assert r.status_code == 200 and r.json()["target"]["value"] == 3
    assert hub.put(f"{D}/nope", json=definition("nope"), headers=hub.admin).status_code == 404
    # a built-in definition changed for this tenant, then removed
    crt = hub.get(f"{D}/{CRT}", headers=hub.admin).json()
    assert crt["source"] == "builtin"
    crt["target"] = {"value": 24, "direction": "lower"}
    del crt["source"]
    r = hub.put(f"{D}/{CRT}", json=crt, headers=hub.admin)
    assert r.status_code == 200 and r.json()["source"] == "changed"
    assert hub.get(f"{D}/{CRT}", headers=hub.admin).json()["target"]["value"] == 24
    assert hub.delete(f"{D}/{CRT}", headers=hub.reader).status_code == 403
    assert hub.delete(f"{D}/{CRT}", headers=hub.admin).status_code == 204
    assert hub.get(f"{D}/{CRT}", headers=hub.admin).status_code == 404
    assert hub.delete(f"{D}/custom", headers=hub.admin).status_code == 204
    ids = [d["id"] for d in hub.get(D, headers=hub.admin).json()]
    assert CRT not in ids and "custom" not in ids and len(ids) == 5
    assert CRT not in {r.definition.id for r in hub.services.trust.kpis.compute("default", AT)}
    # another tenant still has the built-in
    other = {**hub.admin, "NGSILD-Tenant": "other"}
    assert hub.get(f"{D}/{CRT}", headers=other).status_code == 200
    changes = [(a["target"], a["detail"]["change"])
               for a in hub.services.store.audit_log("default", 500)
               if a["action"] == "kpi.define"]
    assert sorted(changes) == sorted([("custom", "create"), ("custom", "update"),
                                      (CRT, "update"), (CRT, "delete"), ("custom", "delete")])


@pytest.mark.parametrize(("change", "field"), [
    ({"bogus": 1}, "bogus"),
    ({"formula": {"op": "mode", "from": {"type": "X"}}}, "formula"),
    ({"formula": {"op": "count", "from": {"type": "X", "q": "a=="}}}, "formula.from.q"),
    ({"formula": {"op": "count", "from": {"type": "X", "window": {"last": "P1M"}}}},
     "formula.from.window.last"),
    ({"formula": {"op": "avg", "from": {"type": "X"}, "value": "a..b"}}, "formula.value"),
    ({"formula": {"op": "avg", "from": {"type": "X"}}}, "formula"),
    ({"formula": {"op": "count", "from": {"type": "X", "extra": True}}}, "formula.from.extra"),
    ({"formula": {"op": "ratio", "numerator": {"op": "count", "from": {"type": "X"}}}},
     "formula.denominator"),
    ({"formula": {"op": "max", "value": "p", "from": {"type": "X", "history": {}}}},
     "formula.from"),
    ({"target": {"value": 1, "direction": "sideways"}}, "target.direction"),
    ({"name": {"en": "only English"}}, "name.ko"),
    ({"owner": "x" * 201}, "owner"),
    ({"id": "Bad Id"}, "id"),
    ({"context": {"Sensor": "not an iri"}}, "context"),
])
def test_bad_definitions_are_400_naming_the_field(lite: Any, change: dict[str, Any],
                                                   field: str) -> None:
    r = lite.post(D, json=definition(**change), headers=lite.admin)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"{field}:") or f"; {field}:" in detail, detail


def test_deep_formulas_and_id_mismatch_are_refused(lite: Any) -> None:
    f: dict[str, Any] = {"op": "count", "from": {"type": "X"}}
    for _ in range(9):
        f = {"op": "ratio", "numerator": f, "denominator": f}
    r = lite.post(D, json=definition(formula=f), headers=lite.admin)
    assert r.status_code == 400 and "nested deeper" in r.json()["detail"]
    r = lite.post(D, json=definition(), headers=lite.admin)
    r = lite.put(f"{D}/custom", json=definition("other"), headers=lite.admin)
    assert r.status_code == 400 and r.json()["detail"].startswith("id:")
    r = lite.post(D, content=b"[1", headers={**lite.admin, "content-type": "application/json"})
    assert r.status_code == 400


# -- the quarterly report --------------------------------------------------------------------
def seed_problems(s: Any) -> None:
    closed_request(s, 1, 10)
    for pid, status, overridden in (("p-fail", "failed", False), ("p-over", "rejected", True),
                                    ("p-fine", "applied", False)):
        put(s, {"id": f"urn:ngsi-ld:AIProposal:{pid}", "type": "AIProposal", "status": status,
                "route": "queue", "overridden": overridden, "system": "signals",
                "submittedAt": iso(AT - timedelta(days=2)),
                "decidedAt": iso(AT - timedelta(days=1))})

    def feedback(tx: Any) -> None:
        tx.put_json("feedback", "default", "fb-open", {
            "kind": "objection", "entryId": "signals", "department": "Transport",
            "status": "received", "receivedAt": iso(AT), "text": "private words of a citizen"})
        tx.put_json("feedback", "default", "fb-done", {"kind": "feedback", "status": "closed"})
        tx.put_json("feedback", "default", "fb-odd", {"status": 7, "kind": ["x"]})
        # the registry's inbox, as registry_feedback writes it
        tx.put_json("registry_feedback", "default", "rf-open", {
            "id": "rf-open", "system": "care-check", "kind": "feedback", "status": "open",
            "department": {"ko": "복지정책과", "en": "Welfare Policy"}, "text": "masked text",
            "contact": "someone@example.org", "received_at": iso(AT)})
        tx.put_json("registry_feedback", "default", "rf-late", {
            "kind": "objection", "status": "open", "received_at": "2026-08-01T00:00:00Z"})

    s.store.write(feedback)
    s.trust.kpis.compute("default", at=AT)


def test_quarterly_report_lists_failures_and_open_problems(hub: Any) -> None:
    seed_problems(hub.services)
    r = hub.get("/public/v1/reports/2026Q2.html")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="ko">' in html and "@media print" in html
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "Quarterly public KPI report" in html and "공공 성과지표 분기 보고서" in html
    assert 'id="failures"' in html and "Failures and open problems" in html
    failures = html.split('id="failures"', 1)[1]
    # missed or no-data KPIs, failed or overridden proposals, pending feedback
    assert 'id="missed-traffic-delay"' in failures and f'id="missed-{CRT}"' not in failures
    assert 'id="missed-ai-override-share"' in failures  # 1 of 2 overridden: 50 % > 20 %
    assert "urn:ngsi-ld:AIProposal:p-fail" in failures
    assert "urn:ngsi-ld:AIProposal:p-over" in failures
    assert "urn:ngsi-ld:AIProposal:p-fine" not in failures
    assert "fb-open" in failures and "fb-done" not in failures and "fb-odd" in failures
    assert "private words" not in html
    assert "rf-open" in failures and "복지정책과" in failures and "care-check" in failures
    assert "someone@example.org" not in html and "masked text" not in html
    assert "rf-late" not in failures  # received after the quarter
    kpi_row = html.split(f'id="kpi-{CRT}"', 1)[1].split("</tr>", 1)[0]
    assert "10.00" in kpi_row and "met" in kpi_row
    # another quarter has no computations: every KPI says so
    other = hub.get("/public/v1/reports/2025Q4.html").text
    assert other.count("not computed in this quarter") == 6
    assert "p-fail" not in other


@pytest.mark.parametrize("bad", ["2026Q5", "2026Q0", "26Q1", "2026-Q1", "2026Q1x", "9999Q4"])
def test_report_quarter_errors_are_clear(lite: Any, bad: str) -> None:
    r = lite.get(f"/public/v1/reports/{bad}.html")
    assert r.status_code == 400
    assert r.json()["detail"].startswith("quarter:") and "e.g. 2026Q3" in r.json()["detail"]


def test_parse_quarter() -> None:
    from maeul.trust.kpi_report import current_quarter, parse_quarter

    q = parse_quarter("2026Q3")
    assert (q.start, q.end) == (datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1,
                                                                           tzinfo=UTC))
    q4 = parse_quarter("2026q4")
    assert q4.end == datetime(2027, 1, 1, tzinfo=UTC) and q4.label == "2026Q4"
    assert [m[0] for m in q4.months()] == ["2026-10", "2026-11", "2026-12"]
    assert current_quarter(datetime(2026, 3, 31, 23, tzinfo=UTC)).label == "2026Q1"
    for bad in ("", "2026", "Q3", "1969Q1", "2026Q7"):
        with pytest.raises(ValueError, match="quarter"):
            parse_quarter(bad)


# -- command line, job, settings ---------------------------------------------------------------
def test_cli_compute_and_report(tmp_path: Path, capsys: Any) -> None:
    from maeul.hub.app import Services
    from maeul.trust.kpi import cli_compute, cli_report

    settings = make_settings(f"sqlite:///{tmp_path}/c.db", tmp_path)
    s = Services(settings)
    closed_request(s, 1, 10, datetime.now(UTC))
    s.close()
    assert cli_compute(settings, argparse.Namespace(tenant="default")) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 6
    crt = next(x for x in lines if x["id"] == CRT)
    assert crt["value"] == 10.0 and crt["status"] == "met" and crt["unit"] == "h"
    assert all(x["value"] is None and x["reason"] for x in lines if x["id"] != CRT)

    out = tmp_path / "report.html"
    args = argparse.Namespace(tenant="default", quarter=None, out=out)
    assert cli_report(settings, args) == 0
    html = out.read_text(encoding="utf-8")
    now = datetime.now(UTC)
    assert f"{now.year}Q{(now.month - 1) // 3 + 1}" in html and 'id="failures"' in html
    args = argparse.Namespace(tenant="default", quarter="2026Q9", out=None)
    assert cli_report(settings, args) == 2
    err = capsys.readouterr().err
    assert "2026Q9" in err and "e.g. 2026Q3" in err
    assert cli_report(settings, argparse.Namespace(tenant="default", quarter="2026Q2",
                                                   out=None)) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


def test_job_computes_every_tenant(store_url: str, tmp_path: Path) -> None:
    from maeul.hub.app import Services

    s = Services(make_settings(store_url, tmp_path, trust_jobs=False, kpi_interval_s=900))
    try:
        put(s, {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"}, tenant="a")
        put(s, {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"}, tenant="b")
        (job,) = s.trust.kpis.jobs()
        assert job.interval_s == 900 and job.name == "kpi.compute"
        assert job.fn() == {"a": 6, "b": 6}
        e = s.hub.get_entity("b", KPI_EID)
        freq = s.resolver.resolve(None).expand_term("calculationFrequency")
        assert e["attrs"][freq][0]["value"] == "every 900 s"
    finally:
        s.close()


def test_definitions_file_from_settings(tmp_path: Path) -> None:
    from maeul.trust.kpi import Kpis

    good = tmp_path / "kpis.json"
    good.write_text(json.dumps({"definitions": [definition("only-one")]}), encoding="utf-8")
    k = Kpis(SimpleNamespace(settings=SimpleNamespace(kpi_definitions=good)))
    assert list(k.builtins) == ["only-one"]
    bad = tmp_path / "bad.json"
    broken = definition("b")
    broken["formula"] = {"op": "count", "from": {"type": "X", "window": {"last": "1 day"}}}
    bad.write_text(json.dumps({"definitions": [definition("a"), broken]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"definitions\[1\]\.formula\.from\.window\.last"):
        Kpis(SimpleNamespace(settings=SimpleNamespace(kpi_definitions=bad)))
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"definitions": [definition("a"), definition("a")]}))
    with pytest.raises(ValueError, match=r"definitions\[1\]\.id"):
        Kpis(SimpleNamespace(settings=SimpleNamespace(kpi_definitions=twice)))
    with pytest.raises(ValueError, match="cannot read"):
        Kpis(SimpleNamespace(settings=SimpleNamespace(kpi_definitions=tmp_path / "none.json")))
