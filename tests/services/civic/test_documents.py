"""Loading the city's documents: formats, sections, passages, offsets, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from maeul.services.civic.desk import sample_docs
from maeul.services.civic.documents import (
    MAX_CHARS,
    MIN_CHARS,
    DocumentError,
    load_documents,
    load_file,
    passages_of,
    sentence_spans,
)

ORDINANCE = """예시시 가로등 관리 조례

제1장 총칙

제1조(목적) 이 조례는 가로등을 관리하는 데 필요한 사항을 정함을 목적으로 한다.

제2조(정의) 이 조례에서 사용하는 용어의 뜻은 다음과 같다.
1. "가로등"이란 도로를 비추는 등을 말한다.
2. "보안등"이란 골목길을 비추는 등을 말한다.

제2장 사용료

제3조(사용료) ① 가로등 전주에 현수막을 달려는 자는 사용료를 낸다.
② 사용료는 하루 5,000원으로 한다.

부칙
이 조례는 2025년 1월 1일부터 시행한다.
"""


def _write(tmp: Path, name: str, data: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _check_offsets(result) -> None:  # type: ignore[no-untyped-def]
    texts = {d.doc: d.text for d in result.documents}
    for p in result.passages:
        assert texts[p.doc][p.start:p.end] == p.text
        assert p.text.strip() == p.text and p.text


def test_markdown_sections_keep_the_heading_path(tmp_path: Path) -> None:
    _write(tmp_path, "guide.md", "# 주민센터 안내\n\n소개 문단입니다.\n\n## 운영 시간\n\n"
           "평일 **오전 9시**부터 [오후 6시](http://x)까지 엽니다.\n\n"
           "### 야간\n\n목요일은 밤 8시까지.\n\n"
           "| 요일 | 시간 |\n|---|---|\n| 월 | 9-18 |\n")
    result = load_documents(tmp_path)
    assert result.errors == [] and result.skipped == []
    sections = [p.section for p in result.passages]
    assert sections == ["주민센터 안내", "주민센터 안내 > 운영 시간",
                        "주민센터 안내 > 운영 시간 > 야간"]
    hours = result.passages[1]
    assert hours.text.startswith("평일 오전 9시부터 오후 6시까지 엽니다.")  # markup removed
    assert "월 | 9-18" in result.passages[2].text
    assert result.documents[0].title == "주민센터 안내"
    assert {p.lang for p in result.passages} == {"ko"}
    _check_offsets(result)


def test_html_headings_make_sections_and_scripts_are_dropped(tmp_path: Path) -> None:
    _write(tmp_path, "a/passport.html", """<html><head><title>Passports | City</title>
<style>p{color:red}</style><script>var secret = "tracking";</script></head><body>
<nav><a href="/">Home</a> Login</nav>
<h1>Passports</h1><p>Apply at City Hall &amp; pay the fee.</p>
<h2>Fees</h2><table><tr><th>Kind</th><th>Fee</th></tr>
<tr><td>10 years</td><td>53,000 won</td></tr></table>
<h3>Refunds</h3><ul><li>No refund after filing.</li>
<li>Lost passports<br>cannot be reused.</li></ul>
</body></html>""")
    result = load_documents(tmp_path)
    doc = result.documents[0]
    assert doc.doc == "a/passport.html" and doc.title == "Passports"
    assert "tracking" not in doc.text and "color" not in doc.text and "Login" not in doc.text
    by_section = {p.section: p.text for p in result.passages}
    assert by_section["Passports"] == "Apply at City Hall & pay the fee."
    assert "10 years | 53,000 won" in by_section["Passports > Fees"]
    assert by_section["Passports > Fees > Refunds"].startswith("- No refund after filing.")
    assert {p.lang for p in result.passages} == {"en"}
    _check_offsets(result)


def test_korean_ordinance_articles_become_sections(tmp_path: Path) -> None:
    _write(tmp_path, "ordinance.txt", ORDINANCE)
    result = load_documents(tmp_path)
    sections = [p.section for p in result.passages]
    title = "예시시 가로등 관리 조례"
    assert f"{title} > 제1장 총칙 > 제1조(목적)" in sections
    assert f"{title} > 제2장 사용료 > 제3조(사용료)" in sections
    assert f"{title} > 부칙" in sections
    fee = next(p for p in result.passages if p.section.endswith("제3조(사용료)"))
    assert "하루 5,000원" in fee.text and fee.text.startswith("제3조(사용료)")
    definitions = next(p for p in result.passages if p.section.endswith("제2조(정의)"))
    assert "\n1. " in definitions.text and "\n2. " in definitions.text  # items stay lines
    _check_offsets(result)


def test_plain_text_titles_and_wrapped_lines(tmp_path: Path) -> None:
    _write(tmp_path, "notice.txt", "Water Rates\n\nThe rate is 580 won per cubic metre for\n"
           "the first 20 cubic metres.\n\nPaying late\n\nA 3% surcharge applies after the\n"
           "due date.\n")
    result = load_documents(tmp_path)
    by_section = {p.section: p.text for p in result.passages}
    assert by_section["Water Rates"] == ("The rate is 580 won per cubic metre for the first 20 "
                                         "cubic metres.")
    assert by_section["Water Rates > Paying late"].startswith("A 3% surcharge applies after the")


def test_sample_pdf_pages_and_numbered_headings() -> None:
    path = sample_docs() / "waste" / "collection-calendar.pdf"
    doc = load_file(path, "collection-calendar.pdf")
    passages = passages_of(doc)
    sections = [p.section for p in passages]
    assert doc.title == "Yesi City Waste Collection Calendar"
    assert "p. 1 > Yesi City Waste Collection Calendar > 4. Designated bags and prices" in sections
    assert "p. 2 > 생활폐기물 배출 요일 안내 > 2. 음식물 쓰레기" in sections
    bags = next(p for p in passages if p.section.endswith("4. Designated bags and prices"))
    # hard-wrapped PDF lines are joined back into sentences
    assert "490 won for 20 litres and 1,230 won for 50 litres." in bags.text
    assert {p.lang for p in passages} == {"en", "ko"}


def test_long_sections_are_cut_on_sentences_with_overlap(tmp_path: Path) -> None:
    sentences = [f"{i}번째 문장은 대형폐기물 배출 방법과 수수료 설명을 길게 이어 갑니다."
                 for i in range(40)]
    _write(tmp_path, "long.md", "# 긴 안내\n\n" + " ".join(sentences) + "\n")
    result = load_documents(tmp_path)
    ps = result.passages
    assert len(ps) >= 3
    for p in ps[:-1]:
        assert MIN_CHARS <= len(p.text) <= MAX_CHARS
        assert p.text.endswith("갑니다.")  # never cut inside a sentence
    for a, b in zip(ps, ps[1:], strict=False):
        assert b.start < a.end  # consecutive passages share a sentence
    assert ps[0].start == min(p.start for p in ps) and ps[-1].end == max(p.end for p in ps)
    _check_offsets(result)


def test_sentence_spans_keep_dates_and_abbreviations() -> None:
    text = "[시행 2024. 1. 1.] 공원은 24시간 엽니다. Put bags out after 7 p.m. on Sunday. Done!"
    parts = [text[a:b] for a, b in sentence_spans(text)]
    assert parts == ["[시행 2024. 1. 1.] 공원은 24시간 엽니다.",
                     "Put bags out after 7 p.m. on Sunday.", "Done!"]


def test_bad_files_are_reported_and_the_rest_loads(tmp_path: Path) -> None:
    _write(tmp_path, "good.md", "# 안내\n\n좋은 문서입니다.\n")
    _write(tmp_path, "broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage without xref")
    _write(tmp_path, "junk.txt", bytes(range(256)) * 20)
    _write(tmp_path, "latin1.txt", "caf\xe9 cr\xe8me \xff\xfe".encode("latin-1"))
    _write(tmp_path, "empty.html", "<html><body><script>x()</script></body></html>")
    _write(tmp_path, "photo.jpg", b"\xff\xd8\xff\xe0 not a document")
    _write(tmp_path, ".hidden/secret.md", "# 숨김\n\n보이면 안 됩니다.\n")
    _write(tmp_path, "big.txt", "가" * 3000)
    result = load_documents(tmp_path, max_bytes=8000)
    assert [d.doc for d in result.documents] == ["good.md"]
    errors = {p.doc: p.reason for p in result.errors}
    assert set(errors) == {"broken.pdf", "junk.txt", "latin1.txt", "empty.html"}
    assert "PDF" in errors["broken.pdf"]
    assert "binary" in errors["junk.txt"]
    assert "UTF-8" in errors["latin1.txt"]
    assert "no text" in errors["empty.html"]
    skipped = {p.doc: p.reason for p in result.skipped}
    assert set(skipped) == {"photo.jpg", "big.txt"}
    assert "unsupported" in skipped["photo.jpg"] and "too large" in skipped["big.txt"]
    assert result.report()["errors"][0]["doc"] in errors


def test_load_file_error_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.pdf", b"not a pdf at all")
    with pytest.raises(DocumentError) as err:
        load_file(path, "docs/x.pdf")
    assert str(err.value).startswith("docs/x.pdf: ") and err.value.doc == "docs/x.pdf"


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    result = load_documents(tmp_path)
    assert result.documents == [] and result.passages == [] and result.errors == []
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_documents(tmp_path / "nowhere")


def test_single_files_are_named_relative_to_their_common_folder(tmp_path: Path) -> None:
    a = _write(tmp_path, "x/a.md", "# A\n\n첫 문서.\n")
    b = _write(tmp_path, "x/y/b.txt", "둘째 문서입니다.\n")
    result = load_documents([a, b])
    assert sorted(d.doc for d in result.documents) == ["a.md", "y/b.txt"]
    one = load_documents(b)
    assert [d.doc for d in one.documents] == ["b.txt"]


def test_cp949_text_is_read(tmp_path: Path) -> None:
    _write(tmp_path, "old.txt", "옛 인코딩 안내\n\n수도 요금은 두 달마다 냅니다.\n".encode("cp949"))
    result = load_documents(tmp_path)
    assert result.errors == []
    assert result.passages[0].text == "수도 요금은 두 달마다 냅니다."


def test_the_sample_documents_load_cleanly() -> None:
    result = load_documents(sample_docs())
    assert result.errors == [] and result.skipped == []
    kinds = {d.kind for d in result.documents}
    assert kinds == {"markdown", "html", "text", "pdf"} and len(result.documents) >= 8
    assert sum(f.stat().st_size for f in sample_docs().rglob("*") if f.is_file()) < 200_000
    _check_offsets(result)


def test_the_sample_pdf_is_rebuilt_byte_for_byte_by_its_script() -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[3] / "tools" / "civic_sample_pdf.py"
    spec = importlib.util.spec_from_file_location("civic_sample_pdf", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = (sample_docs() / "waste" / "collection-calendar.pdf").read_bytes()
    assert module.build() == shipped
