"""The English grammar of ``extract_where``: streets ("123 Main St", "on Elm Street"),
intersections ("corner of 5th Ave and Pine St", "Main St & 2nd Ave"), routes ("Route 9") and
landmarks ("Central Park", "Seoul Station exit 2", "City Hall"), with a qualifier written
before them ("near", "in front of", "opposite"). Names are capitalised words before a street
or landmark word; lower-case street names count only after a preposition ("on main street").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(slots=True)
class Draft:
    """A place mention being assembled (the Korean and English grammars both build these)."""

    start: int
    end: int
    kind: str
    name: str
    suffix: str = ""  # the landmark word the name ends with (Korean)
    qualifier: str | None = None
    detail: list[str] = field(default_factory=list)
    point: tuple[float, float] | None = None

_STREET_TYPES = {
    "street": "Street", "st": "Street", "avenue": "Avenue", "ave": "Avenue", "av": "Avenue",
    "road": "Road", "rd": "Road", "boulevard": "Boulevard", "blvd": "Boulevard",
    "lane": "Lane", "ln": "Lane", "drive": "Drive", "dr": "Drive", "way": "Way",
    "place": "Place", "pl": "Place", "court": "Court", "ct": "Court", "terrace": "Terrace",
    "ter": "Terrace",
    "highway": "Highway", "hwy": "Highway", "parkway": "Parkway", "pkwy": "Parkway",
    "alley": "Alley", "crescent": "Crescent", "expressway": "Expressway", "sq": "Square",
    "square": "Square", "circle": "Circle", "cir": "Circle", "path": "Path", "row": "Row",
    "wharf": "Wharf", "turnpike": "Turnpike",
}
_LANDMARK_TYPES = frozenset(
    "park station school elementary library hospital market bridge plaza square hall center centre "
    "terminal church mall stadium museum university college playground garden gardens tower "
    "building clinic pier beach cemetery academy mosque temple synagogue apartments "
    "airport".split()
)
_EN_STOP = frozenset(
    "a an the on at near in of to from by for and or with into onto off along down up across "
    "this that my our your their his her its i we you they it is are was were be been has have "
    "there here next behind outside opposite beside front corner intersection around past "
    "since before after every each some any no not please hi hello dear yesterday today "
    "tonight tomorrow last morning evening night monday tuesday wednesday thursday friday "
    "saturday sunday also still again".split()
)
_EN_QUAL = re.compile(
    r"(?i:\b(across\s+the\s+street\s+from|in\s+front\s+of|next\s+to|across\s+from|close\s+to|"
    r"near|opposite|behind|outside|beside|by|around|past|at\s+the\s+back\s+of))\s+(?:the\s+)?$"
)
_ROUTE = re.compile(r"\b(Route|Rte|Highway|Hwy|Interstate|State\s+Route)\s+(\d{1,4}[A-Z]?)\b",
                    re.IGNORECASE)
_EN_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?\.?")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)$", re.IGNORECASE)
_HOUSE_NO = re.compile(r"(?<![\w-])(\d{1,6}[A-Za-z]?(?:\s?-\s?\d{1,6}[A-Za-z]?)?)\s+$")
_EXIT_AFTER = re.compile(r"^,?\s*(?i:exit)\s*#?(\d{1,3})")
_CORNER = re.compile(
    r"(?i:\b(?:corner|intersection|junction|crossing)\s+of\s+)"
    r"((?:the\s+)?[A-Z0-9][\w'’]*(?:\s+[A-Z][\w'’]*\.?){0,3})\s+(?:and|&)\s+"
    r"([A-Z0-9][\w'’]*(?:\s+[A-Z][\w'’]*\.?){0,3})"
)


def _en_tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _EN_WORD.finditer(text)]


def _adjacent(text: str, a_end: int, b_start: int) -> bool:
    return a_end <= b_start and text[a_end:b_start].strip() == ""


def _name_words(text: str, toks: list[tuple[int, int, str]], k: int,
                allow_lower: bool) -> int:
    """Index of the first name word before token ``k`` (``k`` when there is none)."""
    j = k
    lower = False
    while j > 0 and k - j < 4 and _adjacent(text, toks[j - 1][1], toks[j][0]):
        w = toks[j - 1][2].rstrip(".")
        cap = w[:1].isupper() or _ORDINAL.match(w) is not None
        # inside a landmark's name a street word is part of it ("Washington Square Park")
        if w.lower() in _EN_STOP or (allow_lower and w.lower() in _STREET_TYPES):
            break
        if cap and not lower:
            j -= 1
        elif allow_lower and w.isalpha() and (k - j < 2) and (lower or j == k):
            lower = True
            j -= 1
        else:
            break
    if lower:
        # lower-case names only after a preposition ("on main street"), never inside a sentence
        if j == 0 or toks[j - 1][2].lower() not in ("on", "at", "near", "along", "of", "off",
                                                     "down", "up", "from", "to", "by", "in"):
            return k
    return j


def english(text: str) -> list[Draft]:
    toks = _en_tokens(text)
    out: list[Draft] = []
    streets: list[Draft] = []
    for k, (s, e, raw) in enumerate(toks):
        word = raw.rstrip(".")
        low = word.lower()
        if low in _STREET_TYPES:
            j = _name_words(text, toks, k, allow_lower=True)
            nxt = toks[k + 1][2].rstrip(".").lower() if k + 1 < len(toks) else ""
            if j == k or (nxt in _LANDMARK_TYPES and _adjacent(text, e, toks[k + 1][0])):
                continue  # "Washington Square Park" is a park
            start = toks[j][0]
            words = [t[2].rstrip(".") for t in toks[j:k]]
            name = " ".join(w[:1].upper() + w[1:] for w in words) + " " + _STREET_TYPES[low]
            house = _HOUSE_NO.search(text, max(0, start - 16), start)
            if house:
                start = house.start(1)
                name = re.sub(r"\s", "", house.group(1)) + " " + name
            end = s + len(word) + (1 if raw.endswith(".") and low in ("st", "ave", "rd", "dr",
                                                                       "blvd", "ln") else 0)
            streets.append(Draft(start, end, "address", name))
        elif low in _LANDMARK_TYPES and (word[0].isupper() or low in ("hall",)):
            j = _name_words(text, toks, k, allow_lower=False)
            if j == k:
                continue
            if j > 0 and toks[j - 1][2] in ("St", "St.") and _adjacent(text, toks[j - 1][1],
                                                                       toks[j][0]):
                j -= 1  # "St Mary's Hospital": Saint, not Street
            name = " ".join(t[2].rstrip(".") for t in toks[j : k + 1])
            d = Draft(toks[j][0], s + len(word), "landmark", name.removeprefix("The "))
            ex = _EXIT_AFTER.match(text[d.end :])
            if ex:
                d.detail.append(f"exit {ex.group(1)}")
                d.end += ex.end()
            out.append(d)
    for m in _ROUTE.finditer(text):
        out.append(Draft(m.start(), m.end(), "address", f"{m.group(1).title()} {m.group(2)}"))
    for m in re.finditer(r"(?i:\b(?:city|town)\s+hall)\b", text):
        out.append(Draft(m.start(), m.end(), "landmark", "City Hall" if m.group(0)[0] in "cC"
                          else "Town Hall"))
    out += _intersections(text, streets)
    for d in out:
        q = _EN_QUAL.search(text, max(0, d.start - 30), d.start)
        if q and q.end() == d.start:
            d.qualifier = re.sub(r"\s+", " ", q.group(1).lower())
            d.start = q.start()
    return out


def _intersections(text: str, streets: list[Draft]) -> list[Draft]:
    out: list[Draft] = []
    used: set[int] = set()
    for a, b in zip(streets, streets[1:], strict=False):
        gap = text[a.end : b.start]
        if re.fullmatch(r"(?i:\s*(?:and|&|at|/|x)\s*)", gap):
            out.append(Draft(a.start, b.end, "intersection", f"{a.name} & {b.name}"))
            used.update((id(a), id(b)))
    for m in _CORNER.finditer(text):
        first, second = m.group(1).removeprefix("the "), m.group(2)
        out.append(Draft(m.start(1), m.end(2), "intersection", f"{first} & {second}"))
    out += [s for s in streets if id(s) not in used]
    return out
