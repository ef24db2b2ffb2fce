"""Measure complaint routing: accuracy, macro F1, confusion, calibration, latency.

- ``evaluate_routing(classifier, cases)`` on labelled ``(text, category)`` pairs;
- ``load_cases(path)`` reads JSON Lines ``{"text": ..., "category": ...}``;
- ``evaluate_nyc(data_dir)`` trains a taxonomy-free classifier on one real NYC 311 file
  (descriptor → agency) and tests on the other, both ways, with a learning curve;
- ``fit_dev_weights(path)`` refits the classifier's combination weights on a held-out file.

Reproduce the development figures::

    python -c "from maeul.services.civic.routing_eval import main; main()"
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import Classifier
from .taxonomy import Taxonomy, load_taxonomy
from .text import language

DEV_PATH = Path(__file__).parent / "data" / "eval" / "complaints_dev.jsonl"
NYC_FILES = ("nyc311_a.csv", "nyc311_b.csv")
CURVE = (10, 50, 200)


def load_cases(path: Path) -> list[tuple[str, str]]:
    """``(text, category)`` pairs from JSON Lines; ``ValueError`` names the bad line."""
    out: list[tuple[str, str]] = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{n}: expected an object")
            text, cat = row.get("text"), row.get("category")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}:{n}.text: expected a non-empty string")
            if not isinstance(cat, str) or not cat:
                raise ValueError(f"{path}:{n}.category: expected a category code")
            out.append((text, cat))
    return out


def macro_f1(truth: Sequence[str], pred: Sequence[str]) -> float:
    """Unweighted mean F1 over the labels present in ``truth``."""
    scores = []
    for label in sorted(set(truth)):
        tp = sum(1 for t, p in zip(truth, pred, strict=True) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, pred, strict=True) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, pred, strict=True) if t == label and p != label)
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def calibration(conf: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error and a reliability table (confidence vs accuracy)."""
    c = np.asarray(conf, dtype=float)
    ok = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (c > lo) & (c <= hi) if lo > 0 else (c >= lo) & (c <= hi)
        if not mask.any():
            continue
        acc, mean_c = float(ok[mask].mean()), float(c[mask].mean())
        ece += mask.mean() * abs(acc - mean_c)
        table.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(mask.sum()),
                      "confidence": round(mean_c, 3), "accuracy": round(acc, 3)})
    return {"ece": round(float(ece), 4), "mean_confidence": round(float(c.mean()), 4)
            if len(c) else 0.0, "bins": table}


def evaluate_routing(classifier: Classifier, cases: list[tuple[str, str]]) -> dict[str, Any]:
    """Route each case one at a time (so latency is per complaint) and score the result."""
    if not cases:
        raise ValueError("evaluate_routing needs at least one case")
    tax = classifier.taxonomy
    known = set(classifier.codes)
    for i, (_, code) in enumerate(cases):
        if code not in known:
            raise ValueError(f"cases[{i}].category: unknown category {code!r}")
    classifier.classify(cases[0][0])  # warm-up: regression fit, BM25 matrix, model load
    true_c, pred_c, true_d, pred_d, top3, conf, confirm, lat = [], [], [], [], [], [], [], []
    for text, code in cases:
        t0 = time.perf_counter()
        r = classifier.classify(text)
        lat.append((time.perf_counter() - t0) * 1000.0)
        true_c.append(code)
        pred_c.append(r.category)
        true_d.append(tax.category(code).department)
        pred_d.append(r.department)
        top3.append(code in [r.category] + [a["category"] for a in r.alternatives[:2]])
        conf.append(r.confidence)
        confirm.append(r.needs_confirmation)
    n = len(cases)
    ok_c = [t == p for t, p in zip(true_c, pred_c, strict=True)]
    ok_d = [t == p for t, p in zip(true_d, pred_d, strict=True)]
    confident = [i for i in range(n) if not confirm[i]]
    confusion = Counter((t, p) for t, p in zip(true_d, pred_d, strict=True) if t != p)
    per_cat = {}
    for code in sorted(set(true_c)):
        idx = [i for i in range(n) if true_c[i] == code]
        per_cat[code] = {"n": len(idx), "accuracy": round(sum(ok_c[i] for i in idx) / len(idx), 4)}
    by_lang: dict[str, dict[str, Any]] = {}
    for lang in ("ko", "en"):
        idx = [i for i, (text, _) in enumerate(cases) if language(text) == lang]
        if idx:
            by_lang[lang] = {
                "n": len(idx),
                "category_accuracy": round(sum(ok_c[i] for i in idx) / len(idx), 4),
                "department_accuracy": round(sum(ok_d[i] for i in idx) / len(idx), 4),
            }
    return {
        "n": n,
        "category_accuracy": round(sum(ok_c) / n, 4),
        "department_accuracy": round(sum(ok_d) / n, 4),
        "top3_accuracy": round(sum(top3) / n, 4),
        "department_macro_f1": round(macro_f1(true_d, pred_d), 4),
        "department_confusion": [
            {"true": t, "predicted": p, "count": k}
            for (t, p), k in sorted(confusion.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "threshold": classifier.threshold,
        "needs_confirmation_share": round(sum(confirm) / n, 4),
        "confident_category_accuracy": round(sum(ok_c[i] for i in confident) / len(confident), 4)
        if confident else None,
        "confident_department_accuracy": round(sum(ok_d[i] for i in confident) / len(confident),
                                               4) if confident else None,
        "calibration": calibration(conf, ok_c),
        "by_language": by_lang,
        "per_category": per_cat,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                       "p95": round(float(np.percentile(lat, 95)), 2)},
    }


def fit_dev_weights(path: Path = DEV_PATH, taxonomy: Taxonomy | None = None) -> list[float]:
    """Refit the conditional-logit weights on held-out cases (the dev set by default)."""
    from .classifier import fit_weights

    tax = taxonomy or load_taxonomy()
    clf = Classifier(tax)
    cases = load_cases(path)
    feats = clf.features([t for t, _ in cases])
    w = fit_weights(feats, [clf.codes.index(c) for _, c in cases])
    return [round(float(x), 3) for x in w]


# -- NYC 311: descriptor → agency --------------------------------------------------------

def _nyc_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or ())
        missing = {"descriptor", "agency"} - fields
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {sorted(missing)}")
        return [(r["descriptor"].strip(), r["agency"].strip()) for r in reader
                if (r.get("descriptor") or "").strip() and (r.get("agency") or "").strip()]


def _score(clf: Classifier, test: list[tuple[str, str]]) -> tuple[float, float]:
    known = set(clf.codes)
    texts = [t for t, _ in test]
    pred = [r.category for r in clf.classify_many(texts)]
    truth = [a for _, a in test]
    # an agency never seen in training can only be missed; it still counts against us
    pred = [p if p in known else "" for p in pred]
    acc = sum(p == t for p, t in zip(pred, truth, strict=True)) / len(test)
    return acc, macro_f1(truth, pred)


def evaluate_nyc(data_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Train on one NYC 311 file and test on the other, both ways, with a learning curve.

    ``data_dir`` is the shared data folder or its ``service_requests`` folder. Returns
    ``{"skipped": reason}`` when the files are not there.
    """
    # accept the data folder or its service_requests folder itself
    base = Path(data_dir)
    if not (base / NYC_FILES[0]).exists():
        base = base / "service_requests"
    paths = [base / name for name in NYC_FILES]
    absent = [p.name for p in paths if not p.exists()]
    if absent:
        return {"skipped": f"NYC 311 files not found in {base}: {', '.join(absent)}"}
    data = {p.name: _nyc_rows(p) for p in paths}
    out: dict[str, Any] = {"input": "descriptor", "label": "agency", "runs": []}
    for train_name, test_name in (NYC_FILES, NYC_FILES[::-1]):
        train, test = list(data[train_name]), data[test_name]
        random.Random(seed).shuffle(train)  # routed cases arrive in no particular order
        labels = sorted({a for _, a in train})
        majority = Counter(a for _, a in train).most_common(1)[0][0]
        run: dict[str, Any] = {
            "train": train_name, "test": test_name, "train_cases": len(train),
            "test_cases": len(test), "agencies_in_train": len(labels),
            "unseen_test_agency_share": round(
                sum(a not in labels for _, a in test) / len(test), 4),
            "majority_baseline": {
                "agency": majority,
                "accuracy": round(sum(a == majority for _, a in test) / len(test), 4),
                "macro_f1": round(macro_f1([a for _, a in test], [majority] * len(test)), 4),
            },
        }
        curve = []
        for size in [*(s for s in CURVE if s < len(train)), len(train)]:
            clf = Classifier.from_cases(train[:size], labels=labels)
            t0 = time.perf_counter()
            acc, f1 = _score(clf, test)
            curve.append({"cases": size, "accuracy": round(acc, 4), "macro_f1": round(f1, 4),
                          "ms_per_case": round((time.perf_counter() - t0) * 1000 / len(test),
                                               2)})
        run["learning_curve"] = curve
        run["accuracy"], run["macro_f1"] = curve[-1]["accuracy"], curve[-1]["macro_f1"]
        out["runs"].append(run)
    return out


def main(data_dir: Path | None = None) -> dict[str, Any]:
    """Print the development-set and NYC figures as JSON (used by the lead's CLI)."""
    root = Path(__file__).resolve().parents[4]
    clf = Classifier(load_taxonomy())
    report = {
        "dev": evaluate_routing(clf, load_cases(DEV_PATH)),
        "nyc": evaluate_nyc(data_dir or root.parent / "shared" / "data"),
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return report
