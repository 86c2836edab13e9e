"""Alert rules (pure): which stored alerts open an incident, and the group an alert joins.

An alert is matched against the ordered rules; the first match decides its category, level and
grouping. Its group key names the rule, the alert kind, the site and the place (cell, zone or
device); alerts with one key whose times fall within the rule's window of the group's last
alert join one incident. The key is kept on the incident only while it is open and its group
is live, and a unique index on it means two hub replicas can never open two incidents for one
group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from edge.protocol import Alert, Inbound
from hub.incidents.config import AlertRule

GROUP_KEY_MAX = 200


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """The fields of a stored alert the rules read."""

    id: str
    site: str
    device: str
    kind: str
    severity: str
    ts: datetime
    title: str = ""
    lon: float | None = None
    lat: float | None = None
    zone: str | None = None


def stored_alerts(batch: Sequence[Inbound], new_ids: Collection[str]) -> list[StoredAlert]:
    """The alerts of an ingest batch that the store inserted (not duplicates)."""
    out = []
    for item in batch:
        msg = item.message
        if isinstance(msg, Alert) and msg.id in new_ids:
            loc = msg.location
            out.append(
                StoredAlert(
                    id=msg.id,
                    site=msg.site,
                    device=msg.device,
                    kind=msg.kind.value,
                    severity=msg.severity.value,
                    ts=msg.ts,
                    title=msg.title,
                    lon=loc.lon if loc else None,
                    lat=loc.lat if loc else None,
                    zone=msg.zone,
                )
            )
    return out


def first_match(rules: Sequence[AlertRule], alert: StoredAlert) -> AlertRule | None:
    return next((r for r in rules if r.matches(alert.kind, alert.severity)), None)


def place_of(rule: AlertRule, alert: StoredAlert, cell_id: str | None) -> str:
    """The place part of the group key; cell and zone fall back to the device."""
    if rule.place == "cell" and cell_id is not None:
        return f"cell:{cell_id}"
    if rule.place == "zone" and alert.zone is not None:
        return f"zone:{alert.zone}"
    return f"device:{alert.device}"


def group_key(rule: AlertRule, alert: StoredAlert, cell_id: str | None) -> str:
    key = f"{alert.site}/{rule.name}/{alert.kind}/{place_of(rule, alert, cell_id)}"
    if len(key) <= GROUP_KEY_MAX:
        return key
    # Ids are bounded but their sum is not; a digest keeps the key unique and in the column.
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
