"""The store interface: what the hub core needs from a backend, and how a backend is picked."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ..qprefilter import PreNode

Entity = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class HistoryRow:
    """One recorded attribute instance: the temporal API's unit of history."""

    entity_id: str
    attr: str
    dataset_id: str  # "" for the default instance
    instance_id: str
    observed_at: str | None  # canonical UTC timestamp, or None when the instance has none
    recorded_at: str  # canonical UTC timestamp of the change (modifiedAt)
    doc: dict[str, Any]
    # canonical UTC timestamp when this row records a deletion (the doc then holds NGSI-LD Null)
    deleted_at: str | None = None


@dataclass(frozen=True)
class EntityFilter:
    """A storage-neutral prefilter; the core evaluates q, scopeQ and exact geometry after it."""

    types: tuple[str, ...] | None = None
    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # on the `location` GeoProperty
    # a necessary condition derived from q (maeul.hub.qprefilter); backends may ignore it
    q: PreNode | None = None
    # how many entities that pass the whole query the caller will take (offset + limit);
    # None: all of them. A hint for the plan, never a limit: backends may ignore it
    want: int | None = None


@dataclass(frozen=True)
class TemporalFilter:
    types: tuple[str, ...] | None = None
    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    attrs: tuple[str, ...] | None = None
    timeproperty: str = "observedAt"  # observedAt | modifiedAt | createdAt | deletedAt
    timerel: str | None = None  # before | after | between
    time_at: str | None = None
    end_time_at: str | None = None
    last_n: int | None = None


@dataclass
class OutboxItem:
    seq: int
    tenant: str
    subscription_id: str
    payload: dict[str, Any]
    attempts: int
    endpoint: dict[str, Any] = field(default_factory=dict)


class Tx(Protocol):
    """Operations available inside one atomic write (and, for the read part, outside one)."""

    def ensure_tenant(self, tenant: str) -> None: ...
    def tenant_exists(self, tenant: str) -> bool: ...
    def get_entity(self, tenant: str, eid: str) -> Entity | None: ...
    def get_entities(self, tenant: str, ids: list[str]) -> dict[str, Entity]: ...
    def prefetch(self, tenant: str, ids: list[str]) -> None:
        """Hint that these entities are about to be read and written in this transaction; a
        backend may lock and load them together (PostgreSQL: one round trip, fixed order)."""
    def put_entity(self, tenant: str, entity: Entity, new: bool) -> None: ...
    def delete_entity(self, tenant: str, eid: str) -> bool: ...
    def add_history(self, tenant: str, rows: list[HistoryRow], types: list[str]) -> None: ...
    def delete_history(
        self,
        tenant: str,
        eid: str,
        attr: str | None = None,
        dataset_id: str | None = None,
        instance_id: str | None = None,
    ) -> int: ...
    def delete_history_before(
        self,
        tenant: str,
        type_iri: str,
        before: str,
        entity_id: str | None = None,
        spare_prefix: str | None = None,
    ) -> int:
        """Delete history rows of entities of ``type_iri`` whose time (observedAt, else the
        recording time) is before the canonical timestamp ``before``; rows whose datasetId
        starts with ``spare_prefix`` stay. Returns how many rows went."""
        ...
    def put_json(self, kind: str, tenant: str, key: str, doc: dict[str, Any]) -> None: ...
    def get_json(self, kind: str, tenant: str, key: str) -> dict[str, Any] | None: ...
    def delete_json(self, kind: str, tenant: str, key: str) -> bool: ...
    def list_json(self, kind: str, tenant: str | None) -> list[tuple[str, str, dict[str, Any]]]: ...
    def enqueue(self, tenant: str, subscription_id: str, payload: dict[str, Any]) -> None: ...
    def audit(
        self, tenant: str, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None: ...


class Store(ABC):
    """A backend. Reads go straight to it; every change runs as one atomic ``write`` call."""

    url: str

    @abstractmethod
    def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` atomically; return once its effects are durable (or raise its error)."""

    async def run_write(self, fn: Callable[[], T]) -> T:
        """Await ``fn``, a call that makes its changes through ``write``, from an event loop.

        The default runs it on anyio's worker threads (as Starlette's ``run_in_threadpool``);
        a backend may run it closer to its writer."""
        from anyio import to_thread

        return await to_thread.run_sync(fn)

    @abstractmethod
    def reader(self) -> Tx:
        """A read-only view usable from the calling thread."""

    @abstractmethod
    def query_entities(self, tenant: str, flt: EntityFilter) -> Iterator[Entity]:
        """Entities passing the prefilter, in a stable order (creation order)."""

    @abstractmethod
    def count_types(self, tenant: str) -> dict[str, int]:
        """Entity count per (expanded) type."""

    @abstractmethod
    def attribute_summary(self, tenant: str) -> dict[str, set[str]]:
        """Expanded attribute name -> the entity types that carry it."""

    @abstractmethod
    def temporal_entities(
        self, tenant: str, flt: TemporalFilter
    ) -> Iterator[tuple[str, list[str]]]:
        """(id, types) of entities with history, filtered by id/type, in id order; with a
        timerel or attrs, only entities with at least one such instance in the window."""

    @abstractmethod
    def history(self, tenant: str, eid: str, flt: TemporalFilter) -> list[HistoryRow]:
        """History rows of one entity, oldest first (lastN: the newest N of each attribute)."""

    @abstractmethod
    def claim_outbox(self, limit: int, now: str) -> list[OutboxItem]:
        """Due notifications, oldest first."""

    @abstractmethod
    def finish_outbox(self, seq: int, ok: bool, retry_at: str | None) -> None:
        """Remove a delivered (or abandoned) item, or schedule its retry."""

    @abstractmethod
    def tenants(self) -> list[str]: ...

    @abstractmethod
    def audit_log(self, tenant: str | None, limit: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def seal_audit(self, limit: int = 5000) -> int:
        """Hash-chain up to ``limit`` unsealed audit records; how many were sealed."""

    @abstractmethod
    def audit_chain(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Sealed audit records with chain position > ``after``, in chain order."""

    @abstractmethod
    def close(self) -> None: ...


def open_store(url: str, **options: Any) -> Store:
    """The backend for a URL scheme; optional drivers load only when that scheme is used."""
    scheme = url.split("://", 1)[0]
    modules = {"sqlite": "sqlite", "postgresql": "postgres", "postgres": "postgres"}
    if scheme not in modules:
        raise ValueError(f"unknown store URL scheme {scheme!r}: use sqlite:/// or postgresql://")
    if modules[scheme] == "postgres":
        try:
            importlib.import_module("psycopg")
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError(
                "the PostgreSQL store needs the 'postgres' extra: pip install 'maeul[postgres]'"
            ) from exc
    module = importlib.import_module(f"maeul.hub.store.{modules[scheme]}")
    store: Store = module.open(url, **options)
    return store
