"""Place and time extraction for the civic desk (issue 5).

``extract(text, now, gazetteer)`` reads a complaint and returns the place it names (geocoded
against hub entities when a ``Gazetteer`` is given) and when it happened. Pure logic: no HTTP,
no store. The pieces live in ``extract_when`` (times), ``extract_where`` (place mentions) and
``gazetteer`` (matching names and addresses to entities); this module re-exports them.

Which place is "the" place: coordinates written in the text, then the best geocoded mention
(score ≥ 0.5), then an address, then an intersection, then a landmark; the first wins a tie.
Empty text gives nothing; text over 10,000 characters raises ``ValueError``; coordinates out
of range are not a place and add "coordinates out of range" to ``warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maeul.services.civic.extract_when import MAX_TEXT, TimeRef, check_text, extract_time
from maeul.services.civic.extract_where import (
    OUT_OF_RANGE,
    PlaceMention,
    extract_places,
    find_places,
    proper_noun_spans,
)
from maeul.services.civic.gazetteer import (
    Gazetteer,
    GazetteerEntry,
    GeoMatch,
    normalise,
    parse_address,
)

__all__ = [
    "MAX_TEXT", "OUT_OF_RANGE", "Extraction", "Gazetteer", "GazetteerEntry", "GeoMatch",
    "Place", "PlaceMention", "TimeRef", "extract", "extract_places", "extract_time",
    "normalise", "parse_address",
]

GEOCODED = 0.5  # a match at least this good counts as geocoded when picking the place


@dataclass(frozen=True, slots=True)
class Place:
    """A mention and, when the gazetteer knew it, the entity it was matched to."""

    mention: PlaceMention
    match: GeoMatch | None = None

    @property
    def location(self) -> tuple[float, float] | None:
        """(lon, lat): written coordinates, else the matched entity's point."""
        if self.mention.point is not None:
            return self.mention.point
        return self.match.point if self.match else None

    def to_json(self) -> dict[str, Any]:
        m, loc = self.mention, self.location
        score = 1.0 if m.kind == "coordinates" else (self.match.score if self.match else None)
        return {
            "text": m.text,
            "kind": m.kind,
            "name": m.name,
            "qualifier": m.qualifier,
            "detail": m.detail,
            "location": {"type": "Point", "coordinates": list(loc)} if loc else None,
            "entity": self.match.entity_id if self.match else None,
            "score": score,
        }


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a complaint says about where and when."""

    place: Place | None
    places: list[Place] = field(default_factory=list)
    time: TimeRef | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "place": self.place.to_json() if self.place else None,
            "time": self.time.to_json() if self.time else None,
            "warnings": list(self.warnings),
        }


def _rank(p: Place) -> tuple[int, float]:
    if p.mention.kind == "coordinates":
        return 0, 0.0
    if p.match is not None and p.match.score >= GEOCODED:
        return 1, -p.match.score
    return {"address": 2, "intersection": 3, "landmark": 4}.get(p.mention.kind, 5), 0.0


def extract(text: str, now: datetime, gazetteer: Gazetteer | None = None) -> Extraction:
    """Place and time of a complaint; see the module docstring for the rules."""
    check_text(text)
    if not text.strip():
        return Extraction(None)
    mentions, warnings = find_places(text)
    if gazetteer is not None and len(gazetteer):
        mentions = _known_names(text, mentions, gazetteer)
    places = [Place(m, gazetteer.geocode(m) if gazetteer is not None else None)
              for m in mentions]
    best = min(places, key=_rank) if places else None
    return Extraction(best, places, extract_time(text, now), warnings)


def _known_names(text: str, mentions: list[PlaceMention],
                 gazetteer: Gazetteer) -> list[PlaceMention]:
    """Add proper nouns that the gazetteer knows by name (exactly or normalised), e.g. a
    landmark without a landmark word ("코엑스에서")."""
    extra = []
    for s, e in proper_noun_spans(text):
        if any(s < m.end and e > m.start for m in mentions):
            continue
        hit = gazetteer.geocode(text[s:e])
        if hit is not None and hit.how in ("exact", "normalised"):
            extra.append(PlaceMention(text[s:e], s, e, "landmark", text[s:e]))
    return sorted(mentions + extra, key=lambda m: m.start)
