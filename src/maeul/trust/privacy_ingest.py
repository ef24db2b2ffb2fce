"""Privacy at ingest: pseudonymise identifiers and mask citizens' text before storage.

Installed as a hub ingest hook (``Hub.ingest_hooks``, ``Temporal.ingest_hooks``), so every
write path (API, batch, device ingest, importers, temporal API) passes through it inside the
write transaction: the raw identifier or unmasked text never reaches the entity, its history,
the audit log or a queued notification.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..hub.entities import NULL_URI, now_iso
from ..hub.errors import BadRequestData
from ..hub.store.base import Entity, Tx
from .events import TextMasked, emit
from .pii import Scanner
from .privacy_policy import AttrRule, Policy, local_name
from .pseudonym import Pseudonymiser, TextVault

ORIGINALS = "privacy.original"  # kv kind: encrypted originals, one document per entity
PSEUDONYM_ATTR = "https://uri.etsi.org/ngsi-ld/default-context/pseudonym"


def digest(value: Any) -> str:
    """A fingerprint of a stored (masked) value, to tell whether an original is current."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def aad(tenant: str, eid: str, iri: str, dataset_id: str) -> str:
    """Binds a ciphertext to its place, so it cannot be swapped onto another entity."""
    return f"{tenant}\x00{eid}\x00{iri}\x00{dataset_id}"


class IngestRules:
    """The ``IngestHook`` of the privacy component."""

    def __init__(self, policy: Policy, pseudonyms: Pseudonymiser, vault: TextVault,
                 scanner: Scanner) -> None:
        self.policy = policy
        self.pseudonyms = pseudonyms
        self.vault = vault
        self.scanner = scanner

    def incoming(
        self, tx: Tx, tenant: str, actor: str, eid: str, types: list[str],
        attrs: dict[str, list[dict[str, Any]]],
    ) -> None:
        rules = self.policy.rules(types)
        if not rules.keyed:
            return
        masked: list[str] = []
        kinds: set[str] = set()
        kept = False
        for iri, insts in attrs.items():
            rule = rules.rule(iri)
            if rule is None:
                continue
            if rule.identifier:
                for inst in insts:
                    self._pseudonymise(tenant, iri, inst, rule)
            elif rule.text is not None:
                for inst in insts:
                    found, original = self._text(tx, tenant, eid, iri, inst, rule)
                    if found:
                        masked.append(iri)
                        kinds.update(found)
                        kept = kept or original
        if masked:
            emit(tx, TextMasked(tenant, actor, eid, attrs=sorted(set(masked)),
                                kinds=sorted(kinds), original_kept=kept))

    # -- identifiers -----------------------------------------------------------------------
    def _pseudonymise(self, tenant: str, iri: str, inst: dict[str, Any], rule: AttrRule) -> None:
        name = local_name(iri)
        for key in ("value", "object"):
            if key not in inst or inst[key] == NULL_URI:
                continue
            raw = inst[key]
            if isinstance(raw, bool) or not isinstance(raw, str | int):
                raise BadRequestData(
                    f"attribute {name} is a personal identifier: its {key} must be a string "
                    "or a number, so that it can be pseudonymised")
            pseudonym = self.pseudonyms.pseudonym(tenant, raw)
            if rule.keep_raw:
                inst[PSEUDONYM_ATTR] = {"type": "Property", "value": pseudonym}
            else:
                inst[key] = pseudonym
        for key in ("valueList", "objectList"):
            if key in inst and isinstance(inst[key], list):
                if rule.keep_raw:
                    continue
                out = []
                for item in inst[key]:
                    if isinstance(item, dict) and "object" in item:
                        item = {**item, "object": self.pseudonyms.pseudonym(tenant,
                                                                            item["object"])}
                    elif isinstance(item, str | int) and not isinstance(item, bool):
                        item = self.pseudonyms.pseudonym(tenant, item)
                    else:
                        raise BadRequestData(f"attribute {name} is a personal identifier: "
                                             "its items must be strings or numbers")
                    out.append(item)
                inst[key] = out
        if "languageMap" in inst:
            raise BadRequestData(f"attribute {name} is a personal identifier, not a text")

    # -- free text -------------------------------------------------------------------------
    def _text(
        self, tx: Tx, tenant: str, eid: str, iri: str, inst: dict[str, Any], rule: AttrRule
    ) -> tuple[list[str], bool]:
        """Mask the instance's text; returns the kinds found and whether the original was kept."""
        assert rule.text is not None
        name = local_name(iri)
        key = "languageMap" if "languageMap" in inst else "value"
        value = inst.get(key)
        if value is None or value == NULL_URI:
            return [], False
        texts = value if isinstance(value, dict) else {"": value}
        for t in texts.values():
            if isinstance(t, str) and len(t) > rule.text.max_length:
                raise BadRequestData(
                    f"attribute {name}: text of {len(t)} characters is longer than the "
                    f"{rule.text.max_length} the privacy policy allows")
        if not rule.text.mask:
            return [], False
        kinds: set[str] = set()
        out: dict[str, Any] = {}
        for lang, t in texts.items():
            if isinstance(t, str):
                m = self.scanner.mask(t)
                kinds.update(m.kinds)
                out[lang] = m.text
            else:
                out[lang] = t
        new_value = out if isinstance(value, dict) else out[""]
        ds = inst.get("datasetId", "")
        if kinds:
            inst[key] = new_value
        if rule.text.keep_original:
            self._keep(tx, tenant, eid, iri, ds, value if kinds else None, new_value, kinds)
            return sorted(kinds), bool(kinds)
        return sorted(kinds), False

    def _keep(
        self, tx: Tx, tenant: str, eid: str, iri: str, ds: str, original: Any,
        masked: Any, kinds: set[str],
    ) -> None:
        doc = tx.get_json(ORIGINALS, tenant, eid) or {"attrs": {}}
        slot = doc["attrs"].setdefault(iri, {})
        if original is None:
            # nothing was masked: an original kept for an earlier text is no longer current
            old = slot.get(ds)
            if old is None or old.get("masked") == digest(masked):
                return
            slot.pop(ds)
        else:
            token = self.vault.encrypt(orjson.dumps(original).decode(),
                                       aad(tenant, eid, iri, ds))
            slot[ds] = {"ciphertext": token, "masked": digest(masked), "kinds": sorted(kinds),
                        "at": now_iso()}
        if not slot:
            doc["attrs"].pop(iri)
        if doc["attrs"]:
            tx.put_json(ORIGINALS, tenant, eid, doc)
        else:
            tx.delete_json(ORIGINALS, tenant, eid)


class OriginalsCleanup:
    """A hub ChangeListener: an entity's or attribute's encrypted originals go with it."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def changed(
        self, tx: Tx, tenant: str, before: Entity | None, after: Entity | None,
        attrs: set[str], trigger: str,
    ) -> None:
        ent = after if after is not None else before
        if ent is None or before is None:
            return
        rules = self.policy.rules(ent["type"])
        if not any(a.text is not None and a.text.keep_original for _k, a, _p, _t in rules.keyed):
            return
        if after is None:
            tx.delete_json(ORIGINALS, tenant, ent["id"])
            return
        gone = [a for a in attrs if a in before["attrs"] and a not in after["attrs"]]
        if not gone:
            return
        doc = tx.get_json(ORIGINALS, tenant, ent["id"])
        if doc is None:
            return
        for a in gone:
            doc["attrs"].pop(a, None)
        if doc["attrs"]:
            tx.put_json(ORIGINALS, tenant, ent["id"], doc)
        else:
            tx.delete_json(ORIGINALS, tenant, ent["id"])
