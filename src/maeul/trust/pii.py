"""Finds and masks personal data in citizens' free text, Korean and English.

Kinds: ``name``, ``phone``, ``rrn`` (주민등록번호), ``email``, ``address``, ``plate`` (car
plates). Detection is rule-based (patterns, a list of common Korean surnames and context cues
such as "저는 …입니다" or "… 씨"), so it runs offline without a language model. Where rules
disagree, the more identifying kind wins (email, rrn, phone, plate, address, name).

Every pattern has bounded repetition, so scanning stays linear in the text length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS = ("email", "rrn", "phone", "plate", "address", "name")  # also the precedence order
LABELS_KO = {"name": "[이름]", "phone": "[전화번호]", "rrn": "[주민등록번호]",
             "email": "[이메일]", "address": "[주소]", "plate": "[차량번호]"}
LABELS_EN = {"name": "[NAME]", "phone": "[PHONE]", "rrn": "[RRN]", "email": "[EMAIL]",
             "address": "[ADDRESS]", "plate": "[PLATE]"}
_HANGUL = re.compile(r"[가-힣]")


@dataclass(frozen=True)
class Span:
    """One finding in the original text: ``text[start:end]`` is personal data of ``kind``.

    ``valid`` is the check-digit verdict for a resident registration number issued before
    October 2020 (None where no check digit applies or for other kinds)."""

    start: int
    end: int
    kind: str
    valid: bool | None = None


@dataclass(frozen=True)
class Masked:
    """The masked text, the kinds found (sorted) and where they were in the original."""

    text: str
    kinds: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.spans)


# -- e-mail -----------------------------------------------------------------------------------
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(
    rf"{_ATEXT}{{1,64}}(?:\.{_ATEXT}{{1,64}}){{0,8}}@(?:{_LABEL}\.){{1,8}}"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)

# -- resident registration number: YYMMDD-GNNNNNN (a masked tail ****** counts too) -----------
RRN = re.compile(
    r"(?<!\d)(\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))\s?[-–]?\s?([1-8](?:\d{6}|[\d*]{6}))"
    r"(?![\d*])"
)
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def rrn_check(digits: str) -> bool | None:
    """The check-digit verdict of a 13-digit number, or None where none applies.

    Numbers issued from October 2020 on end in random digits, so people born in 2020 or later
    (gender digit 3, 4, 7 or 8 with a year of 20 or more) and masked tails are not checked."""
    if len(digits) != 13 or not digits.isdigit():
        return None
    if digits[6] in "3478" and int(digits[:2]) >= 20:
        return None
    total = sum(int(d) * w for d, w in zip(digits[:12], _RRN_WEIGHTS, strict=True))
    return (11 - total % 11) % 10 == int(digits[12])


# -- phone numbers ----------------------------------------------------------------------------
_SEP = r"(?:\s?[-–.)]\s?|\s)?"
PHONE = re.compile(
    r"(?<![\d+])(?:(?:\((?:01[016789]|02|0[3-6][1-5])\)|01[016789]|02|0[3-6][1-5]|070|050\d)"
    rf"{_SEP}\d{{3,4}}{_SEP}\d{{4}}"
    r"|\+\s?82[-\s.]?(?:\(0\)\s?)?(?:1[016789]|2|[3-6][1-5]|70)"
    rf"{_SEP}\d{{3,4}}{_SEP}\d{{4}})(?!\d)"
)

# -- car plates: [region] 12가 3456 / 123가4567 ---------------------------------------------
_PLATE_CHARS = "가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주아바사자배하허호"
_REGIONS = ("서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|전북|전남|경북|경남|제주")
PLATE = re.compile(
    rf"(?:(?:{_REGIONS})\s?)?(?<!\d)\d{{2,3}}\s?[{_PLATE_CHARS}]\s?\d{{4}}(?![\d,])"
)

# -- addresses --------------------------------------------------------------------------------
_SIDO = (
    "서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|"
    "광주광역시|광주시|광주|대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종시|"
    "세종|경기도|경기|강원특별자치도|강원도|강원|충청북도|충북|충청남도|충남|전북특별자치도|"
    "전라북도|전북|전라남도|전남|경상북도|경북|경상남도|경남|제주특별자치도|제주도|제주"
)
_ADMIN = (
    rf"(?P<admin>(?:(?:{_SIDO})\s)?(?:[가-힣]{{1,6}}(?:시|군|구)\s){{0,2}}"
    r"(?:[가-힣]{1,6}(?:읍|면)\s)?)"
)
# a number directly followed by one of these is a quantity, not a building or lot number
_UNITS = (
    "분|초|시간|시|일|월|년|개|명|번(?!지|길)|원|회|층|대|살|세|km|㎞|킬로|미터|m|%|kg|장|건|통|곳|차례|"
    "주|달|배|점|등|위|호선|량|만|천|백|억|가지|마리|잔|권|병|박|칸|걸음|발|블록|정거장|정류장|"
    "미리|cm|mm|도|퍼센트|바퀴|군데|동안|째"
)
_NUM = (
    rf"\d{{1,4}}(?:-\d{{1,4}})?(?![\d.,])(?!(?:{_UNITS}))(?!\s(?:{_UNITS})(?![가-힣]))"
)
_ROAD = (
    r"(?P<road>[가-힣]{1,10}(?:대로|로|길)(?:\d{1,4}(?:번)?(?:[가-힣])?길)?)"
    rf"\s?(?P<rnum>{_NUM})(?:\s?번길\s?{_NUM})?"
)
_LOT = rf"(?P<lot>[가-힣]{{1,10}}(?:동|리|\d가))\s?(?P<lnum>{_NUM})(?P<bunji>\s?번지)?"
_APT = r"(?P<apt>(?:[가-힣A-Za-z0-9]{1,12}아파트\s?)?\d{1,4}\s?동\s?\d{1,5}\s?호)"
ADDRESS_KO = re.compile(
    rf"{_ADMIN}(?:{_ROAD}|{_LOT}|{_APT})(?:,?\s?\d{{1,4}}\s?동\s?\d{{1,5}}\s?호)?"
)
ADDRESS_EN = re.compile(
    r"\b\d{1,5}\s(?:[A-Z][a-zA-Z]{1,20}\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd"
    r"|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Square|Sq)\b\.?"
    r"(?:,?\s(?:Apt|Apartment|Suite|Unit|Flat)\.?\s?#?[A-Za-z0-9]{1,5})?"
)
# words ending like a road/lot name that are ordinary words ("버스로 10", "이동 3-4")
_NOT_ROAD = {
    "버스로", "택시로", "차로", "전화로", "문자로", "메일로", "이메일로", "도보로", "자전거로",
    "지하철로", "별도로", "주로", "실제로", "새로", "바로", "서로", "따로", "대로", "정도로",
    "골목길", "산책길", "출근길", "퇴근길", "등굣길", "하굣길", "지름길", "밤길", "빗길", "눈길",
    "오솔길", "뒷길", "샛길", "갈림길", "가는길", "오는길", "앞으로", "뒤로", "옆으로", "위로",
    "아래로", "속도로", "최대로", "임의로", "마음대로", "순서대로", "그대로",
}
_NOT_ADMIN = {
    "혹시", "다시", "역시", "당시", "즉시", "항시", "동시", "수시", "평시", "잠시", "무시", "표시",
    "친구", "입구", "출구", "도구", "요구", "연구", "가구", "부근", "비상구", "하수구", "배수구",
    "창구", "통로구", "계단구", "매일", "이면", "정면", "측면", "후면", "전면", "표면", "지면",
}

# -- names ------------------------------------------------------------------------------------
_SURNAMES_1 = (
    "김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채"
    "원천방공현함변염여추도소석선설마길연위표명기반라왕금옥육인맹제모탁국어은편용예봉경"
)
_SURNAMES_2 = "남궁|황보|제갈|선우|독고|사공|서문|동방"
_KNAME = rf"(?:(?:{_SURNAMES_2})[가-힣]{{1,2}}|[{_SURNAMES_1}][가-힣]{{1,2}})"
_COPULA = (
    r"(?:입니다|이에요|예요|이예요|이고요|이고|이며|이라고|라고|인데요|인데|이구요|이요|이다|"
    r"이야|이라|이랍니다|랍니다)"
)
# cue before a name that must be followed by a copula ("저는 김민수입니다")
NAME_SELF = re.compile(rf"(?:저는|전|나는|난|제가|내가)\s?(?P<n>{_KNAME})\s?(?={_COPULA})")
# cue before a name that is a label ("이름: 홍길동", "신고자 김영희")
NAME_LABEL = re.compile(
    r"(?:제\s?이름은|이름은|이름\s?[:：]|성명\s?[:：]?|성함\s?[:：]?|성함은|"
    r"신고자\s?[:：]?|작성자\s?[:：]?|민원인\s?[:：]?|보호자\s?[:：]?|대상자\s?[:：]?|"
    r"수신인\s?[:：]?|담당자\s?[:：]?)"
    rf"\s?(?P<n>{_KNAME})(?={_COPULA}|[\s.,!?)/]|$|[은는이가을를께의과와도])"
)
# a name followed by an honorific or a form of address ("홍길동 씨", "김영희 할머니")
NAME_TITLE = re.compile(
    rf"(?<![가-힣])(?P<n>{_KNAME})\s?(?:씨|님|할머니|할아버지|어르신|선생님|주무관|팀장님|"
    r"과장님|대리님|원장님|교수님|기사님|사장님|여사님|\s군(?![가-힣])|\s양(?![가-힣]))"
)
# ordinary words that look like a surname plus a given name in these contexts
_NOT_NAME = {
    "주민", "고객", "기사", "하나", "하느", "원장", "구청장", "어머", "아버", "도우미", "선생",
    "이장", "반장", "임금", "조상", "주무관", "공무원", "소장", "위원장", "장로", "신부", "선배",
    "여러분", "국장", "차장", "석사", "마음", "김", "이", "박", "주부", "노인", "장애인", "임산부",
    "이용자", "한부모", "기초수급자", "차주", "소유주", "경비원", "구민", "도민", "유족", "신고자",
    "민원인", "어르신", "엄마", "남편", "주인", "손님", "이웃", "여기", "정말", "진짜", "지금",
    "오늘", "하루", "마침", "우리", "고등학생", "선생님", "기사님", "사장님", "원장님", "이번",
    "지난", "매번", "모두", "다들", "혼자", "아직", "이미", "계속", "정도", "조금", "주로",
    "이분", "그분", "저분", "그쪽", "이쪽", "동네", "주민센터", "관리", "관리소", "경찰", "소방",
    "구청", "시청", "도청", "한국", "이름", "성함", "명의", "가족", "본인", "대표", "담당",
    "나이", "우리집", "주차", "민원", "신청", "어제", "내일", "모레", "요즘", "방금", "하필",
    "정작", "진심", "이거", "그거", "저거", "이게", "그게", "저게", "이것", "그것", "오히려",
    "도대체", "정확", "전혀", "전부", "고생", "고민", "문제", "제발", "부탁", "안녕", "감사",
    "장사", "장난", "고양이", "강아지", "강아", "마을", "동생", "형님", "누나", "오빠", "언니",
    "남자", "여자", "노부부", "부부", "할머", "할아", "사모", "부인", "남매", "자매", "형제",
}
_EN_NAME = r"[A-Z][a-z]{1,20}(?:[ -][A-Z][a-z]{1,20}){0,2}"
NAME_EN = re.compile(
    rf"(?:\b[Mm]y name is|\b[Nn]ame\s?:|\bI am|\bI'm|\b[Cc]alled|\b[Ss]igned,?)\s+(?P<n>{_EN_NAME})"
    rf"|\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s(?P<t>[A-Z][a-z]{{1,20}}(?:\s[A-Z][a-z]{{1,20}})?)"
)
# capitalised words after "I am" that are not names
_NOT_NAME_EN = {
    "Korean", "Sorry", "Not", "Very", "So", "Writing", "Calling", "A", "An", "The", "In", "At",
    "Here", "Living", "From", "Happy", "Angry", "Tired", "Also", "Still", "Just", "Really",
    "English", "American", "Disabled", "Elderly", "Resident", "Please", "Thank",
}


class Scanner:
    """Detects personal data; ``mask`` replaces each finding by a label of its kind."""

    def find(self, text: str) -> list[Span]:
        """Non-overlapping findings, in text order."""
        cands: list[tuple[int, int, int, str, bool | None]] = []  # (prio, start, end, kind, v)
        prio = {k: i for i, k in enumerate(KINDS)}

        def add(start: int, end: int, kind: str, valid: bool | None = None) -> None:
            if end > start:
                cands.append((prio[kind], start, end, kind, valid))

        if "@" in text:
            for m in EMAIL.finditer(text):
                add(m.start(), m.end(), "email")
        for m in RRN.finditer(text):
            digits = m.group(1) + m.group(2)
            add(m.start(), m.end(), "rrn", rrn_check(digits))
        for m in PHONE.finditer(text):
            add(m.start(), m.end(), "phone")
        for m in PLATE.finditer(text):
            add(m.start(), m.end(), "plate")
        korean = bool(_HANGUL.search(text))
        if korean:
            for m in ADDRESS_KO.finditer(text):
                span = self._korean_address(m)
                if span is not None:
                    add(span[0], span[1], "address")
            for rx in (NAME_SELF, NAME_LABEL, NAME_TITLE):
                for m in rx.finditer(text):
                    name = m.group("n")
                    if name not in _NOT_NAME and not name.startswith(("주민", "고객")):
                        add(m.start("n"), m.end("n"), "name")
        for m in ADDRESS_EN.finditer(text):
            add(m.start(), m.end(), "address")
        for m in NAME_EN.finditer(text):
            g = "n" if m.group("n") else "t"
            if m.group(g).split()[0] not in _NOT_NAME_EN:
                add(m.start(g), m.end(g), "name")
        chosen: list[tuple[int, int, int, str, bool | None]] = []
        for c in sorted(cands, key=lambda c: (c[0], c[1], -(c[2] - c[1]))):
            if all(c[2] <= o[1] or c[1] >= o[2] for o in chosen):
                chosen.append(c)
        chosen.sort(key=lambda c: c[1])
        return [Span(c[1], c[2], c[3], c[4]) for c in chosen]

    @staticmethod
    def _korean_address(m: re.Match[str]) -> tuple[int, int] | None:
        admin = m.group("admin") or ""
        start = m.start()
        if admin:
            first = admin.split()[0]
            if first in _NOT_ADMIN:
                # an ordinary word ending in 시/구/면: the address starts after it
                start = m.start() + len(admin.split(" ", 1)[0]) + 1
                admin = admin[len(first) + 1 :]
        if m.group("road"):
            road = m.group("road")
            word = road.split()[-1]
            if word in _NOT_ROAD or word.endswith("으로") or any(
                word.endswith(w) for w in ("으로", "대로는", "정도로")
            ):
                return None
            if len(word) < 3 and not admin and not m.group("rnum").count("-"):
                return None  # a bare short word + number ("차로 3") is rarely an address
        elif m.group("lot"):
            if not (admin or m.group("bunji") or "-" in m.group("lnum")):
                return None
        return start, m.end()

    def mask(self, text: str) -> Masked:
        spans = self.find(text)
        if not spans:
            return Masked(text, [], [])
        labels = LABELS_KO if _HANGUL.search(text) else LABELS_EN
        out: list[str] = []
        pos = 0
        for s in spans:
            out.append(text[pos : s.start])
            out.append(labels[s.kind])
            pos = s.end
        out.append(text[pos:])
        return Masked("".join(out), sorted({s.kind for s in spans}), spans)


SCANNER = Scanner()


def mask_text(text: str) -> Masked:
    """``text`` with personal data replaced by labels such as [전화번호] or [PHONE]."""
    return SCANNER.mask(text)
