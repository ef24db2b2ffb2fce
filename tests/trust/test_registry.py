"""The AI registry: entries (ATS v0.3.1), bad input, roles, code declarations and their sync,
measured performance from evaluations, export, the citizens' view and their feedback."""

from __future__ import annotations

import argparse
import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maeul.hub.app import Services
from maeul.hub.errors import AlreadyExists, BadRequestData, ResourceNotFound
from maeul.trust import registry_model
from maeul.trust.registry import cli_export
from maeul.trust.registry_model import STANDARD_FIELDS, declare
from support import make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
T = "default"
R = "/trust/v1/registry"
PUB = "/public/v1/registry"
DV = "https://uri.etsi.org/ngsi-ld/default-context/"


def entry(eid: str = "parking-forecast", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": eid,
        "name": {"ko": "주차 수요 예측", "en": "Parking demand forecast"},
        "organization": {"ko": "부산광역시", "en": "Busan Metropolitan City"},
        "department": {"ko": "교통정책과", "en": "Transport Policy Division"},
        "contact_email": "transport@city.example",
        "contact_name": "Kim Minji",
        "contact_phone": "051-000-0000",
        "description_short": {"ko": "공영주차장의 시간대별 수요를 예측합니다.",
                              "en": "Forecasts hourly demand at public car parks."},
        "status": "operational",
        "algorithm_type": "self-learning",
        "type": "predictive",
        "risk_category": "limited",
        "domain": "traffic and transportation",
        "goal": {"ko": "주차 안내 개선", "en": "Better parking guidance"},
        "revision_date": "2027-06-30",
        "codebase_url": "https://example.org/maeul",
    }
    body.update(extra)
    return body


@pytest.fixture
def svc(store_url: str, tmp_path: Path) -> Iterator[Services]:
    s = Services(make_settings(store_url, tmp_path, trust_jobs=False))
    yield s
    s.close()


def audit(s: Services, action: str) -> list[dict[str, Any]]:
    return sorted((r for r in s.store.audit_log(None, 10_000) if r["action"] == action),
                  key=lambda r: r["seq"])


# -- the declared entry of the trust layer's own masking ----------------------------------
def test_declared_masking_entry_is_in_every_tenant(svc: Services) -> None:
    reg = svc.trust.registry
    doc = reg.get(T, "privacy-masking")
    assert doc is not None and doc["status"] == "operational" and doc["source"] == "code"
    assert doc["algorithm_type"] == "rule-based"
    assert doc["name"]["ko"] and doc["name"]["en"]
    created = audit(svc, "registry.create")
    assert [(r["target"], r["actor"]) for r in created] == [("privacy-masking", "code")]
    # a second process syncs again and changes nothing
    assert reg.sync(T) == []
    assert type(reg)(svc).get(T, "privacy-masking") == doc
    assert len(audit(svc, "registry.create")) == 1
    # a tenant that does not exist is not created by reading it
    assert reg.get("nobody", "privacy-masking") is None
    # the same uuid in every replica that syncs it (no random uuid to race over)
    assert doc["uuid"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "maeul:registry:default:"
                                                            "privacy-masking"))
    assert "nobody" not in svc.store.tenants()
    records = reg.export(T)
    assert {(r["x_maeul_id"], r["lang"]) for r in records} >= {
        ("privacy-masking", "ko"), ("privacy-masking", "en")}


@pytest.fixture
def declared() -> Iterator[dict[str, Any]]:
    base = entry("declared-demo", status="pilot")
    for k in ("contact_name", "contact_phone"):
        del base[k]
    declare(base)
    yield base
    registry_model.DECLARED.pop("declared-demo", None)


def test_sync_keeps_city_edits_and_applies_code_changes(svc: Services,
                                                        declared: dict[str, Any]) -> None:
    reg = svc.trust.registry
    assert reg.get(T, "declared-demo")["status"] == "pilot"
    reg.update(T, "declared-demo", {"goal": {"ko": "시가 고친 목표"}}, "key:op")
    declare({**declared, "goal": {"ko": "코드의 새 목표", "en": "New goal"},
             "status": "operational", "methods_and_models": {"en": "gradient boosting"}})
    doc = reg.get(T, "declared-demo")  # a new declaration: synced on next use
    assert doc["goal"] == {"ko": "시가 고친 목표", "en": "Better parking guidance"}
    assert doc["status"] == "operational"
    assert doc["methods_and_models"] == {"en": "gradient boosting"}
    assert doc["city_edited"] == ["goal"]
    upd = [r for r in audit(svc, "registry.update") if r["actor"] == "code"]
    assert upd[-1]["detail"]["fields"] == ["methods_and_models", "status"]
    # a retirement by the city sticks even when the declaration says operational
    reg.retire(T, "declared-demo", "key:op")
    declare({**declared, "status": "operational", "remark": {"en": "v3"}})
    doc = reg.get(T, "declared-demo")
    assert doc["status"] == "retired" and doc["remark"] == {"en": "v3"}
    # the declaration dropped methods_and_models: it goes too
    assert "methods_and_models" not in doc


def test_an_entry_registered_over_the_api_is_not_overwritten(svc: Services) -> None:
    reg = svc.trust.registry
    reg.create(T, entry("mine"), "key:op")
    try:
        declare(entry("mine", status="planned"))
        assert reg.get(T, "mine")["status"] == "operational"
        assert reg.get(T, "mine")["source"] == "api"
    finally:
        registry_model.DECLARED.pop("mine", None)


def test_a_bad_declaration_fails_at_once() -> None:
    with pytest.raises(ValueError, match="description_short"):
        declare(entry("bad-one", description_short={"en": "x" * 151}))
    assert "bad-one" not in registry_model.DECLARED


# -- the Python API ---------------------------------------------------------------------------
def test_create_update_retire_are_audited(svc: Services) -> None:
    reg = svc.trust.registry
    view = reg.create(T, entry(), "key:op")
    assert view["status"] == "operational" and view["uuid"] and view["source"] == "api"
    assert view["risk_category"] == "limited risk"  # the standard's value
    assert view["publication_date"] and view["impact"] is None and view["performance"] is None
    assert "lawful_basis" in view["missing"] and "goal" not in view["missing"]
    with pytest.raises(AlreadyExists):
        reg.create(T, entry(), "key:op")
    assert [r["target"] for r in audit(svc, "registry.create")
            if r["actor"] == "key:op"] == ["parking-forecast"]

    v2 = reg.update(T, "parking-forecast", {"name": {"en": "Car park demand forecast"},
                                            "codebase_url": None}, "key:op2")
    assert v2["name"] == {"ko": "주차 수요 예측", "en": "Car park demand forecast"}
    assert "codebase_url" not in v2
    assert reg.update(T, "parking-forecast", {"name": {"en": "Car park demand forecast"}},
                      "key:op2")["name"]["en"] == "Car park demand forecast"
    updates = [r for r in audit(svc, "registry.update") if r["actor"] == "key:op2"]
    assert [u["detail"]["fields"] for u in updates] == [["codebase_url", "name"]]  # no-op: none

    retired = reg.retire(T, "parking-forecast", "key:op3")
    assert retired["status"] == "retired" and reg.get(T, "parking-forecast") is not None
    reg.retire(T, "parking-forecast", "key:op3")  # again: nothing more to record
    assert [r["actor"] for r in audit(svc, "registry.retire")] == ["key:op3"]
    assert [d["id"] for d in reg.list(T, "retired")] == ["parking-forecast"]
    with pytest.raises(ResourceNotFound):
        reg.update(T, "nowhere", {"remark": {"en": "x"}}, "key:op")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"name": None}, "name: Field required"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"colour": None}, "colour: Extra inputs are not permitted"),
        ({"status": "retired"}, "status: retire an entry"),
        ({"status": "live"}, "status: Input should be"),
        ({"id": "other"}, "id: cannot be changed"),
        ({"performance": {"en": "99% accurate"}}, "performance: cannot be set by hand"),
        ({"name": {"fr": "Prévision"}}, "name.fr: Extra inputs are not permitted"),
        ({"name": {"ko": None, "en": None}}, "at least one language"),
    ],
)
def test_bad_updates_change_nothing(svc: Services, patch: dict[str, Any], message: str) -> None:
    reg = svc.trust.registry
    reg.create(T, entry(), "key:op")
    before = reg.get(T, "parking-forecast")
    with pytest.raises(BadRequestData) as err:
        reg.update(T, "parking-forecast", patch, "key:op")
    assert message in err.value.detail
    assert reg.get(T, "parking-forecast") == before


def test_measured_performance_comes_from_evaluations(svc: Services) -> None:
    reg = svc.trust.registry
    reg.create(T, entry(), "key:op")
    rec = reg.record_evaluation(T, "parking-forecast", {"mae": 3.25, "coverage": 0.91},
                                "maeul eval parking --split 2024", "busan-parking-2024",
                                "cli")
    reg.record_evaluation(T, "parking-forecast", {"mae": 2.5}, "maeul eval parking",
                          "busan-parking-2025", "cli")
    view = reg.view(T, "parking-forecast")
    day = rec["at"][:10]
    assert view["evaluation"]["metrics"] == {"mae": 2.5}
    perf = view["performance"]
    assert "`maeul eval parking`" in perf["en"] and day in perf["en"]
    assert "busan-parking-2025" in perf["ko"] and "mae 2.5" in perf["ko"]
    assert [e["dataset"] for e in reg.evaluations(T, "parking-forecast")] == [
        "busan-parking-2024", "busan-parking-2025"]
    record = next(r for r in reg.export(T, "en") if r["x_maeul_id"] == "parking-forecast")
    assert record["performance"].startswith(f"Measured on {day} by the evaluation command")
    updates = [r for r in audit(svc, "registry.update") if r["target"] == "parking-forecast"]
    assert [u["detail"]["fields"] for u in updates] == [["performance"], ["performance"]]
    for bad in ({}, {"mae": float("nan")}, {"mae": True}, {"": 1}, "0.9"):
        with pytest.raises(BadRequestData, match="metrics"):
            reg.record_evaluation(T, "parking-forecast", bad, "cmd", "ds", "cli")  # type: ignore[arg-type]
    with pytest.raises(BadRequestData, match="command"):
        reg.record_evaluation(T, "parking-forecast", {"mae": 1}, "", "ds", "cli")
    with pytest.raises(ResourceNotFound):
        reg.record_evaluation(T, "nowhere", {"mae": 1}, "cmd", "ds", "cli")
    with pytest.raises(BadRequestData, match="performance: cannot be set by hand"):
        reg.create(T, entry("other", performance={"en": "great"}), "key:op")


def test_export_uses_the_standards_field_names(svc: Services, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    reg = svc.trust.registry
    reg.create(T, entry(), "key:op")
    reg.create(T, entry("english-only", name={"en": "Only English"}, goal=None), "key:op")
    records = reg.export(T)
    for rec in records:
        assert list(rec) == [*STANDARD_FIELDS, "x_maeul_id"]
        assert rec["standard_version"] == "0.3.1"
    pairs = {(r["x_maeul_id"], r["lang"]) for r in records}
    assert ("parking-forecast", "ko") in pairs and ("parking-forecast", "en") in pairs
    assert ("english-only", "en") in pairs and ("english-only", "ko") not in pairs
    ko = {r["x_maeul_id"]: r for r in reg.export(T, "ko")}
    assert ko["parking-forecast"]["name"] == "주차 수요 예측"
    assert ko["parking-forecast"]["risk_category"] == "limited risk"
    assert ko["parking-forecast"]["contact_name"] == "Kim Minji"
    assert ko["english-only"]["name"] == "Only English"  # falls back to the other language
    assert ko["parking-forecast"]["last_change_date"] == ko["parking-forecast"][
        "publication_date"]
    with pytest.raises(BadRequestData, match="lang"):
        reg.export(T, "fr")

    if svc.settings.store_url.startswith("sqlite"):
        code = cli_export(svc.settings, argparse.Namespace(tenant=T))
        assert code == 0
        printed = json.loads(capsys.readouterr().out)
        assert {(r["x_maeul_id"], r["lang"]) for r in printed} == pairs


def test_registry_export_command_end_to_end(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = f"sqlite:///{tmp_path}/e.db"
    s = Services(make_settings(store, tmp_path, trust_jobs=False))
    try:
        s.trust.registry.create("city", entry(), "key:op")
    finally:
        s.close()
    res = subprocess.run([sys.executable, "-m", "maeul.cli", "registry", "export",
                          "--store-url", store, "--tenant", "city"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    records = json.loads(res.stdout)
    assert {r["x_maeul_id"] for r in records} == {"parking-forecast", "privacy-masking"}
    assert all(list(r) == [*STANDARD_FIELDS, "x_maeul_id"] for r in records)


# -- HTTP -------------------------------------------------------------------------------------
def make_client(store_url: str, tmp_path: Path) -> Iterator[Any]:
    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(make_settings(store_url, tmp_path, auth_enabled=True,
                                      trust_jobs=False))
        with TestClient(app) as c:
            c.services = app.state.services  # type: ignore[attr-defined]
            keys = c.services.keys
            c.op, c.admin, c.reader, c.service = (  # type: ignore[attr-defined]
                {"Authorization": f"Bearer {keys.create(r, T)}"}
                for r in ("operator", "admin", "reader", "service"))
            yield c


@pytest.fixture
def http(store_url: str, tmp_path: Path) -> Iterator[Any]:
    yield from make_client(store_url, tmp_path)


@pytest.fixture
def sqlite_http(tmp_path: Path) -> Iterator[Any]:
    """For the many bad-input cases: one backend is enough (validation runs before storage)."""
    yield from make_client(f"sqlite:///{tmp_path}/h.db", tmp_path)


def test_http_roles_and_lifecycle(http: Any) -> None:
    assert http.post(R, json=entry()).status_code == 401
    assert http.post(R, json=entry(), headers=http.reader).status_code == 403
    r = http.post(R, json=entry(), headers=http.service)
    assert r.status_code == 403 and "admin or operator" in r.json()["detail"]
    r = http.post(R, json=entry(), headers=http.op)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{R}/parking-forecast"
    assert http.post(R, json=entry(), headers=http.admin).status_code == 409

    assert http.get(R).status_code == 401  # contacts and drafts: not for anonymous callers
    listed = http.get(R, headers=http.reader).json()
    assert {e["id"] for e in listed} == {"parking-forecast", "privacy-masking"}
    one = http.get(f"{R}/parking-forecast", headers=http.reader).json()
    assert one["contact_name"] == "Kim Minji"
    assert http.get(f"{R}/nowhere", headers=http.reader).status_code == 404

    p = http.patch(f"{R}/parking-forecast", json={"status": "evaluation"}, headers=http.admin)
    assert p.status_code == 200 and p.json()["status"] == "evaluation"
    assert http.patch(f"{R}/parking-forecast", json={"status": "pilot"},
                      headers=http.reader).status_code == 403
    ret = http.post(f"{R}/parking-forecast/retire", headers=http.op)
    assert ret.status_code == 200 and ret.json()["status"] == "retired"
    assert http.post(f"{R}/parking-forecast/retire", headers=http.service).status_code == 403
    filtered = http.get(R, params={"status": "retired"}, headers=http.reader).json()
    assert [e["id"] for e in filtered] == ["parking-forecast"]
    bad = http.get(R, params={"status": "live"}, headers=http.reader)
    assert bad.status_code == 400 and "status" in bad.json()["detail"]

    http.services.trust.registry.record_evaluation(T, "parking-forecast", {"mae": 2.0},
                                                   "maeul eval parking", "ds", "cli")
    ev = http.get(f"{R}/parking-forecast/evaluations", headers=http.reader).json()
    assert [e["metrics"] for e in ev] == [{"mae": 2.0}]

    exp = http.get(f"{R}/export", params={"lang": "en"}, headers=http.reader)
    assert exp.status_code == 200
    assert {r["lang"] for r in exp.json()} == {"en"}
    assert http.get(f"{R}/export").status_code == 401
    assert http.get(f"{R}/export", params={"lang": "xx"},
                    headers=http.reader).status_code == 400


LONG = "가" * 151


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (entry(colour="red"), "colour: Extra inputs are not permitted"),
        (entry(status="live"), "status: Input should be 'planned', 'design'"),
        (entry(risk_category="severe"), "risk_category: Input should be 'minimal risk'"),
        (entry(algorithm_type="magic"), "algorithm_type: Input should be"),
        (entry(type="intuitive"), "type: Input should be 'descriptive'"),
        (entry(domain="space"), "domain: Input should be"),
        (entry(description_short={"ko": LONG}), "description_short.ko: String should have at "
                                                "most 150 characters"),
        (entry(name={"en": "x" * 201}), "name.en: String should have at most 200 characters"),
        (entry(goal={"en": "x" * 10_001}), "goal.en: String should have at most 10000"),
        (entry(name="Parking"), "name: Input should be a valid dictionary"),
        (entry(name={}), "name: Value error, give the text in at least one language"),
        (entry(name={"de": "Parken"}), "name.de: Extra inputs are not permitted"),
        (entry(contact_email="nobody"), "contact_email: String should match pattern"),
        (entry(codebase_url="ftp://x"), "codebase_url: String should match pattern"),
        (entry(revision_date="soon"), "revision_date: Input should be a valid date"),
        ({k: v for k, v in entry().items() if k != "department"}, "department: Field required"),
        ({k: v for k, v in entry().items() if k != "id"}, "id: Field required"),
        (entry(id="has space"), "id: 1 to 100 letters"),
        (entry(performance={"en": "99%"}), "performance: cannot be set by hand"),
        (entry(uuid="x"), "uuid: cannot be set by hand"),
        (entry(publication_date="2020-01-01"), "publication_date: cannot be set by hand"),
        ([entry()], "a registry entry must be a JSON object"),
    ],
)
def test_http_bad_entries_get_400_naming_the_field(sqlite_http: Any, body: Any,
                                                   message: str) -> None:
    r = sqlite_http.post(R, json=body, headers=sqlite_http.op)
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"]
    assert sqlite_http.services.trust.registry.get(T, "parking-forecast") is None


def test_public_view_hides_drafts_and_contact_persons(http: Any) -> None:
    http.post(R, json=entry(), headers=http.op)
    http.post(R, json=entry("draft", status="planned"), headers=http.op)
    http.post(R, json=entry("old", status="retired"), headers=http.op)
    r = http.get(PUB)  # anonymous
    assert r.status_code == 200
    ids = {e["x_maeul_id"] for e in r.json()}
    assert ids == {"parking-forecast", "old", "privacy-masking"}
    one = next(e for e in r.json() if e["x_maeul_id"] == "parking-forecast")
    assert one["lang"] == "ko" and one["name"] == "주차 수요 예측"
    assert "contact_name" not in one and "contact_phone" not in one
    assert one["contact_email"] == "transport@city.example"
    assert "Kim Minji" not in r.text and "051-000-0000" not in r.text
    en = http.get(f"{PUB}/parking-forecast", params={"lang": "en"})
    assert en.status_code == 200 and en.json()["name"] == "Parking demand forecast"
    assert http.get(f"{PUB}/draft").status_code == 404
    assert http.get(f"{PUB}/nowhere").status_code == 404
    assert http.get(PUB, params={"lang": "jp"}).status_code == 400
    # a draft is published once it leaves "planned": publication_date is set then
    assert http.services.trust.registry.get(T, "draft")["publication_date"] is None
    http.patch(f"{R}/draft", json={"status": "design"}, headers=http.op)
    assert http.get(f"{PUB}/draft").json()["publication_date"]


# -- citizens' feedback -----------------------------------------------------------------------
def test_feedback_is_masked_and_reaches_the_department(http: Any) -> None:
    http.post(R, json=entry(), headers=http.op)
    text = "주차 예측이 틀려요. 저는 김민수입니다. 010-1234-5678로 연락 주세요."
    r = http.post(f"{PUB}/parking-forecast/feedback",
                  json={"kind": "objection", "text": text, "contact": "minsu@mail.example"})
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["kind"] == "objection" and "phone" in receipt["masked"]
    fid = receipt["id"]

    inbox = http.get("/trust/v1/feedback", params={"department": "교통정책과"}, headers=http.op)
    assert inbox.status_code == 200
    [item] = inbox.json()
    assert item["id"] == fid and item["system"] == "parking-forecast"
    assert "010-1234-5678" not in item["text"] and "1234-5678" not in item["text"]
    assert "주차 예측이 틀려요" in item["text"]
    # kept for the reply, encrypted; shown only to a key with the reply purpose, audited
    assert item["contact"] is None and item["hasContact"] is True
    replier = http.services.keys.create("operator", purposes=["feedback-reply"])
    [item] = http.get("/trust/v1/feedback", params={"department": "교통정책과"},
                      headers={"Authorization": f"Bearer {replier}"}).json()
    assert item["contact"] == "minsu@mail.example"
    [read] = audit(http.services, "privacy.read")
    assert read["target"] == fid and read["detail"]["attrs"] == ["contact"]
    stored = http.services.store.reader().list_json("registry_feedback", T)
    assert "minsu" not in json.dumps([d for _t, _k, d in stored])
    by_en = http.get("/trust/v1/feedback", params={"department": "transport policy division"},
                     headers=http.op).json()
    assert [i["id"] for i in by_en] == [fid]
    assert http.get("/trust/v1/feedback", params={"department": "Parks"},
                    headers=http.op).json() == []
    assert http.get("/trust/v1/feedback", headers=http.reader).status_code == 403
    assert http.get("/trust/v1/feedback").status_code == 401

    ent = http.services.hub.get_entity(T, f"urn:ngsi-ld:AIFeedback:{fid}")
    attrs = {k.removeprefix(DV): v[0]["value"] for k, v in ent["attrs"].items()}
    assert attrs["system"] == "parking-forecast" and attrs["department"] == "교통정책과"
    assert attrs["feedbackKind"] == "objection" and attrs["feedbackStatus"] == "open"
    assert "010-1234-5678" not in attrs["text"]
    assert "minsu" not in json.dumps(ent, ensure_ascii=False)

    [ev] = audit(http.services, "registry.feedback")
    assert ev["target"] == "parking-forecast" and ev["actor"] == "anonymous"
    assert ev["detail"] == {"kind": "objection", "feedback_id": fid, "department": "교통정책과"}
    everything = json.dumps(http.services.store.audit_log(None, 10_000), ensure_ascii=False)
    assert "010-1234-5678" not in everything and "minsu" not in everything
    assert "010-1234-5678" not in json.dumps(
        [d for _t, _k, d in http.services.store.reader().list_json("registry_feedback", T)])


def test_a_department_subscribed_to_its_feedback_is_notified(http: Any) -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        http.post(R, json=entry(), headers=http.op)
        sub = {"type": "Subscription", "entities": [{"type": "AIFeedback"}],
               "q": 'department=="교통정책과"',
               "notification": {"endpoint": {"uri": f"http://127.0.0.1:{srv.server_port}/n",
                                             "accept": "application/json"}}}
        assert http.post("/ngsi-ld/v1/subscriptions", json=sub,
                         headers=http.op).status_code == 201
        r = http.post(f"{PUB}/parking-forecast/feedback",
                      json={"kind": "feedback", "text": "안내가 정확해요",
                            "contact": "a@b.example"})
        assert r.status_code == 201
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got, "no notification arrived"
        [ent] = got[0]["data"]
        assert ent["id"] == f"urn:ngsi-ld:AIFeedback:{r.json()['id']}"
        assert ent["system"]["value"] == "parking-forecast"
        assert "a@b.example" not in json.dumps(got)
        listed = http.get("/ngsi-ld/v1/entities", params={"type": "AIFeedback"},
                          headers=http.op)
        assert len(listed.json()) == 1
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"kind": "feedback", "text": "x" * 2001}, 400, "text: String should have at most 2000"),
        ({"kind": "complaint", "text": "hi"}, 400, "kind: Input should be 'feedback' or "
                                                   "'objection'"),
        ({"kind": "feedback"}, 400, "text: Field required"),
        ({"kind": "feedback", "text": "   "}, 400, "text: String should have at least 1"),
        ({"kind": "feedback", "text": "hi", "name": "Kim"}, 400, "name: Extra inputs"),
        ({"kind": "feedback", "text": "hi", "contact": "x" * 201}, 400, "contact: String"),
    ],
)
def test_bad_feedback_is_refused(sqlite_http: Any, body: dict[str, Any], status: int,
                                 message: str) -> None:
    sqlite_http.post(R, json=entry(), headers=sqlite_http.op)
    r = sqlite_http.post(f"{PUB}/parking-forecast/feedback", json=body)
    assert r.status_code == status and message in r.json()["detail"]
    assert sqlite_http.services.store.reader().list_json("registry_feedback", T) == []


def test_feedback_only_for_published_entries(sqlite_http: Any) -> None:
    sqlite_http.post(R, json=entry("draft", status="planned"), headers=sqlite_http.op)
    body = {"kind": "feedback", "text": "hello"}
    assert sqlite_http.post(f"{PUB}/draft/feedback", json=body).status_code == 404
    assert sqlite_http.post(f"{PUB}/nowhere/feedback", json=body).status_code == 404
    ok = sqlite_http.post(f"{PUB}/privacy-masking/feedback", json=body)
    assert ok.status_code == 201
    assert ok.json()["department"] == {"ko": "개인정보 보호 담당 부서",
                                       "en": "Data protection office"}
