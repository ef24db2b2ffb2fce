"""SQLite backend: WAL mode, one writer thread that commits queued writes in groups."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from . import valueindex
from .auditchain import chain_records, chain_sql, seal_rows
from .base import Entity, EntityFilter, HistoryRow, OutboxItem, Store, TemporalFilter, Tx
from .sqlbase import (
    SqlTx,
    audit_log_sql,
    audit_records,
    docs_by_seq_sql,
    entity_query_sql,
    finish_outbox_item,
    history_rows,
    history_sql,
    id_pattern_matcher,
    iter_docs,
    loads,
    temporal_query_sql,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL, id TEXT NOT NULL, types TEXT NOT NULL, doc TEXT NOT NULL,
  minx REAL, miny REAL, maxx REAL, maxy REAL,
  UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS entities_bbox ON entities (tenant, minx, maxx);
CREATE TABLE IF NOT EXISTS entity_types (
  tenant TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (tenant, type, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_types_seq ON entity_types (tenant, type, seq);
CREATE TABLE IF NOT EXISTS temporal_entities (
  tenant TEXT NOT NULL, id TEXT NOT NULL, types TEXT NOT NULL, PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL, entity_id TEXT NOT NULL, attr TEXT NOT NULL, dataset_id TEXT NOT NULL,
  instance_id TEXT NOT NULL, observed_at TEXT, recorded_at TEXT NOT NULL, doc TEXT NOT NULL,
  deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS history_obs ON history (tenant, entity_id, attr, observed_at);
CREATE INDEX IF NOT EXISTS history_rec ON history (tenant, entity_id, recorded_at);
CREATE TABLE IF NOT EXISTS kv (
  kind TEXT NOT NULL, tenant TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY (kind, tenant, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, subscription_id TEXT NOT NULL,
  payload TEXT NOT NULL, attempts INTEGER NOT NULL, next_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, tenant TEXT NOT NULL,
  actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL,
  chain INTEGER, prev TEXT, hash TEXT
);
"""
# created after the audit table's columns exist (older files gain them in _migrate)
INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS audit_chain ON audit (chain);
CREATE INDEX IF NOT EXISTS audit_unsealed ON audit (seq) WHERE chain IS NULL;
"""

_STOP = object()
#: index rows read at most, per wanted entity and in all, before reading in order goes on
INDEX_PER_WANTED = 40
INDEX_BASE = 1000


class _Call:
    """A ``run_write`` request: a callable run on the writer thread, and who awaits it."""

    __slots__ = ("fn", "fut", "loop")

    def __init__(self, fn: Callable[[], Any], fut: asyncio.Future[Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.fn, self.fut, self.loop = fn, fut, loop


def _settle(done: list[tuple[_Call, bool, Any]]) -> None:
    for call, ok, value in done:
        if call.fut.cancelled():
            continue
        if ok:
            call.fut.set_result(value)
        else:
            call.fut.set_exception(value)


def _connect(path: str, synchronous: str, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    # Switching a file to WAL (or opening a WAL file whose index another process is
    # rebuilding) can answer SQLITE_BUSY without calling the busy handler: several processes
    # opening one new store at once (`maeul serve --workers`, `maeul import` beside a server)
    # must wait for each other here, not fail.
    deadline = time.monotonic() + 30
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.02)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-65536")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    return conn


#: WAL frames past which the writer checkpoints itself, should the checkpointer fall behind
#: (a stalled thread); SQLite's default is 1,000
WRITER_CHECKPOINT_PAGES = 20_000
#: WAL frames past which the checkpointer finishes its pass with the writers held off
CATCH_UP_PAGES = 4_096
#: seconds between the checkpointer's passes while writes come in
CHECKPOINT_EVERY = 0.1


class _Checkpointer:
    """Copies the WAL back into the database file beside the writer, not inside its COMMIT.

    SQLite's default has the connection whose COMMIT takes the WAL past 1,000 pages run the
    checkpoint right there, holding the write lock: a third of the writer's time under steady
    writes. This thread, on its own connection, runs a PASSIVE checkpoint (it waits for
    nobody and blocks nobody) every ``CHECKPOINT_EVERY`` seconds after writes, while the
    writer goes on; SQLite releases the GIL meanwhile.

    The WAL file starts over only after a pass that copied every frame, which never happens
    while writes keep coming. So once the WAL holds ``CATCH_UP_PAGES`` frames, the thread
    takes the writers' file lock for a moment and copies the few frames written since its
    pass, and the next write starts the file over. Durability is unchanged: a committed
    transaction is in the WAL whether or not it has been copied back yet."""

    def __init__(self, path: str, synchronous: str) -> None:
        self._conn = _connect(path, synchronous, readonly=False)
        self._lock = os.open(path + ".wlock", os.O_RDWR | os.O_CREAT, 0o600)  # its own
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self.passes = 0
        self.catch_ups = 0
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint",
                                        daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        self._dirty.set()

    def _pass(self) -> tuple[int, int]:
        row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1]), int(row[2])  # frames in the WAL, frames copied

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait(1.0)
            if self._stop.is_set():
                break
            if not self._dirty.is_set():
                continue
            self._dirty.clear()
            try:
                frames, _copied = self._pass()
                self.passes += 1
                # the pass copied the frames there were when it began; the writer went on
                if frames >= CATCH_UP_PAGES:
                    fcntl.flock(self._lock, fcntl.LOCK_EX)
                    try:
                        self._pass()
                        self.catch_ups += 1
                    finally:
                        fcntl.flock(self._lock, fcntl.LOCK_UN)
            except sqlite3.Error as exc:  # another process's checkpoint, a closing file
                log.debug("checkpoint skipped: %s", exc)
            self._stop.wait(CHECKPOINT_EVERY)

    def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        self._thread.join(timeout=30)
        self._conn.close()
        os.close(self._lock)


class SqliteStore(Store):
    def __init__(self, url: str, synchronous: str = "NORMAL", group_commit_max: int = 512) -> None:
        self.url = url
        path = url[len("sqlite://") :]
        if path.startswith("/"):
            path = path[1:] if not path.startswith("//") else path[1:]
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/x.db -> "/abs/x.db"
        self.path = path or ":memory:"
        if self.path == ":memory:":
            raise ValueError("sqlite store needs a file path: sqlite:///var/maeul.db")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous
        self.group_commit_max = group_commit_max
        # Writers of other processes on this file (further `maeul serve` workers, `maeul
        # import`) queue on this lock in the kernel, and the one released takes over at once;
        # SQLite's own busy handler would sleep in steps of milliseconds between tries.
        self._wlock = os.open(self.path + ".wlock", os.O_RDWR | os.O_CREAT, 0o600)
        self._wconn = _connect(self.path, synchronous, readonly=False)
        self._wconn.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        self._wconn.executescript(SCHEMA)
        self._migrate()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._group_tx: SqlTx | None = None
        self._depth = 0
        # q value indexes (valueindex.py): registered ones, mended if an older maeul wrote
        self._vindex = valueindex.ValueIndexes()
        pending = self._vindex.load(self._wconn)
        self._checkpointer = _Checkpointer(self.path, synchronous)
        self._writer = threading.Thread(target=self._run_writer, name="sqlite-writer", daemon=True)
        self._writer.start()
        self._vindex.write = self.write
        self._vindex.resume(pending)

    def _migrate(self) -> None:
        cols = {r[1] for r in self._wconn.execute("PRAGMA table_info(audit)").fetchall()}
        for col, decl in (("chain", "INTEGER"), ("prev", "TEXT"), ("hash", "TEXT")):
            if col not in cols:
                self._wconn.execute(f"ALTER TABLE audit ADD COLUMN {col} {decl}")
        hcols = {r[1] for r in self._wconn.execute("PRAGMA table_info(history)").fetchall()}
        if "deleted_at" not in hcols:  # files from before deletions were recorded (#2)
            self._wconn.execute("ALTER TABLE history ADD COLUMN deleted_at TEXT")
        self._wconn.executescript(INDEXES)

    # -- writes ---------------------------------------------------------------------------
    def write(self, fn: Callable[[Tx], T]) -> T:
        if threading.current_thread() is self._writer:
            # a call run by the writer itself (run_write): join the group being committed
            return self._nested(fn)
        if self._closed:
            raise RuntimeError("store is closed")
        fut: Future[T] = Future()
        self._queue.put((fn, fut))
        return fut.result()

    async def run_write(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread inside the next group, awaited on the event loop.

        Compared with a worker thread blocking on ``write``, a request costs no thread hop:
        the writer runs ``fn`` (its ``write`` calls join the open group) and wakes the loop once
        per group after COMMIT, so sixteen waiting requests do not fight for the GIL."""
        if self._closed:
            raise RuntimeError("store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Call(fn, fut, loop))
        return await fut

    def _nested(self, fn: Callable[[Tx], T]) -> T:
        if self._group_tx is None:
            raise RuntimeError("write from the writer thread outside a group")
        conn = self._wconn
        self._depth += 1
        name = f"n{self._depth}"
        conn.execute(f"SAVEPOINT {name}")
        self._group_tx.forget()
        try:
            value = fn(self._group_tx)
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            self._group_tx.audit_head = None
            conn.execute(f"RELEASE {name}")
            raise
        else:
            conn.execute(f"RELEASE {name}")
            return value
        finally:
            self._depth -= 1

    def _run_writer(self) -> None:
        tx = SqlTx(self._wconn, seal_inline=True, track_types=True, vindex=self._vindex)
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            self._take_queued(batch)
            self._commit_group(tx, batch)

    def _take_queued(self, batch: list[Any]) -> None:
        """Add the writes waiting in the queue to ``batch``, up to ``group_commit_max``."""
        while len(batch) < self.group_commit_max:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return
            if nxt is _STOP:
                self._queue.put(_STOP)
                return
            batch.append(nxt)

    def _commit_group(self, tx: SqlTx, batch: list[Any]) -> None:
        results: list[tuple[Any, bool, Any]] = []
        conn = self._wconn
        fcntl.flock(self._wlock, fcntl.LOCK_EX)
        # writes that came while another process held the file join this group: with two
        # workers the lock is mostly taken, and larger groups mean fewer hand-overs and
        # pages written once for several writes
        self._take_queued(batch)
        try:
            conn.execute("BEGIN IMMEDIATE")
            tx.audit_head = None  # another process may have written since
            self._vindex.refresh(conn.execute)
            self._group_tx = tx
            for item in batch:
                if isinstance(item, _Call):
                    # its own write calls are savepoints (_nested); what it did before a
                    # failure stays, as it would with separate writes
                    try:
                        results.append((item, True, item.fn()))
                    except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                        results.append((item, False, exc))
                    continue
                fn, fut = item
                conn.execute("SAVEPOINT w")
                tx.forget()
                try:
                    value = fn(tx)
                except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                    conn.execute("ROLLBACK TO w")
                    tx.audit_head = None
                    conn.execute("RELEASE w")
                    results.append((fut, False, exc))
                else:
                    conn.execute("RELEASE w")
                    results.append((fut, True, value))
            self._group_tx = None
            if self._vindex.active:  # this writer kept the indexes in step
                conn.execute(valueindex.CLEAR_DIRTY)
            conn.execute("COMMIT")
            fcntl.flock(self._wlock, fcntl.LOCK_UN)
            self._checkpointer.wrote()
        except Exception as exc:  # the whole group failed to commit: nobody is acknowledged
            self._group_tx = None
            log.exception("group commit failed")
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            fcntl.flock(self._wlock, fcntl.LOCK_UN)
            results = [(item if isinstance(item, _Call) else item[1], False, exc)
                       for item in batch]
        # acknowledge only after COMMIT returned, so an acknowledged write is durable
        calls: dict[asyncio.AbstractEventLoop, list[tuple[_Call, bool, Any]]] = {}
        for target, ok, value in results:
            if isinstance(target, _Call):
                calls.setdefault(target.loop, []).append((target, ok, value))
            elif target.done():
                continue
            elif ok:
                target.set_result(value)
            else:
                target.set_exception(value)
        for loop, done in calls.items():
            try:  # one wake-up of each event loop per group
                loop.call_soon_threadsafe(_settle, done)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass

    # -- reads ----------------------------------------------------------------------------
    def _rconn(self) -> sqlite3.Connection:
        if self._group_tx is not None and threading.current_thread() is self._writer:
            # a run_write call reading after its own writes (a purge, page by page) must see
            # them: on the writer, inside a group, reads go through the writing connection
            return self._wconn
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self.synchronous, readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def reader(self) -> Tx:
        return SqlTx(self._rconn())

    def query_entities(self, tenant: str, flt: EntityFilter) -> Iterator[Entity]:
        if flt.q is not None and flt.types:
            return self._query_indexed(tenant, flt)
        sql, params = entity_query_sql(tenant, flt)
        cur = self._rconn().execute(sql, params)
        return iter_docs(cur, id_pattern_matcher(flt.id_pattern))

    def _query_indexed(self, tenant: str, flt: EntityFilter) -> Iterator[Entity]:
        """A typed query with q, through a q value index (valueindex.py) when one narrows it.

        The index is asked to count its candidates, up to ``INDEX_PER_WANTED`` per entity the
        caller wants (plus ``INDEX_BASE``): a filter it cannot narrow that far is read in
        order, as without an index, so it costs at most that count more. Otherwise only the
        candidates are read, the first ones first; the exact q runs on them in the core."""
        conn = self._rconn()
        types = list(flt.types or ())
        assert flt.q is not None
        cap = (1 << 40) if flt.want is None else INDEX_BASE + INDEX_PER_WANTED * flt.want
        plan = self._vindex.plan(conn.execute, tenant, types, flt.q, cap,
                                 None if flt.want is None else flt.want + 16)
        pattern = id_pattern_matcher(flt.id_pattern)
        if plan is None:
            sql, params = entity_query_sql(tenant, flt)
            yield from iter_docs(conn.execute(sql, params), pattern)
            return
        wanted = set(types)
        n = None if flt.want is None else flt.want + 16
        last = 0
        while True:
            seqs = plan.first(conn.execute, last, n)
            for i in range(0, len(seqs), 128):
                chunk = seqs[i : i + 128]
                sql, params = docs_by_seq_sql(tenant, flt, len(chunk))
                for _seq, doc in conn.execute(sql, [*params, *chunk]).fetchall():
                    ent: Entity = loads(doc)
                    # the index keys types by a hash: the document has the last word
                    if wanted.isdisjoint(ent["type"]):
                        continue
                    if pattern is None or pattern.fullmatch(ent["id"]):
                        yield ent
            if n is None or len(seqs) < n:
                return
            last, n = seqs[-1], n * 4

    def value_indexes(self) -> list[dict[str, Any]]:
        """The q value indexes of this file: tenant, type, attribute, entities filled, ready."""
        rows = self._rconn().execute(
            "SELECT tenant, type, attr_iri, built_to, ready, created_at FROM qindexes"
            " ORDER BY created_at, tenant, type, attr_iri"
        ).fetchall()
        return [{"tenant": r[0], "type": r[1], "attr": r[2], "builtTo": r[3],
                 "ready": bool(r[4]), "createdAt": r[5]} for r in rows]

    def wait_value_indexes(self, timeout: float = 30.0) -> bool:
        """Block until every index asked for is complete (tests, benchmarks); False on timeout."""
        return self._vindex.wait(timeout)

    def count_types(self, tenant: str) -> dict[str, int]:
        rows = self._rconn().execute(
            "SELECT type, COUNT(*) FROM entity_types WHERE tenant = ? GROUP BY type", (tenant,)
        )
        return {t: int(n) for t, n in rows.fetchall()}

    def attribute_summary(self, tenant: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        cur = self._rconn().execute("SELECT doc FROM entities WHERE tenant = ?", (tenant,))
        for ent in iter_docs(cur, None):
            for attr in ent.get("attrs", {}):
                out.setdefault(attr, set()).update(ent["type"])
        return out

    def temporal_entities(
        self, tenant: str, flt: TemporalFilter
    ) -> Iterator[tuple[str, list[str]]]:
        sql, params = temporal_query_sql(tenant, flt)
        pattern = id_pattern_matcher(flt.id_pattern)
        for eid, types in self._rconn().execute(sql, params).fetchall():
            if pattern is None or pattern.fullmatch(eid):
                yield eid, loads(types)

    def history(self, tenant: str, eid: str, flt: TemporalFilter) -> list[HistoryRow]:
        sql, params = history_sql(tenant, eid, flt)
        return history_rows(self._rconn().execute(sql, params).fetchall())

    def claim_outbox(self, limit: int, now: str) -> list[OutboxItem]:
        rows = (
            self._rconn()
            .execute(
                "SELECT seq, tenant, subscription_id, payload, attempts FROM outbox"
                " WHERE next_at <= ? ORDER BY seq LIMIT ?",
                (now, limit),
            )
            .fetchall()
        )
        return [OutboxItem(r[0], r[1], r[2], loads(r[3]), r[4]) for r in rows]

    def finish_outbox(self, seq: int, ok: bool, retry_at: str | None) -> None:
        self.write(lambda tx: finish_outbox_item(tx, seq, ok, retry_at))

    def tenants(self) -> list[str]:
        rows = self._rconn().execute("SELECT name FROM tenants ORDER BY name").fetchall()
        return [r[0] for r in rows]

    def audit_log(self, tenant: str | None, limit: int) -> list[dict[str, Any]]:
        sql, params = audit_log_sql(tenant, limit)
        return audit_records(self._rconn().execute(sql, params).fetchall())

    def seal_audit(self, limit: int = 5000) -> int:
        return self.write(lambda tx: seal_rows(tx, limit))

    def audit_chain(self, after: int, limit: int) -> list[dict[str, Any]]:
        sql, params = chain_sql(after, limit)
        return chain_records(self._rconn().execute(sql, params).fetchall())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._vindex.closed = True
        self._queue.put(_STOP)
        self._writer.join(timeout=30)
        self._checkpointer.close()
        self._wconn.close()
        os.close(self._wlock)
        with self._readers_lock:
            for c in self._readers:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
            self._readers.clear()


def open(url: str, **options: Any) -> SqliteStore:  # noqa: A001 - the backend entry point
    return SqliteStore(
        url,
        synchronous=options.get("synchronous", "NORMAL"),
        group_commit_max=options.get("group_commit_max", 512),
    )
