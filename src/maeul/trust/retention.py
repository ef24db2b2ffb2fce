"""Retention: per entity type, history older than the policy is deleted or aggregated.

An instance's age is its ``observedAt``, or the time it was recorded when it has none.
``aggregate`` folds old numeric instances into one instance per period (UTC-aligned, e.g.
daily means) under the datasetId ``urn:maeul:aggregate:<period>:<method>[:<datasetId>]``,
then deletes the originals; aggregates are kept. Every write that removes history carries its
``RetentionApplied`` audit record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..hub.entities import parse_time
from ..hub.store.base import HistoryRow, Store, TemporalFilter, Tx
from .events import RetentionApplied, emit
from .privacy_policy import Policy, RetentionRule, matches, parse_duration

AGG_PREFIX = "urn:maeul:aggregate:"
AGG_ATTR = "https://uri.etsi.org/ngsi-ld/default-context/aggregation"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK = 100  # entities aggregated per transaction, so a long run never holds the writer long


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _fold(values: list[float], method: str) -> float:
    if method == "sum":
        return sum(values)
    if method == "min":
        return min(values)
    if method == "max":
        return max(values)
    return sum(values) / len(values)


class Retention:
    """Applies the retention rules of a policy to a store."""

    def __init__(self, store: Store, policy: Policy) -> None:
        self.store = store
        self.policy = policy

    def run(
        self, tenant: str | None = None, now: datetime | None = None, actor: str = "retention"
    ) -> dict[str, Any]:
        """Apply every rule once; a summary of what each type lost, per tenant."""
        now = now or datetime.now(UTC)
        tenants = [tenant] if tenant is not None else self.store.tenants()
        out: dict[str, Any] = {"ranAt": _iso(now), "tenants": {}, "deleted": 0,
                               "aggregated": 0}
        for t in tenants:
            reports = self._tenant(t, now, actor)
            out["tenants"][t] = reports
            out["deleted"] += sum(r["deleted"] for r in reports)
            out["aggregated"] += sum(r["aggregated"] for r in reports)
        return out

    def _tenant(self, tenant: str, now: datetime, actor: str) -> list[dict[str, Any]]:
        ruled = [(n, r.retention) for n, r in self.policy.model.types.items() if r.retention]
        if not ruled:
            return []
        # which stored types each rule covers (a short name matches every IRI ending in it)
        by_type: dict[str, list[str]] = {}
        types_of: dict[str, list[str]] = {}
        for eid, types in self.store.temporal_entities(tenant, TemporalFilter()):
            for t in types:
                if any(matches(name, t) for name, _ in ruled):
                    by_type.setdefault(t, []).append(eid)
                    types_of[eid] = types
        reports = []
        for name, rule in ruled:
            assert rule is not None
            before = _iso(now - parse_duration(rule.older_than))
            for t in sorted(by_type):
                if not matches(name, t):
                    continue
                if rule.action == "delete":
                    rep = self._delete(tenant, t, before, actor)
                else:
                    rep = self._aggregate(tenant, t, by_type[t], types_of, before, rule, actor)
                reports.append({"policyType": name, "type": t, "action": rule.action,
                                "before": before, **rep})
        return reports

    def _delete(self, tenant: str, t: str, before: str, actor: str) -> dict[str, int]:
        def op(tx: Tx) -> int:
            n = tx.delete_history_before(tenant, t, before)
            if n:
                emit(tx, RetentionApplied(tenant, actor, t, deleted=n, before=before))
            return n

        return {"deleted": int(self.store.write(op)), "aggregated": 0}

    def _aggregate(
        self, tenant: str, t: str, eids: list[str], types_of: dict[str, list[str]],
        before: str, rule: RetentionRule, actor: str,
    ) -> dict[str, int]:
        period = parse_duration(rule.period)
        deleted = written = 0
        for chunk in _chunks(eids, CHUNK):
            plans = []
            for eid in chunk:
                rows = self._old_rows(tenant, eid, before)
                if rows:
                    plans.append((eid, self._aggregates(eid, rows, period, rule)))
            if not plans:
                continue

            def op(tx: Tx, plans: list[tuple[str, list[HistoryRow]]] = plans) -> tuple[int, int]:
                d = w = 0
                for eid, agg in plans:
                    d += tx.delete_history_before(tenant, t, before, entity_id=eid,
                                                  spare_prefix=AGG_PREFIX)
                    tx.add_history(tenant, agg, types_of[eid])
                    w += len(agg)
                if d or w:
                    emit(tx, RetentionApplied(tenant, actor, t, deleted=d, aggregated=w,
                                              before=before))
                return d, w

            d, w = self.store.write(op)
            deleted += d
            written += w
        return {"deleted": deleted, "aggregated": written}

    def _old_rows(self, tenant: str, eid: str, before: str) -> list[HistoryRow]:
        observed = self.store.history(
            tenant, eid, TemporalFilter(timerel="before", time_at=before))
        recorded = self.store.history(
            tenant, eid, TemporalFilter(timeproperty="modifiedAt", timerel="before",
                                        time_at=before))
        rows = observed + [r for r in recorded if r.observed_at is None]
        return [r for r in rows if not r.dataset_id.startswith(AGG_PREFIX)]

    @staticmethod
    def _aggregates(
        eid: str, rows: list[HistoryRow], period: timedelta, rule: RetentionRule
    ) -> list[HistoryRow]:
        groups: dict[tuple[str, str, int], list[HistoryRow]] = {}
        for r in rows:
            at = parse_time(r.observed_at or r.recorded_at, "time")
            groups.setdefault((r.attr, r.dataset_id, (at - EPOCH) // period), []).append(r)
        now = _iso(datetime.now(UTC))
        out = []
        for (attr, ds, bucket), items in sorted(groups.items()):
            values = [v for v in (i.doc.get("value") for i in items)
                      if isinstance(v, int | float) and not isinstance(v, bool)]
            if rule.method == "count":
                value: float = len(items)
            elif not values:
                continue  # nothing numeric to keep: the instances just go
            else:
                value = _fold(values, rule.method)
            start = EPOCH + period * bucket
            agg_ds = f"{AGG_PREFIX}{rule.period}:{rule.method}" + (f":{ds}" if ds else "")
            doc: dict[str, Any] = {
                "type": "Property", "value": value, "observedAt": _iso(start),
                "datasetId": agg_ds, "createdAt": now, "modifiedAt": now,
                AGG_ATTR: {"type": "Property", "value": {
                    "method": rule.method, "period": rule.period, "count": len(items),
                    "from": _iso(start), "to": _iso(start + period)}},
            }
            if "unitCode" in items[0].doc:
                doc["unitCode"] = items[0].doc["unitCode"]
            out.append(HistoryRow(eid, attr, agg_ds,
                                  f"urn:ngsi-ld:attribute:instance:{uuid.uuid4()}",
                                  _iso(start), now, doc))
        return out
