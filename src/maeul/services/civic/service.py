"""The civic desk in the city: complaints in, routed, located, de-duplicated, filed in the hub.

``submit`` takes a citizen's report (Open311 fields), and in one transaction:

- routes it: the citizen's ``service_code`` when given, else the classifier's best category
  (below its confidence threshold the request is filed with ``needs_confirmation`` and the top
  choices, and the citizen confirms one with the request's token);
- reads place and time from the text (geocoded against hub entities with a name and a
  location) when the report carries no coordinates;
- links it to an open request of the same category nearby with a similar description instead
  of filing it twice (the original's ``reportCount`` grows);
- creates the ``ServiceRequest`` entity (the privacy policy masks personal data in
  ``description`` at ingest and keeps the original encrypted; contact fields are personal and
  shown only to the complaint-handling purpose) and the audit record.

Operators change status and re-route (``update``); a re-route or a citizen's confirmation is a
routed case the classifier learns from at once (kept per tenant, masked text only).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from ...hub.compaction import View
from ...hub.entities import expand_entity, now_iso, parse_time
from ...hub.errors import BadRequestData, Forbidden, ResourceNotFound
from ...hub.store.base import EntityFilter, Tx
from ...trust.events import ComplaintRerouted, ComplaintStatusChanged, emit
from .filing import TOKEN_KIND, _digest, _pick, file_request, link_report
from .requests import (
    ENTITY_TYPE,
    RequestIn,
    check_request_id,
    entity_id,
    open311_view,
    parse_request,
    parse_update,
    value,
)

log = logging.getLogger(__name__)
CASE_KIND = "civic_case"  # routed cases (masked text, category) the classifier learns from
PURPOSE = "complaint-handling"
GAZETTEER_TTL_S = 300.0


class CivicService:
    """Complaint intake and routing for every tenant of one hub."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.settings = services.settings
        self.tz = ZoneInfo(self.settings.city_timezone)
        self._lock = threading.RLock()
        self._taxonomy: Any = None
        self._classifiers: dict[str, Any] = {}
        self._gazetteers: dict[str, tuple[float, Any]] = {}
        self._vectors: dict[str, np.ndarray] = {}  # entity id -> description vector
        self._desk: Any = None
        self._registered: set[str] = set()

    def ensure_registered(self, tenant: str) -> None:
        """Both registry entries exist and are assessed in ``tenant`` (once per process)."""
        if tenant in self._registered:
            return
        from .registry import declare_entries, ensure_registered

        declare_entries()
        ensure_registered(self.s, tenant)
        self._registered.add(tenant)

    # -- lazily built parts ------------------------------------------------------------------
    def taxonomy(self) -> Any:
        with self._lock:
            if self._taxonomy is None:
                from .taxonomy import load_taxonomy

                self._taxonomy = load_taxonomy(self.settings.civic_taxonomy)
            return self._taxonomy

    def classifier(self, tenant: str) -> Any:
        with self._lock:
            clf = self._classifiers.get(tenant)
            if clf is None:
                from .classifier import Classifier

                codes = set(self.taxonomy().codes)
                cases = [(d["text"], d["category"]) for _t, _k, d in
                         self.s.store.reader().list_json(CASE_KIND, tenant)
                         if d.get("category") in codes]
                clf = Classifier(self.taxonomy(), cases)
                self._classifiers[tenant] = clf
            return clf

    def model_version(self, tenant: str) -> str:
        """The taxonomy's fingerprint and how many routed cases the tenant's model learned."""
        raw = repr(sorted(self.taxonomy().codes)).encode()
        n = self.classifier(tenant).case_count
        return f"taxonomy-{hashlib.sha256(raw).hexdigest()[:8]}+{n}cases"

    def gazetteer(self, tenant: str) -> Any:
        """Named, located hub entities (rebuilt at most every five minutes)."""
        from .extract import Gazetteer

        with self._lock:
            hit = self._gazetteers.get(tenant)
            if hit is not None and time.monotonic() - hit[0] < GAZETTEER_TTL_S:
                return hit[1]
        view = View(self._ctx())
        name_iri = self._ctx().expand_term("name")
        loc_iri = "https://uri.etsi.org/ngsi-ld/location"
        sr_iri = self._ctx().expand_term(ENTITY_TYPE)
        ents = [view.entity(e) for e in self.s.store.query_entities(tenant, EntityFilter())
                if name_iri in e.get("attrs", {}) and loc_iri in e.get("attrs", {})
                and sr_iri not in e.get("type", [])]
        gaz = Gazetteer.from_entities(ents)
        with self._lock:
            self._gazetteers[tenant] = (time.monotonic(), gaz)
        return gaz

    def _ctx(self) -> Any:
        return self.s.resolver.resolve(None)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    # -- Open311 service list ------------------------------------------------------------------
    def service_list(self, lang: str = "ko") -> list[dict[str, Any]]:
        tax = self.taxonomy()
        out = []
        for cat in tax.categories:
            out.append({
                "service_code": cat.code,
                "service_name": _pick(cat.name, lang),
                "description": _pick(cat.description, lang),
                "metadata": bool(cat.attributes),
                "type": "realtime",
                "keywords": ", ".join(_pick(cat.keywords, lang) or []) if cat.keywords else "",
                "group": _pick(cat.group, lang) if cat.group else
                         _pick(tax.departments[cat.department].name, lang),
            })
        return out

    def definition(self, code: str, lang: str = "ko") -> dict[str, Any]:
        cat = self._category(code)
        attrs = []
        for i, a in enumerate(cat.attributes or [], start=1):
            item = {"variable": True, "code": a["code"], "datatype": a["datatype"],
                    "required": bool(a.get("required")),
                    "datatype_description": _pick(a.get("datatype_description"), lang),
                    "order": i, "description": _pick(a.get("description"), lang)}
            if a.get("values"):
                item["values"] = [{"key": v["key"], "name": _pick(v.get("name"), lang)}
                                  for v in a["values"]]
            attrs.append(item)
        return {"service_code": cat.code, "attributes": attrs}

    def _category(self, code: str) -> Any:
        try:
            return self.taxonomy().category(code)
        except (KeyError, ValueError):
            raise ResourceNotFound(
                f"unknown service_code {code[:64]!r}; the list is at "
                "/open311/v2/services.json") from None

    # -- routing preview ---------------------------------------------------------------------
    def route(self, tenant: str, text: Any) -> dict[str, Any]:
        """Category, department, confidence, alternatives, place and time of a text."""
        if not isinstance(text, str) or not text.strip():
            raise BadRequestData("text: a non-empty string is needed")
        if len(text) > 10_000:
            raise BadRequestData(f"text: {len(text)} characters; at most 10000")
        routing = self.classifier(tenant).classify(text)
        out: dict[str, Any] = routing.to_json()
        out.update(self._extract(tenant, text).to_json())
        return out

    def _extract(self, tenant: str, text: str) -> Any:
        from .extract import extract

        return extract(text, self.now(), self.gazetteer(tenant))

    # -- intake ------------------------------------------------------------------------------
    def submit(self, tenant: str, data: Any, actor: str, *, media_url: str | None = None,
               channel: str = "open311") -> dict[str, Any]:
        """File one report; the Open311 answer plus maeul's routing, place and link."""
        req = parse_request(data)
        self.ensure_registered(tenant)
        if media_url:
            req.media_url = media_url
        tax = self.taxonomy()
        text = (req.description or "").strip()
        routing = None
        if req.service_code:
            cat = self._category(req.service_code)
            self._check_attributes(cat, req)
            routed_by = "citizen"
        else:
            routing = self.classifier(tenant).classify(text)
            cat = tax.category(routing.category)
            routed_by = "model"
        extraction = self._extract(tenant, text) if text else None
        point = self._point(req, extraction)
        now = datetime.now(UTC)
        dup = self._duplicate(tenant, cat.code, point, text, now) if text else None
        if dup is not None:
            return link_report(self, tenant, dup, cat, req, actor, routing, routed_by)
        return file_request(self, tenant, req, cat, routing, routed_by, extraction, point, now,
                            actor, channel)

    def _check_attributes(self, cat: Any, req: RequestIn) -> None:
        known = {a["code"]: a for a in cat.attributes or []}
        for code in req.attributes:
            if code not in known:
                raise BadRequestData(f"attribute[{code}]: not an attribute of service "
                                     f"{cat.code!r}")
        for code, a in known.items():
            if a.get("required") and not req.attributes.get(code):
                raise BadRequestData(f"attribute[{code}]: required by service {cat.code!r}")
            allowed = {v["key"] for v in a.get("values") or []}
            given = req.attributes.get(code)
            vals = given if isinstance(given, list) else [given] if given else []
            if allowed and any(v not in allowed for v in vals):
                raise BadRequestData(f"attribute[{code}]: one of {sorted(allowed)}")

    @staticmethod
    def _point(req: RequestIn, extraction: Any) -> tuple[float, float] | None:
        if req.lat is not None and req.long is not None:
            return (req.long, req.lat)
        if extraction is not None and extraction.place is not None:
            match = getattr(extraction.place, "match", None)
            if match is not None and match.point is not None:
                return (float(match.point[0]), float(match.point[1]))
            pt = getattr(extraction.place, "point", None)
            if pt is not None:
                return (float(pt[0]), float(pt[1]))
        return None

    def _duplicate(self, tenant: str, code: str, point: tuple[float, float] | None, text: str,
                   now: datetime) -> str | None:
        if point is None:
            return None
        from .duplicates import Candidate, OpenRequest, find_duplicate
        from .text import embedder

        opens = self._open_requests(tenant, code, now)
        if not opens:
            return None
        vec = embedder().query(text)[0]
        cand = Candidate(id="", category=code, point=point, embedding=vec, requested_at=now,
                         place_name=None)
        rows = [OpenRequest(id=eid, category=code, point=pt, embedding=v, requested_at=at,
                            place_name=None) for eid, pt, v, at in opens]
        match = find_duplicate(cand, rows, radius_m=self.settings.civic_duplicate_radius_m,
                               window=timedelta(days=self.settings.civic_duplicate_days))
        return None if match is None else str(match.id)

    def _open_requests(self, tenant: str, code: str, now: datetime
                       ) -> list[tuple[str, tuple[float, float], np.ndarray, datetime]]:
        from .text import embedder

        ctx = self._ctx()
        view = View(ctx)
        since = now - timedelta(days=self.settings.civic_duplicate_days)
        rows = []
        missing: list[tuple[str, str]] = []
        for raw in self.s.store.query_entities(
                tenant, EntityFilter(types=(ctx.expand_term(ENTITY_TYPE),))):
            ent = view.entity(raw)
            if value(ent, "status") != "open" or value(ent, "service_code") != code:
                continue
            if value(ent, "duplicateOf"):
                continue
            loc = value(ent, "location")
            at = _parse(value(ent, "requested_datetime"))
            if not isinstance(loc, dict) or loc.get("type") != "Point" or at is None:
                continue
            if at < since:
                continue
            lon, lat = loc["coordinates"][:2]
            rows.append((ent["id"], (float(lon), float(lat)), at))
            if ent["id"] not in self._vectors:
                missing.append((ent["id"], str(value(ent, "description") or "")))
        if missing:
            vecs = embedder().query([t for _i, t in missing])
            for (eid, _t), v in zip(missing, vecs, strict=True):
                self._vectors[eid] = v
        return [(eid, pt, self._vectors[eid], at) for eid, pt, at in rows]

    # -- reading -----------------------------------------------------------------------------
    def get(self, tenant: str, rid: str, caller: Any = None) -> dict[str, Any]:
        check_request_id(rid)
        ent = self._entity(tenant, entity_id(rid), caller)
        return open311_view(ent)

    def _entity(self, tenant: str, eid: str, caller: Any = None) -> dict[str, Any]:
        raw = self.s.store.reader().get_entity(tenant, eid)
        if raw is None:
            raise ResourceNotFound(f"no service request {eid.rsplit(':', 1)[-1]}")
        if caller is not None:
            raw = self.s.hub.visible(tenant, caller, raw)
        return View(self._ctx()).entity(raw)

    def search(self, tenant: str, params: dict[str, str], caller: Any = None
               ) -> list[dict[str, Any]]:
        """Open311 GET requests: by ids, service_code, status and date range (newest first,
        at most 1000; without dates, the last 90 days as the standard suggests)."""
        ids = [i.strip() for i in (params.get("service_request_id") or "").split(",")
               if i.strip()]
        for i in ids:
            check_request_id(i)
        codes = {c.strip() for c in (params.get("service_code") or "").split(",") if c.strip()}
        for c in codes:
            self._category(c)
        statuses = {s.strip() for s in (params.get("status") or "").split(",") if s.strip()}
        bad = statuses - {"open", "closed"}
        if bad:
            raise BadRequestData(f"status: {sorted(bad)[0]!r} is not open or closed")
        start = _param_time(params.get("start_date"), "start_date")
        end = _param_time(params.get("end_date"), "end_date")
        if not ids and start is None and end is None:
            start = datetime.now(UTC) - timedelta(days=90)
        try:
            limit = int(params.get("limit") or 1000)
        except ValueError:
            raise BadRequestData("limit: a whole number") from None
        if not 1 <= limit <= 1000:
            raise BadRequestData("limit: between 1 and 1000")
        ctx = self._ctx()
        view = View(ctx)
        flt = EntityFilter(types=(ctx.expand_term(ENTITY_TYPE),),
                           ids=tuple(entity_id(i) for i in ids) if ids else None)
        out = []
        for raw in self.s.store.query_entities(tenant, flt):
            if caller is not None:
                raw = self.s.hub.visible(tenant, caller, raw)
            ent = view.entity(raw)
            o = open311_view(ent)
            if codes and o["service_code"] not in codes:
                continue
            if statuses and o["status"] not in statuses:
                continue
            at = _parse(o["requested_datetime"])
            if start is not None and (at is None or at < start):
                continue
            if end is not None and (at is None or at > end):
                continue
            out.append(o)
        out.sort(key=lambda o: o.get("requested_datetime") or "", reverse=True)
        return out[:limit]

    # -- changes -----------------------------------------------------------------------------
    def update(self, tenant: str, rid: str, data: Any, actor: str) -> dict[str, Any]:
        """An operator's status change, notes or re-routing (which the classifier learns)."""
        check_request_id(rid)
        up = parse_update(data)
        eid = entity_id(rid)
        ent = self._entity(tenant, eid)
        old_code = value(ent, "service_code")
        patch: dict[str, Any] = {}
        new_cat = None
        if up.service_code and up.service_code != old_code:
            new_cat = self._category(up.service_code)
            patch.update(self._route_attrs(new_cat, str(value(ent, "requestLanguage") or "ko")))
        if up.status is not None:
            patch["status"] = up.status
            if up.status == "closed":
                patch["closedAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if up.status_notes is not None:
            patch["status_notes"] = up.status_notes
        self._patch(tenant, eid, ent, patch, actor, old_code, new_cat, up.status, "operator")
        return self.get(tenant, rid)

    def confirm(self, tenant: str, rid: str, data: Any, actor: str) -> dict[str, Any]:
        """The citizen picks between the model's top choices (with the request's token)."""
        check_request_id(rid)
        if not isinstance(data, dict) or not isinstance(data.get("service_code"), str) \
                or not isinstance(data.get("token"), str):
            raise BadRequestData("give service_code and the token you received when filing")
        doc = self.s.store.reader().get_json(TOKEN_KIND, tenant, rid)
        if doc is None or doc.get("digest") != _digest(data["token"]):
            raise Forbidden("the token does not match this request")
        eid = entity_id(rid)
        ent = self._entity(tenant, eid)
        if not value(ent, "needsConfirmation"):
            raise BadRequestData("this request's category is already settled")
        choices = {value(ent, "service_code"), *(value(ent, "routingAlternatives") or [])}
        code = data["service_code"]
        if code not in choices:
            raise BadRequestData(f"service_code: one of {sorted(c for c in choices if c)}")
        cat = self._category(code)
        patch = self._route_attrs(cat, str(value(ent, "requestLanguage") or "ko"))
        patch["needsConfirmation"] = False
        patch["status_notes"] = ""
        self._patch(tenant, eid, ent, patch, actor, value(ent, "service_code"), cat, None,
                    "citizen", learn_same=True)
        return self.get(tenant, rid)

    def _route_attrs(self, cat: Any, lang: str) -> dict[str, Any]:
        dept = self.taxonomy().departments[cat.department]
        return {"service_code": cat.code, "category": cat.code,
                "service_name": _pick(cat.name, lang), "department": cat.department,
                "agency_responsible": _pick(dept.name, lang)}

    def _patch(self, tenant: str, eid: str, ent: dict[str, Any], patch: dict[str, Any],
               actor: str, old_code: Any, new_cat: Any, status: str | None, by: str,
               learn_same: bool = False) -> None:
        patch["updated_datetime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        frag = expand_entity({"id": eid, "type": ENTITY_TYPE, **{
            k: {"type": "Property", "value": v} for k, v in patch.items()}}, self._ctx())
        text = str(value(ent, "description") or "")  # already masked at ingest
        learn = new_cat is not None and text and (new_cat.code != old_code or learn_same)

        def op(tx: Tx) -> None:
            self.s.hub._attrs_write(tx, tenant, eid, frag, actor, "append")
            if new_cat is not None and (new_cat.code != old_code or learn_same):
                emit(tx, ComplaintRerouted(tenant, actor, eid, from_category=str(old_code),
                                           to_category=new_cat.code, by=by))
            if learn:
                tx.put_json(CASE_KIND, tenant, eid.rsplit(":", 1)[-1],
                            {"text": text, "category": new_cat.code, "at": now_iso()})
            if status is not None:
                emit(tx, ComplaintStatusChanged(tenant, actor, eid, status=status))

        self.s.store.write(op)
        if learn:
            with self._lock:
                clf = self._classifiers.get(tenant)
            if clf is not None:
                clf.learn(text, new_cat.code)
        self._vectors.pop(eid, None)

    # -- answers -----------------------------------------------------------------------------
    def desk(self) -> Any:
        """The grounded-answer desk over the city's documents (built once)."""
        with self._lock:
            if self._desk is None:
                from .desk import build_desk

                self._desk = build_desk(self.settings)
            return self._desk

    def ask(self, tenant: str, question: Any, lang: str | None, actor: str) -> dict[str, Any]:
        from ...trust.events import QuestionAnswered

        if not isinstance(question, str):
            raise BadRequestData("question: a string is needed")
        self.ensure_registered(tenant)
        try:
            ans = self.desk().ask(question, lang)
        except ValueError as exc:
            raise BadRequestData(str(exc)) from None
        out: dict[str, Any] = ans.to_json()
        docs = sorted({c["document"] for c in out.get("citations", [])})
        self.s.store.write(lambda tx: emit(tx, QuestionAnswered(
            tenant, actor, "civic-answers", refused=bool(out.get("refused")),
            generated=bool(out.get("generated")), documents=docs)))
        return out


def _parse(v: Any) -> datetime | None:
    """A stored time, or None when it is missing or malformed (such rows are skipped)."""
    try:
        return parse_time(v, "time")
    except BadRequestData:
        return None


def _param_time(v: str | None, name: str) -> datetime | None:
    return parse_time(v, name) if v else None
