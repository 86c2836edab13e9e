"""Typed details for every alert kind, and the one way agents build an alert.

On the wire ``Alert.details`` stays a flat mapping of short scalars (the hub and older agents
read it as such). What goes into it is no longer free-form: each :class:`~edge.protocol.AlertKind`
has one model here, an agent raises an alert through :func:`build_alert` with that model, and a
typo'd key or a value of the wrong type fails where the alert is made, not on the hub's map.
:func:`parse_details` reads a received alert's details back into its kind's model.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.protocol import (
    Alert,
    AlertKind,
    DetailValue,
    Evidence,
    Location,
    ProtocolError,
    Severity,
)

Metres = Annotated[float, Field(ge=-1e7, le=1e7)]
Pixels = Annotated[float, Field(ge=-1e6, le=1e6)]
Seconds = Annotated[float, Field(ge=0, le=1e9)]
TrackRef = Annotated[str, Field(min_length=1, max_length=64)]


class AlertDetails(BaseModel):
    """Base of the per-kind detail models: flat, scalar, strict."""

    # NaN/Infinity are not JSON: refused here, where the alert is made.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    KIND: ClassVar[AlertKind]

    def wire(self) -> dict[str, DetailValue]:
        """The flat mapping carried in ``Alert.details`` (unset optional fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class _ZoneEventDetails(AlertDetails):
    """A tracked object in a zone: image coordinates from a camera, site metres from a LiDAR."""

    source: Literal["camera", "lidar"]
    track_id: TrackRef
    x_px: Pixels | None = None
    y_px: Pixels | None = None
    x_m: Metres | None = None
    y_m: Metres | None = None
    dwell_s: Seconds | None = None


class IntrusionDetails(_ZoneEventDetails):
    KIND: ClassVar[AlertKind] = AlertKind.INTRUSION


class LoiteringDetails(_ZoneEventDetails):
    KIND: ClassVar[AlertKind] = AlertKind.LOITERING


class LineCrossingDetails(_ZoneEventDetails):
    KIND: ClassVar[AlertKind] = AlertKind.LINE_CROSSING

    direction: Annotated[str, Field(max_length=64)] | None = None


class PerimeterBreachDetails(_ZoneEventDetails):
    KIND: ClassVar[AlertKind] = AlertKind.PERIMETER_BREACH


class FaceMatchDetails(AlertDetails):
    KIND: ClassVar[AlertKind] = AlertKind.FACE_MATCH

    entry_id: Annotated[str, Field(min_length=1, max_length=64)]
    score: Annotated[float, Field(ge=0, le=1)]
    track_id: TrackRef | None = None
    bundle_version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    threshold: Annotated[float, Field(ge=0, le=1)]
    frames_matched: Annotated[int, Field(ge=1, le=1000)]
    frames_seen: Annotated[int, Field(ge=1, le=1000)]
    backend: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class _GeofenceDetails(AlertDetails):
    method: Annotated[str, Field(max_length=32, description="how the position was estimated")]


class GeofenceExitDetails(_GeofenceDetails):
    KIND: ClassVar[AlertKind] = AlertKind.GEOFENCE_EXIT


class GeofenceEntryDetails(_GeofenceDetails):
    KIND: ClassVar[AlertKind] = AlertKind.GEOFENCE_ENTRY


class SosDetails(AlertDetails):
    KIND: ClassVar[AlertKind] = AlertKind.SOS


class TamperDetails(AlertDetails):
    KIND: ClassVar[AlertKind] = AlertKind.TAMPER


class BatteryLowDetails(AlertDetails):
    KIND: ClassVar[AlertKind] = AlertKind.BATTERY_LOW

    battery_pct: Annotated[int, Field(ge=0, le=100)]


class SignalLostDetails(AlertDetails):
    KIND: ClassVar[AlertKind] = AlertKind.SIGNAL_LOST

    silent_s: Seconds


class ClonedDeviceDetails(AlertDetails):
    KIND: ClassVar[AlertKind] = AlertKind.CLONED_DEVICE

    verdict: Literal["forged", "replayed"]
    receiver: Annotated[str, Field(max_length=64)]
    rssi_dbm: Annotated[int, Field(ge=-200, le=50)]


DETAIL_MODELS: dict[AlertKind, type[AlertDetails]] = {
    m.KIND: m for m in (
        IntrusionDetails, LoiteringDetails, LineCrossingDetails, PerimeterBreachDetails,
        FaceMatchDetails, GeofenceExitDetails, GeofenceEntryDetails, SosDetails,
        TamperDetails, BatteryLowDetails, SignalLostDetails, ClonedDeviceDetails,
    )
}
ZONE_EVENT_DETAILS: dict[AlertKind, type[_ZoneEventDetails]] = {
    AlertKind.INTRUSION: IntrusionDetails,
    AlertKind.LOITERING: LoiteringDetails,
    AlertKind.LINE_CROSSING: LineCrossingDetails,
    AlertKind.PERIMETER_BREACH: PerimeterBreachDetails,
}


def build_alert(
    details: AlertDetails,
    *,
    site: str,
    device: str,
    severity: Severity,
    title: str = "",
    location: Location | None = None,
    zone: str | None = None,
    entity: str | None = None,
    started_at: datetime | None = None,
    evidence: Evidence | None = None,
    face_crop: Evidence | None = None,
) -> Alert:
    """An alert whose kind is the details' kind: the two cannot disagree."""
    return Alert(site=site, device=device, kind=details.KIND, severity=severity, title=title,
                 location=location, zone=zone, entity=entity, started_at=started_at,
                 evidence=evidence, face_crop=face_crop, details=details.wire())


def parse_details(kind: AlertKind, details: Mapping[str, DetailValue]) -> AlertDetails:
    """Read a received alert's details into its kind's model (for consumers that want them
    typed). Raises :class:`ProtocolError` when they do not fit."""
    try:
        return DETAIL_MODELS[kind].model_validate(dict(details))
    except ValidationError as err:
        raise ProtocolError("bad_details", f"{kind.value} details do not fit: {err}") from err
