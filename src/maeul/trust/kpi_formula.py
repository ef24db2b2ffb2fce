"""Evaluation of KPI formulas over the hub's stored (expanded) entities and history.

Reads go straight to the store (no query page limits); q filters are compiled with the hub's
own q-language, so a definition's ``q`` means what it means on ``/ngsi-ld/v1/entities``.
A formula that finds nothing says so (``value`` None and a ``reason``), never a silent 0.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..hub.entities import parse_time
from ..hub.errors import BadRequestData
from ..hub.query import ENTITY_TIMESTAMPS, METADATA_MEMBERS, compile_q, parse_q
from ..hub.store.base import Entity, EntityFilter, HistoryRow, Store, TemporalFilter
from .kpi_model import Aggregate, Change, Ratio, Select, Window, parse_path

Formula = Aggregate | Ratio | Change
_UNIT_S = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}
_MISSING = object()


@dataclass
class Outcome:
    """A formula's value, or None with the reason; ``samples`` values went into it and
    ``skipped`` selected entities had no usable value (missing, not a number, negative time)."""

    value: float | None
    reason: str | None = None
    samples: int = 0
    skipped: int = 0


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_time(v: Any) -> datetime | None:
    """A date-time from a property value: an ISO string or ``{"@type": "DateTime", ...}``."""
    if isinstance(v, dict):
        v = v.get("@value")
    if not isinstance(v, str):
        return None
    try:
        return parse_time(v, "time")
    except BadRequestData:
        return None


def to_number(v: Any) -> float | None:
    if isinstance(v, dict) and "@value" in v:
        v = v["@value"]
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    h = (len(xs) - 1) * p / 100.0
    lo = math.floor(h)
    hi = math.ceil(h)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def aggregate(op: str, values: list[float], p: float | None = None) -> float:
    if op == "sum":
        return math.fsum(values)
    if op == "avg":
        return math.fsum(values) / len(values)
    if op == "min":
        return min(values)
    if op == "max":
        return max(values)
    if op == "median":
        return float(statistics.median(values))
    if op == "p90":
        return percentile(values, 90.0)
    assert op == "percentile" and p is not None
    return percentile(values, p)


def _instance(insts: Any) -> dict[str, Any] | None:
    """The default instance (no datasetId) of an attribute, else its first instance."""
    if not isinstance(insts, list) or not insts:
        return None
    for inst in insts:
        if isinstance(inst, dict) and "datasetId" not in inst:
            return inst
    first = insts[0]
    return first if isinstance(first, dict) else None


def _attr_value(inst: dict[str, Any]) -> Any:
    for member in ("value", "object", "languageMap", "vocab", "valueList", "objectList"):
        if member in inst:
            return inst[member]
    return _MISSING


class Path:
    """A compiled attribute path: ``attr``, then ``.x`` (metadata, sub-attribute or a key of
    the value, in that order of preference), then ``[k]`` keys into the value."""

    def __init__(self, text: str, expand: Callable[[str], str]) -> None:
        p = parse_path(text).path
        self.entity_ts = p.attr if (p.attr in ENTITY_TIMESTAMPS and not p.sub_attrs
                                    and not p.keys) else None
        self.attr = expand(p.attr)
        self.steps = [(s, expand(s)) for s in p.sub_attrs]
        self.keys = p.keys

    def on_entity(self, ent: Entity) -> Any:
        if self.entity_ts is not None:
            return ent.get(self.entity_ts, _MISSING)
        inst = _instance(ent.get("attrs", {}).get(self.attr))
        return _MISSING if inst is None else self.on_instance(inst)

    def on_instance(self, inst: dict[str, Any]) -> Any:
        node: Any = inst
        at_attr = True  # still on an attribute (not yet inside its value)
        for plain, iri in self.steps:
            if at_attr:
                if plain in METADATA_MEMBERS and plain in node:
                    node, at_attr = node[plain], False
                    continue
                if isinstance(node.get(iri), dict):
                    node = node[iri]
                    continue
                node, at_attr = _attr_value(node), False
            if not isinstance(node, dict) or plain not in node:
                return _MISSING
            node = node[plain]
        if at_attr:
            node = _attr_value(node)
        for key in self.keys:
            if not isinstance(node, dict) or key not in node:
                return _MISSING
            node = node[key]
        return node


def _first_time(paths: list[Path], ent: Entity) -> datetime | None:
    for p in paths:
        v = p.on_entity(ent)
        if v is not _MISSING:
            t = to_time(v)
            if t is not None:
                return t
    return None


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


class Evaluator:
    """Evaluates formulas of one tenant at one computation time ``at`` (UTC)."""

    def __init__(self, store: Store, tenant: str, at: datetime, expand: Callable[[str], str]):
        self.store = store
        self.tenant = tenant
        self.at = at
        self.expand = expand

    def window_bounds(self, w: Window) -> tuple[datetime, datetime]:
        length, offset = w.span()
        end = self.at - offset
        return end - length, end

    def run(self, f: Formula, override: Window | None = None) -> Outcome:
        if isinstance(f, Aggregate):
            return self._aggregate(f, override)
        if isinstance(f, Ratio):
            return self._ratio(f, override)
        return self._change(f, override)

    def _ratio(self, f: Ratio, override: Window | None) -> Outcome:
        den = self.run(f.denominator, override)
        if den.value is None:
            return Outcome(None, f"denominator: {den.reason}")
        if den.value == 0:
            return Outcome(None, "no data: the denominator is zero", den.samples)
        num = self.run(f.numerator, override)
        if num.value is None:
            return Outcome(None, f"numerator: {num.reason}")
        return Outcome(num.value / den.value * f.scale, None, den.samples,
                       num.skipped + den.skipped)

    def _change(self, f: Change, override: Window | None) -> Outcome:
        if f.formula is not None:
            base = self.run(f.formula, f.baselineWindow)
            cur = self.run(f.formula, f.currentWindow)
        else:
            assert f.baseline is not None and f.current is not None
            base = self.run(f.baseline, override)
            cur = self.run(f.current, override)
        if base.value is None:
            return Outcome(None, f"baseline: {base.reason}")
        if cur.value is None:
            return Outcome(None, f"current: {cur.reason}")
        samples, skipped = base.samples + cur.samples, base.skipped + cur.skipped
        if f.op == "difference":
            return Outcome(cur.value - base.value, None, samples, skipped)
        if base.value == 0:
            return Outcome(None, "no data: the baseline is zero", samples, skipped)
        change = (cur.value - base.value) / abs(base.value) * 100.0
        return Outcome(change if f.op == "percentChange" else -change, None, samples, skipped)

    # -- aggregation over entities or history ----------------------------------------------
    def _aggregate(self, f: Aggregate, override: Window | None) -> Outcome:
        s = f.from_
        window = s.window
        if override is not None:
            on = override.on if override.on is not None else (window.on if window else None)
            window = override.model_copy(update={"on": on})
        if s.history is not None:
            assert window is not None
            values, found, skipped = self._history_values(f, s, window)
        else:
            values, found, skipped = self._entity_values(f, s, window)
        if not found:
            return Outcome(None, f"no data: no {s.type} entities"
                           + (" with history in the window" if s.history else ""))
        if f.op == "count":
            return Outcome(float(len(values)), None, len(values), skipped)
        if not values:
            where = " in the window" if window is not None else ""
            return Outcome(None, f"no data: no {s.type} values{where}", 0, skipped)
        return Outcome(aggregate(f.op, values, f.p), None, len(values), skipped)

    def _predicate(self, s: Select) -> Callable[[Entity], bool] | None:
        return None if s.q is None else compile_q(parse_q(s.q), self.expand)

    def _entity_values(
        self, f: Aggregate, s: Select, window: Window | None
    ) -> tuple[list[float], bool, int]:
        """(values, whether the type has any entity, skipped): ``count`` gets one 1.0 per
        counted entity."""
        pred = self._predicate(s)
        on = [Path(p, self.expand) for p in _as_list(window.on or "modifiedAt")] if window else []
        start, end = self.window_bounds(window) if window else (None, None)
        value = Path(f.value, self.expand) if f.value is not None else None
        el = f.elapsed
        t_from = [Path(p, self.expand) for p in _as_list(el.from_)] if el else []
        t_to = [Path(p, self.expand) for p in _as_list(el.to)] if el else []
        found = False
        values: list[float] = []
        skipped = 0
        flt = EntityFilter(types=(self.expand(s.type),))
        for ent in self.store.query_entities(self.tenant, flt):
            found = True
            if pred is not None and not pred(ent):
                continue
            if start is not None and end is not None:
                t = _first_time(on, ent)
                if t is None or not start <= t < end:
                    continue
            if el is not None:
                t0, t1 = _first_time(t_from, ent), _first_time(t_to, ent)
                if t0 is None or t1 is None or t1 < t0:
                    skipped += 1
                    continue
                values.append((t1 - t0).total_seconds() / _UNIT_S[el.unit])
            elif value is not None:
                raw = value.on_entity(ent)
                num = to_number(raw) if f.op != "count" else (
                    None if raw is _MISSING or raw is None else 1.0)
                if num is None:
                    skipped += 1
                    continue
                values.append(num)
            else:
                values.append(1.0)
        return values, found, skipped

    def _history_values(
        self, f: Aggregate, s: Select, window: Window
    ) -> tuple[list[float], bool, int]:
        assert f.value is not None and s.history is not None
        path = Path(f.value, self.expand)
        pred = self._predicate(s)
        timeprop = window.on if isinstance(window.on, str) else "observedAt"
        start, end = self.window_bounds(window)
        flt = TemporalFilter(
            attrs=(path.attr,), timeproperty=timeprop, timerel="between",
            time_at=_fmt(start), end_time_at=_fmt(end),
        )
        reader = self.store.reader()
        found = False
        skipped = 0
        series: list[list[tuple[datetime, float]]] = []
        for eid, _types in self.store.temporal_entities(
            self.tenant, TemporalFilter(types=(self.expand(s.type),))
        ):
            if pred is not None:
                ent = reader.get_entity(self.tenant, eid)
                if ent is None or not pred(ent):
                    continue
            rows = self.store.history(self.tenant, eid, flt)
            if not rows:
                continue
            found = True
            points: list[tuple[datetime, float]] = []
            for row in _one_dataset(rows):
                num = to_number(path.on_instance(row.doc))
                if num is None:
                    skipped += 1
                    continue
                when = row.observed_at if timeprop == "observedAt" else row.recorded_at
                points.append((parse_time(when or row.recorded_at, "time"), num))
            series.append(points)
        bucket = s.history.bucket
        if bucket is None:
            return [v for pts in series for _t, v in pts], found, skipped
        return _bucketed(series, start, bucket, s.history.combine), found, skipped


def _one_dataset(rows: list[HistoryRow]) -> Iterator[HistoryRow]:
    """Rows of the default instance if there are any, else of the first datasetId."""
    ids = {r.dataset_id for r in rows}
    chosen = "" if "" in ids else min(ids)
    return (r for r in rows if r.dataset_id == chosen)


def _bucketed(
    series: list[list[tuple[datetime, float]]], start: datetime, bucket: str, combine: str
) -> list[float]:
    from .kpi_model import parse_duration

    size: timedelta = parse_duration(bucket)
    combined: dict[int, list[float]] = {}
    for points in series:
        per: dict[int, list[float]] = {}
        for t, v in points:
            per.setdefault(int((t - start) / size), []).append(v)
        for idx, vals in per.items():
            combined.setdefault(idx, []).append(math.fsum(vals) / len(vals))
    out = []
    for idx in sorted(combined):
        vals = combined[idx]
        out.append(math.fsum(vals) if combine == "sum" else (
            math.fsum(vals) / len(vals) if combine == "avg" else
            max(vals) if combine == "max" else min(vals)))
    return out


def period_of(ev: Evaluator, f: Formula) -> tuple[datetime | None, datetime]:
    """The calculation period: the window of the formula's current part (from None: all time)."""
    if isinstance(f, Change) and f.currentWindow is not None:
        return ev.window_bounds(f.currentWindow)
    if isinstance(f, Change):
        assert f.current is not None
        return period_of(ev, f.current)
    if isinstance(f, Ratio):
        a, b = period_of(ev, f.numerator), period_of(ev, f.denominator)
        starts = [t for t in (a[0], b[0]) if t is not None]
        return (min(starts) if starts else None), max(a[1], b[1])
    w = f.from_.window
    if w is None:
        return None, ev.at
    return ev.window_bounds(w)
