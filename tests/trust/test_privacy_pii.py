"""The citizen-text scanner: a hand-written corpus (with false positives) and property tests."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maeul.trust.pii import LABELS_EN, LABELS_KO, mask_text, rrn_check

# realistic complaint sentences and the kinds of personal data each one holds; the empty
# sets are there for false positives: exits, bus numbers, prices, dates, times, quantities
CORPUS: list[tuple[str, set[str]]] = [
    ('저는 김민수입니다. 집 앞 가로등이 고장났어요.', {'name'}),
    ('홍길동 씨가 불법 주차를 계속합니다.', {'name'}),
    ('연락처는 010-1234-5678입니다.', {'phone'}),
    ('전화 01098765432로 연락 주세요.', {'phone'}),
    ('사무실 번호는 02-123-4567 입니다.', {'phone'}),
    ('해외에서 +82 10-2345-6789 로 연락 가능합니다.', {'phone'}),
    ('제 주민등록번호는 900101-1234568 입니다', {'rrn'}),
    ('이메일 minsu.kim@example.com 으로 답변 부탁드립니다.', {'email'}),
    ('서울특별시 강남구 테헤란로 152 앞 보도블록이 깨졌습니다.', {'address'}),
    ('중앙로12길 3-4 근처 쓰레기 무단투기 신고합니다.', {'address'}),
    ('역삼동 123-4번지 골목에 가로등이 없습니다.', {'address'}),
    ('12가 3456 차량이 소화전 앞에 주차했습니다.', {'plate'}),
    ('서울12가3456 차량이 매일 인도에 주차합니다.', {'plate'}),
    ('123나4567 트럭이 새벽마다 공회전합니다.', {'plate'}),
    ('3번 출구 앞 횡단보도 신호가 너무 짧아요.', set()),
    ('버스 720번이 정류장을 그냥 지나갑니다.', set()),
    ('주차요금 12,000원은 너무 비쌉니다.', set()),
    ('2024년 3월 15일 오후 3시에 사고가 있었습니다.', set()),
    ('2024-03-15 10:30경 신호등 고장', set()),
    ('이름: 박영희, 연락처 010-5555-1234', {'name', 'phone'}),
    ('김영희 할머니 댁 앞에 눈이 안 치워졌어요.', {'name'}),
    ('저는 주민입니다. 놀이터 시설이 위험합니다.', set()),
    ('버스로 10분 거리인데 배차 간격이 너무 깁니다.', set()),
    ('101동 1203호에서 밤마다 소음이 납니다.', {'address'}),
    ('경기도 성남시 분당구 판교역로 235 앞 도로 파손', {'address'}),
    ('담당 주무관님 빠른 처리 부탁드립니다.', set()),
    ('이 민원을 처리해 주신 이수진 주무관님께 감사드립니다.', {'name'}),
    ('신고자 최지훈, 010 3333 4444', {'name', 'phone'}),
    ('1588-1234 고객센터에 전화해도 안 받아요.', set()),
    ('지하철 2호선 강남역 11번 출구 앞 노점상', set()),
    ('차로 5분 거리에 있는 공원 화장실이 더럽습니다.', set()),
    ('오른쪽으로 3미터 가면 맨홀 뚜껑이 열려 있어요.', set()),
    ('우리 아파트 앞 도로 3곳에 포트홀이 생겼습니다.', set()),
    ('제 이름은 남궁민수이고 반려견 민원입니다.', {'name'}),
    ('부산 해운대구 우동 1408-5 주변 악취', {'address'}),
    ('온도가 35도까지 올라가는데 그늘막이 없어요.', set()),
    ('주민센터 3층 민원실 대기시간이 1시간입니다.', set()),
    ('주민번호 851203-2345671 가 적힌 서류가 버려져 있었습니다.', {'rrn'}),
    ('택시 서울 34 바 5678 기사가 승차 거부했습니다.', {'plate'}),
    ('My name is John Smith and the streetlight is broken.', {'name'}),
    ('Please call me at 010-2222-3333.', {'phone'}),
    ('Email me at jane.doe@mail.co.kr about the noise.', {'email'}),
    ('There is a pothole at 221 Baker Street near the bus stop.', {'address'}),
    ('Bus 720 skips the stop at exit 3 every morning.', set()),
    ('The fine of 50,000 won on 2024-05-01 was wrong.', set()),
    ('Mr. Park parks his car on the sidewalk every night.', {'name'}),
    ('I am writing about the broken bench in the park.', set()),
    ("Hello, I'm Sarah Lee, my number is +82 10 4567 8901.", {'name', 'phone'}),
    ('외국인 등록번호 950505-5123456 확인 부탁', {'rrn'}),
    ('종로구 세종대로 110 서울시청 앞 집회 소음', {'address'}),
    ('민수 씨 집 앞 가로등', {'name'}),
    ('날씨가 너무 더워서 마음씨 좋은 이웃이 물을 줬어요.', set()),
    ('택배 기사님이 매번 계단에 물건을 던져요.', set()),
    ('12월 25일 오전 9시 30분 쓰레기 수거 안 됨', set()),
    ('7층 엘리베이터가 3일째 고장입니다.', set()),
    ('저는 이번에 이사 온 주민인데 분리수거장이 없어요.', set()),
    ('박 씨 아저씨가 개를 풀어놓고 다녀요.', set()),
    ('관리사무소 전화 031-789-1234 도 불통입니다.', {'phone'}),
    ('제 차는 45조 6789 인데 견인됐습니다.', {'plate'}),
    ('Contact: kim_minsu+city@naver.com', {'email'}),
    ('서울 마포구 월드컵북로 396 주차장 출입구 막힘', {'address'}),
    ('성함: 정우성 / 연락처: 010.9999.8888', {'name', 'phone'}),
    ('대전 서구 둔산동 1234번지 인근 공사 소음', {'address'}),
    ('2시 15분에 720번 버스 타고 3정거장 갔어요.', set()),
    ('좌회전 신호가 30초밖에 안 돼요. 10,500명이 이용하는 도로입니다.', set()),
    ('I live at 45 Elm Road, Apt 3B and the heating is off.', {'address'}),
    ("제 번호 010-1234-5678, 이메일 a.b@c.kr, 집은 역삼동 12-3번지입니다.",
     {"phone", "email", "address"}),
    ("홍길동 씨 차 12가 3456 이 자꾸 제 집 앞 중앙로 45 에 주차해요.",
     {"name", "plate", "address"}),
    ("분리수거 요일이 바뀌었다는 안내를 받지 못했어요.", set()),
    ("The streetlight on the corner has been out for 3 days.", set()),
]


def labelled(kind: str, text: str) -> bool:
    """The label of ``kind`` is in the masked text (Korean labels in Korean text)."""
    return LABELS_KO[kind] in text or LABELS_EN[kind] in text


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40
    assert sum(1 for _t, k in CORPUS if not k) >= 15  # false-positive traps


@pytest.mark.parametrize(("text", "kinds"), CORPUS)
def test_corpus(text: str, kinds: set[str]) -> None:
    m = mask_text(text)
    assert set(m.kinds) == kinds, m.text
    if not kinds:
        assert m.text == text and m.spans == []
    for s in m.spans:
        found = text[s.start : s.end]
        assert found not in m.text or len(found) < 3, found


def test_masks_in_place_with_labels() -> None:
    m = mask_text("저는 김민수입니다. 연락처 010-1234-5678")
    assert m.text == "저는 [이름]입니다. 연락처 [전화번호]"
    original = "저는 김민수입니다. 연락처 010-1234-5678"
    assert [(s.kind, original[s.start : s.end]) for s in m.spans] == [
        ("name", "김민수"), ("phone", "010-1234-5678")]
    en = mask_text("My name is John Smith, call 010-1234-5678 or mail js@example.org")
    assert en.text == "My name is [NAME], call [PHONE] or mail [EMAIL]"
    assert en.kinds == ["email", "name", "phone"]


def test_masking_is_idempotent() -> None:
    once = mask_text("이름: 박영희, 서울특별시 강남구 테헤란로 152, 010-5555-1234").text
    assert mask_text(once).text == once
    assert mask_text(once).kinds == []


def _rrn(front: str, gender: str, body: str) -> str:
    digits = front + gender + body
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    check = (11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11) % 10
    return f"{front}-{gender}{body}{check}"


def test_rrn_check_digit() -> None:
    good = _rrn("900101", "1", "23456")
    digits = good.replace("-", "")
    assert rrn_check(digits) is True
    bad = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert rrn_check(bad) is False
    # born 2020 or later (gender 3/4): random tail, no check digit
    assert rrn_check("2103153123456") is None
    # an invalid check digit is still masked, and the span says it failed the check
    m = mask_text(f"주민번호 {bad[:6]}-{bad[6:]} 입니다")
    assert m.kinds == ["rrn"] and m.spans[0].valid is False
    m = mask_text(f"주민번호 {good} 입니다")
    assert m.spans[0].valid is True
    # a partly masked number is still a number to mask
    assert mask_text("주민번호 900101-1****** 확인").kinds == ["rrn"]


def test_scanner_is_linear_on_hostile_input() -> None:
    # long runs that almost match must not backtrack catastrophically
    for text in ("a" * 20_000 + "@", "1" * 20_000, "가" * 20_000 + "로 1", "-1" * 10_000):
        mask_text(text)


# -- properties: generated personal data inside random Korean text is always masked ---------
KO_CHARS = "가나다라마바사아자차카타파하민원신고합니다요은는이가을를의에서로 .,!?\n"
KO_TEXT = st.text(alphabet=st.sampled_from(list(KO_CHARS)), max_size=30)
SEP = st.sampled_from(["-", " ", "", "."])


@st.composite
def phones(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["mobile", "seoul", "area", "intl"]))
    mid = draw(st.from_regex(r"\A[0-9]{3,4}\Z"))
    last = draw(st.from_regex(r"\A[0-9]{4}\Z"))
    sep = draw(SEP)
    if kind == "mobile":
        pre = draw(st.sampled_from(["010", "011", "016", "017", "018", "019"]))
    elif kind == "seoul":
        pre = "02"
    elif kind == "area":
        pre = draw(st.sampled_from(["031", "032", "033", "041", "042", "051", "053", "062",
                                    "064"]))
    else:
        pre = draw(st.sampled_from(["+82 10", "+82-10", "+8210", "+82 2", "+82 31"]))
    return f"{pre}{sep}{mid}{sep}{last}"


@st.composite
def rrns(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=__import__("datetime").date(1930, 1, 1),
                         max_value=__import__("datetime").date(2024, 12, 31)))
    century = born.year >= 2000
    gender = draw(st.sampled_from(["3", "4", "7", "8"] if century else ["1", "2", "5", "6"]))
    body = draw(st.from_regex(r"\A[0-9]{5}\Z"))
    rrn = _rrn(born.strftime("%y%m%d"), gender, body)
    if draw(st.booleans()):
        rrn = rrn[:-1] + str(draw(st.integers(0, 9)))  # check digit not always valid
    sep = draw(st.sampled_from(["-", "", " - "]))
    return rrn.replace("-", sep)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(KO_TEXT, phones(), KO_TEXT)
def test_property_phone_always_masked(before: str, phone: str, after: str) -> None:
    m = mask_text(f"{before}{phone}{after}")
    assert phone not in m.text
    assert "phone" in m.kinds and labelled("phone", m.text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(KO_TEXT, rrns(), KO_TEXT)
def test_property_rrn_always_masked(before: str, rrn: str, after: str) -> None:
    m = mask_text(f"{before}{rrn}{after}")
    assert rrn not in m.text
    assert "rrn" in m.kinds and labelled("rrn", m.text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(KO_TEXT, st.emails(), KO_TEXT)
def test_property_email_always_masked(before: str, email: str, after: str) -> None:
    m = mask_text(f"{before}{email}{after}")
    assert email not in m.text
    assert "email" in m.kinds and labelled("email", m.text)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(KO_TEXT, phones(), KO_TEXT, rrns(), KO_TEXT)
def test_property_several_findings(a: str, phone: str, b: str, rrn: str, c: str) -> None:
    m = mask_text(f"{a} {phone} {b} {rrn} {c}")
    assert phone not in m.text and rrn not in m.text
    assert {"phone", "rrn"} <= set(m.kinds)


@settings(max_examples=200, deadline=None)
@given(KO_TEXT)
def test_property_plain_korean_text_untouched(text: str) -> None:
    assert mask_text(text).text == text
