"""Devices: list, detail, health history, provision, retire, config push."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import (
    ConfigPushBody,
    ConfigPushInfo,
    DeviceCreate,
    DeviceCredentials,
    DeviceEnsure,
    DeviceIdentity,
    DeviceInfo,
    DeviceRetire,
    DeviceUpdate,
    HealthRecord,
    LonLat,
    Paged,
)
from hub.auth import Permission
from hub.devices.service import ConfigPushView, Credentials

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
DeviceId = Annotated[str, Path(pattern=SEGMENT_PATTERN)]


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


def _secrets(creds: Credentials) -> dict[str, str | None]:
    return {
        "device": creds.device,
        "mqtt_username": creds.mqtt_username,
        "mqtt_password": creds.mqtt_password,
        "cert_pem": creds.cert_pem,
        "key_pem": creds.key_pem,
        "ca_pem": creds.ca_pem,
    }


def _push_info(view: ConfigPushView) -> ConfigPushInfo:
    return ConfigPushInfo.model_validate(view, from_attributes=True)


@router.get("", response_model=Paged[DeviceInfo], **guarded(Permission.DEVICES_READ))
def list_devices(
    ctx: Ctx,
    page: PageDep,
    site: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    status: Annotated[str | None, Query(pattern="^(active|retired)$")] = None,
    q: Annotated[str | None, Query(max_length=64, description="id or name contains")] = None,
) -> Paged[DeviceInfo]:
    after = page.after_text()
    rows = ctx.registry.page(
        limit=page.limit, after=after, site=site, kind=kind, status=status, q=q
    )
    items = [_info(r) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[DeviceInfo](items=items, next_cursor=nxt)


@router.get("/{device_id}", response_model=DeviceInfo, **guarded(Permission.DEVICES_READ))
def get_device(device_id: DeviceId, ctx: Ctx) -> DeviceInfo:
    return _info(ctx.registry.get(device_id))


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
    after = page.after_text()
    rows = ctx.registry.health(device_id, limit=page.limit, after=after, since=since, until=until)
    items = [HealthRecord.model_validate(r._mapping) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[HealthRecord](items=items, next_cursor=nxt)


@router.post(
    "", response_model=DeviceCredentials, status_code=201, **guarded(Permission.DEVICES_WRITE)
)
def provision_device(body: DeviceCreate, me: Me, ctx: Ctx) -> DeviceCredentials:
    """Create a device identity and its broker credentials (shown once)."""
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
    return DeviceCredentials(**_secrets(creds))


@router.put(
    "/{device_id}",
    response_model=DeviceIdentity,
    **guarded(
        Permission.DEVICES_WRITE,
        {
            201: {"model": DeviceIdentity, "description": "created, with its credentials"},
            409: {"description": "retired, or provisioned for another site or kind"},
        },
    ),
)
def ensure_device(
    device_id: DeviceId, body: DeviceEnsure, me: Me, ctx: Ctx, response: Response
) -> DeviceIdentity:
    """Provisioning an installer can repeat: a missing device is created (201, credentials
    shown once); an existing one answers 200 without secrets, or with new ones when
    ``rotate`` is true. Each creation and rotation is audited."""
    done = ctx.registry.ensure(
        me.username,
        body.site,
        body.kind,
        device_id,
        body.name,
        with_password=body.with_password,
        with_certificate=body.with_certificate,
        location=(body.location.lon, body.location.lat) if body.location else None,
        rotate=body.rotate,
    )
    if done.created:
        response.status_code = 201
    return DeviceIdentity(
        **_secrets(done.credentials), created=done.created, rotated=done.rotated
    )


@router.patch("/{device_id}", response_model=DeviceInfo, **guarded(Permission.DEVICES_WRITE))
def update_device(device_id: DeviceId, body: DeviceUpdate, me: Me, ctx: Ctx) -> DeviceInfo:
    """Rename a device or record where it is mounted (shown on the map)."""
    location = (body.location.lon, body.location.lat) if body.location is not None else None
    return _info(ctx.registry.update(me.username, device_id, name=body.name, location=location))


@router.post("/{device_id}/retire", status_code=204, **guarded(Permission.DEVICES_WRITE))
def retire_device(device_id: DeviceId, body: DeviceRetire, me: Me, ctx: Ctx) -> None:
    """Revoke the device's broker access and stop accepting its messages."""
    ctx.registry.retire(me.username, device_id, body.reason)


@router.post(
    "/{device_id}/config",
    response_model=ConfigPushInfo,
    status_code=201,
    **guarded(Permission.DEVICES_CONFIG),
)
def push_config(device_id: DeviceId, body: ConfigPushBody, me: Me, ctx: Ctx) -> ConfigPushInfo:
    """Store a new config version; the command outbox publishes it retained to the device
    after commit and retries until the device answers (``command_state``). The device
    reports the version it applied in its state (``config_version_applied``)."""
    return _push_info(ctx.registry.push_config(me.username, device_id, body.config))


@router.get(
    "/{device_id}/config", response_model=ConfigPushInfo, **guarded(Permission.DEVICES_READ)
)
def latest_config(device_id: DeviceId, ctx: Ctx) -> ConfigPushInfo:
    return _push_info(ctx.registry.latest_config(device_id))
