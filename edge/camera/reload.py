"""Hot reload of the zones (and the homography) the hub pushes to a camera.

The hub publishes a retained :class:`~edge.protocol.ConfigPush` whose ``config`` is a
:class:`CameraPush`. Each push is a complete statement *relative to the YAML file*: a key that
is present replaces the file's value (``"homography": null`` removes the file's homography), a
key that is absent keeps the file's value. The effective config is validated exactly like the
file (zone ids unique, every point inside the frame), plus the push-only checks below; a bad
push is refused with a sentence naming the key path, and the zones in force stay.

Only settings that are safe to swap between two frames may be pushed: zones with their filters,
cool-downs and dwell times, and the pixel-to-map homography. Source, detector, tracker and
motion settings change the pipeline itself and stay in the file (restart to change them).

The last applied push is kept in ``<data_dir>/<device>-pushed-config.json`` (atomic replace), so
it is in force again after a restart before the first frame and before the broker re-delivers
the retained push; re-delivered versions that are not newer than the applied (or last refused)
one are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from edge.camera.config import CameraConfig
from edge.camera.homography import HomographyConfig
from edge.camera.zones import LineZone, ZoneConfig
from edge.config import StrictModel
from edge.pushed_config import (
    PushRejectedError,
    describe,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Tags of the zone union: pydantic puts them into error locations, operators never write them.
_UNION_TAGS = frozenset({"intrusion", "loitering", "line"})



class CameraPush(StrictModel):
    """What the hub may change on a running camera (``POST /api/v1/devices/{id}/config``)."""

    zones: list[ZoneConfig] | None = Field(
        default=None, max_length=64,
        description="replaces the file's zones (pixels of ingest.width_px x ingest.height_px)")
    homography: HomographyConfig | None = Field(
        default=None, description="replaces the file's homography; null removes it")


def parse_push(base: CameraConfig, raw: Mapping[str, Any]) -> CameraConfig:
    """The effective camera config after applying ``raw`` (a push's ``config``) to ``base``
    (the file's config); raises :class:`PushRejectedError` with what to fix."""
    hint = "; fix it and push again (the zones in force stay)"
    try:
        push = CameraPush.model_validate(raw)
    except ValidationError as err:
        raise PushRejectedError(describe(err, raw, union_tags=_UNION_TAGS) + hint) from err
    w, h = base.ingest.width_px, base.ingest.height_px
    where = "pixels of the file's ingest.width_px x ingest.height_px"
    zones = push.zones or []
    seen: set[str] = set()
    for i, zone in enumerate(zones):
        if zone.id in seen:
            raise PushRejectedError(f"config.zones[{i}].id: zone ids must be unique, "
                                    f"{zone.id!r} is used twice" + hint)
        seen.add(zone.id)
        named = ("a", "b") if isinstance(zone, LineZone) else None
        points = [zone.a, zone.b] if isinstance(zone, LineZone) else zone.polygon
        for j, (x, y) in enumerate(points):
            if not (0 <= x <= w and 0 <= y <= h):
                at = f".{named[j]}" if named else f".polygon[{j}]"
                raise PushRejectedError(
                    f"config.zones[{i}] ({zone.id!r}){at}: ({x:g}, {y:g}) is outside the "
                    f"{w}x{h} frame; zone points are {where}" + hint)
    if push.homography is not None:
        for i, point in enumerate(push.homography.points):
            x, y = point.px
            if not (0 <= x <= w and 0 <= y <= h):
                raise PushRejectedError(
                    f"config.homography.points[{i}].px: ({x:g}, {y:g}) is outside the {w}x{h} "
                    f"frame; ground points are {where}" + hint)
    merged = base.model_dump(mode="python")
    for key in push.model_fields_set:
        merged[key] = getattr(push, key)
    if merged.get("zones") is None:
        merged["zones"] = []
    try:  # the file's own checks on the result, so a push accepts what the file accepts
        return CameraConfig.model_validate(merged)
    except ValidationError as err:
        raise PushRejectedError(describe(err, raw, union_tags=_UNION_TAGS) + hint) from err
