"""SQL shared by the SQLite and PostgreSQL backends (written with ``?`` placeholders)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from . import valueindex
from .auditchain import seal_new, seal_rows
from .base import Entity, EntityFilter, HistoryRow, TemporalFilter
from .presql import Dialect
from .presql import render as render_prefilter

LOCATION = "https://uri.etsi.org/ngsi-ld/location"


def now_iso() -> str:
    """Canonical UTC timestamp: fixed width, so text order is time order."""
    # isoformat with explicit microseconds is fixed width and cheaper than strftime
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def dumps(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def _walk_positions(coords: Any, out: list[tuple[float, float]]) -> None:
    if isinstance(coords, list) and coords and isinstance(coords[0], int | float):
        out.append((float(coords[0]), float(coords[1])))
    elif isinstance(coords, list):
        for c in coords:
            _walk_positions(c, out)


def location_bbox(entity: Entity) -> tuple[float, float, float, float] | None:
    """Bounding box of the default instance of ``location``, for the index prefilter."""
    insts = entity.get("attrs", {}).get(LOCATION)
    if not insts:
        return None
    value = insts[0].get("value")
    if not isinstance(value, dict):
        return None
    pts: list[tuple[float, float]] = []
    _walk_positions(value.get("coordinates"), pts)
    if not pts:
        return None
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return (min(xs), min(ys), max(xs), max(ys))


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlTx:
    """Statements shared by both backends over a DB-API connection.

    With ``seal_inline`` each audit record is hash-chained in the same transaction (the
    SQLite writer); otherwise a sealer chains records later (PostgreSQL, many writers).
    """

    def __init__(self, conn: Any, seal_inline: bool = False, track_types: bool = False,
                 vindex: valueindex.ValueIndexes | None = None) -> None:
        self.conn = conn
        self.seal_inline = seal_inline
        # SQLite's writer keeps the q value indexes (valueindex.py) in step with each entity;
        # with track_types, the seq and index rows of entities read in this operation
        self.vindex = vindex
        self._seqs: dict[tuple[str, str], tuple[int, valueindex.Rows]] = {}
        # with track_types (a writer that calls forget at every operation's start), the types
        # of entities read in the current operation, so a put need not read them again
        self.track_types = track_types
        self._types: dict[tuple[str, str], str] = {}
        # and their location boxes as stored, so an update that leaves the box as it was
        # does not rewrite the entities_bbox index entry (three times the cost of the row)
        self._boxes: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._backlog_sealed = False
        # (seq, chain position, hash) of the audit record this writer inserted last, while
        # its group is open and nothing was rolled back (auditchain.seal_new); else None
        self.audit_head: tuple[int, int, str] | None = None

    def forget(self) -> None:
        """Start of one operation: drop what earlier operations read."""
        if self._types:
            self._types.clear()
            self._seqs.clear()
            self._boxes.clear()

    # -- helpers the backend may override -------------------------------------------------
    def x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    # -- tenants --------------------------------------------------------------------------
    def ensure_tenant(self, tenant: str) -> None:
        self.x(
            "INSERT INTO tenants(name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (tenant, now_iso()),
        )

    def tenant_exists(self, tenant: str) -> bool:
        return self.x("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone() is not None

    # -- entities -------------------------------------------------------------------------
    def get_entity(self, tenant: str, eid: str) -> Entity | None:
        if not self.track_types:
            row = self.x("SELECT doc FROM entities WHERE tenant = ? AND id = ?",
                         (tenant, eid)).fetchone()
            return None if row is None else loads(row[0])
        row = self.x(
            "SELECT doc, types, seq, minx, miny, maxx, maxy FROM entities"
            " WHERE tenant = ? AND id = ?", (tenant, eid)
        ).fetchone()
        if row is None:
            return None
        self._types[(tenant, eid)] = row[1]
        self._boxes[(tenant, eid)] = row[3:7]
        ent: Entity = loads(row[0])
        vi = self.vindex
        if vi is not None and vi.active:
            self._seqs[(tenant, eid)] = (row[2], vi.rows(tenant, ent))
        return ent

    def get_entities(self, tenant: str, ids: list[str]) -> dict[str, Entity]:
        out: dict[str, Entity] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for eid, doc in self.x(
                f"SELECT id, doc FROM entities WHERE tenant = ? AND id IN ({marks})",
                (tenant, *chunk),
            ).fetchall():
                out[eid] = loads(doc)
        return out

    def prefetch(self, tenant: str, ids: list[str]) -> None:
        """No-op here: SQLite has one writer and its reads are local."""

    def put_entity(self, tenant: str, entity: Entity, new: bool) -> None:
        bbox = location_bbox(entity) or (None, None, None, None)
        types = entity["type"]
        doc = dumps(entity)
        if new:
            row = self.x(
                "INSERT INTO entities(tenant, id, types, doc, minx, miny, maxx, maxy)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                (tenant, entity["id"], dumps(types), doc, *bbox),
            ).fetchone()
            self._put_types(tenant, entity["id"], types, int(row[0]))
            vi = self.vindex
            if vi is not None and vi.active:
                vi.apply(self.x, int(row[0]), {}, vi.rows(tenant, entity))
            return
        types_json = dumps(types)
        known = self._types.pop((tenant, entity["id"]), None)
        read = self._seqs.pop((tenant, entity["id"]), None)
        box = self._boxes.pop((tenant, entity["id"]), None)
        if known is not None and known == types_json:
            # read in this operation with the same types: entity_types stays as it is
            if box == tuple(bbox):
                self.x("UPDATE entities SET doc = ? WHERE tenant = ? AND id = ?",
                       (doc, tenant, entity["id"]))
            else:
                self.x(
                    "UPDATE entities SET doc = ?, minx = ?, miny = ?, maxx = ?, maxy = ?"
                    " WHERE tenant = ? AND id = ?",
                    (doc, *bbox, tenant, entity["id"]),
                )
            if self.vindex is not None and self.vindex.active:
                if read is None:  # pragma: no cover - a get in this operation stored it
                    raise RuntimeError("q value index: the entity's old rows are unknown")
                self._reindex(tenant, entity, read)
            return
        old = self.x(
            "SELECT types, seq FROM entities WHERE tenant = ? AND id = ?", (tenant, entity["id"])
        ).fetchone()
        vi = self.vindex
        if old is not None and vi is not None and vi.active and read is None:
            read = self._indexed(tenant, entity["id"])  # before the document changes
        self.x(
            "UPDATE entities SET types = ?, doc = ?, minx = ?, miny = ?, maxx = ?, maxy = ?"
            " WHERE tenant = ? AND id = ?",
            (types_json, doc, *bbox, tenant, entity["id"]),
        )
        if old is not None and loads(old[0]) != types:
            self.x("DELETE FROM entity_types WHERE tenant = ? AND id = ?", (tenant, entity["id"]))
            self._put_types(tenant, entity["id"], types, int(old[1]))
        if old is not None and vi is not None and vi.active:
            self._reindex(tenant, entity, read)

    def _indexed(self, tenant: str, eid: str) -> tuple[int, valueindex.Rows] | None:
        """The seq and index rows of the stored entity (read before it is changed)."""
        assert self.vindex is not None
        row = self.x("SELECT seq, doc FROM entities WHERE tenant = ? AND id = ?",
                     (tenant, eid)).fetchone()
        return None if row is None else (int(row[0]), self.vindex.rows(tenant, loads(row[1])))

    def _reindex(self, tenant: str, entity: Entity,
                 read: tuple[int, valueindex.Rows] | None) -> None:
        assert self.vindex is not None
        if read is not None:
            self.vindex.apply(self.x, read[0], read[1], self.vindex.rows(tenant, entity))

    def _put_types(self, tenant: str, eid: str, types: list[str], seq: int) -> None:
        # seq rides along so a type filter streams in creation order without a sort
        for t in types:
            self.x(
                "INSERT INTO entity_types(tenant, type, id, seq) VALUES (?, ?, ?, ?)",
                (tenant, t, eid, seq),
            )

    def delete_entity(self, tenant: str, eid: str) -> bool:
        if self.vindex is not None and self.vindex.active:
            old = self._indexed(tenant, eid)
            if old is not None:
                self.vindex.apply(self.x, old[0], old[1], {})
        cur = self.x("DELETE FROM entities WHERE tenant = ? AND id = ?", (tenant, eid))
        self.x("DELETE FROM entity_types WHERE tenant = ? AND id = ?", (tenant, eid))
        return bool(cur.rowcount)

    # -- history --------------------------------------------------------------------------
    def add_history(self, tenant: str, rows: list[HistoryRow], types: list[str]) -> None:
        if not rows:
            return
        self.executemany(
            "INSERT INTO history(tenant, entity_id, attr, dataset_id, instance_id, observed_at,"
            " recorded_at, doc, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    tenant,
                    r.entity_id,
                    r.attr,
                    r.dataset_id,
                    r.instance_id,
                    r.observed_at,
                    r.recorded_at,
                    dumps(r.doc),
                    r.deleted_at,
                )
                for r in rows
            ],
        )
        eids = {r.entity_id for r in rows}
        for eid in eids:
            self.x(
                "INSERT INTO temporal_entities(tenant, id, types) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant, id) DO UPDATE SET types = excluded.types"
                " WHERE temporal_entities.types <> excluded.types",  # no rewrite if same
                (tenant, eid, dumps(types)),
            )

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(sql, rows)

    def delete_history(
        self,
        tenant: str,
        eid: str,
        attr: str | None = None,
        dataset_id: str | None = None,
        instance_id: str | None = None,
    ) -> int:
        sql = "DELETE FROM history WHERE tenant = ? AND entity_id = ?"
        params: list[Any] = [tenant, eid]
        if attr is not None:
            sql += " AND attr = ?"
            params.append(attr)
        if dataset_id is not None:
            sql += " AND dataset_id = ?"
            params.append(dataset_id)
        if instance_id is not None:
            sql += " AND instance_id = ?"
            params.append(instance_id)
        n = int(self.x(sql, params).rowcount)
        if attr is None:
            self.x("DELETE FROM temporal_entities WHERE tenant = ? AND id = ?", (tenant, eid))
        return n

    def delete_history_before(
        self,
        tenant: str,
        type_iri: str,
        before: str,
        entity_id: str | None = None,
        spare_prefix: str | None = None,
    ) -> int:
        like = f'%"{like_escape(type_iri)}"%'
        owners = (
            "SELECT id FROM temporal_entities WHERE tenant = ? AND types LIKE ? ESCAPE '\\'"
        )
        sql = (
            f"DELETE FROM history WHERE tenant = ? AND entity_id IN ({owners})"
            " AND COALESCE(observed_at, recorded_at) < ?"
        )
        params: list[Any] = [tenant, tenant, like, before]
        if entity_id is not None:
            sql += " AND entity_id = ?"
            params.append(entity_id)
        if spare_prefix is not None:
            sql += " AND dataset_id NOT LIKE ? ESCAPE '\\'"
            params.append(like_escape(spare_prefix) + "%")
        n = int(self.x(sql, params).rowcount)
        if n:
            # an entity whose whole history went is no longer a temporal entity
            gone = (
                "DELETE FROM temporal_entities WHERE tenant = ? AND types LIKE ? ESCAPE '\\'"
                " AND NOT EXISTS (SELECT 1 FROM history h WHERE h.tenant = temporal_entities.tenant"
                " AND h.entity_id = temporal_entities.id)"
            )
            gparams: list[Any] = [tenant, like]
            if entity_id is not None:
                gone += " AND id = ?"
                gparams.append(entity_id)
            self.x(gone, gparams)
        return n

    def temporal_exists(self, tenant: str, eid: str) -> bool:
        row = self.x(
            "SELECT 1 FROM temporal_entities WHERE tenant = ? AND id = ?", (tenant, eid)
        ).fetchone()
        return row is not None

    # -- small JSON documents (subscriptions, devices, keys, tenant settings) ---------------
    def put_json(self, kind: str, tenant: str, key: str, doc: dict[str, Any]) -> None:
        self.x(
            "INSERT INTO kv(kind, tenant, key, doc) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, tenant, key) DO UPDATE SET doc = excluded.doc",
            (kind, tenant, key, dumps(doc)),
        )

    def get_json(self, kind: str, tenant: str, key: str) -> dict[str, Any] | None:
        row = self.x(
            "SELECT doc FROM kv WHERE kind = ? AND tenant = ? AND key = ?", (kind, tenant, key)
        ).fetchone()
        return None if row is None else loads(row[0])

    def delete_json(self, kind: str, tenant: str, key: str) -> bool:
        cur = self.x(
            "DELETE FROM kv WHERE kind = ? AND tenant = ? AND key = ?", (kind, tenant, key)
        )
        return bool(cur.rowcount)

    def list_json(self, kind: str, tenant: str | None) -> list[tuple[str, str, dict[str, Any]]]:
        if tenant is None:
            rows = self.x("SELECT tenant, key, doc FROM kv WHERE kind = ? ORDER BY key", (kind,))
        else:
            rows = self.x(
                "SELECT tenant, key, doc FROM kv WHERE kind = ? AND tenant = ? ORDER BY key",
                (kind, tenant),
            )
        return [(t, k, loads(d)) for t, k, d in rows.fetchall()]

    # -- outbox and audit -----------------------------------------------------------------
    def enqueue(self, tenant: str, subscription_id: str, payload: dict[str, Any]) -> None:
        self.x(
            "INSERT INTO outbox(tenant, subscription_id, payload, attempts, next_at)"
            " VALUES (?, ?, ?, 0, ?)",
            (tenant, subscription_id, dumps(payload), now_iso()),
        )

    def audit(
        self, tenant: str, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        ts = now_iso()
        if self.seal_inline:
            if not self._backlog_sealed:  # records left unsealed by an older version
                while seal_rows(self, 5000):
                    pass
                self._backlog_sealed = True
                self.audit_head = None
            seal_new(self, ts, tenant, actor, action, target, detail)
            return
        self.x(
            "INSERT INTO audit(ts, tenant, actor, action, target, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (ts, tenant, actor, action, target, dumps(detail)),
        )


def finish_outbox_item(tx: Any, seq: int, ok: bool, retry_at: str | None) -> None:
    """Remove a delivered or abandoned notification, or schedule its next attempt."""
    if ok or retry_at is None:
        tx.x("DELETE FROM outbox WHERE seq = ?", (seq,))
    else:
        tx.x(
            "UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE seq = ?",
            (retry_at, seq),
        )


def audit_log_sql(tenant: str | None, limit: int) -> tuple[str, list[Any]]:
    sql = "SELECT seq, ts, tenant, actor, action, target, detail FROM audit"
    params: list[Any] = []
    if tenant is not None:
        sql += " WHERE tenant = ?"
        params.append(tenant)
    params.append(limit)
    return sql + " ORDER BY seq DESC LIMIT ?", params


def audit_records(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    keys = ("seq", "ts", "tenant", "actor", "action", "target", "detail")
    out = []
    for row in rows:
        rec = dict(zip(keys, row, strict=True))
        rec["detail"] = loads(rec["detail"])
        out.append(rec)
    return out


# -- read-side queries shared by both backends ---------------------------------------------


def entity_query_sql(
    tenant: str, flt: EntityFilter, page: bool = False, dialect: Dialect = "sqlite",
    postgis: bool = False,
) -> tuple[str, list[Any]]:
    """SQL for the prefilter; ids/types/bbox narrow by index, idPattern by regexp later.

    A type filter drives the query from entity_types' (tenant, type, seq) index, so the first
    page of a selective query is found without visiting other types or sorting. With ``page``
    the statement is one keyset page: it selects (seq, doc) and takes the last seq seen and
    the page size as its final parameters.
    """
    params: list[Any] = []
    if flt.types is not None and len(flt.types) == 1:
        seq = "t.seq"
        sql = (
            "SELECT e.doc FROM entity_types t JOIN entities e"
            " ON e.tenant = t.tenant AND e.id = t.id WHERE t.tenant = ? AND t.type = ?"
        )
        params.extend([tenant, flt.types[0]])
    else:
        seq = "e.seq"
        sql = "SELECT e.doc FROM entities e WHERE e.tenant = ?"
        params.append(tenant)
        if flt.types is not None:
            marks = ",".join("?" * len(flt.types))
            sql += (
                " AND e.seq IN (SELECT t.seq FROM entity_types t WHERE t.tenant = ?"
                f" AND t.type IN ({marks}))"
            )
            params.extend([tenant, *flt.types])
    sql += _narrow(flt, params, postgis)
    if flt.q is not None and dialect == "postgres":
        # most rows a q rejects are rejected here, so they are never decoded and shipped.
        # Not on SQLite: its JSON functions parse the whole document on every call (no
        # binary JSON before 3.45), which costs more per row than decoding it in Python
        # (bench/hub.py: 65 filtered queries/s with it, 800+ without).
        pre_sql, pre_params = render_prefilter(flt.q)
        sql += f" AND {pre_sql}"
        params.extend(pre_params)
    if not page:
        return f"{sql} ORDER BY {seq}", params
    sql = sql.replace("SELECT e.doc", f"SELECT {seq}, e.doc", 1)
    return f"{sql} AND {seq} > ? ORDER BY {seq} LIMIT ?", params


def _narrow(flt: EntityFilter, params: list[Any], postgis: bool = False) -> str:
    sql = ""
    if flt.ids is not None:
        marks = ",".join("?" * len(flt.ids))
        sql += f" AND e.id IN ({marks})"
        params.extend(flt.ids)
    if flt.bbox is not None:
        minx, miny, maxx, maxy = flt.bbox
        if postgis:  # the GiST index on the boxes (PostgreSQL with PostGIS)
            sql += " AND e.geom && ST_MakeEnvelope(?, ?, ?, ?, 4326)"
            params.extend([minx, miny, maxx, maxy])
        else:
            sql += " AND e.maxx >= ? AND e.minx <= ? AND e.maxy >= ? AND e.miny <= ?"
            params.extend([minx, maxx, miny, maxy])
    return sql


def docs_by_seq_sql(tenant: str, flt: EntityFilter, n: int) -> tuple[str, list[Any]]:
    """SQLite: (seq, doc) of ``n`` candidate rows named by seq (the ``n`` seqs come last)."""
    params: list[Any] = [tenant]
    sql = "SELECT seq, doc FROM entities e WHERE +e.tenant = ?" + _narrow(flt, params)
    return f"{sql} AND e.seq IN ({','.join('?' * n)}) ORDER BY e.seq", params


def id_pattern_matcher(pattern: str | None) -> re.Pattern[str] | None:
    return None if pattern is None else re.compile(pattern)


def iter_docs(cursor: Any, pattern: re.Pattern[str] | None) -> Iterator[Entity]:
    # small batches first: a query with a small limit usually stops after a few rows
    size = 32
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        for (doc,) in rows:
            ent: Entity = loads(doc)
            if pattern is None or pattern.fullmatch(ent["id"]):
                yield ent
        size = min(size * 4, 512)


#: the history column that each timeproperty reads
TIME_COLUMNS = {
    "observedAt": "observed_at",
    "modifiedAt": "recorded_at",
    "createdAt": "recorded_at",
    "deletedAt": "deleted_at",
}
_HISTORY_COLS = (
    "entity_id, attr, dataset_id, instance_id, observed_at, recorded_at, doc, deleted_at"
)


def _window_sql(flt: TemporalFilter, alias: str = "") -> tuple[str, list[Any]]:
    """`` AND ...`` conditions on history rows for the attrs and the timerel window."""
    col = alias + TIME_COLUMNS[flt.timeproperty]
    where = ""
    params: list[Any] = []
    if flt.attrs is not None:
        where += f" AND {alias}attr IN ({','.join('?' * len(flt.attrs))})"
        params.extend(flt.attrs)
    if flt.timeproperty == "deletedAt":
        # the evolution along deletedAt holds the deletions only (the instances that have it)
        where += f" AND {col} IS NOT NULL"
    if flt.timerel == "before":
        where += f" AND {col} < ?"
        params.append(flt.time_at)
    elif flt.timerel == "after":
        where += f" AND {col} >= ?"
        params.append(flt.time_at)
    elif flt.timerel == "between":
        where += f" AND {col} >= ? AND {col} < ?"
        params.extend([flt.time_at, flt.end_time_at])
    return where, params


def temporal_query_sql(tenant: str, flt: TemporalFilter) -> tuple[str, list[Any]]:
    params: list[Any] = [tenant]
    sql = "SELECT id, types FROM temporal_entities WHERE tenant = ?"
    if flt.ids is not None:
        sql += f" AND id IN ({','.join('?' * len(flt.ids))})"
        params.extend(flt.ids)
    if flt.types is not None:
        sql += " AND (" + " OR ".join("types LIKE ? ESCAPE '\\'" for _ in flt.types) + ")"
        params.extend(f'%"{like_escape(t)}"%' for t in flt.types)
    if flt.attrs is not None or flt.timerel is not None or flt.timeproperty == "deletedAt":
        # only entities with an instance in the window: one probe of the history indexes each
        where, wparams = _window_sql(flt, "h.")
        sql += (
            " AND EXISTS (SELECT 1 FROM history h WHERE h.tenant = temporal_entities.tenant"
            f" AND h.entity_id = temporal_entities.id{where})"
        )
        params.extend(wparams)
    sql += " ORDER BY id"
    return sql, params


def history_sql(tenant: str, eid: str, flt: TemporalFilter) -> tuple[str, list[Any]]:
    col = TIME_COLUMNS[flt.timeproperty]
    where, wparams = _window_sql(flt)
    where = "tenant = ? AND entity_id = ?" + where
    params: list[Any] = [tenant, eid, *wparams]
    cols = _HISTORY_COLS
    order = f"COALESCE({col}, recorded_at)"
    if flt.last_n is not None:
        # the newest N per attribute and dataset, returned oldest first
        sql = (
            f"SELECT {cols} FROM (SELECT {cols}, seq, ROW_NUMBER() OVER (PARTITION BY attr,"
            f" dataset_id ORDER BY {order} DESC, seq DESC) AS rn FROM history WHERE {where})"
            f" AS h WHERE rn <= ? ORDER BY {order}, seq"
        )
        params.append(flt.last_n)
    else:
        sql = f"SELECT {cols} FROM history WHERE {where} ORDER BY {order}, seq"
    return sql, params


def history_rows(rows: list[tuple[Any, ...]]) -> list[HistoryRow]:
    return [HistoryRow(r[0], r[1], r[2], r[3], r[4], r[5], loads(r[6]), r[7]) for r in rows]
