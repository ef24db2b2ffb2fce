"""Scoring the desk's answers: the question file, citation correctness, calibration, and the
shipped question set's targets (no out-of-scope answer, ≥ 90 % of answers cite right)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maeul.services.civic.answer import Desk, Gate
from maeul.services.civic.desk import sample_docs
from maeul.services.civic.docindex import DocIndex
from maeul.services.civic.qa_eval import (
    answer_spans,
    calibrate,
    cites_answer,
    evaluate_answers,
    load_questions,
    split,
)

QUESTIONS = Path(str(sample_docs().parent / "eval" / "questions.jsonl"))


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    cache = tmp_path_factory.getbasetemp() / "civic-sample-index"
    return Desk(DocIndex.load_or_build(sample_docs(), cache))


def test_the_shipped_question_set_is_well_formed(desk: Desk) -> None:
    qs = load_questions(QUESTIONS)
    ins = [q for q in qs if not q.get("out_of_scope")]
    oos = [q for q in qs if q.get("out_of_scope")]
    assert len(ins) >= 60 and len(oos) >= 40
    assert len({q["id"] for q in qs}) == len(qs)
    documents = {p.doc for p in desk.index.passages}
    for q in ins:
        assert q["document"] in documents, q["id"]
        assert answer_spans(desk, q["document"], q["must"]), f"{q['id']}: 'must' not found"
    assert sum(q["lang"] == "en" for q in ins) >= 10


def test_the_blind_tuning_half_is_scored_without_out_of_scope_answers(desk: Desk) -> None:
    # the blind set shares the schema; its even-numbered rows are held out from tuning
    qs = load_questions(QUESTIONS.with_name("questions_blind.jsonl"))
    assert {q["lang"] for q in qs} == {"ko", "en"}
    odd = [q for q in qs if int(q["id"].rsplit("-", 1)[1]) % 2 == 1]
    report = evaluate_answers(desk, odd, warmup=0)
    assert report["in_scope"] == 48 and report["out_of_scope"] == 23
    assert report["out_of_scope_answered"] == 0, report["answered_out_of_scope"]
    assert report["in_scope_answered_cited"] >= 0.4


def test_the_shipped_set_meets_the_targets(desk: Desk) -> None:
    report = evaluate_answers(desk, load_questions(QUESTIONS))
    assert report["out_of_scope_answered"] == 0, report["answered_out_of_scope"]
    assert report["in_scope_cited"] >= 0.9, report["miscited"]
    # the share answered is a trade-off, not a target; a collapse would still be a bug
    assert report["in_scope_answered"] >= 0.6
    assert set(report["latency_ms"]) == {"p50", "p95", "max"}
    assert set(report["by_lang"]) == {"ko", "en"}


def test_scores_follow_the_answers(desk: Desk) -> None:
    qs = [
        {"id": "a", "question": "시립도서관은 월요일에 쉬나요?", "document": "culture/library.md",
         "must": "매주 월요일과 법정 공휴일"},
        {"id": "b", "question": "시립도서관은 월요일에 쉬나요?", "document": "culture/library.md",
         "must": "상호대차"},  # answered, but from another passage: a wrong citation
        {"id": "c", "question": "내일 날씨는요?", "document": "culture/library.md", "must": "x"},
        {"id": "d", "question": "삼성전자 주가 전망은 어떤가요?", "out_of_scope": True},
    ]
    r = evaluate_answers(desk, qs, warmup=0)
    assert r["in_scope"] == 3 and r["out_of_scope"] == 1 and r["questions"] == 4
    assert r["in_scope_answered"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["in_scope_cited"] == pytest.approx(0.5)
    assert r["in_scope_answered_cited"] == pytest.approx(1 / 3, abs=1e-4)
    assert r["miscited"] == ["b"] and r["refused_in_scope"] == ["c"]
    assert r["out_of_scope_answered"] == 0


def test_cites_answer_needs_the_right_document_and_span(desk: Desk) -> None:
    q = {"document": "culture/library.md", "must": "7권까지 14일"}
    (start, end), = answer_spans(desk, q["document"], q["must"])
    cite = {"document": "culture/library.md", "start": start - 5, "end": end + 5,
            "quote": "...", "passage": {"start": start - 50, "end": end + 50}}
    assert cites_answer(desk, {"citations": [cite]}, q) == (True, True)
    away = {**cite, "start": end + 10, "end": end + 20}
    assert cites_answer(desk, {"citations": [away]}, q) == (True, False)
    other = {**cite, "document": "civil/passport.html"}
    assert cites_answer(desk, {"citations": [other]}, q) == (False, False)


@pytest.mark.parametrize("line, message", [
    ("not json", "not JSON"),
    ('{"question": ""}', "non-empty 'question'"),
    ('["a list"]', "non-empty 'question'"),
    ('{"question": "여권?"}', "'document'"),
    ('{"question": "여권?", "document": "a.md"}', "'must'"),
])
def test_load_questions_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok?", "out_of_scope": true}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        load_questions(path)
    assert ":2:" in str(err.value)


def test_an_empty_question_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no questions"):
        load_questions(path)


def test_split_alternates_within_each_kind() -> None:
    qs: list[dict[str, Any]] = [{"id": f"i{n}", "question": "q"} for n in range(5)] + \
        [{"id": f"o{n}", "question": "q", "out_of_scope": True} for n in range(4)]
    dev, test = split(qs)
    assert [q["id"] for q in dev] == ["i0", "i2", "i4", "o0", "o2"]
    assert [q["id"] for q in test] == ["i1", "i3", "o1", "o3"]


def test_calibrate_finds_a_gate_that_answers_no_out_of_scope_question(desk: Desk) -> None:
    qs = json.loads("[" + ",".join(QUESTIONS.read_text(encoding="utf-8").splitlines()[:40:3]
                                   + QUESTIONS.read_text(encoding="utf-8").splitlines()[-12:])
                    + "]")
    grid = {"min_similarity": [0.86, 0.875, 0.89], "min_coverage": [0.5, 0.6],
            "sure_similarity": [0.91], "sure_coverage": [0.4],
            "loose_similarity": [0.85, 1.0], "loose_coverage": [0.8]}
    gate, fit = calibrate(desk, qs, grid)
    assert isinstance(gate, Gate) and fit["answered"] >= fit["right"] > 0
    calibrated = Desk(desk.index, gate=gate)
    assert all(calibrated.ask(q["question"]).refused for q in qs if q.get("out_of_scope"))
    with pytest.raises(ValueError, match="no gate"):
        calibrate(desk, [{"id": "x", "question": "공영주차장 월 정기권은 언제 신청하나요?",
                          "out_of_scope": True}],
                  {"min_similarity": [0.5], "min_coverage": [0.0], "sure_similarity": [0.5],
                   "sure_coverage": [0.0], "loose_similarity": [0.5], "loose_coverage": [0.0]})
