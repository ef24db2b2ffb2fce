"""The complaint taxonomy: the shipped default and the checks on a city's own file."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from maeul.services.civic.taxonomy import (
    DEFAULT_PATH,
    TaxonomyError,
    load_taxonomy,
    parse_sla,
    parse_taxonomy,
)

# categories.md: the codes and their departments are fixed for every helper
EXPECTED = {
    "road": "roads", "streetlight": "roads", "parking": "traffic", "waste": "resources",
    "noise": "environment", "water": "water", "parks": "parks", "transit": "traffic",
    "welfare": "welfare", "animals": "animals", "construction": "building",
    "safety": "safety", "air": "environment", "other": "civil",
}


@pytest.fixture()
def raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def test_default_has_the_fixed_codes_and_departments() -> None:
    tax = load_taxonomy()
    assert tax.codes == list(EXPECTED)
    assert {c: tax.category(c).department for c in tax.codes} == EXPECTED
    assert len(tax.departments) == 11
    assert tax.department_of("streetlight").name["ko"] == "도로과"
    assert tax.department_of("transit").name["en"] == "Traffic Administration Division"
    assert tax.fallback == "other"
    assert tax.confidence_threshold is not None and 0 < tax.confidence_threshold < 1


def test_default_examples_are_many_distinct_and_bilingual() -> None:
    tax = load_taxonomy()
    seen: set[str] = set()
    for cat in tax.categories:
        assert 20 <= len(cat.examples["ko"]) <= 35, cat.code
        assert 4 <= len(cat.examples["en"]) <= 6, cat.code
        assert cat.keywords["ko"] and cat.keywords["en"], cat.code
        assert cat.description["ko"] and cat.description["en"], cat.code
        for ex in cat.examples["ko"] + cat.examples["en"]:
            assert ex not in seen, ex
            seen.add(ex)


def test_default_slas_and_attributes() -> None:
    tax = load_taxonomy()
    assert tax.category("parking").sla == timedelta(hours=2)
    assert tax.category("road").sla_hours == 72
    assert tax.category("welfare").sla_hours <= 24
    attrs = {a["code"]: a for a in tax.category("parking").attributes}
    assert attrs["plate_number"]["datatype"] == "string"
    assert attrs["plate_number"]["required"] is False
    assert attrs["plate_number"]["description"]["ko"]
    assert {v["key"] for v in attrs["vehicle_type"]["values"]} >= {"car", "truck"}


@pytest.mark.parametrize(("value", "hours"), [
    ("P3D", 72), ("PT48H", 48), ("P1DT12H", 36), ("PT90M", 1.5), ("p2d", 48), (5, 5), (0.5, 0.5),
])
def test_parse_sla(value: object, hours: float) -> None:
    assert parse_sla(value).total_seconds() / 3600 == hours


@pytest.mark.parametrize("value", ["3 days", "P", "PT", "P1DT", "", -2, 0, True, None, "P0D"])
def test_parse_sla_rejects(value: object) -> None:
    with pytest.raises(TaxonomyError, match="sla"):
        parse_sla(value)


def test_unknown_department_is_named(raw: dict[str, Any]) -> None:
    raw["categories"][3]["department"] = "x"
    message = r"^categories\[3\]\.department: unknown department 'x'"
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(raw)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["categories"][1].update(code="street light"), r"categories\[1\]\.code"),
    (lambda d: d["categories"][2].update(code="road"), r"categories\[2\]\.code: duplicate"),
    (lambda d: d["categories"][0]["name"].pop("en"), r"categories\[0\]\.name\.en: missing"),
    (lambda d: d["categories"][0].pop("sla"), r"categories\[0\]\.sla: missing"),
    (lambda d: d["categories"][4].update(sla="soon"), r"categories\[4\]\.sla"),
    (lambda d: d["categories"][5].update(examples={"ko": [], "en": []}),
     r"categories\[5\]\.examples"),
    (lambda d: d["categories"][5]["examples"].update(ko=["ok", ""]),
     r"categories\[5\]\.examples\.ko\[1\]"),
    (lambda d: d["categories"][2]["attributes"][0].update(datatype="blob"),
     r"categories\[2\]\.attributes\[0\]\.datatype"),
    (lambda d: d["categories"][2]["attributes"][1].update(values=[]),
     r"categories\[2\]\.attributes\[1\]\.values"),
    (lambda d: d["categories"][2]["attributes"].append(d["categories"][2]["attributes"][0]),
     r"categories\[2\]\.attributes: duplicate"),
    (lambda d: d["categories"][2]["attributes"][0].update(datatype_description="x"),
     r"categories\[2\]\.attributes\[0\]\.datatype_description"),
    (lambda d: d.update(fallback="misc"), r"^fallback: 'misc'"),
    (lambda d: d.update(confidence_threshold=1.5), r"^confidence_threshold"),
    (lambda d: d.update(departments={}), r"^departments"),
    (lambda d: d["departments"]["roads"].update(contact=12), r"departments\.roads\.contact"),
    (lambda d: d.pop("city"), r"^city"),
    (lambda d: d.update(categories="road"), r"^categories"),
])
def test_bad_fields_are_named(raw: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(raw)
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(raw)


def test_taxonomy_error_is_a_value_error(raw: dict[str, Any]) -> None:
    raw["categories"][0]["department"] = "nowhere"
    with pytest.raises(ValueError):
        parse_taxonomy(raw)


def test_load_from_a_file_and_bad_files(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["categories"] = raw["categories"][:3]
    raw["fallback"] = "road"
    good = tmp_path / "city.json"
    good.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    tax = load_taxonomy(good)
    assert tax.codes == ["road", "streetlight", "parking"]
    with pytest.raises(KeyError, match="waste"):
        tax.category("waste")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid JSON"):
        load_taxonomy(broken)
    with pytest.raises(TaxonomyError, match="no such taxonomy file"):
        load_taxonomy(tmp_path / "absent.json")
