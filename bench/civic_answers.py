"""Civic desk answers: index build time, retrieval, gate calibration, answer figures.

    .venv/bin/python bench/civic_answers.py [--docs DIR] [--questions FILE] [--json]

Prints (1) the time to index the documents cold (no cache) and to load them again from the
cache, (2) how often the passage holding the answer ranks first / in the top 3 for BM25
alone, embeddings alone and the two fused (RRF, and a 50/50 mix of normalised scores),
(3) the gate calibrated on the dev half of the questions (zero out-of-scope answers), and
(4) ``evaluate_answers`` on the dev half, the test half and all questions, with the gate the
desk ships (``answer.Gate()``) and with the one calibrated here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any


def _data(name: str) -> Path:
    return Path(str(resources.files("maeul.services.civic").joinpath(f"data/{name}")))


def retrieval(index: Any, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Top-1 / top-3 share of the passage holding the answer, per ranking."""
    from maeul.services.civic.answer import Desk
    from maeul.services.civic.qa_eval import answer_spans

    desk = Desk(index, glossary=False)
    ranks: dict[str, list[int]] = {}
    shipped = (index.rrf_k, index.dense_weight)
    for q in questions:
        if q.get("out_of_scope"):
            continue
        spans = answer_spans(desk, q["document"], q["must"])

        def right(i: int, q: dict[str, Any] = q, spans: Any = spans) -> bool:
            p = index.passages[i]
            return p.doc == q["document"] and any(p.start < b and a < p.end for a, b in spans)

        rankings: dict[str, list[int]] = {}
        everything = index.search(q["question"], len(index.passages))
        rankings["bm25"] = [h.index for h in sorted(everything, key=lambda h: -h.bm25)]
        rankings["dense"] = [h.index for h in sorted(everything, key=lambda h: -h.similarity)]
        rankings["mix 50/50"] = [h.index for h in index.search(q["question"], 3, fusion="mix")]
        for name, (k, w) in (("rrf k=60", (60, 1.0)),
                             (f"rrf k={shipped[0]} dense x{shipped[1]:g} (shipped)", shipped)):
            index.rrf_k, index.dense_weight = k, w
            rankings[name] = [h.index for h in index.search(q["question"], 3)]
        index.rrf_k, index.dense_weight = shipped
        for name, order in rankings.items():
            ranks.setdefault(name, []).append(
                next((r for r, i in enumerate(order[:3]) if right(i)), 9))
    return {name: {"top1": round(sum(r == 0 for r in v) / len(v), 3),
                   "top3": round(sum(r < 3 for r in v) / len(v), 3)} for name, v in ranks.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=Path, default=_data("docs"))
    ap.add_argument("--questions", type=Path, default=_data("eval/questions.jsonl"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from maeul.services.civic.answer import Desk, Gate
    from maeul.services.civic.docindex import DocIndex
    from maeul.services.civic.qa_eval import calibrate, evaluate_answers, load_questions, split
    from maeul.services.civic.text import embedder

    embedder().query("warm-up")
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        index = DocIndex.load_or_build(args.docs, Path(tmp))
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = DocIndex.load_or_build(args.docs, Path(tmp))
        warm = time.perf_counter() - t0
    report["index"] = {"documents": index.stats["documents"], "passages": len(index.passages),
                       "cold_s": round(cold, 2), "cached_s": round(warm, 2),
                       "embedded_on_reload": index.stats["embedded"]}
    questions = load_questions(args.questions)
    dev, test = split(questions)
    report["retrieval"] = {"dev": retrieval(index, dev), "test": retrieval(index, test)}
    desk = Desk(index)
    gate, fit = calibrate(desk, dev)
    report["calibrated_gate"] = {**asdict(gate), "dev_fit": fit}
    report["shipped_gate"] = asdict(Gate())
    nog, nog_fit = calibrate(Desk(index, glossary=False), dev)
    report["calibrated_gate_no_glossary"] = {**asdict(nog), "dev_fit": nog_fit}
    for name, g, gl in (("shipped", Gate(), True), ("calibrated", gate, True),
                        ("no glossary", nog, False)):
        desk = Desk(index, gate=g, glossary=gl)
        report[name] = {part: evaluate_answers(desk, qs) for part, qs in
                        (("dev", dev), ("test", test), ("all", questions))}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    i = report["index"]
    print(f"index: {i['documents']} documents, {i['passages']} passages; cold {i['cold_s']} s, "
          f"from cache {i['cached_s']} s ({i['embedded_on_reload']} embedded on reload)")
    for part, table in report["retrieval"].items():
        print(f"retrieval on {part} (passage holding the answer first / in top 3): " + "; ".join(
            f"{k} {v['top1']:.0%}/{v['top3']:.0%}" for k, v in table.items()))
    print(f"gate calibrated on dev: {report['calibrated_gate']}")
    print(f"gate shipped: {report['shipped_gate']}")
    print(f"gate calibrated without the glossary: {report['calibrated_gate_no_glossary']}")
    for name in ("shipped", "calibrated", "no glossary"):
        for part, r in report[name].items():
            print(f"{name:>11} {part:>4}: in-scope {r['in_scope']}, answered "
                  f"{r['in_scope_answered']:.1%}, cited right {r['in_scope_cited']:.1%} of "
                  f"answered ({r['in_scope_answered_cited']:.1%} of all); out-of-scope answered "
                  f"{r['out_of_scope_answered']} of {r['out_of_scope']}; p50/p95 "
                  f"{r['latency_ms']['p50']:.0f}/{r['latency_ms']['p95']:.0f} ms "
                  f"(CPU {r['cpu_ms']['p50']:.0f}/{r['cpu_ms']['p95']:.0f} ms)")
    print(json.dumps(report, ensure_ascii=False, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
