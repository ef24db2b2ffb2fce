"""MQTT device ingest against the real Mosquitto broker (fixture ``mqtt_broker``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from maeul.ingest.devices import DeviceIngest
from maeul.ingest.mqtt import MqttIngest, parse_mqtt_url, start_mqtt_ingest

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

EID = "urn:ngsi-ld:AirQualityObserved:aq-1"
DEVICE: dict[str, Any] = {
    "deviceId": "aq-1",
    "entityId": EID,
    "entityType": "AirQualityObserved",
    "attributes": {"pm25": {"name": "pm25", "unitCode": "GQ"}, "no2": "no2"},
}
TIMEOUT = 10.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.03)


class Publisher:
    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"maeul-test-pub-{uuid.uuid4().hex[:8]}")
        self.client.connect(host, port)
        self.client.loop_start()

    def send(self, tenant: str, device: str, payload: bytes | dict[str, Any] | list[Any]) -> None:
        raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        info = self.client.publish(f"{self.prefix}/{tenant}/{device}/attrs", raw, qos=1)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def prefix() -> str:
    return f"maeul-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def agent(client: Any, mqtt_broker: tuple[str, int], prefix: str) -> Iterator[MqttIngest]:
    host, port = mqtt_broker
    services = client.services
    settings = services.settings.model_copy(
        update={"mqtt_url": f"mqtt://{host}:{port}", "mqtt_topic_prefix": prefix})
    ag = start_mqtt_ingest(services, settings)
    assert services.ingest.mqtt is ag
    assert ag.wait_ready(TIMEOUT), "the MQTT subscription was not acknowledged"
    yield ag
    ag.stop()


@pytest.fixture
def pub(mqtt_broker: tuple[str, int], prefix: str) -> Iterator[Publisher]:
    p = Publisher(*mqtt_broker, prefix)
    yield p
    p.close()


def provision(client: Any, tenant: str | None = None) -> None:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    r = client.post("/maeul/v1/devices", json=DEVICE, headers=headers)
    assert r.status_code == 201, r.text


def entity(client: Any, tenant: str | None = None) -> dict[str, Any] | None:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    r = client.get(f"/ngsi-ld/v1/entities/{EID}", headers=headers)
    return dict(r.json()) if r.status_code == 200 else None


def stats(client: Any) -> dict[str, int]:
    return dict(client.get("/ingest/v1/stats").json())


def test_measurements_land_with_history(client: Any, agent: MqttIngest, pub: Publisher) -> None:
    provision(client)
    pub.send("default", "aq-1", {"pm25": 12.5, "no2": 40, "ts": "2024-05-01T10:00:00Z"})
    pub.send("default", "aq-1", {"pm25": 13.5, "ts": 1714557660000})

    def landed() -> dict[str, Any] | None:
        ent = entity(client)
        return ent if ent and ent.get("pm25", {}).get("value") == 13.5 else None

    ent = wait_for(landed, "the second measurement")
    assert ent["pm25"]["unitCode"] == "GQ"
    assert ent["pm25"]["observedAt"].startswith("2024-05-01T10:01:00")
    assert ent["no2"]["value"] == 40
    assert ent["no2"]["observedAt"].startswith("2024-05-01T10:00:00")

    hist = client.get(f"/ngsi-ld/v1/temporal/entities/{EID}").json()
    pm25 = sorted(hist["pm25"], key=lambda i: i["observedAt"])
    assert [i["value"] for i in pm25] == [12.5, 13.5]
    assert [i["observedAt"][:19] for i in pm25] == ["2024-05-01T10:00:00", "2024-05-01T10:01:00"]
    assert all(i["unitCode"] == "GQ" for i in pm25)
    s = agent.stats
    assert s["accepted"] == 2 and s["failed"] == 0 and s["connected"] == 1
    # the stats endpoint shares the counters with HTTP ingest
    assert stats(client)["accepted"] == 2


def test_bad_messages_are_counted_and_the_agent_keeps_working(
    client: Any, agent: MqttIngest, pub: Publisher
) -> None:
    provision(client)
    pub.send("default", "ghost", {"pm25": 1})                      # unknown device
    pub.send("default", "aq-1", b"{not json")                      # not JSON
    pub.send("default", "aq-1", [1, 2, 3])                         # a JSON array
    pub.send("default", "aq-1", {"pm25": 1, "pad": "x" * 100_000})  # 100 kB
    pub.send("default", "aq-1", {"pm25": 1, "ts": "not a time"})   # bad ts
    pub.send("bad!tenant", "aq-1", {"pm25": 1})                    # invalid tenant name

    wait_for(lambda: stats(client)["received"] >= 6, "the bad messages to be counted")
    s = stats(client)
    assert s["unknown_device"] == 1
    assert s["malformed"] == 5
    assert s["accepted"] == 0
    assert entity(client) is None

    pub.send("default", "aq-1", {"pm25": 7.0, "ts": "2024-05-01T11:00:00Z"})
    ent = wait_for(lambda: entity(client), "a good message after the bad ones")
    assert ent["pm25"]["value"] == 7.0
    assert stats(client)["accepted"] == 1
    assert agent.stats["failed"] == 0


def test_tenants_are_isolated(client: Any, agent: MqttIngest, pub: Publisher) -> None:
    provision(client)
    provision(client, tenant="t2")
    pub.send("t2", "aq-1", {"pm25": 3.0, "ts": "2024-05-01T12:00:00Z"})
    ent = wait_for(lambda: entity(client, "t2"), "the entity in tenant t2")
    assert ent["pm25"]["value"] == 3.0
    assert entity(client) is None


def test_back_pressure_drops_nothing(client: Any, mqtt_broker: tuple[str, int], prefix: str,
                                     pub: Publisher) -> None:
    provision(client)
    ingest: DeviceIngest = client.services.ingest.ingest
    ag = MqttIngest(ingest, *mqtt_broker, prefix=prefix, queue_size=1)
    ag.start()
    try:
        assert ag.wait_ready(TIMEOUT)
        for n in range(30):
            pub.send("default", "aq-1", {"pm25": n, "ts": f"2024-05-01T13:00:{n:02d}Z"})
        wait_for(lambda: ag.stats["accepted"] == 30, "all 30 messages")
    finally:
        ag.stop()
    hist = client.get(f"/ngsi-ld/v1/temporal/entities/{EID}?lastN=100").json()
    assert sorted(i["value"] for i in hist["pm25"]) == list(range(30))
    assert ag.stats["dropped"] == 0


def test_stop_is_idempotent_and_services_close_stops_the_agent(
    client: Any, agent: MqttIngest
) -> None:
    agent.stop()
    agent.stop()
    assert not agent.connected
    client.services.ingest.stop()  # what Services.close() does; must not fail


def test_parse_mqtt_url() -> None:
    a = parse_mqtt_url("mqtt://user:p%40ss@broker.example:1884")
    assert (a.host, a.port, a.username, a.password, a.tls) == (
        "broker.example", 1884, "user", "p@ss", False)
    b = parse_mqtt_url("mqtts://broker.example")
    assert (b.port, b.tls, b.username) == (8883, True, None)
    assert parse_mqtt_url("mqtt://127.0.0.1").port == 1883
    for bad in ("http://x", "mqtt://", "mqtt://h:notaport"):
        with pytest.raises(ValueError):
            parse_mqtt_url(bad)


def test_a_persistent_session_keeps_what_was_sent_while_the_hub_was_away(
    client: Any, mqtt_broker: tuple[str, int], prefix: str, pub: Publisher
) -> None:
    """With a client id the broker holds messages for the agent while it is stopped (a
    restart, a crash): every one lands once the agent is back, none is lost."""
    provision(client)
    ingest: DeviceIngest = client.services.ingest.ingest
    cid = f"maeul-t-{uuid.uuid4().hex[:14]}"
    first = MqttIngest(ingest, *mqtt_broker, prefix=prefix, client_id=cid)
    first.start()
    try:
        assert first.wait_ready(TIMEOUT)
        pub.send("default", "aq-1", {"pm25": 0, "ts": "2024-05-01T14:00:00Z"})
        wait_for(lambda: first.stats["accepted"] == 1, "the first message")
    finally:
        first.stop()
    for n in range(1, 21):  # nobody is subscribed with this id now
        pub.send("default", "aq-1", {"pm25": n, "ts": f"2024-05-01T14:00:{n:02d}Z"})
    again = MqttIngest(ingest, *mqtt_broker, prefix=prefix, client_id=cid)
    again.start()
    try:
        wait_for(lambda: again.stats["accepted"] == 21, "the 20 messages held by the broker")
    finally:
        again.stop()
    hist = client.get(f"/ngsi-ld/v1/temporal/entities/{EID}?lastN=100").json()
    assert sorted(i["value"] for i in hist["pm25"]) == list(range(21))
    # a clean agent (no client id) gets nothing of what was sent while it was away
    assert MqttIngest(ingest, *mqtt_broker, prefix=prefix).persistent is False


def test_the_default_client_id_is_stable_and_short(client: Any) -> None:
    from maeul.ingest.mqtt import default_client_id

    s = client.services.settings
    assert default_client_id(s) == default_client_id(s)
    assert len(default_client_id(s)) <= 23
    other = s.model_copy(update={"mqtt_topic_prefix": "elsewhere"})
    assert default_client_id(other) != default_client_id(s)
