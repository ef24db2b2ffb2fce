"""Typed audit events of the trust layer. Each class's docstring is its documentation.

An event is appended to the hash-chained audit log in the same transaction as the change it
describes (``emit(tx, event)``), so there is never a change without its record. Details hold
identifiers, names and counts; never personal data or attribute values.

The hub itself records, with plain actions: ``entity.create``, ``entity.replace``,
``entity.merge``, ``entity.update``, ``entity.append``, ``entity.delete`` (and the attribute
operations), ``temporal.*``, ``subscription.*``, ``device.*``, ``key.create``, ``key.revoke``,
``tenant.publicTypes``; their detail lists attribute names only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..hub.store.base import Tx

EVENTS: dict[str, type[Event]] = {}


@dataclass(frozen=True)
class Event:
    """Base class: who (actor) did what (action) to which target, in which tenant."""

    action: ClassVar[str] = ""
    tenant: str
    actor: str
    target: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.action:
            if cls.action in EVENTS:
                raise TypeError(f"duplicate audit action {cls.action!r}")
            EVENTS[cls.action] = cls

    def detail(self) -> dict[str, Any]:
        skip = {"tenant", "actor", "target"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in skip}


def emit(tx: Tx, event: Event) -> None:
    """Append ``event`` to the audit log inside the caller's transaction."""
    tx.audit(event.tenant, event.actor, event.action, event.target, event.detail())


# -- registry -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegistryEntryCreated(Event):
    """A system was added to the AI registry (target: the entry id)."""

    action: ClassVar[str] = "registry.create"
    status: str = ""


@dataclass(frozen=True)
class RegistryEntryUpdated(Event):
    """A registry entry changed; ``fields`` names the changed top-level fields."""

    action: ClassVar[str] = "registry.update"
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegistryEntryRetired(Event):
    """A registry entry's status became ``retired``."""

    action: ClassVar[str] = "registry.retire"


@dataclass(frozen=True)
class FeedbackReceived(Event):
    """A citizen sent feedback or an objection about a system (target: the entry id)."""

    action: ClassVar[str] = "registry.feedback"
    kind: str = "feedback"
    feedback_id: str = ""
    department: str = ""


# -- impact assessment ----------------------------------------------------------------------
@dataclass(frozen=True)
class AssessmentScored(Event):
    """An impact assessment was (re-)scored (target: the system id)."""

    action: ClassVar[str] = "impact.score"
    level: int = 0
    raw: float = 0.0
    total: float = 0.0
    previous_level: int | None = None


# -- decisions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProposalSubmitted(Event):
    """A service submitted a proposal (target: the proposal id)."""

    action: ClassVar[str] = "proposal.submit"
    system: str = ""
    level: int = 0
    route: str = ""  # auto | queue


@dataclass(frozen=True)
class ProposalApproved(Event):
    """A reviewer approved a proposal (possibly one of two needed)."""

    action: ClassVar[str] = "proposal.approve"
    approvals: int = 1
    needed: int = 1


@dataclass(frozen=True)
class ProposalRejected(Event):
    """A reviewer rejected a proposal, with a reason."""

    action: ClassVar[str] = "proposal.reject"


@dataclass(frozen=True)
class ProposalModified(Event):
    """A reviewer changed a proposal's action before approving it."""

    action: ClassVar[str] = "proposal.modify"


@dataclass(frozen=True)
class ProposalApplied(Event):
    """A proposal's action was applied to the city."""

    action: ClassVar[str] = "proposal.apply"
    automatic: bool = False


@dataclass(frozen=True)
class ProposalExpired(Event):
    """A proposal passed its expiry before it could apply."""

    action: ClassVar[str] = "proposal.expire"


@dataclass(frozen=True)
class ProposalFailed(Event):
    """Applying a proposal failed; ``error`` is the error's class name."""

    action: ClassVar[str] = "proposal.fail"
    error: str = ""


@dataclass(frozen=True)
class ProposalRolledBack(Event):
    """An applied proposal was rolled back."""

    action: ClassVar[str] = "proposal.rollback"


# -- privacy --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SensitiveRead(Event):
    """A caller read sensitive attributes (target: entity id); names only, never values."""

    action: ClassVar[str] = "privacy.read"
    purpose: str = ""
    attrs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RetentionApplied(Event):
    """The retention job deleted or aggregated history of one entity type (target: type)."""

    action: ClassVar[str] = "privacy.retention"
    deleted: int = 0
    aggregated: int = 0
    before: str = ""


@dataclass(frozen=True)
class OriginalDecrypted(Event):
    """An encrypted original text was decrypted for a caller with the purpose."""

    action: ClassVar[str] = "privacy.decrypt"
    purpose: str = ""


# -- KPIs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KpiComputed(Event):
    """The KPI job computed the KPIs of one tenant; ``kpis`` names them."""

    action: ClassVar[str] = "kpi.compute"
    kpis: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KpiDefinitionChanged(Event):
    """A KPI definition was created, changed or removed (target: KPI id)."""

    action: ClassVar[str] = "kpi.define"
    change: str = "update"


# -- privacy by design ----------------------------------------------------------------------
@dataclass(frozen=True)
class TextMasked(Event):
    """Personal data was masked in citizens' text at ingest (target: entity id); ``kinds``
    names what was found (name, phone, rrn, email, address, plate), never the text."""

    action: ClassVar[str] = "privacy.mask"
    attrs: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    original_kept: bool = False


# -- civic desk -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ComplaintFiled(Event):
    """A citizen's report was filed as a service request (target: its entity id), routed
    by the model (``routed_by: "model"``, with its confidence and version) or by the
    citizen's own choice of service (``"citizen"``). ``linked_to`` names the open request a
    duplicate report was linked to instead of being filed twice."""

    action: ClassVar[str] = "civic.file"
    category: str = ""
    department: str = ""
    routed_by: str = "model"
    confidence: float | None = None
    needs_confirmation: bool = False
    model: str = ""
    linked_to: str | None = None


@dataclass(frozen=True)
class ComplaintRerouted(Event):
    """A person changed a request's category (target: entity id): an operator's correction
    or a citizen's confirmation between the model's top choices. The routed case teaches the
    classifier."""

    action: ClassVar[str] = "civic.reroute"
    from_category: str = ""
    to_category: str = ""
    by: str = "operator"


@dataclass(frozen=True)
class ComplaintStatusChanged(Event):
    """An operator opened or closed a request (target: entity id)."""

    action: ClassVar[str] = "civic.status"
    status: str = ""


@dataclass(frozen=True)
class QuestionAnswered(Event):
    """The desk answered or refused a citizen's question (target: the desk). Only counts and
    document names are kept, never the question's text."""

    action: ClassVar[str] = "civic.answer"
    refused: bool = False
    generated: bool = False
    documents: list[str] = field(default_factory=list)
