"""The complaint taxonomy: categories (Open311 services), their departments and examples.

A taxonomy is a JSON file a city edits; ``load_taxonomy`` checks every field and raises
``TaxonomyError`` naming the first bad one (``categories[3].department: unknown department
'x'``). The shipped default (``data/taxonomy.json``) is a Korean city with 14 categories and
11 departments. Categories double as Open311 service definitions (``service_code`` = ``code``,
``attributes`` = the service definition's attributes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).parent / "data" / "taxonomy.json"
LANGS = ("ko", "en")
DATATYPES = frozenset(
    {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
)
_CODE = re.compile(r"^[a-z0-9_-]+$")
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?)?$"
)


class TaxonomyError(ValueError):
    """A taxonomy file is malformed; the message starts with the field's path."""


@dataclass(frozen=True)
class Department:
    id: str
    name: dict[str, str]
    contact: str | None = None


@dataclass(frozen=True)
class Category:
    """One complaint category; ``sla`` is the target time to first action."""

    code: str
    name: dict[str, str]
    description: dict[str, str]
    examples: dict[str, tuple[str, ...]]
    department: str
    sla: timedelta
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)
    group: dict[str, str] | None = None
    # Open311 attributes as plain dicts (code, datatype, required, description, values,
    # optional datatype_description): the service definition's wire form, field for field
    attributes: tuple[dict[str, Any], ...] = ()

    @property
    def sla_hours(self) -> float:
        return self.sla.total_seconds() / 3600.0


@dataclass(frozen=True)
class Taxonomy:
    city: dict[str, str]
    departments: dict[str, Department]
    categories: tuple[Category, ...]
    fallback: str
    confidence_threshold: float | None = None

    @property
    def codes(self) -> list[str]:
        """Category codes in file order."""
        return [c.code for c in self.categories]

    def category(self, code: str) -> Category:
        """The category with ``code``; ``KeyError`` when there is none."""
        for c in self.categories:
            if c.code == code:
                return c
        raise KeyError(f"unknown category {code!r}")

    def department_of(self, code: str) -> Department:
        """The department that handles category ``code``."""
        return self.departments[self.category(code).department]


def parse_sla(value: Any, where: str = "sla") -> timedelta:
    """An SLA as ISO 8601 duration (``P3D``, ``PT48H``, ``P1DT12H``) or a number of hours."""
    if isinstance(value, bool):
        raise TaxonomyError(f"{where}: expected an ISO 8601 duration or hours, got {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise TaxonomyError(f"{where}: must be positive, got {value!r}")
        return timedelta(hours=float(value))
    if isinstance(value, str):
        m = _DURATION.match(value.strip().upper())
        if m and any(m.group(k) for k in ("d", "h", "m")) and not value.upper().endswith("T"):
            td = timedelta(
                days=float(m.group("d") or 0),
                hours=float(m.group("h") or 0),
                minutes=float(m.group("m") or 0),
            )
            if td > timedelta(0):
                return td
    raise TaxonomyError(f"{where}: expected an ISO 8601 duration like 'P3D' or 'PT48H' "
                        f"or a number of hours, got {value!r}")


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TaxonomyError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaxonomyError(f"{where}: expected a non-empty string")
    return value.strip()


def _bilingual(value: Any, where: str, *, required: bool = True) -> dict[str, str]:
    obj = _obj(value, where)
    out: dict[str, str] = {}
    for lang in LANGS:
        if lang in obj:
            out[lang] = _text(obj[lang], f"{where}.{lang}")
        elif required:
            raise TaxonomyError(f"{where}.{lang}: missing")
    return out


def _string_lists(value: Any, where: str, *, need: bool) -> dict[str, tuple[str, ...]]:
    obj = _obj(value, where)
    out: dict[str, tuple[str, ...]] = {}
    for lang in LANGS:
        items = obj.get(lang, [])
        if not isinstance(items, list):
            raise TaxonomyError(f"{where}.{lang}: expected a list of strings")
        out[lang] = tuple(_text(t, f"{where}.{lang}[{i}]") for i, t in enumerate(items))
    if need and not any(out.values()):
        raise TaxonomyError(f"{where}: needs at least one example")
    return out


def _attribute(value: Any, where: str) -> dict[str, Any]:
    obj = _obj(value, where)
    code = _text(obj.get("code"), f"{where}.code")
    if not _CODE.match(code):
        raise TaxonomyError(f"{where}.code: {code!r} must match [a-z0-9_-]+")
    datatype = obj.get("datatype")
    if datatype not in DATATYPES:
        raise TaxonomyError(f"{where}.datatype: {datatype!r} is not one of {sorted(DATATYPES)}")
    required = obj.get("required", False)
    if not isinstance(required, bool):
        raise TaxonomyError(f"{where}.required: expected true or false")
    values: list[dict[str, Any]] = []
    raw = obj.get("values", [])
    if not isinstance(raw, list):
        raise TaxonomyError(f"{where}.values: expected a list")
    for i, v in enumerate(raw):
        vo = _obj(v, f"{where}.values[{i}]")
        key = _text(vo.get("key"), f"{where}.values[{i}].key")
        values.append({"key": key, "name": _bilingual(vo.get("name"), f"{where}.values[{i}].name")})
    if datatype.endswith("valuelist") and not values:
        raise TaxonomyError(f"{where}.values: a {datatype} needs values")
    out: dict[str, Any] = {
        "code": code, "datatype": datatype, "required": required,
        "description": _bilingual(obj.get("description"), f"{where}.description"),
        "values": values,
    }
    if "datatype_description" in obj:
        out["datatype_description"] = _bilingual(obj["datatype_description"],
                                                 f"{where}.datatype_description")
    return out


def _category(value: Any, where: str, departments: Mapping[str, Department]) -> Category:
    obj = _obj(value, where)
    code = _text(obj.get("code"), f"{where}.code")
    if not _CODE.match(code):
        raise TaxonomyError(f"{where}.code: {code!r} must match [a-z0-9_-]+")
    dept = _text(obj.get("department"), f"{where}.department")
    if dept not in departments:
        raise TaxonomyError(f"{where}.department: unknown department {dept!r}")
    if "sla" not in obj:
        raise TaxonomyError(f"{where}.sla: missing")
    attrs_raw = obj.get("attributes", [])
    if not isinstance(attrs_raw, list):
        raise TaxonomyError(f"{where}.attributes: expected a list")
    attrs = tuple(_attribute(a, f"{where}.attributes[{i}]") for i, a in enumerate(attrs_raw))
    if len({a["code"] for a in attrs}) != len(attrs):
        raise TaxonomyError(f"{where}.attributes: duplicate attribute codes")
    return Category(
        code=code,
        name=_bilingual(obj.get("name"), f"{where}.name"),
        description=_bilingual(obj.get("description"), f"{where}.description"),
        examples=_string_lists(obj.get("examples"), f"{where}.examples", need=True),
        department=dept,
        sla=parse_sla(obj["sla"], f"{where}.sla"),
        keywords=_string_lists(obj.get("keywords", {}), f"{where}.keywords", need=False),
        group=_bilingual(obj["group"], f"{where}.group") if "group" in obj else None,
        attributes=attrs,
    )


def parse_taxonomy(data: Any) -> Taxonomy:
    """Validate an already-decoded taxonomy document."""
    top = _obj(data, "taxonomy")
    city = _bilingual(top.get("city"), "city")
    depts_raw = _obj(top.get("departments"), "departments")
    if not depts_raw:
        raise TaxonomyError("departments: needs at least one department")
    departments: dict[str, Department] = {}
    for did, d in depts_raw.items():
        where = f"departments.{did}"
        if not _CODE.match(did):
            raise TaxonomyError(f"{where}: id must match [a-z0-9_-]+")
        dobj = _obj(d, where)
        contact = dobj.get("contact")
        if contact is not None and not isinstance(contact, str):
            raise TaxonomyError(f"{where}.contact: expected a string")
        departments[did] = Department(did, _bilingual(dobj.get("name"), f"{where}.name"),
                                      contact)
    cats_raw = top.get("categories")
    if not isinstance(cats_raw, list) or len(cats_raw) < 2:
        raise TaxonomyError("categories: expected a list of at least two categories")
    categories = tuple(_category(c, f"categories[{i}]", departments)
                       for i, c in enumerate(cats_raw))
    seen: set[str] = set()
    for i, c in enumerate(categories):
        if c.code in seen:
            raise TaxonomyError(f"categories[{i}].code: duplicate code {c.code!r}")
        seen.add(c.code)
    fallback = _text(top.get("fallback"), "fallback")
    if fallback not in seen:
        raise TaxonomyError(f"fallback: {fallback!r} is not a category code")
    threshold = top.get("confidence_threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                or not 0.0 <= threshold <= 1.0:
            raise TaxonomyError("confidence_threshold: expected a number between 0 and 1")
        threshold = float(threshold)
    return Taxonomy(city, departments, categories, fallback, threshold)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy file; ``None`` loads the shipped default."""
    p = DEFAULT_PATH if path is None else Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TaxonomyError(f"{p}: no such taxonomy file") from exc
    except json.JSONDecodeError as exc:
        raise TaxonomyError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return parse_taxonomy(data)
