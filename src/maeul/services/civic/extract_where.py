"""Where is it? Place mentions in Korean and English complaints.

``extract_places(text)`` finds, in text order and without overlaps:

- ``address``: Korean road-name addresses ("중앙로 123", "시청로12번길 5", "세종대로 45-1"),
  a road without a number where the words around it say it is one ("벚꽃로 길가에"), lot
  addresses ("역삼동 123-4"), English streets with or without a house number ("123 Main St",
  "on Main Street") and routes ("Route 9");
- ``intersection``: "중앙사거리", "시청 교차로", "corner of 5th Ave and Pine St", "A & B";
- ``landmark``: a name plus a landmark word ("시청역", "중앙초등학교", "서부 시장", "행복아파트",
  "Central Park", "City Hall"), a shortened school before a relative word ("한빛초 앞" →
  "한빛초등학교"), a proper noun before a relative word ("코엑스 앞", unless it looks like a
  person's name); a bare generic word ("공원", "the library") is not a place;
- ``coordinates``: "37.5665, 126.9780" (latitude first); out-of-range pairs are reported by
  ``find_places`` as warnings, not returned as places.

Relative words ("앞", "옆", "근처", "건너편", "near", "opposite") become the ``qualifier``; exit
numbers, building numbers and gates ("3번 출구", "101동", "정문", "exit 2") the ``detail``;
``name`` has neither. Korean word boundaries come from Kiwi: a landmark word must be a
morpheme of its own or end a proper noun, so "지역" or "놀이공원" are not places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from maeul.services.civic.extract_when import check_text
from maeul.services.civic.extract_where_en import Draft as _Draft
from maeul.services.civic.extract_where_en import english
from maeul.services.civic.text import has_hangul

OUT_OF_RANGE = "coordinates out of range"

_H = "가-힣"


@dataclass(frozen=True, slots=True)
class PlaceMention:
    """A place named in a text: the words, their span, and the place's name."""

    text: str
    start: int
    end: int
    kind: str  # "address" | "landmark" | "intersection" | "coordinates"
    name: str
    qualifier: str | None = None
    detail: str | None = None
    point: tuple[float, float] | None = None  # (lon, lat), only for coordinates

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "kind": self.kind,
                "name": self.name, "qualifier": self.qualifier, "detail": self.detail,
                "point": list(self.point) if self.point else None}


# --- Korean vocabulary --------------------------------------------------------------------

_INTERSECTION = ("사거리", "삼거리", "오거리", "네거리", "교차로", "로터리")
_SUFFIXES = sorted(
    {
        "역", "초등학교", "중학교", "고등학교", "대학교", "대학", "학교", "초교", "유치원",
        "어린이집", "공원", "놀이터", "아파트", "빌라", "맨션", "오피스텔", "시장", "시청",
        "구청", "군청", "도청", "시의회", "구의회", "주민센터", "행정복지센터", "복지관",
        "복지센터", "보건소", "병원", "도서관", "터미널", "정류장", "정류소", "다리", "대교",
        "교", "육교", "마을회관", "경로당", "회관", "마을", "입구", "초입", "우체국", "경찰서",
        "파출소", "지구대", "소방서", "성당", "교회", "마트", "백화점", "주차장", "광장",
        "상가", "빌딩", "타워", "센터", "체육관", "운동장", "경기장", "수영장", "터널",
        "지하차도", "고가도로", "저수지", "호수", "해수욕장", "공단", "단지", "고개", "골목",
        "거리", "휴게소", "공항", "항", "천", "산", *_INTERSECTION,
    },
    key=len,
    reverse=True,
)
# a proper noun on its own ends with these only when it names the thing ("중랑천", "남산")
_NNP_ONLY = frozenset({"천", "산", "항", "교"})
_BARE_OK = frozenset({"시청", "구청", "군청", "도청", "시의회", "구의회"})
# words in front of a landmark word that do not name it ("근린공원", "버스정류장")
_GENERIC = ("어린이", "근린", "놀이", "동네", "우리", "저희", "버스", "지하철", "전철", "공영",
            "공중", "시립", "구립", "도립", "국립", "대형", "소형", "공용", "주변", "근처", "집",
            "종합", "시내", "마을", "소", "먹자", "뒷", "좁은", "뒷골목", "시외", "고속")
_QUALIFIERS = sorted(
    ("앞", "옆", "근처", "건너편", "맞은편", "뒤", "뒤편", "뒷편", "부근", "주변", "인근",
     "일대", "쪽", "방향", "아래", "밑", "위", "안", "사이", "앞쪽", "뒤쪽", "옆쪽", "건너",
     "근방", "앞길", "뒷길", "옆길"),
    key=len,
    reverse=True,
)
# words that never name a place when they stand before a generic landmark word
_STOP = frozenset(
    "오늘 어제 내일 아침 저녁 밤 새벽 오전 오후 낮 점심 지금 요즘 매일 주말 평일 지난주 이번 "
    "우리 저희 동네 근처 여기 거기 저기 이 그 저 집 앞 옆 뒤 가로등 쓰레기 도로 차 차량 주차 "
    "소음 개 고양이 나무 물 불 사람 아이 학생 주민 민원 신고 문제 공사 시설 자전거 오토바이 "
    "계속 자꾸 항상 또 다시 너무 정말 진짜 제발 빨리 그리고 그런데 근데 및 또는 혹은".split()
)
# a word: what lies between spaces and brackets, quotes or sentence punctuation
_WORD_RE = re.compile(r"[^\s()\[\]{}<>\"'“”‘’「」『』,.!?;:~·]+")
_NOUNISH = frozenset({"NNG", "NNP", "NNB", "NR", "SN", "SL", "SH", "XSN", "XPN", "W_SERIAL"})
_SURNAMES = frozenset("김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성"
                      "차주우구민진나")

_DETAIL = re.compile(
    r"\s?(\d{1,3}\s?번\s?(?:출구|출입구|게이트)|\d{1,3}\s?출구|\d{1,4}\s?동|\d{1,2}\s?단지|"
    r"정문|후문|동문|서문|남문|북문|출입구|입구|초입|버스\s?정류장|정류장|정류소|주차장|놀이터|"
    r"광장|경로당|마을회관|관리사무소|" + "|".join(_INTERSECTION) + ")"
)
# a facility written after a village or an apartment complex is named by it ("초록마을 경로당")
_AREA = frozenset({"마을", "아파트", "단지", "빌라"})
_FACILITY = frozenset({"경로당", "마을회관", "관리사무소"})
# "한빛초", "가람중", "새솔고": school names as people shorten them
_SCHOOL_ABBR = {"초": "초등학교", "초교": "초등학교", "중": "중학교", "고": "고등학교"}
_ROAD_BARE = re.compile(
    rf"(?<![{_H}\d])([{_H}]{{2,12}}(?:대로|로|길))(?=에서|\s(?:길가|일대|인근|근처|주변|방면|방향|"
    r"쪽|앞|옆|변|사거리|삼거리|교차로)(?![가-힣]{2}))"
)
_QUAL_RE = re.compile(
    r"\s?(?:바로\s?)?(" + "|".join(_QUALIFIERS) + rf")(?=$|[^{_H}]|에|의|에서|으로|로|을|를|이|가|"
    r"은|는|도|부터|까지|쪽|편|입니다|임)"
)
_PARTICLE = re.compile(r"에서|에게|으로|에|의|을|를|이|가|은|는|도|와|과|로|부터|까지|쪽")
_PARTICLE_TAIL = re.compile(r"(?:에서|에게|으로|에|의|을|를|이|가|은|는|도|와|과|로|부터|까지|"
                            r"에서는|에는|이나|이랑|만)$")
# landmark words distinctive enough to trust when Kiwi split the name oddly
_DISTINCT = frozenset(
    "초등학교 중학교 고등학교 대학교 공원 아파트 병원 도서관 터미널 정류장 주민센터 "
    "행정복지센터 경로당 마을회관 어린이집 유치원 우체국 경찰서 파출소 소방서 보건소 복지관 "
    "체육관 운동장 골목 사거리 삼거리 오거리 교차로".split()
)

# a counter after a number ends its word ("3시에", "5개") unlike "110 시청"
_COUNT_END = (rf"(?:$|(?=[^{_H}])|(?=(?:에|의|이|가|을|를|은|는|도|쯤|경|부터|까지|동안|간|째|"
              r"정도|씩|짜리|만|반|이나|밖에|이상|이하|넘게|가량)))")
_ROAD = re.compile(
    rf"(?<![{_H}\d])((?:[{_H}]{{2,12}}(?:특별시|광역시|특별자치시|특별자치도|시|도|군|구|읍|면)\s)*)"
    rf"([{_H}]{{1,14}}\d{{0,3}}(?:대로|로|길)(?:\s?\d{{1,4}}\s?(?:번\s?)?(?:길|가))?)"
    r"\s?(\d{1,5}(?:-\d{1,5})?)(?:\s?번지)?(?![\d]|[.,]\d|\s?(?:개|곳|대|명|미터|m\b|km|키로|킬로|"
    r"시|분|층|호|cm|센티|년|월|일|번|원|%|회|차|mm|톤|kg|군데|개월|살|세|초|주|시간|미리|평|m²)"
    + _COUNT_END + ")"
)
_LOT = re.compile(
    rf"(?<![{_H}\d])([{_H}]{{1,10}}\d{{0,2}}(?:동|리)|[{_H}]{{1,10}}\d{{1,2}}가)\s?(산\s?)?"
    r"(\d{1,5}(?:-\d{1,5})?)(?:\s?번지)?(?![\d]|[.,]\d|\s?(?:개|곳|대|명|미터|m\b|km|시|분|층|호|년|월|"
    r"일|번(?!지)|원|%|회|차|톤|kg|군데|개월|살|세|초|주|시간|평)" + _COUNT_END + ")"
)
_ROAD_STOP = frozenset(
    "도로 가로 차로 통로 경로 선로 진로 등산로 산책로 골목길 오솔길 길 대로 로 수로 하수로 뒷길 "
    "옆길 샛길 큰길 찻길 자전거길 지름길 갈림길 언덕길 진입로 보행로 교차로 활주로 항로 고로 "
    "그러므로 새로 따로 서로 주로 바로 별로 절로 앞길 비탈길 인도 농로 둘레길 기로 미로 "
    "출입로 우회로 이면도로 소로 간선도로".split()
)
_LOT_STOP = frozenset(
    "활동 운동 행동 이동 자동 공동 작동 변동 충동 감동 노동 난동 소동 출동 진동 가동 발동 "
    "거리 수리 처리 관리 소리 자리 머리 요리 다리 유리 마리 우리 미리 무리 보리 논리 원리 "
    "사리 부리 꼬리 고리 서리 빗자리 그리 이리 저리 어리 피리".split()
)

_COORD = re.compile(
    r"(?<![\d.\w-])([-+]?\d{1,3}\.\d{2,})\s*(?:,|/|\s)\s*([-+]?\d{1,3}\.\d{2,})(?![\d.])"
)




def extract_places(text: str) -> list[PlaceMention]:
    """Place mentions in ``text``, in text order, without overlaps."""
    return find_places(text)[0]


def find_places(text: str) -> tuple[list[PlaceMention], list[str]]:
    """Place mentions and warnings (e.g. "coordinates out of range") for ``text``."""
    check_text(text)
    warnings: list[str] = []
    drafts = _coordinates(text, warnings)
    if has_hangul(text):
        drafts += _korean(text)
    drafts += english(text)
    # one place per span: coordinates, then addresses, then intersections, then landmarks
    rank = {"coordinates": 0, "address": 1, "intersection": 2, "landmark": 3}
    drafts.sort(key=lambda d: (rank[d.kind], d.start - d.end, d.start))
    kept: list[_Draft] = []
    for d in drafts:
        if all(d.end <= k.start or d.start >= k.end for k in kept):
            kept.append(d)
    kept.sort(key=lambda d: d.start)
    return [_mention(text, d) for d in kept], warnings


def _mention(text: str, d: _Draft) -> PlaceMention:
    return PlaceMention(text[d.start : d.end], d.start, d.end, d.kind, d.name, d.qualifier,
                        " ".join(d.detail) or None, d.point)


def _coordinates(text: str, warnings: list[str]) -> list[_Draft]:
    out = []
    for m in _COORD.finditer(text):
        lat, lon = float(m.group(1)), float(m.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            if OUT_OF_RANGE not in warnings:
                warnings.append(OUT_OF_RANGE)
            continue
        out.append(_Draft(m.start(), m.end(), "coordinates", f"{lat}, {lon}", point=(lon, lat)))
    return out


# --- Korean -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Word:
    start: int
    end: int
    stem_end: int  # where the nouns stop (particles and endings follow)
    toks: list[tuple[int, int, str]]  # (start, end, tag) of the nounish tokens
    all_toks: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def pure(self) -> bool:
        return self.stem_end == self.end


def _words(text: str) -> tuple[list[_Word], set[int]]:
    """Space-separated words with their noun stems (Kiwi) and the char positions of
    particles/endings (where a road name cannot be)."""
    from maeul.services.civic.text import _lock, kiwi

    with _lock:
        toks = kiwi().tokenize(text)
    words = [_Word(m.start(), m.end(), m.start(), []) for m in _WORD_RE.finditer(text)]
    particles: set[int] = set()
    wi = 0
    stopped = False
    for t in toks:
        s, e = t.start, t.start + t.len
        while wi < len(words) and words[wi].end <= s:
            wi += 1
            stopped = False
        if wi >= len(words):
            break
        w = words[wi]
        if e <= w.start:
            continue  # punctuation between words
        w.all_toks.append((s, min(e, w.end), t.tag))
        if t.tag[0] in "JE":
            particles.update(range(s, e))
        if stopped:
            continue
        if t.tag in _NOUNISH and s <= w.stem_end + 1:
            w.stem_end = max(w.stem_end, min(e, w.end))
            w.toks.append((s, min(e, w.end), t.tag))
        else:
            stopped = True
    return words, particles


@dataclass(slots=True)
class _Hit:
    core: str  # the landmark's own words (no qualifier, no detail)
    suffix: str
    bare: bool
    qualifier: str | None
    detail: str | None
    end: int  # where the stem (core, detail and an attached qualifier) ends


def _aligned(w: _Word, text: str, core_end: int, suffix: str, loose: bool) -> bool:
    """The landmark word is a morpheme of its own, or ends a proper noun; when Kiwi read
    the name wrongly (``loose``), a distinctive landmark word is enough."""
    sstart = core_end - len(suffix)
    for s, e, tag in w.all_toks if loose else w.toks:
        if tag == "NNP" and e == core_end and s <= sstart:
            return suffix not in ("교",) or not text[s:e].endswith(("학교", "종교", "비교"))
        if s == sstart and suffix not in _NNP_ONLY:
            return True
    return loose and suffix in _DISTINCT


def _landmark(w: _Word, text: str) -> _Hit | None:
    hit = _landmark_at(w, text, w.stem_end, False)
    if hit is None:
        # Kiwi may read a particle inside an unknown name ("청솔초등학교" → 청소/ㄹ/초등학교):
        # try the word minus a particle at its end
        m = _PARTICLE_TAIL.search(text, w.start, w.end)
        end = m.start() if m and m.start() > w.start else w.end
        hit = _landmark_at(w, text, end, True)
    return hit


def _landmark_at(w: _Word, text: str, stem_end: int, loose: bool) -> _Hit | None:
    stem = text[w.start : stem_end]
    core, qual, detail = stem, None, None
    for q in _QUALIFIERS:
        if core.endswith(q) and len(core) > len(q) and _suffix_of(core[: -len(q)]):
            core, qual = core[: -len(q)], q
            break
    m = re.search(r"(\d{1,3}번?출구|\d{1,4}동|\d{1,2}단지|정문|후문|입구|초입)$", core)
    if m and m.start() > 0 and _suffix_of(core[: m.start()]):
        core, detail = core[: m.start()], m.group(1)
    suffix = _suffix_of(core)
    if suffix is None or not _aligned(w, text, w.start + len(core), suffix, loose):
        return None
    name = core[: -len(suffix)]
    while name:
        g = next((g for g in _GENERIC if name.endswith(g)), None)
        if g is None:
            break
        name = name[: -len(g)]
    bare = not name and suffix not in _BARE_OK
    if bare and suffix in _NNP_ONLY | {"마을", "입구", "초입", "센터", "단지", "다리", "거리"}:
        return None  # these need a name in the same word
    return _Hit(core, suffix, bare, qual, detail, stem_end)


def _suffix_of(core: str) -> str | None:
    for s in _SUFFIXES:
        if core.endswith(s):
            return s
    return None


def _kind_of(suffix: str) -> str:
    return "intersection" if suffix in _INTERSECTION else "landmark"


def _looks_like_person(name: str) -> bool:
    return 2 <= len(name) <= 4 and name[0] in _SURNAMES


def proper_noun_spans(text: str) -> list[tuple[int, int]]:
    """Spans of words that are proper nouns throughout (Kiwi NNP), particles excluded."""
    check_text(text)
    if not has_hangul(text):
        return []
    words, _ = _words(text)
    return [(w.start, w.stem_end) for w in words
            if w.toks and all(t[2] == "NNP" for t in w.toks) and w.stem_end - w.start >= 2]


def _time_spans(text: str) -> list[tuple[int, int]]:
    from datetime import UTC, datetime

    from maeul.services.civic.extract_when_rules import find_atoms

    # spans do not depend on the reference time
    return [(a.start, a.end) for a in find_atoms(text, datetime(2000, 1, 1, tzinfo=UTC))]


def _namer(text: str, w: _Word, cursor: int, times: list[tuple[int, int]]) -> str | None:
    """The word before a generic landmark word, when it can be that landmark's name."""
    ptext = text[w.start : w.end]
    if (not w.pure or w.start < cursor or ptext in _STOP or ptext in _GENERIC
            or len(ptext) > 8 or ptext.isdigit() or _landmark(w, text) is not None
            or not w.toks or any(t[2] == "NNB" for t in w.toks)
            or any(s < w.end and e > w.start for s, e in times)):
        return None
    return ptext


def _school_abbr(w: _Word, text: str) -> _Draft | None:
    """"한빛초 앞": a shortened school name, trusted only before a relative word or a gate."""
    m = re.fullmatch(rf"([{_H}]{{2,8}})(초교|초|중|고)", text[w.start : w.stem_end])
    if not m or not (w.pure and (_QUAL_RE.match(text, w.end) or _DETAIL.match(text, w.end))):
        return None
    if m.group(1) in _STOP:
        return None
    full = m.group(1) + _SCHOOL_ABBR[m.group(2)]
    return _Draft(w.start, w.stem_end, "landmark", full, suffix=_SCHOOL_ABBR[m.group(2)])


def _korean(text: str) -> list[_Draft]:
    words, particles = _words(text)
    times = _time_spans(text)
    out: list[_Draft] = []
    out += _addresses(text, particles)
    cursor = 0
    for i, w in enumerate(words):
        if w.start < cursor:
            continue
        hit = _landmark(w, text)
        draft: _Draft | None = None
        if hit is not None and not hit.bare:
            draft = _Draft(w.start, w.start + len(hit.core), _kind_of(hit.suffix), hit.core,
                           suffix=hit.suffix)
        elif hit is not None and i > 0:
            name = _namer(text, words[i - 1], cursor, times)
            if name is not None:
                joiner = "" if hit.suffix in _INTERSECTION else " "
                draft = _Draft(words[i - 1].start, w.start + len(hit.core),
                               _kind_of(hit.suffix), name + joiner + hit.core, suffix=hit.suffix)
        elif hit is None and (abbr := _school_abbr(w, text)) is not None:
            draft = abbr
        elif hit is None and w.toks and all(t[2] == "NNP" for t in w.toks):
            # a proper noun with a relative word after it ("코엑스 앞"); not a person's name
            nnp = text[w.start : w.stem_end]
            after = _QUAL_RE.match(text, w.stem_end)
            if w.pure and after and not _looks_like_person(nnp) and len(nnp) >= 2:
                draft = _Draft(w.start, w.stem_end, "landmark", nnp)
        if draft is None:
            continue
        if hit is not None:
            draft.qualifier = hit.qualifier
            if hit.detail:
                draft.detail.append(hit.detail)
            draft.end = hit.end if (hit.qualifier or hit.detail) else draft.end
        if hit is None or (hit.end == w.end and not hit.qualifier):
            _trail(text, draft)
        out.append(draft)
        cursor = draft.end
    return out


def _word_ends(text: str, pos: int) -> bool:
    return (pos >= len(text) or not text[pos].isalnum() or _PARTICLE.match(text, pos) is not None
            or _QUAL_RE.match(text, pos) is not None)


def _trail(text: str, d: _Draft) -> None:
    """Absorb details ("3번 출구", "101동", "정문") and one qualifier written after a place."""
    for _ in range(3):
        m = _DETAIL.match(text, d.end)
        if not m or not _word_ends(text, m.end()):
            break
        word = m.group(1)
        if word in _INTERSECTION and d.kind == "landmark" and not d.detail:
            d.kind, d.name = "intersection", d.name + word
        elif word in _FACILITY and d.suffix in _AREA and not d.detail:
            d.name, d.suffix = f"{d.name} {word}", word
        else:
            d.detail.append(re.sub(r"\s+", " ", word))
        d.end = m.end()
        if m.end() < len(text) and not text[m.end()].isspace():
            break  # a particle or a qualifier is attached: the phrase ends with it
    q = _QUAL_RE.match(text, d.end)
    if q and (d.end == len(text) or text[d.end].isspace() or _QUAL_RE.match(text, d.end)):
        d.qualifier = q.group(1)
        d.end = q.end()


def _addresses(text: str, particles: set[int]) -> list[_Draft]:
    out = []
    for m in _ROAD.finditer(text):
        road = m.group(2)
        head = re.match(rf"[{_H}]+\d*(?:대로|로|길)", road)
        word = head.group(0) if head else road
        # Kiwi reads an unknown road's 로 as a particle ("무궁화/로"); a particle before it is
        # what rules a word out ("학교에로")
        if word in _ROAD_STOP or word.endswith("으로") or any(
            p in particles for p in range(m.start(2), m.start(2) + len(word) - 1)
        ):
            continue
        name = re.sub(r"\s+", "", road) + " " + m.group(3)
        d = _Draft(m.start(1) if m.group(1) else m.start(2), m.end(), "address", name)
        _trail(text, d)
        out.append(d)
    for m in _ROAD_BARE.finditer(text):
        word = m.group(1)
        if word in _ROAD_STOP or word.endswith("으로") or any(
            p in particles for p in range(m.start(1), m.end(1) - 1)
        ):
            continue
        d = _Draft(m.start(1), m.end(1), "address", word)
        _trail(text, d)
        out.append(d)
    for m in _LOT.finditer(text):
        area = m.group(1)
        if area in _LOT_STOP or any(p in particles for p in range(m.start(1), m.end(1))):
            continue
        lot = f"산 {m.group(3)}" if m.group(2) else m.group(3)
        d = _Draft(m.start(), m.end(), "address", f"{area} {lot}")
        _trail(text, d)
        out.append(d)
    return out


