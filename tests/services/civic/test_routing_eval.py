"""Routing evaluation: metrics, case files, and the real NYC 311 files when present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maeul.services.civic.classifier import Classifier
from maeul.services.civic.routing_eval import (
    DEV_PATH,
    calibration,
    evaluate_nyc,
    evaluate_routing,
    load_cases,
    macro_f1,
)
from maeul.services.civic.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier(load_taxonomy())


def test_dev_set_is_well_formed() -> None:
    cases = load_cases(DEV_PATH)
    codes = load_taxonomy().codes
    korean = [c for t, c in cases if any("\uac00" <= ch <= "\ud7a3" for ch in t)]
    for code in codes:
        assert korean.count(code) >= 15, code
    assert {c for _, c in cases} == set(codes)
    examples = {e for cat in load_taxonomy().categories
                for lang in ("ko", "en") for e in cat.examples[lang]}
    assert not examples & {t for t, _ in cases}


def test_load_cases_names_the_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "가로등 고장", "category": "streetlight"}\n\n'
                    '{"text": "pothole", "category": "road", "lang": "en"}\n', encoding="utf-8")
    assert load_cases(good) == [("가로등 고장", "streetlight"), ("pothole", "road")]
    for body, message in [
        ('{"text": "a", "category": "road"}\n{oops\n', r"bad\.jsonl:2: not valid JSON"),
        ('{"text": "", "category": "road"}\n', r"bad\.jsonl:1\.text"),
        ('{"text": "a"}\n', r"bad\.jsonl:1\.category"),
        ('["a", "road"]\n', r"bad\.jsonl:1: expected an object"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_cases(bad)


def test_macro_f1_and_calibration_by_hand() -> None:
    # a: tp 1, fn 1 -> 2/3; b: tp 1, fp 1 -> 2/3; c: tp 1 -> 1
    expected = (2 / 3 + 2 / 3 + 1) / 3
    assert macro_f1(["a", "a", "b", "c"], ["a", "b", "b", "c"]) == pytest.approx(expected)
    assert macro_f1(["a"], ["b"]) == 0.0
    cal = calibration([0.95, 0.95, 0.55, 0.55], [True, True, True, False])
    assert cal["ece"] == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    assert [b["n"] for b in cal["bins"]] == [2, 2]


def test_evaluate_routing_on_part_of_the_dev_set(clf: Classifier) -> None:
    cases = load_cases(DEV_PATH)
    sample = [c for i, c in enumerate(cases) if i % 9 == 0]  # a spread over every category
    rep = evaluate_routing(clf, sample)
    assert rep["n"] == len(sample)
    assert sum(v["n"] for v in rep["by_language"].values()) == len(sample)
    assert rep["category_accuracy"] >= 0.75
    assert rep["department_accuracy"] >= rep["category_accuracy"]
    assert rep["top3_accuracy"] >= rep["category_accuracy"]
    assert 0 <= rep["needs_confirmation_share"] <= 1
    if rep["confident_category_accuracy"] is not None:
        assert rep["confident_category_accuracy"] >= 0.75
    counts = [p["count"] for p in rep["department_confusion"]]
    assert counts == sorted(counts, reverse=True)
    assert all(p["true"] != p["predicted"] and p["count"] > 0 for p in rep["department_confusion"])
    wrong = round((1 - rep["department_accuracy"]) * rep["n"])
    assert sum(counts) == wrong
    assert rep["latency_ms"]["p95"] >= rep["latency_ms"]["p50"] > 0
    assert 0 <= rep["calibration"]["ece"] <= 1
    json.dumps(rep)


def test_evaluate_routing_refuses_unknown_codes_and_nothing(clf: Classifier) -> None:
    with pytest.raises(ValueError, match=r"cases\[1\]\.category: unknown category 'lights'"):
        evaluate_routing(clf, [("가로등", "streetlight"), ("가로등", "lights")])
    with pytest.raises(ValueError, match="at least one case"):
        evaluate_routing(clf, [])


def test_nyc_skips_clearly_without_files(tmp_path: Path) -> None:
    out = evaluate_nyc(tmp_path)
    assert "skipped" in out and "nyc311_a.csv" in out["skipped"]


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    lines = [",".join(header)] + [",".join(r.get(h, "") for h in header) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_nyc_reads_columns_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "service_requests"
    folder.mkdir()
    rows = [{"agency": a, "descriptor": d, "unique_key": str(i)} for i, (d, a) in enumerate([
        ("Loud Music/Party", "NYPD"), ("Banging/Pounding", "NYPD"), ("Loud Talking", "NYPD"),
        ("Blocked Hydrant", "NYPD"), ("Pothole", "DOT"), ("Street Light Out", "DOT"),
        ("Missed Collection", "DSNY"), ("Dirty Sidewalk", "DSNY"),
    ])]
    _write_csv(folder / "nyc311_a.csv", ["unique_key", "agency", "descriptor"], rows)
    _write_csv(folder / "nyc311_b.csv", ["descriptor", "city", "agency"], rows[::-1])
    out = evaluate_nyc(tmp_path)
    same = evaluate_nyc(folder)  # the service_requests folder itself works too
    assert [r["accuracy"] for r in same["runs"]] == [r["accuracy"] for r in out["runs"]]
    assert [r["train"] for r in out["runs"]] == ["nyc311_a.csv", "nyc311_b.csv"]
    for run in out["runs"]:
        assert run["test_cases"] == 8
        assert run["accuracy"] == 1.0  # the same descriptors on both sides
        assert run["learning_curve"][-1]["cases"] == 8


def test_nyc_real_files(data_dir: Path) -> None:
    out = evaluate_nyc(data_dir)
    if "skipped" in out:
        pytest.skip(out["skipped"])
    for run in out["runs"]:
        assert run["accuracy"] >= run["majority_baseline"]["accuracy"]
        assert run["macro_f1"] > run["majority_baseline"]["macro_f1"] + 0.3
        curve = run["learning_curve"]
        assert curve[-1]["accuracy"] > curve[0]["accuracy"] or curve[0]["accuracy"] >= 0.9
        assert curve[-1]["macro_f1"] > curve[0]["macro_f1"]


def test_second_dev_set_is_fresh() -> None:
    # complaints_dev2.jsonl only checks that changes generalise beyond complaints_dev.jsonl
    second = load_cases(DEV_PATH.parent / "complaints_dev2.jsonl")
    tax = load_taxonomy()
    for code in tax.codes:
        assert sum(c == code for _, c in second) >= 10, code
    examples = {e for cat in tax.categories for lang in ("ko", "en") for e in cat.examples[lang]}
    texts = {t for t, _ in second}
    assert not texts & examples
    assert not texts & {t for t, _ in load_cases(DEV_PATH)}
