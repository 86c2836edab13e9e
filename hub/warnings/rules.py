"""Evaluating warning rules for one cell (no I/O): what colour, which rule, and the incidents
and alert counts behind it, so the answer can be explained and compared with the last one."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.incidents.model import LEVEL_ORDER, IncidentLevel
from hub.warnings.config import (
    COLOUR_ORDER,
    AlertCondition,
    Colour,
    IncidentCondition,
    WarningRule,
    WarningsConfig,
)


@dataclass(frozen=True, slots=True)
class OpenIncident:
    id: str
    number: str
    level: str
    category: str
    created_at: datetime
    deadline_at: datetime | None

    def overdue(self, now: datetime) -> bool:
        return self.deadline_at is not None and self.deadline_at < now

    def age_min(self, now: datetime) -> float:
        return max(0.0, (now - self.created_at).total_seconds() / 60)


@dataclass(frozen=True, slots=True)
class RecentAlert:
    kind: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Override:
    level: Colour | None  # None: "no warning", forced
    reason: str
    by: str
    at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    level: Colour | None
    source: str  # "rules" | "override" | "none"
    rule: str | None
    incidents: tuple[OpenIncident, ...] = ()
    alert_count: int | None = None
    alert_window_min: float | None = None
    override: Override | None = None
    matched: tuple[str, ...] = field(default=())  # every matching rule, for the explanation

    def key(self) -> str:
        """What a history row is written for: colour, source, rule, the incidents behind it,
        the override. Counts and ages are left out: they move with time alone and would
        write a row on every pass."""
        parts: dict[str, Any] = {
            "level": self.level.value if self.level else None,
            "source": self.source,
            "rule": self.rule,
            "incidents": sorted(i.id for i in self.incidents),
        }
        if self.override is not None:
            parts["override"] = [
                self.override.reason,
                self.override.by,
                self.override.expires_at.isoformat(),
            ]
        raw = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()

    def explanation(self, now: datetime, max_incidents: int) -> dict[str, Any]:
        shown = sorted(self.incidents, key=lambda i: (-LEVEL_ORDER[IncidentLevel(i.level)], i.id))
        out: dict[str, Any] = {
            "level": self.level.value if self.level else None,
            "source": self.source,
            "rule": self.rule,
            "matched_rules": list(self.matched),
            "incident_count": len(self.incidents),
            "incidents": [
                {
                    "id": i.id,
                    "number": i.number,
                    "level": i.level,
                    "category": i.category,
                    "age_min": round(i.age_min(now), 1),
                    "overdue": i.overdue(now),
                }
                for i in shown[:max_incidents]
            ],
            "alerts": (
                {"count": self.alert_count, "window_min": self.alert_window_min}
                if self.alert_count is not None
                else None
            ),
        }
        if self.override is not None:
            out["override"] = {
                "level": self.override.level.value if self.override.level else None,
                "reason": self.override.reason,
                "by": self.override.by,
                "at": self.override.at.isoformat(),
                "expires_at": self.override.expires_at.isoformat(),
            }
        return out


def _incident_matches(cond: IncidentCondition, i: OpenIncident, now: datetime) -> bool:
    if LEVEL_ORDER[IncidentLevel(i.level)] < LEVEL_ORDER[cond.min_level]:
        return False
    if cond.categories and i.category not in cond.categories:
        return False
    if cond.min_age_min and i.age_min(now) < cond.min_age_min:
        return False
    return cond.overdue is None or i.overdue(now) == cond.overdue


def _alerts_in(cond: AlertCondition, alerts: list[RecentAlert], now: datetime) -> int:
    since = now - timedelta(minutes=cond.window_min)
    return sum(
        1 for a in alerts if since <= a.ts <= now and (not cond.kinds or a.kind in cond.kinds)
    )


@dataclass(frozen=True, slots=True)
class _Match:
    rule: WarningRule
    incidents: tuple[OpenIncident, ...]
    alert_count: int | None


def _match(
    rule: WarningRule, incidents: list[OpenIncident], alerts: list[RecentAlert], now: datetime
) -> _Match | None:
    behind: tuple[OpenIncident, ...] = ()
    count: int | None = None
    if rule.incidents is not None:
        cond = rule.incidents
        behind = tuple(i for i in incidents if _incident_matches(cond, i, now))
        if len(behind) < cond.min_count:
            return None
    if rule.alerts is not None:
        count = _alerts_in(rule.alerts, alerts, now)
        if count < rule.alerts.min_alerts:
            return None
    return _Match(rule, behind, count)


def evaluate(
    config: WarningsConfig,
    incidents: list[OpenIncident],
    alerts: list[RecentAlert],
    now: datetime,
    override: Override | None = None,
) -> Verdict:
    """The cell's warning: a live override wins; else the highest colour among the matching
    rules (the first rule of that colour names it); else none."""
    matches = [m for r in config.rules if (m := _match(r, incidents, alerts, now)) is not None]
    matched = tuple(m.rule.name for m in matches)
    if override is not None and override.expires_at > now:
        return Verdict(override.level, "override", None, override=override, matched=matched)
    if not matches:
        return Verdict(None, "none", None)
    best = max(matches, key=lambda m: COLOUR_ORDER[m.rule.colour])  # max keeps the first
    window = best.rule.alerts.window_min if best.rule.alerts else None
    return Verdict(
        best.rule.colour,
        "rules",
        best.rule.name,
        best.incidents,
        best.alert_count,
        window,
        matched=matched,
    )
