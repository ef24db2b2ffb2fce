"""Registry entries of the trust layer's own systems, declared in code.

Organisation, department and contact are the city's to fill in: the declaration carries
placeholders (an ``.invalid`` address) that a city edit replaces for good.
"""

from __future__ import annotations

from .registry_model import declare

PRIVACY_MASKING = declare({
    "id": "privacy-masking",
    "name": {"ko": "시민 작성 글의 개인정보 가림 처리",
             "en": "Masking of personal data in text written by citizens"},
    "description_short": {
        "ko": "민원 등 시민이 쓴 글에서 이름·전화번호·주민등록번호·이메일·주소·차량번호를 "
              "찾아 저장 전에 가립니다.",
        "en": "Finds names, phone numbers, resident registration numbers, e-mails, addresses "
              "and car plates in citizen text and masks them before storage.",
    },
    "organization": {"ko": "maeul을 운영하는 지방자치단체",
                     "en": "The local government running maeul"},
    "department": {"ko": "개인정보 보호 담당 부서", "en": "Data protection office"},
    "contact_email": "privacy-office@city.invalid",
    "status": "operational",
    "domain": "government",
    "area": {"ko": "maeul이 운영되는 지역 전체", "en": "The whole area served by maeul"},
    "keywords": {"ko": "개인정보, 가명처리, 민원, 마스킹",
                 "en": "privacy, masking, complaints, PII"},
    "decision_making_process": {
        "ko": "시민이 작성한 글(민원, 의견, 이의 제기)을 플랫폼에 저장하기 전 단계에서 "
              "자동으로 실행됩니다. 사람에 대한 결정을 내리지 않으며, 저장되는 글의 형태만 "
              "바꿉니다.",
        "en": "Runs automatically before text written by citizens (complaints, feedback, "
              "objections) is stored on the platform. It takes no decision about anyone; it "
              "only changes what form of the text is kept.",
    },
    "goal": {
        "ko": "담당 공무원과 분석 서비스가 민원의 내용은 활용하되, 필요 이상으로 개인정보를 "
              "보거나 보관하지 않도록 하는 것입니다(개인정보 최소 처리 원칙).",
        "en": "Lets staff and analysis services use what a complaint is about without seeing "
              "or keeping more personal data than they need (data minimisation).",
    },
    "impact": {
        "ko": "시민이 글에 적은 연락처 등은 저장된 글에서 가려진 표시로 바뀝니다. 잘못 가려진 "
              "단어는 담당자가 내용을 이해하기 어렵게 할 수 있고, 놓친 개인정보는 그대로 "
              "저장될 수 있습니다.",
        "en": "Contact details and similar data a citizen writes are replaced by a mask in the "
              "stored text. A word masked by mistake can make a complaint harder to "
              "understand; personal data the rules miss is stored as written.",
    },
    "risks": {
        "ko": "놓침(개인정보가 남는 경우)과 과잉 가림(일반 단어를 가리는 경우)이 주된 "
              "위험입니다. 원문은 정책이 허용한 경우에만 암호화하여 보관하고, 평가 명령으로 "
              "두 가지 오류를 측정합니다.",
        "en": "Misses (personal data left in place) and over-masking (ordinary words hidden) "
              "are the main risks. The original is kept only where policy allows, encrypted, "
              "and both kinds of error are measured by an evaluation command.",
    },
    "risk_category": "minimal risk",
    "proportionality": {
        "ko": "규칙 기반 처리로 설명과 검증이 쉽고, 글의 의미는 대부분 유지하면서 개인정보 "
              "노출을 줄입니다.",
        "en": "Rule-based processing is easy to explain and check, and it reduces the exposure "
              "of personal data while keeping most of what the text says.",
    },
    "lawful_basis": {
        "ko": "개인정보 보호법의 개인정보 최소 처리 및 안전성 확보 조치 의무",
        "en": "The Personal Information Protection Act's duties of minimal processing and "
              "of safeguarding personal information (Republic of Korea)",
    },
    "training_data": {
        "ko": "학습 데이터를 사용하지 않습니다(규칙 기반).",
        "en": "No training data is used (rule-based).",
    },
    "source_data": {
        "ko": "시민이 플랫폼에 제출한 글만 처리합니다.",
        "en": "Only the text citizens submit to the platform.",
    },
    "data_bias": {
        "ko": "규칙은 한국어 표기 관례(전화번호, 주민등록번호, 차량번호 형식)에 맞춰져 있어 "
              "외국식 이름이나 주소는 덜 정확하게 찾을 수 있습니다.",
        "en": "The rules follow Korean conventions (phone, resident registration and plate "
              "formats), so foreign names and addresses may be found less reliably.",
    },
    "connected_data_sources": {
        "ko": "다른 데이터베이스와 연결하지 않습니다.",
        "en": "No connection to other databases.",
    },
    "description": {
        "ko": "글을 저장하기 직전에 정해진 규칙으로 개인정보 유형(이름, 전화번호, "
              "주민등록번호, 이메일, 주소, 차량번호)을 찾아 유형을 나타내는 표시로 바꿉니다. "
              "찾은 유형의 이름만 기록하고 값은 기록하지 않습니다. 정책에서 원문 보관을 "
              "허용한 경우에만 원문을 플랫폼 밖에 둔 키로 암호화해 보관합니다.",
        "en": "Right before a text is stored, fixed rules look for kinds of personal data "
              "(names, phone numbers, resident registration numbers, e-mails, addresses, car "
              "plates) and replace each find by a marker of its kind. Only the kinds found are "
              "recorded, never the values. Where the policy keeps the original, it is "
              "encrypted with a key kept outside the platform's database.",
    },
    "algorithm_type": "rule-based",
    "methods_and_models": {
        "ko": "패턴 일치 규칙(정규 표현식), 흔한 한국 성씨 목록과 '저는 …입니다', '… 씨' 같은 "
              "문맥 단서, 주민등록번호 검증 숫자 확인",
        "en": "Pattern-matching rules (regular expressions), a list of common Korean surnames "
              "with context cues such as '저는 …입니다' or '… 씨', and the resident "
              "registration number's check digit",
    },
    "alternatives_considered": {
        "ko": "학습 기반 개체명 인식 모델은 설명과 검증이 어렵고 학습 데이터가 필요해 "
              "채택하지 않았습니다.",
        "en": "A trained named-entity model was not chosen: it is harder to explain and check "
              "and it needs training data.",
    },
    "type": "descriptive",
    "monitoring": {
        "ko": "가려진 개인정보 유형별 건수를 기록하고, 평가 명령의 결과를 이 등록부에 "
              "게시합니다.",
        "en": "Counts of masked kinds are recorded, and the evaluation command's results are "
              "published in this registry.",
    },
    "human_intervention": {
        "ko": "담당 부서는 정책이 허용하고 목적이 있는 경우 암호화된 원문을 열람할 수 "
              "있으며, 모든 열람은 감사 기록에 남습니다.",
        "en": "Where policy allows it, staff with the purpose may open the encrypted original; "
              "every such read is recorded in the audit log.",
    },
    "objection_procedure": {
        "ko": "이 등록부의 의견 보내기로 개인정보 보호 담당 부서에 이의를 제기할 수 있습니다.",
        "en": "Send an objection to the data protection office through this registry's "
              "feedback form.",
    },
    "rollback": {
        "ko": "가림 처리를 끄면 이후의 글은 원문대로 저장됩니다. 이미 가려진 글은 보관된 "
              "원문이 있는 경우에만 되돌릴 수 있습니다.",
        "en": "Switching masking off stores later texts as written. Texts already masked can "
              "be restored only where the original was kept.",
    },
})
