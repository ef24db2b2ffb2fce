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


@pytest.mark.slow
@pytest.mark.mqtt
def test_kill_9_during_mqtt_ingest_loses_no_message(
    tmp_path: Path, store_url: str, mqtt_broker: tuple[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Devices keep publishing while the hub is killed and restarted: every message the broker
    accepted ends up in the history (at least once), thanks to the persistent session and
    acknowledging each message only after its write."""
    import uuid

    import orjson
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, mport = mqtt_broker
    prefix = f"maeul-crash-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MAEUL_MQTT_TOPIC_PREFIX", prefix)
    url = f"mqtt://{host}:{mport}"
    eid = "urn:ngsi-ld:AirQualityObserved:crash-1"
    total = 400
    proc, port = start_hub(tmp_path, "--no-auth", "--mqtt-url", url, store_url=store_url)
    base = f"http://127.0.0.1:{port}"
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"crash-pub-{uuid.uuid4().hex[:8]}")
    pub.connect(host, mport)
    pub.loop_start()
    try:
        r = httpx.post(f"{base}/maeul/v1/devices", json={
            "deviceId": "crash-1", "entityId": eid, "entityType": "AirQualityObserved",
            "attributes": {"pm25": "pm25"}}, timeout=10)
        assert r.status_code == 201, r.text
        # a probe until it lands: the hub's subscription is in place (and its session exists)
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/ngsi-ld/v1/entities/{eid}", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the hub never received a message"
            pub.publish(f"{prefix}/default/crash-1/attrs", orjson.dumps({"pm25": -1}), qos=1)
            time.sleep(0.3)
        for n in range(total):
            info = pub.publish(f"{prefix}/default/crash-1/attrs",
                               orjson.dumps({"pm25": n}), qos=1)
            info.wait_for_publish(10)
            if n == 150:
                os.kill(proc.pid, signal.SIGKILL)  # mid-stream, with messages in flight
                proc.wait()
        proc, port = start_hub(tmp_path, "--no-auth", "--mqtt-url", url, store_url=store_url)
        base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < total:
            h = httpx.get(f"{base}/temporal/entities/{eid}", params={"lastN": 1000}, timeout=10)
            if h.status_code == 200:
                seen = {int(i["value"]) for i in h.json().get("pm25", [])} - {-1}
            time.sleep(0.2)
        assert seen == set(range(total)), f"missing: {sorted(set(range(total)) - seen)[:20]}"
    finally:
        pub.disconnect()
        pub.loop_stop()
        stop_hub(proc)
