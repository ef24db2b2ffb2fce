"""The civic desk's two registry entries and impact assessments, declared next to the code.

- ``civic-routing`` routes complaints to a department (level II with the shipped answers in
  ``data/impact_routing.json``: it decides, staff review and re-route at any time, and every
  routing is recorded with its confidence and model version).
- ``civic-answers`` answers citizens' questions from the city's documents (level I with
  ``data/impact_answers.json``: it only informs, and never answers without a citation).

``maeul civic eval`` records measured figures on both (``record_evaluation``), which is where
the registry's performance section comes from.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson

from ...trust.registry import declare, ensure_system
from ...trust.registry_model import DECLARED, validate_fields

ROUTING_ID = "civic-routing"
ANSWERS_ID = "civic-answers"
ASSESSOR = "code:civic"

_COMMON: dict[str, Any] = {
    "organization": {"ko": "maeul을 운영하는 지방자치단체",
                     "en": "The local government running maeul"},
    "department": {"ko": "민원봉사과", "en": "Civil Service Division"},
    "contact_email": "civil@city.invalid",
    "country": {"ko": "대한민국", "en": "Republic of Korea"},
    "status": "pilot",
    "domain": "government",
    "area": {"ko": "시 전역", "en": "The whole city"},
    "alternatives_considered": {
        "ko": "사람이 모든 민원을 읽고 분류하는 방식은 접수 후 배정까지 시간이 걸려 보조 "
              "수단으로 남겼습니다.",
        "en": "People reading and routing every complaint by hand delays assignment; it "
              "remains the fallback.",
    },
    "rollback": {"ko": "시스템을 멈추면 민원실 직원이 직접 분류하고 답합니다.",
                 "en": "When stopped, desk staff route and answer by hand."},
    "objection_procedure": {
        "ko": "이 등록부의 의견 보내기나 민원봉사과로 이의를 제기할 수 있습니다.",
        "en": "Object through this registry's feedback form or the Civil Service Division.",
    },
}

ROUTING: dict[str, Any] = {
    **_COMMON,
    "id": ROUTING_ID,
    "name": {"ko": "민원 자동 분류·배정", "en": "Complaint routing"},
    "description_short": {
        "ko": "시민이 쓴 민원을 읽고 담당 부서를 정하며, 장소와 시간을 찾고, 근처에 이미 "
              "접수된 같은 민원에 연결합니다.",
        "en": "Reads a citizen's complaint, picks the responsible department, finds its "
              "place and time, and links it to the same open complaint nearby.",
    },
    "keywords": {"ko": "민원, 분류, Open311, 중복 민원", "en": "complaints, routing, Open311, "
                 "duplicates"},
    "decision_making_process": {
        "ko": "민원 문장을 다국어 문장 임베딩과 형태소 분석으로 분류 체계의 예시 및 처리된 "
              "민원과 비교해 범주와 신뢰도를 정합니다. 신뢰도가 낮으면 시민에게 상위 후보 중 "
              "하나를 고르게 합니다. 담당 공무원은 언제든 다른 부서로 재배정할 수 있고, 그 "
              "결정은 모델이 곧바로 배웁니다.",
        "en": "The complaint is compared, through multilingual sentence embeddings and "
              "Korean morphology, with the taxonomy's examples and with complaints already "
              "routed, giving a category and a confidence. Below a threshold the citizen "
              "picks between the top choices. Staff can re-route at any time, and the model "
              "learns from it at once.",
    },
    "goal": {"ko": "민원을 처음부터 맞는 부서에 보내 처리 시간을 줄이는 것입니다.",
             "en": "Sending each complaint to the right department first time, so it is "
                   "handled sooner."},
    "impact": {"ko": "잘못 배정된 민원은 재배정될 때까지 처리가 늦어집니다.",
               "en": "A misrouted complaint waits until it is re-routed."},
    "risks": {
        "ko": "방언, 외국어, 짧은 글은 분류가 덜 정확할 수 있습니다. 장소를 잘못 읽으면 다른 "
              "민원에 연결될 수 있으나, 연결은 같은 범주·가까운 거리·비슷한 내용일 때만 "
              "이루어집니다.",
        "en": "Dialect, other languages and very short texts are routed less accurately. "
              "A misread place could link a report to another complaint, but links need the "
              "same category, a short distance and a similar description.",
    },
    "risk_category": "limited risk",
    "proportionality": {
        "ko": "민원 본문의 개인정보(이름, 전화번호, 주민등록번호, 주소)는 저장 전에 가립니다.",
        "en": "Personal data in the complaint text (names, phone numbers, resident "
              "registration numbers, addresses) is masked before it is stored.",
    },
    "lawful_basis": {"ko": "민원 처리에 관한 법률에 따른 민원 접수·처리 업무",
                     "en": "Handling complaints under the Civil Petitions Treatment Act"},
    "training_data": {
        "ko": "시가 정한 분류 체계의 예시 문장과, 담당자가 확인하거나 재배정한 민원(개인정보를 "
              "가린 본문)",
        "en": "The city taxonomy's example complaints and complaints staff confirmed or "
              "re-routed (masked text)",
    },
    "source_data": {"ko": "시민이 앱, 웹, Open311로 보낸 민원", "en": "Complaints citizens send "
                    "through apps, the web and Open311"},
    "data_bias": {
        "ko": "예시가 적은 범주와 표준어가 아닌 글은 정확도가 낮을 수 있습니다.",
        "en": "Categories with few examples and non-standard writing may be routed less "
              "accurately.",
    },
    "connected_data_sources": {"ko": "maeul 데이터 허브의 ServiceRequest 및 이름·위치가 있는 "
                               "엔티티(지명 검색)",
                               "en": "ServiceRequest entities and named, located entities "
                               "(place lookup) in the maeul hub"},
    "description": {
        "ko": "예시와 처리된 민원에 대한 유사도, 형태소 기반 어휘 일치를 결합한 분류기와 "
              "장소·시간 추출기, 중복 탐지기로 이루어집니다.",
        "en": "A classifier combining similarity to examples and routed complaints with "
              "morpheme-level word overlap, plus a place and time extractor and a duplicate "
              "detector.",
    },
    "algorithm_type": "self-learning",
    "methods_and_models": {"ko": "multilingual-e5-small 문장 임베딩, Kiwi 형태소 분석",
                           "en": "multilingual-e5-small sentence embeddings, Kiwi morphology"},
    "type": "prescriptive",
    "monitoring": {"ko": "`maeul civic eval`로 부서 정확도를 측정해 이 등록부에 공개합니다.",
                   "en": "Department accuracy is measured with `maeul civic eval` and "
                         "published in this registry."},
    "human_intervention": {"ko": "담당 공무원이 모든 민원을 처리하며 배정을 바꿀 수 있습니다.",
                           "en": "Staff handle every complaint and can change its routing."},
}

ANSWERS: dict[str, Any] = {
    **_COMMON,
    "id": ANSWERS_ID,
    "name": {"ko": "시 문서 기반 질문 답변", "en": "Answers from the city's documents"},
    "description_short": {
        "ko": "시가 등록한 조례, 안내문, 요금표에서만 답을 찾아 출처와 함께 보여 줍니다. 문서에 "
              "없으면 답하지 않고 민원 접수를 안내합니다.",
        "en": "Answers only from the city's own documents, always with sources; otherwise "
              "it says so and offers to file a request.",
    },
    "keywords": {"ko": "질의응답, 검색, 출처 인용", "en": "questions, search, citations"},
    "decision_making_process": {
        "ko": "질문과 문서 구절을 형태소 기반 BM25와 문장 임베딩으로 찾아 함께 순위를 매기고, "
              "가장 관련 있는 문장을 그대로 인용합니다. 근거가 부족하면 답을 거절합니다.",
        "en": "Passages are found with BM25 over Korean morphemes and with sentence "
              "embeddings, ranked together, and the most relevant sentences are quoted. "
              "Without enough support the desk declines to answer.",
    },
    "goal": {"ko": "시민이 운영시간, 요금, 절차를 언제든 정확한 출처와 함께 알 수 있게 합니다.",
             "en": "Letting residents find opening hours, fees and procedures at any time, "
                   "with the exact source."},
    "impact": {"ko": "답은 안내일 뿐이며 행정 결정을 대신하지 않습니다.",
               "en": "Answers are guidance only and never an administrative decision."},
    "risks": {
        "ko": "문서가 오래되면 답도 오래됩니다. 인용한 문장이 질문과 어긋날 수 있어 출처를 "
              "항상 함께 보여 줍니다.",
        "en": "Outdated documents give outdated answers; a quoted sentence may miss the "
              "question, so its source is always shown.",
    },
    "risk_category": "minimal risk",
    "proportionality": {"ko": "질문 내용은 저장하지 않고 답변 여부와 인용 문서만 기록합니다.",
                        "en": "Questions are not stored; only whether it answered and which "
                              "documents it cited are recorded."},
    "lawful_basis": {"ko": "행정 정보 제공 업무", "en": "Providing public information"},
    "training_data": {"ko": "학습하지 않습니다. 시가 등록한 문서에서 찾습니다.",
                      "en": "Nothing is trained: it searches the documents the city loaded."},
    "source_data": {"ko": "시가 등록한 문서(마크다운, HTML, PDF, 텍스트)",
                    "en": "Documents the city loaded (Markdown, HTML, PDF, text)"},
    "data_bias": {"ko": "문서가 다루지 않는 주제에는 답하지 않습니다.",
                  "en": "Topics the documents do not cover get no answer."},
    "connected_data_sources": {"ko": "시 문서 폴더", "en": "The city's document folder"},
    "description": {
        "ko": "하이브리드 검색(BM25와 임베딩)과 추출형 답변. 시가 설정하면 생성 모델이 답을 "
              "다듬을 수 있으나 같은 인용 검사를 통과해야 하며 'AI 생성'으로 표시됩니다.",
        "en": "Hybrid search (BM25 and embeddings) with extractive answers. A city may "
              "configure a generator to phrase answers; its output must pass the same "
              "citation check and is labelled AI-generated.",
    },
    "algorithm_type": "hybrid",
    "methods_and_models": {"ko": "BM25(bm25s), multilingual-e5-small, Kiwi 형태소 분석",
                           "en": "BM25 (bm25s), multilingual-e5-small, Kiwi morphology"},
    "type": "descriptive",
    "monitoring": {"ko": "`maeul civic eval`로 인용 정확도와 범위 밖 질문 거절을 측정합니다.",
                   "en": "Citation accuracy and refusal of out-of-scope questions are "
                         "measured with `maeul civic eval`."},
    "human_intervention": {"ko": "답이 없으면 민원 접수로 이어져 담당자가 답합니다.",
                           "en": "Without an answer the citizen can file a request that "
                                 "staff answer."},
}

validate_fields(ROUTING, allow_id=True)
validate_fields(ANSWERS, allow_id=True)


def declare_entries() -> None:
    for entry in (ROUTING, ANSWERS):
        if entry["id"] not in DECLARED:
            declare(entry)


def _answers(name: str) -> dict[str, Any]:
    raw = resources.files("maeul.services.civic").joinpath(f"data/{name}").read_bytes()
    doc: dict[str, Any] = orjson.loads(raw)["answers"]
    return doc


def ensure_registered(services: Any, tenant: str) -> dict[str, int]:
    """Sync both entries into ``tenant`` and assess them (unless the city did); levels."""
    return {
        ROUTING_ID: ensure_system(services, tenant, ROUTING, _answers("impact_routing.json"),
                                  ASSESSOR),
        ANSWERS_ID: ensure_system(services, tenant, ANSWERS, _answers("impact_answers.json"),
                                  ASSESSOR),
    }
