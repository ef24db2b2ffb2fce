"""The privacy policy: attribute classes, identifiers, purposes, text rules and retention.

The policy is JSON validated by the pydantic models below (documented in
docs/trust-privacy.md). Type and attribute keys are short names ("CareHousehold") or expanded
IRIs; a short name matches every IRI whose last segment is that name.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

AttrClass = Literal["public", "personal", "sensitive"]
Category = Literal["health", "welfare", "location-trace", "contact"]
_PURPOSE = r"^[a-z][a-z0-9-]{0,62}$"
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
CLASS_RANK = {"public": 0, "personal": 1, "sensitive": 2}


class PolicyError(ValueError):
    """The policy file is missing, not JSON, or breaks a rule; the message names the field."""


def parse_duration(text: str) -> timedelta:
    """ISO 8601 duration; a year counts 365 days and a month 30."""
    m = _DURATION.match(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P30D or PT1H")
    g = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
    days = g["y"] * 365 + g["mo"] * 30 + g["w"] * 7 + g["d"]
    td = timedelta(days=days, hours=g["h"], minutes=g["mi"], seconds=g["s"])
    if td.total_seconds() <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return td


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              frozen=True)


def _purposes(v: list[str]) -> list[str]:
    for p in v:
        if not re.match(_PURPOSE, p):
            raise ValueError(f"purpose {p!r} must be lower-case letters, digits and '-'")
    return sorted(set(v))


class TextRule(_Model):
    """A free-text attribute written by citizens."""

    mask: bool = True
    keep_original: bool = False
    max_length: int = Field(10_000, ge=1, le=1_000_000)
    purposes: list[str] | None = None  # who may decrypt the original (default: the type's)

    @field_validator("purposes")
    @classmethod
    def _check_purposes(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _purposes(v)

    @model_validator(mode="after")
    def _original_needs_mask(self) -> TextRule:
        if self.keep_original and not self.mask:
            raise ValueError("keepOriginal needs mask: an unmasked text is its own original")
        return self


class AttributeRule(_Model):
    """How one attribute is classified and transformed at ingest."""

    class_: AttrClass = Field("public", alias="class")
    category: Category | None = None
    identifier: bool = False  # a personal identifier: pseudonymised at ingest
    keep_raw: bool = False  # identifier only: keep the raw value, add the pseudonym beside it
    text: TextRule | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AttributeRule:
        if self.class_ == "sensitive" and self.category is None:
            raise ValueError("a sensitive attribute needs a category: health, welfare, "
                             "location-trace, contact")
        if self.class_ != "sensitive" and self.category is not None:
            raise ValueError("category is only for sensitive attributes")
        if self.keep_raw and not self.identifier:
            raise ValueError("keepRaw is only for identifier attributes")
        if self.identifier and self.text is not None:
            raise ValueError("an attribute is either an identifier or a text, not both")
        return self


class RetentionRule(_Model):
    """History older than ``older_than`` is deleted, or aggregated per ``period`` first."""

    older_than: str
    action: Literal["delete", "aggregate"]
    period: str = "P1D"
    method: Literal["avg", "sum", "min", "max", "count"] = "avg"

    @field_validator("older_than", "period")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class TypeRule(_Model):
    """The rules of one entity type."""

    description: str = ""
    attributes: dict[str, AttributeRule] = Field(default_factory=dict)
    purposes: list[str] = Field(default_factory=list)  # who may read sensitive attributes
    retention: RetentionRule | None = None

    @field_validator("purposes")
    @classmethod
    def _check_purposes(cls, v: list[str]) -> list[str]:
        return _purposes(v)

    @model_validator(mode="after")
    def _sensitive_needs_purpose(self) -> TypeRule:
        for name, a in self.attributes.items():
            if name in ("id", "type", "scope", "@context"):
                raise ValueError(f"{name!r} is not an attribute")
            if a.class_ == "sensitive" and not self.purposes:
                raise ValueError(f"attribute {name} is sensitive but the type lists no purposes "
                                 "that may read it")
        return self


class PolicyModel(_Model):
    """A whole policy file."""

    version: Literal[1] = 1
    description: str = ""
    types: dict[str, TypeRule] = Field(default_factory=dict)


# -- resolved rules --------------------------------------------------------------------------
def local_name(iri: str) -> str:
    return re.split(r"[/#:]", iri.rstrip("/#"))[-1]


def matches(key: str, iri: str) -> bool:
    return key == iri if ("/" in key or ":" in key) else local_name(iri) == key


@dataclass(frozen=True)
class AttrRule:
    """An attribute's resolved rule, with the purposes that may read it when sensitive."""

    iri: str
    cls: str
    category: str | None
    identifier: bool
    keep_raw: bool
    text: TextRule | None
    purposes: frozenset[str]
    type_name: str


@dataclass
class Rules:
    """The resolved rules for one list of entity types (one entity)."""

    types: list[str]
    names: list[str]  # the policy keys that matched
    keyed: list[tuple[str, AttributeRule, frozenset[str], str]] = field(default_factory=list)
    _memo: dict[str, AttrRule | None] = field(default_factory=dict)

    def rule(self, iri: str) -> AttrRule | None:
        """The strictest rule that applies to an attribute IRI, or None (public)."""
        if iri in self._memo:
            return self._memo[iri]
        best = self._resolve(iri)
        if len(self._memo) < 10_000:
            self._memo[iri] = best
        return best

    def _resolve(self, iri: str) -> AttrRule | None:
        best: AttrRule | None = None
        for key, a, purposes, tname in self.keyed:
            if not matches(key, iri):
                continue
            cand = AttrRule(iri, a.class_, a.category, a.identifier, a.keep_raw, a.text,
                            purposes, tname)
            if best is None or CLASS_RANK[cand.cls] > CLASS_RANK[best.cls]:
                best = cand
            elif CLASS_RANK[cand.cls] == CLASS_RANK[best.cls] and cand.cls == "sensitive":
                # declared sensitive by two types: both types' purposes must agree
                best = AttrRule(iri, best.cls, best.category, best.identifier or cand.identifier,
                                best.keep_raw and cand.keep_raw, best.text or cand.text,
                                best.purposes & cand.purposes, best.type_name)
        return best


class Policy:
    """A validated policy with per-type lookups (cached; thread-safe)."""

    def __init__(self, model: PolicyModel, source: str = "built-in") -> None:
        self.model = model
        self.source = source
        self._cache: dict[tuple[str, ...], Rules] = {}
        self._lock = threading.Lock()

    def rules(self, types: list[str]) -> Rules:
        key = tuple(types)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = Rules(list(types), [])
        for name, rule in self.model.types.items():
            if any(matches(name, t) for t in types):
                out.names.append(name)
                purposes = frozenset(rule.purposes)
                for akey, a in rule.attributes.items():
                    out.keyed.append((akey, a, purposes, name))
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = out
        return out

    def type_rule(self, type_iri: str) -> list[tuple[str, TypeRule]]:
        return [(n, r) for n, r in self.model.types.items() if matches(n, type_iri)]

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model.model_dump(by_alias=True, exclude_none=True)
        return data


def load_policy(path: Path | None) -> Policy:
    """The policy at ``path``, or the built-in one; PolicyError names the bad field."""
    if path is None:
        text = resources.files("maeul.trust").joinpath("data/privacy_policy.json").read_text(
            encoding="utf-8")
        source = "built-in"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"privacy policy {path}: cannot read it ({exc.strerror})") from None
        source = str(path)
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "policy") -> Policy:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"privacy policy {source}: not JSON ({exc})") from None
    try:
        model = PolicyModel.model_validate(data)
    except ValidationError as exc:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "policy"
            parts.append(f"{loc}: {e['msg']}")
        raise PolicyError(f"privacy policy {source}: " + "; ".join(parts)) from None
    return Policy(model, source)
