"""The signal controller's registry entry and impact assessment, declared next to its code.

The entry (Algorithmic Transparency Standard fields, Korean and English) is validated when
this module is imported and declared (``maeul.trust.registry.declare``) when the service
starts, so importing the module changes no process-wide state. ``ensure_registered`` declares
it, syncs it into a tenant and scores the shipped impact-assessment answers
(``data/impact_answers.json``, level II) unless the city has assessed the system itself, so
a running controller is never unassessed.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson

from ...trust.registry import declare, ensure_system
from ...trust.registry_model import DECLARED, validate_fields

SYSTEM_ID = "traffic-signal-control"
ASSESSOR = "code:signals"  # the actor of the shipped assessment; a city's own one is kept
ACTION_KIND = "signals.phase"

ENTRY: dict[str, Any] = {
    "id": SYSTEM_ID,
    "name": {"ko": "교통신호 적응 제어", "en": "Adaptive traffic signal control"},
    "description_short": {
        "ko": "교차로 접근로의 대기 차량을 보고 다음 녹색 신호를 고르며, 모든 신호 변경은 "
              "제안으로 기록되고 운영자가 승인을 요구할 수 있습니다.",
        "en": "Picks each intersection's next green from its queues; every change is a "
              "recorded proposal that operators can hold for approval.",
    },
    "organization": {"ko": "maeul을 운영하는 지방자치단체",
                     "en": "The local government running maeul"},
    "department": {"ko": "교통운영과", "en": "Transport Operations Division"},
    "contact_email": "traffic-operations@city.invalid",
    "country": {"ko": "대한민국", "en": "Republic of Korea"},
    "status": "pilot",
    "domain": "traffic and transportation",
    "area": {"ko": "신호 교차로가 있는 시범 구역", "en": "The pilot area's signalised "
                                                "intersections"},
    "keywords": {"ko": "교통신호, 적응 신호 제어, 맥스프레셔, 디지털 트윈, SUMO",
                 "en": "traffic signals, adaptive signal control, max-pressure, digital twin, "
                       "SUMO"},
    "decision_making_process": {
        "ko": "10초마다 교차로별로 접근로의 대기·접근 차량을 세어 다음 녹색 현시를 고릅니다. "
              "현시를 바꾸려면 제안을 신뢰 계층의 결정 엔진에 제출하며, 영향 평가 등급(II)에 "
              "따라 자동 적용되거나, 운영자 승인 정책이면 승인될 때까지 대기합니다. 최소 녹색 "
              "시간, 황색 신호, 네트워크에 정의된 현시만 허용하는 규칙은 제어기가 바꿀 수 "
              "없습니다.",
        "en": "Every 10 seconds it counts queued and approaching vehicles on each "
              "intersection's approaches and picks the next green phase. A change is "
              "submitted as a proposal to the trust layer's decision engine: applied at once "
              "at the assessed level (II), or held until an operator approves it under the "
              "operator policy. Minimum green, the yellow between conflicting greens and the "
              "network's own set of phases are enforced outside the controller, which cannot "
              "change them.",
    },
    "goal": {
        "ko": "교차로 지체와 대기 시간, 정지·출발에 따른 배출가스를 줄이는 것입니다.",
        "en": "Less delay and waiting at intersections, and fewer stop-and-go emissions.",
    },
    "impact": {
        "ko": "신호를 기다리는 운전자, 보행자, 대중교통 이용자의 대기 시간이 달라집니다. 긴급 "
              "차량은 경로의 녹색 신호를 우선 받습니다.",
        "en": "Changes how long drivers, pedestrians and public transport users wait at "
              "signals. Emergency vehicles get green along their route first.",
    },
    "risks": {
        "ko": "교통량이 적은 접근로(이면도로, 보행자)가 오래 기다릴 수 있고, 검지기 고장 시 "
              "잘못된 현시를 고를 수 있으며, 특정 시나리오에서 정체가 풀리지 않을 수 "
              "있습니다(벤치마크 cologne3에서 관측). 시뮬레이션 평가 결과는 docs/signals.md에 "
              "공개합니다.",
        "en": "Approaches with little traffic (side streets, pedestrians) may wait longer; a "
              "broken detector can lead to a wrong phase; some scenarios can gridlock (seen "
              "on the cologne3 benchmark). Simulation results are published in "
              "docs/signals.md.",
    },
    "risk_category": "limited risk",
    "proportionality": {
        "ko": "규칙 기반이라 각 결정을 대기 차량 수로 설명할 수 있고, 모든 변경은 되돌릴 수 "
              "있으며 안전 규칙은 별도로 강제됩니다.",
        "en": "Rule-based, so each decision is explained by vehicle counts; every change can "
              "be rolled back, and the safety rules are enforced separately.",
    },
    "lawful_basis": {
        "ko": "도로교통법에 따른 지방자치단체의 교통신호기 설치·관리 권한",
        "en": "The local authority's power to install and operate traffic signals under the "
              "Road Traffic Act (Republic of Korea)",
    },
    "training_data": {
        "ko": "학습 데이터를 사용하지 않습니다(규칙 기반). 규칙은 RESCO 벤치마크 네트워크의 "
              "시뮬레이션으로 선택했습니다.",
        "en": "No training data (rule-based). The rule was chosen from simulations of the "
              "RESCO benchmark networks.",
    },
    "source_data": {
        "ko": "교차로 접근로 검지기의 차량 수, 점유율, 속도(개인 식별 정보 없음)와 신호 "
              "상태. 시범 단계에서는 SUMO 디지털 트윈의 모의 검지기입니다.",
        "en": "Vehicle counts, occupancy and speeds from approach detectors (no personal "
              "identifiers) and the signal state; in the pilot, simulated detectors of the "
              "SUMO digital twin.",
    },
    "data_bias": {
        "ko": "검지기가 차량만 세므로 보행자와 자전거 수요는 반영되지 않습니다.",
        "en": "Detectors count vehicles only, so pedestrian and cycle demand is not seen.",
    },
    "connected_data_sources": {
        "ko": "maeul 데이터 허브의 TrafficFlowObserved(스마트 데이터 모델) 엔티티",
        "en": "TrafficFlowObserved (Smart Data Models) entities in the maeul data hub",
    },
    "description": {
        "ko": "각 녹색 현시의 압력(그 현시가 처리하는 진입 차로의 대기 차량 수 - 진출 차로의 "
              "대기 차량 수, 검지 구간에서 움직이는 차량은 0.5로 계산)을 구해 가장 높은 "
              "현시를 고릅니다. 동점이면 현재 현시를 유지합니다.",
        "en": "For each green phase it computes a pressure (queued vehicles on the incoming "
              "lanes it serves minus those on its outgoing lanes, with vehicles still moving "
              "in the detection zone counted at 0.5) and picks the highest; ties keep the "
              "current green.",
    },
    "algorithm_type": "rule-based",
    "methods_and_models": {
        "ko": "Varaiya의 맥스프레셔 제어를 확장한 규칙(delaypressure), 보호 규칙 없는 "
              "맥스프레셔, 큐 해소형 감응 제어, 고정 시간(네트워크 자체 신호 계획) 중 "
              "네트워크마다 시뮬레이션으로 고른 하나",
        "en": "One chosen per network by simulation among a rule extending Varaiya's "
              "max-pressure control (delaypressure), plain max-pressure, queue-clearance "
              "actuation, and fixed time (the network's own programs)",
    },
    "alternatives_considered": {
        "ko": "강화학습 제어기는 학습 비용과 설명 가능성 때문에 시범 단계에서 제외했습니다.",
        "en": "Reinforcement-learning controllers were left out of the pilot for their "
              "training cost and weaker explainability.",
    },
    "type": "prescriptive",
    "monitoring": {
        "ko": "모든 신호 변경이 AIProposal 엔티티로 기록되고, 공개 KPI 'traffic-delay'(차량당 "
              "평균 지체, 목표 40초 이하)로 성과를 추적합니다.",
        "en": "Every signal change is recorded as an AIProposal entity; the public KPI "
              "'traffic-delay' (mean delay per vehicle, target at most 40 s) tracks outcomes.",
    },
    "human_intervention": {
        "ko": "운영자는 승인 정책을 켜서 모든 변경을 승인 후에만 적용하게 할 수 있고, 적용된 "
              "변경을 되돌리거나 제안을 거부할 수 있습니다.",
        "en": "Operators can switch to the approval policy so that no change applies before "
              "they approve it, and can reject proposals or roll back applied changes.",
    },
    "objection_procedure": {
        "ko": "이 등록부의 의견 보내기로 교통운영과에 이의를 제기할 수 있습니다.",
        "en": "Send an objection to the Transport Operations Division through this "
              "registry's feedback form.",
    },
    "rollback": {
        "ko": "제어를 멈추면 신호기는 네트워크 자체의 고정 시간 계획으로 돌아갑니다.",
        "en": "Stopping the controller returns the signals to the network's own fixed-time "
              "programs.",
    },
}
validate_fields(ENTRY, allow_id=True)  # a bad entry fails at import, as a declaration would


def declare_entry() -> None:
    """Declare the entry once per process (the registry then syncs it into each tenant)."""
    if SYSTEM_ID not in DECLARED:
        declare(ENTRY)


def shipped_answers() -> dict[str, Any]:
    """The shipped impact-assessment answers (``{"answers": {...}, ...}``)."""
    raw = resources.files("maeul.services.signals").joinpath(
        "data/impact_answers.json").read_bytes()
    doc: dict[str, Any] = orjson.loads(raw)
    return doc


def ensure_registered(services: Any, tenant: str) -> int:
    """Sync the entry into ``tenant`` and assess it (unless the city did); the level."""
    return ensure_system(services, tenant, ENTRY, shipped_answers()["answers"], ASSESSOR)
