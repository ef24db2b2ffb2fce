"""Algorithmic impact assessment: scoring at every boundary (a small questionnaire and the
shipped one, by hand), validation, storage and audit, the HTTP API and ``maeul impact score``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from maeul.hub.app import Services
from maeul.hub.errors import BadRequestData, ResourceNotFound
from maeul.trust.impact import (
    Impact,
    Questionnaire,
    cli_score,
    oversight_for,
    score,
    shipped_questionnaire,
)
from support import make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
T = "default"


# -- a small questionnaire: four risk questions and two mitigation questions, each with
#    options w0..w5 weighing 0..5; so the maximum raw score is 20 (25% = 5, 50% = 10,
#    75% = 15) and the maximum mitigation score 10 (80% = 8)
def small() -> Questionnaire:
    def question(qid: str, section: str) -> dict[str, Any]:
        return {"id": qid, "section": section, "text": {"en": qid},
                "options": [{"id": f"w{w}", "text": {"en": str(w)}, "weight": w}
                            for w in range(6)]}

    return Questionnaire.model_validate({
        "version": "test-1", "title": {"en": "test"},
        "sections": [{"id": "r", "kind": "risk", "title": {"en": "risk"}},
                     {"id": "m", "kind": "mitigation", "title": {"en": "mitigation"}}],
        "questions": [question(f"r{i}", "r") for i in range(1, 5)]
        + [question("m1", "m"), question("m2", "m")],
    })


def small_answers(risk: tuple[int, int, int, int], mit: tuple[int, int]) -> dict[str, str]:
    out = {f"r{i + 1}": f"w{w}" for i, w in enumerate(risk)}
    out.update({"m1": f"w{mit[0]}", "m2": f"w{mit[1]}"})
    return out


@pytest.mark.parametrize(
    ("risk", "mit", "raw", "total", "applied", "level"),
    [
        ((0, 0, 0, 0), (0, 0), 0, Fraction(0), False, 1),
        ((5, 0, 0, 0), (0, 0), 5, Fraction(5), False, 1),  # 5/20 = 25% exactly: I
        ((5, 1, 0, 0), (0, 0), 6, Fraction(6), False, 2),  # 30%: just above: II
        ((5, 5, 0, 0), (0, 0), 10, Fraction(10), False, 2),  # 50% exactly: II
        ((5, 5, 1, 0), (0, 0), 11, Fraction(11), False, 3),  # 55%: III
        ((5, 5, 5, 0), (0, 0), 15, Fraction(15), False, 3),  # 75% exactly: III
        ((5, 5, 5, 1), (0, 0), 16, Fraction(16), False, 4),  # 80%: IV
        ((5, 5, 5, 5), (5, 5), 20, Fraction(17), True, 4),  # 17/20 = 85%: IV
        # mitigation 8 of 10 is exactly 80%: 11 x 0.85 = 9.35, 46.75%: II
        ((5, 5, 1, 0), (4, 4), 11, Fraction(935, 100), True, 2),
        # mitigation 7 of 10 is just below: no reduction, 11 = 55%: III
        ((5, 5, 1, 0), (4, 3), 11, Fraction(11), False, 3),
        # 17 x 0.85 = 14.45, 72.25%: III; without the reduction 85%: IV
        ((5, 5, 5, 2), (5, 3), 17, Fraction(1445, 100), True, 3),
        ((5, 5, 5, 2), (5, 2), 17, Fraction(17), False, 4),
    ],
)
def test_small_questionnaire_boundaries(risk: tuple[int, int, int, int], mit: tuple[int, int],
                                        raw: int, total: Fraction, applied: bool,
                                        level: int) -> None:
    s = score(small(), small_answers(risk, mit))
    assert s.max_raw == 20 and s.max_mitigation == 10
    assert s.raw == raw
    assert s.mitigation == sum(mit)
    assert s.mitigation_applied is applied
    assert s.total == total
    assert s.level == level
    d = s.as_dict()
    assert d["level_roman"] == {1: "I", 2: "II", 3: "III", 4: "IV"}[level]
    assert d["obligations"] == oversight_for(level).obligations


# -- the shipped questionnaire: maximum raw score 80 (25% = 20, 50% = 40, 75% = 60) and
#    maximum mitigation score 30 (80% = 24)
LOW = {  # every risk question at its lowest option: 1 + 1 + 1 + 1 + 1 = 5
    "project.reason": "efficiency", "project.scrutiny": "no", "project.vulnerable": "none",
    "project.choice": "freely", "system.role": "inform", "system.physical": "no",
    "system.speed": "days", "system.scale": "one", "algorithm.kind": "rules",
    "algorithm.explain": "yes", "algorithm.closed": "open", "algorithm.generative": "no",
    "decision.area": "none", "decision.discretion": "no", "impact.reversibility": "at_once",
    "impact.duration": "brief", "impact.rights": "little", "impact.health": "little",
    "impact.economic": "little", "impact.environment": "little", "impact.groups": "unlikely",
    "data.personal": "no", "data.sensitive": "no", "data.linked": "no",
    "data.unstructured": "no", "data.passive": "no",
}
MIT_ALL = {  # every mitigation answered yes: 1+2+1 + 2+2+2+1+2 + 2+1 + 2+2+2+2 + 2+2+1+1 = 30
    "consultation.internal": "yes", "consultation.external": "yes",
    "consultation.published": "yes", "derisking.bias_test": "yes",
    "derisking.monitoring": "yes", "derisking.override": "yes", "derisking.fallback": "yes",
    "derisking.audit": "yes", "data_quality.checked": "yes", "data_quality.versioned": "yes",
    "fairness.record": "yes", "fairness.notice": "yes", "fairness.appeal": "yes",
    "fairness.reasons": "yes", "privacy.assessment": "yes", "privacy.minimised": "yes",
    "privacy.retention": "yes", "privacy.purpose": "yes",
}
MIT_NONE = {k: "no" for k in MIT_ALL}
# exactly 24 of 30: no to internal (1), external (2), bias test (2) and fallback (1)
MIT_24 = {**MIT_ALL, "consultation.internal": "no", "consultation.external": "no",
          "derisking.bias_test": "no", "derisking.fallback": "no"}
MIT_23 = {**MIT_24, "privacy.retention": "no"}  # one point less: 23, below 80%

# 5 + reason new (+2) + scrutiny (+3) + most vulnerable (+4) + physical (+3) + sensitive (+3)
RAW_20 = {**LOW, "project.reason": "new", "project.scrutiny": "yes",
          "project.vulnerable": "most", "system.physical": "yes", "data.sensitive": "yes"}
RAW_21 = {**RAW_20, "system.speed": "hours"}
# 20 + four impact scales at very high (4 x 4) + safety (4)
RAW_40 = {**RAW_20, "impact.rights": "very_high", "impact.health": "very_high",
          "impact.economic": "very_high", "impact.environment": "very_high",
          "decision.area": "safety"}
RAW_41 = {**RAW_40, "system.speed": "hours"}
# 40 + online (3) + not explainable (3) + closed (2) + generative (2) + groups likely (3)
#    + linked (2) + unstructured (2) + passive (2) + hours (1) = 60
RAW_60 = {**RAW_40, "algorithm.kind": "online", "algorithm.explain": "no",
          "algorithm.closed": "closed", "algorithm.generative": "yes",
          "impact.groups": "likely", "data.linked": "yes", "data.unstructured": "yes",
          "data.passive": "yes", "system.speed": "hours"}
RAW_61 = {**RAW_60, "system.speed": "realtime"}
# 40 + online (3) + closed (2) + linked (2) = 47
RAW_47 = {**RAW_40, "algorithm.kind": "online", "algorithm.closed": "closed",
          "data.linked": "yes"}


@pytest.mark.parametrize(
    ("risk", "mit", "raw", "mitigation", "total", "level"),
    [
        (LOW, MIT_NONE, 5, 0, Fraction(5), 1),
        (RAW_20, MIT_NONE, 20, 0, Fraction(20), 1),  # 25% exactly
        (RAW_21, MIT_NONE, 21, 0, Fraction(21), 2),  # 26.25%
        (RAW_40, MIT_NONE, 40, 0, Fraction(40), 2),  # 50% exactly
        (RAW_41, MIT_NONE, 41, 0, Fraction(41), 3),  # 51.25%
        (RAW_60, MIT_NONE, 60, 0, Fraction(60), 3),  # 75% exactly
        (RAW_61, MIT_NONE, 61, 0, Fraction(61), 4),  # 76.25%
        # 24 of 30 = 80% exactly: 47 x 0.85 = 39.95, 49.94%: II
        (RAW_47, MIT_24, 47, 24, Fraction(3995, 100), 2),
        # 23 of 30, just below: 47 = 58.75%: III
        (RAW_47, MIT_23, 47, 23, Fraction(47), 3),
        # 61 x 0.85 = 51.85, 64.8%: III
        (RAW_61, MIT_ALL, 61, 30, Fraction(5185, 100), 3),
    ],
)
def test_shipped_questionnaire_boundaries(risk: dict[str, str], mit: dict[str, str], raw: int,
                                          mitigation: int, total: Fraction,
                                          level: int) -> None:
    q = shipped_questionnaire()
    assert q.max_raw == 80 and q.max_mitigation == 30
    s = score(q, {**risk, **mit})
    assert (s.raw, s.mitigation, s.total, s.level) == (raw, mitigation, total, level)
    assert s.mitigation_applied is (mitigation >= 24)


def test_optional_questions_may_stay_unanswered() -> None:
    q = shipped_questionnaire()
    answers: dict[str, Any] = {**RAW_40, **MIT_ALL}
    del answers["derisking.audit"]
    answers["data_quality.versioned"] = None
    s = score(q, answers)
    assert s.mitigation == 30 - 2 - 1 and s.max_mitigation == 30  # the maximum stays


def test_shipped_questionnaire_is_bilingual() -> None:
    q = shipped_questionnaire()
    for question in q.questions:
        assert question.text.get("ko") and question.text.get("en"), question.id
        for o in question.options:
            assert o.text.get("ko") and o.text.get("en"), (question.id, o.id)
    sections = {s.id for s in q.sections if s.kind == "mitigation"}
    assert {"consultation", "de_risking", "data_quality", "fairness", "privacy"} <= sections
    risk = {s.id for s in q.sections if s.kind == "risk"}
    assert risk == {"project", "system", "algorithm", "decision", "impact", "data"}


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({**RAW_20, **MIT_ALL, "made.up": "yes"}, "answers.made.up: unknown question"),
        ({**RAW_20, **MIT_ALL, "system.role": "sometimes"},
         "answers.system.role: 'sometimes' is not an option (choose one of inform"),
        ({**RAW_20, **MIT_ALL, "system.role": 3}, "answers.system.role: 3 is not an option"),
        ({k: v for k, v in {**RAW_20, **MIT_ALL}.items() if k != "impact.health"},
         "required questions not answered: impact.health"),
        (["system.role"], "answers: an object"),
    ],
)
def test_bad_answers_are_named(answers: Any, message: str) -> None:
    with pytest.raises(BadRequestData) as err:
        score(shipped_questionnaire(), answers)
    assert message in err.value.detail


def test_a_bad_option_is_not_also_reported_missing() -> None:
    with pytest.raises(BadRequestData) as err:
        score(shipped_questionnaire(), {**RAW_20, **MIT_ALL, "system.role": "x"})
    assert "not answered" not in err.value.detail


# -- storage, audit, oversight ---------------------------------------------------------------
@pytest.fixture
def svc(store_url: str, tmp_path: Path) -> Iterator[Services]:
    s = Services(make_settings(store_url, tmp_path, trust_jobs=False))
    yield s
    s.close()


def register(s: Services, sid: str = "signals") -> None:
    s.trust.registry.create(T, {
        "id": sid, "name": {"en": "Signal timing"}, "organization": {"en": "City"},
        "department": {"en": "Traffic"}, "contact_email": "traffic@city.example",
        "description_short": {"en": "Adapts green times"}, "status": "pilot"}, "key:op")


def actions(s: Services, action: str) -> list[dict[str, Any]]:
    return [r for r in s.store.audit_log(T, 1000) if r["action"] == action]


def test_assess_stores_scores_audits_and_sets_oversight(svc: Services) -> None:
    register(svc)
    impact = svc.trust.impact
    assert impact.oversight(T, "signals").level is None  # not assessed: like level III
    doc = impact.assess(T, "signals", {**RAW_20, **MIT_NONE}, "key:op")
    assert (doc["level"], doc["raw"], doc["total"], doc["max_raw"], doc["max_mitigation"]) == (
        1, 20, 20, 80, 30)
    assert doc["questionnaire_version"] == shipped_questionnaire().version
    assert doc["answers"]["system.physical"] == "yes" and doc["history"] == []
    stored = svc.store.reader().get_json("assessment", T, "signals")
    assert stored == doc
    ov = impact.oversight(T, "signals")
    assert ov.auto_apply and ov.reviewers == 0

    doc2 = impact.assess(T, "signals", {**RAW_61, **MIT_NONE}, "key:op2")
    assert doc2["level"] == 4 and doc2["total"] == 61
    assert [h["level"] for h in doc2["history"]] == [1]
    assert doc2["history"][0]["actor"] == "key:op"
    assert impact.oversight(T, "signals").reviewers == 2
    events = actions(svc, "impact.score")
    assert len(events) == 2
    newest = events[0] if events[0]["seq"] > events[1]["seq"] else events[1]
    assert newest["target"] == "signals" and newest["actor"] == "key:op2"
    assert newest["detail"]["level"] == 4 and newest["detail"]["previous_level"] == 1
    assert newest["detail"]["total"] == 61.0

    view = svc.trust.registry.view(T, "signals")
    assert view["impact"]["level"] == 4 and view["impact"]["level_roman"] == "IV"
    rec = next(r for r in svc.trust.registry.export(T, "en") if r["x_maeul_id"] == "signals")
    assert "impact level IV" in rec["AIA_description"]


def test_assess_needs_a_registered_system_and_valid_answers(svc: Services) -> None:
    with pytest.raises(ResourceNotFound):
        svc.trust.impact.assess(T, "nowhere", {**RAW_20, **MIT_NONE}, "key:op")
    register(svc)
    with pytest.raises(BadRequestData):
        svc.trust.impact.assess(T, "signals", {"made.up": "x"}, "key:op")
    assert svc.store.reader().get_json("assessment", T, "signals") is None
    assert actions(svc, "impact.score") == []


def test_a_custom_questionnaire_can_be_used(svc: Services) -> None:
    register(svc)
    impact = Impact(svc, small())
    doc = impact.assess(T, "signals", small_answers((5, 5, 1, 0), (4, 4)), "key:op")
    assert doc["level"] == 2 and doc["total"] == 9.35 and doc["questionnaire_version"] == "test-1"


# -- HTTP ---------------------------------------------------------------------------------------
@pytest.fixture
def http(tmp_path: Path) -> Iterator[Any]:
    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(make_settings(f"sqlite:///{tmp_path}/i.db", tmp_path,
                                      auth_enabled=True, trust_jobs=False))
        with TestClient(app) as c:
            c.services = app.state.services  # type: ignore[attr-defined]
            yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_questionnaire_is_public_in_both_languages(http: Any) -> None:
    r = http.get("/trust/v1/impact/questionnaire")
    assert r.status_code == 200
    body = r.json()
    assert body["max_raw"] == 80 and body["max_mitigation"] == 30
    assert body["questions"][0]["text"]["ko"] and body["questions"][0]["text"]["en"]
    assert [lv["level"] for lv in body["levels"]] == ["I", "II", "III", "IV"]
    ko = http.get("/trust/v1/impact/questionnaire", params={"lang": "ko"}).json()
    assert ko["questions"][0]["text"].startswith("이 시스템을")
    assert ko["questions"][0]["options"][0]["text"] == "기존 업무를 더 빠르거나 저렴하게 하기 위해"
    en = http.get("/trust/v1/impact/questionnaire", params={"lang": "en"}).json()
    assert en["title"] == "maeul algorithmic impact assessment questionnaire"
    bad = http.get("/trust/v1/impact/questionnaire", params={"lang": "fr"})
    assert bad.status_code == 400 and "lang" in bad.json()["detail"]


def test_assessment_over_http(http: Any) -> None:
    keys = http.services.keys
    op, reader, svc_key = (keys.create(r, T) for r in ("operator", "reader", "service"))
    register(http.services)
    url = "/trust/v1/registry/signals/assessment"
    body = {"answers": {**RAW_41, **MIT_NONE}}
    assert http.put(url, json=body).status_code == 401
    assert http.put(url, json=body, headers=bearer(reader)).status_code == 403
    assert http.put(url, json=body, headers=bearer(svc_key)).status_code == 403
    assert http.get(url, headers=bearer(reader)).status_code == 404  # not assessed yet
    r = http.put(url, json=body, headers=bearer(op))
    assert r.status_code == 200, r.text
    assert r.json()["level"] == 3 and r.json()["obligations"] == [
        "human approval of every decision"]
    got = http.get(url, headers=bearer(reader))
    assert got.status_code == 200 and got.json()["raw"] == 41
    assert http.get(url).status_code == 401  # the answers are not public
    entry = http.get("/trust/v1/registry/signals", headers=bearer(reader)).json()
    assert entry["impact"]["level"] == 3

    missing = http.put("/trust/v1/registry/nowhere/assessment", json=body, headers=bearer(op))
    assert missing.status_code == 404
    bad = http.put(url, json={"answers": {"system.role": "sometimes"}}, headers=bearer(op))
    assert bad.status_code == 400 and "answers.system.role" in bad.json()["detail"]
    extra = http.put(url, json={**body, "level": 1}, headers=bearer(op))
    assert extra.status_code == 400 and "level" in extra.json()["detail"]
    old = http.put(url, json={**body, "questionnaire_version": "1999.1"}, headers=bearer(op))
    assert old.status_code == 400 and "questionnaire_version" in old.json()["detail"]
    assert http.get(url, headers=bearer(reader)).json()["level"] == 3  # unchanged


# -- maeul impact score FILE --------------------------------------------------------------------
def run_score(tmp_path: Path, content: Any, *extra: str,
              raw: str | None = None) -> tuple[int, str, str]:
    import contextlib
    import io

    from maeul.cli import main

    path = tmp_path / "answers.json"
    path.write_text(raw if raw is not None else json.dumps(content), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["impact", "score", str(path), *extra])
    return code, out.getvalue(), err.getvalue()


def test_cli_prints_level_scores_and_obligations(tmp_path: Path) -> None:
    code, out, _ = run_score(tmp_path, {"answers": {**RAW_47, **MIT_24}})
    assert code == 0
    assert "impact level       II" in out
    assert "raw risk score     47 of 80" in out
    assert "mitigation score   24 of 30 (80.0%; 80% reached" in out
    assert "total score        39.95" in out
    assert "monitoring" in out and "human override" in out


def test_cli_json_and_flat_mapping(tmp_path: Path) -> None:
    code, out, _ = run_score(tmp_path, {**RAW_61, **MIT_NONE}, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["level"] == 4 and doc["level_roman"] == "IV" and doc["total"] == 61
    assert doc["reviewers"] == 2 and "two reviewers" in doc["obligations"]


@pytest.mark.parametrize(
    ("content", "raw", "message"),
    [
        (None, "{not json", "not valid JSON"),
        ([1, 2], None, "must hold a JSON object"),
        ({"answers": {**RAW_20, **MIT_ALL}, "colour": "red"}, None, "unknown keys next to "
                                                                    "answers: colour"),
        ({**RAW_20, **MIT_ALL, "made.up": "x"}, None, "answers.made.up: unknown question"),
        ({"system.role": "inform"}, None, "required questions not answered"),
        ({"answers": {**RAW_20, **MIT_ALL}, "questionnaire_version": "0"}, None,
         "questionnaire_version '0'"),
    ],
)
def test_cli_bad_file_exits_2_naming_the_problem(tmp_path: Path, content: Any, raw: str | None,
                                                 message: str) -> None:
    code, out, err = run_score(tmp_path, content, raw=raw)
    assert code == 2 and out == ""
    assert message in err and "answers.json" in err


def test_cli_missing_file(tmp_path: Path) -> None:
    import argparse

    code = cli_score(None, argparse.Namespace(file=tmp_path / "absent.json", json=False))
    assert code == 2
