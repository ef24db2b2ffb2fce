"""The quarterly KPI report: printable HTML with every public KPI over the quarter and a
section of failures and open problems (missed targets, no data, AI proposals that failed or
were overridden, pending citizen feedback and objections), as open governance asks.

Values come from the KPI entities' history in the hub, so a report shows what was published
during the quarter. Quarters are calendar quarters in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jinja2

from ..hub.store.base import EntityFilter
from .kpi import MET, NO_DATA, NOT_MET, target_status
from .kpi_formula import to_time
from .kpi_model import describe

_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
# the kv kinds that hold citizens' feedback and objections (the registry's inbox is
# ``registry_feedback``; ``feedback`` is accepted too)
FEEDBACK_KINDS = ("registry_feedback", "feedback")
# statuses of a feedback document that mean it needs nothing more; anything else is pending
_SETTLED = {"closed", "resolved", "answered", "done", "rejected", "withdrawn", "dismissed",
            "responded", "archived"}
_PROBLEM_STATUSES = {"failed", "rolledBack"}
MAX_LISTED = 200


@dataclass(frozen=True)
class Quarter:
    year: int
    n: int

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.n}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, 3 * self.n - 2, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the quarter."""
        if self.n == 4:
            return datetime(self.year + 1, 1, 1, tzinfo=UTC)
        return datetime(self.year, 3 * self.n + 1, 1, tzinfo=UTC)

    def months(self) -> list[tuple[str, datetime, datetime]]:
        out = []
        for i in range(3):
            m = 3 * self.n - 2 + i
            a = datetime(self.year, m, 1, tzinfo=UTC)
            b = datetime(self.year + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
            out.append((a.strftime("%Y-%m"), a, b))
        return out


def parse_quarter(text: str) -> Quarter:
    """``2026Q3`` -> Quarter(2026, 3); ValueError with a message saying the expected form."""
    m = _QUARTER.match(text.strip())
    if not m:
        raise ValueError(
            f"quarter {text!r} is not valid: write the year, 'Q' and the quarter 1-4, "
            "e.g. 2026Q3"
        )
    year = int(m.group(1))
    if not 1970 <= year <= 2999:
        raise ValueError(f"quarter {text!r} is not valid: the year must be 1970-2999, "
                         "e.g. 2026Q3")
    return Quarter(year, int(m.group(2)))


def current_quarter(now: datetime | None = None) -> Quarter:
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return Quarter(t.year, (t.month - 1) // 3 + 1)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _kpi_rows(services: Any, tenant: str, q: Quarter) -> list[dict[str, Any]]:
    kpis = services.trust.kpis
    rows = []
    for d, _src in kpis.definitions(tenant):
        if not d.public:
            continue
        points = kpis.history(tenant, d.id, _iso(q.start), _iso(q.end))
        values = [v for v in (_number(p["value"]) for p in points) if v is not None]
        last = points[-1] if points else None
        last_value = _number(last["value"]) if last else None
        status = NO_DATA if last is None else target_status(last_value, d.target)
        reason: str | None = None
        if last is None:
            reason = "not computed in this quarter"
        elif last_value is None:
            reason = str(last["reason"] or "no data")
        months = []
        for label, a, b in q.months():
            inside = [_number(p["value"]) for p in points if _iso(a) <= p["at"] < _iso(b)]
            months.append((label, inside[-1] if inside else None))
        rows.append({
            "d": d,
            "formula": describe(d.formula),
            "last": last_value,
            "last_at": last["at"][:16].replace("T", " ") if last else None,
            "mean": sum(values) / len(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "computations": len(points),
            "no_data_runs": sum(1 for p in points if _number(p["value"]) is None),
            "months": months,
            "status": status,
            "reason": reason,
        })
    return rows


def _value(ent: dict[str, Any], iri: str) -> Any:
    insts = ent.get("attrs", {}).get(iri)
    if not isinstance(insts, list) or not insts or not isinstance(insts[0], dict):
        return None
    return insts[0].get("value")


def proposal_problems(services: Any, tenant: str, q: Quarter) -> tuple[list[dict[str, Any]], int]:
    """AIProposal entities decided in the quarter that failed, were rolled back or were
    overridden by a human: (up to MAX_LISTED of them, how many in all). Only ids, statuses
    and times are shown: a proposal's content may concern residents."""
    ctx = services.resolver.resolve(None)
    iri = {n: ctx.expand_term(n) for n in ("status", "route", "overridden", "decidedAt",
                                            "submittedAt", "system")}
    out: list[dict[str, Any]] = []
    total = 0
    for ent in services.store.query_entities(
        tenant, EntityFilter(types=(ctx.expand_term("AIProposal"),))
    ):
        status = _value(ent, iri["status"])
        overridden = _value(ent, iri["overridden"]) is True
        if status not in _PROBLEM_STATUSES and not overridden:
            continue
        when = (to_time(_value(ent, iri["decidedAt"])) or to_time(_value(ent, iri["submittedAt"]))
                or to_time(ent.get("modifiedAt")))
        if when is None or not q.start <= when < q.end:
            continue
        total += 1
        if len(out) < MAX_LISTED:
            system = _value(ent, iri["system"])
            out.append({
                "id": ent["id"],
                "system": system if isinstance(system, str) else "",
                "status": str(status or ""),
                "route": str(_value(ent, iri["route"]) or ""),
                "overridden": overridden,
                "at": _iso(when),
            })
    out.sort(key=lambda p: p["at"])
    return out, total


def _text(doc: dict[str, Any], *names: str) -> str:
    for n in names:
        v = doc.get(n)
        if isinstance(v, dict):  # a bilingual name: Korean, else English
            v = v.get("ko") or v.get("en")
        if isinstance(v, str) and v:
            return v[:200]
    return ""


def pending_feedback(services: Any, tenant: str, q: Quarter) -> list[dict[str, Any]]:
    """Feedback and objections not yet settled, received before the quarter's end. Read
    defensively: another component writes them; the message text and the contact are never
    shown (citizens write them)."""
    out = []
    for kind in FEEDBACK_KINDS:
        try:
            docs = services.store.reader().list_json(kind, tenant)
        except Exception:  # noqa: BLE001 - the report must not fail on another part's data
            continue
        for _t, key, doc in docs:
            if not isinstance(doc, dict):
                continue
            status = _text(doc, "status") or "pending"
            if status.lower() in _SETTLED:
                continue
            received = _text(doc, "receivedAt", "received_at", "createdAt", "submittedAt")
            t = to_time(received) if received else None
            if t is not None and t >= q.end:
                continue
            what = _text(doc, "kind", "type")
            out.append({
                "id": str(key)[:100],
                "kind": what if what in ("feedback", "objection") else "feedback",
                "entry": _text(doc, "system", "entryId", "entry", "systemId", "target"),
                "department": _text(doc, "department"),
                "received": _iso(t) if t else "",
                "status": status,
            })
    out.sort(key=lambda f: (f["received"], f["id"]))
    return out


def report_data(services: Any, tenant: str, quarter: Quarter | None = None) -> dict[str, Any]:
    q = quarter or current_quarter()
    rows = _kpi_rows(services, tenant, q)
    proposals, proposals_total = proposal_problems(services, tenant, q)
    feedback = pending_feedback(services, tenant, q)
    return {
        "tenant": tenant,
        "q": q,
        "start": q.start.date().isoformat(),
        "last_day": (q.end - timedelta(days=1)).date().isoformat(),
        "generated": _iso(datetime.now(UTC)),
        "rows": rows,
        "counts": {s: sum(1 for r in rows if r["status"] == s) for s in (MET, NOT_MET, NO_DATA)},
        "missed": [r for r in rows if r["status"] != MET],
        "proposals": proposals,
        "proposals_total": proposals_total,
        "feedback": feedback,
    }


def _fmt(value: Any, decimals: int = 2) -> str:
    v = _number(value)
    return "—" if v is None else f"{v:,.{decimals}f}"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("maeul.trust", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    return env


def render_report(services: Any, tenant: str, quarter: Quarter | None = None) -> str:
    """The quarterly report as one self-contained HTML document."""
    return _env().get_template("report.html").render(**report_data(services, tenant, quarter))
