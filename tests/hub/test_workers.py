"""`maeul serve --workers 2`: two processes on one port and one SQLite file.

Every request opens its own connection, so the kernel spreads them over both workers; the
answers must be those of one hub: writes seen by every worker, notifications for writes either
worker answered, and q value indexes (built by one worker) kept exact by the other's writes.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest

from hub.test_api_subscriptions import Receiver
from serverproc import start_hub

B = "/ngsi-ld/v1"
JSON = {"Content-Type": "application/json"}


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _cpu(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _one(method: str, url: str, **kw: object) -> httpx.Response:
    """A request on a fresh connection (so either worker may take it)."""
    with httpx.Client(timeout=10) as c:
        return c.request(method, url, **kw)  # type: ignore[arg-type]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_two_workers_answer_as_one_hub(tmp_path: Path) -> None:
    proc, port = start_hub(tmp_path, "--no-auth", "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver()
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2
        before = {w: _cpu(w) for w in workers}
        sub = {"type": "Subscription", "entities": [{"type": "Car"}],
               "watchedAttributes": ["speed"],
               "notification": {"endpoint": {"uri": receiver.url}}}
        assert _one("POST", f"{base}{B}/subscriptions", json=sub).status_code == 201
        rng = random.Random(3)
        speed = {i: rng.randrange(100) for i in range(120)}
        for i, v in speed.items():
            ent = {"id": f"urn:ngsi-ld:Car:{i}", "type": "Car",
                   "speed": {"type": "Property", "value": v}}
            assert _one("POST", f"{base}{B}/entities", json=ent).status_code == 201

        def check() -> None:
            for lo in (10, 40, 70):
                want = sorted(f"urn:ngsi-ld:Car:{i}" for i, v in speed.items()
                              if lo <= v < lo + 5)
                r = _one("GET", f"{base}{B}/entities", params={
                    "type": "Car", "q": f"speed>={lo};speed<{lo + 5}", "limit": 1000})
                assert r.status_code == 200
                assert sorted(e["id"] for e in r.json()) == want

        check()  # asks a worker for the q value index of speed
        time.sleep(1.0)  # it is built in the background
        check()
        # every creation was notified, whichever worker answered it
        receiver.wait(120, timeout=20)
        # writes through both workers keep the index exact, and every change is notified
        for n in range(150):
            i = rng.randrange(120)
            speed[i] = (speed[i] + 1 + rng.randrange(98)) % 100  # a change every time
            r = _one("PATCH", f"{base}{B}/entities/urn:ngsi-ld:Car:{i}/attrs",
                     json={"speed": {"type": "Property", "value": speed[i]}})
            assert r.status_code == 204
            if n % 50 == 49:
                check()
        check()
        ids = {n["data"][0]["id"] for n in receiver.wait(270, timeout=20)}
        assert len(ids) == 120
        # both workers did work
        assert all(_cpu(w) > before[w] for w in workers), "one worker took no requests"
    finally:
        receiver.stop()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    for w in workers:
        assert not Path(f"/proc/{w}").exists() or "zombie" in Path(
            f"/proc/{w}/status").read_text()


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _server_ends(port: int) -> dict[int, int]:
    """Established connections to ``port`` on 127.0.0.1: client port -> server socket inode."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], int(cols[9])
            if state == "01" and int(local.split(":")[1], 16) == port:
                out[int(remote.split(":")[1], 16)] = inode
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_connections_opened_at_once_are_spread_over_the_workers(tmp_path: Path) -> None:
    """A client that opens its keep-alive connections all at once (a dashboard, a load
    generator) must not land on one worker: with one shared listening socket, the worker that
    woke first used to accept all of them and the other idled."""
    import socket

    proc, port = start_hub(tmp_path, "--no-auth", "--workers", "2")
    clients: list[socket.socket] = []
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2
        # the workers are paused while the 16 connections queue up, and one wakes a moment
        # before the other, as when a client connects in a burst while a worker is busy
        for w in workers:
            os.kill(w, signal.SIGSTOP)
        try:
            for _ in range(16):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        finally:
            os.kill(workers[0], signal.SIGCONT)
            time.sleep(0.3)
            os.kill(workers[1], signal.SIGCONT)
        for c in clients:
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in clients:
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
        ends = _server_ends(port)
        owner = {w: _socket_inodes(w) for w in workers}
        taken = {w: 0 for w in workers}
        for c in clients:
            inode = ends[c.getsockname()[1]]
            (w,) = [w for w in workers if inode in owner[w]]
            taken[w] += 1
        # the kernel spreads by a hash of the addresses: all 16 on one worker has a chance
        # of 2 in 65,536
        assert all(n > 0 for n in taken.values()), taken
    finally:
        for c in clients:
            c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_workers_refuse_a_busy_port_and_a_store_they_cannot_open(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    for share in (False, True):
        # a plain holder, and one that shares its port (as another maeul's workers do)
        with socket.socket() as busy:
            if share:
                busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            out = subprocess.run(
                [sys.executable, "-m", "maeul.cli", "serve", "--workers", "2",
                 "--port", str(port), "--store-url", f"sqlite:///{tmp_path}/a.db"],
                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in out.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = subprocess.run(
        [sys.executable, "-m", "maeul.cli", "serve", "--workers", "2", "--port", "0",
         "--store-url", f"sqlite:///{blocker}/x.db"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "cannot open the store" in out.stderr


def test_workers_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    proc, port = start_hub(tmp_path, "--no-auth", "--workers", "2")
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.kill()  # SIGKILL: no chance to stop them itself
    proc.wait(10)
    deadline = time.monotonic() + 15
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [w for w in alive if Path(f"/proc/{w}").exists()
                 and "zombie" not in Path(f"/proc/{w}/status").read_text()]
        time.sleep(0.1)
    assert not alive, "workers kept serving without their parent"
