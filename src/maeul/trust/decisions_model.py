"""The decision engine's input models: a proposal and the reviewers' requests.

Every model forbids unknown fields and checks types strictly, so a typo or a wrong type in a
service's proposal is a 400 naming the field, never a silently ignored value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..hub.entities import is_uri, parse_time
from ..hub.errors import BadRequestData

KIND = "proposal"
OPEN_KIND = "proposal.open"  # small index of pending/approved proposals for the jobs
ENGINE = "decisions"  # the actor of transitions nobody asked for (auto-apply, expiry, recovery)
STATUSES = ("pending", "approved", "applied", "rejected", "expired", "failed", "rolledBack")
OPEN = ("pending", "approved")
WHY_MAX = 2000
REASON_MAX = 2000
EFFECT_MAX_BYTES = 8 * 1024
ACTION_MAX_BYTES = 32 * 1024
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
STRICT = ConfigDict(extra="forbid", strict=True)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_expired(doc: dict[str, Any], now: datetime) -> bool:
    return now >= parse_time(doc["expiresAt"], "expiresAt")


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A proposal as the API shows it: the engine's undo record stays inside."""
    out = {k: v for k, v in doc.items() if k != "undo"}
    if "undo" in doc:
        out["undoAttrs"] = sorted(doc["undo"].get("names", []))
    return out


def _json_size(value: Any) -> int:
    return len(orjson.dumps(value))


def _uri(value: str) -> str:
    if len(value) > 256 or not is_uri(value):
        raise ValueError(f"{value[:80]!r} is not an entity id (a URI of at most 256 chars)")
    return value


def _time(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_time(value, "time")
    except BadRequestData:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 date-time") from None
    return value


class EvidenceLink(BaseModel):
    """A hub entity the proposal rests on, optionally narrowed to attributes and a time range."""

    model_config = STRICT
    entity: str
    attrs: list[str] | None = Field(None, max_length=50)
    start: str | None = None
    end: str | None = None

    @field_validator("entity")
    @classmethod
    def _entity(cls, v: str) -> str:
        return _uri(v)

    @field_validator("attrs")
    @classmethod
    def _attrs(cls, v: list[str] | None) -> list[str] | None:
        for name in v or []:
            if not name or len(name) > 256:
                raise ValueError("attribute names must be 1 to 256 characters")
        return v

    @field_validator("start", "end")
    @classmethod
    def _times(cls, v: str | None) -> str | None:
        return _time(v)

    @model_validator(mode="after")
    def _range(self) -> EvidenceLink:
        if self.start and self.end and parse_time(self.end, "end") < parse_time(
            self.start, "start"
        ):
            raise ValueError("end is before start")
        return self


class Evidence(BaseModel):
    """What the proposal rests on: hub entities (with time ranges) and the model version."""

    model_config = STRICT
    links: list[EvidenceLink] = Field(default_factory=list, max_length=100)
    modelVersion: str | None = Field(None, min_length=1, max_length=100)


class Action(BaseModel):
    """What to do. ``hub.patch`` takes ``attrs``; an applier registered in code takes ``params``."""

    model_config = STRICT
    kind: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")
    attrs: dict[str, Any] | None = None
    format: Literal["normalized", "keyValues"] = "normalized"
    params: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _size(self) -> Action:
        if _json_size(self.model_dump(exclude_none=True)) > ACTION_MAX_BYTES:
            raise ValueError(f"the action is larger than {ACTION_MAX_BYTES} bytes")
        return self


def _targets(v: str | list[str]) -> list[str]:
    items = [v] if isinstance(v, str) else v
    if not 1 <= len(items) <= 100:
        raise ValueError("give 1 to 100 target entity ids")
    return [_uri(t) for t in items]


class ProposalIn(BaseModel):
    """A service's proposal: what (action), where (target), why, evidence, effect, expiry."""

    model_config = STRICT
    id: str | None = Field(None, pattern=ID_PATTERN)
    system: str = Field(min_length=1, max_length=200)
    action: Action
    target: str | list[str]
    why: str = Field(min_length=1, max_length=WHY_MAX)
    evidence: Evidence = Field(default_factory=lambda: Evidence.model_validate({}))
    expectedEffect: dict[str, Any] | None = None
    expiresAt: str | None = None
    # a service may ask for more oversight than its level demands (never for less)
    review: Literal["required"] | None = None

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | list[str]) -> list[str]:
        return _targets(v)

    @field_validator("expectedEffect")
    @classmethod
    def _effect(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and _json_size(v) > EFFECT_MAX_BYTES:
            raise ValueError(f"larger than {EFFECT_MAX_BYTES} bytes")
        return v

    @field_validator("expiresAt")
    @classmethod
    def _expires(cls, v: str | None) -> str | None:
        return _time(v)

    def targets(self) -> list[str]:
        return _targets(self.target)


class ApproveIn(BaseModel):
    model_config = STRICT
    reason: str | None = Field(None, max_length=REASON_MAX)


class ReasonIn(BaseModel):
    """Reject and rollback: a reason is required."""

    model_config = STRICT
    reason: str = Field(min_length=1, max_length=REASON_MAX)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a reason is required")
        return v


class ModifyIn(ReasonIn):
    """A reviewer's change of the action (and optionally the target), with a reason."""

    action: Action
    target: str | list[str] | None = None
    approve: bool = False

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | list[str] | None) -> list[str] | None:
        return None if v is None else _targets(v)

    def targets(self) -> list[str] | None:
        return None if self.target is None else _targets(self.target)
