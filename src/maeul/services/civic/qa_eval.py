"""How well the desk answers: ``evaluate_answers(desk, questions)``.

A question set is JSON Lines: ``{"id", "question", "document", "must"}`` for a question the
documents answer (``must``: a string the passage holding the answer contains) or
``{"id", "question", "out_of_scope": true}`` for one they do not; an optional ``lang`` gives
the question's language (figures are also given per language). ``questions.jsonl`` and the
blind set ``questions_blind.jsonl`` share this schema.

Figures (shares are of the in-scope questions unless said otherwise):

- ``in_scope_answered``: answered rather than refused;
- ``in_scope_cited``: of the answered ones, the share with a citation of the passage holding
  the answer (a cited passage of the expected document that contains ``must``, or whose span
  overlaps an occurrence of ``must`` in that document); the issue's target is ≥ 90 %;
- ``in_scope_answered_cited``: answered *and* cited right, over all in-scope questions;
- ``quote_holds_answer``: of the answered ones, the share whose quoted span itself overlaps
  ``must`` (stricter: the quote, not just its passage);
- ``out_of_scope_answered``: a count; the target is 0;
- ``latency_ms``: p50/p95/max wall time of ``desk.ask`` after ``warmup`` unscored questions,
  and ``cpu_ms``: p50/p95 of the process CPU time it used (all threads).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Read and check a question set; ``ValueError`` names the line that is wrong."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(q, dict) or not isinstance(q.get("question"), str) \
                or not q["question"].strip():
            raise ValueError(f"{path}:{n}: an object with a non-empty 'question' is needed")
        if not q.get("out_of_scope"):
            for key in ("document", "must"):
                if not isinstance(q.get(key), str) or not q[key]:
                    raise ValueError(f"{path}:{n}: in-scope questions need '{key}' (a string)")
        q.setdefault("id", f"line-{n}")
        out.append(q)
    if not out:
        raise ValueError(f"{path}: no questions")
    return out


def answer_spans(desk: Any, document: str, must: str) -> list[tuple[int, int]]:
    """Where ``must`` occurs in ``document``'s text (found through the desk's passages)."""
    spans = set()
    for p in desk.index.passages:
        if p.doc != document:
            continue
        i = p.text.find(must)
        while i >= 0:
            spans.add((p.start + i, p.start + i + len(must)))
            i = p.text.find(must, i + 1)
    return sorted(spans)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def cites_answer(desk: Any, answer: dict[str, Any], q: dict[str, Any]) -> tuple[bool, bool]:
    """(a cited passage holds the answer, the quoted span itself holds it)."""
    spans = answer_spans(desk, q["document"], q["must"])
    passage_ok = quote_ok = False
    for c in answer.get("citations", []):
        if c.get("document") != q["document"]:
            continue
        ps = (c["passage"]["start"], c["passage"]["end"])
        passage_ok |= any(_overlaps(ps, s) for s in spans)
        quote_ok |= q["must"] in c.get("quote", "") or any(
            _overlaps((c["start"], c["end"]), s) for s in spans)
    return passage_ok, quote_ok


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


def evaluate_answers(desk: Any, questions: Sequence[dict[str, Any]], *,
                     warmup: int = 3) -> dict[str, Any]:
    """Ask every question and score the answers (see the module docstring)."""
    for q in list(questions)[:warmup]:
        desk.ask(q["question"])
    times: list[float] = []
    cpu: list[float] = []
    rows = []
    for q in questions:
        t0, c0 = time.perf_counter(), time.process_time()
        out = desk.ask(q["question"]).to_json()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        answered = not out["refused"]
        if answered and not out.get("citations"):
            raise AssertionError(f"{q['id']}: an answer without a citation")
        row: dict[str, Any] = {"id": q["id"], "lang": q.get("lang"), "answered": answered,
                               "oos": bool(q.get("out_of_scope"))}
        if not row["oos"] and answered:
            row["cited"], row["quote"] = cites_answer(desk, out, q)
        rows.append(row)
    report = _summary(rows)
    report["latency_ms"] = {"p50": _pct(times, 50), "p95": _pct(times, 95),
                            "max": round(max(times), 1) if times else 0.0}
    # CPU time tells the desk's own cost apart from waiting on a busy machine
    report["cpu_ms"] = {"p50": _pct(cpu, 50), "p95": _pct(cpu, 95)}
    for lang in sorted({r["lang"] for r in rows if r["lang"]}):
        report.setdefault("by_lang", {})[lang] = _summary([r for r in rows if r["lang"] == lang])
    report["refused_in_scope"] = [r["id"] for r in rows if not r["oos"] and not r["answered"]]
    report["miscited"] = [r["id"] for r in rows if r.get("answered") and not r["oos"]
                          and not r.get("cited")]
    report["answered_out_of_scope"] = [r["id"] for r in rows if r["oos"] and r["answered"]]
    return report


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ins = [r for r in rows if not r["oos"]]
    oos = [r for r in rows if r["oos"]]
    answered = [r for r in ins if r["answered"]]

    def share(n: int, d: int) -> float:
        return round(n / d, 4) if d else 0.0

    return {
        "questions": len(rows), "in_scope": len(ins), "out_of_scope": len(oos),
        "in_scope_answered": share(len(answered), len(ins)),
        "in_scope_cited": share(sum(bool(r.get("cited")) for r in answered), len(answered)),
        "in_scope_answered_cited": share(sum(bool(r.get("cited")) for r in answered), len(ins)),
        "quote_holds_answer": share(sum(bool(r.get("quote")) for r in answered), len(answered)),
        "out_of_scope_answered": sum(r["answered"] for r in oos),
    }


def split(questions: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Dev and test halves: alternate questions of each kind (in-scope, out-of-scope)."""
    dev: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    for oos in (False, True):
        group = [q for q in questions if bool(q.get("out_of_scope")) == oos]
        dev.extend(group[0::2])
        test.extend(group[1::2])
    return dev, test


GRID: dict[str, Sequence[float]] = {
    "min_similarity": [round(0.86 + 0.005 * i, 3) for i in range(9)],
    "min_coverage": [round(0.45 + 0.05 * i, 2) for i in range(7)],
    "sure_similarity": [round(0.89 + 0.01 * i, 3) for i in range(4)],
    "sure_coverage": [round(0.2 + 0.1 * i, 2) for i in range(4)],
    "loose_similarity": [round(0.82 + 0.01 * i, 3) for i in range(6)] + [1.0],
    "loose_coverage": [round(0.75 + 0.05 * i, 2) for i in range(6)],
}


def calibrate(desk: Any, questions: Sequence[dict[str, Any]],
              grid: dict[str, Sequence[float]] | None = None) -> tuple[Any, dict[str, Any]]:
    """The gate that answers the most in-scope ``questions`` right with no out-of-scope one
    answered; among those, the one answering fewest wrongly, then the strictest (largest
    thresholds), which leaves a margin for questions not seen here."""
    import itertools

    from .answer import Gate

    grid = grid or GRID
    k = Gate().candidates
    sims = np.zeros((len(questions), k))
    covs = np.zeros((len(questions), k))
    right = np.zeros((len(questions), k), dtype=bool)
    oos = np.array([bool(q.get("out_of_scope")) for q in questions])
    blocked = np.zeros(len(questions), dtype=bool)
    # the distinct corner (the best passage far above the collection) is not in the grid:
    # it answers the same way for every grid point, with the desk's own gate settings
    distinct = np.zeros(len(questions), dtype=bool)
    dg = desk.gate
    for i, q in enumerate(questions):
        f = desk.features(q["question"])
        blocked[i] = not f.terms or bool(f.unknown)
        distinct[i] = bool(f.z) and f.z[0] >= dg.distinct_z and f.covs[0] >= dg.distinct_coverage
        spans = [] if oos[i] else answer_spans(desk, q["document"], q["must"])
        for j, (hit, cov) in enumerate(zip(f.hits[:k], f.covs[:k], strict=True)):
            sims[i, j], covs[i, j] = hit.similarity, cov
            p = hit.passage
            right[i, j] = not oos[i] and p.doc == q["document"] and any(
                _overlaps((p.start, p.end), s) for s in spans)
    best: tuple[tuple[float, ...], Any, dict[str, Any]] | None = None
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)):
        params: dict[str, Any] = dict(zip(keys, values, strict=True))
        g = Gate(**params)
        if g.sure_similarity < g.min_similarity or g.sure_coverage > g.min_coverage \
                or g.loose_similarity > g.min_similarity or g.loose_coverage < g.min_coverage:
            continue
        ok = ((sims >= g.min_similarity) & (covs >= g.min_coverage)) \
            | ((sims >= g.sure_similarity) & (covs >= g.sure_coverage)) \
            | ((sims >= g.loose_similarity) & (covs >= g.loose_coverage))
        # the distinct corner applies only after no candidate passed (Desk.choose)
        ok[:, 0] |= distinct & ~ok.any(axis=1)
        ok[blocked] = False
        answered = ok.any(axis=1)
        if (answered & oos).any():
            continue
        first = ok.argmax(axis=1)
        hit_right = right[np.arange(len(questions)), first] & answered
        n_right, n_answered = int(hit_right.sum()), int(answered.sum())
        key = (n_right, n_right - n_answered, *values)
        if best is None or key > best[0]:
            best = (key, g, {"right": n_right, "answered": n_answered,
                             "in_scope": int((~oos).sum()), "out_of_scope": int(oos.sum())})
    if best is None:
        raise ValueError("no gate in the grid answers without answering out-of-scope questions")
    return best[1], best[2]
