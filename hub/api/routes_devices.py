"""Devices: list, detail, health history, provision, retire, config push."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import and_, func, select, update

from edge.bus import BusError
from edge.protocol import CmdChannel, ConfigPush, ProtocolError, cmd_topic, encode
from edge.validators import SEGMENT_PATTERN, utcnow
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import (
    ConfigPushBody,
    ConfigPushInfo,
    DeviceCreate,
    DeviceCredentials,
    DeviceInfo,
    DeviceRetire,
    DeviceUpdate,
    HealthRecord,
    LonLat,
    Paged,
)
from hub.auth import Permission
from hub.provisioning import ProvisioningError
from hub.schema import config_pushes, device_state, devices, health, replies

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
DeviceId = Annotated[str, Path(pattern=SEGMENT_PATTERN)]


def _device_query() -> Any:
    pushed = (
        select(config_pushes.c.device, func.max(config_pushes.c.version).label("pushed"))
        .group_by(config_pushes.c.device)
        .subquery()
    )
    return (
        select(
            devices,
            device_state.c.state,
            device_state.c.received_at,
            device_state.c.sw_version,
            device_state.c.config_version,
            pushed.c.pushed,
        )
        .outerjoin(
            device_state,
            and_(device_state.c.device == devices.c.id, device_state.c.site == devices.c.site),
        )
        .outerjoin(pushed, pushed.c.device == devices.c.id)
    )


def _info(row: Any) -> DeviceInfo:
    located = row.lon is not None and row.lat is not None
    return DeviceInfo(
        location=LonLat(lon=row.lon, lat=row.lat) if located else None,
        id=row.id,
        site=row.site,
        kind=row.kind,
        name=row.name,
        status=row.status,
        created_at=row.created_at,
        retired_at=row.retired_at,
        online=row.state or "unknown",
        last_seen=row.received_at,
        sw_version=row.sw_version,
        config_version_applied=row.config_version,
        config_version_pushed=row.pushed,
    )


@router.get("", response_model=Paged[DeviceInfo], **guarded(Permission.DEVICES_READ))
def list_devices(
    ctx: Ctx,
    page: PageDep,
    site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    status: Annotated[str | None, Query(pattern="^(active|retired)$")] = None,
    q: Annotated[str | None, Query(max_length=64, description="id or name contains")] = None,
) -> Paged[DeviceInfo]:
    stmt = _device_query().order_by(devices.c.id).limit(page.limit)
    if site:
        stmt = stmt.where(devices.c.site == site)
    if kind:
        stmt = stmt.where(devices.c.kind == kind)
    if status:
        stmt = stmt.where(devices.c.status == status)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(devices.c.id.like(like) | devices.c.name.like(like))
    if page.after:
        stmt = stmt.where(devices.c.id > str(page.after[0]))
    with ctx.engine.connect() as conn:
        items = [_info(r) for r in conn.execute(stmt)]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[DeviceInfo](items=items, next_cursor=nxt)


@router.get("/{device_id}", response_model=DeviceInfo, **guarded(Permission.DEVICES_READ))
def get_device(device_id: DeviceId, ctx: Ctx) -> DeviceInfo:
    with ctx.engine.connect() as conn:
        row = conn.execute(_device_query().where(devices.c.id == device_id)).first()
    if row is None:
        raise HTTPException(404, f"no device {device_id!r}")
    return _info(row)


@router.get(
    "/{device_id}/health", response_model=Paged[HealthRecord], **guarded(Permission.DEVICES_READ)
)
def device_health(
    device_id: DeviceId,
    ctx: Ctx,
    page: PageDep,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Paged[HealthRecord]:
    """Heartbeats of one device, newest first."""
    stmt = (
        select(health.c.id, health.c.ts, health.c.payload)
        .where(health.c.device == device_id)
        .order_by(health.c.ts.desc(), health.c.id.desc())
        .limit(page.limit)
    )
    if since:
        stmt = stmt.where(health.c.ts >= since)
    if until:
        stmt = stmt.where(health.c.ts < until)
    if page.after:
        stmt = stmt.where(health.c.id < str(page.after[0]))
    with ctx.engine.connect() as conn:
        items = [HealthRecord.model_validate(r._mapping) for r in conn.execute(stmt)]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[HealthRecord](items=items, next_cursor=nxt)


@router.post(
    "", response_model=DeviceCredentials, status_code=201, **guarded(Permission.DEVICES_WRITE)
)
def provision_device(body: DeviceCreate, me: Me, ctx: Ctx) -> DeviceCredentials:
    """Create a device identity and its broker credentials (shown once)."""
    try:
        creds = ctx.registry.add(
            me.username,
            body.site,
            body.kind,
            body.id,
            body.name,
            with_password=body.with_password,
            with_certificate=body.with_certificate,
            location=(body.location.lon, body.location.lat) if body.location else None,
        )
    except ProvisioningError as err:
        code = 409 if "already exists" in str(err) else 422
        raise HTTPException(code, str(err)) from err
    return DeviceCredentials(
        device=creds.device,
        mqtt_username=creds.mqtt_username,
        mqtt_password=creds.mqtt_password,
        cert_pem=creds.cert_pem,
        key_pem=creds.key_pem,
        ca_pem=creds.ca_pem,
    )


@router.patch("/{device_id}", response_model=DeviceInfo, **guarded(Permission.DEVICES_WRITE))
def update_device(device_id: DeviceId, body: DeviceUpdate, me: Me, ctx: Ctx) -> DeviceInfo:
    """Rename a device or record where it is mounted (shown on the map)."""
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = body.name
    if body.location is not None:
        values.update(lon=body.location.lon, lat=body.location.lat)
    if not values:
        raise HTTPException(422, "nothing to change: send name or location")
    with ctx.audit.change(me.username, "device.update", device_id, values) as conn:
        res = conn.execute(update(devices).where(devices.c.id == device_id).values(**values))
        if res.rowcount != 1:
            raise HTTPException(404, f"no device {device_id!r}")
    return get_device(device_id, ctx)


@router.post("/{device_id}/retire", status_code=204, **guarded(Permission.DEVICES_WRITE))
def retire_device(device_id: DeviceId, body: DeviceRetire, me: Me, ctx: Ctx) -> None:
    """Revoke the device's broker access and stop accepting its messages."""
    try:
        ctx.registry.retire(me.username, device_id, body.reason)
    except ProvisioningError as err:
        raise HTTPException(404, str(err)) from err


@router.post(
    "/{device_id}/config",
    response_model=ConfigPushInfo,
    status_code=201,
    **guarded(Permission.DEVICES_CONFIG),
)
def push_config(device_id: DeviceId, body: ConfigPushBody, me: Me, ctx: Ctx) -> ConfigPushInfo:
    """Store a new config version and publish it retained to the device; the device reports
    the version it applied in its state (``config_version_applied``)."""
    with ctx.engine.connect() as conn:
        dev = conn.execute(
            select(devices).where(devices.c.id == device_id, devices.c.status == "active")
        ).first()
    if dev is None:
        raise HTTPException(404, f"no active device {device_id!r}")
    now = utcnow()
    with ctx.audit.change(me.username, "device.config_push", device_id) as conn:
        version = (
            conn.execute(
                select(func.max(config_pushes.c.version)).where(config_pushes.c.device == device_id)
            ).scalar()
            or 0
        ) + 1
        try:
            push = ConfigPush(
                site=dev.site, device=device_id, config_version=version, config=body.config
            )
            payload = encode(push)
        except (ProtocolError, ValueError) as err:
            raise HTTPException(413 if "limit" in str(err) else 422, str(err)) from err
        conn.execute(
            config_pushes.insert().values(
                device=device_id,
                version=version,
                message_id=push.id,
                config=body.config,
                created_by=me.username,
                created_at=now,
            )
        )
        try:
            ctx.bus.publish(
                cmd_topic(dev.site, device_id, CmdChannel.CONFIG), payload, qos=1, retain=True
            )
        except BusError as err:
            raise HTTPException(503, f"broker unreachable, config not pushed: {err}") from err
    return ConfigPushInfo(
        device=device_id,
        version=version,
        created_by=me.username,
        created_at=now,
        config=body.config,
        applied_version=None,
        status="pending",
    )


@router.get(
    "/{device_id}/config", response_model=ConfigPushInfo, **guarded(Permission.DEVICES_READ)
)
def latest_config(device_id: DeviceId, ctx: Ctx) -> ConfigPushInfo:
    with ctx.engine.connect() as conn:
        row = conn.execute(
            select(config_pushes)
            .where(config_pushes.c.device == device_id)
            .order_by(config_pushes.c.version.desc())
            .limit(1)
        ).first()
        applied = conn.execute(
            select(device_state.c.config_version).where(device_state.c.device == device_id)
        ).scalar()
        reply = (
            conn.execute(
                select(replies.c.payload).where(replies.c.request_id == row.message_id)
            ).scalar()
            if row is not None and row.message_id
            else None
        )
    if row is None:
        raise HTTPException(404, f"no config pushed to {device_id!r} yet")
    status, error = "pending", None
    if reply is not None:
        answer = json.loads(reply)
        status = "applied" if answer.get("ok") else "rejected"
        error = answer.get("error")
    elif applied is not None and applied >= row.version:
        status = "applied"
    return ConfigPushInfo(
        device=device_id,
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        config=row.config,
        applied_version=applied,
        status=status,
        error=error,
    )
