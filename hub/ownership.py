"""Who may report an entity's position: the rule behind the ``entity_not_owned`` rejection.

A position moves a marker on every dashboard and becomes the entity's "latest" fix, so one
device must not be able to speak for an entity that is not its own (issue 11, item 3). The rule:

- a **track** (``entity_kind: track``) comes from a camera or LiDAR, and its id is the
  reporting device's (``<device>-<track id>``, see :func:`edge.tracking.track_entity`);
- an **officer** comes from glasses, and belongs to the first glasses device that reports it;
- a **wearer** comes from any wristband gateway of its site, or from the hub's own fusion
  (:data:`hub.fusion.FUSION_DEVICE`): several gateways hear the same band;
- an entity id keeps the kind it was first reported as, so a camera cannot turn an officer's
  id into one of its tracks.

The first claim of an entity is stored (``entity_owners``) by the store in the transaction that
stores its position; the functions here are pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.protocol import DeviceKind, EntityKind

FUSION_REPORTER = "fusion"  # the reporter kind of positions the hub computes itself
NOT_OWNED = "entity_not_owned"

REPORTERS: dict[EntityKind, frozenset[str]] = {
    EntityKind.TRACK: frozenset({DeviceKind.CAMERA.value, DeviceKind.LIDAR.value}),
    EntityKind.OFFICER: frozenset({DeviceKind.GLASSES.value}),
    EntityKind.WEARER: frozenset({DeviceKind.WRISTBAND.value, FUSION_REPORTER}),
}
# Kinds one device owns alone; the others are shared by every allowed reporter of the site.
SOLE_OWNER: frozenset[EntityKind] = frozenset({EntityKind.TRACK, EntityKind.OFFICER})
ID_MAX_CHARS = 64


@dataclass(frozen=True, slots=True)
class Owner:
    entity_kind: str
    device: str


def is_track_of(device: str, entity: str) -> bool:
    """True when ``entity`` is a track id :func:`edge.tracking.track_entity` makes for
    ``device``: ``<device>-<track>``, or, when that would pass 64 characters, the device id
    cut short so the whole id is exactly 64 characters."""
    if entity.startswith(device + "-") and len(entity) > len(device) + 1:
        return True
    if len(entity) != ID_MAX_CHARS:
        return False
    cut = entity.rfind("-", 0, len(device))
    while cut > 0:
        if entity[:cut] == device[:cut]:
            return True
        cut = entity.rfind("-", 0, cut)
    return False


def refusal(
    reporter_kind: str, device: str, entity: str, entity_kind: EntityKind, owner: Owner | None
) -> str | None:
    """Why ``device`` (of ``reporter_kind``) may not report ``entity``; None when it may."""
    if reporter_kind not in REPORTERS[entity_kind]:
        return f"a {reporter_kind} does not report {entity_kind.value} positions"
    if entity_kind is EntityKind.TRACK and not is_track_of(device, entity):
        return f"track {entity!r} is not named for {device!r} (<device>-<track>)"
    if owner is None:
        return None
    if owner.entity_kind != entity_kind.value:
        return f"{entity!r} is a {owner.entity_kind}, not a {entity_kind.value}"
    if entity_kind in SOLE_OWNER and owner.device != device:
        return f"{entity!r} belongs to another device"
    return None
