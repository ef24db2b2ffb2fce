"""Subscriptions over HTTP: CRUD, validation, and delivery to a real local HTTP receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
S = f"{B}/subscriptions"


class Receiver:
    """A notification endpoint on 127.0.0.1 that records POSTs; can fail the first N."""

    def __init__(self, port: int = 0, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_left = fail_first
        self.failed = 0
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                if rec.fail_left > 0:
                    rec.fail_left -= 1
                    rec.failed += 1
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                rec.received.append(json.loads(body))
                rec.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.srv.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/notify"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until at least n notifications arrived (bounded)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= n, f"got {len(self.received)} of {n} notifications"
        return self.received

    def quiet(self, n: int, settle: float = 0.6) -> None:
        """After settle seconds, still exactly n notifications."""
        time.sleep(settle)
        assert len(self.received) == n, self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def sub(url: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Car"}],
        "notification": {"endpoint": {"uri": url, "accept": "application/json"}},
    }
    body.update(extra)
    return body


def subscribe(client: Any, body: dict[str, Any]) -> str:
    r = client.post(S, json=body)
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    assert loc.startswith(f"{S}/")
    return loc.rsplit("/", 1)[1]


def car(n: int = 1, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Car:{n}", "type": "Car"}
    for k, v in attrs.items():
        body[k] = v if isinstance(v, dict) else {"type": "Property", "value": v}
    return body


def make(client: Any, body: dict[str, Any]) -> None:
    r = client.post(f"{B}/entities", json=body)
    assert r.status_code == 201, r.text


def patch(client: Any, n: int, **attrs: Any) -> None:
    r = client.patch(f"{B}/entities/urn:ngsi-ld:Car:{n}/attrs",
                     json={k: {"type": "Property", "value": v} for k, v in attrs.items()})
    assert r.status_code == 204, r.text


def poll(fn: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# -- CRUD --------------------------------------------------------------------------------------


def test_crud(client: Any) -> None:
    sid = subscribe(client, sub("http://127.0.0.1:9/x", id="urn:ngsi-ld:Subscription:s1",
                                watchedAttributes=["speed"], q="speed>10",
                                subscriptionName="fast cars"))
    assert sid == "urn:ngsi-ld:Subscription:s1"
    r = client.get(f"{S}/{sid}")
    assert r.status_code == 200
    s = r.json()
    assert s["id"] == sid and s["type"] == "Subscription"
    assert s["entities"] == [{"type": "Car"}]  # compacted again
    assert s["watchedAttributes"] == ["speed"]
    assert s["q"] == "speed>10" and s["subscriptionName"] == "fast cars"
    # isActive defaults to true and is shown only when set (as the ETSI suite expects)
    assert "isActive" not in s and s["status"] == "active"
    assert s["notification"]["endpoint"]["uri"] == "http://127.0.0.1:9/x"
    assert s["notification"]["format"] == "normalized"
    # duplicate id
    assert client.post(S, json=sub("http://127.0.0.1:9/x", id=sid)).status_code == 409
    # list
    subscribe(client, sub("http://127.0.0.1:9/y"))
    r = client.get(S, params={"options": "count"})
    assert len(r.json()) == 2 and r.headers["NGSILD-Results-Count"] == "2"
    assert len(client.get(S, params={"limit": 1}).json()) == 1
    # patch
    r = client.patch(f"{S}/{sid}", json={"q": "speed>20", "isActive": False,
                                         "notification": {"format": "keyValues"}})
    assert r.status_code == 204, r.text
    s = client.get(f"{S}/{sid}").json()
    assert s["q"] == "speed>20" and s["isActive"] is False and s["status"] == "paused"
    assert s["notification"]["format"] == "keyValues"
    assert s["notification"]["endpoint"]["uri"] == "http://127.0.0.1:9/x"
    assert client.patch(f"{S}/{sid}", json={"q": "((("}).status_code == 400
    # delete
    assert client.delete(f"{S}/{sid}").status_code == 204
    assert client.get(f"{S}/{sid}").status_code == 404
    assert client.delete(f"{S}/{sid}").status_code == 404
    assert client.patch(f"{S}/{sid}", json={"q": "a>1"}).status_code == 404
    assert client.get(f"{S}/not-a-uri").status_code == 400


def test_get_compacts_with_link_context(client: Any) -> None:
    sid = subscribe(client, sub("http://127.0.0.1:9/x", watchedAttributes=["speed"]))
    # without a user context the default vocabulary compacts back to short names
    s = client.get(f"{S}/{sid}").json()
    assert s["entities"][0]["type"] == "Car"


@pytest.mark.parametrize("mutate", [
    lambda b: b.pop("notification"),
    lambda b: b["notification"]["endpoint"].update(uri="ftp://example.org/x"),
    lambda b: b["notification"]["endpoint"].update(uri="not a url"),
    lambda b: b["notification"].pop("endpoint"),
    lambda b: b.update(timeInterval=10, watchedAttributes=["speed"]),
    lambda b: b.update(expiresAt="2000-01-01T00:00:00Z"),
    lambda b: b.update(expiresAt="soon"),
    lambda b: b.update(q="speed>>1"),
    lambda b: b.update(type="Subscriptions"),
    lambda b: b.update(id="not a uri"),
    lambda b: b.update(entities=[]),
    lambda b: b.update(entities=[{"id": "urn:x:y"}]),
    lambda b: b.update(watchedAttributes=[]),
    lambda b: b.update(notificationTrigger=["whenever"]),
    lambda b: b.update(throttling=-1),
    lambda b: b.update(isActive="yes"),
    lambda b: b.update(geoQ={"georel": "near", "geometry": "Point", "coordinates": [1, 1]}),
    lambda b: b["notification"].update(format="xml"),
    lambda b: b.update(unknownMember=1),
    lambda b: b.pop("entities"),
], ids=range(20))
def test_invalid_subscription_400(client: Any, mutate: Callable[[dict[str, Any]], Any]) -> None:
    body = sub("http://127.0.0.1:9/x")
    mutate(body)
    r = client.post(S, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert client.get(S).json() == []


# -- delivery ----------------------------------------------------------------------------------


def test_notified_on_create(client: Any, receiver: Receiver) -> None:
    sid = subscribe(client, sub(receiver.url))
    make(client, car(1, speed=30))
    make(client, {"id": "urn:ngsi-ld:Bike:1", "type": "Bike"})
    n = receiver.wait(1)[0]
    assert n["type"] == "Notification" and n["subscriptionId"] == sid
    assert n["id"].startswith("urn:") and n["notifiedAt"].endswith("Z")
    assert n["data"] == [{"id": "urn:ngsi-ld:Car:1", "type": "Car",
                          "speed": {"type": "Property", "value": 30}}]
    h = receiver.headers[0]
    assert h["content-type"].startswith("application/json")
    assert "json-ld#context" in h["link"]
    receiver.quiet(1, 0.3)
    poll(lambda: client.get(f"{S}/{sid}").json()["notification"].get("timesSent") == 1)
    note = client.get(f"{S}/{sid}").json()["notification"]
    assert note["lastNotification"] and note["lastSuccess"]
    assert note["status"] == "ok"


def test_ld_json_endpoint_gets_context(client: Any, receiver: Receiver) -> None:
    body = sub(receiver.url)
    body["notification"]["endpoint"]["accept"] = "application/ld+json"
    subscribe(client, body)
    make(client, car(1, speed=1))
    n = receiver.wait(1)[0]
    assert "@context" in n
    assert receiver.headers[0]["content-type"].startswith("application/ld+json")


def test_watched_attributes(client: Any, receiver: Receiver) -> None:
    make(client, car(1, speed=1, color="red"))
    subscribe(client, sub(receiver.url, watchedAttributes=["speed"]))
    patch(client, 1, color="blue")
    patch(client, 1, speed=2)
    got = receiver.wait(1)
    receiver.quiet(1)
    assert got[0]["data"][0]["speed"]["value"] == 2


def test_q_filter(client: Any, receiver: Receiver) -> None:
    subscribe(client, sub(receiver.url, q="speed>50"))
    make(client, car(1, speed=10))
    make(client, car(2, speed=60))
    patch(client, 1, speed=20)
    patch(client, 1, speed=70)
    got = receiver.wait(2)
    receiver.quiet(2)
    assert [(n["data"][0]["id"], n["data"][0]["speed"]["value"]) for n in got] == [
        ("urn:ngsi-ld:Car:2", 60), ("urn:ngsi-ld:Car:1", 70)]


def test_geoq_filter(client: Any, receiver: Receiver) -> None:
    subscribe(client, sub(receiver.url, geoQ={
        "georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [127.0, 37.5]}))
    loc = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [127.5, 37.5]}}
    make(client, car(1, location=loc))
    near = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [127.001, 37.5]}}
    make(client, car(2, location=near))
    got = receiver.wait(1)
    receiver.quiet(1)
    assert got[0]["data"][0]["id"] == "urn:ngsi-ld:Car:2"


def test_attributes_and_key_values(client: Any, receiver: Receiver) -> None:
    body = sub(receiver.url)
    body["notification"].update(attributes=["speed"], format="keyValues")
    subscribe(client, body)
    make(client, car(1, speed=5, color="red"))
    got = receiver.wait(1)
    assert got[0]["data"] == [{"id": "urn:ngsi-ld:Car:1", "type": "Car", "speed": 5}]


def test_id_pattern_selection(client: Any, receiver: Receiver) -> None:
    subscribe(client, sub(receiver.url, entities=[{"type": "Car", "idPattern": ".*:Car:1.*"}]))
    make(client, car(2))
    make(client, car(12))
    got = receiver.wait(1)
    receiver.quiet(1)
    assert got[0]["data"][0]["id"] == "urn:ngsi-ld:Car:12"


def test_notification_trigger_entity_deleted(client: Any, receiver: Receiver) -> None:
    subscribe(client, sub(receiver.url, notificationTrigger=["entityDeleted"]))
    make(client, car(1, speed=1))
    patch(client, 1, speed=2)
    assert client.delete(f"{B}/entities/urn:ngsi-ld:Car:1").status_code == 204
    got = receiver.wait(1)
    receiver.quiet(1)
    d = got[0]["data"][0]
    assert d["id"] == "urn:ngsi-ld:Car:1" and "deletedAt" in d


def test_throttling(client: Any, receiver: Receiver) -> None:
    make(client, car(1, speed=1))
    subscribe(client, sub(receiver.url, throttling=30))
    patch(client, 1, speed=2)
    patch(client, 1, speed=3)
    got = receiver.wait(1)
    receiver.quiet(1)
    assert got[0]["data"][0]["speed"]["value"] == 2


def test_is_active_false_pauses(client: Any, receiver: Receiver) -> None:
    make(client, car(1, speed=1))
    sid = subscribe(client, sub(receiver.url, isActive=False))
    patch(client, 1, speed=2)
    receiver.quiet(0, 0.4)
    assert client.patch(f"{S}/{sid}", json={"isActive": True}).status_code == 204
    patch(client, 1, speed=3)
    got = receiver.wait(1)
    assert got[0]["data"][0]["speed"]["value"] == 3


def test_time_interval(client: Any, receiver: Receiver) -> None:
    make(client, car(1, speed=1))
    make(client, {"id": "urn:ngsi-ld:Bike:1", "type": "Bike"})
    subscribe(client, sub(receiver.url, timeInterval=1))
    got = receiver.wait(2, timeout=8)
    for n in got[:2]:
        assert [d["id"] for d in n["data"]] == ["urn:ngsi-ld:Car:1"]
    # a change does not notify on its own: only the period does
    assert len(got) <= 3


def test_tenant_header_forwarded(client: Any, receiver: Receiver) -> None:
    h = {"NGSILD-Tenant": "t2"}
    r = client.post(S, json=sub(receiver.url), headers=h)
    assert r.status_code == 201
    make(client, car(1))  # default tenant: not matched
    r = client.post(f"{B}/entities", json=car(2), headers=h)
    assert r.status_code == 201
    got = receiver.wait(1)
    receiver.quiet(1, 0.3)
    assert got[0]["data"][0]["id"] == "urn:ngsi-ld:Car:2"
    assert receiver.headers[0]["ngsild-tenant"] == "t2"


def test_failing_endpoint_retried(client: Any) -> None:
    rec = Receiver(fail_first=3)
    try:
        sid = subscribe(client, sub(rec.url))
        make(client, car(1, speed=1))
        got = rec.wait(1)
        assert rec.failed == 3
        assert got[0]["data"][0]["id"] == "urn:ngsi-ld:Car:1"

        def stats_done() -> bool:
            n = client.get(f"{S}/{sid}").json()["notification"]
            return n.get("timesSent") == 1 and "lastFailure" in n

        poll(stats_done)
        n = client.get(f"{S}/{sid}").json()["notification"]
        assert n["lastSuccess"] >= n["lastFailure"]
        assert n["status"] == "ok"
    finally:
        rec.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_outbox_survives_restart(store_url: str, tmp_path: Path) -> None:
    from maeul.hub.server import build_app

    settings = make_settings(store_url, tmp_path, notify_max_attempts=100,
                             notify_backoff_s=0.05)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/notify"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(settings)
        with TestClient(app) as c:
            subscribe(c, sub(url))
            make(c, car(1, speed=7))
        # app closed (services.close() ran): the notification is still in the outbox
        rec = Receiver(port=port)
        try:
            app2 = build_app(settings)
            with TestClient(app2):
                got = rec.wait(1)
            assert got[0]["data"][0]["speed"]["value"] == 7
        finally:
            rec.stop()
