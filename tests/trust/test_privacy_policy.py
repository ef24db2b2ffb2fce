"""The privacy policy (built-in and from a file, errors naming the field) and the policy and
scanner routes with their roles and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maeul.trust.privacy_policy import PolicyError, load_policy, parse_duration, parse_policy
from support import app_client, make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
DC = "https://uri.etsi.org/ngsi-ld/default-context/"
SDM = "https://smartdatamodels.org/dataModel.Transportation/"
T = "/trust/v1/privacy"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_built_in_policy_covers_the_maeul_types() -> None:
    p = load_policy(None)
    assert {"CareHousehold", "EnergyMeter", "ServiceRequest", "Vehicle",
            "TrafficFlowObserved", "AIFeedback"} <= set(p.model.types)
    hh = p.rules([DC + "CareHousehold"])
    care = hh.rule(DC + "careLevel")
    assert care is not None and care.cls == "sensitive" and care.category == "welfare"
    assert care.purposes == {"care"}
    health = hh.rule(DC + "healthConditions")
    assert health is not None and health.category == "health"
    name = hh.rule(DC + "residentName")
    assert name is not None and name.identifier and not name.keep_raw
    sr = p.rules([DC + "ServiceRequest"])
    desc = sr.rule(DC + "description")
    assert desc is not None and desc.text is not None and desc.text.keep_original
    contact = sr.rule(DC + "telephone")
    assert contact is not None and contact.cls == "sensitive"  # only the purpose sees it
    # short names match any vocabulary's IRI; public types have nothing to hide
    assert p.rules([SDM + "Vehicle"]).rule(SDM + "vehiclePlateIdentifier") is not None
    assert p.rules([SDM + "TrafficFlowObserved"]).keyed == []
    assert p.rules([DC + "Unknown"]).rule(DC + "careLevel") is None
    fb = p.rules([DC + "AIFeedback"]).rule(DC + "text")
    assert fb is not None and fb.text is not None and fb.text.mask and not fb.text.keep_original


def test_policy_from_a_file_and_iri_keys(tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    f.write_text(json.dumps({"version": 1, "types": {
        DC + "Patient": {"purposes": ["care"], "attributes": {
            DC + "diagnosis": {"class": "sensitive", "category": "health"},
            "gps": {"class": "sensitive", "category": "location-trace"}}}}}))
    p = load_policy(f)
    assert p.source == str(f)
    assert p.rules([DC + "Patient"]).rule(DC + "diagnosis") is not None
    assert p.rules([DC + "Patient"]).rule("https://other.org/gps") is not None
    # an IRI key matches that IRI only
    assert p.rules(["https://other.org/Patient"]).keyed == []
    assert p.rules([DC + "Patient"]).rule("https://other.org/diagnosis") is None


@pytest.mark.parametrize(("doc", "field"), [
    ({"types": {"X": {"attributes": {"a": {"class": "secret"}}}}},
     "types.X.attributes.a.class"),
    ({"types": {"X": {"purposes": ["care"], "attributes": {"a": {"class": "sensitive"}}}}},
     "types.X.attributes.a"),
    ({"types": {"X": {"attributes": {"a": {"class": "sensitive", "category": "health"}}}}},
     "types.X"),
    ({"types": {"X": {"attributes": {"a": {"class": "public", "category": "health"}}}}},
     "types.X.attributes.a"),
    ({"types": {"X": {"attributes": {"a": {"keepRaw": True}}}}}, "types.X.attributes.a"),
    ({"types": {"X": {"attributes": {"a": {"text": {"keepOriginal": True, "mask": False}}}}}},
     "types.X.attributes.a.text"),
    ({"types": {"X": {"attributes": {"a": {"text": {"maxLength": 0}}}}}},
     "types.X.attributes.a.text.maxLength"),
    ({"types": {"X": {"retention": {"olderThan": "30 days", "action": "delete"}}}},
     "types.X.retention.olderThan"),
    ({"types": {"X": {"retention": {"olderThan": "P30D", "action": "shred"}}}},
     "types.X.retention.action"),
    ({"types": {"X": {"retention": {"olderThan": "P30D", "action": "aggregate",
                                    "method": "median"}}}}, "types.X.retention.method"),
    ({"types": {"X": {"purposes": ["Care Team"]}}}, "types.X.purposes"),
    ({"types": {"X": {"atributes": {}}}}, "types.X.atributes"),
    ({"version": 2}, "version"),
    ({"types": {"X": {"attributes": {"id": {}}}}}, "types.X"),
])
def test_bad_policy_names_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(json.dumps(doc), "test")
    assert f"{field}:" in str(exc.value)


def test_bad_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.json")
    (tmp_path / "p.json").write_text("{not json")
    with pytest.raises(PolicyError, match="not JSON"):
        load_policy(tmp_path / "p.json")
    # the hub refuses to start with a bad policy, naming the field
    from maeul.hub.app import Services

    (tmp_path / "p.json").write_text('{"types": {"X": {"attributes": {"a": {"class": 1}}}}}')
    with pytest.raises(PolicyError, match=r"types\.X\.attributes\.a\.class"):
        Services(make_settings(f"sqlite:///{tmp_path}/h.db", tmp_path,
                               privacy_policy=tmp_path / "p.json", trust_jobs=False))


def test_durations() -> None:
    assert parse_duration("P30D").days == 30
    assert parse_duration("P1Y2M").days == 425
    assert parse_duration("PT1H30M").total_seconds() == 5400
    for bad in ("P", "PT", "P0D", "30D", "P1.5D", "P1DT"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.fixture
def hub(store_url: str, tmp_path: Path) -> Iterator[Any]:
    settings = make_settings(store_url, tmp_path, auth_enabled=True, trust_jobs=False,
                             secrets_dir=tmp_path / "secrets")
    with app_client(settings) as c:
        yield c


def test_policy_route_roles(hub: Any) -> None:
    keys = hub.services.keys
    for role in ("admin", "operator"):
        r = hub.get(f"{T}/policy", headers=bearer(keys.create(role)))
        assert r.status_code == 200
        assert r.json()["source"] == "built-in"
        hh = r.json()["policy"]["types"]["CareHousehold"]
        assert hh["attributes"]["careLevel"] == {
            "class": "sensitive", "category": "welfare", "identifier": False, "keepRaw": False}
    for role in ("reader", "service"):
        assert hub.get(f"{T}/policy", headers=bearer(keys.create(role))).status_code == 403
    assert hub.get(f"{T}/policy").status_code == 401
    assert hub.get(f"{T}/policy", headers=bearer("mk_nope_nope")).status_code == 401


def test_scan_route(hub: Any) -> None:
    keys = hub.services.keys
    op = bearer(keys.create("operator"))
    text = "제 주민번호 900101-1234568, 전화 010-1234-5678"
    r = hub.post(f"{T}/scan", json={"text": text}, headers=op)
    assert r.status_code == 200
    body = r.json()
    assert body["text"] == "제 주민번호 [주민등록번호], 전화 [전화번호]"
    assert body["kinds"] == ["phone", "rrn"]
    assert [text[s["start"]:s["end"]] for s in body["spans"]] == [
        "900101-1234568", "010-1234-5678"]
    assert "checkDigitValid" in body["spans"][0]
    # nothing of the scanned text is stored or audited
    assert not any("900101" in json.dumps(a) for a in hub.services.store.audit_log(None, 100))
    assert hub.post(f"{T}/scan", json={"text": text},
                    headers=bearer(keys.create("reader"))).status_code == 403
    assert hub.post(f"{T}/scan", json={"text": text}).status_code == 401
    for bad, field in (({"text": "x", "lang": "ko"}, "lang"), ({"txt": "x"}, "text"),
                       ({"text": 5}, "text"), ({"text": "가" * 20_001}, "text"),
                       ([], "body")):
        r = hub.post(f"{T}/scan", json=bad, headers=op)
        assert r.status_code == 400, bad
        assert field in r.json()["detail"], r.json()
    r = hub.post(f"{T}/scan", content=b"{oops", headers={**op, "Content-Type":
                                                         "application/json"})
    assert r.status_code == 400
