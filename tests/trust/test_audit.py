"""The hash-chained audit log: sealing on both stores, verification, tampering, the CLI."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from maeul.hub.core import Hub
from maeul.hub.entities import expand_entity
from maeul.hub.ldcontext import ContextResolver
from maeul.hub.store.base import Store, open_store
from maeul.trust import audit
from maeul.trust.events import EVENTS, ProposalApproved, emit


def _entity(n: int) -> dict[str, Any]:
    ctx = ContextResolver(None, allow_fetch=False).resolve(None)
    return expand_entity(
        {"id": f"urn:ngsi-ld:Sensor:{n}", "type": "Sensor",
         "temperature": {"type": "Property", "value": n}}, ctx)


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


def _fill(store: Store, n: int = 5) -> None:
    hub = Hub(store)
    for i in range(n):
        hub.create_entity("default", _entity(i), actor="key:test")


def _sql(store: Store, sql: str, params: tuple[Any, ...] = ()) -> None:
    store.write(lambda tx: tx.x(sql, params))  # type: ignore[attr-defined]


def test_every_hub_write_is_chained_and_verifies(store: Store) -> None:
    _fill(store, 5)
    result = audit.verify_store(store)
    assert result.ok, result.message()
    assert result.records == 5
    recs = list(audit.store_records(store))
    assert [r["chain"] for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0]["prev"] == "0" * 64
    assert all(recs[i]["prev"] == recs[i - 1]["hash"] for i in range(1, 5))
    assert {r["action"] for r in recs} == {"entity.create"}
    # values never reach the audit log, only attribute names
    assert all("temperature" in orjson.dumps(r["detail"]).decode() for r in recs)
    assert all(b"42" not in orjson.dumps(r["detail"]) for r in recs)


def test_sqlite_seals_in_the_writing_transaction(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    try:
        _fill(store, 3)
        assert len(store.audit_chain(0, 100)) == 3  # no sealer needed
    finally:
        store.close()


def test_postgres_writers_leave_records_for_the_sealer(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        _fill(store, 3)
        assert store.audit_chain(0, 100) == []
        assert store.seal_audit() == 3
        assert store.seal_audit() == 0
        assert len(store.audit_chain(0, 100)) == 3
    finally:
        store.close()


def test_concurrent_writers_and_sealers_keep_one_valid_chain(pg_url: str) -> None:
    store = open_store(pg_url, pool_size=8)
    hub = Hub(store)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(25):
                hub.create_entity("default", _entity(w * 1000 + i), actor=f"w{w}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def sealer() -> None:
        for _ in range(20):
            store.seal_audit(7)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=sealer) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        result = audit.verify_store(store)
        assert result.ok, result.message()
        assert result.records == 100
    finally:
        store.close()


def test_altered_record_is_named(store: Store) -> None:
    _fill(store, 6)
    audit.seal_all(store)
    _sql(store, "UPDATE audit SET actor = ? WHERE chain = ?", ("key:someone-else", 4))
    result = audit.verify_store(store)
    assert not result.ok
    assert result.bad_chain == 4
    assert "altered" in result.problem


def test_removed_record_is_named(store: Store) -> None:
    _fill(store, 6)
    audit.seal_all(store)
    _sql(store, "DELETE FROM audit WHERE chain = ?", (3,))
    result = audit.verify_store(store)
    assert not result.ok
    assert result.bad_chain == 4
    assert "removed" in result.problem


def test_reordered_records_are_detected(store: Store) -> None:
    _fill(store, 6)
    audit.seal_all(store)
    # swap the contents (not the positions) of records 2 and 5, rewriting their chain columns
    _sql(store, "UPDATE audit SET chain = -2 WHERE chain = 2")
    _sql(store, "UPDATE audit SET chain = 2 WHERE chain = 5")
    _sql(store, "UPDATE audit SET chain = 5 WHERE chain = -2")
    result = audit.verify_store(store)
    assert not result.ok
    assert result.bad_chain == 2


def test_groups_with_failed_writes_and_two_writers_keep_one_valid_chain(
        tmp_path: Path) -> None:
    """SQLite's writer keeps the chain head of its open group in memory. Writes that audit
    and then fail are rolled back inside a group, and a second store on the same file (a
    further worker) writes between groups: the chain must still verify, with no gap."""
    import asyncio

    url = f"sqlite:///{tmp_path}/a.db"
    one, two = open_store(url), open_store(url)
    hub_one, hub_two = Hub(one), Hub(two)

    def failing(tx: Any, n: int) -> None:
        tx.audit("default", "key:test", "test.doomed", f"urn:x:{n}", {})
        raise RuntimeError("fails after auditing")

    async def burst(store: Any, hub: Hub, base: int) -> None:
        calls = []
        for i in range(base, base + 24):
            if i % 3 == 1:
                calls.append(store.run_write(lambda i=i: store.write(lambda tx: failing(tx, i))))
            else:
                calls.append(store.run_write(
                    lambda i=i, h=hub: h.create_entity("default", _entity(i), actor="key:t")))
        got = await asyncio.gather(*calls, return_exceptions=True)
        assert sum(isinstance(g, RuntimeError) for g in got) == 8

    async def main() -> None:
        for k in range(4):  # the two stores take turns, several calls per group each
            await asyncio.gather(burst(one, hub_one, 100 * k), burst(two, hub_two, 100 * k + 50))

    def threaded(n: int) -> None:  # writes queued from other threads (Store.write)
        if n % 3 == 1:
            with pytest.raises(RuntimeError):
                one.write(lambda tx: failing(tx, n))
        else:
            hub_one.create_entity("default", _entity(1000 + n), actor="key:t")

    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(threaded, range(24)))
        asyncio.run(main())
        result = audit.verify_store(one)
        assert result.ok, result.message()
        recs = list(audit.store_records(one))
        assert len(recs) == 4 * 2 * 16 + 16
        assert [r["chain"] for r in recs] == list(range(1, len(recs) + 1))
        assert not any(r["action"] == "test.doomed" for r in recs)
    finally:
        one.close()
        two.close()


def test_new_records_after_verification_extend_the_chain(store: Store) -> None:
    _fill(store, 2)
    assert audit.verify_store(store).ok
    _fill_more = Hub(store)
    _fill_more.delete_entity("default", "urn:ngsi-ld:Sensor:0", actor="key:test")
    result = audit.verify_store(store)
    assert result.ok and result.records == 3


def test_typed_events_are_documented_and_chained(store: Store) -> None:
    assert all(cls.__doc__ for cls in EVENTS.values())
    assert "proposal.approve" in EVENTS
    store.write(lambda tx: emit(tx, ProposalApproved("default", "key:op", "p1", approvals=1,
                                                     needed=2)))
    audit.seal_all(store)
    (rec,) = store.audit_chain(0, 10)
    assert rec["action"] == "proposal.approve"
    assert rec["detail"] == {"approvals": 1, "needed": 2}


# -- exported files -------------------------------------------------------------------------
def _export(store: Store, path: Path) -> list[str]:
    buf = io.StringIO()
    audit.export(store, buf)
    path.write_text(buf.getvalue())
    return buf.getvalue().splitlines()


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, list[str], Path]:
    db = tmp_path / "hub.db"
    store = open_store(f"sqlite:///{db}")
    try:
        _fill(store, 8)
        path = tmp_path / "audit.jsonl"
        lines = _export(store, path)
    finally:
        store.close()
    return path, lines, db


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "maeul.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_verify_intact_store_and_file(exported: tuple[Path, list[str], Path],
                                          tmp_path: Path) -> None:
    path, lines, db = exported
    assert len(lines) == 8
    out = _cli("audit", "verify", "--store-url", f"sqlite:///{db}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "intact: 8 records" in out.stdout
    out = _cli("audit", "verify", "--log", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("how", ["alter", "remove", "reorder", "garble"])
def test_cli_names_the_first_bad_record_of_a_tampered_file(
    exported: tuple[Path, list[str], Path], tmp_path: Path, how: str
) -> None:
    path, lines, _db = exported
    if how == "alter":
        rec = orjson.loads(lines[4])
        rec["target"] = "urn:ngsi-ld:Sensor:forged"
        lines[4] = orjson.dumps(rec).decode()
        expect = "record 5"
    elif how == "remove":
        del lines[2]
        expect = "record 3"
    elif how == "reorder":
        lines[5], lines[6] = lines[6], lines[5]
        expect = "record 6"
    else:
        lines[1] = lines[1][:-10]
        expect = "record 2"
    path.write_text("\n".join(lines) + "\n")
    out = _cli("audit", "verify", "--log", str(path), cwd=tmp_path)
    assert out.returncode == 1
    assert expect in out.stderr, out.stderr
    assert {"alter": "altered", "remove": "removed", "reorder": "reordered",
            "garble": "malformed"}[how] in out.stderr


def test_cli_verify_names_a_tampered_database_record(
    exported: tuple[Path, list[str], Path], tmp_path: Path
) -> None:
    _path, _lines, db = exported
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit SET detail = '{\"attrs\":[]}' WHERE chain = 7")
    conn.commit()
    conn.close()
    out = _cli("audit", "verify", "--store-url", f"sqlite:///{db}", cwd=tmp_path)
    assert out.returncode == 1
    assert "chain 7" in out.stderr and "altered" in out.stderr


def test_cli_verify_missing_log_file(tmp_path: Path) -> None:
    out = _cli("audit", "verify", "--log", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert out.returncode == 2
    assert "no audit log file" in out.stderr


def test_cli_export_writes_json_lines(exported: tuple[Path, list[str], Path],
                                      tmp_path: Path) -> None:
    _path, _lines, db = exported
    out_file = tmp_path / "out.jsonl"
    out = _cli("audit", "export", "--store-url", f"sqlite:///{db}", "--out", str(out_file),
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert audit.verify_file(out_file).ok


def test_old_sqlite_file_gains_the_chain(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL,"
                 " tenant TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
                 " target TEXT NOT NULL, detail TEXT NOT NULL)")
    conn.execute("INSERT INTO audit(ts, tenant, actor, action, target, detail) VALUES"
                 " ('2026-01-01T00:00:00.000000Z', 'default', 'cli', 'key.create', 'k', '{}')")
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{db}")
    try:
        result = audit.verify_store(store)
        assert result.ok and result.records == 1
    finally:
        store.close()


# -- HTTP -----------------------------------------------------------------------------------
def test_verify_over_http_needs_admin(store_url: str, tmp_path: Path) -> None:
    from support import app_client, make_settings

    with app_client(make_settings(store_url, tmp_path, auth_enabled=True)) as c:
        keys = c.services.keys
        admin = keys.create("admin")
        reader = keys.create("reader")
        r = c.post("/trust/v1/audit/verify", headers={"Authorization": f"Bearer {reader}"})
        assert r.status_code == 403
        r = c.post("/trust/v1/audit/verify")
        assert r.status_code == 401
        r = c.post("/trust/v1/audit/verify", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True and r.json()["records"] >= 2
        r = c.get("/trust/v1/audit?limit=5&allTenants=true",
                  headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200
        assert any(rec["action"] == "key.create" for rec in r.json())
