"""Trust layer: the AI registry (Algorithmic Transparency Standard v0.3.1).

Storage contract (other components rely on it): an entry is a JSON document in the store's
kv table, kind ``registry``, keyed by (tenant, entry id); its ``status`` field holds the
lifecycle status (planned ... operational, retired).

Entries come from two places: systems in maeul declare theirs in code (``declare``), and the
city registers systems it runs elsewhere over the API. Declared entries are copied into each
tenant on first use and by the ``registry-sync`` job; once the city edits a field of one, that
field is the city's and a changed declaration no longer overwrites it (see
docs/trust-registry.md). Every change is audited in the transaction that makes it.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from ..hub.entities import now_iso
from ..hub.errors import AlreadyExists, BadRequestData, ResourceNotFound
from ..hub.store.base import Tx
from . import registry_entries  # noqa: F401 - declares the trust layer's own systems
from .events import RegistryEntryCreated, RegistryEntryRetired, RegistryEntryUpdated, emit
from .jobs import Job
from .registry_model import (
    DECLARED,
    EDITABLE,
    LANGS,
    ROMAN,
    STANDARD_VERSION,
    STATUSES,
    check_id,
    check_lang,
    declaration_generation,
    declare,
    fields_of,
    languages,
    merge_patch,
    missing,
    performance_text,
    refuse_managed,
    to_record,
    validate_fields,
)

__all__ = ["KIND", "Registry", "cli_export", "declare"]

log = logging.getLogger(__name__)
KIND = "registry"
EVAL_KIND = "registry_evaluation"
ASSESSMENT_KIND = "assessment"  # maeul.trust.impact.KIND; not imported to keep the modules apart
INTERNAL = ("declared_hash", "declared_fields", "city_edited")
CODE_ACTOR = "code"
SYNC_INTERVAL_S = 3600.0
Docs = list[dict[str, Any]]  # aliases: the class's ``list`` method shadows the builtin
Ids = list[str]
Jobs = list[Job]


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def is_public(doc: dict[str, Any]) -> bool:
    """Citizens see every entry past ``planned`` (retired ones stay visible)."""
    return doc.get("status") != "planned"


class Registry:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self._synced: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- reads ------------------------------------------------------------------------------
    def get(self, tenant: str, entry_id: str) -> dict[str, Any] | None:
        """The stored entry, or None."""
        self.ensure(tenant)
        return self.s.store.reader().get_json(KIND, tenant, entry_id)  # type: ignore[no-any-return]

    def require(self, tenant: str, entry_id: str) -> dict[str, Any]:
        doc = self.get(tenant, entry_id)
        if doc is None:
            raise ResourceNotFound(f"registry entry {entry_id} not found")
        return doc

    def _docs(self, tenant: str) -> Docs:
        self.ensure(tenant)
        return [d for _t, _k, d in self.s.store.reader().list_json(KIND, tenant)]

    def _assessments(self, tenant: str) -> dict[str, dict[str, Any]]:
        return {k: d for _t, k, d in self.s.store.reader().list_json(ASSESSMENT_KIND, tenant)}

    def _assessment(self, tenant: str, entry_id: str) -> dict[str, Any] | None:
        return self.s.store.reader().get_json(ASSESSMENT_KIND, tenant, entry_id)  # type: ignore[no-any-return]

    def list(self, tenant: str, status: str | None = None) -> Docs:
        """Every entry of the tenant (optionally of one status), as API views."""
        if status is not None and status not in STATUSES:
            raise BadRequestData(f"status: one of {', '.join(STATUSES)}")
        assessments = self._assessments(tenant)
        return [entry_view(d, assessments.get(d["id"])) for d in self._docs(tenant)
                if status is None or d.get("status") == status]

    def view(self, tenant: str, entry_id: str) -> dict[str, Any]:
        """One entry as the API shows it (with impact level and rendered performance)."""
        doc = self.require(tenant, entry_id)
        return entry_view(doc, self._assessment(tenant, entry_id))

    def evaluations(self, tenant: str, entry_id: str) -> Docs:
        """Every evaluation record of a system, oldest first."""
        self.require(tenant, entry_id)
        hist = self.s.store.reader().get_json(EVAL_KIND, tenant, entry_id) or {}
        return list(hist.get("records", []))

    def export(self, tenant: str, lang: str | None = None) -> Docs:
        """Records in the standard's field names: one per entry in ``lang``, or one per entry
        and language it is written in when ``lang`` is None."""
        check_lang(lang)
        assessments = self._assessments(tenant)
        out = []
        for doc in self._docs(tenant):
            for lg in [lang] if lang else languages(doc):
                out.append(to_record(doc, lg, assessments.get(doc["id"])))
        return out

    def public_list(self, tenant: str, lang: str = "ko") -> Docs:
        """What citizens see: published entries, one language, no contact persons."""
        check_lang(lang)
        assessments = self._assessments(tenant)
        return [to_record(d, lang, assessments.get(d["id"]), public=True)
                for d in self._docs(tenant) if is_public(d)]

    def public_get(self, tenant: str, entry_id: str, lang: str = "ko") -> dict[str, Any]:
        check_lang(lang)
        doc = self.get(tenant, entry_id)
        if doc is None or not is_public(doc):
            raise ResourceNotFound(f"registry entry {entry_id} not found")
        return to_record(doc, lang, self._assessment(tenant, entry_id), public=True)

    # -- writes -----------------------------------------------------------------------------
    def create(self, tenant: str, data: Any, actor: str) -> dict[str, Any]:
        """Register a system; 409 when the id is taken."""
        if not isinstance(data, dict):
            raise BadRequestData("a registry entry must be a JSON object")
        if "id" not in data:
            raise BadRequestData("id: Field required")
        entry_id = check_id(data["id"])
        fields = validate_fields(data, allow_id=True)
        self.ensure(tenant)
        doc = new_doc(entry_id, fields, "api")

        def op(tx: Tx) -> None:
            if tx.get_json(KIND, tenant, entry_id) is not None:
                raise AlreadyExists(f"registry entry {entry_id} already exists")
            tx.ensure_tenant(tenant)
            tx.put_json(KIND, tenant, entry_id, doc)
            emit(tx, RegistryEntryCreated(tenant, actor, entry_id, status=doc["status"]))

        self.s.store.write(op)
        return entry_view(doc, None)

    def update(self, tenant: str, entry_id: str, patch: Any, actor: str) -> dict[str, Any]:
        """Change some fields (JSON Merge Patch: objects merge per language, null removes)."""
        if not isinstance(patch, dict):
            raise BadRequestData("the update must be a JSON object")
        if "id" in patch:
            raise BadRequestData("id: cannot be changed")
        refuse_managed(patch)
        unknown = sorted(k for k in patch if k not in EDITABLE)
        if unknown:
            raise BadRequestData("; ".join(f"{k}: Extra inputs are not permitted" for k in unknown))
        if patch.get("status") == "retired":
            raise BadRequestData("status: retire an entry with POST .../retire (Registry.retire)")
        self.ensure(tenant)

        def op(tx: Tx) -> dict[str, Any]:
            doc = _load(tx, tenant, entry_id)
            current = fields_of(doc)
            fields = validate_fields(merge_patch(current, patch))
            changed = sorted(k for k in set(current) | set(fields)
                             if current.get(k) != fields.get(k))
            if not changed:
                return doc
            new = {k: v for k, v in doc.items() if k not in current}
            new.update(fields)
            _touch(new)
            if new.get("source") == "code":
                new["city_edited"] = sorted(set(new.get("city_edited", [])) | set(changed))
            tx.put_json(KIND, tenant, entry_id, new)
            emit(tx, RegistryEntryUpdated(tenant, actor, entry_id, fields=changed))
            return new

        doc = self.s.store.write(op)
        return entry_view(doc, self._assessment(tenant, entry_id))

    def retire(self, tenant: str, entry_id: str, actor: str) -> dict[str, Any]:
        """Set the status to ``retired``; the entry stays (and stays public)."""
        self.ensure(tenant)

        def op(tx: Tx) -> dict[str, Any]:
            doc = _load(tx, tenant, entry_id)
            if doc.get("status") == "retired":
                return doc
            doc["status"] = "retired"
            doc["retired_at"] = now_iso()
            _touch(doc)
            if doc.get("source") == "code":
                doc["city_edited"] = sorted(set(doc.get("city_edited", [])) | {"status"})
            tx.put_json(KIND, tenant, entry_id, doc)
            emit(tx, RegistryEntryRetired(tenant, actor, entry_id))
            return doc

        doc = self.s.store.write(op)
        return entry_view(doc, self._assessment(tenant, entry_id))

    def record_evaluation(self, tenant: str, system_id: str, metrics: dict[str, Any],
                          command: str, dataset: str, actor: str) -> dict[str, Any]:
        """Store what an evaluation command measured; the entry's performance is written
        from the latest record. Returns the record."""
        record = {"at": now_iso(), "command": _short("command", command, 500),
                  "dataset": _short("dataset", dataset, 500),
                  "metrics": _metrics(metrics), "actor": actor}
        self.ensure(tenant)

        def op(tx: Tx) -> None:
            doc = _load(tx, tenant, system_id)
            hist = tx.get_json(EVAL_KIND, tenant, system_id) or {"records": []}
            hist["records"].append(record)
            tx.put_json(EVAL_KIND, tenant, system_id, hist)
            doc["evaluation"] = record
            _touch(doc)
            tx.put_json(KIND, tenant, system_id, doc)
            emit(tx, RegistryEntryUpdated(tenant, actor, system_id, fields=["performance"]))

        self.s.store.write(op)
        return record

    # -- code-declared entries --------------------------------------------------------------
    def ensure(self, tenant: str) -> None:
        """Sync the declared entries into ``tenant`` once per process (and after new
        declarations). Tenants that do not exist yet are left alone, except ``default``."""
        gen = declaration_generation()
        if self._synced.get(tenant) == gen:
            return
        if tenant != "default" and not self.s.store.reader().tenant_exists(tenant):
            return
        with self._lock:
            if self._synced.get(tenant) == gen:
                return
            self.sync(tenant)
            self._synced[tenant] = gen

    def sync(self, tenant: str) -> Ids:
        """Copy code declarations into ``tenant``; the ids created or changed."""
        reader = self.s.store.reader()
        stale = [d for d in DECLARED.values()
                 if (reader.get_json(KIND, tenant, d["id"]) or {}).get("declared_hash")
                 != d["hash"]]
        if not stale:
            return []

        def op(tx: Tx) -> Ids:
            return [d["id"] for d in stale if _sync_one(tx, tenant, d)]

        changed: Ids = self.s.store.write(op)
        return changed

    def sync_all(self) -> dict[str, Ids]:
        out = {}
        for tenant in sorted(set(self.s.store.tenants()) | {"default"}):
            out[tenant] = self.sync(tenant)
            self._synced[tenant] = declaration_generation()
        return out

    def jobs(self) -> Jobs:
        return [Job("registry-sync", SYNC_INTERVAL_S, self.sync_all)]


# -- helpers --------------------------------------------------------------------------------
def ensure_system(services: Any, tenant: str, entry: dict[str, Any], answers: dict[str, Any],
                  assessor: str) -> int:
    """Declare a service's entry, sync it into ``tenant`` and score its shipped answers
    unless the city assessed the system itself (``assessor`` marks the shipped assessment);
    the system's current level. Services call this when they start."""
    from .impact import KIND as ASSESSMENT_KIND

    if entry["id"] not in DECLARED:
        declare(entry)
    trust = services.trust
    trust.registry.ensure(tenant)
    if trust.registry.get(tenant, entry["id"]) is None:
        trust.registry.sync(tenant)  # a tenant created after this process synced it
    current = services.store.reader().get_json(ASSESSMENT_KIND, tenant, entry["id"])
    if current is None or (current.get("actor") == assessor
                           and current.get("answers") != answers):
        current = trust.impact.assess(tenant, entry["id"], answers, assessor)
    return int(current["level"])


def _load(tx: Tx, tenant: str, entry_id: str) -> dict[str, Any]:
    doc = tx.get_json(KIND, tenant, entry_id)
    if doc is None:
        raise ResourceNotFound(f"registry entry {entry_id} not found")
    return doc


def _touch(doc: dict[str, Any]) -> None:
    doc["updated_at"] = now_iso()
    if doc.get("publication_date") is None and doc.get("status") != "planned":
        doc["publication_date"] = _today()


def new_doc(entry_id: str, fields: dict[str, Any], source: str,
            tenant: str = "") -> dict[str, Any]:
    """A stored entry: the editable attributes plus what the platform keeps about them."""
    now = now_iso()
    # a declared entry gets the same uuid wherever (and however often) it is synced
    uid = (uuid.uuid5(uuid.NAMESPACE_URL, f"maeul:registry:{tenant}:{entry_id}")
           if source == "code" else uuid.uuid4())
    doc: dict[str, Any] = {"id": entry_id, "uuid": str(uid), "source": source,
                           "standard_version": STANDARD_VERSION, "created_at": now,
                           "updated_at": now, "publication_date": None, **fields}
    if "revision_date" not in doc:
        # the standard requires a date by which the entry is reviewed: a year unless given
        doc["revision_date"] = (date.today() + timedelta(days=365)).isoformat()
    _touch(doc)
    return doc


def _sync_one(tx: Tx, tenant: str, decl: dict[str, Any]) -> bool:
    """Create or refresh one declared entry; True when it changed.

    The city's edits win: fields named in ``city_edited`` keep the city's value, the others
    follow the declaration. An entry of the same id created over the API is left alone.
    """
    entry_id, fields = decl["id"], decl["fields"]
    doc = tx.get_json(KIND, tenant, entry_id)
    if doc is None:
        doc = new_doc(entry_id, fields, "code", tenant)
        doc.update(declared_hash=decl["hash"], declared_fields=sorted(fields), city_edited=[])
        tx.put_json(KIND, tenant, entry_id, doc)
        emit(tx, RegistryEntryCreated(tenant, CODE_ACTOR, entry_id, status=doc["status"]))
        return True
    if doc.get("source") != "code":
        log.warning("registry entry %s of tenant %s was registered over the API; "
                    "its code declaration is not applied", entry_id, tenant)
        return False
    if doc.get("declared_hash") == decl["hash"]:
        return False
    kept = set(doc.get("city_edited", []))
    changed = []
    for key in sorted(set(doc.get("declared_fields", [])) | set(fields)):
        if key in kept or doc.get(key) == fields.get(key):
            continue
        if key in fields:
            doc[key] = fields[key]
        else:
            doc.pop(key, None)
        changed.append(key)
    doc["declared_hash"] = decl["hash"]
    doc["declared_fields"] = sorted(fields)
    if changed:
        _touch(doc)
    tx.put_json(KIND, tenant, entry_id, doc)
    if changed:
        emit(tx, RegistryEntryUpdated(tenant, CODE_ACTOR, entry_id, fields=changed))
    return bool(changed)


def impact_summary(assessment: dict[str, Any] | None) -> dict[str, Any] | None:
    if not assessment:
        return None
    level = int(assessment["level"])
    return {"level": level, "level_roman": ROMAN.get(level), "total": assessment.get("total"),
            "max_raw": assessment.get("max_raw"), "ratio": assessment.get("ratio"),
            "assessed_at": assessment.get("assessed_at"),
            "obligations": assessment.get("obligations", [])}


def entry_view(doc: dict[str, Any], assessment: dict[str, Any] | None) -> dict[str, Any]:
    """A stored entry as the trust API shows it."""
    out = {k: v for k, v in doc.items() if k not in INTERNAL}
    evaluation = doc.get("evaluation")
    out["performance"] = ({lg: performance_text(evaluation, lg) for lg in LANGS}
                          if evaluation else None)
    out["impact"] = impact_summary(assessment)
    out["missing"] = missing(doc)
    if doc.get("source") == "code":
        out["city_edited"] = list(doc.get("city_edited", []))
    return out


def _short(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequestData(f"{name}: a non-empty text of at most {limit} characters")
    return value.strip()


def _metrics(metrics: Any) -> dict[str, Any]:
    if not isinstance(metrics, dict) or not metrics or len(metrics) > 50:
        raise BadRequestData("metrics: an object of 1 to 50 named measurements")
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            raise BadRequestData("metrics: names of 1 to 64 characters")
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value)) or (isinstance(value, str) and len(value) <= 100)
        if not ok:
            raise BadRequestData(f"metrics.{key}: a finite number or a text of at most 100 "
                                 "characters")
        out[key] = value
    return out


def cli_export(settings: Any, args: argparse.Namespace) -> int:
    """``maeul registry export``: every entry of ``args.tenant`` in the standard's names."""
    from types import SimpleNamespace

    from ..hub.store.base import open_store

    store = open_store(settings.store_url, synchronous=settings.sqlite_synchronous)
    try:
        registry = Registry(SimpleNamespace(store=store, settings=settings))
        records = registry.export(args.tenant)
    finally:
        store.close()
    sys.stdout.write(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
