"""What every edge agent runs on: one MQTT connection, retained online/offline state with a last
will, the durable alert outbox, a bounded telemetry queue, a health heartbeat and command
dispatch. An agent's ``service.py`` owns an :class:`AgentRuntime` and adds its own sensing loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from edge.alert_details import AlertDetails, build_alert
from edge.bus import Bus, BusError
from edge.config import AgentConfig
from edge.outbox import AlertDelivery, Outbox, OutboxFullError
from edge.protocol import (
    CHANNEL_QOS,
    Alert,
    AlertKind,
    Channel,
    CmdChannel,
    ConfigPush,
    DetailValue,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    Evidence,
    Health,
    Location,
    LoopState,
    Message,
    Position,
    PositionBatch,
    ProtocolError,
    Reply,
    Severity,
    Sighting,
    SightingBatch,
    channel_of,
    cmd_filter,
    decode_cmd_message,
    device_topic,
    encode,
)
from edge.queues import BoundedQueue
from edge.supervision import LoopBody, SupervisedLoop

log = logging.getLogger(__name__)

try:
    SW_VERSION = version("gridward")
except PackageNotFoundError:  # running from a source tree without installing
    SW_VERSION = "0+unknown"

CommandHandler = Callable[[Message], None]
FieldsProvider = Callable[[], Mapping[str, Any]]

# DeviceState fields the runtime itself owns: a provider cannot override them.
_RUNTIME_STATE_FIELDS = frozenset(
    {"v", "id", "ts", "site", "device", "state", "kind", "sw_version", "config_version",
     "dead_loops"})


class AgentRuntime:
    def __init__(
        self,
        config: AgentConfig,
        kind: DeviceKind,
        *,
        health_fields: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.kind = kind
        self.site = config.site
        self.device = config.device
        self._clock = clock
        self._started_at = clock()
        self._health_fields = health_fields
        self.config_version: int | None = None
        self.counters: Counter[str] = Counter()
        self._handlers: dict[CmdChannel, CommandHandler] = {}
        self._state_providers: list[FieldsProvider] = []
        self._health_providers: list[FieldsProvider] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.loops: dict[str, SupervisedLoop] = {}
        self.alerts_dropped = 0
        self._dropped_lock = threading.Lock()  # alerts come from sensing and command threads

        self.state_topic = device_topic(self.site, kind, self.device, Channel.STATE)
        self.bus = Bus(
            config.mqtt,
            client_id=self.device,  # the broker binds device client ids to usernames
            will=lambda: (self.state_topic, self._state_payload(DeviceStatus.OFFLINE)),
            on_connected=self._on_connected,
        )
        self.outbox = Outbox(
            config.data_dir / f"{self.device}-outbox.sqlite", max_items=config.outbox_max_items
        )
        self.delivery = AlertDelivery(
            self.bus,
            self.outbox,
            site=self.site,
            kind=kind,
            device=self.device,
            resend_after_s=config.resend_after_s,
        )
        self.telemetry: BoundedQueue[tuple[str, bytes, int]] = BoundedQueue(
            config.telemetry_queue_max
        )
        self.on_command(CmdChannel.CONFIG, self._apply_config)

    # -- public API for agents ---------------------------------------------------------------

    def on_command(self, channel: CmdChannel, handler: CommandHandler) -> None:
        """Register the handler for one hub -> device channel (replaces the default)."""
        self._handlers[channel] = handler

    def add_state_provider(self, provider: FieldsProvider) -> None:
        """Add fields to every DeviceState this runtime publishes (and to its last will), e.g.
        the watchlist version in force and the device's bundle key. The runtime's own fields
        win over a provider's."""
        self._state_providers.append(provider)

    def add_health_provider(self, provider: FieldsProvider) -> None:
        """Add readings to every heartbeat, like ``health_fields``; ``dropped`` and ``metrics``
        are merged key by key with the agent's."""
        self._health_providers.append(provider)

    def supervise(self, name: str, body: LoopBody, stop_event: threading.Event
                  ) -> SupervisedLoop:
        """Wrap an agent's sensing loop in the shared guard (restart with backoff, crash count,
        give up after a burst); its liveness is reported in health and, once dead, in the
        retained state. The agent starts and stops the returned loop."""
        if name in self.loops:
            raise ValueError(f"loop {name!r} is already supervised")
        loop = SupervisedLoop(f"{self.device}-{name}", body, stop_event=stop_event,
                              config=self.config.supervision, on_dead=self._loop_died)
        self.loops[name] = loop
        return loop

    def start(self) -> None:
        # One subscription for all commands: overlapping filters may get duplicate copies.
        self.bus.subscribe(cmd_filter(self.site, self.device), self._on_command, qos=1)
        self.bus.start()
        self.delivery.start()
        for target, name in ((self._telemetry_loop, "telemetry"), (self._health_loop, "health")):
            thread = threading.Thread(target=target, name=f"{self.device}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Say "stopped" (retained) and shut down; unacked alerts stay in the outbox."""
        self._stop.set()
        self.telemetry.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self.delivery.stop()
        self.bus.stop(final=(self.state_topic, self._state_payload(DeviceStatus.STOPPED)))
        self.outbox.close()

    def raise_alert(
        self,
        details: AlertDetails,
        *,
        severity: Severity,
        title: str = "",
        location: Location | None = None,
        zone: str | None = None,
        entity: str | None = None,
        started_at: datetime | None = None,
        evidence: Evidence | None = None,
    ) -> Alert:
        """Build this device's alert from its kind's typed details and send it durably (see
        :meth:`send_alert` for a full outbox). Every agent raises its alerts this way."""
        alert = build_alert(details, site=self.site, device=self.device, severity=severity,
                            title=title, location=location, zone=zone, entity=entity,
                            started_at=started_at, evidence=evidence)
        self.send_alert(alert)
        return alert

    def alert(
        self,
        kind: AlertKind,
        severity: Severity,
        *,
        title: str = "",
        location: Location | None = None,
        zone: str | None = None,
        entity: str | None = None,
        started_at: datetime | None = None,
        evidence: Evidence | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> Alert:
        """An alert with free-form details, for simulated devices and integrations; agents use
        :meth:`raise_alert` so their details are checked against the kind's model."""
        alert = Alert(site=self.site, device=self.device, kind=kind, severity=severity,
                      title=title, location=location, zone=zone, entity=entity,
                      started_at=started_at, evidence=evidence, details=dict(details or {}))
        self.send_alert(alert)
        return alert

    def send_alert(self, alert: Alert) -> bool:
        """Store the alert durably for delivery. False when the outbox is full: the alert is
        lost, which is counted as ``alerts_dropped``, turns health ``ok`` false and is logged
        at error level (never hidden among frame or scan errors)."""
        try:
            self.delivery.send(alert)
        except OutboxFullError as err:
            with self._dropped_lock:
                self.alerts_dropped += 1
            log.error("alert %s (%s) dropped: %s", alert.id, alert.kind.value, err)  # noqa: TRY400 - the reason is the message, no traceback needed
            return False
        self.counters["alerts"] += 1
        return True

    def send_durable(self, message: Message) -> bool:
        """Store a non-alert durable message (an officer's :class:`DispatchAnswer`) in the same
        outbox as alerts, kept until the hub acks its id. False when the outbox is full (the
        message is lost, counted and logged like a dropped alert)."""
        try:
            self.delivery.send_message(message)
        except OutboxFullError as err:
            with self._dropped_lock:
                self.alerts_dropped += 1
            log.error("message %s dropped: %s", message.id, err)  # noqa: TRY400 - the reason is the message, no traceback needed
            return False
        self.counters["durable_sent"] += 1
        return True

    def send_positions(self, positions: Sequence[Position]) -> None:
        """Queue positions (QoS 0, batched); oldest batches drop first when the queue is full."""
        for start in range(0, len(positions), 500):
            batch = PositionBatch(
                site=self.site, device=self.device, positions=list(positions[start : start + 500])
            )
            self._queue_telemetry(batch)

    def send_sightings(self, sightings: Sequence[Sighting]) -> None:
        """Queue per-receiver sightings for hub fusion (QoS 0, batched, like positions)."""
        for start in range(0, len(sightings), 500):
            batch = SightingBatch(
                site=self.site, device=self.device, sightings=list(sightings[start : start + 500])
            )
            self._queue_telemetry(batch)

    def send_reply(self, reply: Reply) -> None:
        self._queue_telemetry(reply)

    def publish_state(self) -> None:
        try:
            self.bus.publish(
                self.state_topic, self._state_payload(DeviceStatus.ONLINE), qos=1, retain=True
            )
        except BusError as err:
            log.info("state not published: %s", err)

    def health_message(self) -> Health:
        fields: dict[str, Any] = dict(self._health_fields() if self._health_fields else {})
        for provider in self._health_providers:
            extra = dict(provider())
            for merged in ("dropped", "metrics"):
                if merged in extra:
                    extra[merged] = {**fields.get(merged, {}), **extra[merged]}
            fields.update(extra)
        dropped = {**self.telemetry.dropped, **fields.pop("dropped", {})}
        dropped["bad_command"] = self.counters["bad_command"]
        # The runtime's own readings are defaults; whatever the agent reports wins.
        base: dict[str, Any] = {
            "uptime_s": round(self._clock() - self._started_at, 3),
            "queue_depth": len(self.telemetry),
            "outbox_depth": self.outbox.depth(),
            "cpu_temp_c": read_cpu_temp_c(),
        }
        dropped["alerts_dropped"] = self.alerts_dropped
        loops = {name: loop.health() for name, loop in self.loops.items()}
        # Whatever the agent reports, it cannot hide a dead loop or a lost alert.
        runtime_owned = {
            "loops": loops,
            "alerts_dropped": self.alerts_dropped,
            "ok": self.alerts_dropped == 0 and not self.dead_loops(),
        }
        return Health(site=self.site, device=self.device, dropped=dropped,
                      **{**base, **fields, **runtime_owned})

    def dead_loops(self) -> list[str]:
        return sorted(name for name, loop in self.loops.items() if loop.state is LoopState.DEAD)

    # -- internals -----------------------------------------------------------------------

    def _state_payload(self, status: DeviceStatus) -> bytes:
        extra: dict[str, Any] = {}
        for provider in self._state_providers:
            try:
                extra.update(provider())
            except Exception:  # the state (and the last will) must go out without that field
                self.counters["state_provider_error"] += 1
                log.exception("state fields provider failed")
        return encode(
            DeviceState(
                **{k: v for k, v in extra.items() if k not in _RUNTIME_STATE_FIELDS},
                site=self.site,
                device=self.device,
                state=status,
                kind=self.kind,
                sw_version=SW_VERSION,
                config_version=self.config_version,
                dead_loops=self.dead_loops(),
            )
        )

    def _loop_died(self, loop: SupervisedLoop) -> None:
        """A sensing loop was given up on: say so now in the retained state and in health,
        instead of waiting for the next heartbeat."""
        log.error("sensing loop %s is dead; the agent stays online but no longer senses",
                  loop.name)
        self.publish_state()
        self._queue_telemetry(self.health_message())

    def _queue_telemetry(self, message: Message) -> None:
        channel = channel_of(message)
        topic = device_topic(self.site, self.kind, self.device, channel)
        self.telemetry.put_drop_oldest(
            (topic, encode(message), CHANNEL_QOS[channel]), reason=f"{channel}_queue_full"
        )

    def _on_connected(self) -> None:
        self.delivery.on_connected()
        self.publish_state()

    def _on_command(self, topic: str, payload: bytes) -> None:
        try:
            parsed, message = decode_cmd_message(topic, payload)
        except ProtocolError as err:
            self.counters["bad_command"] += 1
            log.warning("ignored bad command (%s): %s", err.reason, err)
            return
        if parsed.channel is CmdChannel.ACK:
            self.delivery.apply_ack(message)
            return
        handler = self._handlers.get(parsed.channel)
        if handler is None:
            self.counters["unhandled_command"] += 1
            log.info("no handler for %s on %s", parsed.channel, self.kind)
            return
        try:
            handler(message)
        except Exception:  # one bad command must not stop the agent
            self.counters["command_error"] += 1
            log.exception("handler for %s failed", parsed.channel)

    def _apply_config(self, message: Message) -> None:
        if isinstance(message, ConfigPush):
            self.config_applied(message)

    def config_applied(self, push: ConfigPush) -> None:
        """Report a pushed config as applied: the retained state carries its version, and the
        hub shows it as ``config_version_applied``."""
        self.config_version = push.config_version
        self.publish_state()
        self.send_reply(Reply(site=self.site, device=self.device, request_id=push.id, ok=True,
                              result={"config_version": push.config_version}))

    def config_rejected(self, push: ConfigPush, error: str) -> None:
        """Report a pushed config as refused (the old one stays in force), with the reason."""
        self.counters["config_rejected"] += 1
        log.warning("config version %d refused: %s", push.config_version, error)
        self.send_reply(Reply(site=self.site, device=self.device, request_id=push.id, ok=False,
                              error=error[:500], result={"config_version": push.config_version}))

    def _telemetry_loop(self) -> None:
        while not self._stop.is_set():
            if not self.bus.connected:
                self._stop.wait(0.2)
                continue
            for topic, payload, qos in self.telemetry.get_batch(200, timeout_s=0.5):
                try:
                    self.bus.publish(topic, payload, qos=qos)
                except BusError:
                    self.telemetry.dropped["telemetry_disconnected"] += 1

    def _health_loop(self) -> None:
        while not self._stop.wait(self.config.health_interval_s):
            try:
                self._queue_telemetry(self.health_message())
            except Exception:  # a bad reading must not end the heartbeat
                self.counters["health_error"] += 1
                log.exception("health message not built")


def read_cpu_temp_c() -> float | None:
    """SoC temperature where the kernel exposes one (Raspberry Pi, Jetson), else None."""
    try:
        with open("/sys/class/thermal/thermal_zone0/temp", encoding="ascii") as fh:  # noqa: PTH123
            return int(fh.read().strip()) / 1000.0
    except (OSError, ValueError):
        return None
