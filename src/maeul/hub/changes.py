"""``notification.showChanges``: the previous value of each changed attribute, beside the
current one, in a notification (NGSI-LD v1.8: ``previousValue``, ``previousObject`` ...).

Only an attribute instance that existed before the change gets a previous member: a created
attribute has none. keyValues notifications carry no members, so they show no changes.
"""

from __future__ import annotations

from typing import Any

from .compaction import View
from .store.base import Entity

# attribute type -> (the member holding its value, the member naming the previous one)
PREVIOUS = {
    "Property": ("value", "previousValue"),
    "GeoProperty": ("value", "previousValue"),
    "Relationship": ("object", "previousObject"),
    "LanguageProperty": ("languageMap", "previousLanguageMap"),
    "VocabProperty": ("vocab", "previousVocab"),
    "ListProperty": ("valueList", "previousValueList"),
    "ListRelationship": ("objectList", "previousObjectList"),
    "JsonProperty": ("json", "previousJson"),
}


def with_deletions(after: Entity, before: Entity, changed: set[str], now: str) -> Entity:
    """``after`` plus an NGSI-LD Null instance for every instance of a changed attribute that
    the change removed, so an attributeDeleted notification shows what went (``value``,
    ``object`` ... set to ``urn:ngsi-ld:null``, with ``deletedAt`` for sysAttrs)."""
    from .temporal import deletion_instance

    extra: dict[str, list[dict[str, Any]]] = {}
    for iri in changed:
        olds = before["attrs"].get(iri) or []
        now_there = after["attrs"].get(iri) or []
        keep = {i.get("datasetId", "") for i in now_there}
        gone = [deletion_instance(o, now) for o in olds if o.get("datasetId", "") not in keep]
        if gone:
            extra[iri] = [*now_there, *gone]
    if not extra:
        return after
    return {**after, "attrs": {**after["attrs"], **extra}}


def show_changes(
    shown: dict[str, Any], before: Entity, after: Entity, changed: set[str], view: View
) -> None:
    """Add the previous members to ``shown`` (``after`` as ``view`` rendered it), in place."""
    if view.fmt == "keyValues":
        return
    for iri in changed:
        insts = after["attrs"].get(iri)
        olds = {i.get("datasetId", ""): i for i in before["attrs"].get(iri, [])}
        name = view.ctx.compact_iri(iri)
        if not insts or not olds or name not in shown:
            continue
        items = [shown[name]] if len(insts) == 1 else list(shown[name])
        for idx, inst in enumerate(insts):
            old = olds.get(inst.get("datasetId", ""))
            member = PREVIOUS.get(str(old.get("type"))) if old is not None else None
            if old is None or member is None or member[0] not in old:
                continue
            prev = old[member[0]]
            if member[0] == "vocab":
                prev = ([view.ctx.compact_value_vocab(v) for v in prev] if isinstance(prev, list)
                        else view.ctx.compact_value_vocab(str(prev)))
            item = items[idx]
            if not isinstance(item, dict):  # concise: a bare value stands for {"value": ...}
                item = {"value": item}
            items[idx] = {**item, member[1]: prev}
        shown[name] = items[0] if len(insts) == 1 else items
