"""Trust layer: privacy by design: attribute classes, pseudonyms, purposes, retention, PII.

``Privacy`` loads the policy (``settings.privacy_policy`` or the built-in one) and installs
its callbacks into the hub's hook points, which know nothing of the trust layer:

- ``Hub.ingest_hooks`` / ``Temporal.ingest_hooks``: identifiers are pseudonymised and citizens'
  text masked on every write path, inside the write transaction (privacy_ingest);
- ``Hub.access_guards`` / ``Subscriptions.access_guards``: sensitive attributes only for keys
  with an allowed purpose, each such read audited (privacy_access);
- ``Hub.listeners``: encrypted originals go with their entity.

The format of the policy is documented in docs/trust-privacy.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..config import Settings
from ..hub.errors import Conflict, Forbidden, ResourceNotFound
from ..hub.store.base import Tx
from .events import OriginalDecrypted, emit
from .jobs import Job
from .pii import SCANNER, Masked
from .privacy_access import ReadRules
from .privacy_ingest import ORIGINALS, IngestRules, OriginalsCleanup, aad, digest
from .privacy_policy import Policy, PolicyError, load_policy, local_name
from .pseudonym import PSEUDONYM_KEY, TEXT_KEY, KeyFile, Pseudonymiser, TextVault
from .retention import Retention

log = logging.getLogger(__name__)

__all__ = ["Masked", "Policy", "PolicyError", "Privacy", "cli_retention"]


class Privacy:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services
        settings = services.settings
        self.policy = load_policy(settings.privacy_policy)
        secrets_dir = Path(settings.secrets_dir)
        # keys are read (or created) on first use, so a hub that never meets a declared
        # identifier or text never needs a secrets folder
        self.pseudonyms = Pseudonymiser(KeyFile(secrets_dir, PSEUDONYM_KEY))
        self.vault = TextVault(KeyFile(secrets_dir, TEXT_KEY))
        self.ingest = IngestRules(self.policy, self.pseudonyms, self.vault, SCANNER)
        self.access = ReadRules(self.policy)
        self.retention = Retention(services.store, self.policy)
        self.interval_s = float(settings.retention_interval_s)
        hub = services.hub
        hub.ingest_hooks.append(self.ingest)
        hub.access_guards.append(self.access)
        hub.listeners.append(OriginalsCleanup(self.policy))
        if getattr(services, "temporal", None) is not None:
            services.temporal.ingest_hooks.append(self.ingest)
        if getattr(services, "subs", None) is not None:
            services.subs.access_guards.append(self.access)

    # -- text ------------------------------------------------------------------------------
    def mask_text(self, text: str) -> Masked:
        """``text`` with names, phone numbers, RRNs, e-mails, addresses and plates masked."""
        return SCANNER.mask(text)

    # -- identifiers -----------------------------------------------------------------------
    def pseudonym(self, tenant: str, value: Any) -> str:
        """The pseudonym ingest gives ``value`` in ``tenant`` (to look a person's data up)."""
        return self.pseudonyms.pseudonym(tenant, value)

    # -- reads -----------------------------------------------------------------------------
    def visible(self, tenant: str, caller: Any, ent: dict[str, Any]) -> dict[str, Any]:
        """A stored entity as ``caller`` may see it (no audit record; see the hub API)."""
        hide = self.access.hides(tenant, caller, ent["type"])
        if hide is None:
            return ent
        return {**ent, "attrs": {k: v for k, v in ent["attrs"].items() if not hide(k)}}

    def original(
        self, tenant: str, caller: Any, eid: str, attr: str, dataset_id: str = ""
    ) -> dict[str, Any]:
        """The decrypted original of a masked text, for a key with an allowed purpose.

        Raises Forbidden without the purpose, ResourceNotFound when the policy keeps no
        original or the kept one is not of the current text. Audited (OriginalDecrypted)."""
        ent = self.s.hub.get_entity(tenant, eid)
        doc = self.s.store.reader().get_json(ORIGINALS, tenant, eid) or {"attrs": {}}
        candidates = list(dict.fromkeys([*ent["attrs"], *doc["attrs"]]))
        iri = attr if attr in candidates else next(
            (c for c in candidates if local_name(c) == attr), attr)
        rule = self.policy.rules(ent["type"]).rule(iri)
        if rule is None or rule.text is None or not rule.text.keep_original:
            raise ResourceNotFound(f"the privacy policy keeps no original of {attr} of {eid}")
        allowed = (frozenset(rule.text.purposes) if rule.text.purposes is not None
                   else rule.purposes)
        matched = allowed & caller.purposes
        if not matched:
            raise Forbidden(f"reading the original of {attr} needs a key with one of the "
                            f"purposes: {', '.join(sorted(allowed)) or '(none declared)'}")
        entry = doc["attrs"].get(iri, {}).get(dataset_id)
        current = next((i for i in ent["attrs"].get(iri, [])
                        if i.get("datasetId", "") == dataset_id), None)
        if entry is None or current is None or entry["masked"] != digest(
            current.get("languageMap", current.get("value"))
        ):
            raise ResourceNotFound(f"no original is kept for the current text of {attr} "
                                   f"of {eid} (nothing was masked in it)")
        try:
            text = self.vault.decrypt(entry["ciphertext"], aad(tenant, eid, iri, dataset_id))
        except ValueError:
            raise Conflict("the original cannot be decrypted with the current text key") from None
        purpose = ",".join(sorted(matched))

        def record(tx: Tx) -> None:
            emit(tx, OriginalDecrypted(tenant, caller.actor, eid, purpose=purpose))

        self.s.store.write(record)
        return {"entityId": eid, "attribute": iri, "datasetId": dataset_id or None,
                "original": orjson.loads(text), "kinds": entry["kinds"], "keptAt": entry["at"]}

    # -- retention -------------------------------------------------------------------------
    def apply_retention(
        self, tenant: str | None = None, now: datetime | None = None, actor: str = "retention"
    ) -> dict[str, Any]:
        """Apply every retention rule once (all tenants by default); what went, per type."""
        summary = self.retention.run(tenant, now, actor)
        log.info("retention deleted %d history rows and wrote %d aggregates",
                 summary["deleted"], summary["aggregated"])
        return summary

    def jobs(self) -> list[Job]:
        # a first run soon after start-up: a process restarted more often than the interval
        # would otherwise never apply the policy
        return [Job("privacy.retention", self.interval_s, self.apply_retention,
                    first_s=min(60.0, self.interval_s))]


def cli_retention(settings: Settings, args: argparse.Namespace) -> int:
    """``maeul privacy retention``: apply the policy once, print the summary as JSON."""
    from ..hub.app import Services

    try:
        services = Services(settings)
    except PolicyError as exc:
        print(f"maeul: {exc}", file=sys.stderr)
        return 2
    try:
        summary = services.trust.privacy.apply_retention(getattr(args, "tenant", None),
                                                         actor="cli")
    finally:
        services.close()
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0
