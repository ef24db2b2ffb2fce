"""The AI registry's entry model (Algorithmic Transparency Standard v0.3.1) and its rendering.

Entries use the standard's attribute names. Free text is bilingual: ``{"ko": ..., "en": ...}``
with at least one language; a record in the standard's form is rendered per language
(``lang``). Attributes the platform fills itself (``standard_version``, ``uuid``, ``lang``,
``publication_date``, ``last_change_date``, ``performance``) cannot be written by hand.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    model_validator,
)

from ..hub.errors import BadRequestData
from .http import validation_message

STANDARD = "Algorithmic Transparency Standard"
STANDARD_VERSION = "0.3.1"
LANGS = ("ko", "en")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

Status = Literal["planned", "design", "development", "pilot", "evaluation", "operational",
                 "retired"]
RiskCategory = Literal["minimal risk", "limited risk", "high risk", "unacceptable"]
Domain = Literal[
    "taxes",
    "housing, living and living environment",
    "culture, sports and leisure",
    "defence",
    "economy and entrepreneurship",
    "family, youth and households",
    "finance",
    "generic",
    "health and health care",
    "immigration and integration",
    "international collaboration and development aid",
    "agriculture, nature and food",
    "environment, spacial planning and water",  # sic: the standard's own spelling
    "education and science",
    "public safety",
    "government",
    "justice",
    "travel, living and working abroad",
    "subsidies, benefits and allowances",
    "traffic and transportation",
    "work and career",
]
STATUSES: tuple[str, ...] = get_args(Status)
RISK_CATEGORIES: tuple[str, ...] = get_args(RiskCategory)
DOMAINS: tuple[str, ...] = get_args(Domain)

# every attribute of the standard, in its order (metadata, basic, use case, data, algorithm,
# oversight); an exported record has exactly these keys plus ``x_maeul_id``
STANDARD_FIELDS = (
    "standard_version", "uuid", "lang", "publication_date", "last_change_date",
    "revision_date", "revision_note", "keywords",
    "name", "organization", "department", "country", "contact_email", "contact_phone",
    "contact_name", "description_short", "website", "status", "remark",
    "decision_making_process", "domain", "area", "goal", "impact", "risks", "risk_category",
    "proportionality", "lawful_basis", "documentation",
    "training_data", "source_data", "data_bias", "connected_data_sources",
    "DPIA_description", "DPIA_url",
    "description", "algorithm_type", "methods_and_models", "performance",
    "alternatives_considered", "product_information", "codebase_url", "product_page",
    "AIA_description", "AIA_url",
    "type", "monitoring", "human_intervention", "objection_procedure", "rollback",
)
# the standard marks these required; entries may start without them (``missing`` lists them)
STANDARD_REQUIRED = (
    "revision_date", "name", "organization", "department", "country", "contact_email",
    "description_short", "status", "decision_making_process", "domain", "area", "goal",
    "impact", "risks", "risk_category", "proportionality", "lawful_basis", "training_data",
    "source_data", "connected_data_sources", "algorithm_type", "type", "monitoring",
    "human_intervention", "objection_procedure", "rollback",
)
MANAGED = {
    "standard_version": "is always " + STANDARD_VERSION,
    "uuid": "is assigned when the entry is created",
    "lang": "is chosen when a record is exported (?lang=ko|en)",
    "publication_date": "is set when the entry is first published (status other than planned)",
    "last_change_date": "is set on every change",
    "performance": "comes from the system's evaluation command (Registry.record_evaluation), "
                   "not from a hand-typed value",
}


def _strip(v: Any) -> Any:
    return v.strip() if isinstance(v, str) else v


S100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
S150 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
S200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
S500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
S10K = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _one_language(self) -> _Text:
        if not any(getattr(self, lang) for lang in LANGS):
            raise ValueError("give the text in at least one language: ko, en")
        return self


class Text100(_Text):
    ko: S100 | None = None
    en: S100 | None = None


class Text150(_Text):
    ko: S150 | None = None
    en: S150 | None = None


class Text200(_Text):
    ko: S200 | None = None
    en: S200 | None = None


class Text500(_Text):
    ko: S500 | None = None
    en: S500 | None = None


class Text10k(_Text):
    ko: S10K | None = None
    en: S10K | None = None


Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000,
                                       pattern=r"^https?://\S+$")]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


def _risk(v: Any) -> Any:
    # the short names (minimal, limited, high) are accepted for the standard's values
    v = _strip(v)
    return f"{v} risk" if v in ("minimal", "limited", "high") else v


class EntryFields(BaseModel):
    """The attributes a person (or a declaring service) writes; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    # metadata
    revision_date: date | None = None
    revision_note: Text500 | None = None
    keywords: Text500 | None = None
    # basic information
    name: Text200
    organization: Text200
    department: Text200
    country: Text100 | None = None
    contact_email: Email
    contact_phone: Phone | None = None
    contact_name: S200 | None = None
    description_short: Text150
    website: Url | None = None
    status: Status
    remark: Text10k | None = None
    # use case
    decision_making_process: Text10k | None = None
    domain: Domain | None = None
    area: Text200 | None = None
    goal: Text10k | None = None
    impact: Text10k | None = None
    risks: Text10k | None = None
    risk_category: Annotated[RiskCategory, BeforeValidator(_risk)] | None = None
    proportionality: Text10k | None = None
    lawful_basis: Text10k | None = None
    documentation: Url | None = None
    # data
    training_data: Text10k | None = None
    source_data: Text10k | None = None
    data_bias: Text10k | None = None
    connected_data_sources: Text10k | None = None
    DPIA_description: Text10k | None = None
    DPIA_url: Url | None = None
    # algorithm
    description: Text10k | None = None
    algorithm_type: Literal["self-learning", "rule-based", "hybrid"] | None = None
    methods_and_models: Text10k | None = None
    alternatives_considered: Text10k | None = None
    product_information: Url | None = None
    codebase_url: Url | None = None
    product_page: Url | None = None
    AIA_description: Text10k | None = None
    AIA_url: Url | None = None
    # oversight
    type: Literal["descriptive", "diagnostic", "predictive", "prescriptive"] | None = None
    monitoring: Text10k | None = None
    human_intervention: Text10k | None = None
    objection_procedure: Text10k | None = None
    rollback: Text10k | None = None


EDITABLE = tuple(EntryFields.model_fields)


def refuse_managed(data: dict[str, Any]) -> None:
    for key, why in MANAGED.items():
        if key in data:
            raise BadRequestData(f"{key}: cannot be set by hand; it {why}")


def validate_fields(data: Any, *, allow_id: bool = False) -> dict[str, Any]:
    """The entry's attributes validated; BadRequestData names each bad field."""
    if not isinstance(data, dict):
        raise BadRequestData("a registry entry must be a JSON object")
    refuse_managed(data)
    body = {k: v for k, v in data.items() if not (allow_id and k == "id")}
    try:
        model = EntryFields.model_validate(body)
    except ValidationError as exc:
        raise BadRequestData(validation_message(exc)) from None
    out: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)  # no empty languages
    return out


def check_id(entry_id: Any) -> str:
    if not isinstance(entry_id, str) or not ID_RE.match(entry_id):
        raise BadRequestData("id: 1 to 100 letters, digits, '.', '_' or '-', starting with a "
                             "letter or digit")
    return entry_id


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON Merge Patch: objects merge (per language), null removes."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def fields_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The editable attributes of a stored entry."""
    return {k: doc[k] for k in EDITABLE if doc.get(k) is not None}


def digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def missing(doc: dict[str, Any]) -> list[str]:
    """Attributes the standard requires that the entry does not have yet."""
    return [k for k in STANDARD_REQUIRED if doc.get(k) in (None, "", {})]


def pick(value: Any, lang: str) -> Any:
    """One language of a bilingual text, falling back to the other language."""
    if not isinstance(value, dict):
        return value
    if value.get(lang):
        return value[lang]
    return next((value[other] for other in LANGS if value.get(other)), None)


def check_lang(lang: str | None) -> str | None:
    if lang is not None and lang not in LANGS:
        raise BadRequestData(f"lang: must be one of {', '.join(LANGS)}")
    return lang


def languages(doc: dict[str, Any]) -> list[str]:
    """The languages an entry is written in (those its name has)."""
    name = doc.get("name") or {}
    return [lang for lang in LANGS if name.get(lang)] or [LANGS[0]]


# -- rendering ------------------------------------------------------------------------------
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


def performance_text(evaluation: dict[str, Any] | None, lang: str) -> str | None:
    """The measured performance, written from the latest evaluation record."""
    if not evaluation:
        return None
    metrics = ", ".join(f"{k} {_num(v)}" for k, v in sorted(evaluation["metrics"].items()))
    day = str(evaluation["at"])[:10]
    if lang == "ko":
        return (f"{day}에 평가 명령 `{evaluation['command']}`(으)로 데이터 "
                f"'{evaluation['dataset']}'에서 측정: {metrics}")
    return (f"Measured on {day} by the evaluation command `{evaluation['command']}` on "
            f"dataset '{evaluation['dataset']}': {metrics}")


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def aia_text(assessment: dict[str, Any] | None, lang: str) -> str | None:
    """The maeul impact assessment's result as the standard's ``AIA_description``."""
    if not assessment:
        return None
    roman = ROMAN.get(int(assessment["level"]), "?")
    pct = f"{100 * float(assessment.get('ratio', 0)):.1f}%"
    day = str(assessment.get("assessed_at", ""))[:10]
    version = assessment.get("questionnaire_version", "")
    if lang == "ko":
        return (f"maeul 알고리즘 영향평가(질문지 {version}, {day}): 영향 등급 {roman}, "
                f"총점 {assessment['total']:g} / 최대 위험 점수 {assessment['max_raw']:g} "
                f"({pct})")
    return (f"maeul algorithmic impact assessment (questionnaire {version}, {day}): impact "
            f"level {roman}, total score {assessment['total']:g} of a maximum raw score of "
            f"{assessment['max_raw']:g} ({pct})")


def to_record(doc: dict[str, Any], lang: str, assessment: dict[str, Any] | None,
              public: bool = False) -> dict[str, Any]:
    """The entry as one record of the standard in ``lang`` (text falls back per field)."""
    rec: dict[str, Any] = {}
    for key in STANDARD_FIELDS:
        if key == "standard_version":
            value: Any = STANDARD_VERSION
        elif key == "lang":
            value = lang
        elif key == "last_change_date":
            value = str(doc.get("updated_at", ""))[:10] or None
        elif key in ("uuid", "publication_date"):
            value = doc.get(key)
        elif key == "performance":
            value = performance_text(doc.get("evaluation"), lang)
        elif key == "AIA_description":
            value = aia_text(assessment, lang) or pick(doc.get(key), lang)
        else:
            value = pick(doc.get(key), lang)
        rec[key] = value
    if public:
        # citizens see the department's contact, not the people behind it
        rec.pop("contact_name")
        rec.pop("contact_phone")
    rec["x_maeul_id"] = doc["id"]
    return rec


# -- code-declared entries ------------------------------------------------------------------
DECLARED: dict[str, dict[str, Any]] = {}
_generation = [0]


def declare(entry: dict[str, Any]) -> dict[str, Any]:
    """Declare a system's registry entry in code (``id`` plus the standard's attributes).

    Validated at once, so a bad declaration fails when its module is imported; the registry
    copies declarations into every tenant (see ``Registry.sync``). Returns the entry.
    """
    entry_id = entry.get("id")
    try:
        check_id(entry_id)
        fields = validate_fields(entry, allow_id=True)
    except BadRequestData as exc:
        raise ValueError(f"registry declaration {entry_id!r}: {exc.detail}") from None
    assert isinstance(entry_id, str)
    DECLARED[entry_id] = {"id": entry_id, "fields": fields, "hash": digest(fields)}
    _generation[0] += 1
    return entry


def declaration_generation() -> int:
    """Bumped by every ``declare``; a tenant synced at an older generation is synced again."""
    return _generation[0]
