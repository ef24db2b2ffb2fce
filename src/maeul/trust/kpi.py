"""Trust layer: public KPIs: definitions as data, scheduled computation, history, reports.

Storage contract: a tenant's changes to the KPI definitions are JSON documents in kv, kind
``kpidef``, keyed by (tenant, KPI id): ``{"definition": {...}}`` or ``{"deleted": true}`` over
the built-in set (``settings.kpi_definitions`` or the shipped ``data/kpis.json``). Each
computation updates the hub entity ``urn:ngsi-ld:KeyPerformanceIndicator:<id>`` (Smart Data
Models' KeyPerformanceIndicator), so the hub's temporal history holds the series.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..hub.entities import NULL_URI, SYS, expand_entity, now_iso, parse_time
from ..hub.errors import AlreadyExists, BadRequestData, ResourceNotFound
from ..hub.store.base import Entity, TemporalFilter, Tx
from .events import KpiComputed, KpiDefinitionChanged, emit
from .jobs import Job
from .kpi_formula import Evaluator, Outcome, period_of
from .kpi_model import KpiDefinition, Target, describe, load_definitions, read_definitions_file

log = logging.getLogger(__name__)
KIND = "kpidef"
ACTOR = "system:kpi"
ENTITY_TYPE = "KeyPerformanceIndicator"
ENTITY_PREFIX = "urn:ngsi-ld:KeyPerformanceIndicator:"
MET, NOT_MET, NO_DATA = "met", "notMet", "noData"
# attributes rewritten on every computation (their history is the KPI's series)
DYNAMIC = ("kpiValue", "targetStatus", "statusReason", "calculationPeriod")
_FREQUENCIES = {3600.0: "hourly", 86400.0: "daily", 604800.0: "weekly"}


def entity_id(kpi_id: str) -> str:
    return ENTITY_PREFIX + kpi_id


def target_status(value: float | None, target: Target) -> str:
    if value is None:
        return NO_DATA
    ok = value <= target.value if target.direction == "lower" else value >= target.value
    return MET if ok else NOT_MET


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KpiResult:
    """One KPI's computed value (None with ``reason`` when there was no data)."""

    definition: KpiDefinition
    value: float | None
    status: str
    reason: str | None
    computed_at: datetime
    period_from: datetime | None
    period_to: datetime
    samples: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, d: KpiDefinition, out: Outcome, at: datetime,
           period: tuple[datetime | None, datetime]) -> KpiResult:
        value = None if out.value is None else round(out.value, d.decimals)
        return cls(d, value, target_status(value, d.target), out.reason, at, period[0],
                   period[1], out.samples, out.skipped)

    def as_dict(self) -> dict[str, Any]:
        out = public_view(self.definition)
        out.update({
            "value": self.value,
            "status": self.status,
            "reason": self.reason,
            "computedAt": _iso(self.computed_at),
            "period": _period(self.period_from, self.period_to),
            "samples": self.samples,
            "skipped": self.skipped,
        })
        return out


def _period(start: datetime | None, end: datetime) -> dict[str, str]:
    out = {"to": _iso(end)}
    if start is not None:
        out = {"from": _iso(start), **out}
    return out


def public_view(d: KpiDefinition) -> dict[str, Any]:
    """What is published about a definition (everything but the formula's internals)."""
    return {
        "id": d.id,
        "entity": entity_id(d.id),
        "name": d.name.model_dump(),
        "description": d.description.model_dump(),
        "category": d.category,
        "owner": d.owner,
        "unit": d.unit,
        "unitCode": d.unitCode,
        "target": d.target.model_dump(mode="json"),
        "public": d.public,
        "formula": describe(d.formula),
    }


def builtin_definitions(settings: Any) -> list[KpiDefinition]:
    """``settings.kpi_definitions`` when set, else the shipped set; ValueError names the field."""
    if settings.kpi_definitions is not None:
        return read_definitions_file(settings.kpi_definitions)
    ref = importlib.resources.files("maeul.trust") / "data" / "kpis.json"
    return load_definitions(json.loads(ref.read_text(encoding="utf-8")), "built-in kpis.json")


class Kpis:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.settings = services.settings
        self.builtins = {d.id: d for d in builtin_definitions(self.settings)}

    # -- definitions -----------------------------------------------------------------------
    def definitions(self, tenant: str) -> list[tuple[KpiDefinition, str]]:
        """The tenant's effective definitions and where each comes from: ``builtin``,
        ``changed`` (a built-in changed over the API) or ``custom``."""
        eff: dict[str, tuple[KpiDefinition, str]] = {k: (d, "builtin")
                                                      for k, d in self.builtins.items()}
        custom: dict[str, tuple[KpiDefinition, str]] = {}
        for _t, key, doc in self.s.store.reader().list_json(KIND, tenant):
            if doc.get("deleted"):
                eff.pop(key, None)
                continue
            try:
                d = KpiDefinition.model_validate(doc.get("definition"))
            except ValueError:
                log.warning("KPI definition %s of tenant %s is invalid; skipped", key, tenant)
                continue
            if key in self.builtins:
                eff[key] = (d, "changed")
            else:
                custom[key] = (d, "custom")
        return list(eff.values()) + [custom[k] for k in sorted(custom)]

    def definition(self, tenant: str, kpi_id: str) -> tuple[KpiDefinition, str]:
        for d, source in self.definitions(tenant):
            if d.id == kpi_id:
                return d, source
        raise ResourceNotFound(f"KPI {kpi_id} not found")

    def create_definition(self, tenant: str, d: KpiDefinition, actor: str) -> None:
        if any(x.id == d.id for x, _ in self.definitions(tenant)):
            raise AlreadyExists(f"KPI {d.id} already exists")
        self._put(tenant, d.id, {"definition": d.doc()}, actor, "create")

    def update_definition(self, tenant: str, d: KpiDefinition, actor: str) -> None:
        self.definition(tenant, d.id)
        self._put(tenant, d.id, {"definition": d.doc()}, actor, "update")

    def delete_definition(self, tenant: str, kpi_id: str, actor: str) -> None:
        self.definition(tenant, kpi_id)
        if kpi_id in self.builtins:
            # a tombstone: the built-in set must not come back on the next start
            self._put(tenant, kpi_id, {"deleted": True}, actor, "delete")
            return

        def op(tx: Tx) -> None:
            tx.delete_json(KIND, tenant, kpi_id)
            emit(tx, KpiDefinitionChanged(tenant, actor, kpi_id, change="delete"))

        self.s.store.write(op)

    def _put(self, tenant: str, kpi_id: str, doc: dict[str, Any], actor: str,
             change: str) -> None:
        doc = {**doc, "changedAt": now_iso(), "changedBy": actor}

        def op(tx: Tx) -> None:
            tx.ensure_tenant(tenant)
            tx.put_json(KIND, tenant, kpi_id, doc)
            emit(tx, KpiDefinitionChanged(tenant, actor, kpi_id, change=change))

        self.s.store.write(op)

    # -- computation -----------------------------------------------------------------------
    def expander(self, d: KpiDefinition) -> Any:
        core = self.s.resolver.resolve(None)
        terms = d.context
        return lambda t: terms.get(t) or core.expand_term(t)

    def evaluate(self, tenant: str, d: KpiDefinition, at: datetime) -> KpiResult:
        """One KPI at ``at`` without writing anything."""
        ev = Evaluator(self.s.store, tenant, at, self.expander(d))
        try:
            out = ev.run(d.formula)
        except Exception as exc:  # noqa: BLE001 - one bad KPI must not stop the others
            log.warning("KPI %s of tenant %s failed: %s", d.id, tenant, type(exc).__name__)
            out = Outcome(None, f"error: {type(exc).__name__}")
        return KpiResult.of(d, out, at, period_of(ev, d.formula))

    def compute(self, tenant: str, at: datetime | None = None) -> list[KpiResult]:
        """Evaluate every definition, write each as a KeyPerformanceIndicator entity (an
        update, so the history grows) and record KpiComputed, in one transaction."""
        when = (at or datetime.now(UTC))
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        results = [self.evaluate(tenant, d, when) for d, _src in self.definitions(tenant)]
        ctx = self.s.resolver.resolve(None)
        ents = [expand_entity(self._entity_doc(r), ctx) for r in results]
        nulls = {ctx.expand_term(n) for n in ("kpiValue", "statusReason")}
        dynamic = {ctx.expand_term(n) for n in DYNAMIC}
        hub = self.s.hub

        def op(tx: Tx) -> None:
            for ent in ents:
                old = tx.get_entity(tenant, ent["id"])
                if old is None:
                    hub._create(tx, tenant, ent, ACTOR)
                    continue
                frag: Entity = {"attrs": {}}
                for iri, insts in ent["attrs"].items():
                    if iri in dynamic or _bare(insts) != _bare(old["attrs"].get(iri, [])):
                        frag["attrs"][iri] = insts
                for iri in nulls - set(ent["attrs"]):
                    if iri in old["attrs"]:
                        frag["attrs"][iri] = [{"type": "Property", "value": NULL_URI}]
                hub._merge(tx, tenant, ent["id"], frag, ACTOR)
            emit(tx, KpiComputed(tenant, ACTOR, "kpis", kpis=[r.definition.id for r in results]))

        self.s.store.write(op)
        return results

    def compute_all(self) -> dict[str, int]:
        """The scheduled job: every tenant of the store; a failing tenant is logged."""
        done: dict[str, int] = {}
        for tenant in self.s.store.tenants():
            try:
                done[tenant] = len(self.compute(tenant))
            except Exception:  # noqa: BLE001 - the next tenant still gets its KPIs
                log.exception("KPI computation of tenant %s failed", tenant)
        return done

    def _frequency(self) -> str:
        s = float(self.settings.kpi_interval_s)
        return _FREQUENCIES.get(s, f"every {s:g} s")

    def _entity_doc(self, r: KpiResult) -> dict[str, Any]:
        d = r.definition
        at = _iso(r.computed_at)
        t = d.target
        goal = f"{'≤' if t.direction == 'lower' else '≥'} {t.value:g} {d.unit}"
        if t.deadline is not None:
            goal += f" by {t.deadline.isoformat()}"
        doc: dict[str, Any] = {
            "id": entity_id(d.id),
            "type": ENTITY_TYPE,
            "name": {"type": "LanguageProperty", "languageMap": d.name.model_dump()},
            "description": {"type": "LanguageProperty",
                            "languageMap": d.description.model_dump()},
            "category": {"type": "Property", "value": ["quantitative", d.category]},
            "organization": {"type": "Property", "value": d.owner},
            "calculatedBy": {"type": "Property", "value": "maeul"},
            "calculationMethod": {"type": "Property", "value": "automatic"},
            "calculationFrequency": {"type": "Property", "value": self._frequency()},
            "calculationFormula": {"type": "Property", "value": describe(d.formula)},
            "calculationPeriod": {"type": "Property", "observedAt": at,
                                  "value": _period(r.period_from, r.period_to)},
            "unit": {"type": "Property", "value": d.unit},
            "target": {"type": "Property", "value": t.model_dump(mode="json",
                                                                 exclude_none=True)},
            "businessTarget": {"type": "Property", "value": goal},
            "public": {"type": "Property", "value": d.public},
            "targetStatus": {"type": "Property", "value": r.status, "observedAt": at},
        }
        if r.value is not None:
            kv: dict[str, Any] = {"type": "Property", "value": r.value, "observedAt": at}
            if d.unitCode:
                kv["unitCode"] = d.unitCode
            doc["kpiValue"] = kv
        if r.reason is not None:
            doc["statusReason"] = {"type": "Property", "value": r.reason, "observedAt": at}
        return doc

    # -- reading what was computed ---------------------------------------------------------
    def latest(self, tenant: str, public_only: bool = True) -> list[dict[str, Any]]:
        """Each KPI's latest stored value, status (against the current target) and period."""
        ctx = self.s.resolver.resolve(None)
        reader = self.s.store.reader()
        out = []
        for d, _src in self.definitions(tenant):
            if public_only and not d.public:
                continue
            item = public_view(d)
            ent = reader.get_entity(tenant, entity_id(d.id))
            if ent is None:
                item.update({"value": None, "status": NO_DATA, "reason": "not computed yet",
                             "computedAt": None, "period": None})
            else:
                value = _prop(ent, ctx.expand_term("kpiValue"))
                status = _inst(ent, ctx.expand_term("targetStatus"))
                item.update({
                    "value": value,
                    "status": target_status(value if isinstance(value, int | float) else None,
                                            d.target),
                    "reason": _prop(ent, ctx.expand_term("statusReason")),
                    "computedAt": status.get("observedAt") if status else None,
                    "period": _prop(ent, ctx.expand_term("calculationPeriod")),
                })
            out.append(item)
        return out

    def history(
        self, tenant: str, kpi_id: str, start: str | None = None, end: str | None = None,
        last_n: int | None = None,
    ) -> list[dict[str, Any]]:
        """The KPI's series from the hub's temporal history, oldest first: one point per
        computation with value (None when there was no data), status and reason."""
        ctx = self.s.resolver.resolve(None)
        names = {ctx.expand_term(n): n for n in ("kpiValue", "targetStatus", "statusReason")}
        t0 = _canon(start, "from") if start else None
        t1 = _canon(end, "to") if end else None
        if t0 and t1 and t1 <= t0:
            raise BadRequestData("to must be after from")
        rel = "between" if t0 and t1 else "after" if t0 else "before" if t1 else None
        flt = TemporalFilter(attrs=tuple(names), timeproperty="observedAt", timerel=rel,
                             time_at=t0 or t1, end_time_at=t1 if t0 else None, last_n=last_n)
        points: dict[str, dict[str, Any]] = {}
        for row in self.s.store.history(tenant, entity_id(kpi_id), flt):
            at = row.observed_at or row.recorded_at
            p = points.setdefault(at, {"at": at, "value": None, "status": None,
                                       "reason": None})
            key = {"kpiValue": "value", "targetStatus": "status",
                   "statusReason": "reason"}[names[row.attr]]
            p[key] = row.doc.get("value")
        series = [points[k] for k in sorted(points)]
        return series[-last_n:] if last_n else series

    def jobs(self) -> list[Job]:
        interval = float(self.settings.kpi_interval_s)
        return [Job("kpi.compute", interval, self.compute_all, first_s=min(10.0, interval))]


def _bare(insts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in i.items() if k not in SYS} for i in insts]


def _inst(ent: Entity, iri: str) -> dict[str, Any] | None:
    insts = ent.get("attrs", {}).get(iri) or []
    return insts[0] if insts else None


def _prop(ent: Entity, iri: str) -> Any:
    inst = _inst(ent, iri)
    return None if inst is None else inst.get("value")


def _canon(text: str, field: str) -> str:
    return parse_time(text, field).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- command line ---------------------------------------------------------------------------
def _services(settings: Any) -> Any:
    from ..hub.app import Services

    return Services(settings.model_copy(update={"trust_jobs": False}))


def cli_compute(settings: Any, args: argparse.Namespace) -> int:
    """``maeul kpi compute``: compute every KPI of ``args.tenant`` now; one JSON line each."""
    try:
        services = _services(settings)
    except ValueError as exc:
        print(f"maeul: {exc}", file=sys.stderr)
        return 2
    try:
        for r in services.trust.kpis.compute(args.tenant):
            print(json.dumps(r.as_dict(), ensure_ascii=False))
    finally:
        services.close()
    return 0


def cli_report(settings: Any, args: argparse.Namespace) -> int:
    """``maeul kpi report``: the quarterly HTML report to ``args.out`` or standard output."""
    from .kpi_report import parse_quarter, render_report

    try:
        quarter = parse_quarter(args.quarter) if args.quarter else None
    except ValueError as exc:
        print(f"maeul: {exc}", file=sys.stderr)
        return 2
    try:
        services = _services(settings)
    except ValueError as exc:
        print(f"maeul: {exc}", file=sys.stderr)
        return 2
    try:
        html = render_report(services, args.tenant, quarter)
    finally:
        services.close()
    if args.out is not None:
        args.out.write_text(html, encoding="utf-8")
        print(f"wrote the {args.tenant} KPI report to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(html)
    return 0


__all__ = ["Kpis", "KpiResult", "cli_compute", "cli_report", "entity_id"]
