"""Citizens' feedback and objections about registered systems, routed to the department.

The text is masked for personal data before anything is stored. Each message lands twice, in
one transaction: in the department's inbox (kv ``registry_feedback``, with the optional
contact for a reply) and as a hub entity of type ``AIFeedback`` without the contact, so a
department can subscribe to notifications about its systems.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from ..hub.auth import Caller
from ..hub.entities import expand_entity, now_iso
from ..hub.errors import BadRequestData, ResourceNotFound
from ..hub.store.base import Tx
from .events import FeedbackReceived, SensitiveRead, emit
from .http import validation_message
from .registry import is_public
from .registry_model import LANGS

FEEDBACK_KIND = "registry_feedback"
ENTITY_TYPE = "AIFeedback"
MAX_TEXT = 2000
REPLY_PURPOSE = "feedback-reply"  # a key with it may read citizens' contacts to answer them


class FeedbackIn(BaseModel):
    """A citizen's message: feedback or an objection, with an optional way to reply."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["feedback", "objection"]
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=MAX_TEXT)]
    contact: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=200)] | None = None


def department_name(doc: dict[str, Any]) -> str:
    """The department as feedback entities carry it: Korean name, else English."""
    dept = doc.get("department") or {}
    return str(next((dept[lg] for lg in LANGS if dept.get(lg)), ""))


def submit(services: Any, tenant: str, entry_id: str, data: Any, actor: str) -> dict[str, Any]:
    """Mask, store in the inbox and in the hub, audit; what the citizen gets back."""
    try:
        msg = FeedbackIn.model_validate(data)
    except ValidationError as exc:
        raise BadRequestData(validation_message(exc)) from None
    doc = services.trust.registry.get(tenant, entry_id)
    if doc is None or not is_public(doc):
        raise ResourceNotFound(f"registry entry {entry_id} not found")
    masked = services.trust.privacy.mask_text(msg.text)
    kinds = sorted({str(k) for k in masked.kinds})
    fid = uuid.uuid4().hex
    now = now_iso()
    dept = department_name(doc)
    # the contact is personal data kept only for the reply: encrypted at rest, bound to this
    # item, shown only to callers with the reply purpose (see ``inbox``)
    contact_enc = (services.trust.privacy.vault.encrypt(msg.contact, _contact_ctx(tenant, fid))
                   if msg.contact else None)
    item = {"id": fid, "system": entry_id, "department": doc.get("department"),
            "kind": msg.kind, "text": masked.text, "pii_kinds": kinds,
            "contact_enc": contact_enc, "received_at": now, "status": "open"}
    entity = expand_entity({
        "id": f"urn:ngsi-ld:{ENTITY_TYPE}:{fid}",
        "type": ENTITY_TYPE,
        "system": {"type": "Property", "value": entry_id},
        "department": {"type": "Property", "value": dept},
        "feedbackKind": {"type": "Property", "value": msg.kind},
        "text": {"type": "Property", "value": masked.text},
        "feedbackStatus": {"type": "Property", "value": "open"},
        "receivedAt": {"type": "Property", "value": now},
    }, services.resolver.resolve(None))

    def op(tx: Tx) -> None:
        tx.put_json(FEEDBACK_KIND, tenant, fid, item)
        # the hub's own create step, so the entity, its notifications and the inbox item
        # commit (or fail) together
        services.hub._create(tx, tenant, entity, actor)
        emit(tx, FeedbackReceived(tenant, actor, entry_id, kind=msg.kind, feedback_id=fid,
                                  department=dept))

    services.store.write(op)
    return {"id": fid, "system": entry_id, "kind": msg.kind, "received_at": now,
            "department": doc.get("department"), "masked": kinds}


def _contact_ctx(tenant: str, fid: str) -> str:
    return f"feedback-contact\x00{tenant}\x00{fid}"


def inbox(services: Any, tenant: str, department: str | None = None,
          system: str | None = None, caller: Caller | None = None) -> list[dict[str, Any]]:
    """Feedback items, newest first; ``department`` matches its name in either language.

    A citizen's contact is decrypted only for a caller holding the ``feedback-reply``
    purpose, and each such read is audited; others see ``hasContact`` only.
    """
    want = department.strip().casefold() if department else None
    reveal = caller is not None and REPLY_PURPOSE in caller.purposes
    out = []
    shown: list[str] = []
    for _t, _k, stored in services.store.reader().list_json(FEEDBACK_KIND, tenant):
        names = {str(v).casefold() for v in (stored.get("department") or {}).values()}
        if want is not None and want not in names:
            continue
        if system is not None and stored.get("system") != system:
            continue
        item = {k: v for k, v in stored.items() if k != "contact_enc"}
        enc = stored.get("contact_enc")
        item["hasContact"] = bool(enc)
        item["contact"] = None
        if enc and reveal:
            item["contact"] = services.trust.privacy.vault.decrypt(
                enc, _contact_ctx(tenant, str(stored["id"])))
            shown.append(str(stored["id"]))
        out.append(item)
    if shown and caller is not None:
        def op(tx: Tx) -> None:
            for fid in shown:
                emit(tx, SensitiveRead(tenant, caller.actor, fid, purpose=REPLY_PURPOSE,
                                       attrs=["contact"]))

        services.store.write(op)
    out.sort(key=lambda i: str(i.get("received_at")), reverse=True)
    return out
