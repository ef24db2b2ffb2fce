"""Entity operations on the stored (expanded) form; framework-free, typed inputs and errors.

Every change runs inside one ``store.write`` call, so the entity, its history, the audit record
and the notifications it triggers are committed together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .entities import (
    META,
    NULL_URI,
    canonical_time,
    check_complete,
    is_null_instance,
    json_copy,
    now_iso,
)
from .errors import AlreadyExists, BadRequestData, ResourceNotFound, TooManyResults
from .hooks import AccessGuard, ChangeListener, IngestHook, guard_hides, strip_attrs
from .qprefilter import PreNode
from .store.base import Entity, EntityFilter, HistoryRow, Store, Tx


@dataclass
class BatchResult:
    success: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # upsert: the ids that were new


@dataclass
class AttrsResult:
    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)  # (attr iri, reason)


@dataclass
class Query:
    """A compiled entity query; predicates come from hub.query and hub.geo."""

    types: tuple[str, ...] | None = None
    ids: tuple[str, ...] | None = None
    id_pattern: str | None = None
    attrs: set[str] | None = None
    q: Callable[[Entity], bool] | None = None
    scope_q: Callable[[list[str] | None], bool] | None = None
    geo: Callable[[Any], bool] | None = None
    geo_property: str | None = None
    geo_bbox: tuple[float, float, float, float] | None = None
    # a necessary condition of q that the store can test in SQL (hub.qprefilter)
    prefilter: PreNode | None = None
    geo_distance: Callable[[Any], float] | None = None
    limit: int = 20
    offset: int = 0
    count: bool = False
    # the caller's view of an entity: filters are evaluated on it and it is what is returned
    view: Callable[[Entity], Entity] | None = None


def _instance_id() -> str:
    return f"urn:ngsi-ld:attribute:instance:{uuid.uuid4()}"


def _default_geo(ent: Entity, iri: str) -> Any:
    insts = ent.get("attrs", {}).get(iri)
    if not insts:
        return None
    for inst in insts:
        if "datasetId" not in inst:
            return inst.get("value")
    return insts[0].get("value")


def merge_instance(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """NGSI-LD merge of one attribute instance: members replaced, sub-attributes merged."""
    if new.get("type") is not None and new.get("type") != old.get("type"):
        out = dict(new)
        if "createdAt" in old:
            out["createdAt"] = old["createdAt"]
        return out
    out = dict(old)
    for key, val in new.items():
        if key in META:
            out[key] = val
        elif val == NULL_URI or (isinstance(val, dict) and is_null_instance(val)):
            out.pop(key, None)
        elif isinstance(out.get(key), dict) and isinstance(val, dict):
            out[key] = merge_instance(out[key], val)
        else:
            out[key] = val
    return out


def expired(ent: Entity, now: str | None = None) -> bool:
    """Whether a transient entity is past its ``expiresAt`` (canonical timestamps compare as
    text); reads treat it as gone before the expiry job deletes it."""
    exp = ent.get("expiresAt")
    return exp is not None and exp <= (now or now_iso())


def _set_expiry(new: Entity, frag: Entity) -> None:
    """Apply a fragment's ``expiresAt`` member (None, from NGSI-LD's null, removes it)."""
    if "expiresAt" not in frag:
        return
    if frag["expiresAt"] is None:
        new.pop("expiresAt", None)
    else:
        new["expiresAt"] = frag["expiresAt"]


def _strip_nulls(a: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (_strip_nulls(v) if isinstance(v, dict) and k not in META else v)
        for k, v in a.items()
        if v != NULL_URI and not (isinstance(v, dict) and k not in META and is_null_instance(v))
    }


SCOPE_IRI = "https://uri.etsi.org/ngsi-ld/scope"


class Hub:
    """The context broker's operations. Thread-safe: state lives in the store."""

    def __init__(
        self,
        store: Store,
        *,
        max_limit: int = 1000,
        listeners: list[ChangeListener] | None = None,
    ) -> None:
        self.store = store
        self.max_limit = max_limit
        self.listeners: list[ChangeListener] = list(listeners or [])
        self.ingest_hooks: list[IngestHook] = []
        self.access_guards: list[AccessGuard] = []

    # -- hooks ---------------------------------------------------------------------------
    def _incoming(
        self, tx: Tx, tenant: str, actor: str, eid: str, types: list[str],
        attrs: dict[str, list[dict[str, Any]]], owned: bool,
    ) -> dict[str, list[dict[str, Any]]]:
        """``attrs`` after the ingest hooks (copied first unless ``owned``)."""
        if not self.ingest_hooks:
            return attrs
        if not owned:
            attrs = json_copy(attrs)
        for hook in self.ingest_hooks:
            hook.incoming(tx, tenant, actor, eid, types, attrs)
        return attrs

    def hidden(self, tenant: str, caller: Any, types: list[str]) -> Callable[[str], bool] | None:
        """Attribute IRIs of an entity with ``types`` that ``caller`` may not see."""
        return guard_hides(self.access_guards, tenant, caller, types)

    def visible(self, tenant: str, caller: Any, ent: Entity) -> Entity:
        """The entity without the attributes ``caller`` may not see."""
        hide = self.hidden(tenant, caller, ent["type"])
        return ent if hide is None else strip_attrs(ent, hide)

    def read_recorder(
        self, tenant: str, caller: Any, shown: list[tuple[str, list[str], list[str]]]
    ) -> Callable[[Tx], None] | None:
        """The write that records these reads (None when nothing needs recording)."""
        if not self.access_guards or not shown:
            return None
        ops = [op for g in self.access_guards if (op := g.reads(tenant, caller, shown))]
        if not ops:
            return None

        def run(tx: Tx) -> None:
            for op in ops:
                op(tx)

        return run

    # -- helpers ---------------------------------------------------------------------------
    def _record(
        self,
        tx: Tx,
        tenant: str,
        actor: str,
        action: str,
        before: Entity | None,
        after: Entity | None,
        attrs: set[str],
        trigger: str,
    ) -> None:
        ent = after or before
        assert ent is not None
        if after is not None and attrs:
            now = after.get("modifiedAt") or now_iso()
            rows = []
            for iri in attrs:
                for inst in after["attrs"].get(iri, []):
                    if inst.get("modifiedAt") != now:
                        continue
                    obs = inst.get("observedAt")
                    rows.append(
                        HistoryRow(
                            ent["id"],
                            iri,
                            inst.get("datasetId", ""),
                            _instance_id(),
                            canonical_time(obs) if obs else None,
                            now,
                            inst,
                        )
                    )
            tx.add_history(tenant, rows, after["type"])
        # who, when (the audit row's time), what: attribute names only, never values
        tx.audit(tenant, actor, action, ent["id"], {"attrs": sorted(attrs)})
        for listener in self.listeners:
            listener.changed(tx, tenant, before, after, attrs, trigger)

    @staticmethod
    def _stamp(attrs: dict[str, list[dict[str, Any]]], now: str, old: Entity | None) -> None:
        for iri, insts in attrs.items():
            olds = {i.get("datasetId", ""): i for i in (old or {}).get("attrs", {}).get(iri, [])}
            for inst in insts:
                prev = olds.get(inst.get("datasetId", ""))
                inst["createdAt"] = prev.get("createdAt", now) if prev else now
                inst["modifiedAt"] = now

    def _load(self, tx: Tx, tenant: str, eid: str) -> Entity:
        ent = tx.get_entity(tenant, eid)
        if ent is None:
            raise ResourceNotFound(f"entity {eid} not found")
        return ent

    # -- entity operations (each runs inside a write transaction) ---------------------------
    def _create(self, tx: Tx, tenant: str, ent: Entity, actor: str) -> None:
        if tx.get_entity(tenant, ent["id"]) is not None:
            raise AlreadyExists(f"entity {ent['id']} already exists")
        tx.ensure_tenant(tenant)
        now = now_iso()
        new = json_copy(ent)
        new["attrs"] = self._incoming(tx, tenant, actor, new["id"], new["type"], new["attrs"],
                                      owned=True)
        new["createdAt"] = new["modifiedAt"] = now
        self._stamp(new["attrs"], now, None)
        tx.put_entity(tenant, new, new=True)
        self._record(tx, tenant, actor, "entity.create", None, new, set(new["attrs"]),
                     "entityCreated")

    def _replace(self, tx: Tx, tenant: str, ent: Entity, actor: str) -> None:
        old = self._load(tx, tenant, ent["id"])
        now = now_iso()
        new = json_copy(ent)
        new["attrs"] = self._incoming(tx, tenant, actor, new["id"], new["type"], new["attrs"],
                                      owned=True)
        new["createdAt"] = old.get("createdAt", now)
        new["modifiedAt"] = now
        self._stamp(new["attrs"], now, old)
        tx.put_entity(tenant, new, new=False)
        changed = set(new["attrs"]) | set(old["attrs"])
        self._record(tx, tenant, actor, "entity.replace", old, new, changed, "entityUpdated")

    def _merge(self, tx: Tx, tenant: str, eid: str, frag: Entity, actor: str) -> None:
        old = self._load(tx, tenant, eid)
        new = json_copy(old)
        now = now_iso()
        if frag.get("type"):
            new["type"] = list(dict.fromkeys(old["type"] + frag["type"]))
        if "scope" in frag:
            new["scope"] = frag["scope"]
        _set_expiry(new, frag)
        changed: set[str] = set()
        incoming = self._incoming(tx, tenant, actor, eid, new["type"], frag["attrs"], owned=False)
        for iri, insts in incoming.items():
            changed.add(iri)
            cur = {i.get("datasetId", ""): i for i in new["attrs"].get(iri, [])}
            for inst in insts:
                ds = inst.get("datasetId", "")
                if is_null_instance(inst):
                    cur.pop(ds, None)
                    continue
                merged = merge_instance(cur[ds], inst) if ds in cur else _strip_nulls(inst)
                check_complete(iri.rsplit("/", 1)[-1], merged, iri)
                merged["createdAt"] = cur[ds].get("createdAt", now) if ds in cur else now
                merged["modifiedAt"] = now
                cur[ds] = merged
            if cur:
                new["attrs"][iri] = list(cur.values())
            else:
                new["attrs"].pop(iri, None)
        new["modifiedAt"] = now
        tx.put_entity(tenant, new, new=False)
        self._record(tx, tenant, actor, "entity.merge", old, new, changed, "entityUpdated")

    def _attrs_write(
        self, tx: Tx, tenant: str, eid: str, frag: Entity, actor: str, mode: str
    ) -> AttrsResult:
        """mode: append (add or replace), append-keep (noOverwrite), update (existing only)."""
        old = self._load(tx, tenant, eid)
        new = json_copy(old)
        now = now_iso()
        res = AttrsResult()
        if frag.get("type"):
            # 4.16: types in the fragment are appended, whatever the mode (5.6.2, 5.6.3)
            new["type"] = list(dict.fromkeys(old["type"] + frag["type"]))
        if "scope" in frag:
            if mode == "append-keep" and old.get("scope"):  # noOverwrite adds scopes
                new["scope"] = list(dict.fromkeys(old["scope"] + frag["scope"]))
            elif mode != "update" or "scope" in old:
                new["scope"] = frag["scope"]
            else:  # 5.6.2: update replaces a scope, it never adds one
                res.not_updated.append((SCOPE_IRI, "the entity has no scope to update"))
        if mode != "update":
            _set_expiry(new, frag)
        incoming = self._incoming(tx, tenant, actor, eid, new["type"], frag["attrs"], owned=False)
        for iri, insts in incoming.items():
            cur = {i.get("datasetId", ""): i for i in new["attrs"].get(iri, [])}
            touched = False
            for inst in insts:
                ds = inst.get("datasetId", "")
                exists = ds in cur
                if mode == "append-keep" and exists:
                    res.not_updated.append((iri, "attribute exists and noOverwrite was asked"))
                    continue
                if mode == "update" and not exists:
                    res.not_updated.append((iri, "attribute does not exist"))
                    continue
                if is_null_instance(inst):
                    cur.pop(ds, None)
                    touched = True
                    continue
                rep = dict(inst)
                rep["createdAt"] = cur[ds].get("createdAt", now) if exists else now
                rep["modifiedAt"] = now
                cur[ds] = rep
                touched = True
            if touched:
                res.updated.append(iri)
                if cur:
                    new["attrs"][iri] = list(cur.values())
                else:
                    new["attrs"].pop(iri, None)
        if res.updated or any(new.get(k) != old.get(k) for k in ("type", "scope", "expiresAt")):
            new["modifiedAt"] = now
            tx.put_entity(tenant, new, new=False)
            self._record(
                tx, tenant, actor, f"attrs.{mode}", old, new, set(res.updated), "entityUpdated"
            )
        return res

    def _partial_attr(
        self, tx: Tx, tenant: str, eid: str, iri: str, patch: dict[str, Any], actor: str
    ) -> None:
        old = self._load(tx, tenant, eid)
        insts = old["attrs"].get(iri)
        ds = patch.get("datasetId", "")
        target = next((i for i in insts or [] if i.get("datasetId", "") == ds), None)
        if target is None:
            raise ResourceNotFound(f"attribute {iri} (datasetId {ds or 'default'}) not found")
        new = json_copy(old)
        now = now_iso()
        patch = self._incoming(tx, tenant, actor, eid, old["type"], {iri: [patch]},
                               owned=False)[iri][0]
        if is_null_instance(patch):
            # NGSI-LD's null: the partial update deletes this instance
            rest = [i for i in new["attrs"][iri] if i.get("datasetId", "") != ds]
            if rest:
                new["attrs"][iri] = rest
            else:
                new["attrs"].pop(iri)
            new["modifiedAt"] = now
            tx.put_entity(tenant, new, new=False)
            self._record(tx, tenant, actor, "attr.delete", old, new, {iri}, "attributeDeleted")
            return
        merged = merge_instance(target, patch)
        check_complete(iri.rsplit("/", 1)[-1], merged, iri)
        merged["modifiedAt"] = now
        new["attrs"][iri] = [
            merged if i.get("datasetId", "") == ds else i for i in new["attrs"][iri]
        ]
        new["modifiedAt"] = now
        tx.put_entity(tenant, new, new=False)
        self._record(tx, tenant, actor, "attr.patch", old, new, {iri}, "entityUpdated")

    def _delete_attr(
        self,
        tx: Tx,
        tenant: str,
        eid: str,
        iri: str,
        dataset_id: str | None,
        delete_all: bool,
        actor: str,
    ) -> None:
        old = self._load(tx, tenant, eid)
        insts = old["attrs"].get(iri)
        if not insts and iri == SCOPE_IRI and old.get("scope"):
            # 4.18: scope is deleted like an attribute (5.6.5)
            new = json_copy(old)
            new.pop("scope")
            new["modifiedAt"] = now_iso()
            tx.put_entity(tenant, new, new=False)
            self._record(tx, tenant, actor, "attr.delete", old, new, set(), "entityUpdated")
            return
        if not insts:
            raise ResourceNotFound(f"attribute {iri} not found in {eid}")
        if delete_all:
            keep: list[dict[str, Any]] = []
        else:
            ds = dataset_id or ""
            keep = [i for i in insts if i.get("datasetId", "") != ds]
            if len(keep) == len(insts):
                raise ResourceNotFound(f"attribute {iri} has no instance with datasetId {ds}")
        new = json_copy(old)
        if keep:
            new["attrs"][iri] = keep
        else:
            new["attrs"].pop(iri)
        new["modifiedAt"] = now_iso()
        tx.put_entity(tenant, new, new=False)
        self._record(tx, tenant, actor, "attr.delete", old, new, {iri}, "attributeDeleted")

    def _delete(self, tx: Tx, tenant: str, eid: str, actor: str) -> None:
        old = self._load(tx, tenant, eid)
        tx.delete_entity(tenant, eid)
        self._record(tx, tenant, actor, "entity.delete", old, None, set(old["attrs"]),
                     "entityDeleted")

    # -- public API ------------------------------------------------------------------------
    def create_entity(self, tenant: str, ent: Entity, actor: str = "system") -> None:
        self.store.write(lambda tx: self._create(tx, tenant, ent, actor))

    def replace_entity(self, tenant: str, ent: Entity, actor: str = "system") -> None:
        self.store.write(lambda tx: self._replace(tx, tenant, ent, actor))

    def merge_entity(self, tenant: str, eid: str, frag: Entity, actor: str = "system") -> None:
        self.store.write(lambda tx: self._merge(tx, tenant, eid, frag, actor))

    def append_attrs(
        self, tenant: str, eid: str, frag: Entity, no_overwrite: bool, actor: str = "system"
    ) -> AttrsResult:
        mode = "append-keep" if no_overwrite else "append"
        return self.store.write(lambda tx: self._attrs_write(tx, tenant, eid, frag, actor, mode))

    def update_attrs(
        self, tenant: str, eid: str, frag: Entity, actor: str = "system"
    ) -> AttrsResult:
        return self.store.write(
            lambda tx: self._attrs_write(tx, tenant, eid, frag, actor, "update")
        )

    def partial_update_attr(
        self, tenant: str, eid: str, iri: str, patch: dict[str, Any], actor: str = "system"
    ) -> None:
        self.store.write(lambda tx: self._partial_attr(tx, tenant, eid, iri, patch, actor))

    def delete_attr(
        self,
        tenant: str,
        eid: str,
        iri: str,
        dataset_id: str | None = None,
        delete_all: bool = False,
        actor: str = "system",
    ) -> None:
        self.store.write(
            lambda tx: self._delete_attr(tx, tenant, eid, iri, dataset_id, delete_all, actor)
        )

    def delete_entity(self, tenant: str, eid: str, actor: str = "system") -> None:
        self.store.write(lambda tx: self._delete(tx, tenant, eid, actor))

    def get_entity(self, tenant: str, eid: str) -> Entity:
        ent = self.store.reader().get_entity(tenant, eid)
        if ent is None or expired(ent):
            raise ResourceNotFound(f"entity {eid} not found")
        return ent

    def tenant_exists(self, tenant: str) -> bool:
        return self.store.reader().tenant_exists(tenant)

    # -- batch -----------------------------------------------------------------------------
    def batch(
        self, tenant: str, op: str, items: list[Any], actor: str = "system",
        no_overwrite: bool = False, upsert_replace: bool = True,
    ) -> BatchResult:
        """create | upsert | update | delete | merge over many entities, one bad one alone."""

        def run(tx: Tx) -> BatchResult:
            res = BatchResult()
            seen: set[str] = set()
            if op != "create":
                tx.prefetch(tenant, [i if isinstance(i, str) else i["id"] for i in items])
            for item in items:
                eid = item if isinstance(item, str) else item["id"]
                try:
                    if op == "create":
                        if eid in seen:
                            raise AlreadyExists(f"entity {eid} appears twice in the batch")
                        self._create(tx, tenant, item, actor)
                    elif op == "upsert":
                        if tx.get_entity(tenant, eid) is None:
                            self._create(tx, tenant, item, actor)
                            res.created.append(eid)
                        elif upsert_replace:
                            self._replace(tx, tenant, item, actor)
                        else:
                            self._attrs_write(tx, tenant, eid, item, actor, "append")
                    elif op == "update":
                        r = self._attrs_write(
                            tx, tenant, eid, item, actor,
                            "append-keep" if no_overwrite else "append",
                        )
                        if r.not_updated and not r.updated:
                            raise BadRequestData("no attribute was updated")
                    elif op == "merge":
                        self._merge(tx, tenant, eid, item, actor)
                    elif op == "delete":
                        self._delete(tx, tenant, eid, actor)
                    else:  # pragma: no cover - routes only pass known operations
                        raise ValueError(op)
                except (AlreadyExists, ResourceNotFound, BadRequestData) as exc:
                    res.errors.append({"entityId": eid, "error": exc.problem()})
                else:
                    seen.add(eid)
                    res.success.append(eid)
            return res

        return self.store.write(run)

    # -- query -----------------------------------------------------------------------------
    def query(self, tenant: str, q: Query) -> tuple[list[Entity], int | None]:
        if q.limit > self.max_limit:
            raise TooManyResults(
                f"limit {q.limit} is above the maximum {self.max_limit}",
            )
        flt = EntityFilter(
            types=q.types,
            ids=q.ids,
            id_pattern=q.id_pattern,
            bbox=q.geo_bbox if q.geo_property in (None, "https://uri.etsi.org/ngsi-ld/location")
            else None,
            q=q.prefilter,
            want=None if q.count or q.geo_distance is not None else q.offset + q.limit,
        )
        matches: list[Entity] = []
        total = 0
        need_all = q.count or q.geo_distance is not None
        for ent in self.store.query_entities(tenant, flt):
            if q.view is not None:
                ent = q.view(ent)
            if not self._passes(ent, q):
                continue
            total += 1
            if need_all or len(matches) < q.offset + q.limit:
                matches.append(ent)
            elif not need_all:
                break
        if q.geo_distance is not None and q.geo_property is not None:
            dist = q.geo_distance
            prop = q.geo_property
            matches.sort(key=lambda e: dist(_default_geo(e, prop)))
        page = matches[q.offset : q.offset + q.limit]
        return page, (total if q.count else None)

    def _passes(self, ent: Entity, q: Query) -> bool:
        if q.attrs is not None and not (q.attrs & ent["attrs"].keys()):
            return False
        if q.q is not None and not q.q(ent):
            return False
        if q.scope_q is not None and not q.scope_q(ent.get("scope")):
            return False
        if q.geo is not None and q.geo_property is not None:
            if not q.geo(_default_geo(ent, q.geo_property)):
                return False
        return True


def upsert_entity(hub: Hub, tenant: str, ent: Entity, actor: str) -> bool:
    """Create the entity, or append its attributes to the existing one; True when created."""

    def op(tx: Tx) -> bool:
        if tx.get_entity(tenant, ent["id"]) is None:
            hub._create(tx, tenant, ent, actor)
            return True
        hub._attrs_write(tx, tenant, ent["id"], ent, actor, "append")
        return False

    return bool(hub.store.write(op))


def upsert_many(hub: Hub, tenant: str, ents: list[Entity], actor: str) -> int:
    """Upsert (append) several entity snapshots in one transaction; returns how many created."""

    def op(tx: Tx) -> int:
        created = 0
        for ent in ents:
            if tx.get_entity(tenant, ent["id"]) is None:
                hub._create(tx, tenant, ent, actor)
                created += 1
            else:
                hub._attrs_write(tx, tenant, ent["id"], ent, actor, "append")
        return created

    return int(hub.store.write(op))
