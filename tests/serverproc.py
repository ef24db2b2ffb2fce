"""Start a real `maeul serve` subprocess on a free loopback port (for end-to-end tests)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_hub(workdir: Path, *extra: str, store_url: str | None = None
              ) -> tuple[subprocess.Popen[bytes], int]:
    """A running hub and its port; its output goes to workdir/hub.log."""
    port = free_port()
    log = (workdir / "hub.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "maeul.cli", "serve", "--port", str(port),
         "--store-url", store_url or f"sqlite:///{workdir}/hub.db", *extra],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError((workdir / "hub.log").read_text())


def stop_hub(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
