"""Running the ASGI app under uvicorn: one process, or several sharing one listening socket.

With ``workers`` > 1 the parent binds the port and forks the workers before anything else
opens the store or starts a thread; each worker builds its own app on the shared store and
accepts connections from its own listening socket. On Linux every worker has a socket of its
own on the port (``SO_REUSEPORT``), and the kernel spreads new connections over them by a hash
of their addresses: with one shared socket, the worker that wakes first accepts every
connection waiting, so a client opening its keep-alive connections at once (a dashboard, a
load generator) could end up on one worker while the others idle. Elsewhere they share one.
Worker 0 also runs the background work (the notification outbox, expiry, the trust layer's
jobs, MQTT ingest); the others only answer requests. What one worker caches from the store
(subscriptions, keys, registrations, q value indexes) it refreshes as it does for a replica on
PostgreSQL; ``docs/configuration.md`` (``workers``) lists how long each may lag.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import time
from typing import Any

import uvicorn

from .config import Settings
from .hub.server import build_app

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    if settings.workers > 1:
        serve_workers(settings)
        return
    app = _app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False)


def _app(settings: Settings, background: bool = True) -> Any:
    """The app of one process; the one running the background work also runs MQTT ingest."""
    app = build_app(settings, background=background)
    if background and settings.mqtt_url:
        from .ingest.mqtt import start_mqtt_ingest

        start_mqtt_ingest(app.state.services, settings)
    return app


def _socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _listen(host: str, port: int, count: int = 1) -> list[socket.socket]:
    """``count`` listening sockets on one port: one per worker where the system spreads
    connections over sockets sharing a port (``SO_REUSEPORT`` on Linux), else one shared.

    The port is first bound without ``SO_REUSEPORT``, so that a port another process
    holds (even another maeul with shared sockets) fails here, as it does with one socket."""
    spread = count > 1 and sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    probe = _socket(host, port, reuse_port=False)
    if not spread:
        probe.listen(2048)
        probe.set_inheritable(True)
        return [probe]
    port = probe.getsockname()[1]  # port 0: the one the system chose
    socks = []
    try:
        probe.close()
        for _ in range(count):
            sock = _socket(host, port, reuse_port=True)
            sock.listen(2048)
            sock.set_inheritable(True)
            socks.append(sock)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _worker(settings: Settings, sock: socket.socket, index: int, ready: int, go: int) -> None:
    """One worker process: its own app and store connections on the shared socket. It says
    when its app is built and waits for the word to serve, so that no worker takes every
    early connection while the others are still starting (a keep-alive client stays on the
    worker that accepted it)."""
    app = _app(settings, background=index == 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    os.write(ready, b"r")
    if os.read(go, 1) != b"g":  # the parent is gone
        return
    uvicorn.Server(config).run(sockets=[sock])


def _end_with_parent(parent: int) -> None:
    """Ask Linux to send this worker SIGTERM when the parent dies (even by SIGKILL), so no
    worker is left serving alone; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)


def _await_ready(ready: int, children: dict[int, int]) -> bool:
    """Wait until every worker has built its app; False when one ended first."""
    left = len(children)
    while left:
        readable, _, _ = select.select([ready], [], [], 0.5)
        if readable:
            got = os.read(ready, left)
            if not got:  # every worker has closed its end: they all ended
                return False
            left -= len(got)
            continue
        pid, _code = os.waitpid(-1, os.WNOHANG)
        if pid:
            children.pop(pid, None)
            return False
    return True


def _prepare_store(settings: Settings) -> None:
    """Create or migrate the store once, before the workers open it together: N processes
    creating one schema at the same moment would race (SQLite's switch to WAL, PostgreSQL's
    CREATE ... IF NOT EXISTS on one new table). A store that cannot be opened ends here."""
    from .hub.store.base import open_store

    try:
        store = open_store(settings.store_url, synchronous=settings.sqlite_synchronous,
                           group_commit_max=settings.group_commit_max, pool_size=1,
                           postgis=settings.pg_postgis)
    except Exception as exc:  # noqa: BLE001 - one line for the operator, then exit 1
        raise SystemExit(f"maeul: cannot open the store {settings.store_url}: {exc}") from None
    store.close()


def serve_workers(settings: Settings) -> None:
    """Fork ``settings.workers`` workers on one port and wait; when one ends, stop all."""
    try:
        socks = _listen(settings.host, settings.port, settings.workers)
    except OSError as exc:
        raise SystemExit(f"maeul: cannot listen on {settings.host}:{settings.port}: {exc}"
                         ) from None
    _prepare_store(settings)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    children: dict[int, int] = {}
    parent = os.getpid()
    for i in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _end_with_parent(parent)
                os.close(ready_r)
                os.close(go_w)
                mine = socks[i % len(socks)]
                for other in socks:
                    if other is not mine:
                        other.close()
                _worker(settings, mine, i, ready_w, go_r)
            except BaseException:  # noqa: BLE001 - reported, then the worker ends
                log.exception("worker %d failed", i)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = i
    for sock in socks:
        sock.close()
    os.close(ready_w)
    os.close(go_r)

    def stop(signum: int, frame: Any) -> None:
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = _await_ready(ready_r, children)
    if started:
        os.write(go_w, b"g" * len(children))
    else:
        log.error("a worker ended while starting; stopping the others")
    os.close(go_w)  # a worker still waiting (one ended early) reads nothing and ends
    os.close(ready_r)
    log.info("serving on %s:%d with %d workers", settings.host, settings.port, len(children))

    status = 0 if started else 1
    first = True
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        children.pop(pid, None)
        status = status or os.waitstatus_to_exitcode(code)
        if first and children:  # one worker ended: the others go too (a supervisor restarts)
            first = False
            log.warning("worker %d ended; stopping the others", pid)
            deadline = time.monotonic() + 10
            stop(signal.SIGTERM, None)
            while children and time.monotonic() < deadline:
                done, code = os.waitpid(-1, os.WNOHANG)
                if done:
                    children.pop(done, None)
                else:
                    time.sleep(0.05)
            for pid in list(children):
                os.kill(pid, signal.SIGKILL)
    if status not in (0, -signal.SIGTERM):
        raise SystemExit(status)
