"""Linked-entity retrieval (NGSI-LD v1.8 ``join`` and ``joinLevel``).

``join=inline`` nests each Relationship's target under it (``entity``; ``entityList`` for a
ListRelationship or a Relationship with several objects); ``join=flat`` returns the targets
as further entities after the ones asked for. ``joinLevel`` (default 1) is how many hops are
followed. A target is shown as the caller would see it when retrieving it directly: the
same visibility function strips attributes the caller may not see, an anonymous caller only
sees public types, and an expired transient entity is not shown. Only relationships that are
in the response are followed, so ``attrs``, ``pick`` and ``omit`` also choose which links.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .compaction import View
from .core import Hub, expired
from .errors import BadRequestData
from .store.base import Entity

MAX_JOIN_LEVEL = 8  # bounds the work one request can cause; deeper is refused, not cut
# linked-entity projections below one entity: (pick, omit), each relationship name -> the
# projection tree of its target (see validate.projection_tree), None when there is none
Proj = tuple[dict[str, Any] | None, dict[str, Any] | None]


@dataclass(frozen=True)
class Join:
    mode: str  # "flat" | "inline"
    level: int


def parse_join(join: Any, level: Any) -> Join | None:
    """The join asked for by the ``join``/``joinLevel`` parameters; None for no join."""
    depth = 1
    if level is not None and level != "":
        if isinstance(level, bool) or not isinstance(level, int | str):
            raise BadRequestData("joinLevel must be a positive integer")
        try:
            depth = int(level)
        except ValueError:
            raise BadRequestData(f"joinLevel must be a positive integer, got {level!r}") from None
        if depth < 1:
            raise BadRequestData(f"joinLevel must be a positive integer, got {level!r}")
        if depth > MAX_JOIN_LEVEL:
            raise BadRequestData(f"joinLevel may be at most {MAX_JOIN_LEVEL}, got {depth}")
    if join is None or join in ("", "@none"):
        return None
    if join not in ("flat", "inline"):
        raise BadRequestData(f"join must be flat, inline or @none, got {join!r}")
    return Join(str(join), depth)


def _targets(inst: dict[str, Any]) -> tuple[list[str], bool]:
    """The entity ids an attribute instance links to, and whether it links to a list."""
    typ = inst.get("type")
    if typ == "Relationship":
        obj = inst.get("object")
        if isinstance(obj, list):
            return [o for o in obj if isinstance(o, str)], True
        return ([obj] if isinstance(obj, str) else []), False
    if typ == "ListRelationship":
        items = inst.get("objectList") or []
        ids = [i.get("object") if isinstance(i, dict) else i for i in items]
        return [i for i in ids if isinstance(i, str)], True
    return [], False


class Linker:
    """Follows the Relationships of entities shown to one caller (one request's worth)."""

    def __init__(
        self,
        hub: Hub,
        tenant: str,
        join: Join,
        view: View,
        visible: Callable[[Entity], Entity],
        allowed: Callable[[Entity], bool],
    ) -> None:
        self.hub = hub
        self.tenant = tenant
        self.join = join
        self.visible = visible
        self.allowed = allowed
        # joined entities show every attribute the caller may see, in the request's format
        self.view = View(view.ctx, fmt=view.fmt, lang=view.lang, sys_attrs=view.sys_attrs)
        self.proj: Proj = (view.linked_pick, view.linked_omit)
        self._cache: dict[str, Entity | None] = {}
        self.shown: dict[str, Entity] = {}  # joined entities put into the response
        self._flat_shown: dict[str, dict[str, Any]] = {}

    def _sub(self, proj: Proj, name: str) -> tuple[View, Proj]:
        """How the target of relationship ``name`` is shown, and the projections below it."""
        sp = proj[0].get(name) if proj[0] else None
        so = proj[1].get(name) if proj[1] else None
        if sp is None and so is None:
            return self.view, (None, None)
        v = self.view
        view = View(v.ctx, fmt=v.fmt, lang=v.lang, sys_attrs=v.sys_attrs,
                    pick=set(sp) if sp else None,
                    omit={k for k, t in so.items() if t is None} if so else None)
        return view, ({k: t for k, t in sp.items() if t is not None} if sp else None,
                      {k: t for k, t in so.items() if t is not None} if so else None)

    def render(self, ent: Entity) -> dict[str, Any]:
        """A joined entity of a flat answer as it is shown (with its projection)."""
        shown = self._flat_shown.get(ent["id"])
        return shown if shown is not None else self.view.entity(ent)

    def apply(self, pairs: list[tuple[Entity, dict[str, Any]]]) -> list[Entity]:
        """Join ``pairs`` (entity, what is shown of it): inline nests in place and returns
        nothing; flat returns the linked entities to add after them."""
        if self.join.mode == "flat":
            return self.flat(pairs)
        for ent, out in pairs:
            self.inline(ent, out)
        return []

    def reads(self) -> list[tuple[str, list[str], list[str]]]:
        """The joined entities shown, as (id, types, attributes) for the read records."""
        return [(e["id"], e["type"], list(e["attrs"])) for e in self.shown.values()]

    # -- fetching --------------------------------------------------------------------------
    def _fetch(self, ids: Iterable[str]) -> None:
        missing = list(dict.fromkeys(i for i in ids if i not in self._cache))
        if not missing:
            return
        found = self.hub.store.reader().get_entities(self.tenant, missing)
        for eid in missing:
            ent = found.get(eid)
            ok = ent is not None and not expired(ent) and self.allowed(ent)
            self._cache[eid] = self.visible(ent) if ok and ent is not None else None

    def _get(self, eid: str) -> Entity | None:
        ent = self._cache.get(eid)
        if ent is not None:
            self.shown[eid] = ent
        return ent

    def _links(self, ent: Entity, out: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
        """(compacted name, instances) of the relationship attributes that ``out`` shows."""
        links = []
        for iri, insts in ent["attrs"].items():
            name = self.view.ctx.compact_iri(iri)
            if name in out and any(_targets(i)[0] for i in insts):
                links.append((name, insts))
        return links

    # -- flat ------------------------------------------------------------------------------
    def flat(self, pairs: list[tuple[Entity, dict[str, Any]]]) -> list[Entity]:
        """The entities linked from ``pairs`` (entity, what was shown of it), breadth first,
        each once and none of those already in ``pairs``."""
        have = {e["id"] for e, _ in pairs}
        frontier = [(e, out, self.proj) for e, out in pairs]
        linked: list[Entity] = []
        for _ in range(self.join.level):
            ids: list[str] = []
            how: dict[str, tuple[View, Proj]] = {}
            for ent, out, proj in frontier:
                for name, insts in self._links(ent, out):
                    sub = self._sub(proj, name)
                    for inst in insts:
                        for t in _targets(inst)[0]:
                            if t not in have:
                                ids.append(t)
                                how.setdefault(t, sub)
            ids = list(dict.fromkeys(ids))
            self._fetch(ids)
            have.update(ids)
            found = [e for i in ids if (e := self._get(i)) is not None]
            linked += found
            frontier = []
            for e in found:
                view, below = how[e["id"]]
                shown = view.entity(e)
                if view is not self.view:
                    self._flat_shown[e["id"]] = shown
                frontier.append((e, shown, below))
        return linked

    # -- inline ----------------------------------------------------------------------------
    def inline(self, ent: Entity, out: dict[str, Any]) -> None:
        """Nest the targets of the relationships shown in ``out`` into it (in place)."""
        self._inline(ent, out, 1, frozenset({ent["id"]}), self.proj)

    def _inline(self, ent: Entity, out: dict[str, Any], depth: int, path: frozenset[str],
                proj: Proj) -> None:
        links = self._links(ent, out)
        self._fetch(t for _n, insts in links for i in insts for t in _targets(i)[0])
        for name, insts in links:
            shown = out[name]
            items = [shown] if len(insts) == 1 else list(shown)
            view, below = self._sub(proj, name)
            for idx, inst in enumerate(insts):
                ids, many = _targets(inst)
                nested = {t: n for t in ids if t not in path
                          and (n := self._nested(t, depth, path | {t}, view, below)) is not None}
                if nested:
                    items[idx] = self._attach(items[idx], ids, nested, many)
            out[name] = items[0] if len(insts) == 1 else items

    def _nested(self, eid: str, depth: int, path: frozenset[str], view: View, proj: Proj
                ) -> dict[str, Any] | None:
        target = self._get(eid)
        if target is None:
            return None
        shown = view.entity(target)
        if depth < self.join.level:
            self._inline(target, shown, depth + 1, path, proj)
        return shown

    def _attach(self, item: Any, ids: list[str], nested: dict[str, dict[str, Any]],
                many: bool) -> Any:
        if self.view.fmt == "keyValues":
            # a simplified relationship is only its target id: the target takes its place
            return [nested.get(t, t) for t in ids] if many else nested[ids[0]]
        if not isinstance(item, dict):  # pragma: no cover - concise keeps relationships objects
            item = {"object": item}
        if many:
            return {**item, "entityList": [nested[t] for t in ids if t in nested]}
        return {**item, "entity": nested[ids[0]]}


__all__ = ["Join", "Linker", "MAX_JOIN_LEVEL", "parse_join"]
