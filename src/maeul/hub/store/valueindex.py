"""SQLite's indexes of attribute values, so a selective q filter need not decode every entity.

Without one, ``GET /entities?type=Car&q=speed>50;speed<60`` decodes Car after Car until the
page is full; with one, SQLite reads the candidates' row numbers off a B-tree and only those
are decoded. PostgreSQL does not need this: its prefilter (``presql``) runs on binary jsonb
next to the data.

**Built on demand.** An index covers one (tenant, entity type, attribute). The first selective
q query on an attribute of a type registers it; it is then kept up to date by every write
(in the same transaction as the entity, so it is exactly as durable and consistent) and
filled in the background, 2,000 entities per write group, so writes never stall; queries use
it once it is complete. Attributes nobody filters on cost writes nothing.

**Table ``qvalues``**: one row per indexed (type, attribute) of each entity, keyed by
(``tt``: tenant and type, ``attr``: attribute IRI, both as stable 64-bit hashes; ``v``; ``seq``:
the entity's row). What ``v`` holds follows the prefilter's contract (:mod:`maeul.hub.qprefilter`),
a *necessary* condition that the exact q evaluation always completes:

* the attribute's value when all its instances hold one ``Property`` value that is a JSON number
  (of magnitude under 2**53) or string;
* ``x'00'`` when that one value is true, false or null: no number or string comparison selects
  it (the exact predicate would reject it too);
* ``x''`` otherwise (a Relationship or GeoProperty, a list or object value, several instances
  with different values, a huge number): every comparison on the attribute selects it.

SQLite orders numbers < text < blobs, which the comparisons below rely on to keep numbers,
strings and markers apart. Because a row stands for *every* instance, the conditions of one
conjunction on one attribute are checked together (``speed>50;speed<60`` is one range scan).

**A maeul without this module** writing the same file would leave rows stale: triggers on
``entities`` note every changed row in ``qdirty``; code that keeps the index clears it before
each COMMIT, and whatever is left at startup is mended then.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from ..qprefilter import PreAnd, PreNode, PreOr, PreTerm
from .presql import spans

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS qvalues (
  tt INTEGER NOT NULL, attr INTEGER NOT NULL, v NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (tt, attr, v, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS qvalues_seq ON qvalues(tt, attr, seq);
CREATE TABLE IF NOT EXISTS qindexes (
  tt INTEGER NOT NULL, attr INTEGER NOT NULL, tenant TEXT NOT NULL, type TEXT NOT NULL,
  attr_iri TEXT NOT NULL, built_to INTEGER NOT NULL, ready INTEGER NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (tt, attr)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS qdirty (seq INTEGER PRIMARY KEY);
"""
TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS qdirty_{name} AFTER {event} ON entities"
    f" BEGIN INSERT OR IGNORE INTO qdirty(seq) VALUES ({row}.seq); END"
    for name, event, row in (("ins", "INSERT", "NEW"), ("upd", "UPDATE", "NEW"),
                             ("del", "DELETE", "OLD"))
]
#: run before each COMMIT by code that keeps the indexes: what the triggers noted is done
CLEAR_DIRTY = "DELETE FROM qdirty"
#: entities filled into a new index per write group
BUILD_CHUNK = 2000
#: indexes one file may have; queries past it read in order (each index costs writes)
MAX_INDEXES = 200
_EXACT = 2**53
_ANY = b""  # every comparison selects it
_FLAG = b"\x00"  # true, false, null: no comparison selects it
_TYPES: dict[tuple[str, str], int] = {}
_ATTRS: dict[str, int] = {}

Pair = tuple[int, int]  # (tt, attr)
Rows = dict[Pair, Any]  # -> v
X = Callable[..., Any]  # a connection's or transaction's execute


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big",
                          signed=True)


def type_key(tenant: str, etype: str) -> int:
    k = _TYPES.get((tenant, etype))
    if k is None:
        if len(_TYPES) > 100_000:
            _TYPES.clear()
        k = _TYPES[(tenant, etype)] = _h(f"t\x00{tenant}\x00{etype}")
    return k


def attr_key(attr: str) -> int:
    k = _ATTRS.get(attr)
    if k is None:
        if len(_ATTRS) > 100_000:
            _ATTRS.clear()
        k = _ATTRS[attr] = _h(f"a\x00{attr}")
    return k


def _value(inst: Any) -> Any:
    if not isinstance(inst, dict) or inst.get("type") != "Property" or "value" not in inst:
        return _ANY
    v = inst["value"]
    if isinstance(v, str):
        return v
    if v is None or isinstance(v, bool):
        return _FLAG
    if isinstance(v, int):
        return v if -_EXACT < v < _EXACT else _ANY
    if isinstance(v, float):
        return v if math.isfinite(v) and abs(v) < _EXACT else _ANY
    return _ANY


def _tagged(v: Any) -> tuple[str, Any]:
    # 1 and 1.0 are one value to SQLite's comparisons, "1" is not
    return ("n" if isinstance(v, int | float) else type(v).__name__), v


def attr_value(insts: Any) -> Any:
    """The ``v`` of one attribute's instances."""
    if not isinstance(insts, list) or not insts:
        return _ANY
    if len(insts) == 1:
        return _value(insts[0])
    found = {_tagged(_value(i)) for i in insts}
    return found.pop()[1] if len(found) == 1 else _ANY


class ValueIndexes:
    """The indexes of one SQLite file: which exist, which are complete, and their upkeep.

    ``maintained`` changes on the writer thread only (inside the transaction that registers
    an index); ``ready`` is added to after the COMMIT that completed an index, so a reader
    never uses an index that is not whole."""

    def __init__(self) -> None:
        self.maintained: dict[int, dict[int, str]] = {}  # tt -> attr -> attr IRI
        self.ready: set[Pair] = set()
        self._asked: set[Pair] = set()
        self._full = False
        self._lock = threading.Lock()
        self.write: Callable[[Callable[[Any], Any]], Any] | None = None  # Store.write
        self.closed = False
        self._seen = (-1, -1)  # (indexes, complete ones) in the registry when last read
        self._counts = CandidateCounts()

    @property
    def active(self) -> bool:
        return bool(self.maintained)

    # -- upkeep on the writer ------------------------------------------------------------
    def rows(self, tenant: str, entity: dict[str, Any]) -> Rows:
        """The rows of one entity in the maintained indexes."""
        out: Rows = {}
        if not self.maintained:
            return out
        attrs = entity.get("attrs") or {}
        for t in entity.get("type") or ():
            tk = type_key(tenant, t)
            wanted = self.maintained.get(tk)
            if not wanted:
                continue
            for ak, iri in wanted.items():
                insts = attrs.get(iri)
                if insts is not None:
                    out[(tk, ak)] = attr_value(insts)
        return out

    @staticmethod
    def apply(x: X, seq: int, old: Rows, new: Rows) -> None:
        """Write the difference between an entity's old and new rows."""
        for key, v in old.items():
            if key not in new or _tagged(new[key]) != _tagged(v):
                x("DELETE FROM qvalues WHERE tt = ? AND attr = ? AND v = ? AND seq = ?",
                  (*key, v, seq))
        for key, v in new.items():
            if key not in old or _tagged(old[key]) != _tagged(v):
                x("INSERT OR IGNORE INTO qvalues(tt, attr, v, seq) VALUES (?, ?, ?, ?)",
                  (*key, v, seq))

    def refresh(self, x: X) -> None:
        """Take in the indexes another process (a further worker, ``maeul import``) has
        registered or completed. Called by the writer right after BEGIN IMMEDIATE: holding
        the write lock, it sees every registration committed before, so no write of this
        group can miss the upkeep of an index that exists."""
        n, done = x("SELECT count(*), total(ready) FROM qindexes").fetchone()
        if (n, int(done)) == self._seen:
            return
        for tt, ak, iri, ready in x("SELECT tt, attr, attr_iri, ready FROM qindexes"):
            self.maintained.setdefault(tt, {}).setdefault(ak, iri)
            if ready:
                self.ready.add((tt, ak))  # committed whole by whoever completed it
        self._seen = (n, int(done))

    # -- startup -------------------------------------------------------------------------
    def load(self, conn: Any) -> list[tuple[Any, ...]]:
        """Read the registered indexes, mend rows a maeul without upkeep left stale; returns
        the indexes still to fill (tenant, type, attr IRI)."""
        conn.executescript(SCHEMA)
        pending = []
        for tt, ak, tenant, etype, iri, ready in conn.execute(
            "SELECT tt, attr, tenant, type, attr_iri, ready FROM qindexes"
        ).fetchall():
            self.maintained.setdefault(tt, {})[ak] = iri
            if ready:
                self.ready.add((tt, ak))
            else:
                pending.append((tenant, etype, iri))
        if not self.maintained:
            return pending
        for stmt in TRIGGERS:
            conn.execute(stmt)
        dirty = conn.execute("SELECT count(*) FROM qdirty").fetchone()[0]
        if dirty:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM qvalues WHERE seq IN (SELECT seq FROM qdirty)")
                cur = conn.execute(
                    "SELECT e.seq, e.tenant, e.doc FROM qdirty d JOIN entities e"
                    " ON e.seq = d.seq"
                )
                for seq, tenant, doc in cur.fetchall():
                    self.apply(conn.execute, seq, {}, self.rows(tenant, orjson.loads(doc)))
                conn.execute(CLEAR_DIRTY)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            log.info("q value indexes: mended the rows of %d entities", dirty)
        return pending

    # -- building ------------------------------------------------------------------------
    def ensure(self, tenant: str, etype: str, attr: str) -> bool:
        """True when the index is complete; else have it built (once) and say False."""
        pair = (type_key(tenant, etype), attr_key(attr))
        if pair in self.ready:
            return True
        with self._lock:
            if pair in self._asked or self.write is None or self.closed:
                return False
            if len(self._asked | self.ready) >= MAX_INDEXES:
                if not self._full:
                    self._full = True
                    log.warning("q value indexes: %d exist, no more are made", MAX_INDEXES)
                return False
            self._asked.add(pair)
        threading.Thread(target=self._build, args=(tenant, etype, attr, pair),
                         name="qindex-build", daemon=True).start()
        return False

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._asked <= self.ready:
                    return True
            time.sleep(0.01)
        return False

    def resume(self, pending: list[tuple[Any, ...]]) -> None:
        for tenant, etype, iri in pending:
            self.ensure(tenant, etype, iri)

    def _build(self, tenant: str, etype: str, attr: str, pair: Pair) -> None:
        write = self.write
        assert write is not None
        try:
            now = datetime.now(UTC).isoformat(timespec="seconds")
            write(lambda tx: self._register(tx.x, tenant, etype, attr, pair, now))
            while not self.closed:
                if write(lambda tx: self._fill(tx.x, tenant, etype, attr, pair)):
                    break
            else:
                return
        except Exception:  # noqa: BLE001 - a later query asks again
            if not self.closed:
                log.exception("building the q value index of %s on %s failed", attr, etype)
            with self._lock:
                self._asked.discard(pair)
            return
        self.ready.add(pair)  # after the COMMIT that completed it
        log.info("q value index ready: %s on %s", attr, etype)

    def _register(self, x: X, tenant: str, etype: str, attr: str, pair: Pair,
                  now: str) -> None:
        tt, ak = pair
        x("INSERT OR IGNORE INTO qindexes(tt, attr, tenant, type, attr_iri, built_to, ready,"
          " created_at) VALUES (?, ?, ?, ?, ?, 0, 0, ?)", (tt, ak, tenant, etype, attr, now))
        for stmt in TRIGGERS:
            x(stmt)
        # from here on every write keeps this index (rows are inserted idempotently, so the
        # fill and the upkeep may meet on an entity in either order)
        self.maintained.setdefault(tt, {})[ak] = attr

    def _fill(self, x: X, tenant: str, etype: str, attr: str, pair: Pair) -> bool:
        tt, ak = pair
        row = x("SELECT built_to, ready FROM qindexes WHERE tt = ? AND attr = ?",
                (tt, ak)).fetchone()
        if row is None or row[1]:
            return True
        rows = x(
            "SELECT t.seq, e.doc FROM entity_types t JOIN entities e ON e.seq = t.seq"
            " WHERE t.tenant = ? AND t.type = ? AND t.seq > ? ORDER BY t.seq LIMIT ?",
            (tenant, etype, row[0], BUILD_CHUNK),
        ).fetchall()
        for seq, doc in rows:
            insts = (orjson.loads(doc).get("attrs") or {}).get(attr)
            if insts is not None:
                x("INSERT OR IGNORE INTO qvalues(tt, attr, v, seq) VALUES (?, ?, ?, ?)",
                  (tt, ak, attr_value(insts), seq))
        done = len(rows) < BUILD_CHUNK
        x("UPDATE qindexes SET built_to = ?, ready = ? WHERE tt = ? AND attr = ?",
          (rows[-1][0] if rows else row[0], int(done), tt, ak))
        return done

    # -- reading -------------------------------------------------------------------------
    def plan(self, x: X, tenant: str, types: list[str], node: PreNode, cap: int,
             want: int | None = None) -> Plan | None:
        """A statement for the candidates of ``node`` among the entities of ``types`` (a
        superset of what passes), or None when no complete index narrows it to ``cap`` rows
        or fewer and none can be read in entity order: reading the entities in order is then
        the better plan. A conjunction uses its narrowest part; the exact q checks the rest.

        ``want``: how many candidates the caller reads first. A plan on one attribute of one
        type can also be read in entity order off ``qvalues_seq``, testing each row's value:
        that visits about ``want * total / count`` rows where sorting the candidates visits
        ``count``, so it is chosen when the candidates are dense (for a filter that matches
        one Car in ten, 260 rows to find the first 26 rather than all 1,000)."""
        got = self._plan(x, tenant, types, node, cap)
        if got is None:
            return None
        if want is not None and got.scan is not None:
            if got.count > cap:
                got.ordered = True
            elif got.count:
                limit = got.count * got.count // want + 1
                got.ordered = self._counts.total(x, got.pair, limit) < limit
        return None if got.count > cap and not got.ordered else got

    def _plan(self, x: X, tenant: str, types: list[str], node: PreNode, cap: int
              ) -> Plan | None:
        if isinstance(node, PreTerm):
            return self._term(x, tenant, types, node.attr, _spans_of(node), cap)
        if isinstance(node, PreOr):
            kids = []
            for c in node.children:
                got = self._plan(x, tenant, types, c, cap)
                if got is None:
                    return None
                kids.append(got)
            return Plan(
                " UNION ".join(f"SELECT seq FROM ({k.sql})" for k in kids),
                [p for k in kids for p in k.params], sum(k.count for k in kids),
                unique=True,  # UNION drops repeats
            )
        best: Plan | None = None
        for attr, sp in _merged(node).items():
            got = self._term(x, tenant, types, attr, sp, cap)
            if got is not None and (best is None or got.count < best.count):
                best = got
        for c in node.children:
            if not isinstance(c, PreTerm):
                got = self._plan(x, tenant, types, c, cap)
                if got is not None and (best is None or got.count < best.count):
                    best = got
        return best

    def _term(self, x: X, tenant: str, types: list[str], attr: str, sp: Spans, cap: int
              ) -> Plan | None:
        if not all([self.ensure(tenant, t, attr) for t in types]):
            return None
        tts = [type_key(tenant, t) for t in types]
        ak = attr_key(attr)
        # the value tests, one per branch: the marker that every comparison selects, then
        # one range per span
        tests: list[tuple[str, list[Any]]] = []
        if sp is not None:
            tests.append(("v = x''", []))
            for kind, lo, hi in sp:
                conds, vals = [], []
                if lo is not None:
                    conds.append("v >= ?")
                    vals.append(lo)
                elif kind == "string":
                    conds.append("v >= ''")  # strings only: numbers sort below all text
                if hi is not None:
                    conds.append("v <= ?")
                    vals.append(hi)
                else:
                    # numbers only (text sorts above numbers), or strings only (blobs above)
                    conds.append("v < ''" if kind == "number" else "v < x''")
                tests.append((" AND ".join(conds), vals))
        # `+seq`: the candidates are found by value, on the primary key; a bound on seq would
        # make qvalues_seq look as good to SQLite's planner, and that reads the type's every row
        head = (f"SELECT seq FROM qvalues WHERE tt IN ({','.join('?' * len(tts))})"
                " AND attr = ? AND +seq > ?")
        base = [*tts, ak, AFTER]
        if not tests:
            selects, params = [head], list(base)
        else:
            selects = [f"{head} AND {test}" for test, _ in tests]
            params = [p for _, vals in tests for p in (*base, *vals)]
        # one type and at most one span: the branches select disjoint values of one row per
        # entity, so no seq comes twice (an entity of two types has a row under each)
        plan = Plan(" UNION ALL ".join(selects), params, 0,
                    unique=len(tts) == 1 and (sp is None or len(sp) <= 1))
        if len(tts) == 1:  # the same candidates, read in entity order
            plan.pair = (tts[0], ak)
            where = "" if not tests else " AND (" + " OR ".join(
                f"({test})" for test, _ in tests) + ")"
            plan.scan = ("SELECT seq FROM qvalues INDEXED BY qvalues_seq WHERE tt = ?"
                         f" AND attr = ? AND seq > ?{where}",
                         [tts[0], ak, AFTER, *[p for _, vals in tests for p in vals]])
        plan.count = self._counts.get(x, plan, cap)
        return plan


AFTER = object()  # stands for the seq a plan's rows must follow


class CandidateCounts:
    """Recent candidate counts of plans, for ``COUNT_TTL`` seconds.

    Counting is what a query with a small limit spends most on in SQLite (it reads up to
    ``cap`` index rows, as many as reading the first page in order), and a dashboard asks
    the same question again and again. The count only chooses between two plans that give
    the same answer (the candidates are a superset that the exact q narrows), so one that
    is a little out of date costs time at worst, never a wrong result."""

    def __init__(self, ttl: float = 1.0, size: int = 1024) -> None:
        self.ttl, self.size = ttl, size
        self._seen: dict[Any, tuple[float, int, int]] = {}

    def get(self, x: X, plan: Plan, cap: int) -> int:
        key = (plan.sql, *[0 if p is AFTER else p for p in plan.params], cap)
        now = time.monotonic()
        got = self._seen.get(key)
        if got is not None and got[0] > now:
            return got[1]
        n = plan.counted(x, cap)
        self._keep(key, now + self.ttl, n)
        return n

    def total(self, x: X, pair: Pair, limit: int) -> int:
        """Rows of one index, counting no further than ``limit`` (kept ten times longer:
        the size of a type changes slowly)."""
        now = time.monotonic()
        got = self._seen.get(pair)
        if got is not None and got[0] > now and (got[1] < got[2] or got[1] >= limit):
            return got[1]  # exact, or already known to reach the limit
        n = int(x("SELECT count(*) FROM (SELECT 1 FROM qvalues WHERE tt = ? AND attr = ?"
                  f" LIMIT {int(limit)})", pair).fetchone()[0])
        self._keep(pair, now + 10 * self.ttl, n, limit)
        return n

    def _keep(self, key: Any, until: float, n: int, limit: int = 0) -> None:
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = (until, n, limit)


class Plan:
    """A SELECT of candidate seqs; ``AFTER`` in its parameters is filled at each call.
    ``unique``: no seq comes twice, so reading them in order needs no DISTINCT. ``scan``:
    the same candidates as a statement that reads them in entity order, and ``ordered``
    whether :meth:`first` uses it."""

    def __init__(self, sql: str, params: list[Any], count: int, unique: bool = False) -> None:
        self.sql, self.params, self.count, self.unique = sql, params, count, unique
        self.scan: tuple[str, list[Any]] | None = None
        self.pair: Pair = (0, 0)
        self.ordered = False

    def _params(self, after: int) -> list[Any]:
        return [after if p is AFTER else p for p in self.params]

    def counted(self, x: X, cap: int) -> int:
        """How many rows, counting no further than cap + 1."""
        sql = f"SELECT count(*) FROM ({self.sql} LIMIT {int(cap) + 1})"
        return int(x(sql, self._params(0)).fetchone()[0])

    def first(self, x: X, after: int, n: int | None) -> list[int]:
        """The first ``n`` candidate seqs after ``after`` in order (None: all of them)."""
        if n is not None and self.ordered and self.scan is not None:
            sql, params = self.scan
            return [r[0] for r in x(f"{sql} ORDER BY seq LIMIT {int(n)}",
                                    [after if p is AFTER else p for p in params]).fetchall()]
        if n is not None:
            pick = "seq" if self.unique else "DISTINCT seq"
            # `+seq`: sorted here; ordering by the column would let SQLite read a branch
            # off qvalues_seq in seq order, which visits the type's every row
            sql = f"SELECT {pick} FROM ({self.sql}) ORDER BY +seq LIMIT {int(n)}"
            return [r[0] for r in x(sql, self._params(after)).fetchall()]
        # all of them: one row back (Python's cost per row is several times SQLite's)
        text = x(f"SELECT group_concat(seq) FROM ({self.sql})",
                 self._params(after)).fetchone()[0]
        return sorted(set(map(int, text.split(",")))) if text else []


Spans = list[tuple[str, Any, Any]] | None  # None: the attribute exists; else (kind, lo, hi)


def _spans_of(t: PreTerm) -> Spans:
    if t.op is None:
        return None
    return [(t.kind, lo, hi) for lo, hi in spans(t)]


def _merged(node: PreAnd) -> dict[str, Spans]:
    """The spans per attribute that all of a conjunction's terms allow: one row holds an
    attribute's single value, so that value must lie in every term's spans."""
    out: dict[str, Spans] = {}
    for c in node.children:
        if not isinstance(c, PreTerm):
            continue
        mine = _spans_of(c)
        if c.attr not in out:
            out[c.attr] = mine
        elif mine is not None:
            have = out[c.attr]
            out[c.attr] = mine if have is None else _intersect(have, mine)
    return out


def _intersect(a: list[tuple[str, Any, Any]], b: list[tuple[str, Any, Any]]
               ) -> list[tuple[str, Any, Any]]:
    out = []
    for ka, la, ha in a:
        for kb, lb, hb in b:
            if ka != kb:
                continue
            lo = lb if la is None else la if lb is None else max(la, lb)
            hi = hb if ha is None else ha if hb is None else min(ha, hb)
            if lo is None or hi is None or lo <= hi:
                out.append((ka, lo, hi))
    return out
