"""Retention: the store's delete-history-before operation, delete and aggregate rules, the
scheduled job, the command and the HTTP trigger (both store backends)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
DC = "https://uri.etsi.org/ngsi-ld/default-context/"
OLD = "2020-03-01T"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def prop(value: Any, at: str | None = None, **extra: Any) -> dict[str, Any]:
    out = {"type": "Property", "value": value, **extra}
    if at is not None:
        out["observedAt"] = at
    return out


@pytest.fixture
def hub(store_url: str, tmp_path: Path) -> Iterator[Any]:
    settings = make_settings(store_url, tmp_path, auth_enabled=True, trust_jobs=False,
                             secrets_dir=tmp_path / "secrets", retention_interval_s=120)
    with app_client(settings) as c:
        c.settings = settings  # type: ignore[attr-defined]
        c.admin = bearer(c.services.keys.create("admin"))  # type: ignore[attr-defined]
        yield c


def temporal(hub: Any, eid: str, etype: str, attrs: dict[str, list[dict[str, Any]]]) -> None:
    r = hub.post(f"{B}/temporal/entities", headers=hub.admin,
                 json={"id": eid, "type": etype, **attrs})
    assert r.status_code in (201, 204), r.text


def history(hub: Any, eid: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = hub.get(f"{B}/temporal/entities/{eid}", headers=headers or hub.admin)
    return r.json() if r.status_code == 200 else {}


def test_store_deletes_history_before_a_time(hub: Any) -> None:
    store = hub.services.store
    a, b = DC + "TypeA", DC + "TypeB"
    for eid, etype in (("urn:x:a1", "TypeA"), ("urn:x:a2", "TypeA"), ("urn:x:b1", "TypeB")):
        temporal(hub, eid, etype, {"v": [prop(1, "2020-01-01T00:00:00Z"),
                                         prop(2, "2020-06-01T00:00:00Z"),
                                         prop(3, "2030-01-01T00:00:00Z"),
                                         prop(9, "2020-01-01T00:00:00Z",
                                              datasetId="urn:maeul:aggregate:x")]})
    cut = "2021-01-01T00:00:00.000000Z"
    n = store.write(lambda tx: tx.delete_history_before("default", a, cut, entity_id="urn:x:a1"))
    assert n == 3
    n = store.write(lambda tx: tx.delete_history_before("default", a, cut,
                                                        spare_prefix="urn:maeul:aggregate:"))
    assert n == 2  # a2's two old rows; its aggregate-prefixed row is spared
    assert [i["value"] for i in history(hub, "urn:x:a1")["v"]] == [3]
    assert sorted(i["value"] for i in history(hub, "urn:x:a2")["v"]) == [3, 9]
    assert len(history(hub, "urn:x:b1")["v"]) == 4  # another type is untouched
    # a temporal entity whose whole history went is gone too
    assert store.write(lambda tx: tx.delete_history_before("default", b, "2031-01-01T00:00Z")) == 4
    assert hub.get(f"{B}/temporal/entities/urn:x:b1", headers=hub.admin).status_code == 404
    assert store.write(lambda tx: tx.delete_history_before("default", b, cut)) == 0


def test_retention_delete(hub: Any) -> None:
    svc = hub.services
    eid = "urn:ngsi-ld:ServiceRequest:1"
    temporal(hub, eid, "ServiceRequest", {"status": [
        prop("open", "2019-01-01T00:00:00Z"), prop("closed", "2019-02-01T00:00:00Z"),
        prop("reopened", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))]})
    # a type without retention keeps its old history
    temporal(hub, "urn:ngsi-ld:TrafficFlowObserved:1", "TrafficFlowObserved",
             {"intensity": [prop(10, "2019-01-01T00:00:00Z")]})
    summary = svc.trust.privacy.apply_retention()
    assert summary["deleted"] == 2 and summary["aggregated"] == 0
    (rep,) = summary["tenants"]["default"]
    assert rep["policyType"] == "ServiceRequest" and rep["type"] == DC + "ServiceRequest"
    assert rep["action"] == "delete" and rep["deleted"] == 2
    assert [i["value"] for i in history(hub, eid)["status"]] == ["reopened"]
    assert len(history(hub, "urn:ngsi-ld:TrafficFlowObserved:1")["intensity"]) == 1
    (rec,) = [a for a in svc.store.audit_log("default", 50) if a["action"] == "privacy.retention"]
    assert rec["target"] == DC + "ServiceRequest" and rec["actor"] == "retention"
    assert rec["detail"]["deleted"] == 2 and rec["detail"]["before"] == rep["before"]
    # a second run finds nothing and records nothing
    assert svc.trust.privacy.apply_retention()["deleted"] == 0
    assert len([a for a in svc.store.audit_log("default", 50)
                if a["action"] == "privacy.retention"]) == 1


def test_retention_aggregates_to_hourly_means(hub: Any) -> None:
    # hourly means: enough for the empty-house score (hourly profile over 90 days), far less
    # than minute readings reveal about a household's life
    svc = hub.services
    eid = "urn:ngsi-ld:EnergyMeter:1"
    readings = [prop(float(m), f"{OLD}05:{m:02d}:00Z", unitCode="KWT") for m in (0, 20, 40)]
    readings += [prop(100.0, "2020-03-02T06:10:00Z"), prop(200.0, "2020-03-02T06:50:00Z"),
                 prop(9.0, "2020-03-02T18:00:00Z")]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    readings.append(prop(7.0, now))
    temporal(hub, eid, "EnergyMeter", {
        "activePower": readings,
        "inactivityAlert": [prop("none", f"{OLD}01:00:00Z")],  # not numeric: just goes
    })
    summary = svc.trust.privacy.apply_retention("default")
    (rep,) = summary["tenants"]["default"]
    assert rep["action"] == "aggregate"
    assert rep["deleted"] == 7 and rep["aggregated"] == 3
    care = bearer(svc.keys.create("reader", purposes=["care"]))  # activePower is sensitive
    assert "activePower" not in history(hub, eid)
    hist = history(hub, eid, care)
    assert "inactivityAlert" not in hist
    agg = {i["observedAt"][:13]: i for i in hist["activePower"]
           if i.get("datasetId", "").startswith("urn:maeul:aggregate:")}
    assert set(agg) == {"2020-03-01T05", "2020-03-02T06", "2020-03-02T18"}
    assert agg["2020-03-01T05"]["value"] == pytest.approx(20.0)
    assert agg["2020-03-02T06"]["value"] == pytest.approx(150.0)
    assert agg["2020-03-02T18"]["value"] == pytest.approx(9.0)
    assert agg["2020-03-01T05"]["datasetId"] == "urn:maeul:aggregate:PT1H:avg"
    assert agg["2020-03-01T05"]["unitCode"] == "KWT"
    assert agg["2020-03-01T05"]["aggregation"]["value"]["count"] == 3
    raw = [i for i in hist["activePower"] if "datasetId" not in i]
    assert [i["value"] for i in raw] == [7.0]  # recent readings stay as they were
    (rec,) = [a for a in svc.store.audit_log("default", 50) if a["action"] == "privacy.retention"]
    assert rec["detail"] == {"deleted": 7, "aggregated": 3, "before": rep["before"]}
    # aggregates are kept: a second run changes nothing
    again = svc.trust.privacy.apply_retention("default")
    assert again["deleted"] == 0 and again["aggregated"] == 0
    # three hourly means and the recent reading
    assert len(history(hub, eid, care)["activePower"]) == 4


def test_retention_job_command_and_route(hub: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from maeul.trust.privacy import cli_retention

    svc = hub.services
    (job,) = svc.trust.privacy.jobs()
    assert job.name == "privacy.retention" and job.interval_s == 120
    eid = "urn:ngsi-ld:Vehicle:1"
    temporal(hub, eid, "Vehicle", {"speed": [prop(30, "2019-01-01T00:00:00Z")]})
    job.fn()
    assert history(hub, eid) == {}

    temporal(hub, eid, "Vehicle", {"speed": [prop(40, "2019-01-02T00:00:00Z")]})
    r = hub.post("/trust/v1/privacy/retention/run", headers=hub.admin)
    assert r.status_code == 200 and r.json()["deleted"] == 1
    op = bearer(svc.keys.create("operator"))
    assert hub.post("/trust/v1/privacy/retention/run", headers=op).status_code == 403
    assert hub.post("/trust/v1/privacy/retention/run").status_code == 401

    if svc.store.url.startswith("sqlite"):
        return  # the command opens its own store; SQLite allows one writer process
    temporal(hub, eid, "Vehicle", {"speed": [prop(50, "2019-01-03T00:00:00Z")]})
    code = cli_retention(hub.settings, argparse.Namespace(tenant="default"))
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["deleted"] == 1
    assert out["tenants"]["default"][0]["type"] == DC + "Vehicle"


def test_command_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from maeul.hub.app import Services
    from maeul.trust.privacy import cli_retention

    settings = make_settings(f"sqlite:///{tmp_path}/c.db", tmp_path, trust_jobs=False,
                             secrets_dir=tmp_path / "s")
    svc = Services(settings)
    svc.temporal.add("default", "urn:ngsi-ld:AIFeedback:1", [DC + "AIFeedback"],
                     {DC + "rating": [prop(4, "2019-01-01T00:00:00Z")]}, "test", False)
    svc.close()
    assert cli_retention(settings, argparse.Namespace(tenant=None)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deleted"] == 1 and out["tenants"]["default"][0]["policyType"] == "AIFeedback"
    bad = tmp_path / "bad.json"
    bad.write_text('{"types": {"X": {"retention": {"olderThan": "P1D", "action": "shred"}}}}')
    assert cli_retention(make_settings(settings.store_url, tmp_path, privacy_policy=bad),
                         argparse.Namespace(tenant=None)) == 2
    err = capsys.readouterr().err
    assert "types.X.retention.action" in err
