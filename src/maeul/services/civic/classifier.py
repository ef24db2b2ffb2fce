"""Route a complaint (Korean or English free text) to a category and its department.

Two kinds of evidence are combined per category, each cheap on a CPU.

From the taxonomy (fixed once the classifier is built):

1. a softmax regression on sentence embeddings (multilingual-e5-small), trained on the
   taxonomy's examples and descriptions;
2. BM25 over Kiwi content tokens, where a category's document is its examples, keywords
   (counted ``KEYWORD_WEIGHT`` times), name and description;
3. nearest neighbours: the mean cosine similarity of the ``K`` closest examples.

Their conditional-logit weights ``WEIGHTS`` were fitted on the development set
(``data/eval/complaints_dev.jsonl``), so the confidence is calibrated there.

From routed cases (``cases.CaseMemory``): similarity-weighted votes of the closest cases, on
embeddings and on tokens, whose two weights are refitted by leave-one-out on the cases
themselves. Cases are kept apart from the taxonomy evidence on purpose: folded into the
regression and BM25 (as before) a few hundred varied cases blurred the curated categories and
lowered accuracy on new complaints. ``learn`` appends a case in O(1); the vote weights are
refitted lazily, at most once per ~10% growth and on a bounded sample.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from . import text as nlp
from .cases import FIT_SAMPLE, PRIOR, CaseMemory, fit_lambdas
from .taxonomy import Category, Department, Taxonomy

Array = npt.NDArray[np.float64]

MAX_CHARS = 10_000
DEFAULT_THRESHOLD = 0.6
KEYWORD_WEIGHT = 3
K = 3
# Conditional-logit weights for (regression log-probability, log(1 + BM25), kNN similarity),
# fitted by ``fit_weights`` on complaints_dev.jsonl (see routing_eval for the command).
WEIGHTS: tuple[float, float, float] = (1.29, 3.52, 0.73)
# Softmax regression: embeddings are unit vectors, so logits are scaled to a usable range.
_LR_SCALE = 10.0
_LR_L2 = 1e-2
_LR_STEP = 0.5
_LR_ITERS = 300
_BM25_K1 = 1.2
_BM25_B = 0.75

# Contact details a citizen adds carry no routing signal and would only add number tokens.
_PHONE = re.compile(r"\+?\d{2,4}[-.\s]?\d{3,4}[-.\s]?\d{4}")
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_URL = re.compile(r"https?://\S+")
_SPACES = re.compile(r"\s+")


def clean(text: str) -> str:
    """Check and normalise a complaint: ``ValueError`` when empty or too long."""
    if not isinstance(text, str):
        raise ValueError(f"complaint text must be a string, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ValueError(f"complaint text is too long: {len(text)} characters "
                         f"(at most {MAX_CHARS})")
    if not text.strip():
        raise ValueError("complaint text is empty")
    out = _SPACES.sub(" ", _URL.sub(" ", _EMAIL.sub(" ", _PHONE.sub(" ", text)))).strip()
    # a text that was only a phone number still gets routed (to whatever fits least badly)
    return out or text.strip()


@dataclass(frozen=True)
class Routing:
    """Where one complaint goes; ``needs_confirmation`` when ``confidence`` < threshold.

    ``alternatives`` are the next three categories, best first, plus the taxonomy's fallback
    (e.g. ``other``) when confirmation is needed, so the citizen can always pick it.
    """

    category: str
    department: str
    confidence: float
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    needs_confirmation: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "department": self.department,
            "confidence": round(self.confidence, 4),
            "alternatives": [dict(a, confidence=round(float(a["confidence"]), 4))
                             for a in self.alternatives],
            "needs_confirmation": self.needs_confirmation,
        }


class _Embeddings:
    """Query embeddings with a process-wide memo, so tests and re-builds embed a text once."""

    _memo: dict[str, npt.NDArray[np.float32]] = {}
    _lock = threading.Lock()
    _LIMIT = 50_000

    @classmethod
    def of(cls, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in cls._memo]
        if missing:
            vecs = nlp.embedder().query(missing)
            with cls._lock:
                if len(cls._memo) + len(missing) > cls._LIMIT:
                    cls._memo.clear()
                cls._memo.update(zip(missing, vecs, strict=True))
        dim = nlp.Embedder.dim
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([cls._memo[t] for t in texts])


def _softmax(z: Array) -> Array:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: Array = e / e.sum(axis=-1, keepdims=True)
    return out


def _fit_softmax(x: Array, y: npt.NDArray[np.int64], n_classes: int,
                 start: tuple[Array, Array] | None, iters: int) -> tuple[Array, Array]:
    """Multinomial logistic regression by gradient descent (L2-penalised, scaled inputs)."""
    if start is None:
        w = np.zeros((x.shape[1], n_classes))
        b = np.zeros(n_classes)
    else:
        w, b = start[0].copy(), start[1].copy()
    onehot = np.eye(n_classes)[y]
    n = max(len(y), 1)
    xs = _LR_SCALE * x
    for _ in range(iters):
        g = (_softmax(xs @ w + b) - onehot) / n
        w -= _LR_STEP * (xs.T @ g + _LR_L2 * w)
        b -= _LR_STEP * g.sum(axis=0)
    return w, b


def fit_weights(features: Array, labels: Sequence[int], l2: float = 1e-3) -> Array:
    """Maximum-likelihood conditional-logit weights by Newton's method.

    ``features`` has shape (n, classes, k); ``labels`` the true class of each row.
    """
    y = np.asarray(labels, dtype=np.int64)
    n, c, k = features.shape
    if n == 0:
        raise ValueError("fit_weights needs at least one labelled case")
    w = np.zeros(k)
    onehot = np.eye(c)[y]
    for _ in range(100):
        p = _softmax(features @ w)
        mean_f = np.einsum("nck,nc->nk", features, p)
        grad = (mean_f - np.einsum("nck,nc->nk", features, onehot)).mean(axis=0) + l2 * w
        centred = features - mean_f[:, None, :]
        hess = np.einsum("nc,nck,ncl->kl", p, centred, centred) / n + l2 * np.eye(k)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


class Classifier:
    """Routes complaints for one taxonomy; learns from cases people routed."""

    def __init__(self, taxonomy: Taxonomy, cases: Iterable[tuple[str, str]] = (), *,
                 threshold: float | None = None,
                 weights: Sequence[float] | None = None) -> None:
        self.taxonomy = taxonomy
        self._codes = taxonomy.codes
        self._index = {c: i for i, c in enumerate(self._codes)}
        self._dept = [taxonomy.category(c).department for c in self._codes]
        t = threshold if threshold is not None else taxonomy.confidence_threshold
        self._threshold = DEFAULT_THRESHOLD if t is None else float(t)
        if not 0.0 <= self._threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self._threshold}")
        self.weights = np.asarray(weights if weights is not None else WEIGHTS, dtype=np.float64)
        if self.weights.shape != (3,):
            raise ValueError("weights must be three numbers (regression, BM25, neighbours)")
        self._lock = threading.RLock()
        # the static part, from the taxonomy: never changes after construction
        seed_texts: list[str] = []
        seed_labels: list[int] = []
        self._docs: list[Counter[str]] = [Counter() for _ in self._codes]
        for i, cat in enumerate(taxonomy.categories):
            for lang in ("ko", "en"):
                for ex in cat.examples.get(lang, ()):
                    seed_texts.append(ex)
                    seed_labels.append(i)
                    self._docs[i].update(set(nlp.tokens(ex)))
                for kw in cat.keywords.get(lang, ()):
                    for tok in nlp.tokens(kw):
                        self._docs[i][tok] += KEYWORD_WEIGHT
                if lang in cat.description:
                    self._docs[i].update(set(nlp.tokens(cat.description[lang])))
                if lang in cat.name:
                    self._docs[i].update(nlp.tokens(cat.name[lang]))
        desc = [(i, f"{cat.name[lang]}: {cat.description[lang]}")
                for i, cat in enumerate(taxonomy.categories)
                for lang in ("ko", "en") if lang in cat.description and lang in cat.name]
        self._n_examples = len(seed_texts)
        # neighbours use examples and cases; the regression also reads the descriptions
        self._vecs = np.asarray(_Embeddings.of(seed_texts), dtype=np.float64)
        self._labels = np.asarray(seed_labels, dtype=np.int64)
        self._desc_vecs = np.asarray(_Embeddings.of([d for _, d in desc]), dtype=np.float64)
        self._desc_labels = np.asarray([i for i, _ in desc], dtype=np.int64)
        self._model: tuple[Array, Array] | None = None
        self._bm25: tuple[dict[str, int], Array] | None = None
        self._cases = CaseMemory(len(self._codes), nlp.Embedder.dim)
        self._case_base: list[Array] = []  # taxonomy log-scores of each case, for refits
        self._lambdas = PRIOR.copy()
        self._fitted_at = 0  # case count at the last refit of the vote weights
        self._add_cases(list(cases))

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def from_cases(cls, cases: Iterable[tuple[str, str]], *,
                   labels: Iterable[str] | None = None, threshold: float | None = None,
                   weights: Sequence[float] | None = None) -> Classifier:
        """A taxonomy-free classifier whose categories (and departments) are the labels.

        ``labels`` names every category up front, so some may have no case yet.
        """
        data = list(cases)
        counts = Counter(code for _, code in data)
        for label in labels or ():
            counts.setdefault(label, 0)
        if len(counts) < 2:
            raise ValueError("from_cases needs at least two different labels")
        cats = tuple(
            Category(code=code, name={"ko": code, "en": code}, description={},
                     examples={"ko": (), "en": ()}, department=code, sla=timedelta(days=3))
            for code in sorted(counts)
        )
        depts = {code: Department(code, {"ko": code, "en": code}) for code in counts}
        tax = Taxonomy(city={"ko": "", "en": ""}, departments=depts, categories=cats,
                       fallback=counts.most_common(1)[0][0])
        return cls(tax, data, threshold=threshold, weights=weights)

    def _add_cases(self, cases: list[tuple[str, str]]) -> None:
        if not cases:
            return
        texts, labels = [], []
        for text, code in cases:
            if code not in self._index:
                raise ValueError(f"unknown category code {code!r}; "
                                 f"known: {', '.join(self._codes)}")
            texts.append(clean(text))
            labels.append(self._index[code])
        vecs = np.asarray(_Embeddings.of(texts), dtype=np.float64)
        toks = [frozenset(nlp.tokens(t)) for t in texts]
        base = self._base_scores(vecs, toks)
        with self._lock:
            self._cases.add(vecs, labels, toks)
            self._case_base.extend(base)

    # -- public API -----------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        """Confidence below which the citizen is asked to confirm the category."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {value}")
        self._threshold = float(value)

    @property
    def codes(self) -> list[str]:
        return list(self._codes)

    @property
    def case_count(self) -> int:
        """How many routed cases the classifier has learned from."""
        return len(self._cases)

    @property
    def case_weights(self) -> tuple[float, float]:
        """Current weights of the case votes (embeddings, tokens); refits when due."""
        with self._lock:
            lam = self._case_lambdas()
        return float(lam[0]), float(lam[1])

    def learn(self, text: str, code: str) -> None:
        """Add one case routed by a person; it counts from the next classification on."""
        self._add_cases([(text, code)])

    def classify(self, text: str) -> Routing:
        """Route one complaint; ``ValueError`` for empty or over-long text."""
        return self.classify_many([text])[0]

    def classify_many(self, texts: Sequence[str]) -> list[Routing]:
        """Route several complaints with one batched embedding call."""
        probs = self.probabilities(texts)
        return [self._routing(row) for row in probs]

    def probabilities(self, texts: Sequence[str]) -> Array:
        """(n, categories) routing probabilities, columns in ``codes`` order."""
        if isinstance(texts, str):
            raise ValueError("classify_many takes a list of texts, not one string")
        cleaned = [clean(t) for t in texts]
        if not cleaned:
            return np.zeros((0, len(self._codes)))
        q = np.asarray(_Embeddings.of(cleaned), dtype=np.float64)
        toks = [frozenset(nlp.tokens(t)) for t in cleaned]
        base = np.asarray(self._base_scores(q, toks))
        with self._lock:
            if not len(self._cases):
                return _softmax(base)
            lam = self._case_lambdas()
            votes = self._cases.query_votes(q, toks)
        return _softmax(base + votes @ lam)

    def features(self, texts: Sequence[str]) -> Array:
        """(n, categories, 3) taxonomy evidence: regression log-probability, log(1+BM25), kNN."""
        if isinstance(texts, str):
            raise ValueError("classify_many takes a list of texts, not one string")
        cleaned = [clean(t) for t in texts]
        q = np.asarray(_Embeddings.of(cleaned), dtype=np.float64)
        return self._features(q, [frozenset(nlp.tokens(t)) for t in cleaned])

    # -- internals ------------------------------------------------------------------------

    def _routing(self, row: Array) -> Routing:
        order = np.argsort(-row)
        best = int(order[0])
        conf = float(row[best])
        picks = [int(j) for j in order[1:4]]
        fallback = self._index.get(self.taxonomy.fallback)
        # when the citizen must confirm, "none of these" (the fallback) is always offered
        if conf < self._threshold and fallback is not None and fallback not in picks \
                and fallback != best:
            picks.append(fallback)
        alts = [{"category": self._codes[j], "department": self._dept[j],
                 "confidence": float(row[j])} for j in picks]
        return Routing(category=self._codes[best], department=self._dept[best],
                       confidence=conf, alternatives=alts,
                       needs_confirmation=conf < self._threshold)

    def _features(self, q: Array, toks: Sequence[frozenset[str]]) -> Array:
        n = q.shape[0]
        if n == 0:
            return np.zeros((0, len(self._codes), 3))
        with self._lock:
            w, b = self._regression()
            vocab, term = self._bm25_matrix()
        logits = _LR_SCALE * q @ w + b
        lr = logits - logits.max(axis=1, keepdims=True)
        lr = lr - np.log(np.exp(lr).sum(axis=1, keepdims=True))
        bm = np.zeros((n, len(self._codes)))
        for r, t in enumerate(toks):
            ids = sorted({vocab[tok] for tok in t if tok in vocab})
            if ids:
                bm[r] = term[ids].sum(axis=0)
        return np.stack([lr, np.log1p(bm), self._neighbours(q, self._vecs, self._labels)],
                        axis=-1)

    def _base_scores(self, q: Array, toks: Sequence[frozenset[str]]) -> list[Array]:
        """Taxonomy log-scores (before the softmax), one row per text."""
        return list(self._features(q, toks) @ self.weights)

    def _case_lambdas(self) -> Array:
        """The vote weights, refitted by leave-one-out when the cases grew by ~10%."""
        n = len(self._cases)
        if n < 2:
            return self._lambdas
        if n != self._fitted_at and (n < 50 or n >= 1.1 * self._fitted_at):
            # the most recent cases, so the weights follow how complaints are written now
            sample = list(range(max(0, n - FIT_SAMPLE), n))
            votes = self._cases.loo_votes(sample)
            base = np.asarray([self._case_base[i] for i in sample])
            labels = [self._cases.labels[i] for i in sample]
            self._lambdas = fit_lambdas(base, votes, labels)
            self._fitted_at = n
        return self._lambdas

    def _neighbours(self, q: Array, vecs: Array, labels: npt.NDArray[np.int64]) -> Array:
        sims = q @ vecs.T
        out = np.zeros((q.shape[0], len(self._codes)))
        for i in range(len(self._codes)):
            cols = sims[:, labels == i]
            if cols.shape[1] == 0:
                continue
            k = min(K, cols.shape[1])
            out[:, i] = np.sort(cols, axis=1)[:, -k:].mean(axis=1)
        return out

    def _regression(self) -> tuple[Array, Array]:
        if self._model is None:
            x = np.vstack([self._vecs, self._desc_vecs])
            y = np.concatenate([self._labels, self._desc_labels])
            self._model = _fit_softmax(x, y, len(self._codes), None, _LR_ITERS)
        return self._model

    def _bm25_matrix(self) -> tuple[dict[str, int], Array]:
        """A (vocabulary, categories) matrix of BM25 term scores, so a query is a row sum."""
        if self._bm25 is None:
            df: Counter[str] = Counter()
            for d in self._docs:
                df.update(d.keys())
            vocab = {tok: i for i, tok in enumerate(sorted(df))}
            lengths = np.array([max(sum(d.values()), 1) for d in self._docs], dtype=float)
            avg = float(lengths.mean())
            n_docs = len(self._docs)
            term = np.zeros((len(vocab), n_docs))
            for c, d in enumerate(self._docs):
                norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * lengths[c] / avg)
                for tok, f in d.items():
                    idf = math.log(1 + (n_docs - df[tok] + 0.5) / (df[tok] + 0.5))
                    term[vocab[tok], c] = idf * f * (_BM25_K1 + 1) / (f + norm)
            self._bm25 = (vocab, term)
        return self._bm25
