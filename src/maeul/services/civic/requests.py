"""Service requests as they come in (Open311 GeoReport v2 fields) and as they go out.

A request is validated here before anything is stored: a clear message names the field.
Limits: a description of at most 10,000 characters (a complaint, not a document), coordinates
on the globe (latitude −90..90, longitude −180..180), short contact fields, http(s) media URLs.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...hub.errors import BadRequestData

MAX_TEXT = 10_000
STATUSES = ("open", "closed")
ENTITY_TYPE = "ServiceRequest"
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: ids are read out on the phone


def new_request_id(now: datetime) -> str:
    """A short id a citizen can read out: ``YYMMDD-XXXXXX``."""
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    return f"{now:%y%m%d}-{tail}"


def entity_id(rid: str) -> str:
    return f"urn:ngsi-ld:{ENTITY_TYPE}:{rid}"


def check_request_id(rid: str) -> str:
    if not isinstance(rid, str) or not re.fullmatch(r"[0-9]{6}-[0-9A-Z]{6}", rid):
        raise BadRequestData(f"service_request_id {str(rid)[:40]!r} is malformed "
                             "(expected like 261123-K7P2QX)")
    return rid


class RequestIn(BaseModel):
    """One citizen report (Open311 POST fields; ``service_code`` optional in maeul: without
    it the desk routes the description)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_code: str | None = Field(None, max_length=64)
    description: str | None = Field(None, max_length=MAX_TEXT)
    lat: float | None = Field(None, ge=-90, le=90)
    long: float | None = Field(None, ge=-180, le=180)
    address_string: str | None = Field(None, max_length=500)
    address_id: str | None = Field(None, max_length=100)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    device_id: str | None = Field(None, max_length=200)
    account_id: str | None = Field(None, max_length=200)
    media_url: str | None = Field(None, max_length=2000)
    attributes: dict[str, str | list[str]] = Field(default_factory=dict)
    lang: str | None = Field(None, pattern="^(ko|en)$")
    jurisdiction_id: str | None = Field(None, max_length=64)
    api_key: str | None = Field(None, max_length=200)

    @field_validator("service_code")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is not None and not _CODE.match(v):
            raise ValueError("must be letters, digits, '.', '_' or '-'")
        return v or None

    @field_validator("media_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v and not re.match(r"^https?://[^\s]+$", v):
            raise ValueError("must be an http(s) URL")
        return v or None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", v):
            raise ValueError("is not an e-mail address")
        return v or None


def _message(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "body"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "is not an Open311 request field"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_request(data: Any) -> RequestIn:
    """Validate a report (a JSON object or Open311 form fields, where ``attribute[code]``
    carries the service definition's answers)."""
    if not isinstance(data, dict):
        raise BadRequestData("a service request must be a JSON object or form fields")
    data = dict(data)
    attrs: dict[str, Any] = dict(data.pop("attributes", None) or {})
    for key in list(data):
        m = re.fullmatch(r"attribute\[([^\]]{1,64})\](\[\])?", key)
        if m:
            attrs[m.group(1)] = data.pop(key)
    if attrs:
        data["attributes"] = attrs
    for key in ("lat", "long"):
        if data.get(key) == "":
            data[key] = None
    desc = data.get("description")
    if isinstance(desc, str) and len(desc) > MAX_TEXT:
        raise BadRequestData(f"description: {len(desc)} characters; at most {MAX_TEXT} "
                             "(a complaint, not a document)")
    try:
        req = RequestIn.model_validate(data)
    except ValidationError as exc:
        raise BadRequestData(_message(exc)) from None
    if (req.lat is None) != (req.long is None):
        raise BadRequestData("lat and long come together: give both or neither")
    if not req.service_code and not (req.description and req.description.strip()):
        raise BadRequestData("a description is needed when no service_code is given")
    return req


class UpdateIn(BaseModel):
    """An operator's change: status, notes, or a new category (re-routing)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: str | None = Field(None, pattern="^(open|closed)$")
    status_notes: str | None = Field(None, max_length=2000)
    service_code: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=2000)


def parse_update(data: Any) -> UpdateIn:
    if not isinstance(data, dict):
        raise BadRequestData("an update must be a JSON object")
    try:
        up = UpdateIn.model_validate(data)
    except ValidationError as exc:
        raise BadRequestData(_message(exc)) from None
    if up.status is None and up.status_notes is None and up.service_code is None:
        raise BadRequestData("nothing to change: give status, status_notes or service_code")
    return up


def value(ent: dict[str, Any], name: str) -> Any:
    """An attribute's value in a compacted entity (normalized or key-values)."""
    a = ent.get(name)
    if isinstance(a, dict) and "type" in a and a.get("type") in (
            "Property", "GeoProperty", "Relationship", "LanguageProperty"):
        return a.get("object") if a["type"] == "Relationship" else a.get("value")
    return a


def open311_view(ent: dict[str, Any]) -> dict[str, Any]:
    """The Open311 GeoReport v2 view of a compacted ``ServiceRequest`` entity."""
    loc = value(ent, "location")
    lon = lat = None
    if isinstance(loc, dict) and loc.get("type") == "Point":
        lon, lat = loc["coordinates"][:2]
    out: dict[str, Any] = {
        "service_request_id": ent["id"].rsplit(":", 1)[-1],
        "status": value(ent, "status"),
        "status_notes": value(ent, "status_notes"),
        "service_name": value(ent, "service_name"),
        "service_code": value(ent, "service_code"),
        "description": value(ent, "description"),
        "agency_responsible": value(ent, "agency_responsible"),
        "service_notice": value(ent, "service_notice"),
        "requested_datetime": value(ent, "requested_datetime"),
        "updated_datetime": value(ent, "updated_datetime"),
        "expected_datetime": value(ent, "expected_datetime"),
        "address": value(ent, "address_string"),
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": value(ent, "media_url"),
    }
    dup = value(ent, "duplicateOf")
    if dup:
        out["duplicate_of"] = str(dup).rsplit(":", 1)[-1]
    count = value(ent, "reportCount")
    if count:
        out["report_count"] = count
    return out
