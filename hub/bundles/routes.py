"""``/api/v1/watchlists/devices`` and ``/api/v1/watchlists/signing-key``: where each
face-matching device's bundle stands, and the key edges pin. HTTP only (hub/bundles/service.py)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hub.api.deps import Ctx, guarded
from hub.api.models import UtcDateTime
from hub.auth import Permission
from hub.bundles.service import DeviceBundleStatus

router = APIRouter(prefix="/api/v1/watchlists", tags=["watchlists"])


class DeviceBundleOut(BaseModel):
    device: str
    site: str
    kind: str
    key_registered: bool = Field(description="the device has sent its X25519 bundle key")
    key_registered_at: UtcDateTime | None
    version_pushed: int | None = Field(description="latest bundle version sealed for it")
    pushed_at: UtcDateTime | None
    version_applied: int | None = Field(description="latest version it answered as applied")
    applied_at: UtcDateTime | None
    version_reported: int | None = Field(description="version in force by its DeviceState")
    parts: int | None = Field(description="envelopes the pushed version was sealed as")
    parts_acknowledged: int | None = Field(
        description="of them the device has answered ok (all: applied)"
    )
    entries: int | None = Field(description="entries in the pushed bundle")
    last_error: str | None = Field(description="why the latest bundle was refused or not sent")
    last_error_at: UtcDateTime | None


class SigningKeyOut(BaseModel):
    key_id: str = Field(description="pin in the edge config: watchlist.hub_keys.<key_id>")
    public_key_b64: str = Field(description="Ed25519 public key, base64 of 32 bytes")


def _out(status: DeviceBundleStatus) -> DeviceBundleOut:
    return DeviceBundleOut.model_validate(status, from_attributes=True)


@router.get("/devices", response_model=list[DeviceBundleOut], **guarded(Permission.WATCHLIST_READ))
def bundle_devices(ctx: Ctx) -> list[DeviceBundleOut]:
    """Every active face-matching device: key, bundle version pushed, applied and reported."""
    return [_out(s) for s in ctx.bundles.devices()]


@router.get("/signing-key", response_model=SigningKeyOut, **guarded(Permission.WATCHLIST_READ))
def signing_key(ctx: Ctx) -> SigningKeyOut:
    """The hub's bundle signing key: what an installer pins in each edge's ``hub_keys``."""
    key = ctx.bundles.signing_key()
    return SigningKeyOut(key_id=key.key_id, public_key_b64=key.public_key_b64)
