"""``maeul civic classify`` and ``maeul civic eval`` end to end (their own processes), and the
evaluation's figures reaching the AI registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

def _maeul(*args: str, stdin: str = "", env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "maeul.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=full, timeout=600)


def test_classify_routes_each_line_and_reports_bad_lines(tmp_path: Path) -> None:
    places = tmp_path / "places.json"
    places.write_text(json.dumps([{
        "id": "urn:ngsi-ld:PointOfInterest:hall", "type": "PointOfInterest",
        "name": {"type": "Property", "value": "시청역"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [127.0, 37.5]}}}],
        ensure_ascii=False))
    lines = ["어제 밤 10시쯤 시청역 3번 출구 앞 가로등이 꺼져 있었어요", "",
             "Someone dumped old mattresses behind the market again", "가" * 10_001,
             "윗집에서 새벽마다 쿵쿵거려서 잠을 못 자요"]
    r = _maeul("civic", "classify", "--places", str(places), "--now",
               "2026-11-23T09:00:00+09:00", stdin="\n".join(lines) + "\n")
    assert r.returncode == 1, r.stderr  # two lines failed, the rest were routed
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 5
    assert rows[0]["category"] == "streetlight" and rows[0]["department"] == "roads"
    assert rows[0]["place"]["entity"] == "urn:ngsi-ld:PointOfInterest:hall"
    assert rows[0]["time"]["at"].startswith("2026-11-22T22:00")
    assert rows[1] == {"line": 2, "error": "empty text"}
    assert rows[2]["category"] == "waste"
    assert rows[3]["line"] == 4 and "10000" in rows[3]["error"]
    assert rows[4]["category"] == "noise"
    for row in (rows[0], rows[2], rows[4]):
        assert 0 < row["confidence"] <= 1 and len(row["alternatives"]) >= 2


def test_classify_refuses_a_broken_taxonomy(tmp_path: Path) -> None:
    bad = tmp_path / "tax.json"
    bad.write_text('{"categories": [{"code": "x"}]}')
    r = _maeul("civic", "classify", "--taxonomy", str(bad), stdin="포트홀\n")
    assert r.returncode == 2 and "maeul civic classify:" in r.stderr
    assert r.stdout == ""


def test_eval_prints_every_figure_on_small_sets(tmp_path: Path) -> None:
    complaints = tmp_path / "c.jsonl"
    complaints.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in [
        {"text": "밤에 골목이 깜깜해요 보안등 좀 봐주세요", "category": "streetlight",
         "lang": "ko"},
        {"text": "아파트 앞 인도에 차를 세워놔서 유모차가 못 지나가요", "category": "parking",
         "lang": "ko"},
        {"text": "The bus never stops at our stop anymore", "category": "transit", "lang": "en"},
    ]) + "\n")
    r = _maeul("civic", "eval", "--complaints", str(complaints), "--json")
    assert r.returncode == 0, r.stderr
    report: dict[str, Any] = json.loads(r.stdout.splitlines()[-1])
    assert report["routing"]["cases"] == 3
    assert 0 <= report["routing"]["all"]["department_accuracy"] <= 1
    assert report["routing"]["ko"]["n"] == 2 and report["routing"]["en"]["n"] == 1
    assert report["answers"]["out_of_scope"] > 0 and "in_scope_cited" in report["answers"]
    nyc = report["nyc311"]
    assert "runs" in nyc or "skipped" in nyc
    bad = _maeul("civic", "eval", "--complaints", str(tmp_path / "missing.jsonl"))
    assert bad.returncode == 2 and "maeul civic eval:" in bad.stderr


def test_recorded_figures_become_the_registry_entries_performance(tmp_path: Path) -> None:
    from maeul.config import Settings
    from maeul.hub.app import Services
    from maeul.services.civic.evaluation import record, registry_metrics

    report = {
        "routing": {"set": "complaints.jsonl", "cases": 532,
                    "all": {"department_accuracy": 0.91, "category_accuracy": 0.9,
                            "latency_ms": {"p50": 40.0, "p95": 72.0}},
                    "ko": {"department_accuracy": 0.904}},
        "nyc311": {"runs": [{"train": "nyc311_a.csv", "test": "nyc311_b.csv",
                             "accuracy": 0.866}]},
        "answers": {"set": "questions.jsonl", "questions": 127, "in_scope_cited": 0.984,
                    "in_scope_answered": 0.759, "out_of_scope_answered": 0,
                    "latency_ms": {"p50": 29.0, "p95": 47.0}},
    }
    metrics = registry_metrics(report)
    assert metrics["civic-routing"]["department_accuracy_ko"] == 0.904
    assert metrics["civic-routing"]["nyc311_a_to_b_accuracy"] == 0.866
    settings = Settings(store_url=f"sqlite:///{tmp_path}/r.db", secrets_dir=tmp_path / "s",
                        context_cache_dir=tmp_path / "ctx", trust_jobs=False)
    record(settings, report, "default", "maeul civic eval --record")
    services = Services(settings)
    try:
        routing = services.trust.registry.view("default", "civic-routing")
        answers = services.trust.registry.view("default", "civic-answers")
    finally:
        services.close()
    assert "0.904" in json.dumps(routing) and "maeul civic eval --record" in json.dumps(routing)
    assert "0.984" in json.dumps(answers)
