"""Grounded answers: quotes with citations, conservative refusals, bad questions, the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from maeul.services.civic.answer import (
    MAX_QUESTION,
    Desk,
    Gate,
    Glossary,
    check_question,
    cli_ask,
    question_terms,
)
from maeul.services.civic.desk import sample_docs
from maeul.services.civic.docindex import DocIndex


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    # one cache for the session: other modules over the sample documents embed nothing
    cache = tmp_path_factory.getbasetemp() / "civic-sample-index"
    return Desk(DocIndex.load_or_build(sample_docs(), cache))


def _doc_text(desk: Desk, doc: str) -> str:
    assert desk.index.load is not None
    return next(d.text for d in desk.index.load.documents if d.doc == doc)


def _assert_grounded(desk: Desk, out: dict[str, Any]) -> None:
    assert out["citations"], "an answer without a citation"
    for c in out["citations"]:
        assert _doc_text(desk, c["document"])[c["start"]:c["end"]] == c["quote"]
        assert c["passage"]["start"] <= c["start"] < c["end"] <= c["passage"]["end"]
        assert c["quote"] in out["answer"]


def test_a_covered_question_is_answered_with_a_quote_and_its_source(desk: Desk) -> None:
    out = desk.ask("도서관에서 책은 몇 권까지 빌릴 수 있어요?").to_json()
    assert out["refused"] is False and out["generated"] is False and out["label"] is None
    cite = out["citations"][0]
    assert cite["document"] == "culture/library.md"
    assert cite["section"] == "예시시립도서관 이용 안내 > 대출과 반납"
    assert "7권까지 14일" in cite["quote"]
    assert out["answer"].endswith("[1]")
    assert 0.5 <= out["confidence"] <= 1.0
    _assert_grounded(desk, out)


def test_an_ordinance_article_is_cited_by_its_article(desk: Desk) -> None:
    out = desk.ask("공원 물놀이장은 언제부터 언제까지 운영하나요?").to_json()
    cite = out["citations"][0]
    assert cite["document"] == "ordinances/park-management-ordinance.txt"
    assert cite["section"].endswith("제4조(이용 시간)")
    assert "6월 1일부터 8월 31일까지" in cite["quote"]


def test_english_questions_and_the_pdf(desk: Desk) -> None:
    out = desk.ask("How much does a 20 litre rubbish bag cost?").to_json()
    assert out["lang"] == "en" and not out["refused"]
    cite = out["citations"][0]
    assert cite["document"] == "waste/collection-calendar.pdf"
    assert cite["section"].startswith("p. 1 >") and "490 won for 20 litres" in cite["quote"]
    _assert_grounded(desk, out)


@pytest.mark.parametrize("question", [
    "내일 예시시 날씨 어때요?",                       # the weather
    "서울시 대형폐기물 수수료는 얼마인가요?",            # another city
    "보건소에서 코로나 검사를 해 주나요?",               # a service not described
    "공영주차장 전기차 충전 요금은 얼마예요?",            # a near miss: a fee not in the table
    "쓰레기봉투 100리터짜리는 얼마예요?",               # a size the price list does not have
    "전세 보증금을 집주인이 안 돌려주는데 소송해야 하나요?",  # legal advice
    "How do I reset my iPhone?",
    "안녕하세요",
])
def test_out_of_scope_questions_are_refused_with_an_offer(desk: Desk, question: str) -> None:
    answer = desk.ask(question)
    out = answer.to_json()
    assert out["refused"] is True and out["answer"] is None and out["citations"] == []
    assert out["reason"] == "not-covered"
    assert "민원" in out["message"] and "file a request" in out["message"]
    assert out["offer"]["action"] == "file-request"
    assert out["confidence"] < 0.5


def test_a_name_no_document_mentions_is_named_in_the_signals(desk: Desk) -> None:
    out = desk.ask("부산 해운대구 주민센터 운영시간 알려 주세요").to_json()
    assert out["refused"] and out["signals"]["unknown_names"] == 2
    assert "부산" not in json.dumps(out, ensure_ascii=False)


def test_every_answer_is_grounded(desk: Desk) -> None:
    questions = ["여권 사진은 어떤 크기로 찍어야 하나요?",
                 "공영주차장 월 정기권은 언제 신청하나요?",
                 "수도 요금을 자동이체로 내면 할인이 되나요?",
                 "What number should I call for an ambulance?",
                 "장롱 버리는 데 얼마예요?", "주민센터 토요일에 여나요?"]
    answered = 0
    for q in questions:
        out = desk.ask(q).to_json()
        if not out["refused"]:
            answered += 1
            _assert_grounded(desk, out)
    assert answered >= 4


@pytest.mark.parametrize("bad, message", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("가" * (MAX_QUESTION + 1), "at most 2000"),
    ("질문" * 50_000, "at most 2000"),  # a 100 kB question
    (None, "a string is needed"),
    (42, "a string is needed"),
    (b"bytes", "a string is needed"),
])
def test_bad_questions_raise_a_clear_error(desk: Desk, bad: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        desk.ask(bad)


def test_bad_lang_raises(desk: Desk) -> None:
    with pytest.raises(ValueError, match="lang"):
        desk.ask("도서관 휴관일?", lang="fr")
    assert desk.ask("도서관 휴관일은 언제예요?", lang="en").to_json()["lang"] == "en"


def test_check_question_strips() -> None:
    assert check_question("  여권 수수료?  ") == "여권 수수료?"


def test_question_terms_keep_prefixes_units_and_drop_question_words() -> None:
    forms = [t.form for t in question_terms("주민등록증 재발급 수수료는 얼마예요?")]
    assert "재발급" in forms and "얼마" not in forms
    forms = [t.form for t in question_terms("쓰레기봉투 100리터짜리는 몇 개 있어요?")]
    assert "100리터" in forms and "몇" not in forms
    assert [t.proper for t in question_terms("부산 주민센터")] == [True, False, False]
    assert [t.form for t in question_terms("How much is a passport?")] == ["passport"]


def test_glossary_file_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"ko": {"동사무소": ["주민센터"]}, "en": {"fees": ["요금"]}}),
                    encoding="utf-8")
    g = Glossary.load(good)
    assert g.entries["동사무소"] == [["주민", "센터"]] and g.entries["fee"] == [["요금"]]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ko": {"동사무소": "주민센터"}}), encoding="utf-8")
    with pytest.raises(ValueError, match="ko.동사무소: a list of strings"):
        Glossary.load(bad)
    bad.write_text(json.dumps({"en": {"two words": ["x"]}}), encoding="utf-8")
    with pytest.raises(ValueError, match="one word"):
        Glossary.load(bad)
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="glossary"):
        Glossary.load(bad)


def test_the_glossary_lets_everyday_words_match(desk: Desk) -> None:
    q = "동사무소 토요일에도 문 여나요?"
    plain = Desk(desk.index, glossary=False)
    f_plain, f_gloss = plain.features(q), desk.features(q)
    assert max(f_gloss.covs[:3]) > max(f_plain.covs[:3])


def test_a_stricter_gate_refuses_more(desk: Desk) -> None:
    q = "여권 사진은 어떤 크기로 찍어야 하나요?"
    assert not desk.ask(q).refused
    strict = Desk(desk.index, gate=Gate(min_similarity=0.99, sure_similarity=0.99,
                                        loose_similarity=0.99, distinct_z=99.0))
    assert strict.ask(q).refused


def test_a_distinct_best_passage_answers_colloquial_wording(desk: Desk) -> None:
    # few of its words are in the passage, but the passage stands far above the rest
    q = "닭 뼈는 음식물 쓰레기로 버리면 되나요?"
    f = desk.features(q)
    assert f.z[0] >= desk.gate.distinct_z > max(f.z[1:])
    out = desk.ask(q)
    assert not out.refused and out.confidence >= 0.5
    assert "뼈" in out.citations[0]["quote"]
    assert Desk(desk.index, gate=Gate(distinct_z=99.0)).ask(q).refused


def test_who_questions_need_a_named_person(desk: Desk) -> None:
    # the ordinance speaks of 예시시장 (the mayor's office) but names nobody
    out = desk.ask("예시시 시장이 누구에요")
    assert out.refused and out.signals["why"].startswith("asks for a person")


def test_english_names_no_document_mentions_are_refused(desk: Desk) -> None:
    out = desk.ask("What are the opening hours of the Seoul Global Center?")
    assert out.refused and out.signals.get("unknown_names") == 1


# -- the command line ----------------------------------------------------------------------

TINY = {
    "hours.md": "# 주민센터 운영시간\n\n## 평일\n\n"
                "주민센터 민원 창구는 평일 오전 9시부터 오후 6시까지 운영합니다.\n\n"
                "## 토요일\n\n새솔동 주민센터는 둘째·넷째 토요일 오전에 문을 엽니다.\n",
    "fees.txt": "여권 수수료\n\n10년 복수여권 발급 수수료는 53,000원입니다.\n",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "docs"
    folder.mkdir()
    for name, text in TINY.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _args(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {"docs": None, "question": None, "cache": None,
                            "generator_url": None, "generator_model": None,
                            "generator_key_env": None, "gguf": None}
    base.update(kw)
    return argparse.Namespace(**base)


class _Settings:
    civic_generator_url = None
    civic_generator_model = None
    civic_generator_key_env = None
    civic_gguf_path = None


def test_cli_ask_prints_one_json_answer(tiny: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    rc = cli_ask(_Settings(), _args(docs=tiny, cache=cache,
                                    question="주민센터는 평일 몇 시까지 운영하나요?"))
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["refused"] is False
    cite = out["citations"][0]
    assert cite["document"] == "hours.md" and cite["section"] == "주민센터 운영시간 > 평일"
    assert {"start", "end", "quote"} <= set(cite)
    assert out["index"]["cache_hit"] is False and out["index"]["documents"] == 2
    rc = cli_ask(_Settings(), _args(docs=tiny, cache=cache, question="내일 비 와요?"))
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["refused"] is True and out["reason"] == "not-covered"
    assert out["index"]["cache_hit"] is True  # the second run embeds nothing


def test_cli_ask_default_cache_lives_beside_the_docs(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "fees.txt").write_text(TINY["fees.txt"], encoding="utf-8")
    assert cli_ask(_Settings(), _args(docs=folder, question="여권 수수료는 얼마예요?")) == 0
    capsys.readouterr()
    assert list((folder / ".maeul-index").glob("docindex-*.npz"))


@pytest.mark.parametrize("kw, message", [
    ({"question": ""}, "empty"),
    ({"question": "x" * 100_000}, "at most 2000"),
    ({"question": "여권?", "docs": Path("/nonexistent/folder")}, "not a folder"),
    ({"question": "여권?", "generator_url": "http://127.0.0.1:9"}, "model"),
    ({"question": "여권?", "generator_url": "http://127.0.0.1:9", "generator_model": "m",
      "generator_key_env": "MAEUL_TEST_UNSET_KEY_VAR"}, "MAEUL_TEST_UNSET_KEY_VAR"),
])
def test_cli_ask_bad_input_exits_2(tiny: Path, capsys: pytest.CaptureFixture[str],
                                   kw: dict[str, Any], message: str) -> None:
    kw.setdefault("docs", tiny)
    assert cli_ask(_Settings(), _args(**kw)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_cli_ask_empty_folder_and_bad_files(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_ask(_Settings(), _args(docs=empty, question="여권?")) == 2
    assert "no readable documents" in capsys.readouterr().err
    (empty / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    (empty / "ok.txt").write_text(TINY["fees.txt"], encoding="utf-8")
    assert cli_ask(_Settings(), _args(docs=empty, question="여권 수수료는 얼마예요?")) == 0
    captured = capsys.readouterr()
    assert "broken.pdf" in captured.err
    assert json.loads(captured.out)["index"]["errors"][0]["doc"] == "broken.pdf"
