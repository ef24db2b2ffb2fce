"""Hybrid search over passages, and the on-disk cache that spares re-embedding."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from maeul.services.civic.docindex import DocIndex, corpus_key
from maeul.services.civic.documents import load_documents

DOCS = {
    "waste.md": "# 대형폐기물 배출\n\n"
                "장롱이나 침대 같은 대형폐기물은 주민센터에 신고하고 수수료를 내야 합니다.\n\n"
                "## 수수료\n\n장롱은 폭 1m당 6,000원, 침대는 10,000원입니다.\n",
    "library.md": "# 도서관 이용\n\n"
                  "도서관은 매주 월요일에 쉽니다. 한 번에 책 7권까지 14일 동안 빌릴 수 있습니다.\n",
    "parking.html": "<h1>Public parking</h1><p>The first 30 minutes cost 1,000 won at the "
                    "station car park.</p><h2>Discounts</h2><p>Compact cars pay half.</p>",
}


def _folder(tmp: Path, docs: dict[str, str]) -> Path:
    folder = tmp / "docs"
    folder.mkdir(exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> DocIndex:
    folder = _folder(tmp_path_factory.mktemp("idx"), DOCS)
    return DocIndex.build(load_documents(folder).passages)


def test_search_ranks_the_matching_passage_first(index: DocIndex) -> None:
    hits = index.search("침대를 버리면 수수료가 얼마예요?", k=3)
    assert hits[0].passage.section == "대형폐기물 배출 > 수수료"
    assert [h.rank for h in hits] == [0, 1, 2]
    assert hits[0].fused >= hits[1].fused >= hits[2].fused
    assert hits[0].bm25 > 0 and hits[0].bm25_rank is not None
    assert -1.0 <= hits[0].similarity <= 1.0
    english = index.search("How much is parking for half an hour?", k=1)[0]
    assert english.passage.doc == "parking.html"


def test_a_question_sharing_no_word_has_no_bm25_rank(index: DocIndex) -> None:
    hits = index.search("zzzz qqqq", k=len(index.passages))
    assert all(h.bm25 == 0 and h.bm25_rank is None for h in hits)
    assert sorted(h.dense_rank for h in hits) == list(range(len(index.passages)))


def test_mix_fusion_and_bad_fusion(index: DocIndex) -> None:
    hits = index.search("도서관 휴관일", k=2, fusion="mix")
    assert hits[0].passage.doc == "library.md"
    with pytest.raises(ValueError, match="fusion"):
        index.search("도서관", fusion="nope")


def test_an_empty_index_finds_nothing() -> None:
    empty = DocIndex.build([])
    assert empty.search("아무거나") == []
    assert empty.stats["passages"] == 0


def test_cache_spares_re_embedding(tmp_path: Path) -> None:
    folder = _folder(tmp_path, DOCS)
    cache = tmp_path / "cache"
    first = DocIndex.load_or_build(folder, cache)
    n = len(first.passages)
    assert first.stats["embedded"] == n and not first.stats["cache_hit"]
    assert len(list(cache.glob("docindex-*.npz"))) == 1
    second = DocIndex.load_or_build(folder, cache)
    assert second.stats["embedded"] == 0 and second.stats["cache_hit"]
    assert np.allclose(first.vectors, second.vectors)
    assert second.token_lists == first.token_lists
    assert [h.passage for h in second.search("도서관 대출", k=2)] == \
        [h.passage for h in first.search("도서관 대출", k=2)]
    # one changed document: only its passages are embedded again
    (folder / "library.md").write_text("# 도서관 이용\n\n도서관은 매주 화요일에 쉽니다.\n",
                                       encoding="utf-8")
    third = DocIndex.load_or_build(folder, cache)
    changed = [p for p in third.passages if p.doc == "library.md"]
    assert third.stats["embedded"] == len(changed) and not third.stats["cache_hit"]
    assert third.stats["reused"] == len(third.passages) - len(changed)
    assert third.load is not None and third.load.report()["documents"] == 3


def test_a_damaged_cache_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _folder(tmp_path, {"a.md": DOCS["library.md"]})
    cache = tmp_path / "cache"
    built = DocIndex.load_or_build(folder, cache)
    key = corpus_key(built.passages)
    (cache / f"docindex-{key}.npz").write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING):
        again = DocIndex.load_or_build(folder, cache)
    assert again.stats["embedded"] == len(again.passages)
    assert "unreadable" in caplog.text
    assert DocIndex.load_or_build(folder, cache).stats["cache_hit"]


def test_load_or_build_without_a_cache_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"a.md": DOCS["waste.md"]})
    index = DocIndex.load_or_build(folder, None)
    assert index.stats["embedded"] == len(index.passages) > 0
    assert not any(tmp_path.glob("**/docindex-*.npz"))
