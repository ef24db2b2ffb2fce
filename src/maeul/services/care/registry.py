"""The care alerts' registry entry and impact assessment, declared next to the code.

``ensure_registered`` declares the entry, syncs it into a tenant and scores the shipped
answers (``data/impact_answers.json``, level III: maeul itself has not done a privacy impact
assessment, bias test or external audit; a city re-assesses after it has) unless the city
assessed the system itself. Whatever the level, the service asks for a human review of every
alert (``review: "required"``): welfare alerts never act on their own.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson

from ...trust.registry import declare, ensure_system
from ...trust.registry_model import DECLARED, validate_fields

SYSTEM_ID = "care-alerts"
ASSESSOR = "code:care"
ACTION_KIND = "care.response"

ENTRY: dict[str, Any] = {
    "id": SYSTEM_ID,
    "name": {"ko": "홀몸 어르신 돌봄 알림", "en": "Care alerts for older people living alone"},
    "description_short": {
        "ko": "동의한 가구의 전력 사용 패턴이 평소와 다르면 담당 돌봄 인력에게 확인을 "
              "요청합니다. 모든 알림은 사람이 확인합니다.",
        "en": "When a consenting household's power use departs from its own routine, its "
              "care worker is asked to check in; a person reviews every alert.",
    },
    "organization": {"ko": "maeul을 운영하는 지방자치단체",
                     "en": "The local government running maeul"},
    "department": {"ko": "복지정책과", "en": "Welfare Policy Division"},
    "contact_email": "welfare@city.invalid",
    "country": {"ko": "대한민국", "en": "Republic of Korea"},
    "status": "pilot",
    "domain": "health and health care",
    "area": {"ko": "돌봄 서비스에 동의한 가구", "en": "Households enrolled with consent"},
    "keywords": {"ko": "고독사 예방, 스마트 미터, 돌봄, 이상 탐지",
                 "en": "lonely deaths, smart meter, care, anomaly detection"},
    "decision_making_process": {
        "ko": "가구의 전력 사용 이력으로 평소 생활 패턴(기상 시각, 활동 시간대, 하루 "
              "사용량)을 배우고, 15분마다 새 검침값과 비교합니다. 평소와 다른 정도에 따라 "
              "관심·주의·심각 등급의 알림을 만들어 결정 엔진에 제안으로 제출하고, 담당 "
              "돌봄 인력이 안부 전화, 방문 또는 오경보로 답합니다. 답은 모델에 반영됩니다.",
        "en": "It learns the household's routine (wake time, active hours, daily use) from "
              "its own meter history and compares each new 15-minute reading with it. A "
              "departure becomes an alert graded 관심 (attention), 주의 (caution) or 심각 "
              "(serious), submitted to the decision engine as a proposal; the care worker "
              "answers with a check-in call, a visit or a false alarm, which the model "
              "learns from.",
    },
    "goal": {"ko": "홀로 사는 어르신의 위기 상황을 일찍 발견하는 것입니다.",
             "en": "Finding older people living alone in trouble early."},
    "impact": {
        "ko": "알림을 받은 가구에 전화나 방문이 이루어집니다. 알림이 없으면 위기를 놓칠 수 "
              "있습니다.",
        "en": "Households with an alert get a call or a visit; a missed alert can leave a "
              "person in trouble unnoticed.",
    },
    "risks": {
        "ko": "불규칙한 생활을 하는 가구는 오경보가 많고, 외출을 알리지 않으면 알림이 "
              "생깁니다. 알림이 늦거나 없을 수 있으므로 기존 돌봄 방문을 대신하지 않습니다.",
        "en": "Households with irregular routines get more false alarms, and unannounced "
              "absences raise alerts; alerts can come late or not at all, so they add to "
              "regular care visits and never replace them.",
    },
    "risk_category": "high risk",
    "proportionality": {
        "ko": "전력 사용량만 쓰며 카메라나 마이크를 쓰지 않습니다. 가구는 동의하고 언제든 "
              "철회할 수 있습니다.",
        "en": "Only power readings are used, no cameras or microphones; households consent "
              "and may withdraw at any time.",
    },
    "lawful_basis": {
        "ko": "사회보장급여법과 고독사 예방법에 따른 지방자치단체의 위기가구 발굴 업무, "
              "정보주체의 동의",
        "en": "The local authority's duty to find households in crisis under the Social "
              "Security Benefits Act and the Lonely Death Prevention Act, with the data "
              "subject's consent",
    },
    "training_data": {
        "ko": "공통 학습 데이터가 없습니다. 가구마다 자기 이력으로 배웁니다.",
        "en": "No shared training data: each household's model learns from its own history.",
    },
    "source_data": {
        "ko": "스마트 미터의 1~15분 단위 전력 검침값(가명 처리된 계량기 식별자), 가구가 "
              "동의한 경우 동작·출입문·수도 감지 이벤트",
        "en": "Smart-meter power readings every 1-15 minutes, with pseudonymised meter ids; "
              "motion, door and water events where the household consented to those sensors",
    },
    "data_bias": {
        "ko": "생활이 불규칙하거나 전력을 거의 쓰지 않는 가구는 모델이 덜 정확합니다.",
        "en": "The model is less accurate for homes with irregular routines or very low use.",
    },
    "connected_data_sources": {
        "ko": "maeul 데이터 허브의 EnergyMeter, CareHousehold 엔티티",
        "en": "EnergyMeter and CareHousehold entities in the maeul data hub",
    },
    "description": {
        "ko": "가구별로 시간대·요일별 활동 확률, 대기 전력, 기상 시각 분포를 학습하고, 지금 "
              "관측된 무활동 시간이 그 시간대에 얼마나 드문지로 등급을 정합니다.",
        "en": "Per household it learns activity probabilities by time of day and weekday, "
              "standby power and the distribution of wake times, and grades a departure by "
              "how rare the observed quiet spell is at that time of day.",
    },
    "algorithm_type": "self-learning",
    "methods_and_models": {
        "ko": "가구별 통계 모델(시간대별 활동 분포, 무활동 지속 시간의 생존 확률)",
        "en": "Per-household statistical model (activity by time slot, survival "
              "probability of quiet spells)",
    },
    "alternatives_considered": {
        "ko": "모든 가구에 같은 임계값을 쓰는 방식은 오경보가 많아 제외했습니다.",
        "en": "One fixed threshold for every household was rejected for its false alarms.",
    },
    "type": "predictive",
    "monitoring": {
        "ko": "오경보율과 탐지 지연을 `maeul care eval`로 측정해 공개합니다.",
        "en": "False-alert rate and detection delay are measured with `maeul care eval` and "
              "published.",
    },
    "human_intervention": {
        "ko": "모든 알림은 담당 돌봄 인력이 확인하고 대응을 결정합니다.",
        "en": "A care worker reviews every alert and decides the response.",
    },
    "objection_procedure": {
        "ko": "이 등록부의 의견 보내기나 복지정책과로 이의를 제기하거나 동의를 철회할 수 "
              "있습니다.",
        "en": "Object, or withdraw consent, through this registry's feedback form or the "
              "Welfare Policy Division.",
    },
    "rollback": {
        "ko": "서비스를 멈추면 기존 정기 방문 돌봄만 남습니다.",
        "en": "Stopping the service leaves the regular care visits in place.",
    },
}
validate_fields(ENTRY, allow_id=True)


def declare_entry() -> None:
    if SYSTEM_ID not in DECLARED:
        declare(ENTRY)


def shipped_answers() -> dict[str, Any]:
    raw = resources.files("maeul.services.care").joinpath("data/impact_answers.json").read_bytes()
    doc: dict[str, Any] = orjson.loads(raw)
    return doc


def ensure_registered(services: Any, tenant: str) -> int:
    """Sync the entry into ``tenant`` and assess it (unless the city did); the level."""
    return ensure_system(services, tenant, ENTRY, shipped_answers()["answers"], ASSESSOR)
