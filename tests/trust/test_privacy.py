"""Privacy at ingest: pseudonyms on every write path, raw values stored nowhere, keys outside
the database, masking of citizens' text and its encrypted original (both store backends)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
T = "/trust/v1/privacy"
DC = "https://uri.etsi.org/ngsi-ld/default-context/"
PSEUDO = "urn:maeul:pseudonym:"


@pytest.fixture
def hub(store_url: str, tmp_path: Path) -> Iterator[Any]:
    settings = make_settings(store_url, tmp_path, auth_enabled=True, trust_jobs=False,
                             secrets_dir=tmp_path / "secrets")
    with app_client(settings) as c:
        c.admin = bearer(c.services.keys.create("admin"))  # type: ignore[attr-defined]
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def stored_dump(services: Any) -> bytes:
    """Every byte the store holds: the SQLite files, or every row of every PostgreSQL table."""
    url = services.store.url
    if url.startswith("sqlite"):
        path = Path(services.store.path)
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    import psycopg

    out = []
    with psycopg.connect(url) as conn:
        for table in ("entities", "entity_types", "history", "temporal_entities", "kv",
                      "outbox", "audit", "tenants"):
            for row in conn.execute(f"SELECT * FROM {table}").fetchall():  # noqa: S608
                out.append(repr(row))
    return "\n".join(out).encode()  # repr keeps Hangul as it is


def value_of(hub: Any, eid: str, attr: str, headers: dict[str, str] | None = None) -> Any:
    r = hub.get(f"{B}/entities/{eid}", headers=headers or hub.admin)
    assert r.status_code == 200, r.text
    return r.json()[attr]["value"]


def household(n: str, name: str, rid: str, **more: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:CareHousehold:{n}", "type": "CareHousehold",
            "residentName": prop(name), "residentId": prop(rid),
            "healthConditions": prop("dementia"), **more}


def test_identifiers_pseudonymised_on_every_write_path(hub: Any) -> None:
    from maeul.hub.core import upsert_entity, upsert_many
    from maeul.hub.entities import expand_entity

    svc = hub.services
    privacy = svc.trust.privacy
    raw: list[str] = []

    def check(eid: str, attr: str, value: str) -> None:
        raw.append(value)
        assert value_of(hub, eid, attr) == privacy.pseudonym("default", value), (eid, attr)

    h = "urn:ngsi-ld:CareHousehold:"
    # create, replace, merge, append, update, partial attribute update
    assert hub.post(f"{B}/entities", json=household("1", "김민수", "900101-1234568"),
                    headers=hub.admin).status_code == 201
    check(h + "1", "residentName", "김민수")
    check(h + "1", "residentId", "900101-1234568")
    assert hub.put(f"{B}/entities/{h}1", json={"type": "CareHousehold",
                   "residentName": prop("이영희")}, headers=hub.admin).status_code == 204
    check(h + "1", "residentName", "이영희")
    assert hub.patch(f"{B}/entities/{h}1", json={"residentId": prop("851203-2345671")},
                     headers=hub.admin).status_code == 204
    check(h + "1", "residentId", "851203-2345671")
    assert hub.post(f"{B}/entities/{h}1/attrs", json={"meterId": prop("MTR-000111")},
                    headers=hub.admin).status_code == 204
    check(h + "1", "meterId", "MTR-000111")
    assert hub.patch(f"{B}/entities/{h}1/attrs", json={"residentName": prop("박철수")},
                     headers=hub.admin).status_code == 204
    check(h + "1", "residentName", "박철수")
    assert hub.patch(f"{B}/entities/{h}1/attrs/residentName", json={"value": "최민준"},
                     headers=hub.admin).status_code == 204
    check(h + "1", "residentName", "최민준")
    assert hub.put(f"{B}/entities/{h}1/attrs/residentName", json=prop("한소희"),
                   headers=hub.admin).status_code == 204
    check(h + "1", "residentName", "한소희")
    # batch create, upsert, update, merge
    r = hub.post(f"{B}/entityOperations/create", json=[household("2", "정수빈", "020202-3123456")],
                 headers=hub.admin)
    assert r.status_code == 201, r.text
    check(h + "2", "residentName", "정수빈")
    r = hub.post(f"{B}/entityOperations/upsert", json=[household("3", "강다은", "030303-4123456")],
                 headers=hub.admin)
    assert r.status_code == 201, r.text
    check(h + "3", "residentName", "강다은")
    r = hub.post(f"{B}/entityOperations/update",
                 json=[{"id": h + "2", "residentName": prop("윤서준")}], headers=hub.admin)
    assert r.status_code == 204, r.text
    check(h + "2", "residentName", "윤서준")
    r = hub.post(f"{B}/entityOperations/merge",
                 json=[{"id": h + "3", "residentName": prop("임지우")}], headers=hub.admin)
    assert r.status_code == 204, r.text
    check(h + "3", "residentName", "임지우")
    # temporal API
    r = hub.post(f"{B}/temporal/entities", headers=hub.admin, json={
        "id": h + "4", "type": "CareHousehold",
        "residentName": [prop("오하늘", observedAt="2024-01-01T00:00:00Z")]})
    assert r.status_code == 201, r.text
    raw.append("오하늘")
    hist = hub.get(f"{B}/temporal/entities/{h}4", headers=hub.admin).json()
    assert hist["residentName"][0]["value"] == privacy.pseudonym("default", "오하늘")
    # the paths of device ingest and the importers (the hub core's upserts)
    ctx = svc.resolver.resolve(None)
    upsert_entity(svc.hub, "default", expand_entity(household("5", "서지민", "X-1"), ctx), "dev")
    check(h + "5", "residentName", "서지민")
    upsert_many(svc.hub, "default", [expand_entity(household("6", "노을", "X-2"), ctx)], "imp")
    check(h + "6", "residentName", "노을")
    # device ingest over HTTP, into a smart-meter reading
    dev = {"deviceId": "meter-7", "entityId": "urn:ngsi-ld:EnergyMeter:7",
           "entityType": "EnergyMeter",
           "attributes": {"m": "meterId", "kw": "activePower"}}
    assert hub.post("/maeul/v1/devices", json=dev, headers=hub.admin).status_code == 201
    r = hub.post("/ingest/v1/meter-7/attrs", json={"m": "MTR-777777", "kw": 1.5},
                 headers=hub.admin)
    assert r.status_code == 200, r.text
    raw.append("MTR-777777")
    reading = svc.hub.get_entity("default", "urn:ngsi-ld:EnergyMeter:7")
    assert reading["attrs"][DC + "meterId"][0]["value"] == privacy.pseudonym(
        "default", "MTR-777777")

    # a notification queued for a subscriber carries the pseudonym, never the raw value
    dump = stored_dump(svc)
    assert b"dementia" in dump  # the dump does see stored values
    for value in raw:
        assert value.encode() not in dump, value
    assert privacy.pseudonym("default", "김민수").encode() in dump


def test_pseudonyms_link_and_depend_on_the_key(hub: Any, tmp_path: Path) -> None:
    from maeul.hub.app import Services

    privacy = hub.services.trust.privacy
    hub.post(f"{B}/entities", json=household("1", "김민수", "900101-1234568",
                                             meterId=prop("MTR-000111")), headers=hub.admin)
    hub.post(f"{B}/entities", headers=hub.admin, json={
        "id": "urn:ngsi-ld:EnergyMeter:1", "type": "EnergyMeter",
        "meterId": prop(" mtr-000111 "), "activePower": prop(0.4)})
    # one identifier, two types, two spellings: one pseudonym, so the data links
    p1 = value_of(hub, "urn:ngsi-ld:CareHousehold:1", "meterId")
    p2 = value_of(hub, "urn:ngsi-ld:EnergyMeter:1", "meterId")
    assert p1 == p2 and p1.startswith(PSEUDO)
    assert privacy.pseudonym("default", "+82 10-1234-5678") == privacy.pseudonym(
        "default", "010 1234 5678")
    assert privacy.pseudonym("t2", "MTR-000111") != p1  # tenants do not link

    # the key is a file outside the database, owner-only, and not in the store
    key = tmp_path / "secrets" / "pseudonym.key"
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert key.read_bytes().strip() not in stored_dump(hub.services)

    # another key file gives other pseudonyms; the same file gives the same ones
    def pseudonym_with(secrets: Path) -> str:
        other = Services(make_settings(f"sqlite:///{tmp_path}/{secrets.name}.db", tmp_path,
                                       trust_jobs=False, secrets_dir=secrets))
        try:
            return str(other.trust.privacy.pseudonym("default", "MTR-000111"))
        finally:
            other.close()

    assert pseudonym_with(tmp_path / "other-secrets") != p1
    assert pseudonym_with(tmp_path / "secrets") == p1


def test_keep_raw_adds_the_pseudonym_beside_the_value(hub: Any) -> None:
    hub.post(f"{B}/entities", headers=hub.admin, json={
        "id": "urn:ngsi-ld:CareVisit:1", "type": "CareVisit", "caregiverName": prop("김보람")})
    attr = hub.get(f"{B}/entities/urn:ngsi-ld:CareVisit:1", headers=hub.admin).json()[
        "caregiverName"]
    assert attr["value"] == "김보람"
    assert attr["pseudonym"]["value"] == hub.services.trust.privacy.pseudonym("default", "김보람")


def test_identifier_that_cannot_be_pseudonymised_is_rejected(hub: Any) -> None:
    bad = household("9", "김민수", "X")
    bad["residentName"] = prop({"first": "민수", "last": "김"})
    r = hub.post(f"{B}/entities", json=bad, headers=hub.admin)
    assert r.status_code == 400
    assert "residentName" in r.json()["detail"] and "pseudonymised" in r.json()["detail"]
    r = hub.post(f"{B}/entityOperations/create", json=[bad, household("8", "이수", "Y")],
                 headers=hub.admin)
    assert r.status_code == 207
    assert [e["entityId"] for e in r.json()["errors"]] == ["urn:ngsi-ld:CareHousehold:9"]
    assert "민수".encode() not in stored_dump(hub.services)


COMPLAINT = ("저는 김민수입니다. 서울특별시 강남구 테헤란로 152 앞에 12가 3456 차량이 매일 "
             "불법 주차합니다. 연락은 010-1234-5678로 주세요.")


def complaint(n: int = 1, text: str = COMPLAINT) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:ServiceRequest:{n}", "type": "ServiceRequest",
            "description": prop(text), "title": prop("불법 주차 (010-9876-5432)"),
            "reporterName": prop("김민수"), "telephone": prop("010-1234-5678")}


def test_text_masked_at_ingest_with_encrypted_original(hub: Any, tmp_path: Path) -> None:
    svc = hub.services
    keys = svc.keys
    handler = bearer(keys.create("operator", purposes=["complaint-handling"]))
    care = bearer(keys.create("operator", purposes=["care"]))
    reader = bearer(keys.create("reader"))
    eid = "urn:ngsi-ld:ServiceRequest:1"
    assert hub.post(f"{B}/entities", json=complaint(), headers=hub.admin).status_code == 201

    desc = value_of(hub, eid, "description")
    assert desc == ("저는 [이름]입니다. [주소] 앞에 [차량번호] 차량이 매일 불법 주차합니다. "
                    "연락은 [전화번호]로 주세요.")
    assert value_of(hub, eid, "title") == "불법 주차 ([전화번호])"
    masks = [a for a in svc.store.audit_log("default", 50) if a["action"] == "privacy.mask"]
    assert masks and masks[0]["target"] == eid
    assert masks[0]["detail"]["kinds"] == ["address", "name", "phone", "plate"]
    assert masks[0]["detail"]["original_kept"] is True
    dump = stored_dump(svc)
    for secret in ("테헤란로 152", "12가 3456", "010-9876-5432"):
        assert secret.encode() not in dump, secret
    assert (tmp_path / "secrets" / "text.key").is_file()

    # the original: only for a key with the purpose the policy names, and audited
    url = f"{T}/original/{eid}/description"
    r = hub.get(url, headers=handler)
    assert r.status_code == 200, r.text
    assert r.json()["original"] == COMPLAINT
    assert r.json()["kinds"] == ["address", "name", "phone", "plate"]
    rec = svc.store.audit_log("default", 5)[0]
    assert rec["action"] == "privacy.decrypt" and rec["target"] == eid
    assert rec["detail"] == {"purpose": "complaint-handling"}
    for other in (care, reader, hub.admin):
        r = hub.get(url, headers=other)
        assert r.status_code == 403 and "complaint-handling" in r.json()["detail"]
    assert hub.get(url).status_code == 401 or hub.get(url).status_code == 403
    # the title is masked but its original is not kept by the policy
    assert hub.get(f"{T}/original/{eid}/title", headers=handler).status_code == 404
    assert hub.get(f"{T}/original/urn:ngsi-ld:ServiceRequest:404/description",
                   headers=handler).status_code == 404

    # a new text without personal data: the old original is no longer the current one
    hub.patch(f"{B}/entities/{eid}/attrs", json={"description": prop("가로등이 꺼졌어요.")},
              headers=hub.admin)
    assert hub.get(url, headers=handler).status_code == 404
    hub.patch(f"{B}/entities/{eid}/attrs", json={"description": prop("제 번호 010-2222-3333")},
              headers=hub.admin)
    assert hub.get(url, headers=handler).json()["original"] == "제 번호 010-2222-3333"
    # writing the stored (masked) text back keeps the original current
    hub.patch(f"{B}/entities/{eid}/attrs", json={"description": prop("제 번호 [전화번호]")},
              headers=hub.admin)
    assert hub.get(url, headers=handler).json()["original"] == "제 번호 010-2222-3333"

    # the original goes with its entity
    assert hub.delete(f"{B}/entities/{eid}", headers=hub.admin).status_code == 204
    assert svc.store.reader().get_json("privacy.original", "default", eid) is None


def test_masking_on_other_paths_and_types(hub: Any) -> None:
    svc = hub.services
    # temporal API
    r = hub.post(f"{B}/temporal/entities", headers=hub.admin, json={
        "id": "urn:ngsi-ld:ServiceRequest:t", "type": "ServiceRequest",
        "description": [prop("메일 kim@example.com", observedAt="2024-01-01T00:00:00Z")]})
    assert r.status_code == 201
    rows = hub.get(f"{B}/temporal/entities/urn:ngsi-ld:ServiceRequest:t",
                   headers=hub.admin).json()["description"]
    assert rows[0]["value"] == "메일 [이메일]"
    # AI feedback: masked, no original kept
    hub.post(f"{B}/entities", headers=hub.admin, json={
        "id": "urn:ngsi-ld:AIFeedback:1", "type": "AIFeedback",
        "text": prop("My name is John Smith, the signal timing is bad.")})
    assert value_of(hub, "urn:ngsi-ld:AIFeedback:1", "text") == (
        "My name is [NAME], the signal timing is bad.")
    assert svc.store.reader().get_json("privacy.original", "default",
                                       "urn:ngsi-ld:AIFeedback:1") is None
    # a language map is masked per language
    hub.post(f"{B}/entities", headers=hub.admin, json={
        "id": "urn:ngsi-ld:ServiceRequest:l", "type": "ServiceRequest",
        "description": {"type": "LanguageProperty",
                        "languageMap": {"ko": "전화 010-1111-2222", "en": "call 010-1111-2222"}}})
    lm = hub.get(f"{B}/entities/urn:ngsi-ld:ServiceRequest:l", headers=hub.admin).json()[
        "description"]["languageMap"]
    assert lm == {"ko": "전화 [전화번호]", "en": "call [PHONE]"}
    assert b"010-1111-2222" not in stored_dump(svc)
    # text in a type the policy does not declare is stored as sent
    hub.post(f"{B}/entities", headers=hub.admin, json={
        "id": "urn:ngsi-ld:Note:1", "type": "Note", "description": prop("010-3333-4444")})
    assert value_of(hub, "urn:ngsi-ld:Note:1", "description") == "010-3333-4444"


def test_oversized_text_is_rejected(hub: Any) -> None:
    r = hub.post(f"{B}/entities", json=complaint(text="가" * 10_001), headers=hub.admin)
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "description" in detail and "10000" in detail
    assert hub.get(f"{B}/entities/urn:ngsi-ld:ServiceRequest:1",
                   headers=hub.admin).status_code == 404
