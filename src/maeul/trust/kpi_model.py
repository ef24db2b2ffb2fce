"""KPI definitions as data: the validated shape of a definition and of its formula language.

A formula is a small JSON tree, never code: aggregations (``count``, ``sum``, ``avg``, ``min``,
``max``, ``median``, ``p90``, ``percentile``) over hub entities selected by type, an NGSI-LD
``q`` filter and a time window relative to the computation time (or over the hub's history of
one attribute), combined by ``ratio`` and by ``difference`` / ``percentChange`` /
``percentReduction`` between two formulas or two windows. docs/trust-kpis.md describes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..hub.query import QTerm, QueryError, compile_q, parse_q

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_DEPTH = 8
_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+$")
AGGREGATIONS = ("count", "sum", "avg", "min", "max", "median", "p90", "percentile")
HISTORY_TIMES = ("observedAt", "modifiedAt")


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration in weeks, days, hours, minutes and seconds (``P90D``, ``PT1H``).

    Months and years are refused: their length depends on the calendar, so a window written
    with them would not mean one thing."""
    m = _DURATION.match(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration in weeks, days, hours, minutes or seconds "
            "(e.g. P90D, PT24H; months and years are not allowed)"
        )
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    try:
        return timedelta(weeks=g["w"], days=g["d"], hours=g["h"], minutes=g["m"], seconds=g["s"])
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None


def parse_path(text: str) -> QTerm:
    """An attribute path in the hub's q-language syntax: ``attr``, ``attr.sub``,
    ``attr[key]``, ``attr.observedAt``, ``<full IRI>.key``; raises ValueError otherwise."""
    try:
        node = parse_q(text)
    except QueryError as exc:
        raise ValueError(str(exc).replace("invalid q", "invalid attribute path")) from None
    if not isinstance(node, QTerm) or node.op is not None:
        raise ValueError(f"{text!r} is not an attribute path (no operators allowed)")
    return node


def _paths(v: str | list[str]) -> str | list[str]:
    items = [v] if isinstance(v, str) else v
    if not items:
        raise ValueError("give at least one attribute path")
    if len(items) > 8:
        raise ValueError("at most 8 alternative paths")
    for item in items:
        if len(item) > 512:
            raise ValueError("an attribute path is at most 512 characters")
        parse_path(item)
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bilingual(_Strict):
    """The same text in Korean and English."""

    ko: str = Field(min_length=1, max_length=2000)
    en: str = Field(min_length=1, max_length=2000)


class Window(_Strict):
    """``[at - offset - last, at - offset)``; ``on`` names the time each entity is placed by:
    an entity timestamp (``modifiedAt``, ``createdAt``), a DateTime property (``closedAt``),
    attribute metadata (``power.observedAt``), or a list of those (the first present wins).
    For history selections ``on`` is ``observedAt`` (default) or ``modifiedAt``."""

    last: str
    offset: str = "PT0S"
    on: str | list[str] | None = None

    @field_validator("last", "offset")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("on")
    @classmethod
    def _on(cls, v: str | list[str] | None) -> str | list[str] | None:
        return None if v is None else _paths(v)

    def span(self) -> tuple[timedelta, timedelta]:
        """(length, offset) of the window."""
        return parse_duration(self.last), parse_duration(self.offset)


class History(_Strict):
    """Read the hub's temporal history of the aggregated attribute instead of current values.

    With ``bucket`` (a duration), readings are averaged per entity and bucket, then the
    entities' bucket means are combined (``sum`` by default: the city's total load), so
    ``max`` over them is the peak of the combined series."""

    bucket: str | None = None
    combine: Literal["sum", "avg", "max", "min"] = "sum"

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        if v is not None and parse_duration(v).total_seconds() <= 0:
            raise ValueError("bucket must be longer than zero")
        return v


class Select(_Strict):
    """Which hub entities (or history rows) a formula reads."""

    type: str = Field(min_length=1, max_length=512)
    q: str | None = Field(None, min_length=1, max_length=2000)
    window: Window | None = None
    history: History | None = None

    @field_validator("q")
    @classmethod
    def _q(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                compile_q(parse_q(v), lambda t: t)  # compiling also checks ~= patterns
            except QueryError as exc:
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _history_window(self) -> Select:
        if self.history is not None:
            if self.window is None:
                raise ValueError("a history selection needs a window (history is unbounded)")
            on = self.window.on
            if on is not None and on not in HISTORY_TIMES:
                raise ValueError(
                    "window.on of a history selection must be observedAt or modifiedAt"
                )
        return self


class Elapsed(_Strict):
    """The time from one timestamp to another (e.g. requested_datetime to closedAt)."""

    from_: str | list[str] = Field(alias="from")
    to: str | list[str]
    unit: Literal["seconds", "minutes", "hours", "days"] = "hours"

    @field_validator("from_", "to")
    @classmethod
    def _p(cls, v: str | list[str]) -> str | list[str]:
        return _paths(v)


class Aggregate(_Strict):
    """An aggregation over the selected entities' ``value`` (an attribute path) or
    ``elapsed`` time; ``count`` counts entities (those where ``value`` is present, if given)."""

    op: Literal["count", "sum", "avg", "min", "max", "median", "p90", "percentile"]
    from_: Select = Field(alias="from")
    value: str | None = Field(None, max_length=512)
    elapsed: Elapsed | None = None
    p: float | None = Field(None, ge=0, le=100)

    @field_validator("value")
    @classmethod
    def _value(cls, v: str | None) -> str | None:
        if v is not None:
            parse_path(v)
        return v

    @model_validator(mode="after")
    def _operands(self) -> Aggregate:
        if self.value is not None and self.elapsed is not None:
            raise ValueError("give value or elapsed, not both")
        if self.op == "percentile" and self.p is None:
            raise ValueError("percentile needs p (0-100)")
        if self.op != "percentile" and self.p is not None:
            raise ValueError("p is only used by percentile")
        if self.from_.history is not None:
            if self.value is None:
                raise ValueError("a history aggregation needs value (the attribute to read)")
            if self.elapsed is not None:
                raise ValueError("elapsed cannot be used with a history selection")
        elif self.op != "count" and self.value is None and self.elapsed is None:
            raise ValueError(f"{self.op} needs value or elapsed")
        return self


class Ratio(_Strict):
    """``numerator / denominator * scale``; a zero or missing denominator is no data."""

    op: Literal["ratio"]
    numerator: Formula
    denominator: Formula
    scale: float = 1.0


class Change(_Strict):
    """``current - baseline`` (difference), ``(current - baseline) / baseline * 100``
    (percentChange) or ``(baseline - current) / baseline * 100`` (percentReduction), either
    between two formulas or between two windows of one ``formula``."""

    op: Literal["difference", "percentChange", "percentReduction"]
    baseline: Formula | None = None
    current: Formula | None = None
    formula: Formula | None = None
    baselineWindow: Window | None = None
    currentWindow: Window | None = None

    @model_validator(mode="after")
    def _form(self) -> Change:
        two = self.baseline is not None or self.current is not None
        windows = (
            self.formula is not None
            or self.baselineWindow is not None
            or self.currentWindow is not None
        )
        if two and windows:
            raise ValueError("give baseline and current, or formula with baselineWindow and "
                             "currentWindow, not both")
        if two and (self.baseline is None or self.current is None):
            raise ValueError("give both baseline and current")
        if windows and (
            self.formula is None or self.baselineWindow is None or self.currentWindow is None
        ):
            raise ValueError("give formula, baselineWindow and currentWindow together")
        if not two and not windows:
            raise ValueError("give baseline and current, or formula with two windows")
        return self


Formula = Annotated[Aggregate | Ratio | Change, Field(discriminator="op")]
Ratio.model_rebuild()
Change.model_rebuild()


class Target(_Strict):
    """The value to reach, which direction is better, and optionally by when."""

    value: float
    direction: Literal["lower", "higher"]
    deadline: date | None = None


class KpiDefinition(_Strict):
    """One KPI: what it measures, how (formula), its unit, target and owner."""

    id: str = Field(pattern=ID_PATTERN)
    name: Bilingual
    description: Bilingual
    formula: Formula
    unit: str = Field(min_length=1, max_length=32)
    unitCode: str | None = Field(None, pattern=r"^[A-Z0-9]{1,8}$")
    decimals: int = Field(2, ge=0, le=6)
    target: Target
    owner: str = Field(min_length=1, max_length=200)
    public: bool = True
    category: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    context: dict[str, str] = Field(default_factory=dict, max_length=64)

    @field_validator("context")
    @classmethod
    def _context(cls, v: dict[str, str]) -> dict[str, str]:
        for term, iri in v.items():
            if not term or len(term) > 128 or not _ABSOLUTE_IRI.match(iri):
                raise ValueError(f"term {term!r} must map to an absolute IRI, got {iri!r}")
        return v

    @model_validator(mode="after")
    def _depth(self) -> KpiDefinition:
        if _depth(self.formula) > MAX_DEPTH:
            raise ValueError(f"formula is nested deeper than {MAX_DEPTH} levels")
        return self

    def doc(self) -> dict[str, Any]:
        """The definition as JSON (field names as written in definition files)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def selects(self) -> Iterator[Select]:
        yield from iter_selects(self.formula)


def _depth(f: Aggregate | Ratio | Change) -> int:
    if isinstance(f, Aggregate):
        return 1
    kids = [f.numerator, f.denominator] if isinstance(f, Ratio) else [
        k for k in (f.baseline, f.current, f.formula) if k is not None
    ]
    return 1 + max(_depth(k) for k in kids)


def iter_selects(f: Aggregate | Ratio | Change) -> Iterator[Select]:
    if isinstance(f, Aggregate):
        yield f.from_
    elif isinstance(f, Ratio):
        yield from iter_selects(f.numerator)
        yield from iter_selects(f.denominator)
    else:
        for k in (f.baseline, f.current, f.formula):
            if k is not None:
                yield from iter_selects(k)


def field_errors(exc: ValidationError, prefix: str = "") -> str:
    """A one-line message naming each bad field (``formula.numerator.from.q: ...``)."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"] if not _is_tag(p))
        loc = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "body")
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _is_tag(part: Any) -> bool:
    # pydantic puts the discriminator's value ('count', 'ratio', ...) into the location
    return isinstance(part, str) and (
        part in AGGREGATIONS or part in ("ratio", "difference", "percentChange",
                                         "percentReduction")
    )


def load_definitions(data: Any, source: str) -> list[KpiDefinition]:
    """Definitions from a parsed file: ``{"definitions": [...]}``; ValueError names the field."""
    if not isinstance(data, dict) or not isinstance(data.get("definitions"), list):
        raise ValueError(f"{source}: expected an object with a 'definitions' list")
    extra = set(data) - {"definitions", "version", "description"}
    if extra:
        raise ValueError(f"{source}: unknown field(s) {', '.join(sorted(extra))}")
    out: list[KpiDefinition] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["definitions"]):
        try:
            d = KpiDefinition.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"{source}: {field_errors(exc, f'definitions[{i}].')}") from None
        if d.id in seen:
            raise ValueError(f"{source}: definitions[{i}].id: {d.id!r} appears twice")
        seen.add(d.id)
        out.append(d)
    return out


def read_definitions_file(path: Path) -> list[KpiDefinition]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read KPI definitions {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return load_definitions(data, str(path))


def describe(f: Aggregate | Ratio | Change, windowed: bool = True) -> str:
    """A human-readable rendering of a formula (published as ``calculationFormula``);
    ``windowed`` False leaves out selection windows (two outer windows replace them)."""
    if isinstance(f, Ratio):
        scale = "" if f.scale == 1 else f" × {f.scale:g}"
        return (f"({describe(f.numerator, windowed)}) / "
                f"({describe(f.denominator, windowed)}){scale}")
    if isinstance(f, Change):
        if f.formula is not None:
            assert f.baselineWindow is not None and f.currentWindow is not None
            return (f"{f.op} of {describe(f.formula, False)} from {_win(f.baselineWindow)} "
                    f"to {_win(f.currentWindow)}")
        assert f.baseline is not None and f.current is not None
        return (f"{f.op} from ({describe(f.baseline, windowed)}) "
                f"to ({describe(f.current, windowed)})")
    s = f.from_
    if f.elapsed is not None:
        arg = f"{f.elapsed.unit} from {_alt(f.elapsed.from_)} to {_alt(f.elapsed.to)}"
    else:
        arg = f.value or ""
    op = f"p{f.p:g}" if f.op == "percentile" and f.p is not None else f.op
    text = f"{op}({arg}) of {'history of ' if s.history else ''}{s.type}"
    if s.history is not None and s.history.bucket:
        text += f" ({s.history.combine} per {s.history.bucket})"
    if s.q:
        text += f" where {s.q}"
    if s.window is not None and windowed:
        text += f" in {_win(s.window)}"
    return text


def _alt(v: str | list[str]) -> str:
    return v if isinstance(v, str) else "|".join(v)


def _win(w: Window) -> str:
    text = f"last {w.last}"
    if parse_duration(w.offset):
        text += f" ending {w.offset} ago"
    if w.on is not None:
        text += f" on {_alt(w.on)}"
    return text


Expand = Callable[[str], str]
