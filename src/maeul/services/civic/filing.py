"""Filing a routed report: the ``ServiceRequest`` entity, or a link to the open request it
repeats. Each runs as one transaction with its audit record."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from ...hub.entities import expand_entity
from ...hub.errors import ResourceNotFound
from ...hub.store.base import Tx
from ...trust.events import ComplaintFiled, emit
from .requests import ENTITY_TYPE, RequestIn, entity_id, new_request_id
from .text import has_hangul

TOKEN_KIND = "civic_token"  # digest of each request's confirmation token


def _sla_delta(sla: Any) -> timedelta | None:
    if isinstance(sla, int | float):
        return timedelta(hours=float(sla))
    if isinstance(sla, timedelta):
        return sla
    return None


def file_request(svc: Any, tenant: str, req: RequestIn, cat: Any, routing: Any,
                 routed_by: str, extraction: Any, point: tuple[float, float] | None,
                 now: datetime, actor: str, channel: str) -> dict[str, Any]:
    """Create the request entity, its confirmation token and its audit record together."""
    tax = svc.taxonomy()
    lang = req.lang or ("ko" if has_hangul(req.description or "") else "en")
    dept = tax.departments[cat.department]
    rid = new_request_id(now.astimezone(svc.tz))
    eid = entity_id(rid)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    attrs: dict[str, Any] = {
        "service_code": cat.code,
        "service_name": _pick(cat.name, lang),
        "category": cat.code,
        "department": cat.department,
        "agency_responsible": _pick(dept.name, lang),
        "status": "open",
        "requested_datetime": stamp,
        "updated_datetime": stamp,
        "channel": channel,
        "requestLanguage": lang,
        "reportCount": 1,
        "routedBy": routed_by,
    }
    sla = _sla_delta(cat.sla)
    if sla is not None:
        attrs["expected_datetime"] = (now + sla).strftime("%Y-%m-%dT%H:%M:%SZ")
    if req.description:
        attrs["description"] = req.description
    if routing is not None:
        attrs["routingConfidence"] = round(float(routing.confidence), 4)
        attrs["needsConfirmation"] = bool(routing.needs_confirmation)
        attrs["routingAlternatives"] = [a["category"] for a in routing.alternatives]
        if routing.needs_confirmation:
            attrs["status_notes"] = _pick(
                {"ko": "분류 확인을 기다립니다", "en": "Waiting for the category to be "
                 "confirmed"}, lang)
    place = extraction.to_json().get("place") if extraction is not None else None
    if req.address_string:
        attrs["address_string"] = req.address_string
    elif place and place.get("text"):
        attrs["address_string"] = place["text"]
    if place and place.get("entity"):
        attrs["nearEntity"] = place["entity"]
    time_ref = extraction.to_json().get("time") if extraction is not None else None
    if time_ref and time_ref.get("at"):
        attrs["incidentTime"] = time_ref["at"]
    if req.media_url:
        attrs["media_url"] = req.media_url
    if req.attributes:
        attrs["serviceAttributes"] = req.attributes
    for src, dst in (("email", "email"), ("phone", "telephone")):
        if getattr(req, src):
            attrs[dst] = getattr(req, src)
    name = " ".join(x for x in (req.first_name, req.last_name) if x)
    if name:
        attrs["reporterName"] = name
    doc: dict[str, Any] = {"id": eid, "type": ENTITY_TYPE}
    for k, v in attrs.items():
        if k == "nearEntity":
            doc[k] = {"type": "Relationship", "object": v}
        else:
            doc[k] = {"type": "Property", "value": v}
    if point is not None:
        doc["location"] = {"type": "GeoProperty",
                           "value": {"type": "Point", "coordinates": [point[0], point[1]]}}
    entity = expand_entity(doc, svc._ctx())
    token = secrets.token_urlsafe(16)
    version = svc.model_version(tenant) if routing is not None else ""

    def op(tx: Tx) -> None:
        svc.s.hub._create(tx, tenant, entity, actor)
        tx.put_json(TOKEN_KIND, tenant, rid, {"digest": _digest(token), "at": stamp})
        emit(tx, ComplaintFiled(
            tenant, actor, eid, category=cat.code, department=cat.department,
            routed_by=routed_by,
            confidence=None if routing is None else round(float(routing.confidence), 4),
            needs_confirmation=bool(routing and routing.needs_confirmation),
            model=version))

    svc.s.store.write(op)
    out: dict[str, Any] = {
        "service_request_id": rid,
        "service_notice": _pick({"ko": f"{_pick(dept.name, 'ko')}에서 처리합니다.",
                                 "en": f"{_pick(dept.name, 'en')} will handle it."}, lang),
        "account_id": None,
        "token": token,
        "service_code": cat.code,
        "department": cat.department,
        "agency_responsible": _pick(dept.name, lang),
        "expected_datetime": attrs.get("expected_datetime"),
    }
    if routing is not None:
        out["routing"] = routing.to_json()
    if extraction is not None:
        out.update(extraction.to_json())
    return out

def link_report(svc: Any, tenant: str, dup_eid: str, cat: Any, req: RequestIn, actor: str,
                routing: Any, routed_by: str) -> dict[str, Any]:
    """Count a duplicate report on the open request it repeats, instead of filing it."""
    ctx = svc._ctx()
    count_iri = ctx.expand_term("reportCount")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def op(tx: Tx) -> int:
        ent = tx.get_entity(tenant, dup_eid)
        if ent is None:
            raise ResourceNotFound(f"request {dup_eid} vanished")
        inst = (ent["attrs"].get(count_iri) or [{"value": 1}])[0]
        n = int(inst.get("value") or 1) + 1
        frag = expand_entity({"id": dup_eid, "type": ENTITY_TYPE,
                              "reportCount": {"type": "Property", "value": n},
                              "updated_datetime": {"type": "Property", "value": stamp}},
                             ctx)
        svc.s.hub._attrs_write(tx, tenant, dup_eid, frag, actor, "update")
        emit(tx, ComplaintFiled(
            tenant, actor, dup_eid, category=cat.code, department=cat.department,
            routed_by=routed_by,
            confidence=None if routing is None else round(float(routing.confidence), 4),
            linked_to=dup_eid))
        return n

    n = svc.s.store.write(op)
    rid = dup_eid.rsplit(":", 1)[-1]
    lang = req.lang or ("ko" if has_hangul(req.description or "") else "en")
    return {
        "service_request_id": rid,
        "service_notice": _pick({
            "ko": "이미 접수된 같은 민원에 연결했습니다. 이 번호로 진행 상황을 보세요.",
            "en": "Linked to the same request already filed; follow it with this id."},
            lang),
        "account_id": None,
        "duplicate_of": rid,
        "report_count": n,
        "service_code": cat.code,
        "department": cat.department,
    }


def _pick(m: Any, lang: str) -> Any:
    if isinstance(m, dict):
        return m.get(lang) or m.get("ko") or m.get("en") or next(iter(m.values()), None)
    return m



def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
