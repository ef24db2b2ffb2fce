"""Routed cases as evidence whose weight is learned from the cases themselves.

A case counts for a new complaint only through its similarity: ``exp((s - 1) / tau)`` summed
over the ``CASE_K`` most similar cases of each category, once on embeddings and once on
TF-IDF over Kiwi tokens, so a near-duplicate of a routed case weighs about 1 and a loosely
related one nearly 0. How much these two votes count (``lambdas``) is refitted, lazily and
with bounded cost, by leave-one-out on the cases: each sampled case is routed from the
taxonomy evidence plus the votes of the *other* cases, and the two weights that best predict
its routed category are kept (never below 0). When cases do not predict each other, the
weights fall to 0 and learning cannot hurt; when they recur, the weights grow.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

CASE_K = 5
TAU_EMB = 0.03  # e5 similarities of unrelated complaints still sit around 0.8
TAU_LEX = 0.15
# prior on the vote weights (so a first case already counts) and its strength
PRIOR = np.array([1.0, 1.0])
PRIOR_L2 = 0.01
MAX_WEIGHT = 20.0
FIT_SAMPLE = 300  # leave-one-out cost is bounded by this many cases


class CaseMemory:
    """Embeddings, tokens and categories of routed cases, appended in amortised O(1)."""

    def __init__(self, n_classes: int, dim: int) -> None:
        self.n_classes = n_classes
        self._vecs = np.zeros((64, dim))
        self.labels: list[int] = []
        self.tokens: list[frozenset[str]] = []
        self._df: Counter[str] = Counter()
        self._index: dict[str, list[int]] | None = None
        self._norms: Array | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def vecs(self) -> Array:
        return self._vecs[: len(self.labels)]

    def add(self, vecs: Array, labels: Sequence[int], toks: Sequence[frozenset[str]]) -> None:
        n = len(self.labels)
        need = n + len(labels)
        if need > self._vecs.shape[0]:
            grown = np.zeros((max(need, 2 * self._vecs.shape[0]), self._vecs.shape[1]))
            grown[:n] = self._vecs[:n]
            self._vecs = grown
        self._vecs[n:need] = vecs
        self.labels.extend(labels)
        self.tokens.extend(toks)
        for t in toks:
            self._df.update(t)
        self._index = None  # the inverted index and norms follow on the next query

    def _idf(self, tok: str) -> float:
        return math.log(1.0 + len(self.labels) / self._df[tok])

    def _lexical_index(self) -> tuple[dict[str, list[int]], Array]:
        if self._index is None or self._norms is None:
            index: dict[str, list[int]] = {}
            norms = np.zeros(len(self.labels))
            for i, toks in enumerate(self.tokens):
                for t in toks:
                    index.setdefault(t, []).append(i)
                    norms[i] += self._idf(t) ** 2
            self._index, self._norms = index, np.sqrt(np.maximum(norms, 1e-12))
        return self._index, self._norms

    def lexical_sims(self, queries: Sequence[frozenset[str]]) -> Array:
        """(queries, cases) cosine similarity of idf-weighted token sets."""
        index, norms = self._lexical_index()
        out = np.zeros((len(queries), len(self.labels)))
        for r, toks in enumerate(queries):
            qn = 0.0
            for t in toks:
                ids = index.get(t)
                if ids is None:
                    continue
                w = self._idf(t) ** 2
                out[r, ids] += w
                qn += w
            if qn > 0:
                out[r] /= math.sqrt(qn) * norms
        return out

    def votes(self, emb_sims: Array, lex_sims: Array) -> Array:
        """(n, classes, 2) similarity-weighted votes of the closest cases per category."""
        out = np.zeros((emb_sims.shape[0], self.n_classes, 2))
        if not self.labels:
            return out
        labels = np.asarray(self.labels)
        for j, (sims, tau) in enumerate(((emb_sims, TAU_EMB), (lex_sims, TAU_LEX))):
            w = np.exp((np.minimum(sims, 1.0) - 1.0) / tau)
            for c in range(self.n_classes):
                cols = w[:, labels == c]
                if cols.shape[1] == 0:
                    continue
                k = min(CASE_K, cols.shape[1])
                out[:, c, j] = -np.sort(-cols, axis=1)[:, :k].sum(axis=1)
        return out

    def query_votes(self, q: Array, toks: Sequence[frozenset[str]]) -> Array:
        if not self.labels:
            return np.zeros((q.shape[0], self.n_classes, 2))
        return self.votes(q @ self.vecs.T, self.lexical_sims(toks))

    def loo_votes(self, sample: Sequence[int]) -> Array:
        """Votes for the sampled cases from every other case (leave-one-out)."""
        ids = np.asarray(sample)
        emb = self.vecs[ids] @ self.vecs.T
        lex = self.lexical_sims([self.tokens[i] for i in sample])
        rows = np.arange(len(ids))
        emb[rows, ids] = -np.inf
        lex[rows, ids] = -np.inf
        return self.votes(emb, lex)


def fit_lambdas(base: Array, votes: Array, labels: Sequence[int]) -> Array:
    """Non-negative vote weights maximising ``p(y) ∝ exp(base_y + λ · votes_y)``.

    Newton's method with a Gaussian prior around ``PRIOR``; a weight that would go negative
    is held at 0 and the other refitted.
    """
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if n == 0:
        return PRIOR.copy()
    free = [0, 1]
    lam = PRIOR.copy()
    for _ in range(3):
        lam = _newton(base, votes, y, lam, free)
        neg = [j for j in free if lam[j] < 0]
        if not neg:
            break
        for j in neg:
            lam[j] = 0.0
            free.remove(j)
        if not free:
            break
    out: Array = np.clip(lam, 0.0, MAX_WEIGHT)
    return out


def _newton(base: Array, votes: Array, y: npt.NDArray[np.int64], lam: Array,
            free: list[int]) -> Array:
    lam = lam.copy()
    n = len(y)
    f = votes[:, :, free]
    onehot = np.eye(base.shape[1])[y]
    for _ in range(50):
        z = base + votes @ lam
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        mean_f = np.einsum("nck,nc->nk", f, p)
        grad = (mean_f - np.einsum("nck,nc->nk", f, onehot)).sum(axis=0) / n \
            + PRIOR_L2 * (lam[free] - PRIOR[free])
        centred = f - mean_f[:, None, :]
        hess = np.einsum("nc,nck,ncl->kl", p, centred, centred) / n \
            + PRIOR_L2 * np.eye(len(free))
        step = np.linalg.solve(hess, grad)
        lam[free] = np.clip(lam[free] - step, -MAX_WEIGHT, MAX_WEIGHT)
        if float(np.abs(step).max()) < 1e-6:
            break
    return lam
