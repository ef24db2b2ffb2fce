"""The public projection of a proposal: one ``AIProposal`` entity in the hub.

KPIs and dashboards read these entities, never the engine's kv documents. Contract (kept
exactly; the KPI engine relies on it): id ``urn:ngsi-ld:AIProposal:<proposal id>``, type
``AIProposal``, Properties ``system``, ``status``, ``route``, ``impactLevel``, ``overridden``,
``reason``, ``submittedAt``, ``decidedAt``, ``appliedAt``, ``reviewers``, ``actionKind``,
``modelVersion``, ``expiresAt`` and the Relationship ``target``, all core-context terms.
"""

from __future__ import annotations

from typing import Any

from ..hub.core import Hub
from ..hub.entities import expand_entity, expand_fragment
from ..hub.store.base import Tx

TYPE = "AIProposal"
PREFIX = f"urn:ngsi-ld:{TYPE}:"


def entity_id(pid: str) -> str:
    return PREFIX + pid


def projection(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entity's attributes (compact, normalized) for a proposal document."""

    def prop(value: Any) -> dict[str, Any]:
        return {"type": "Property", "value": value}

    targets = doc["target"]
    out = {
        "system": prop(doc["system"]),
        "status": prop(doc["status"]),
        "route": prop(doc["route"]),
        "overridden": prop(bool(doc.get("overridden"))),
        "reviewers": prop(len(doc.get("approvals", []))),
        "actionKind": prop(doc["action"]["kind"]),
        "submittedAt": prop(doc["submittedAt"]),
        "expiresAt": prop(doc["expiresAt"]),
        "target": {"type": "Relationship",
                   "object": targets[0] if len(targets) == 1 else list(targets)},
    }
    optional = {
        "impactLevel": doc.get("impactLevel"),
        "reason": doc.get("reason"),
        "decidedAt": doc.get("decidedAt"),
        "appliedAt": doc.get("appliedAt"),
        "modelVersion": (doc.get("evidence") or {}).get("modelVersion"),
    }
    for name, value in optional.items():
        if value is not None:
            out[name] = prop(value)
    return out


def _current(ent: dict[str, Any], iri: str) -> Any:
    insts = ent["attrs"].get(iri)
    if not insts:
        return None
    inst = insts[0]
    return inst.get("object") if inst.get("type") == "Relationship" else inst.get("value")


def write_projection(tx: Tx, hub: Hub, ctx: Any, tenant: str, doc: dict[str, Any],
                     actor: str) -> None:
    """Create the entity, or change the attributes that differ from ``doc`` (inside ``tx``).

    Comparing with the stored entity, not with the previous document, repairs an entity that
    someone edited or deleted through the NGSI-LD API.
    """
    eid = entity_id(doc["id"])
    attrs = projection(doc)
    ent = tx.get_entity(tenant, eid)
    if ent is None:
        hub._create(tx, tenant, expand_entity({"id": eid, "type": TYPE, **attrs}, ctx), actor)
        return
    changed = {
        name: attr for name, attr in attrs.items()
        if _current(ent, ctx.expand_term(name)) != attr.get("value", attr.get("object"))
    }
    if changed:
        hub._attrs_write(tx, tenant, eid, expand_fragment(changed, ctx), actor, "append")
