"""Geocoding place mentions against the hub's own entities.

``Gazetteer.from_entities(entities)`` indexes NGSI-LD entities (compacted normalized form or
key-values) by ``name``, ``alternateName`` and ``address.streetAddress``, with the entity's
``location`` (a point, or a geometry's centroid). ``geocode(mention)`` tries, in order:

1. ``exact`` (score 1.0): the name as written, ignoring case and spacing;
2. ``normalised`` (0.9): after folding variants ("행정복지센터" = "주민센터", "Station" = "역",
   "St" = "Street", exit numbers dropped, punctuation dropped);
3. ``address`` (0.95, or 0.6/0.45 for the nearest house number on the same street): street
   and number against ``address.streetAddress`` (tried before the fuzzy step for addresses);
4. ``fuzzy`` (at most 0.85): character-bigram Jaccard on a bigram index, refined with difflib
   on the few best; a landmark word that differs ("시청역" vs "시청", "중앙초등학교" vs
   "중앙중학교") is never a fuzzy match.

When several distinct places (more than 50 m apart) are equally good, the first indexed is
returned with its score divided by their number. Lookups use dictionaries and numpy arrays
over the bigram postings, so a 10,000-entry gazetteer answers in well under a millisecond.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maeul.services.civic.extract_where import PlaceMention

_FOLD = [
    (re.compile(r"\d+\s*번\s*(?:출구|출입구)|\d+\s*출구|\bexit\s*#?\d+\b"), ""),
    (re.compile(r"행정복지센터|동사무소"), "주민센터"),
    (re.compile(r"네거리"), "사거리"),
    (re.compile(r"버스\s*정류장|정류소"), "정류장"),
    (re.compile(r"초교$|(?<=[가-힣]{2})초$"), "초등학교"),
    (re.compile(r"\b(?:railway\s+|subway\s+|train\s+|metro\s+)?(?:station|stn)\b\.?"), "역"),
    (re.compile(r"\bstreet\b|\bst\b\.?"), "st"),
    (re.compile(r"\bavenue\b|\bave?\b\.?"), "ave"),
    (re.compile(r"\broad\b|\brd\b\.?"), "rd"),
    (re.compile(r"\bboulevard\b|\bblvd\b\.?"), "blvd"),
    (re.compile(r"\bdrive\b|\bdr\b\.?"), "dr"),
    (re.compile(r"\blane\b|\bln\b\.?"), "ln"),
    (re.compile(r"\bsaint\b"), "st"),
    (re.compile(r"\bsquare\b|\bsq\b\.?"), "sq"),
    (re.compile(r"\bparkway\b|\bpkwy\b\.?"), "pkwy"),
    (re.compile(r"\bhighway\b|\bhwy\b\.?"), "hwy"),
    (re.compile(r"\bcircle\b|\bcir\b\.?"), "cir"),
    (re.compile(r"\bcourt\b|\bct\b\.?"), "ct"),
    (re.compile(r"\bplace\b|\bpl\b\.?"), "pl"),
    (re.compile(r"\bterrace\b|\bter\b\.?"), "ter"),
    (re.compile(r"\bintersection\s+(?:of\s+)?"), ""),
    (re.compile(r"^the\s+"), ""),
]
_DROP = re.compile(r"[\W_]+", re.UNICODE)
# the kind of thing a name's last word says it is; fuzzy matches must agree on it
_CLASS_WORDS = {
    "역": "station", "초등학교": "school1", "중학교": "school2", "고등학교": "school3",
    "대학교": "univ", "대학": "univ", "유치원": "kinder", "어린이집": "kinder", "공원": "park",
    "놀이터": "playground", "시장": "market", "병원": "hospital", "도서관": "library",
    "아파트": "apartment", "시청": "cityhall", "구청": "cityhall", "군청": "cityhall",
    "도청": "cityhall", "주민센터": "center", "보건소": "health", "정류장": "stop",
    "터미널": "terminal", "사거리": "crossing", "삼거리": "crossing", "오거리": "crossing",
    "교차로": "crossing", "대교": "bridge", "다리": "bridge", "교": "bridge", "경로당": "senior",
    "마을회관": "hall", "우체국": "post", "경찰서": "police", "파출소": "police",
    "소방서": "fire", "주차장": "parking", "park": "park", "school": "school",
    "library": "library", "hospital": "hospital", "market": "market", "hall": "hall",
    "st": "street", "ave": "street", "rd": "street", "blvd": "street", "dr": "street",
    "ln": "street", "로": "street", "길": "street",
}
_CLASS_KEYS = sorted(_CLASS_WORDS, key=len, reverse=True)
_KO_ADDR = re.compile(
    r"([가-힣A-Za-z0-9]+?(?:대로|로|길)(?:\s?\d+\s?(?:번\s?)?(?:길|가))?)\s?(\d+(?:-\d+)?)"
)
_EN_ADDR = re.compile(r"^\s*(\d+[A-Za-z]?(?:-\d+[A-Za-z]?)?)\s+(.+?)\s*$")
# fuzzy candidates this close to the best are as good as it: the match is ambiguous
_TIE = 0.02
_STATION_TYPES = re.compile(r"station|subway|metro|railway", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GeoMatch:
    """The hub entity a mention was matched to."""

    entity_id: str
    name: str
    point: tuple[float, float]  # (lon, lat)
    score: float
    how: str  # "exact" | "normalised" | "fuzzy" | "address"

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity_id, "name": self.name, "point": list(self.point),
                "score": round(self.score, 4), "how": self.how}


@dataclass(frozen=True, slots=True)
class GazetteerEntry:
    """One place: an entity id, its names, its point and its street address."""

    entity_id: str
    names: tuple[str, ...]
    point: tuple[float, float]
    street_address: str | None = None
    type: str | None = None


def normalise(name: str) -> str:
    """The form names are compared in: NFKC, case-folded, variants folded, no spaces or
    punctuation ("시청역 3번 출구" → "시청역", "Main St." → "mainst")."""
    s = unicodedata.normalize("NFKC", name).casefold().strip()
    for pattern, repl in _FOLD:
        s = pattern.sub(repl, s)
    return _DROP.sub("", s)


def _loose(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _bigrams(s: str) -> set[str]:
    if len(s) < 2:
        return {s} if s else set()
    return {s[i : i + 2] for i in range(len(s) - 1)}


def _class(norm: str) -> str | None:
    for k in _CLASS_KEYS:
        if norm.endswith(k) and len(norm) >= len(k):
            return _CLASS_WORDS[k]
    return None


def parse_address(text: str) -> tuple[str, str] | None:
    """(street key, house number) of a Korean road-name or English street address."""
    s = unicodedata.normalize("NFKC", text).strip()
    m = _KO_ADDR.search(s)
    if m and re.search(r"[가-힣]", m.group(1)):
        return re.sub(r"\s+", "", m.group(1)), m.group(2)
    m = _EN_ADDR.match(s)
    if m and re.search(r"[A-Za-z]{2}", m.group(2)):
        return normalise(m.group(2)), m.group(1).lower()
    return None


def _main_number(number: str) -> int:
    digits = re.match(r"\d+", number)
    return int(digits.group(0)) if digits else 0


def _haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


# --- reading entities ---------------------------------------------------------------------


def _value(attr: Any) -> Any:
    """An attribute's value in normalized or key-values form (the first of a multi-attribute)."""
    if isinstance(attr, list) and attr and isinstance(attr[0], Mapping) and "type" in attr[0]:
        attr = attr[0]
    if isinstance(attr, Mapping) and attr.get("type") in (
        "Property", "GeoProperty", "LanguageProperty", "Relationship"
    ):
        return attr.get("value", attr.get("languageMap"))
    return attr


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v] if v.strip() else []
    if isinstance(v, Mapping):  # a LanguageProperty's languageMap: {"ko": ..., "en": ...}
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, list):
        return [s for x in v for s in _strings(x)]
    return []


def _point(geometry: Any) -> tuple[float, float] | None:
    if not isinstance(geometry, Mapping):
        return None
    try:
        if geometry.get("type") == "Point":
            lon, lat = (float(c) for c in list(geometry["coordinates"])[:2])
        else:
            import shapely.geometry

            c = shapely.geometry.shape(geometry).centroid
            if c.is_empty:
                return None
            lon, lat = float(c.x), float(c.y)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    except Exception:  # shapely's own geometry errors
        return None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or math.isnan(lon) or math.isnan(lat):
        return None
    return round(lon, 7), round(lat, 7)


def entry_from_entity(entity: Mapping[str, Any]) -> GazetteerEntry | None:
    """The gazetteer entry of one entity, or None when it has no usable name or location."""
    eid = entity.get("id")
    if not isinstance(eid, str) or not eid:
        return None
    names = _strings(_value(entity.get("name"))) + _strings(_value(entity.get("alternateName")))
    address = _value(entity.get("address"))
    street = address.get("streetAddress") if isinstance(address, Mapping) else None
    street = street if isinstance(street, str) and street.strip() else None
    point = _point(_value(entity.get("location")))
    if point is None or not (names or street):
        return None
    etype = entity.get("type")
    return GazetteerEntry(eid, tuple(dict.fromkeys(names)), point, street,
                          etype if isinstance(etype, str) else None)


# --- the index ----------------------------------------------------------------------------


class Gazetteer:
    """Names and street addresses of hub entities, indexed for fast geocoding."""

    def __init__(self, entries: Iterable[GazetteerEntry] = ()) -> None:
        self.entries: list[GazetteerEntry] = []
        self.skipped = 0  # entities without a usable name or location
        self._exact: dict[str, list[tuple[int, str]]] = {}
        self._norm: dict[str, list[tuple[int, str]]] = {}
        self._streets: dict[str, list[tuple[int, str, int]]] = {}
        self._keys: list[tuple[str, int, str]] = []  # (normalised, entry, display name)
        self._key_class: list[str | None] = []
        self._post_lists: dict[str, list[int]] = {}
        self._post: dict[str, npt.NDArray[np.int32]] | None = None
        self._idf: dict[str, float] = {}
        self._key_weight: npt.NDArray[np.float64] = np.zeros(0)
        for e in entries:
            self.add(e)

    @classmethod
    def from_entities(cls, entities: Iterable[Mapping[str, Any]]) -> Gazetteer:
        """Index entities; entities without a name (or street address) or a location are
        counted in ``skipped``; a non-object raises ``ValueError``."""
        g = cls()
        for i, entity in enumerate(entities):
            if not isinstance(entity, Mapping):
                raise ValueError(f"entities[{i}]: an entity must be a JSON object")
            entry = entry_from_entity(entity)
            if entry is None:
                g.skipped += 1
            else:
                g.add(entry)
        return g

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry: GazetteerEntry) -> None:
        idx = len(self.entries)
        self.entries.append(entry)
        names = list(entry.names)
        if entry.type and _STATION_TYPES.search(entry.type):
            # a station entity named "시청" is what people call "시청역"
            names += [n + "역" for n in entry.names if re.search(r"[가-힣]$", n)
                      and not n.endswith("역")]
        for n in names:
            self._exact.setdefault(_loose(n), []).append((idx, n))
            key = normalise(n)
            if not key:
                continue
            self._norm.setdefault(key, []).append((idx, n))
            k = len(self._keys)
            self._keys.append((key, idx, n))
            self._key_class.append(_class(key))
            for b in _bigrams(key):
                self._post_lists.setdefault(b, []).append(k)
        if entry.street_address:
            parsed = parse_address(entry.street_address)
            if parsed:
                self._streets.setdefault(parsed[0], []).append(
                    (_main_number(parsed[1]), parsed[1], idx))
        self._post = None

    def _postings(self) -> dict[str, npt.NDArray[np.int32]]:
        if self._post is None:
            self._post = {b: np.asarray(v, dtype=np.int32) for b, v in self._post_lists.items()}
            # a bigram's weight is its rarity: "초등" or "공원" say little about which place
            n = max(len(self._keys), 1)
            self._idf = {b: math.log(1 + n / len(v)) for b, v in self._post_lists.items()}
            self._key_weight = np.asarray(
                [sum(self._idf[b] for b in _bigrams(k)) for k, _, _ in self._keys])
        return self._post

    # --- matching -------------------------------------------------------------------------

    def geocode(self, mention: PlaceMention | str) -> GeoMatch | None:
        """The best entity for a mention (or a bare name), or None."""
        if isinstance(mention, PlaceMention):
            if mention.kind == "coordinates":
                return None
            name, kind = mention.name, mention.kind
        else:
            name, kind = mention, ""
        if not name.strip():
            return None
        hit = self._tier(self._exact.get(_loose(name), []), 1.0, "exact")
        if hit is None:
            hit = self._tier(self._norm.get(normalise(name), []), 0.9, "normalised")
        if hit is None and kind in ("address", ""):
            hit = self._address(name)
        if hit is None and kind != "address":
            # a street spelled like another street is another street: no fuzzy addresses
            hit = self._fuzzy(normalise(name))
        return hit

    def _tier(self, found: list[tuple[int, str]], score: float, how: str) -> GeoMatch | None:
        if not found:
            return None
        return self._ambiguous([(i, n) for i, n in found], score, how)

    def _ambiguous(self, found: list[tuple[int, str]], score: float, how: str) -> GeoMatch:
        idx, name = found[0]
        best = self.entries[idx]
        far = {best.entity_id}
        for i, _ in found[1:]:
            e = self.entries[i]
            if e.entity_id not in far and _haversine_m(e.point, best.point) > 50:
                far.add(e.entity_id)
        return GeoMatch(best.entity_id, name, best.point, score / len(far), how)

    def _address(self, text: str) -> GeoMatch | None:
        parsed = parse_address(text)
        if parsed is None:
            return None
        on_street = self._streets.get(parsed[0])
        if not on_street:
            return None
        same = [(i, self.entries[i].street_address or "") for _, num, i in on_street
                if num == parsed[1]]
        if same:
            return self._ambiguous(same, 0.95, "address")
        want = _main_number(parsed[1])
        main, _, i = min(on_street, key=lambda r: (abs(r[0] - want), r[2]))
        e = self.entries[i]
        return GeoMatch(e.entity_id, e.street_address or "", e.point,
                        0.6 if abs(main - want) <= 10 else 0.45, "address")

    def _fuzzy(self, key: str) -> GeoMatch | None:
        grams = _bigrams(key)
        post = self._postings()
        known = [b for b in grams if b in post]
        if not known or len(key) < 2:
            return None
        unseen = math.log(1 + len(self._keys))  # a bigram no name has is as rare as can be
        q_weight = sum(self._idf.get(b, unseen) for b in grams)
        # IDF-weighted Jaccard over the bigram postings, for every name at once
        inter_all = np.bincount(
            np.concatenate([post[b] for b in known]),
            weights=np.concatenate([np.full(len(post[b]), self._idf[b]) for b in known]),
            minlength=len(self._keys))
        cand = np.flatnonzero(inter_all)
        inter = inter_all[cand]
        jac = inter / (q_weight + self._key_weight[cand] - inter)
        top8 = np.argpartition(-jac, 7)[:8] if jac.size > 8 else np.arange(jac.size)
        order = top8[np.argsort(-jac[top8], kind="stable")]
        want = _class(key)
        scored: list[tuple[float, int]] = []
        for o in order:
            k = int(cand[o])
            other = self._keys[k][0]
            have = self._key_class[k]
            if want != have and want is not None and have is not None:
                continue
            ratio = difflib.SequenceMatcher(None, key, other, autojunk=False).ratio()
            s = 0.5 * float(jac[o]) + 0.5 * ratio
            if (want is None) != (have is None):
                s *= 0.85  # one name says what it is and the other does not
            scored.append((s, k))
        if not scored:
            return None
        top = max(s for s, _ in scored)
        if top < 0.6:
            return None
        tied = [(self._keys[k][1], self._keys[k][2]) for s, k in scored if top - s < _TIE]
        tied.sort(key=lambda t: t[0])
        return self._ambiguous(tied, round(0.85 * top, 4), "fuzzy")
