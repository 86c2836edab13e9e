"""MQTT 5 client shared by every agent and the hub (paho-mqtt 2.x).

- Own network-loop thread with full-jitter exponential reconnect backoff, so a hundred agents
  that lose the broker together do not all come back in the same second.
- Persistent session (``clean_start=False`` plus a session expiry), so QoS 1 acks and commands
  queued by the broker while a device was away still arrive.
- Publishing while disconnected raises :class:`NotConnectedError`; nothing is dropped silently.
  Callers that must not lose a message (alerts) keep it in the durable outbox and retry.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.backoff import Backoff
from edge.bus_config import BusConfig, BusError, NotConnectedError, TlsConfig

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]

# Re-exported: they live in paho-free modules so configs and ingest import without paho.
__all__ = ["Backoff", "Bus", "BusConfig", "BusError", "MessageHandler", "NotConnectedError",
           "TlsConfig"]


class Bus:
    """One MQTT connection with its own loop thread.

    ``will`` is the (topic, payload) the broker publishes, retained, if the connection dies;
    a callable is asked again before every connection attempt, so the will's timestamp is fresh.
    Handlers run on the loop thread: keep them short (enqueue and return).
    """

    def __init__(
        self,
        config: BusConfig,
        client_id: str,
        *,
        will: tuple[str, bytes] | Callable[[], tuple[str, bytes]] | None = None,
        on_connected: Callable[[], None] | None = None,
        rng: Callable[[float, float], float] | None = None,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self._subs: dict[str, tuple[int, MessageHandler]] = {}
        self._subs_lock = threading.Lock()
        self._routes: dict[str, tuple[str, MessageHandler] | None] = {}  # see _route
        self._on_connected = on_connected
        self._connected = threading.Event()
        self._ready = threading.Event()  # connected and every subscription acknowledged
        self._pending_subs: set[int] = set()
        self._stopping = threading.Event()
        self._closing = threading.Event()  # stop() began: never reconnect again
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s, rng)
        self.connect_count = 0
        self.last_error: str | None = None

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            transport=config.transport,
            reconnect_on_failure=False,
        )
        if config.username is not None:
            client.username_pw_set(config.username, config.password())
        if config.tls is not None:
            client.tls_set(
                ca_certs=str(config.tls.ca_file),
                certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
                keyfile=str(config.tls.key_file) if config.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            if config.tls.insecure_skip_hostname:
                client.tls_insecure_set(True)
        self._will = will
        client.max_inflight_messages_set(config.max_inflight)
        client.max_queued_messages_set(0)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_subscribe = self._handle_subscribe
        self._client = client

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise BusError("bus already started")
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-{self.client_id}", daemon=True
        )
        self._thread.start()

    def stop(
        self,
        final: tuple[str, bytes] | None = None,
        timeout_s: float = 5.0,
        *,
        end_session: bool = False,
    ) -> None:
        """Publish ``final`` (retained, QoS 1) if connected, then disconnect cleanly.

        A clean disconnect suppresses the will, so ``final`` is how a device says "stopped".
        ``end_session`` asks the broker to drop the persistent session: a hub replica that
        leaves must not keep receiving its share of a shared subscription.
        """
        if final is not None and self.connected:
            try:
                info = self._client.publish(final[0], final[1], qos=1, retain=True)
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError, OSError) as err:
                log.warning("final state not published: %s", err)
        self._closing.set()
        if self.connected:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            if end_session:
                props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
            # The loop thread sends DISCONNECT; wait for it, or the broker sees a dropped
            # connection and publishes the will after our "stopped".
            deadline = time.monotonic() + timeout_s
            while self.connected and time.monotonic() < deadline:
                time.sleep(0.01)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s + 2)
            if self._thread.is_alive():
                log.error("MQTT loop thread of %s did not stop", self.client_id)
            self._thread = None
        # Paho keeps its wake-up socket pair (loopback TCP) and, if the loop ended mid-connect,
        # the broker socket until garbage collection; close both now so nothing leaks.
        self._client._reset_sockets()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until connected *and* every registered subscription is acknowledged."""
        return self._ready.wait(timeout_s)

    # -- pub/sub --------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Register a handler; (re)subscribed on every connect."""
        with self._subs_lock:
            self._subs[topic_filter] = (qos, handler)
            self._routes.clear()
        if self.connected:
            rc, _ = self._client.subscribe(topic_filter, qos=qos)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise BusError(f"subscribe to {topic_filter} failed: {mqtt.error_string(rc)}")

    def publish(
        self, topic: str, payload: bytes, qos: int = 0, *, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        if not self.connected:
            raise NotConnectedError(f"not connected to {self.config.host}:{self.config.port}")
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            raise NotConnectedError(f"connection to {self.config.host} lost while publishing")
        if info.rc == MQTTErrorCode.MQTT_ERR_PAYLOAD_SIZE:
            raise BusError(f"payload of {len(payload)} bytes is too large for MQTT")
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_QUEUE_SIZE):
            raise BusError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        return info

    # -- internals ------------------------------------------------------------------------

    def _run(self) -> None:
        first = True
        while not self._stopping.is_set():
            if self._closing.is_set() and not self.connected:
                self._stopping.wait(0.02)
                continue
            if not self.connected and not self._connect_once(first):
                first = False
                self._stopping.wait(self._backoff.next_delay())
                continue
            first = False
            rc = self._client.loop(timeout=0.2)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not self._stopping.is_set():
                self._connected.clear()
                self._ready.clear()
                self._stopping.wait(self._backoff.next_delay())
        self._connected.clear()
        self._ready.clear()

    def _connect_once(self, first: bool) -> bool:
        if self._will is not None:
            topic, payload = self._will() if callable(self._will) else self._will
            self._client.will_set(topic, payload, qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry_s
        try:
            if first:
                rc = self._client.connect(
                    self.config.host,
                    self.config.port,
                    keepalive=self.config.keepalive_s,
                    clean_start=False,
                    properties=props,
                )
            else:
                rc = self._client.reconnect()
        except (OSError, ssl.SSLError, ValueError) as err:
            self.last_error = str(err)
            log.info("broker %s:%s unreachable: %s", self.config.host, self.config.port, err)
            return False
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.last_error = mqtt.error_string(rc)
            return False
        # Connected at the TCP level; CONNACK arrives through loop() and sets the event.
        return self._await_connack()

    def _await_connack(self) -> bool:
        deadline_loops = 50
        for _ in range(deadline_loops):
            if self._connected.is_set():
                return True
            rc = self._client.loop(timeout=0.1)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._stopping.is_set():
                return self._connected.is_set()
        return self._connected.is_set()

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.last_error = str(reason)
            log.warning("broker refused %s: %s", self.client_id, reason)
            return
        self._backoff.reset()
        self.connect_count += 1
        with self._subs_lock:
            subs = [(f, q) for f, (q, _) in self._subs.items()]
        self._pending_subs.clear()
        for topic_filter, qos in subs:
            _, mid = client.subscribe(topic_filter, qos=qos)
            if mid is not None:
                self._pending_subs.add(mid)
        self._connected.set()
        if not self._pending_subs:
            self._ready.set()
        log.info("%s connected (session present: %s)", self.client_id, flags.session_present)
        if self._on_connected is not None:
            self._on_connected()

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        self._ready.clear()
        if not self._stopping.is_set():
            self.last_error = str(reason)
            log.info("%s disconnected: %s", self.client_id, reason)

    def _handle_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                # Loud: a refused subscription means the ACL and the code disagree.
                log.error("%s: subscription refused by the broker: %s", self.client_id, reason)
        self._pending_subs.discard(mid)
        if not self._pending_subs and self._connected.is_set():
            self._ready.set()

    def _handle_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        with self._subs_lock:
            route = self._routes[topic] if topic in self._routes else self._route(topic)
        if route is not None:
            topic_filter, handler = route
            try:
                handler(topic, bytes(msg.payload))
            except Exception:  # a handler bug must not kill the network loop
                log.exception("handler for %s failed on %s", topic_filter, topic)

    def _route(self, topic: str) -> tuple[str, MessageHandler] | None:
        """First matching subscription, remembered per topic: paho's ``topic_matches_sub``
        costs ~20 us a filter, which capped a hub at a few thousand messages a second and let
        the broker drop messages queued for it (docs/hub.md, "Flooding devices"). Bounded:
        the cache is cleared when full, and on every new subscription."""
        found: tuple[str, MessageHandler] | None = None
        for topic_filter, (_, handler) in self._subs.items():
            if mqtt.topic_matches_sub(_strip_share(topic_filter), topic):
                found = (topic_filter, handler)
                break
        if len(self._routes) >= _ROUTES_MAX:
            self._routes.clear()
        self._routes[topic] = found
        return found


_ROUTES_MAX = 50_000  # distinct topics remembered (one per device and channel)


def _strip_share(topic_filter: str) -> str:
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter
