"""Seoul's air monitoring stations: the names of the 2022 daily file, romanised, with the
district and an approximate position where the site is a well-known public place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeoulStation:
    """A Seoul air monitoring station: id slug, district (구) and approximate [lon, lat]."""

    slug: str
    district: str | None = None
    lon_lat: tuple[float, float] | None = None


# Romanised (Revised Romanization) slugs for every station name in the 2022 file, with the
# district and an approximate position where it is a well-known public place: the district
# (구) office for the 25 urban background stations named after their district, the park or
# landmark for the others.  Roadside stations named after a road get no position (a road is
# kilometres long), nor do stations whose site we could not place with confidence.
SEOUL_STATIONS: dict[str, SeoulStation] = {
    "강남구": SeoulStation("gangnam-gu", "강남구", (127.0474, 37.5173)),
    "강동구": SeoulStation("gangdong-gu", "강동구", (127.1238, 37.5301)),
    "강북구": SeoulStation("gangbuk-gu", "강북구", (127.0257, 37.6396)),
    "강서구": SeoulStation("gangseo-gu", "강서구", (126.8497, 37.5509)),
    "관악구": SeoulStation("gwanak-gu", "관악구", (126.9516, 37.4784)),
    "광진구": SeoulStation("gwangjin-gu", "광진구", (127.0823, 37.5385)),
    "구로구": SeoulStation("guro-gu", "구로구", (126.8874, 37.4954)),
    "금천구": SeoulStation("geumcheon-gu", "금천구", (126.8955, 37.4569)),
    "노원구": SeoulStation("nowon-gu", "노원구", (127.0568, 37.6542)),
    "도봉구": SeoulStation("dobong-gu", "도봉구", (127.0471, 37.6688)),
    "동대문구": SeoulStation("dongdaemun-gu", "동대문구", (127.0396, 37.5744)),
    "동작구": SeoulStation("dongjak-gu", "동작구", (126.9393, 37.5124)),
    "마포구": SeoulStation("mapo-gu", "마포구", (126.9019, 37.5663)),
    "서대문구": SeoulStation("seodaemun-gu", "서대문구", (126.9368, 37.5791)),
    "서초구": SeoulStation("seocho-gu", "서초구", (127.0324, 37.4837)),
    "성동구": SeoulStation("seongdong-gu", "성동구", (127.0371, 37.5633)),
    "성북구": SeoulStation("seongbuk-gu", "성북구", (127.0167, 37.5894)),
    "송파구": SeoulStation("songpa-gu", "송파구", (127.1059, 37.5145)),
    "양천구": SeoulStation("yangcheon-gu", "양천구", (126.8665, 37.5170)),
    "영등포구": SeoulStation("yeongdeungpo-gu", "영등포구", (126.8962, 37.5264)),
    "용산구": SeoulStation("yongsan-gu", "용산구", (126.9906, 37.5324)),
    "은평구": SeoulStation("eunpyeong-gu", "은평구", (126.9291, 37.6027)),
    "종로구": SeoulStation("jongno-gu", "종로구", (126.9790, 37.5735)),
    "중구": SeoulStation("jung-gu", "중구", (126.9979, 37.5641)),
    "중랑구": SeoulStation("jungnang-gu", "중랑구", (127.0925, 37.6063)),
    # parks, mountains and neighbourhoods
    "관악산": SeoulStation("gwanaksan", "관악구", (126.9640, 37.4445)),
    "남산": SeoulStation("namsan", None, (126.9882, 37.5512)),
    "북한산": SeoulStation("bukhansan", None, (126.9779, 37.6588)),
    "서울숲": SeoulStation("seoulsup", "성동구", (127.0374, 37.5444)),
    "올림픽공원": SeoulStation("olympic-park", "송파구", (127.1217, 37.5210)),
    "세곡": SeoulStation("segok", "강남구", (127.1046, 37.4647)),
    "항동": SeoulStation("hang-dong", "구로구", (126.8250, 37.4816)),
    "자연사박물관": SeoulStation("natural-history-museum", "서대문구", (126.9393, 37.5767)),
    "마포아트센터": SeoulStation("mapo-art-center", "마포구"),
    "행주": SeoulStation("haengju"),
    "종로": SeoulStation("jongno", "종로구"),
    # roadside stations (named after the road)
    "강남대로": SeoulStation("gangnam-daero"),
    "강변북로": SeoulStation("gangbyeonbuk-ro"),
    "공항대로": SeoulStation("gonghang-daero"),
    "도산대로": SeoulStation("dosan-daero"),
    "동작대로": SeoulStation("dongjak-daero"),
    "시흥대로": SeoulStation("siheung-daero"),
    "신촌로": SeoulStation("sinchon-ro"),
    "영등포로": SeoulStation("yeongdeungpo-ro"),
    "정릉로": SeoulStation("jeongneung-ro"),
    "천호대로": SeoulStation("cheonho-daero"),
    "청계천로": SeoulStation("cheonggyecheon-ro"),
    "한강대로": SeoulStation("hangang-daero"),
    "홍릉로": SeoulStation("hongneung-ro"),
    "화랑로": SeoulStation("hwarang-ro"),
}
