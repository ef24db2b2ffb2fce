"""`kill -9` during ingest loses no acknowledged write; a restart keeps everything."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from serverproc import start_hub, stop_hub


@pytest.mark.slow
def test_kill_9_keeps_every_acknowledged_write(tmp_path: Path, store_url: str) -> None:
    proc, port = start_hub(tmp_path, "--no-auth", store_url=store_url)
    base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(timeout=5) as c:
            i = 0
            while not stop.is_set():
                eid = f"urn:ngsi-ld:Sensor:w{n}-{i}"
                try:
                    r = c.post(f"{base}/entities", json={
                        "id": eid, "type": "Sensor",
                        "temperature": {"type": "Property", "value": i},
                    })
                except httpx.HTTPError:
                    return  # the server died mid-request: this write was not acknowledged
                if r.status_code == 201:
                    with lock:
                        acked.append(eid)
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(acked) < 300:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 300

    proc, port = start_hub(tmp_path, "--no-auth", store_url=store_url)
    try:
        base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
        with httpx.Client(timeout=10) as c:
            r = c.get(f"{base}/entities", params={"type": "Sensor", "limit": 0,
                                                  "options": "count"})
            assert r.status_code == 200
            assert int(r.headers["NGSILD-Results-Count"]) >= len(acked)
            for eid in acked[:: max(1, len(acked) // 50)] + acked[-20:]:
                assert c.get(f"{base}/entities/{eid}").status_code == 200, eid
            # the history of an acknowledged write survived too
            h = c.get(f"{base}/temporal/entities/{acked[-1]}")
            assert h.status_code == 200 and h.json()["temperature"]
    finally:
        stop_hub(proc)
