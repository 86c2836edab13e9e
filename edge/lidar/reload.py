"""Hot reload of the zones and counting lines the hub pushes to a LiDAR scanner.

The hub publishes a retained :class:`~edge.protocol.ConfigPush` whose ``config`` is a
:class:`LidarPush`. Each push is a complete statement *relative to the YAML file*: a key that
is present replaces the file's list (``[]`` or ``null`` empties it), a key that is absent keeps
the file's list. The effective config is validated exactly like the file (ids unique across
zones and lines), plus a push-only check that every zone and line comes within the scanner's
``max_range_m`` of its mount (otherwise it could never see anyone); a bad push is refused with a
sentence naming the key path, and the rules in force stay.

Only the perimeter rules may be pushed (zones with their dwell, severity and title; lines with
their hysteresis and direction names): they are swapped between two scans. Scanner, mount,
background, clustering and tracking settings stay in the file (restart to change them).

The last applied push is kept in ``<data_dir>/<device>-pushed-config.json`` (atomic replace), so
it is in force again after a restart before the first scan and before the broker re-delivers
the retained push; re-delivered versions that are not newer than the applied (or last refused)
one are ignored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from edge.config import StrictModel
from edge.lidar.config import LidarConfig, LineConfig, ZoneConfig
from edge.lidar.geometry import Point, point_in_polygon
from edge.pushed_config import (
    PushRejectedError,
    describe,
)

log = logging.getLogger(__name__)

T = TypeVar("T")



class LidarPush(StrictModel):
    """What the hub may change on a running scanner (``POST /api/v1/devices/{id}/config``)."""

    zones: list[ZoneConfig] | None = Field(
        default=None, max_length=64, description="replaces the file's intrusion zones")
    lines: list[LineConfig] | None = Field(
        default=None, max_length=64, description="replaces the file's counting lines")


def distance_to_segment(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy)
                                          / length2))
    return math.dist(p, (a[0] + t * dx, a[1] + t * dy))


def distance_to_polygon(p: Point, polygon: Sequence[Point]) -> float:
    """0 inside, else the distance to the nearest edge."""
    if point_in_polygon(p, list(polygon)):
        return 0.0
    return min(distance_to_segment(p, a, b)
               for a, b in zip(polygon, [*polygon[1:], polygon[0]], strict=True))


def parse_push(base: LidarConfig, raw: Mapping[str, Any]) -> LidarConfig:
    """The effective config after applying ``raw`` (a push's ``config``) to ``base`` (the
    file's config); raises :class:`PushRejectedError` with what to fix."""
    hint = "; fix it and push again (the zones and lines in force stay)"
    try:
        push = LidarPush.model_validate(raw)
    except ValidationError as err:
        raise PushRejectedError(describe(err, raw) + hint) from err
    merged = base.model_dump(mode="python")
    for key in push.model_fields_set:
        merged[key] = getattr(push, key) or []
    try:
        effective = LidarConfig.model_validate(merged)
    except ValidationError as err:
        raise PushRejectedError(describe(err, raw) + hint) from err
    mount: Point = (effective.mount.x_m, effective.mount.y_m)
    reach = effective.range_m[1]
    for key in ("zones", "lines"):
        if key not in push.model_fields_set:
            continue
        for i, rule in enumerate(getattr(effective, key)):
            if isinstance(rule, ZoneConfig):
                gap = distance_to_polygon(mount, [(p.x_m, p.y_m) for p in rule.polygon])
            else:
                gap = distance_to_segment(mount, (rule.a.x_m, rule.a.y_m),
                                          (rule.b.x_m, rule.b.y_m))
            if gap > reach:
                raise PushRejectedError(
                    f"config.{key}[{i}] ({rule.id!r}): its nearest point is {gap:.1f} m from the "
                    f"scanner at ({mount[0]:g}, {mount[1]:g}) m, beyond its {reach:g} m range, "
                    "so it could never see anyone; use site coordinates in metres around the "
                    "site origin" + hint)
    return effective
