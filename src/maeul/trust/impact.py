"""Trust layer: algorithmic impact assessment (scored the way Canada's AIA scores).

Storage contract (other components rely on it): a system's current assessment is a JSON
document in kv, kind ``assessment``, keyed by (tenant, system id), with at least ``level``
(1-4). ``Impact.oversight`` turns it into what the decision engine must enforce.

Scoring: raw = the weights of the chosen risk answers, summed; mitigation likewise over the
mitigation answers. A mitigation score of at least 80% of its maximum makes the total the raw
score less 15%, otherwise the total is the raw score. The level comes from total ÷ maximum
raw score: up to 25% level I, up to 50% II, up to 75% III, above that IV. Arithmetic is exact
(fractions), so a score that lands on a boundary gets the lower level.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..hub.entities import now_iso
from ..hub.errors import BadRequestData, ResourceNotFound
from ..hub.store.base import Tx
from .events import AssessmentScored, emit
from .jobs import Job

KIND = "assessment"
REGISTRY_KIND = "registry"  # maeul.trust.registry.KIND
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
LANGS = ("ko", "en")
REDUCTION = Fraction(15, 100)
MITIGATION_THRESHOLD = Fraction(80, 100)
LEVEL_BOUNDS = ((Fraction(1, 4), 1), (Fraction(1, 2), 2), (Fraction(3, 4), 3))


@dataclass(frozen=True)
class Oversight:
    """What the decision engine enforces for one system."""

    level: int | None  # None: not assessed yet
    auto_apply: bool  # levels I-II: may act automatically (monitoring and override)
    reviewers: int  # distinct human approvals needed before applying (0 when auto)
    obligations: list[str] = field(default_factory=list)


def oversight_for(level: int | None) -> Oversight:
    """Levels I-II act automatically; III needs one human approval, IV two reviewers.

    A system that has not been assessed is treated like level III: nothing applies without
    a human approval until the assessment is done.
    """
    if level in (1, 2):
        return Oversight(level, True, 0, ["monitoring", "human override"])
    if level == 4:
        return Oversight(level, False, 2, ["human approval of every decision", "two reviewers"])
    return Oversight(level, False, 1, ["human approval of every decision"])


# -- the questionnaire ----------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Option(_Strict):
    id: str = Field(min_length=1, max_length=64)
    text: dict[Literal["ko", "en"], str]
    weight: float = Field(ge=0)


class Question(_Strict):
    id: str = Field(min_length=1, max_length=100)
    section: str
    required: bool = True
    text: dict[Literal["ko", "en"], str]
    options: list[Option] = Field(min_length=2)

    @property
    def max_weight(self) -> Fraction:
        return max(_frac(o.weight) for o in self.options)


class Section(_Strict):
    id: str
    kind: Literal["risk", "mitigation"]
    title: dict[Literal["ko", "en"], str]


class Questionnaire(_Strict):
    """Questions with weighted options; each question belongs to a risk or mitigation section."""

    version: str
    title: dict[Literal["ko", "en"], str]
    description: dict[Literal["ko", "en"], str] = Field(default_factory=dict)
    sections: list[Section]
    questions: list[Question]

    @model_validator(mode="after")
    def _consistent(self) -> Questionnaire:
        kinds = {s.id for s in self.sections}
        seen: set[str] = set()
        for q in self.questions:
            if q.id in seen:
                raise ValueError(f"question {q.id} appears twice")
            seen.add(q.id)
            if q.section not in kinds:
                raise ValueError(f"question {q.id}: unknown section {q.section}")
            if len({o.id for o in q.options}) != len(q.options):
                raise ValueError(f"question {q.id}: option ids repeat")
        if self.max_raw <= 0:
            raise ValueError("the risk questions must allow a raw score above 0")
        return self

    def kind(self, q: Question) -> str:
        return next(s.kind for s in self.sections if s.id == q.section)

    @property
    def max_raw(self) -> Fraction:
        return sum((q.max_weight for q in self.questions if self.kind(q) == "risk"), Fraction(0))

    @property
    def max_mitigation(self) -> Fraction:
        return sum((q.max_weight for q in self.questions if self.kind(q) == "mitigation"),
                   Fraction(0))

    def view(self, lang: str | None = None) -> dict[str, Any]:
        """The questionnaire for clients: both languages, or one (``lang``)."""
        doc: dict[str, Any] = self.model_dump(mode="json")
        if lang is not None:
            doc = _pick_all(doc, lang)
        doc["max_raw"] = _num(self.max_raw)
        doc["max_mitigation"] = _num(self.max_mitigation)
        bounds: list[tuple[Fraction | None, int]] = [*LEVEL_BOUNDS, (None, 4)]
        doc["levels"] = [{"level": ROMAN[lv], "up_to_ratio": None if b is None else float(b),
                          "obligations": oversight_for(lv).obligations} for b, lv in bounds]
        return doc


def _pick_all(value: Any, lang: str) -> Any:
    if isinstance(value, dict):
        if value and set(value) <= set(LANGS):
            return value.get(lang) or next(iter(value.values()))
        return {k: _pick_all(v, lang) for k, v in value.items()}
    if isinstance(value, list):
        return [_pick_all(v, lang) for v in value]
    return value


def _frac(x: float) -> Fraction:
    return Fraction(str(x))  # the decimal as written, not the binary float


def _num(x: Fraction) -> float | int:
    return int(x) if x.denominator == 1 else round(float(x), 6)


def load_questionnaire(path: Path | None = None) -> Questionnaire:
    """The questionnaire in ``path``, or the shipped one."""
    if path is None:
        return shipped_questionnaire()
    return Questionnaire.model_validate(orjson.loads(path.read_bytes()))


@cache
def shipped_questionnaire() -> Questionnaire:
    raw = resources.files("maeul.trust").joinpath("data/aia_questionnaire.json").read_bytes()
    return Questionnaire.model_validate(orjson.loads(raw))


# -- scoring --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    raw: Fraction
    max_raw: Fraction
    mitigation: Fraction
    max_mitigation: Fraction
    mitigation_applied: bool
    total: Fraction
    level: int

    @property
    def ratio(self) -> Fraction:
        return self.total / self.max_raw

    def as_dict(self) -> dict[str, Any]:
        ov = oversight_for(self.level)
        return {"level": self.level, "level_roman": ROMAN[self.level], "raw": _num(self.raw),
                "max_raw": _num(self.max_raw), "mitigation": _num(self.mitigation),
                "max_mitigation": _num(self.max_mitigation),
                "mitigation_applied": self.mitigation_applied, "total": _num(self.total),
                "ratio": round(float(self.ratio), 6), "auto_apply": ov.auto_apply,
                "reviewers": ov.reviewers, "obligations": ov.obligations}


def level_for(ratio: Fraction) -> int:
    for bound, level in LEVEL_BOUNDS:
        if ratio <= bound:
            return level
    return 4


def check_answers(q: Questionnaire, answers: Any) -> dict[str, str]:
    """The answers as {question id: option id}; BadRequestData lists every problem."""
    if not isinstance(answers, dict):
        raise BadRequestData("answers: an object of question id to option id")
    by_id = {x.id: x for x in q.questions}
    problems = []
    bad: set[str] = set()
    out: dict[str, str] = {}
    for qid, choice in answers.items():
        question = by_id.get(qid)
        if question is None:
            problems.append(f"answers.{qid}: unknown question")
        elif choice is None:  # left unanswered on purpose
            continue
        elif not isinstance(choice, str) or choice not in {o.id for o in question.options}:
            bad.add(qid)
            problems.append(f"answers.{qid}: {choice!r} is not an option (choose one of "
                            f"{', '.join(o.id for o in question.options)})")
        else:
            out[qid] = choice
    unanswered = [x.id for x in q.questions if x.required and x.id not in out
                  and x.id not in bad]
    if unanswered:
        problems.append(f"answers: required questions not answered: {', '.join(unanswered)}")
    if problems:
        raise BadRequestData("; ".join(problems))
    return out


def score(q: Questionnaire, answers: Any) -> Score:
    """Score filled answers (validated first)."""
    return score_chosen(q, check_answers(q, answers))


def score_chosen(q: Questionnaire, chosen: dict[str, str]) -> Score:
    """Score answers that ``check_answers`` accepted."""
    raw = mitigation = Fraction(0)
    for question in q.questions:
        if question.id not in chosen:
            continue
        weight = _frac(next(o.weight for o in question.options if o.id == chosen[question.id]))
        if q.kind(question) == "risk":
            raw += weight
        else:
            mitigation += weight
    max_mit = q.max_mitigation
    applied = max_mit > 0 and mitigation >= MITIGATION_THRESHOLD * max_mit
    total = raw * (1 - REDUCTION) if applied else raw
    return Score(raw, q.max_raw, mitigation, max_mit, applied, total,
                 level_for(total / q.max_raw))


# -- the component --------------------------------------------------------------------------
class Impact:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any, questionnaire: Questionnaire | None = None) -> None:
        self.s = services
        self._questionnaire = questionnaire

    @property
    def questionnaire(self) -> Questionnaire:
        return self._questionnaire or shipped_questionnaire()

    def oversight(self, tenant: str, system_id: str) -> Oversight:
        doc = self.s.store.reader().get_json(KIND, tenant, system_id)
        return oversight_for(int(doc["level"]) if doc and doc.get("level") else None)

    def get(self, tenant: str, system_id: str) -> dict[str, Any]:
        """The system's current assessment; 404 when the system or its assessment is absent."""
        if self.s.trust.registry.get(tenant, system_id) is None:
            raise ResourceNotFound(f"registry entry {system_id} not found")
        doc = self.s.store.reader().get_json(KIND, tenant, system_id)
        if doc is None:
            raise ResourceNotFound(f"system {system_id} has not been assessed")
        return doc  # type: ignore[no-any-return]

    def assess(self, tenant: str, system_id: str, answers: Any, actor: str) -> dict[str, Any]:
        """Score the answers and store them as the system's assessment (audited)."""
        q = self.questionnaire
        chosen = check_answers(q, answers)
        result = score_chosen(q, chosen)
        self.s.trust.registry.ensure(tenant)  # declared systems exist before the check below

        def op(tx: Tx) -> dict[str, Any]:
            if tx.get_json(REGISTRY_KIND, tenant, system_id) is None:
                raise ResourceNotFound(f"registry entry {system_id} not found")
            prev = tx.get_json(KIND, tenant, system_id)
            history = list(prev.get("history", [])) if prev else []
            if prev:
                history.append({k: prev.get(k) for k in (
                    "level", "raw", "mitigation", "total", "ratio", "questionnaire_version",
                    "assessed_at", "actor")})
            doc = {"system": system_id, **result.as_dict(), "answers": chosen,
                   "questionnaire_version": q.version, "assessed_at": now_iso(),
                   "actor": actor, "history": history}
            tx.put_json(KIND, tenant, system_id, doc)
            emit(tx, AssessmentScored(tenant, actor, system_id, level=result.level,
                                      raw=float(result.raw), total=float(result.total),
                                      previous_level=int(prev["level"]) if prev else None))
            return doc

        doc: dict[str, Any] = self.s.store.write(op)
        return doc

    def jobs(self) -> list[Job]:
        return []


# -- command line ---------------------------------------------------------------------------
def read_answers(path: Path) -> Any:
    """The answers in a file: ``{"answers": {...}}`` or a flat {question: option} mapping."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read the file ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("the file must hold a JSON object of answers")
    if isinstance(data.get("answers"), dict):
        extra = sorted(set(data) - {"answers", "system", "questionnaire_version"})
        if extra:
            raise ValueError(f"unknown keys next to answers: {', '.join(extra)}")
        return data
    return {"answers": data}


def cli_score(settings: Any, args: argparse.Namespace) -> int:
    """``maeul impact score FILE``: the level, scores and obligations; exit 2 on a bad file."""
    q = shipped_questionnaire()
    try:
        filled = read_answers(args.file)
        version = filled.get("questionnaire_version")
        if version is not None and version != q.version:
            raise ValueError(f"questionnaire_version {version!r} does not match the shipped "
                             f"questionnaire {q.version!r}")
        result = score(q, filled["answers"])
    except ValueError as exc:
        print(f"maeul: {args.file}: {exc}", file=sys.stderr)
        return 2
    except BadRequestData as exc:
        print(f"maeul: {args.file}: {exc.detail}", file=sys.stderr)
        return 2
    out = {**result.as_dict(), "questionnaire_version": q.version}
    if args.json:
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(render_table(out))
    return 0


def render_table(s: dict[str, Any]) -> str:
    mit_pct = 100 * s["mitigation"] / s["max_mitigation"] if s["max_mitigation"] else 0.0
    reached = ("80% reached: raw score reduced by 15%" if s["mitigation_applied"]
               else "below 80%: no reduction")
    rows = [
        ("impact level", s["level_roman"]),
        ("raw risk score", f"{s['raw']:g} of {s['max_raw']:g}"),
        ("mitigation score", f"{s['mitigation']:g} of {s['max_mitigation']:g} "
                             f"({mit_pct:.1f}%; {reached})"),
        ("total score", f"{s['total']:g} ({100 * s['ratio']:.1f}% of the maximum raw score)"),
        ("questionnaire", s["questionnaire_version"]),
    ]
    lines = [f"{k:<18} {v}" for k, v in rows]
    lines.append("")
    lines.append(f"Obligations at level {s['level_roman']}:")
    lines.extend(f"  - {o}" for o in s["obligations"])
    if s["auto_apply"]:
        lines.append("  - may act automatically")
    else:
        lines.append(f"  - {s['reviewers']} distinct reviewer(s) approve before anything applies")
    return "\n".join(lines)
