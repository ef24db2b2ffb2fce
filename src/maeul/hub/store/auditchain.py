"""The audit log's hash chain: how a record is hashed and how unsealed records are sealed.

Each record gets a chain position and ``hash = sha256(prev_hash + "\\n" + canonical_json)``,
where the canonical JSON holds every field of the record except the hash itself. Changing,
removing or reordering any sealed record breaks the chain from that record on.

SQLite seals inside the writing transaction (one writer, so the head is never contended).
PostgreSQL writers insert unsealed rows and a sealer chains them in order under an advisory
lock, so concurrent writers do not queue behind one chain head; see ``maeul.trust.audit``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GENESIS = "0" * 64
FIELDS = ("chain", "seq", "ts", "tenant", "actor", "action", "target", "detail", "prev")


def canonical(rec: dict[str, Any]) -> bytes:
    return orjson.dumps({k: rec.get(k) for k in FIELDS}, option=orjson.OPT_SORT_KEYS)


def record_hash(rec: dict[str, Any]) -> str:
    """The hash a record must carry, given its fields and its ``prev``."""
    h = hashlib.sha256()
    h.update(str(rec.get("prev")).encode())
    h.update(b"\n")
    h.update(canonical(rec))
    return h.hexdigest()


def head(tx: Any) -> tuple[int, str]:
    row = tx.x(
        "SELECT chain, hash FROM audit WHERE chain IS NOT NULL ORDER BY chain DESC LIMIT 1"
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def seal_rows(tx: Any, limit: int) -> int:
    """Chain up to ``limit`` unsealed records, oldest first; the number sealed."""
    rows = tx.x(
        "SELECT seq, ts, tenant, actor, action, target, detail FROM audit"
        " WHERE chain IS NULL ORDER BY seq LIMIT ?",
        (limit,),
    ).fetchall()
    if not rows:
        return 0
    pos, prev = head(tx)
    for seq, ts, tenant, actor, action, target, detail in rows:
        pos += 1
        rec = {"chain": pos, "seq": int(seq), "ts": ts, "tenant": tenant, "actor": actor,
               "action": action, "target": target, "detail": orjson.loads(detail),
               "prev": prev}
        prev = record_hash(rec)
        tx.x("UPDATE audit SET chain = ?, prev = ?, hash = ? WHERE seq = ?",
             (pos, rec["prev"], prev, seq))
    return len(rows)


def seal_new(tx: Any, ts: str, tenant: str, actor: str, action: str, target: str,
             detail: dict[str, Any]) -> None:
    """Insert one record already sealed (the single-writer store, with no unsealed backlog).

    Its ``seq`` is taken after the largest ever given (SQLite's AUTOINCREMENT counter), as
    the insert would have assigned it; every read is in the writing transaction. The head
    this writer left (``tx.audit_head``) saves the read for the next record of the same
    group; the store forgets it at each group's start and at every rollback."""
    head = tx.audit_head
    if head is None:
        row = tx.x(
            "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'audit'), chain, hash"
            " FROM (SELECT 1) LEFT JOIN (SELECT chain, hash FROM audit WHERE chain IS NOT NULL"
            " ORDER BY chain DESC LIMIT 1)"
        ).fetchone()
        head = (int(row[0] or 0),
                *((int(row[1]), str(row[2])) if row[1] is not None else (0, GENESIS)))
    seq = head[0] + 1
    pos, prev = head[1], head[2]
    rec = {"chain": pos + 1, "seq": seq, "ts": ts, "tenant": tenant, "actor": actor,
           "action": action, "target": target, "detail": detail, "prev": prev}
    # the hash is over the detail as stored and read back (orjson both ways)
    rec["detail"] = orjson.loads(orjson.dumps(detail))
    tx.x(
        "INSERT INTO audit(seq, ts, tenant, actor, action, target, detail, chain, prev, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, tenant, actor, action, target, orjson.dumps(detail).decode(), pos + 1, prev,
         digest := record_hash(rec)),
    )
    tx.audit_head = (seq, pos + 1, digest)


def chain_sql(after: int, limit: int) -> tuple[str, list[Any]]:
    return (
        "SELECT chain, seq, ts, tenant, actor, action, target, detail, prev, hash FROM audit"
        " WHERE chain > ? ORDER BY chain LIMIT ?",
        [after, limit],
    )


def chain_records(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    keys = (*FIELDS, "hash")
    out = []
    for row in rows:
        rec = dict(zip(keys, row, strict=True))
        rec["chain"] = int(rec["chain"])
        rec["seq"] = int(rec["seq"])
        rec["detail"] = orjson.loads(rec["detail"])
        out.append(rec)
    return out
