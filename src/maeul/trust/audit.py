"""The audit chain: sealing, verification (of the store or of an exported file) and export.

``verify`` walks records in chain order and reports the first one that does not fit:
- *altered*: its hash is not the hash of its own fields;
- *removed*: its position skips one, or its ``prev`` is not the previous record's hash;
- *reordered*: its position is lower than the one before it.
Removing records from the very end of a chain leaves a shorter valid chain; compare the head
(``maeul audit head``) with one published earlier to detect that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from ..hub.store.auditchain import GENESIS, record_hash
from ..hub.store.base import Store

log = logging.getLogger(__name__)
PAGE = 5000


@dataclass
class VerifyResult:
    ok: bool
    records: int
    head: str
    bad_index: int | None = None  # 1-based position in the walk (line number for a file)
    bad_chain: int | None = None
    bad_seq: int | None = None
    problem: str = ""

    def message(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.records} records, head {self.head}"
        where = f"record {self.bad_index}"
        if self.bad_chain is not None:
            where += f" (chain {self.bad_chain}, seq {self.bad_seq})"
        return f"audit chain broken at {where}: {self.problem}"

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "head": self.head,
                "badRecord": self.bad_index, "badChain": self.bad_chain,
                "badSeq": self.bad_seq, "problem": self.problem or None}


def verify(records: Iterable[dict[str, Any]]) -> VerifyResult:
    """Check a chain, oldest first; stops at the first bad record."""
    prev = GENESIS
    expected = 1
    n = 0
    it = iter(records)
    for n, rec in enumerate(it, start=1):
        try:
            pos = int(rec["chain"])
            seq = int(rec["seq"])
            stored_prev = rec["prev"]
            stored_hash = rec["hash"]
        except (KeyError, TypeError, ValueError):
            return VerifyResult(False, n - 1, prev, n, None, None,
                                "malformed record (missing chain, seq, prev or hash)")
        problem = ""
        if pos < expected:
            problem = f"reordered: chain position {pos} comes after {expected - 1}"
        elif pos > expected:
            if _appears_later(it, expected):
                problem = (f"reordered: chain position {pos} where {expected} was expected; "
                           f"{expected} comes later")
            else:
                problem = (f"removed: chain position {pos} where {expected} was expected "
                           f"({pos - expected} record(s) missing before it)")
        elif stored_prev != prev:
            problem = "removed or reordered: prev does not match the previous record's hash"
        elif record_hash(rec) != stored_hash:
            problem = "altered: the record's fields do not match its hash"
        if problem:
            return VerifyResult(False, n - 1, prev, n, pos, seq, problem)
        prev = stored_hash
        expected += 1
    return VerifyResult(True, n, prev)


def _appears_later(rest: Iterator[dict[str, Any]], pos: int, horizon: int = 100_000) -> bool:
    for i, rec in enumerate(rest):
        if i >= horizon:
            return False
        if isinstance(rec, dict) and rec.get("chain") == pos:
            return True
    return False


def store_records(store: Store) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        page = store.audit_chain(after, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1]["chain"]


def seal_all(store: Store) -> int:
    total = 0
    while True:
        n = store.seal_audit(PAGE)
        total += n
        if n < PAGE:
            return total


def verify_store(store: Store) -> VerifyResult:
    seal_all(store)
    return verify(store_records(store))


def file_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield {"line": lineno}  # malformed: verify reports it
                continue
            yield rec if isinstance(rec, dict) else {"line": lineno}


def verify_file(path: Path) -> VerifyResult:
    return verify(file_records(path))


def export(store: Store, out: TextIO) -> int:
    """Write the sealed chain as JSON Lines; the number of records written."""
    seal_all(store)
    n = 0
    for rec in store_records(store):
        out.write(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS).decode() + "\n")
        n += 1
    return n


class Sealer:
    """Seals new audit records every ``interval_s`` (PostgreSQL writers leave them unsealed)."""

    def __init__(self, store: Store, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                seal_all(self.store)
            except Exception:  # noqa: BLE001 - keep sealing; the next round retries
                log.exception("audit sealing failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            seal_all(self.store)
        except Exception:  # noqa: BLE001 - the store may already be closed
            log.debug("final audit seal skipped", exc_info=True)
