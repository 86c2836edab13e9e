"""Figures for the wall display ("one screen for the whole city") that the incident statistics
(``/incident-stats``) do not give: open incidents by level, the overdue list, incidents opened
and closed per day of the site's calendar, and alerts per hour. Counts come from the database
(GROUP BY or COUNT), never from a capped list; the overdue list is capped and says its total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from hub.config import HubConfig
from hub.incidents.model import OPEN_STATES, IncidentLevel
from hub.mapview import repository

OPEN_VALUES = [s.value for s in OPEN_STATES]
LEVELS = [lvl.value for lvl in IncidentLevel]
ALERT_HOURS = 24


def _aware(ts: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; the store only ever writes UTC.
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class WallFigures:
    engine: Engine
    config: HubConfig

    def figures(
        self, now: datetime, *, site: str | None, days: int, overdue_max: int
    ) -> dict[str, Any]:
        zone = self.config.zone()
        today = now.astimezone(zone).date()
        first_day = today - timedelta(days=days - 1)
        day_start = datetime.combine(first_day, datetime.min.time(), zone).astimezone(UTC)
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        hours = [hour - timedelta(hours=ALERT_HOURS - 1 - i) for i in range(ALERT_HOURS)]
        with self.engine.connect() as conn:
            by_level = dict.fromkeys(LEVELS, 0)
            for level, n in repository.open_incidents_by_level(conn, site, OPEN_VALUES):
                by_level[level] = by_level.get(level, 0) + int(n)
            total, late = repository.overdue_incidents(conn, site, OPEN_VALUES, now, overdue_max)
            opened, closed = self._days(conn, site, day_start, first_day, days)
            alert_rows = [
                repository.alert_counts(conn, site, start, start + timedelta(hours=1))
                for start in hours
            ]
        overdue = []
        for r in late:
            deadline = _aware(r.deadline_at)
            overdue.append(
                {
                    "id": r.id,
                    "number": r.number,
                    "title": r.title,
                    "level": r.level,
                    "state": r.state,
                    "cell_id": r.cell_id,
                    "cell_name": r.cell_name,
                    "deadline_at": deadline.isoformat() if deadline else None,
                    "overdue_s": int((now - deadline).total_seconds()) if deadline else None,
                }
            )
        per_hour = [sum(int(n) for _, n in rows) for rows in alert_rows]
        last_hour = {sev: int(n) for sev, n in alert_rows[-1]}
        return {
            "site": site,
            "generated_at": now.astimezone(UTC).isoformat(),
            "timezone": self.config.timezone,
            "open_by_level": by_level,
            "overdue": {"total": total, "items": overdue},
            "trend": {
                "days": [(first_day + timedelta(days=i)).isoformat() for i in range(days)],
                "opened": opened,
                "closed": closed,
            },
            "alert_rate": {
                "hours": [h.isoformat() for h in hours],
                "counts": per_hour,
                "last_hour_by_severity": last_hour,
            },
        }

    def _days(
        self, conn: Any, site: str | None, since: datetime, first_day: date, days: int
    ) -> tuple[list[int], list[int]]:
        zone = self.config.zone()
        opened = [0] * days
        closed = [0] * days
        for created_at, closed_at in repository.incident_days(conn, site, since):
            for ts, tally in ((created_at, opened), (closed_at, closed)):
                aware = _aware(ts)
                if aware is None:
                    continue
                i = (aware.astimezone(zone).date() - first_day).days
                if 0 <= i < days:
                    tally[i] += 1
        return opened, closed
