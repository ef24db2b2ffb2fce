"""Interoperability: the PyPI client `ngsildclient` against a real `maeul serve` process."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from serverproc import start_hub, stop_hub

ROOT = Path(__file__).resolve().parents[2]
INTEROP_PY = ROOT / ".venv-interop" / "bin" / "python"


class _Receiver(BaseHTTPRequestHandler):
    received: list[Any] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        _Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_ngsildclient_creates_queries_and_subscribes(tmp_path: Path) -> None:
    if not INTEROP_PY.exists():
        pytest.fail(f"{INTEROP_PY} is missing: run `make test`, which installs ngsildclient there")
    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    notify = f"http://127.0.0.1:{receiver.server_address[1]}/notify"
    proc, port = start_hub(tmp_path, "--no-auth")
    try:
        res = subprocess.run(
            [str(INTEROP_PY), str(Path(__file__).parent / "ngsildclient_script.py"), str(port),
             notify],
            capture_output=True, text=True, timeout=120,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["created"] is True
        assert out["got_no2"] == 22
        assert out["got_rel"] == "urn:ngsi-ld:Device:Sensor1"
        assert out["query_ids"] == [
            "urn:ngsi-ld:AirQualityObserved:Interop:Obs3",
            "urn:ngsi-ld:AirQualityObserved:Interop:Obs4",
            "urn:ngsi-ld:AirQualityObserved:Interop:Obs5",
        ]
        assert out["count"] == 5
        assert out["subscription_id"].startswith("urn:")
        assert out["subscriptions_listed"] == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            d["data"][0].get("NO2", {}).get("value") == 99 for d in _Receiver.received
        ):
            time.sleep(0.1)
        assert any(d["data"][0]["NO2"]["value"] == 99 for d in _Receiver.received)
    finally:
        stop_hub(proc)
        receiver.shutdown()
        receiver.server_close()
