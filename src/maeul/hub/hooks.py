"""What other components plug into the hub: change listeners (subscriptions, history, the
trust layer's originals, the map's layer cache), ingest hooks (pseudonyms, text masking) and
access guards (purpose-bound reads), with the helpers that combine guards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .store.base import Entity, Tx


class ChangeListener(Protocol):
    """Receives every committed-with-it change inside the write transaction."""

    def changed(
        self,
        tx: Tx,
        tenant: str,
        before: Entity | None,
        after: Entity | None,
        attrs: set[str],
        trigger: str,
    ) -> None: ...


class IngestHook(Protocol):
    """Rewrites incoming attribute instances in place before they are stored (the trust
    layer pseudonymises identifiers and masks free text here); may raise BadRequestData."""

    def incoming(
        self,
        tx: Tx,
        tenant: str,
        actor: str,
        eid: str,
        types: list[str],
        attrs: dict[str, list[dict[str, Any]]],
    ) -> None: ...


class AccessGuard(Protocol):
    """Decides which attributes a caller may see, and which reads must be recorded."""

    def hides(
        self, tenant: str, caller: Any, types: list[str]
    ) -> Callable[[str], bool] | None:
        """A predicate over attribute IRIs the caller may not see; None: sees them all."""
        ...

    def reads(
        self, tenant: str, caller: Any, shown: list[tuple[str, list[str], list[str]]]
    ) -> Callable[[Tx], None] | None:
        """What to write (an audit record) for entities shown as (id, types, attrs)."""
        ...


def guard_hides(
    guards: list[AccessGuard], tenant: str, caller: Any, types: list[str]
) -> Callable[[str], bool] | None:
    """The combined ``hides`` predicate of ``guards`` (None when nothing is hidden)."""
    preds = [p for g in guards if (p := g.hides(tenant, caller, types))]
    if not preds:
        return None
    return preds[0] if len(preds) == 1 else (lambda iri: any(p(iri) for p in preds))


def strip_attrs(ent: Entity, hide: Callable[[str], bool]) -> Entity:
    """``ent`` without the attributes ``hide`` names (``ent`` itself when none)."""
    attrs = {k: v for k, v in ent["attrs"].items() if not hide(k)}
    return ent if len(attrs) == len(ent["attrs"]) else {**ent, "attrs": attrs}
