"""The civic desk's grounded answers: quoted from the city's documents, cited, or refused.

``Desk(index).ask(question)`` finds the passages that match the question (``DocIndex``), asks
whether one of them really covers it (the *gate*), and answers by quoting the sentences of
that passage that match the question best, with the document, section and character offsets
of the quote. When no passage passes the gate the desk refuses (``reason: "not-covered"``)
and offers to file a request instead. There is never an answer without a citation.

The gate is deliberately conservative, because a wrong answer from a city is worse than none:

- the question must not name something the documents never mention (a proper noun that
  appears in no passage: another city, a company, a disease);
- one of the ``Gate.candidates`` best passages must be close to the question in embedding
  space *and* hold enough of the question's content words (``coverage``: Kiwi nouns count
  fully, numbers 0.7, verbs a quarter, adverbs 0.1, each weighted by rarity in the
  documents). Three (similarity, coverage) corners pass: (0.875, 0.55), (0.91, 0.40) and
  (0.85, 0.85); a fourth takes the best passage when it stands out from the whole collection
  (z-score of its similarity among all passages ≥ 3.0) and holds a quarter of the words;
- a question asking *who* is answered only from a passage that names someone (a proper noun
  the question lacks): 예시시장 in an ordinance is the mayor's office, not the mayor's name;
- capitalised English words inside a sentence are names, checked like Korean proper nouns.

Coverage is literal on purpose: a near-miss question (the fee of a service the documents do
not describe) shares the topic and scores high on embeddings, but its key word is missing.
Numbers keep their unit (100리터 is not the 100 of 100만 원), prefixes stay with their noun
(재발급 is not 발급), and a glossary (``data/glossary.json``, extendable by the city) maps
everyday words to the documents' words (동사무소 → 주민센터, 공짜 → 무료, passport → 여권).

The thresholds were calibrated (``qa_eval.calibrate``) for zero out-of-scope answers on
``data/eval/questions.jsonl`` and the odd-numbered half of ``questions_blind.jsonl`` (written
by someone who never saw the desk); the even half is held out. Residents' wording
(verbs, adverbs, everyday nouns) weighs little in coverage because it rarely names the
thing asked about, while the near-misses' missing word is a noun.

With a generator (``generator.py``) the desk lets it phrase the answer from the numbered
passages; an answer that fails the citation check falls back to the extractive one
(``fallback: "citation-check-failed"``), and a generator that fails falls back likewise
(``"generator-error"``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .docindex import DocIndex, Hit
from .documents import Passage, sentence_spans
from .text import kiwi, language, tokens

MAX_QUESTION = 2000
NOT_COVERED_MESSAGE = (
    "예시 문서에서 이 질문에 대한 답을 찾지 못했습니다. 민원 창구에 요청을 접수하시면 담당 부서가 "
    "답변해 드립니다. / The city's documents do not cover this question. You can file a "
    "request at the desk and the responsible department will answer."
)
# words that ask rather than tell: they never appear in the passage that answers
_QUESTION_WORDS = frozenset(
    "얼마 얼마나 몇 언제 어디 어떻 무엇 뭐 무슨 어느 며칠 누구 왜 어떡 가능 알리 주 좀 하 되 있 없 "
    "보 가 오 이 수 것 거 게 때 등 분 시 점 경우 방법 관련 문의 궁금 "
    "how what which where when who whom why much many can could do does should there "
    "tell know want need".split())
# verbs and adverbs weigh little: residents phrase the situation with them (떼다, 챙기다, 많이),
# while the thing asked about (요가, 도시가스) is a noun
_WEIGHTS = {"NNG": 1.0, "NNP": 1.0, "SL": 1.0, "SN": 0.7, "XR": 1.0, "NR": 0.7, "SH": 1.0,
            "VV": 0.25, "VA": 0.25, "MAG": 0.1}
# questions asking for a person: answered only from a passage that names one
_WHO = re.compile(r"누구|누가|\bwhom?\b")
# a capitalised English word inside a sentence is a name (Seoul, Global Center)
_EN_NAME = re.compile(r"(?<=[a-z,;:'\)] )[A-Z][a-zA-Z]+")
_SHORT_PASSAGE = 360


@dataclass(frozen=True)
class Gate:
    """When a passage covers a question (see the module docstring)."""

    min_similarity: float = 0.875
    min_coverage: float = 0.55
    sure_similarity: float = 0.91
    sure_coverage: float = 0.40
    loose_similarity: float = 0.85
    loose_coverage: float = 0.85
    candidates: int = 3
    # the best passage stands out from the whole collection (z-score of its similarity
    # among all passages) and holds some of the question's words
    distinct_z: float = 3.0
    distinct_coverage: float = 0.25


@dataclass(frozen=True)
class Term:
    """A content word of the question with its weight (nouns count most)."""

    form: str
    weight: float
    proper: bool = False
    surface: str = ""  # a noun as written (재발급), also looked for in the passage's text


@dataclass
class Features:
    """What the gate sees for one question."""

    terms: list[Term]
    unknown: list[str]
    hits: list[Hit]
    covs: list[float]
    qv: Any
    z: list[float] = field(default_factory=list)
    who: bool = False


@dataclass
class Answer:
    """What the desk says; ``to_json()`` is the wire form."""

    answer: str | None
    refused: bool
    citations: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    message: str | None = None
    generated: bool = False
    label: str | None = None
    confidence: float = 0.0
    lang: str = "ko"
    fallback: str | None = None
    signals: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "answer": self.answer, "refused": self.refused, "citations": self.citations,
            "generated": self.generated, "label": self.label,
            "confidence": round(self.confidence, 3), "lang": self.lang,
            "signals": self.signals,
        }
        if self.refused:
            out["reason"] = self.reason
            out["message"] = self.message
            out["offer"] = {"action": "file-request",
                            "ko": "민원(요청) 접수하기", "en": "File a request"}
        if self.fallback:
            out["fallback"] = self.fallback
        return out


def check_question(question: Any) -> str:
    """The question stripped, or ``ValueError`` saying what is wrong with it."""
    if not isinstance(question, str):
        raise ValueError(f"question: a string is needed, not {type(question).__name__}")
    q = question.strip()
    if not q:
        raise ValueError("question: empty; ask something about the city's services")
    if len(q) > MAX_QUESTION:
        raise ValueError(f"question: {len(q)} characters; at most {MAX_QUESTION}")
    return q


def question_terms(question: str) -> list[Term]:
    """Content words of ``question`` that a covering passage should hold."""
    if language(question) == "en":
        return [Term(w, 1.0) for w in tokens(question) if w not in _QUESTION_WORDS]
    tokens(question)  # warms Kiwi's caches under text.py's lock before the tagged call
    toks = kiwi().tokenize(question)
    out: list[Term] = []
    for i, t in enumerate(toks):
        tag = t.tag.split("-")[0]
        weight = _WEIGHTS.get(tag)
        if weight is None:
            continue
        form = t.form.lower()
        if form in _QUESTION_WORDS:
            continue
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if tag == "SL":
            out.extend(Term(w, 1.0) for w in tokens(form) if w not in _QUESTION_WORDS)
        elif tag in ("SN", "NR"):
            # a number means something with its unit: 100리터 is not the 100 of 100만 원
            unit = nxt.form if nxt is not None and nxt.start == t.start + t.len \
                and nxt.tag in ("NNB", "NNG") else ""
            out.append(Term(form + unit, weight, surface=form + unit))
        else:
            noun = tag in ("NNG", "NNP")
            # 재발급 is not 발급: a prefix stays with its noun
            if noun and prev is not None and prev.tag == "XPN" \
                    and prev.start + prev.len == t.start:
                form = prev.form + form
            out.append(Term(form, weight, proper=tag == "NNP", surface=form if noun else ""))
    return out


class Glossary:
    """Everyday words and the words the documents use instead (``data/glossary.json``).

    The file has ``ko`` and ``en`` objects mapping a word to a list of phrases; a question
    word counts as found in a passage that holds every token of one of its phrases. Korean
    keys are Kiwi stems (``깎`` for 깎다); English keys are stemmed like ``text.tokens``.
    """

    def __init__(self, entries: dict[str, list[list[str]]] | None = None) -> None:
        self.entries = entries or {}

    @classmethod
    def load(cls, path: Path | None = None) -> Glossary:
        """Read a glossary file (None: the one shipped); ``ValueError`` names a bad entry."""
        path = path or Path(__file__).with_name("data") / "glossary.json"
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"glossary {path}: {exc}") from None
        entries: dict[str, list[list[str]]] = {}
        for lang in ("ko", "en"):
            section = doc.get(lang, {}) if isinstance(doc, dict) else None
            if not isinstance(section, dict):
                raise ValueError(f"glossary {path}: '{lang}' must be an object")
            for key, phrases in section.items():
                if not isinstance(phrases, list) or not all(isinstance(x, str) for x in phrases):
                    raise ValueError(f"glossary {path}: {lang}.{key}: a list of strings is needed")
                forms = tokens(key) if lang == "en" else [key.strip()]
                if len(forms) != 1:
                    raise ValueError(f"glossary {path}: {lang}.{key}: the key must be one word")
                alts = [tokens(x) for x in phrases]
                entries.setdefault(forms[0], []).extend(a for a in alts if a)
        return cls(entries)


def coverage(terms: list[Term], passage_tokens: set[str], index: DocIndex,
             glossary: Glossary | None = None, text: str = "") -> float:
    """Share of the question's term weight (× rarity) that the passage holds.

    A noun written in the passage's ``text`` as in the question counts, and so does a term
    whose glossary phrase the passage holds; a term inside a longer passage token or holding
    one (재활용 / 재활용품) counts half.
    """
    alts = glossary.entries if glossary else {}
    total = got = 0.0
    for t in terms:
        w = t.weight * index.idf(t.form)
        total += w
        if t.form in passage_tokens or (len(t.surface) >= 2 and t.surface in text) or any(
                all(x in passage_tokens for x in alt) for alt in alts.get(t.form, ())):
            got += w
        elif len(t.form) >= 2 and any(
                len(p) >= 2 and (t.form in p or p in t.form) for p in passage_tokens):
            got += 0.5 * w
    return got / total if total > 0 else 0.0


class Desk:
    """Answers questions from ``index``; ``generator`` (optional) phrases them."""

    def __init__(self, index: DocIndex, generator: Any = None, gate: Gate | None = None,
                 glossary: Glossary | None | bool = True) -> None:
        self.index = index
        # True: the shipped glossary; None or False: none
        self.glossary = Glossary.load() if glossary is True else (glossary or None)
        self.generator = generator
        self.gate = gate or Gate()
        self._token_sets = [set(t) for t in index.token_lists]
        self._texts = [p.search_text() for p in index.passages]
        self._sentence_vectors: dict[tuple[str, int], Any] = {}

    # -- the decision ----------------------------------------------------------------------

    def features(self, question: str) -> Features:
        """Everything the gate looks at for ``question`` (a checked question)."""
        terms = question_terms(question)
        known = self.glossary.entries if self.glossary else {}
        unknown = {t.form for t in terms if t.proper and len(t.form) >= 2
                   and t.form not in self.index.df and t.form not in known}
        for name in _EN_NAME.findall(question):
            forms = tokens(name)
            if forms and not any(f in self.index.df or f in known for f in forms):
                unknown.add(forms[0])
        qv = self.index.embedder.query(question)[0]
        hits = self.index.search(question, 8, query_vector=qv)
        covs = [coverage(terms, self._token_sets[h.index], self.index, self.glossary,
                         self._texts[h.index]) for h in hits]
        # how far each hit stands out from the similarity of the whole collection
        all_sims = self.index.vectors @ qv
        spread = float(all_sims.std()) or 1.0
        z = [(h.similarity - float(all_sims.mean())) / spread for h in hits]
        who = bool(_WHO.search(question.lower()))
        return Features(terms, sorted(unknown), hits, covs, qv, z, who)

    @staticmethod
    def passes(gate: Gate, hit: Hit, cov: float) -> bool:
        sim = hit.similarity
        return (sim >= gate.min_similarity and cov >= gate.min_coverage) \
            or (sim >= gate.sure_similarity and cov >= gate.sure_coverage) \
            or (sim >= gate.loose_similarity and cov >= gate.loose_coverage)

    @classmethod
    def choose(cls, gate: Gate, f: Features) -> tuple[Hit, float] | None:
        """The passage that covers the question, or None (refuse)."""
        if not f.terms or f.unknown:
            return None
        for hit, cov in zip(f.hits[:gate.candidates], f.covs[:gate.candidates], strict=True):
            if cls.passes(gate, hit, cov):
                return hit, cov
        if f.hits and f.z and f.z[0] >= gate.distinct_z and f.covs[0] >= gate.distinct_coverage:
            return f.hits[0], f.covs[0]
        return None

    @staticmethod
    def _top_z(f: Features, hit: Hit) -> float | None:
        # the distinct corner judges the best passage only
        return f.z[0] if hit.rank == 0 and f.z else None

    def _confidence(self, hit: Hit, cov: float, z: float | None = None) -> float:
        # 0.5 exactly at the gate's edge, 1 for a perfect match, below 0.5 when refused
        g = self.gate
        margins = [min((hit.similarity - s) / (1 - s), (cov - c) / (1 - c))
                   for s, c in ((g.min_similarity, g.min_coverage),
                                (g.sure_similarity, g.sure_coverage),
                                (g.loose_similarity, g.loose_coverage)) if s < 1 and c < 1]
        if z is not None and g.distinct_z > 0 and g.distinct_coverage < 1:
            margins.append(min((z - g.distinct_z) / g.distinct_z,
                               (cov - g.distinct_coverage) / (1 - g.distinct_coverage)))
        return float(np.clip(0.5 + 0.5 * max(margins, default=-1.0), 0.0, 1.0))

    def ask(self, question: Any, lang: str | None = None) -> Answer:
        """Answer ``question`` (``lang``: the reader's language, default the question's)."""
        q = check_question(question)
        if lang is not None and lang not in ("ko", "en"):
            raise ValueError(f"lang: 'ko' or 'en', not {lang!r}")
        lang = lang or language(q)
        if not self.index.passages:
            return self._refuse(lang, {"why": "no documents"})
        f = self.features(q)
        signals: dict[str, Any] = {
            "similarity": round(f.hits[0].similarity, 4), "coverage": round(f.covs[0], 4),
            "fused": round(f.hits[0].fused, 5)}
        chosen = self.choose(self.gate, f)
        if chosen is not None and f.who and not names_someone(chosen[0].passage.text, q):
            chosen = None
            signals["why"] = "asks for a person the documents do not name"
        if chosen is None:
            if not f.terms:
                signals["why"] = "no content words"
            elif f.unknown:
                # how many, not which: a name may be a person's, and answers get logged
                signals.update({"why": "names something no document mentions",
                                "unknown_names": len(f.unknown)})
            pairs = zip(f.hits[:3], f.covs[:3], strict=True)
            best = max((self._confidence(h, c, self._top_z(f, h)) for h, c in pairs),
                       default=0.0)
            return self._refuse(lang, signals, confidence=min(best, 0.49))
        hit, cov = chosen
        signals.update({"similarity": round(hit.similarity, 4), "coverage": round(cov, 4),
                        "fused": round(hit.fused, 5), "rank": hit.rank})
        extractive = self._extract(q, f.terms, f.qv, hit.passage, lang,
                                   self._confidence(hit, cov, self._top_z(f, hit)), signals)
        if self.generator is None:
            return extractive
        return self._generate(q, lang, f.hits, extractive)

    def _refuse(self, lang: str, signals: dict[str, Any], confidence: float = 0.0) -> Answer:
        return Answer(None, True, [], reason="not-covered", message=NOT_COVERED_MESSAGE,
                      confidence=confidence, lang=lang, signals=signals)

    # -- extractive answers ----------------------------------------------------------------

    def _extract(self, question: str, terms: list[Term], qv: Any, p: Passage, lang: str,
                 conf: float, signals: dict[str, Any]) -> Answer:
        spans = sentence_spans(p.text)
        header = ""
        table = sum(" | " in p.text[a:b] for a, b in spans) >= 4
        if (len(p.text) > _SHORT_PASSAGE or table) and len(spans) > 1:
            run, head = self._best_run(terms, qv, p, spans)
            if head is not None:
                header = p.text[head[0]:head[1]] + "\n"
        else:
            run = spans
        a, b = run[0][0], run[-1][1]
        quote = p.text[a:b]
        cite = citation(p, 1, p.start + a, p.start + b, quote)
        return Answer(f"{header}{quote} [1]", False, [cite], confidence=conf, lang=lang,
                      signals=signals)

    def _best_run(self, terms: list[Term], qv: Any, p: Passage, spans: list[tuple[int, int]]
                  ) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
        """The sentences that answer best (with close neighbours), and a table's header."""
        texts = [p.text[a:b] for a, b in spans]
        key = (p.doc, p.start)
        vecs = self._sentence_vectors.get(key)
        if vecs is None:  # embedded once per passage: later questions on it are fast
            vecs = self._sentence_vectors[key] = self.index.embedder.passage(texts)
        sims = vecs @ qv
        lex = np.asarray([coverage(terms, set(tokens(t)), self.index, self.glossary, t)
                          for t in texts])
        score = sims + 0.1 * lex
        best = int(np.argmax(score))
        lo = hi = best
        # a neighbour that scores nearly as well usually finishes the thought
        if best > 0 and score[best - 1] >= score[best] - 0.01:
            lo = best - 1
        if best + 1 < len(spans) and score[best + 1] >= score[best] - 0.01:
            hi = best + 1
        # a table row is read with its header row
        head = spans[0] if lo > 0 and "|" in texts[best] and "|" in texts[0] else None
        return spans[lo:hi + 1], head

    # -- generated answers -----------------------------------------------------------------

    def _generate(self, question: str, lang: str, hits: list[Hit], fallback: Answer) -> Answer:
        from .generator import GeneratorError, check_citations

        # the generator sees the passage the gate accepted first, then the next best ones
        first = fallback.citations[0]
        chosen = [h.passage for h in hits if (h.passage.doc, h.passage.start)
                  == (first["document"], first["passage"]["start"])]
        others = [h.passage for h in hits[:4] if h.passage not in chosen]
        passages = (chosen + others)[:4]
        try:
            text = self.generator.generate(question, passages, lang)
        except GeneratorError as exc:
            fallback.fallback = "generator-error"
            fallback.signals["generator_error"] = str(exc)[:200]
            return fallback
        if text.strip().upper().startswith("NOT_COVERED"):
            refusal = self._refuse(lang, {**fallback.signals, "why": "generator found no answer"})
            return refusal
        ok, numbers = check_citations(text, passages)
        if not ok:
            fallback.fallback = "citation-check-failed"
            return fallback
        cites = [citation(passages[n - 1], n, passages[n - 1].start, passages[n - 1].end,
                          passages[n - 1].text) for n in numbers]
        return Answer(text.strip(), False, cites, generated=True, label="AI-generated",
                      confidence=fallback.confidence, lang=lang, signals=fallback.signals)


def names_someone(text: str, question: str) -> bool:
    """Whether ``text`` names a person or body that ``question`` does not (a proper noun)."""
    tokens(text[:1])  # warms Kiwi's caches under text.py's lock before the tagged call
    asked = question.lower()
    return any(t.tag == "NNP" and t.form.lower() not in asked and len(t.form) >= 2
               for t in kiwi().tokenize(text))


def citation(p: Passage, n: int, start: int, end: int, quote: str) -> dict[str, Any]:
    """A citation: the document, its section, the quote and where it is in the document."""
    return {"n": n, "document": p.doc, "title": p.title, "section": p.section,
            "start": start, "end": end, "quote": quote,
            "passage": {"start": p.start, "end": p.end}}


# -- the command line ----------------------------------------------------------------------

def cli_ask(settings: Any, args: argparse.Namespace) -> int:
    """``maeul civic ask --docs DIR [--cache DIR] QUESTION``: print one JSON object.

    Exit 0 for an answer or a refusal, 2 for bad input (the message on stderr).
    """
    from .desk import generator_from

    def fail(msg: str) -> int:
        print(f"maeul civic ask: {msg}", file=sys.stderr)
        return 2

    try:
        question = check_question(getattr(args, "question", None))
    except ValueError as exc:
        return fail(str(exc))
    docs = Path(args.docs)
    if not docs.is_dir():
        return fail(f"--docs {docs}: not a folder")
    cache = getattr(args, "cache", None)
    cache = Path(cache) if cache else docs / ".maeul-index"
    try:
        gen = generator_from(
            getattr(args, "generator_url", None) or getattr(settings, "civic_generator_url", None),
            getattr(args, "generator_model", None)
            or getattr(settings, "civic_generator_model", None),
            getattr(args, "generator_key_env", None)
            or getattr(settings, "civic_generator_key_env", None),
            getattr(args, "gguf", None) or getattr(settings, "civic_gguf_path", None))
    except (ValueError, RuntimeError, OSError) as exc:
        return fail(str(exc))
    t0 = time.perf_counter()
    index = DocIndex.load_or_build(docs, cache)
    loaded = index.load
    for problem in (loaded.skipped + loaded.errors) if loaded else []:
        print(f"maeul civic ask: left out {problem.doc}: {problem.reason}", file=sys.stderr)
    if not index.passages:
        return fail(f"--docs {docs}: no readable documents (Markdown, HTML, PDF or text)")
    t1 = time.perf_counter()
    answer = Desk(index, generator=gen).ask(question)
    out = answer.to_json()
    out["index"] = {**(loaded.report() if loaded else {}), "cache_hit": index.stats.get(
        "cache_hit", False), "load_s": round(t1 - t0, 3),
        "answer_ms": round((time.perf_counter() - t1) * 1000, 1)}
    print(json.dumps(out, ensure_ascii=False))
    return 0
