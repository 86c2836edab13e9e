"""Request and response bodies of the REST API (documented in OpenAPI with examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from edge.protocol import DeviceKind
from edge.validators import SEGMENT_PATTERN
from hub.auth import Role
from hub.clock import as_utc
from hub.storable import check_json

T = TypeVar("T")


# Every timestamp a response carries: aware UTC, serialised with its zone ("...Z"). A browser
# parses an ISO time without a zone as *its own local time*, so a bare "12:00:00" is a
# different instant in Shanghai and in New York (issue 13). Response models only; request
# bodies that take a time use AwareDatetime and refuse a naive one.
UtcDateTime = Annotated[
    datetime,
    AfterValidator(as_utc),
    Field(description="UTC, ISO 8601 with zone (e.g. 2026-12-01T08:30:00Z)"),
]
Id = Annotated[str, Field(pattern=SEGMENT_PATTERN, examples=["cam-north-1"])]


class StorableModel(BaseModel):
    """A request body whose every string (keys and extra members too) is free of NUL and
    whose numbers are finite: what SQLite, PostgreSQL and a JSON response can all carry."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        check_json(data)
        return data


class Body(StorableModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Body):
    username: Annotated[str, Field(min_length=1, max_length=64, examples=["admin"])]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class TokenResponse(BaseModel):
    token: str = Field(description="shown once; send as 'Authorization: Bearer <token>'")
    token_id: str
    expires_at: UtcDateTime | None
    username: str
    role: Role


class MeResponse(BaseModel):
    username: str
    role: Role
    permissions: list[str]
    display_name: str


class TokenCreate(Body):
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["vms-integration"])]
    ttl_days: Annotated[int, Field(ge=1, le=3650)] | None = 365


class TokenInfo(BaseModel):
    id: str
    name: str
    kind: str
    created_at: UtcDateTime
    expires_at: UtcDateTime | None
    last_used_at: UtcDateTime | None
    revoked: bool


class UserCreate(Body):
    username: Id
    password: Annotated[str, Field(min_length=12, max_length=256)]
    role: Role
    display_name: Annotated[str, Field(max_length=200)] = ""


class UserUpdate(Body):
    role: Role | None = None
    active: bool | None = None
    password: Annotated[str, Field(min_length=12, max_length=256)] | None = None
    display_name: Annotated[str, Field(max_length=200)] | None = None


class UserInfo(BaseModel):
    username: str
    display_name: str
    role: Role
    active: bool
    created_at: UtcDateTime


# strict: a JSON true is not the number 1, nor "114.05" a longitude.
Longitude = Annotated[float, Field(ge=-180, le=180, strict=True, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, strict=True, allow_inf_nan=False)]


class LonLat(Body):
    lon: Longitude
    lat: Latitude


class DeviceFields(Body):
    """What provisioning takes, by POST (new id) or PUT (repeatable)."""

    site: Id
    kind: DeviceKind
    name: Annotated[str, Field(max_length=200)] = ""
    location: LonLat | None = Field(default=None, description="where it is mounted (WGS84)")
    with_password: bool = True
    with_certificate: bool = False


class DeviceCreate(DeviceFields):
    id: Id

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "cam-north-1",
                    "site": "demo",
                    "kind": "camera",
                    "name": "North gate camera",
                    "location": {"lon": 114.0571, "lat": 22.5433},
                }
            ]
        },
    )


class DeviceUpdate(Body):
    name: Annotated[str, Field(max_length=200)] | None = None
    location: LonLat | None = None


class DeviceRetire(Body):
    reason: Annotated[str, Field(min_length=3, max_length=500, examples=["stolen"])]


class DeviceEnsure(DeviceFields):
    """``PUT /devices/{id}``: provision the device if missing, else keep (or rotate) it."""

    rotate: bool = Field(
        default=False,
        description="issue new credentials for an existing device (the old password stops "
        "working); without it an existing device keeps its credentials and none are shown",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"site": "demo", "kind": "camera", "name": "North gate camera"}]
        },
    )


class DeviceCredentials(BaseModel):
    device: str
    mqtt_username: str
    mqtt_password: str | None = Field(description="shown once; the hub keeps only a hash")
    cert_pem: str | None = None
    key_pem: str | None = Field(default=None, description="shown once; the hub keeps no copy")
    ca_pem: str | None = None


class DeviceIdentity(DeviceCredentials):
    created: bool = Field(description="the device did not exist: these are its first credentials")
    rotated: bool = Field(description="the device existed and got new credentials")


class DeviceInfo(BaseModel):
    id: str
    site: str
    kind: str
    name: str
    status: str
    location: LonLat | None
    created_at: UtcDateTime
    retired_at: UtcDateTime | None
    online: Literal["online", "offline", "stopped", "unknown"]
    last_seen: UtcDateTime | None
    sw_version: str | None
    config_version_applied: int | None
    config_version_pushed: int | None


class ConfigPushBody(Body):
    config: dict[str, Any] = Field(
        description="the agent's pushable settings (docs/camera.md, docs/lidar.md)",
        examples=[
            {
                "zones": [
                    {
                        "type": "line",
                        "id": "gate",
                        "a": [320, 470],
                        "b": [320, 200],
                        "alert_direction": "left_to_right",
                        "cooldown_s": 30,
                    },
                    {
                        "type": "intrusion",
                        "id": "yard",
                        "polygon": [[0, 300], [640, 300], [640, 480], [0, 480]],
                        "severity": "high",
                    },
                ]
            }
        ],
    )


class ConfigPushInfo(BaseModel):
    device: str
    version: int
    created_by: str
    created_at: UtcDateTime
    config: dict[str, Any]
    applied_version: int | None
    status: Literal["pending", "applied", "rejected"] = Field(
        description="the device's answer to this version (rejected: the old config stays)"
    )
    error: str | None = None
    command_id: str | None = Field(
        default=None, description="the push's command in the outbox (GET /api/v1/commands/{id})"
    )
    command_state: Literal["pending", "sent", "answered", "failed", "superseded"] | None = Field(
        default=None, description="where the push is in the command outbox"
    )


class AckBody(Body):
    note: Annotated[str, Field(max_length=2000)] | None = None


class NoteBody(Body):
    text: Annotated[str, Field(min_length=1, max_length=2000, examples=["patrol sent"])]


class NoteInfo(BaseModel):
    id: int
    author: str
    text: str
    created_at: UtcDateTime


class AlertInfo(BaseModel):
    id: str
    site: str
    device: str
    kind: str
    severity: str
    title: str
    ts: UtcDateTime
    received_at: UtcDateTime
    lon: float | None
    lat: float | None
    zone: str | None
    entity: str | None
    status: str
    acknowledged_by: str | None
    acknowledged_at: UtcDateTime | None
    has_evidence: bool
    details: dict[str, Any]
    incident_id: str | None = Field(default=None, description="the incident it was grouped into")
    incident_number: str | None = None


class AlertDetail(AlertInfo):
    notes: list[NoteInfo]


class PositionInfo(BaseModel):
    site: str
    entity: str
    entity_kind: str
    device: str
    lon: float
    lat: float
    accuracy_m: float | None
    heading_deg: float | None
    speed_mps: float | None
    ts: UtcDateTime


class Count(BaseModel):
    """How many items a list's filters select, over all its pages."""

    total: int


class Paged(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: end")


class AuditRecord(BaseModel):
    seq: int
    ts: UtcDateTime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    hash: str


class AuditFailure(BaseModel):
    kind: Literal["record", "checkpoint", "log"]
    reason: str
    record_seq: int | None = Field(description="the failing record, or the one a checkpoint signs")
    checkpoint_line: int | None = Field(description="the checkpoint's line in the checkpoint file")


class AuditVerify(BaseModel):
    ok: bool
    records: int
    problems: list[str] = Field(description="each failure as one sentence naming its record")
    head_hash: str
    failures: list[AuditFailure]
    not_checked: list[str] = Field(description="what this verification could not prove")
    legacy_records: int = Field(description="unkeyed records from before the audit key existed")
    checkpoints: int
    hmac_checked: bool
    checkpoints_checked: bool


class WarningBody(Body):
    level: Literal["red", "orange", "yellow"] | None = Field(
        description="null ends the manual override"
    )
    reason: Annotated[str, Field(min_length=3, max_length=500, examples=["crowd at festival"])]
    expires_at: AwareDatetime | None = Field(
        default=None, description="default: warnings.override_default_h from now"
    )


class HealthRecord(BaseModel):
    id: str
    ts: UtcDateTime
    payload: dict[str, Any]


class CommandInfo(BaseModel):
    """A hub-to-device command in the outbox (docs/hub.md, "Command outbox")."""

    id: str = Field(description="the message id; the device's Reply cites it")
    site: str
    device: str
    channel: str
    qos: int
    retain: bool
    state: Literal["pending", "sent", "answered", "failed", "superseded"]
    attempts: int
    next_attempt_at: UtcDateTime | None = Field(description="when it is retried (open ones only)")
    created_at: UtcDateTime
    created_by: str
    sent_at: UtcDateTime | None
    answered_at: UtcDateTime | None
    answer_ok: bool | None
    answer_error: str | None
    last_error: str | None = Field(description="why the last attempt or the command failed")
    size_bytes: int
