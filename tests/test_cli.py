"""The command line: keys, import errors, and the demo as a real process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serverproc import free_port


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "maeul.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_keys_create_prints_a_working_key_on_its_last_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/k.db"
    res = run_cli("keys", "create", "--role", "operator", "--tenant", "city",
                  "--store-url", store, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    key = res.stdout.strip().splitlines()[-1]
    assert key.startswith("mk_")
    listed = run_cli("keys", "list", "--store-url", store, cwd=tmp_path)
    assert '"role": "operator"' in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout  # the secret is never shown again
    assert "hash" not in listed.stdout

    from maeul.config import Settings
    from maeul.hub.app import Services

    svc = Services(Settings(store_url=store, context_cache_dir=tmp_path / "c"))
    try:
        caller = svc.keys.verify(key)
        assert caller.role == "operator" and caller.tenant == "city"
        key_id = key.split("_")[1]
    finally:
        svc.close()
    revoked = run_cli("keys", "revoke", key_id, "--store-url", store, cwd=tmp_path)
    assert revoked.returncode == 0
    svc = Services(Settings(store_url=store, context_cache_dir=tmp_path / "c"))
    try:
        from maeul.hub.errors import Unauthorized

        with pytest.raises(Unauthorized):
            svc.keys.verify(key)
    finally:
        svc.close()


def test_keys_create_rejects_bad_input(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/k.db"
    bad_role = run_cli("keys", "create", "--role", "mayor", "--store-url", store, cwd=tmp_path)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    bad_time = run_cli("keys", "create", "--role", "reader", "--expires-at", "tomorrow",
                       "--store-url", store, cwd=tmp_path)
    assert bad_time.returncode == 2 and "expires_at" in bad_time.stderr
    bad_url = run_cli("keys", "list", "--store-url", "mongodb://x", cwd=tmp_path)
    assert bad_url.returncode != 0 and "store_url" in bad_url.stderr


def test_demo_serves_real_data_and_live_updates(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "maeul.cli", "demo", "--port", str(port), "--duration", "60",
         "--store-url", f"sqlite:///{tmp_path}/demo.db", "--data-dir", str(data_dir)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("mk_"):
                break
        text = "".join(lines)
        key = lines[-1].strip()
        assert key.startswith("mk_"), text
        assert f"http://127.0.0.1:{port}/ngsi-ld/v1/entities" in text
        base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
        traffic = "https://smartdatamodels.org/dataModel.Transportation/TrafficFlowObserved"
        speed = "https://smartdatamodels.org/dataModel.Transportation/averageVehicleSpeed"
        deadline = time.monotonic() + 30
        first = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base}/entities/urn:ngsi-ld:TrafficFlowObserved:metr-la-773869",
                              headers={"Authorization": f"Bearer {key}"}, timeout=5)
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if r.status_code == 200:
                obs = r.json()[speed]["observedAt"]
                if first is None:
                    first = obs
                elif obs != first:
                    break  # a live reading arrived through device ingest
            time.sleep(0.5)
        else:
            pytest.fail("no live update seen")
        # anonymous readers see the public types only
        anon = httpx.get(f"{base}/entities", params={"type": traffic, "limit": 3}, timeout=5)
        assert anon.status_code == 200 and len(anon.json()) == 3
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()
