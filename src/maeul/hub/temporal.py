"""Temporal API logic: history to temporal representations, aggregation, instance edits."""

from __future__ import annotations

import copy
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .compaction import View
from .entities import META, NULL_URI, SYS, canonical_time, now_iso, parse_time
from .errors import BadRequestData, ResourceNotFound
from .hooks import IngestHook
from .store.base import Entity, HistoryRow, Store, TemporalFilter, Tx

AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 durations in weeks, days, hours, minutes, seconds (no months or years)."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT"):
        raise BadRequestData(f"aggrPeriodDuration {text!r} is not an ISO 8601 duration like PT1H")
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    try:
        return timedelta(weeks=g["w"], days=g["d"], hours=g["h"], minutes=g["m"],
                         seconds=g["s"])
    except OverflowError:
        raise BadRequestData(f"aggrPeriodDuration {text!r} is too long") from None


@dataclass
class TemporalOptions:
    fmt: str = "normalized"  # normalized | temporalValues | aggregatedValues | concise
    aggr_methods: tuple[str, ...] = ()
    aggr_period: timedelta | None = None
    max_instances: int = 1000


def time_filter(
    timerel: str | None, time_at: str | None, end_time_at: str | None
) -> tuple[str | None, str | None, str | None]:
    """Validated, canonical timerel parameters."""
    if timerel is None:
        if time_at is not None:
            raise BadRequestData("timeAt needs timerel")
        return None, None, None
    if timerel not in ("before", "after", "between"):
        raise BadRequestData("timerel must be before, after or between")
    if time_at is None:
        raise BadRequestData("timerel needs timeAt")
    for name, value in (("timeAt", time_at), ("endTimeAt", end_time_at)):
        if value is not None and "T" not in str(value).upper():
            raise BadRequestData(f"{name} must be a date-time, not a date: {value!r}")
    t1 = canonical_time(time_at, "timeAt")
    t2 = None
    if timerel == "between":
        if end_time_at is None:
            raise BadRequestData("timerel=between needs endTimeAt")
        t2 = canonical_time(end_time_at, "endTimeAt")
        if t2 <= t1:
            raise BadRequestData("endTimeAt must be after timeAt")
    return timerel, t1, t2


def _value_of(doc: dict[str, Any]) -> Any:
    typ = doc.get("type")
    if typ == "Relationship":
        return doc.get("object")
    if typ == "LanguageProperty":
        return doc.get("languageMap")
    if typ == "VocabProperty":
        return doc.get("vocab")
    if typ == "ListProperty":
        return doc.get("valueList")
    if typ == "ListRelationship":
        return doc.get("objectList")
    if typ == "JsonProperty":
        return doc.get("json")
    return doc.get("value")


_WRAPPED = {"LanguageProperty": "languageMap", "VocabProperty": "vocab",
            "JsonProperty": "json"}
_VALUES_KEY = {
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
    "JsonProperty": "jsons",
}


def _aggregate(method: str, vals: list[Any]) -> Any:
    nums = [v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
    if method == "totalCount":
        return len(vals)
    if method == "distinctCount":
        return len({repr(v) for v in vals})
    if not nums:
        return None
    if method == "sum":
        return sum(nums)
    if method == "avg":
        return sum(nums) / len(nums)
    if method == "min":
        return min(nums)
    if method == "max":
        return max(nums)
    if method == "sumsq":
        return sum(n * n for n in nums)
    mean = sum(nums) / len(nums)
    return math.sqrt(sum((n - mean) ** 2 for n in nums) / len(nums))


class Temporal:
    """Reads and edits entity history."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # the same hooks as Hub.ingest_hooks, for instances written through the temporal API
        self.ingest_hooks: list[IngestHook] = []

    def rows(
        self, tenant: str, eid: str, flt: TemporalFilter,
        hide: Callable[[str], bool] | None = None,
    ) -> dict[str, list[HistoryRow]]:
        """One entity's history rows per attribute IRI, oldest first, without hidden ones."""
        by_attr: dict[str, list[HistoryRow]] = {}
        for r in self.store.history(tenant, eid, flt):
            if hide is None or not hide(r.attr):
                by_attr.setdefault(r.attr, []).append(r)
        return by_attr

    def render(
        self,
        eid: str,
        types: list[str],
        by_attr: dict[str, list[HistoryRow]],
        flt: TemporalFilter,
        view: View,
        opts: TemporalOptions,
    ) -> tuple[dict[str, Any], list[str]]:
        """The temporal representation of these rows and the attribute IRIs it shows."""
        ctx = view.ctx
        out: dict[str, Any] = {"id": eid}
        ctypes = [ctx.compact_iri(t) for t in types]
        out["type"] = ctypes[0] if len(ctypes) == 1 else ctypes
        shown: list[str] = []
        for iri, items in by_attr.items():
            name = ctx.compact_iri(iri)
            if not items or (view.pick is not None and name not in view.pick) or (
                view.omit is not None and name in view.omit
            ):
                continue
            shown.append(iri)
            if opts.fmt in ("temporalValues", "aggregatedValues"):
                # one series per datasetId, the default instance first
                groups: dict[str, list[HistoryRow]] = {}
                for r in items:
                    groups.setdefault(r.doc.get("datasetId", ""), []).append(r)
                series = []
                for ds in sorted(groups, key=lambda d: d != ""):
                    one = (self._values(groups[ds], ctx) if opts.fmt == "temporalValues"
                           else self._aggregated(groups[ds], flt, opts))
                    if ds:
                        one = {"type": one.pop("type"), "datasetId": ds, **one}
                    series.append(one)
                out[name] = series[0] if len(series) == 1 else series
            else:
                insts = []
                for r in items:
                    a = view.attribute(r.doc)
                    if isinstance(a, dict):
                        a = {k: v for k, v in a.items() if k not in SYS or view.sys_attrs}
                        a["instanceId"] = r.instance_id
                        if view.sys_attrs:
                            a["modifiedAt"] = r.recorded_at
                    insts.append(a)
                out[name] = insts
        if view.pick is not None:
            out = {k: v for k, v in out.items() if k in view.pick}
        if view.omit is not None:
            out = {k: v for k, v in out.items() if k not in view.omit}
        return out, shown

    @staticmethod
    def _values(items: list[HistoryRow], ctx: Any) -> dict[str, Any]:
        typ = items[0].doc.get("type", "Property")
        key = _VALUES_KEY.get(typ, "values")
        member = _WRAPPED.get(typ)
        series = []
        for r in items:
            value = _value_of(r.doc)
            if member is not None:
                # 4.5.9: these values keep their member name ({"languageMap": ...})
                if typ == "VocabProperty" and value != NULL_URI:
                    value = ([ctx.compact_value_vocab(v) for v in value]
                             if isinstance(value, list) else ctx.compact_value_vocab(value))
                value = {member: value}
            series.append([value, r.doc.get("observedAt") or r.deleted_at or r.recorded_at])
        return {"type": typ, key: series}

    @staticmethod
    def _aggregated(
        items: list[HistoryRow], flt: TemporalFilter, opts: TemporalOptions
    ) -> dict[str, Any]:
        typ = items[0].doc.get("type", "Property")
        methods = opts.aggr_methods or AGGR_METHODS
        items = [r for r in items if r.deleted_at is None]  # a deletion is not a value
        out: dict[str, Any] = {"type": typ}
        if not items:
            return {**out, **{m: [] for m in methods}}
        times = [parse_time(row_time(r, flt.timeproperty), "time") for r in items]
        start = parse_time(flt.time_at, "timeAt") if flt.time_at else min(times)
        end = (
            parse_time(flt.end_time_at, "endTimeAt")
            if flt.end_time_at
            else max(times) + timedelta(microseconds=1)
        )
        period = opts.aggr_period
        buckets: dict[int, list[Any]] = {}
        for t, r in zip(times, items, strict=True):
            idx = 0 if period is None or period.total_seconds() == 0 else int(
                (t - start) / period
            )
            buckets.setdefault(idx, []).append(_value_of(r.doc))
        for m in methods:
            series = []
            for idx in sorted(buckets):
                if period is None or period.total_seconds() == 0:
                    b0, b1 = start, end
                else:
                    b0 = start + period * idx
                    b1 = b0 + period
                series.append([_aggregate(m, buckets[idx]), _fmt(b0), _fmt(b1)])
            out[m] = series
        return out

    # -- writes ----------------------------------------------------------------------------
    def add(
        self, tenant: str, eid: str, types: list[str] | None,
        attrs: dict[str, list[dict[str, Any]]], actor: str, must_exist: bool,
    ) -> bool:
        """Add instances; returns True when the temporal entity was new."""

        def op(tx: Tx) -> bool:
            from .store.sqlbase import SqlTx

            assert isinstance(tx, SqlTx)
            exists = tx.temporal_exists(tenant, eid)
            if must_exist and not exists:
                raise ResourceNotFound(f"temporal entity {eid} not found")
            tx.ensure_tenant(tenant)
            now = now_iso()
            ent_types = types
            if ent_types is None:
                row = tx.x(
                    "SELECT types FROM temporal_entities WHERE tenant = ? AND id = ?",
                    (tenant, eid),
                ).fetchone()
                from .store.sqlbase import loads

                ent_types = loads(row[0]) if row else []
            incoming = attrs
            if self.ingest_hooks:
                incoming = copy.deepcopy(attrs)
                for hook in self.ingest_hooks:
                    hook.incoming(tx, tenant, actor, eid, ent_types or [], incoming)
            rows = []
            for iri, insts in incoming.items():
                for inst in insts:
                    doc = copy.deepcopy(inst)
                    doc["createdAt"] = doc["modifiedAt"] = now
                    obs = doc.get("observedAt")
                    rows.append(HistoryRow(
                        eid, iri, doc.get("datasetId", ""),
                        f"urn:ngsi-ld:attribute:instance:{uuid.uuid4()}",
                        canonical_time(obs) if obs else None, now, doc,
                    ))
            tx.add_history(tenant, rows, ent_types or [])
            if not rows:
                tx.x(
                    "INSERT INTO temporal_entities(tenant, id, types) VALUES (?, ?, ?)"
                    " ON CONFLICT (tenant, id) DO NOTHING",
                    (tenant, eid, _dumps(ent_types or [])),
                )
            tx.audit(tenant, actor, "temporal.add", eid, {"attrs": sorted(attrs)})
            return not exists

        return bool(self.store.write(op))

    def delete(
        self, tenant: str, eid: str, actor: str, attr: str | None = None,
        dataset_id: str | None = None, instance_id: str | None = None,
    ) -> None:
        def op(tx: Tx) -> None:
            from .store.sqlbase import SqlTx

            assert isinstance(tx, SqlTx)
            if not tx.temporal_exists(tenant, eid):
                raise ResourceNotFound(f"temporal entity {eid} not found")
            n = tx.delete_history(tenant, eid, attr, dataset_id, instance_id)
            if attr is not None and n == 0:
                raise ResourceNotFound("no matching attribute instance")
            tx.audit(tenant, actor, "temporal.delete", eid, {"attr": attr or "*"})

        self.store.write(op)

    def modify_instance(
        self, tenant: str, eid: str, attr: str, instance_id: str,
        patch: dict[str, Any], actor: str,
    ) -> None:
        def op(tx: Tx) -> None:
            from .store.sqlbase import SqlTx, dumps, loads

            assert isinstance(tx, SqlTx)
            row = tx.x(
                "SELECT doc FROM history WHERE tenant = ? AND entity_id = ? AND attr = ?"
                " AND instance_id = ?", (tenant, eid, attr, instance_id),
            ).fetchone()
            if row is None:
                raise ResourceNotFound(f"instance {instance_id} not found")
            doc = loads(row[0])
            change = patch
            if self.ingest_hooks:
                trow = tx.x("SELECT types FROM temporal_entities WHERE tenant = ? AND id = ?",
                            (tenant, eid)).fetchone()
                change = copy.deepcopy(patch)
                for hook in self.ingest_hooks:
                    hook.incoming(tx, tenant, actor, eid, loads(trow[0]) if trow else [],
                                  {attr: [change]})
            for k, v in change.items():
                if k in META or k.startswith("http"):
                    doc[k] = v
            doc["modifiedAt"] = now_iso()
            obs = doc.get("observedAt")
            tx.x(
                "UPDATE history SET doc = ?, observed_at = ? WHERE tenant = ? AND entity_id = ?"
                " AND attr = ? AND instance_id = ?",
                (dumps(doc), canonical_time(obs) if obs else None, tenant, eid, attr,
                 instance_id),
            )
            tx.audit(tenant, actor, "temporal.patch", eid, {"attr": attr})

        self.store.write(op)


def row_time(r: HistoryRow, timeproperty: str) -> str:
    """The time a row is ordered and windowed by (the stores' ``COALESCE(col, recorded_at)``)."""
    if timeproperty == "observedAt":
        return r.observed_at or r.recorded_at
    if timeproperty == "deletedAt":
        return r.deleted_at or r.recorded_at
    return r.recorded_at


def cut_time(by_attr: dict[str, list[HistoryRow]], limit: int, flt: TemporalFilter) -> str | None:
    """Where the instance limit cuts this history: the time at which the first attribute
    reaches ``limit`` instances (the newest such time with lastN); None when nothing is cut."""
    cut: str | None = None
    for items in by_attr.values():
        if len(items) <= limit:
            continue
        if flt.last_n:
            t = row_time(items[-limit], flt.timeproperty)
            cut = t if cut is None else max(cut, t)
        else:
            t = row_time(items[limit - 1], flt.timeproperty)
            cut = t if cut is None else min(cut, t)
    return cut


def trim(
    by_attr: dict[str, list[HistoryRow]], cut: str, limit: int, flt: TemporalFilter
) -> dict[str, list[HistoryRow]]:
    """Every attribute cut at the same time (6.3.10), so that the next page is one request
    starting at the Content-Range end; at most ``limit`` instances each."""
    out: dict[str, list[HistoryRow]] = {}
    for iri, items in by_attr.items():
        if flt.last_n:
            kept = [r for r in items if row_time(r, flt.timeproperty) >= cut][-limit:]
        else:
            kept = [r for r in items if row_time(r, flt.timeproperty) <= cut][:limit]
        if kept:
            out[iri] = kept
    return out


def content_range(flt: TemporalFilter, cut: str, oldest: str, newest: str) -> str:
    """The Content-Range of an answer cut at ``cut`` (6.3.10): from where the query window
    starts (or the first instance returned) to the cut; with lastN, newest first."""
    if flt.last_n:
        start = (flt.end_time_at if flt.timerel == "between" else
                 flt.time_at if flt.timerel == "before" else newest)
        return f"date-time {start}-{cut}/{flt.last_n}"
    start = flt.time_at if flt.timerel in ("after", "between") and flt.time_at else oldest
    return f"date-time {start}-{cut}/*"


_NULL_MEMBER: dict[str, tuple[str, Any]] = {
    "Relationship": ("object", NULL_URI),
    "LanguageProperty": ("languageMap", {"@none": NULL_URI}),
    "VocabProperty": ("vocab", NULL_URI),
    "ListProperty": ("valueList", [NULL_URI]),
    "ListRelationship": ("objectList", [{"object": NULL_URI}]),
    "JsonProperty": ("json", NULL_URI),
}


def deletion_instance(old: dict[str, Any], now: str) -> dict[str, Any]:
    """The instance that records the deletion of ``old``: NGSI-LD Null with deletedAt."""
    typ = old.get("type", "Property")
    member, null = _NULL_MEMBER.get(typ, ("value", NULL_URI))
    doc: dict[str, Any] = {"type": typ, member: copy.deepcopy(null)}
    if "datasetId" in old:
        doc["datasetId"] = old["datasetId"]
    doc["createdAt"] = old.get("createdAt", now)
    doc["modifiedAt"] = doc["deletedAt"] = now
    return doc


class DeletionRecorder:
    """A hub change listener: every attribute instance that a change removes (attribute
    delete, entity delete, replace) gets a deletion instance in its history."""

    def changed(
        self, tx: Tx, tenant: str, before: Entity | None, after: Entity | None,
        attrs: set[str], trigger: str,
    ) -> None:
        if before is None:
            return
        now = str((after or {}).get("modifiedAt") or now_iso())
        rows: list[HistoryRow] = []
        for iri, olds in before.get("attrs", {}).items():
            left = {i.get("datasetId", "") for i in (after or {}).get("attrs", {}).get(iri, [])}
            for old in olds:
                ds = old.get("datasetId", "")
                if ds not in left:
                    rows.append(HistoryRow(
                        before["id"], iri, ds, f"urn:ngsi-ld:attribute:instance:{uuid.uuid4()}",
                        None, now, deletion_instance(old, now), deleted_at=now,
                    ))
        if rows:
            tx.add_history(tenant, rows, (after or before)["type"])


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t.microsecond == 0 else t.strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


def _dumps(v: Any) -> str:
    from .store.sqlbase import dumps

    return dumps(v)


Latest = Callable[[Entity], bool]
