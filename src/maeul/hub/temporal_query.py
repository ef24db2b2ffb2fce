"""Temporal queries (ETSI GS CIM 009 v1.8 §5.7.3, §6.18.3.2, §6.23): which entities a query
over the temporal evolution selects, and the page of instances that goes back.

The store narrows by id, type and "has an instance in the window" (one indexed probe per
entity, see ``temporal_query_sql``); what SQL cannot evaluate portably (q, a type expression
with ``;`` or parentheses, geoQ, scopeQ) runs here, over the instances in the window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .compaction import View
from .core import Query
from .query import ENTITY_TIMESTAMPS, attrs_in, parse_q
from .store.base import Entity, HistoryRow, TemporalFilter
from .temporal import Temporal, TemporalOptions, content_range, cut_time, row_time, trim

Hide = Callable[[str], bool] | None


@dataclass
class TemporalSelection:
    """A temporal query: the store prefilter plus the predicates evaluated on the window."""

    flt: TemporalFilter
    # q and the type expression, over an entity whose attributes are the window's instances
    match: Callable[[Entity], bool] | None = None
    q_attrs: tuple[str, ...] = ()  # attribute IRIs that q reads
    scope_q: Callable[[list[str] | None], bool] | None = None
    geo: Callable[[Any], bool] | None = None
    geo_property: str | None = None
    types_allowed: Callable[[list[str]], bool] | None = None  # e.g. public types only
    # which attributes of an entity with these types the caller may not see
    hidden: Callable[[list[str]], Hide] = field(default=lambda types: None)
    current: Callable[[str], Entity | None] = field(default=lambda eid: None)

    @classmethod
    def of(
        cls, q: Query, flt: TemporalFilter, q_text: str | None,
        expand: Callable[[str], str],
    ) -> TemporalSelection:
        """From an entity Query as ``Api.build_query`` compiles it (one parser for both)."""
        q_attrs: set[str] = set()
        if q_text:
            q_attrs = {expand(a) for a in attrs_in(parse_q(q_text)) if a not in ENTITY_TIMESTAMPS}
        return cls(flt=flt, match=q.q, q_attrs=tuple(sorted(q_attrs)), scope_q=q.scope_q,
                   geo=q.geo, geo_property=q.geo_property)

    @property
    def filters(self) -> bool:
        return bool(self.match or self.scope_q or self.geo or self.types_allowed)

    def passes(self, store_history: Callable[[str, TemporalFilter], list[HistoryRow]],
               eid: str, types: list[str], hide: Hide) -> bool:
        """Whether the entity's evolution in the window satisfies q, geoQ and scopeQ: a term
        (or the geo-relation) holds when some instance in the window satisfies it."""
        if self.types_allowed is not None and not self.types_allowed(types):
            return False
        ent: Entity = {"id": eid, "type": types, "attrs": {}}
        wanted = set(self.q_attrs)
        if self.geo is not None and self.geo_property is not None:
            wanted.add(self.geo_property)
        if wanted:
            window = replace(self.flt, attrs=tuple(sorted(wanted)), last_n=None)
            for r in store_history(eid, window):
                if r.deleted_at is None and (hide is None or not hide(r.attr)):
                    ent["attrs"].setdefault(r.attr, []).append(r.doc)
        if self.match is not None and not self.match(ent):
            return False
        if self.geo is not None and self.geo_property is not None:
            insts = ent["attrs"].get(self.geo_property, [])
            if not any(self.geo(i.get("value")) for i in insts):
                return False
        if self.scope_q is not None:
            cur = self.current(eid)  # scope is not versioned: the entity's scope now
            if not self.scope_q(cur.get("scope") if cur else None):
                return False
        return True


def select(
    temporal: Temporal, tenant: str, sel: TemporalSelection, limit: int, offset: int,
    count: bool,
) -> tuple[list[tuple[str, list[str], Hide]], int]:
    """The page of matching (id, types, hide) and how many match (exact only with ``count``
    or when nothing but the store filters applies)."""
    cands: Iterator[tuple[str, list[str]]] = temporal.store.temporal_entities(tenant, sel.flt)
    if not sel.filters:
        every = list(cands)
        return [(e, t, sel.hidden(t)) for e, t in every[offset : offset + limit]], len(every)

    def history(eid: str, f: TemporalFilter) -> list[HistoryRow]:
        return temporal.store.history(tenant, eid, f)

    page: list[tuple[str, list[str], Hide]] = []
    total = 0
    for eid, types in cands:
        hide = sel.hidden(types)
        if not sel.passes(history, eid, types, hide):
            continue
        total += 1
        if offset < total <= offset + limit:
            page.append((eid, types, hide))
        elif total > offset + limit and not count:
            break
    return page, total


def render_page(
    temporal: Temporal, tenant: str, chosen: list[tuple[str, list[str], Hide]],
    flt: TemporalFilter, view: View, opts: TemporalOptions, *, keep_empty: bool,
) -> tuple[list[dict[str, Any]], list[tuple[str, list[str], list[str]]], str | None]:
    """Representations of the chosen entities, every one cut at the same time when the
    instance limit is reached anywhere, the reads to record and the Content-Range."""
    loaded = [(eid, types, temporal.rows(tenant, eid, flt, hide)) for eid, types, hide in chosen]
    if view.datasets is not None:
        # the datasetId filter: only these instances; an attribute without any is left out
        ds = view.datasets
        loaded = [(eid, types, {a: kept for a, rs in rows.items()
                                if (kept := [r for r in rs if r.doc.get("datasetId", "") in ds])})
                  for eid, types, rows in loaded]
    limit = opts.max_instances
    cuts = [c for _, _, rows in loaded if (c := cut_time(rows, limit, flt)) is not None]
    cut = (max(cuts) if flt.last_n else min(cuts)) if cuts else None
    out: list[dict[str, Any]] = []
    reads: list[tuple[str, list[str], list[str]]] = []
    times: list[str] = []
    for eid, types, rows in loaded:
        if cut is not None:
            rows = trim(rows, cut, limit, flt)
        if not rows and not keep_empty:
            continue  # nothing of it in the window, or nothing the caller may see
        rep, shown = temporal.render(eid, types, rows, flt, view, opts)
        out.append(rep)
        reads.append((eid, types, shown))
        for items in rows.values():
            times += [row_time(items[0], flt.timeproperty), row_time(items[-1], flt.timeproperty)]
    rng = None
    if cut is not None and times:
        rng = content_range(flt, cut, min(times), max(times))
    return out, reads, rng

