"""MQTT device ingest: ``<prefix>/<tenant>/<deviceId>/attrs`` -> entity updates.

One paho-mqtt network thread receives messages (QoS 1) and hands them to a bounded queue; one
worker thread applies them through :class:`DeviceIngest` (the same mapping as HTTP ingest).
A full queue blocks the network thread (back-pressure: the broker stops sending to us once
its in-flight window is full) instead of dropping messages.  The agent never crashes on a
message: unknown devices and malformed payloads are counted by ``DeviceIngest.handle``, any
other failure is logged (device, tenant and error class only, never payload values) and
counted as ``failed``.  paho reconnects on its own after a lost connection and the
subscription is renewed on every (re)connect.

A message is acknowledged to the broker (PUBACK) only after the worker has applied it, that is
after its write is durable. With a ``client_id`` the agent keeps a persistent session (clean
session off): the broker holds messages published while the hub is down or restarting, and
redelivers any it had sent but not seen acknowledged, so a ``kill -9`` loses nothing the broker
accepted. Delivery is at least once: a message applied just before a crash, and not yet
acknowledged, is applied again (one more history instance with the same values).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..config import Settings
from .devices import DeviceIngest, IngestError

log = logging.getLogger(__name__)

QOS = 1
QUEUE_SIZE = 1000
_STOP = object()


def valid_tenant(name: str) -> bool:
    """The rule of the NGSILD-Tenant header: 1-64 letters, digits, '-', '_' or '.'."""
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "-_." for c in name)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://[user[:pass]@]host[:port]`` (``mqtts://`` for TLS, default ports 1883/8883)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
        raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, not {url.split(':')[0]!r}")
    tls = scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise ValueError("MQTT URL has no host")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError("MQTT URL has an invalid port") from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return BrokerAddress(parts.hostname, port, user, password, tls)


class MqttIngest:
    """Subscribes to ``<prefix>/+/+/attrs`` and feeds the messages to ``DeviceIngest``."""

    def __init__(
        self,
        ingest: DeviceIngest,
        host: str,
        port: int = 1883,
        *,
        prefix: str = "maeul",
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        client_id: str | None = None,
        queue_size: int = QUEUE_SIZE,
        keepalive: int = 30,
        actor: str = "mqtt",
    ) -> None:
        prefix = prefix.strip("/")
        if not prefix or any(c in prefix for c in "+#"):
            raise ValueError("the MQTT topic prefix must be non-empty, without '+' or '#'")
        self.ingest = ingest
        self.host = host
        self.port = port
        self.prefix = prefix
        self.topic = f"{prefix}/+/+/attrs"
        self.actor = actor
        self.keepalive = keepalive
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._failed = 0
        self._dropped = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._closing = threading.Event()
        self._started = False
        self._stopped = False
        self._worker = threading.Thread(target=self._work, name="maeul-mqtt-ingest", daemon=True)
        self.persistent = client_id is not None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"maeul-ingest-{uuid.uuid4().hex[:12]}",
            clean_session=not self.persistent,
            manual_ack=True,  # PUBACK after the write (the worker acks)
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and the network loop; connecting (and reconnecting) is async."""
        if self._started:
            return
        self._started = True
        self._worker.start()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        log.info("mqtt ingest: subscribing to %s on %s:%d", self.topic, self.host, self.port)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until the subscription is acknowledged by the broker."""
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Apply and acknowledge every message already queued, then disconnect.

        Messages arriving meanwhile are left unacknowledged: with a persistent session the
        broker delivers them again after the next start."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._closing.set()
        self._queue.put(_STOP)  # after every queued message: the worker drains first
        self._worker.join(timeout)
        if self._worker.is_alive():
            log.warning("mqtt ingest: worker still busy after %.0f s at shutdown", timeout)
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001 - shutting down anyway
            pass
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def stats(self) -> dict[str, int]:
        """The shared ingest counters plus this agent's own (failed, dropped, queued)."""
        out = self.ingest.stats.as_dict()
        with self._lock:
            out["failed"] = self._failed
            out["dropped"] = self._dropped
        out["queued"] = self._queue.qsize()
        out["connected"] = int(self.connected)
        return out

    # --- paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt ingest: connection refused by %s:%d: %s", self.host, self.port,
                        reason)
            return
        self._connected.set()
        client.subscribe(self.topic, qos=QOS)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if not self._closing.is_set():
            log.warning("mqtt ingest: disconnected from %s:%d (%s); reconnecting", self.host,
                        self.port, reason)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("mqtt ingest: subscription to %s refused: %s", self.topic, reasons)
            return
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._closing.is_set():
            return  # not acknowledged: redelivered to the next session
        item = (msg.topic, bytes(msg.payload), msg.mid, msg.qos)
        while True:
            try:
                # blocks the network thread while the worker is behind (back-pressure)
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._worker.is_alive():
                    with self._lock:
                        self._dropped += 1
                    log.error("mqtt ingest: worker is gone; message on %s dropped", msg.topic)
                    return

    # --- worker ------------------------------------------------------------------------------

    def _route(self, topic: str) -> tuple[str, str] | None:
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[2] != "attrs" or not parts[1]:
            return None
        return parts[0], parts[1]

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                topic, payload, mid, qos = item
                self._apply(topic, payload)
                self._ack(mid, qos)
            finally:
                self._queue.task_done()

    def _ack(self, mid: int, qos: int) -> None:
        # applied (or counted as bad, which a redelivery would not change): the broker may
        # forget it. Acks go in arrival order, as MQTT asks, since one worker applies in order.
        try:
            self.client.ack(mid, qos)
        except Exception:  # noqa: BLE001 - disconnected: the broker redelivers it, at least once
            log.warning("mqtt ingest: could not acknowledge a message; it will come again")

    def _apply(self, topic: str, payload: bytes) -> None:
        route = self._route(topic)
        if route is None or not valid_tenant(route[0]):
            stats = self.ingest.stats
            stats.bump("received")
            stats.bump("malformed")
            log.warning("ingest malformed: topic has an invalid tenant or device")
            return
        tenant, device_id = route
        try:
            self.ingest.handle(tenant, device_id, payload, actor=self.actor)
        except IngestError:
            pass  # counted and logged by handle()
        except Exception as exc:  # noqa: BLE001 - the agent must keep running
            with self._lock:
                self._failed += 1
            log.error("mqtt ingest failed: device=%s tenant=%s error=%s", device_id, tenant,
                      type(exc).__name__)


def default_client_id(settings: Settings) -> str:
    """A client id stable across restarts of this hub (host, store and topic prefix), so the
    broker keeps its session; 22 characters, within MQTT 3.1.1's portable limit of 23."""
    key = "\n".join([socket.gethostname(), settings.store_url, settings.mqtt_topic_prefix])
    return "maeul-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def start_mqtt_ingest(services: Any, settings: Settings) -> MqttIngest:
    """Start an MQTT agent for ``settings.mqtt_url`` and attach it as ``services.ingest.mqtt``.

    ``Services.close()`` stops it (through the holder's ``stop()``).
    """
    from .http import DeviceIngestHolder

    if not settings.mqtt_url:
        raise ValueError("mqtt_url is not set")
    addr = parse_mqtt_url(settings.mqtt_url)
    if services.ingest is None:
        services.ingest = DeviceIngestHolder(DeviceIngest(services.hub))
    holder = services.ingest
    if holder.mqtt is not None:
        holder.mqtt.stop()
        holder.mqtt = None
    agent = MqttIngest(
        holder.ingest,
        addr.host,
        addr.port,
        prefix=settings.mqtt_topic_prefix,
        username=addr.username,
        password=addr.password,
        tls=addr.tls,
        client_id=settings.mqtt_client_id or default_client_id(settings),
    )
    holder.mqtt = agent
    agent.start()
    return agent


__all__ = ["MqttIngest", "BrokerAddress", "default_client_id", "parse_mqtt_url",
           "start_mqtt_ingest", "valid_tenant"]
