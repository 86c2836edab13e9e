"""The gridward wire contract, version 1: every MQTT topic and payload, in one place.

Edge agents and the hub both import this module; ``docs/protocol.md`` and the JSON Schemas are
generated from it (``gridward protocol schema``). No other module spells a topic string.

Topic tree::

    gw/v1/<site>/<kind>/<device>/<channel>     device -> hub  (kind: camera|lidar|wristband|glasses)
    gw/v1/<site>/cmd/<device>/<channel>        hub -> device

Every payload is UTF-8 JSON of a pydantic model with ``v``, ``id`` (UUIDv7), ``ts`` (UTC),
``site`` and ``device``. Decoding never raises anything but :class:`ProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.errors import GridwardError
from edge.validators import (
    MessageId,
    SegmentId,
    UtcDatetime,
    check_segment,
    new_id,
    utcnow,
)

PROTOCOL_VERSION: Literal[1] = 1
TOPIC_PREFIX = "gw/v1"
HUB_SHARE_GROUP = "hub"
CMD = "cmd"
# Integer columns (config and bundle versions) are 32-bit signed in every supported database.
MAX_DB_INT = 2**31 - 1
# Every integer on the wire fits a double exactly (RFC 7493, I-JSON): the dashboard's
# JavaScript and PostgreSQL's JSON number handling read the same value the device sent.
MAX_WIRE_INT = 2**53 - 1


class ProtocolError(GridwardError, ValueError):
    """A topic or payload that does not follow the contract. ``reason`` is a short counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DeviceKind(StrEnum):
    CAMERA = "camera"
    LIDAR = "lidar"
    WRISTBAND = "wristband"
    GLASSES = "glasses"


class Channel(StrEnum):
    """Device -> hub channels."""

    STATE = "state"
    HEALTH = "health"
    ALERT = "alert"
    POS = "pos"
    REPLY = "reply"
    SIGHTINGS = "sightings"
    ANSWER = "answer"


class CmdChannel(StrEnum):
    """Hub -> device channels."""

    ACK = "ack"
    CONFIG = "config"
    WATCHLIST = "watchlist"
    REQUEST = "request"
    NOTIFY = "notify"


# --------------------------------------------------------------------------------------------
# Topics


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    site: str
    kind: DeviceKind
    device: str
    channel: Channel

    def __str__(self) -> str:
        return f"{TOPIC_PREFIX}/{self.site}/{self.kind.value}/{self.device}/{self.channel.value}"


@dataclass(frozen=True, slots=True)
class CmdTopic:
    site: str
    device: str
    channel: CmdChannel

    def __str__(self) -> str:
        return f"{TOPIC_PREFIX}/{self.site}/{CMD}/{self.device}/{self.channel.value}"


def device_topic(site: str, kind: DeviceKind | str, device: str, channel: Channel | str) -> str:
    """Topic a device publishes on. Raises :class:`ProtocolError` for a bad id or name."""
    try:
        check_segment(site, "site")
        check_segment(device, "device")
        return str(DeviceTopic(site, DeviceKind(kind), device, Channel(channel)))
    except ValueError as err:
        raise ProtocolError("bad_topic", str(err)) from err


def cmd_topic(site: str, device: str, channel: CmdChannel | str) -> str:
    """Topic the hub publishes on for one device."""
    try:
        check_segment(site, "site")
        check_segment(device, "device")
        return str(CmdTopic(site, device, CmdChannel(channel)))
    except ValueError as err:
        raise ProtocolError("bad_topic", str(err)) from err


def parse_topic(topic: str) -> DeviceTopic | CmdTopic:
    """Parse any gridward topic; raise :class:`ProtocolError` for anything else."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX:
        raise ProtocolError("bad_topic", f"topic {topic!r} is not gw/v1/<site>/<kind>/<id>/<ch>")
    _, _, site, kind, device, channel = parts
    try:
        check_segment(site, "site")
        check_segment(device, "device")
        if kind == CMD:
            return CmdTopic(site, device, CmdChannel(channel))
        return DeviceTopic(site, DeviceKind(kind), device, Channel(channel))
    except ValueError as err:
        raise ProtocolError("bad_topic", f"topic {topic!r}: {err}") from err


def device_filter(site: str = "+", channel: Channel | str = "+", *, shared: bool = False) -> str:
    """Subscription filter for device -> hub traffic; ``shared`` adds ``$share/hub/``.

    Shared subscriptions let several hub replicas split ingest: the broker hands each message
    to exactly one member of the group.
    """
    if site != "+":
        check_segment(site, "site")
    ch = channel if channel == "+" else Channel(channel).value
    base = f"{TOPIC_PREFIX}/{site}/+/+/{ch}"
    return f"$share/{HUB_SHARE_GROUP}/{base}" if shared else base


def cmd_filter(site: str, device: str) -> str:
    """Everything the hub may send one device."""
    check_segment(site, "site")
    check_segment(device, "device")
    return f"{TOPIC_PREFIX}/{site}/{CMD}/{device}/+"


# Hub-to-hub relay of live events (hub/live_relay.py). Five segments, where every device topic
# has six: no device ACL (``gw/v1/<site>/<kind>/<device>/+``) can ever match one.
HUB_RELAY = "_relay"


def hub_relay_topic(scope: str, replica: str) -> str:
    """Topic one hub replica relays its live events on; ``scope`` is its site or ``_all``."""
    check_segment(scope, "scope")
    check_segment(replica, "replica")
    return f"{TOPIC_PREFIX}/{HUB_RELAY}/{scope}/{replica}"


def hub_relay_filter(scope: str) -> str:
    """What every replica of one deployment subscribes to (not shared: each needs all)."""
    check_segment(scope, "scope")
    return f"{TOPIC_PREFIX}/{HUB_RELAY}/{scope}/+"


def parse_hub_relay_topic(topic: str) -> tuple[str, str]:
    """(scope, replica) of a relay topic; raise :class:`ProtocolError` for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX or parts[2] != HUB_RELAY:
        raise ProtocolError("bad_topic", f"topic {topic!r} is not {TOPIC_PREFIX}/{HUB_RELAY}/..")
    try:
        return check_segment(parts[3], "scope"), check_segment(parts[4], "replica")
    except ValueError as err:
        raise ProtocolError("bad_topic", str(err)) from err


def device_acl(site: str, kind: DeviceKind | str, device: str) -> tuple[str, str]:
    """(write filter, read filter) a device's broker credentials are limited to."""
    check_segment(site, "site")
    check_segment(device, "device")
    write = f"{TOPIC_PREFIX}/{site}/{DeviceKind(kind).value}/{device}/+"
    return write, cmd_filter(site, device)


def hub_acl() -> str:
    return f"{TOPIC_PREFIX}/#"


# --------------------------------------------------------------------------------------------
# Payloads


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)


class Message(_Model):
    """Fields every payload carries."""

    v: Literal[1] = PROTOCOL_VERSION
    id: MessageId = Field(default_factory=new_id, description="UUIDv7: unique and time-ordered")
    ts: UtcDatetime = Field(default_factory=utcnow, description="UTC time the message was made")
    site: SegmentId
    device: SegmentId

    MAX_BYTES: ClassVar[int] = 4096


class DeviceStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # sent by the broker as the last will: the device vanished
    STOPPED = "stopped"  # sent by the device itself on a clean shutdown


class DeviceState(Message):
    """Retained on ``.../state``; the offline variant is the connection's last will."""

    state: DeviceStatus
    kind: DeviceKind
    sw_version: Annotated[str, Field(max_length=64)] = "0"
    config_version: Annotated[int, Field(ge=0, le=MAX_DB_INT)] | None = None
    dead_loops: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=8,
        description="sensing loops given up on: online, but no longer sensing")
    watchlist_version: Annotated[int, Field(ge=0, le=MAX_DB_INT)] | None = Field(
        default=None, description="watchlist bundle version in force on the device (face "
        "matching devices only; 0: none or every entry expired)")
    bundle_key_b64: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")] | None = Field(
        default=None, description="the device's X25519 public key (32 bytes, base64) the hub "
        "encrypts watchlist bundles for; the private key never leaves the device")


class LoopState(StrEnum):
    ALIVE = "alive"
    RESTARTING = "restarting"  # crashed, waiting out its backoff before the next start
    DEAD = "dead"  # crashed too often in a row and given up on: the agent no longer senses
    STOPPED = "stopped"  # ended normally (agent stopping, or a finite source such as a file)


class LoopHealth(_Model):
    """Liveness of one sensing loop of an agent (camera frames, LiDAR scans, BLE adverts)."""

    state: LoopState
    crashes: Annotated[int, Field(ge=0)] = 0
    restarts: Annotated[int, Field(ge=0)] = 0
    last_error: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$",
                                     description="exception class of the latest crash only"
                                     )] | None = None


class Health(Message):
    """Periodic heartbeat. Every counter is cumulative since the agent started.

    ``ok`` is false while a sensing loop is dead or once an alert has been dropped because the
    outbox was full (``alerts_dropped``): either means events are being missed."""

    uptime_s: Annotated[float, Field(ge=0)]
    fps: Annotated[float, Field(ge=0)] | None = None
    inference_ms: Annotated[float, Field(ge=0)] | None = None
    queue_depth: Annotated[int, Field(ge=0)] = 0
    outbox_depth: Annotated[int, Field(ge=0)] = 0
    dropped: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, max_length=32
    )
    cpu_temp_c: float | None = None
    metrics: dict[Annotated[str, Field(max_length=64)], float] = Field(
        default_factory=dict, max_length=64
    )
    ok: bool = Field(default=True, description="false: a loop is dead or alerts were dropped")
    alerts_dropped: Annotated[int, Field(ge=0)] = Field(
        default=0, description="alerts lost because the outbox was full (outbox_max_items)")
    loops: dict[Annotated[str, Field(max_length=64)], LoopHealth] = Field(
        default_factory=dict, max_length=8, description="sensing loops by name"
    )

    MAX_BYTES: ClassVar[int] = 8192


class AlertKind(StrEnum):
    INTRUSION = "intrusion"
    LINE_CROSSING = "line_crossing"
    LOITERING = "loitering"
    FACE_MATCH = "face_match"
    GEOFENCE_EXIT = "geofence_exit"
    GEOFENCE_ENTRY = "geofence_entry"
    SOS = "sos"
    TAMPER = "tamper"
    BATTERY_LOW = "battery_low"
    SIGNAL_LOST = "signal_lost"
    PERIMETER_BREACH = "perimeter_breach"
    CLONED_DEVICE = "cloned_device"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Location(_Model):
    """WGS84. Shifted datums (GCJ-02 etc.) are a display concern, never stored."""

    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)] | None = None


EVIDENCE_MAX_BYTES = 192 * 1024


class Evidence(_Model):
    """A small evidence snapshot carried inside an alert (never raw video)."""

    content_type: Literal["image/jpeg"] = "image/jpeg"
    data_b64: Annotated[str, Field(max_length=(EVIDENCE_MAX_BYTES * 4) // 3 + 4)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    width: Annotated[int, Field(gt=0, le=8192)] | None = None
    height: Annotated[int, Field(gt=0, le=8192)] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=None)

    @classmethod
    def from_jpeg(
        cls, data: bytes, width: int | None = None, height: int | None = None
    ) -> Evidence:
        if len(data) > EVIDENCE_MAX_BYTES:
            raise ProtocolError(
                "evidence_too_large",
                f"snapshot is {len(data)} bytes; the limit is {EVIDENCE_MAX_BYTES}: "
                "lower the JPEG quality or the snapshot size",
            )
        return cls(
            data_b64=base64.b64encode(data).decode("ascii"),
            sha256=hashlib.sha256(data).hexdigest(),
            width=width,
            height=height,
        )

    @model_validator(mode="after")
    def _check_digest(self) -> Evidence:
        try:
            raw = base64.b64decode(self.data_b64, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValueError("evidence data_b64 is not valid base64") from err
        if hashlib.sha256(raw).hexdigest() != self.sha256:
            raise ValueError("evidence sha256 does not match its data")
        return self

    def jpeg(self) -> bytes:
        return base64.b64decode(self.data_b64)


DetailValue = str | int | float | bool


class Alert(Message):
    """Something a person should look at. QoS 1, kept in the device outbox until the hub acks."""

    kind: AlertKind
    severity: Severity
    title: Annotated[str, Field(max_length=200)] = ""
    location: Location | None = None
    zone: SegmentId | None = None
    entity: SegmentId | None = Field(
        default=None, description="track, wearer or watchlist-entry id the alert is about"
    )
    started_at: UtcDatetime | None = None
    evidence: Evidence | None = None
    face_crop: Evidence | None = Field(
        default=None, description="face_match only: the matched face crop (JPEG); the frame "
        "snapshot is `evidence`")
    details: dict[Annotated[str, Field(max_length=64)], DetailValue] = Field(
        default_factory=dict, max_length=32
    )

    MAX_BYTES: ClassVar[int] = 320 * 1024

    @model_validator(mode="after")
    def _crop_only_for_matches(self) -> Alert:
        if self.face_crop is not None and self.kind is not AlertKind.FACE_MATCH:
            raise ValueError("face_crop is only allowed on face_match alerts")
        return self

    @field_validator("details")
    @classmethod
    def _short_details(cls, value: dict[str, DetailValue]) -> dict[str, DetailValue]:
        for key, item in value.items():
            if isinstance(item, str) and len(item) > 512:
                raise ValueError(f"details[{key!r}] is longer than 512 characters")
        return value


class EntityKind(StrEnum):
    WEARER = "wearer"
    OFFICER = "officer"
    TRACK = "track"


class Position(_Model):
    entity: SegmentId
    entity_kind: EntityKind
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)] | None = None
    heading_deg: Annotated[float, Field(ge=0, lt=360)] | None = None
    speed_mps: Annotated[float, Field(ge=0, le=200)] | None = None
    ts: UtcDatetime


MAX_POSITIONS_PER_BATCH = 500


class PositionBatch(Message):
    """Positions are QoS 0 and batched: losing one batch costs a trail point, not an event."""

    positions: list[Position] = Field(min_length=1, max_length=MAX_POSITIONS_PER_BATCH)

    MAX_BYTES: ClassVar[int] = 96 * 1024


class Sighting(_Model):
    """One receiver's smoothed RSSI of one band, with what the hub needs to range it.

    Distance follows the log-distance path-loss model of that receiver's calibration:
    ``rssi = tx_power_1m_dbm - 10 * path_loss_exponent * log10(d / 1 m)``.
    """

    entity: SegmentId = Field(description="wearer id of the band")
    receiver: SegmentId = Field(description="receiver id, unique within the site")
    lon: Annotated[float, Field(ge=-180, le=180)] = Field(description="receiver longitude")
    lat: Annotated[float, Field(ge=-90, le=90)] = Field(description="receiver latitude")
    rssi_dbm: Annotated[float, Field(ge=-150, le=20)] = Field(description="smoothed RSSI")
    rssi_sigma_db: Annotated[float, Field(gt=0, le=30)] | None = Field(
        default=None, description="shadowing sigma to weight this range by (absent: hub default)"
    )
    tx_power_1m_dbm: Annotated[float, Field(ge=-100, le=0)] = Field(
        description="receiver calibration: RSSI at 1 m"
    )
    path_loss_exponent: Annotated[float, Field(ge=1.5, le=5.0)] = Field(
        description="receiver calibration: path-loss exponent"
    )
    ts: UtcDatetime = Field(description="when the receiver last heard the band")


MAX_SIGHTINGS_PER_BATCH = 500


class SightingBatch(Message):
    """Per-receiver sightings a gateway heard (QoS 0, batched): the hub fuses the sightings of
    every gateway of a site into one position when three or more receivers hear a band."""

    sightings: list[Sighting] = Field(min_length=1, max_length=MAX_SIGHTINGS_PER_BATCH)

    # 500 sightings with 64-character ids and full-precision numbers stay under this.
    MAX_BYTES: ClassVar[int] = 224 * 1024


class Reply(Message):
    """A device's answer to a :class:`Request` (or a report such as an applied config)."""

    request_id: MessageId
    ok: bool
    error: Annotated[str, Field(max_length=500)] | None = None
    result: dict[Annotated[str, Field(max_length=64)], DetailValue] = Field(
        default_factory=dict, max_length=32
    )
    evidence: Evidence | None = None

    MAX_BYTES: ClassVar[int] = 320 * 1024


MAX_ACK_IDS = 1000


class HubAck(Message):
    """Hub -> device: these alert ids are committed to the hub store; delete them from the outbox.

    ``device`` is the device the ack is addressed to.
    """

    ids: list[MessageId] = Field(min_length=1, max_length=MAX_ACK_IDS)

    MAX_BYTES: ClassVar[int] = 48 * 1024


class ConfigPush(Message):
    """Retained per-device configuration (zones, thresholds). The device reports the applied
    version in its next :class:`DeviceState`."""

    config_version: Annotated[int, Field(ge=1, le=MAX_DB_INT)]
    config: dict[str, Any]

    MAX_BYTES: ClassVar[int] = 256 * 1024


MAX_BUNDLE_PARTS = 1024
"""The most parts one bundle version may claim on the wire (an edge's own limit is lower)."""


class WatchlistBundleEnvelope(Message):
    """Signed, encrypted bundle of watchlist embeddings (no photos) for the device ``device``.
    The edge refuses an unsigned, tampered, older-than-applied, stale or expired bundle; the
    crypto (X25519 + HKDF + AES-256-GCM, Ed25519 over the header and ciphertext) lives in
    :mod:`edge.faces.bundle`, not here."""

    bundle_version: Annotated[int, Field(ge=1, le=MAX_DB_INT)]
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    key_id: SegmentId = Field(description="the hub signing key's id (edge config pins it)")
    epk_b64: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")] = Field(
        description="ephemeral X25519 public key of this bundle's key agreement")
    nonce_b64: Annotated[str, Field(max_length=64)]
    ciphertext_b64: Annotated[str, Field(max_length=2_000_000)]
    signature_b64: Annotated[str, Field(max_length=256)]
    # A bundle too large for one message travels as ``parts`` envelopes (absent: one envelope,
    # the whole bundle). All three are signed; ``set_sha256`` binds the parts of one sealing.
    part: Annotated[int, Field(ge=0, lt=MAX_BUNDLE_PARTS)] | None = Field(
        default=None, description="index of this part, 0-based (only in a bundle of parts)")
    parts: Annotated[int, Field(ge=2, le=MAX_BUNDLE_PARTS)] | None = Field(
        default=None, description="how many parts this bundle version was sealed as")
    set_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="SHA-256 over the SHA-256s of every part's ciphertext_b64, "
        "in part order: the same in every part of one sealing")

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=None)
    MAX_BYTES: ClassVar[int] = 2_100_000

    @model_validator(mode="after")
    def _check_window(self) -> WatchlistBundleEnvelope:
        if self.expires_at <= self.issued_at:
            raise ValueError("watchlist bundle expires_at must be after issued_at")
        present = (self.part is not None, self.parts is not None, self.set_sha256 is not None)
        if any(present) and not all(present):
            raise ValueError("watchlist bundle part, parts and set_sha256 go together")
        if self.part is not None and self.parts is not None and self.part >= self.parts:
            raise ValueError("watchlist bundle part must be below parts")
        return self


class RequestAction(StrEnum):
    SNAPSHOT = "snapshot"
    PING = "ping"
    RELOAD = "reload"


class Request(Message):
    """Hub -> device request; the device answers on its ``reply`` channel with ``request_id``."""

    action: RequestAction
    args: dict[Annotated[str, Field(max_length=64)], DetailValue] = Field(
        default_factory=dict, max_length=16
    )
    deadline: UtcDatetime | None = None


class ExpectedAction(StrEnum):
    """What the hub asks the officer to do; the HUD shows it from the message catalogue."""

    ATTEND = "attend"  # go to the place and deal with it
    VERIFY = "verify"  # go and check whether it is real (lawful means only)
    ASSIST = "assist"  # back up another officer already there
    OBSERVE = "observe"  # keep an eye out nearby, no need to go


class Notify(Message):
    """Hub -> glasses: an alert or incident meant for this officer's HUD.

    The device answers receipt with a :class:`Reply` citing this ``id`` (the command outbox
    stops retrying), and the officer's answers with :class:`DispatchAnswer`. A dispatch has one
    ``dispatch_id``; a repeated notify (a retry) has the same ``id`` and is shown once.
    """

    alert_id: MessageId | None = Field(
        default=None, description="the alert this is about (None for an incident without one)"
    )
    kind: AlertKind
    severity: Severity
    title: Annotated[str, Field(max_length=200)]
    body: Annotated[str, Field(max_length=1000)] = ""
    location: Location | None = None
    evidence: Evidence | None = None
    dispatch_id: MessageId | None = Field(
        default=None, description="the dispatch the officer answers (None: for information)"
    )
    incident_id: MessageId | None = None
    incident_number: Annotated[str, Field(max_length=32)] | None = None
    action: ExpectedAction = ExpectedAction.ATTEND
    respond_by: UtcDatetime | None = Field(
        default=None, description="the hub widens the circle if nobody acknowledges by then"
    )
    withdraws: MessageId | None = Field(
        default=None,
        description="the id of an earlier Notify the hub takes back (the dispatch was "
        "cancelled, or its incident resolved or closed): the HUD drops it, and drops it on "
        "arrival should this come first; the other fields repeat the dispatch's",
    )

    MAX_BYTES: ClassVar[int] = 320 * 1024


class OfficerAnswer(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ON_MY_WAY = "on_my_way"
    ARRIVED = "arrived"
    VERIFY = "verify"  # on site: verified, it is real
    REJECT = "reject"  # cannot take it (the hub chooses someone else)
    NEED_BACKUP = "need_backup"


class DispatchAnswer(Message):
    """Glasses -> hub: the officer's answer to a dispatch (QoS 1, through the edge outbox, so
    an answer given offline arrives later). ``ts`` is when the officer answered."""

    dispatch_id: MessageId
    notify_id: MessageId = Field(description="the Notify being answered")
    officer: SegmentId = Field(description="the officer wearing the device")
    answer: OfficerAnswer
    note: Annotated[str, Field(max_length=500)] = ""
    location: Location | None = Field(default=None, description="where the officer was")

    MAX_BYTES: ClassVar[int] = 4096


M = TypeVar("M", bound=Message)

CHANNEL_MODELS: dict[Channel, type[Message]] = {
    Channel.STATE: DeviceState,
    Channel.HEALTH: Health,
    Channel.ALERT: Alert,
    Channel.POS: PositionBatch,
    Channel.REPLY: Reply,
    Channel.SIGHTINGS: SightingBatch,
    Channel.ANSWER: DispatchAnswer,
}

CMD_MODELS: dict[CmdChannel, type[Message]] = {
    CmdChannel.ACK: HubAck,
    CmdChannel.CONFIG: ConfigPush,
    CmdChannel.WATCHLIST: WatchlistBundleEnvelope,
    CmdChannel.REQUEST: Request,
    CmdChannel.NOTIFY: Notify,
}

ALL_MODELS: tuple[type[Message], ...] = (*CHANNEL_MODELS.values(), *CMD_MODELS.values())

# QoS per channel: alerts, acks, requests and config are QoS 1; telemetry is QoS 0.
CHANNEL_QOS: dict[Channel | CmdChannel, int] = {
    Channel.STATE: 1,
    Channel.HEALTH: 0,
    Channel.ALERT: 1,
    Channel.POS: 0,
    Channel.REPLY: 1,
    Channel.SIGHTINGS: 0,
    Channel.ANSWER: 1,
    CmdChannel.ACK: 1,
    CmdChannel.CONFIG: 1,
    CmdChannel.WATCHLIST: 1,
    CmdChannel.REQUEST: 1,
    CmdChannel.NOTIFY: 1,
}
RETAINED: frozenset[Channel | CmdChannel] = frozenset(
    {Channel.STATE, CmdChannel.CONFIG, CmdChannel.WATCHLIST}
)
MAX_PAYLOAD_BYTES = max(m.MAX_BYTES for m in ALL_MODELS)


def encode(message: Message) -> bytes:
    """Serialise a payload; refuses one over its type's size limit."""
    data = message.model_dump_json(exclude_none=True).encode("utf-8")
    if len(data) > message.MAX_BYTES:
        raise ProtocolError(
            "too_large",
            f"{type(message).__name__} is {len(data)} bytes; the limit is {message.MAX_BYTES}",
        )
    return data


# A ``\\uD800``-``\\uDFFF`` escape: the only way JSON text can produce a surrogate code point
# (raw UTF-8 cannot encode one). Valid pairs also match; they are confirmed below.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(
        "bad_json_constant", f"{name} is not JSON: send a finite number or leave the field out"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf, which no database accepts as JSON
        raise ProtocolError("bad_json_number", f"number {text[:32]!r} overflows a double")
    return value


# Digits of MAX_WIRE_INT: anything longer is refused before int() spends time on it (and
# before Python's own digit limit turns it into a bare ValueError).
_MAX_WIRE_INT_DIGITS = len(str(MAX_WIRE_INT))


def _bounded_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > _MAX_WIRE_INT_DIGITS or abs(value := int(text)) > MAX_WIRE_INT:
        raise ProtocolError(
            "bad_json_number",
            f"integer {text[:24]!r}{'...' if len(text) > 24 else ''} is beyond +/-2**53-1",
        )
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        dup = next(k for i, k in enumerate(keys) if k in keys[:i])
        # Two parsers that keep different copies of a key read different messages.
        raise ProtocolError("bad_json_duplicate_key", f"key {dup[:64]!r} appears twice")
    return obj


def loads_strict(payload: bytes) -> Any:
    """Parse JSON as RFC 8259 defines it, refusing what Python's ``json`` lets through.

    ``NaN``/``Infinity`` (``bad_json_constant``), numbers that overflow a double and integers
    beyond +/-(2**53-1) (``bad_json_number``), duplicate object keys
    (``bad_json_duplicate_key``) and lone UTF-16 surrogate escapes, which decode to text that
    cannot be encoded as UTF-8 again
    (``bad_json_surrogate``). Anything else that is not UTF-8 JSON (including UTF-16/32,
    which the standard library would guess) is ``bad_json``. Only ever raises
    :class:`ProtocolError`.
    """
    try:
        # Decode first, strictly: json.loads(bytes) would guess UTF-16/32 and pass UTF-8
        # encoded surrogates through ("surrogatepass").
        raw = json.loads(
            payload.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_no_duplicate_keys,
        )
    except ProtocolError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ProtocolError("bad_json", "payload is not UTF-8 JSON") from err
    # bytes.find is far cheaper than a regex scan, and encoders rarely write \\u escapes.
    if b"\\u" in payload and _SURROGATE_ESCAPE.search(payload) is not None:
        try:
            json.dumps(raw, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            raise ProtocolError(
                "bad_json_surrogate", "payload has a lone UTF-16 surrogate escape (\\uD800-\\uDFFF)"
            ) from err
    return raw


def decode_as(model: type[M], payload: bytes) -> M:
    """Parse ``payload`` as ``model`` (strict JSON: :func:`loads_strict`). Only ever raises
    :class:`ProtocolError`."""
    if len(payload) > model.MAX_BYTES:
        raise ProtocolError(
            "too_large", f"{model.__name__} payload is {len(payload)} bytes (> {model.MAX_BYTES})"
        )
    try:
        raw = loads_strict(payload)
    except ProtocolError as err:
        raise ProtocolError(err.reason, f"{model.__name__}: {err}") from err
    if not isinstance(raw, dict):
        raise ProtocolError("bad_json", f"{model.__name__} payload must be a JSON object")
    version = raw.get("v")
    # ``type() is int``: ``True == 1`` in Python, and a bool is not a schema version.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(
            "bad_version", f"{model.__name__} has v={version!r}; this hub speaks v=1"
        )
    try:
        # Strict JSON validation: lax mode would read ``true`` as 1 in a number field. The
        # text is parsed again by pydantic, but only after loads_strict has refused what it
        # must (pydantic keeps the last of duplicate keys and takes huge integers).
        return model.model_validate_json(payload, strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ProtocolError(
            "invalid", f"{model.__name__}.{where}: {first['msg']} ({err.error_count()} errors)"
        ) from err
    except (ValueError, TypeError, RecursionError) as err:
        raise ProtocolError("invalid", f"{model.__name__}: {err}") from err


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: DeviceTopic
    message: Message


def decode_device_message(topic: str, payload: bytes) -> Inbound:
    """Parse device -> hub traffic and check the payload's origin matches its topic.

    A device's broker ACL already limits it to its own topics; this second check catches a
    forged ``device``/``site`` field inside an otherwise allowed publish.
    """
    parsed = parse_topic(topic)
    if not isinstance(parsed, DeviceTopic):
        raise ProtocolError("bad_topic", f"{topic!r} is a hub -> device topic")
    message = decode_as(CHANNEL_MODELS[parsed.channel], payload)
    if message.device != parsed.device or message.site != parsed.site:
        raise ProtocolError(
            "origin_mismatch",
            f"payload says {message.site}/{message.device} but arrived on {topic!r}",
        )
    if isinstance(message, DeviceState) and message.kind != parsed.kind:
        raise ProtocolError("origin_mismatch", f"state kind {message.kind} on {topic!r}")
    return Inbound(parsed, message)


def decode_cmd_message(topic: str, payload: bytes) -> tuple[CmdTopic, Message]:
    parsed = parse_topic(topic)
    if not isinstance(parsed, CmdTopic):
        raise ProtocolError("bad_topic", f"{topic!r} is a device -> hub topic")
    message = decode_as(CMD_MODELS[parsed.channel], payload)
    if message.device != parsed.device or message.site != parsed.site:
        raise ProtocolError("origin_mismatch", f"command for {message.device} on {topic!r}")
    return parsed, message


def channel_of(message: Message) -> Channel | CmdChannel:
    for channel, model in CHANNEL_MODELS.items():
        if type(message) is model:
            return channel
    for cmd, model in CMD_MODELS.items():
        if type(message) is model:
            return cmd
    raise ProtocolError("unknown_model", f"{type(message).__name__} is not a contract model")


def timestamp_skew_s(message: Message, now: datetime | None = None) -> float:
    """Seconds the message's clock is ahead of ``now`` (negative: behind)."""
    return (message.ts - (now or utcnow())).total_seconds()
