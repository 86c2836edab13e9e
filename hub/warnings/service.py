"""Cell warning rules in motion: recompute cells from their open incidents, the alerts located
in them and their override; write a change compare-and-set (so two hubs sharing a database
write one history row), audit it and tell the live map after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from edge.validators import new_id
from hub.audit import AuditTrail
from hub.clock import Clock, SystemClock
from hub.errors import Invalid, NotFound
from hub.geo.locate import CellLocator
from hub.incidents.categories import Vocabulary
from hub.live import Layer, LiveBroadcaster, LiveEvent
from hub.warnings import repository
from hub.warnings.cap import WarningMessage, identifier
from hub.warnings.config import Colour, WarningsConfig
from hub.warnings.rules import OpenIncident, Override, RecentAlert, Verdict, evaluate

log = logging.getLogger(__name__)

RULES_ACTOR = "system:warnings"
REASON_MAX_CHARS = 500


# A cell never coloured has no key yet: it reads as "no warning", so it writes no history.
NO_WARNING_KEY = Verdict(None, "none", None).key()


def _stored_key(row: Any) -> str:
    if row.warning_key is not None:
        return str(row.warning_key)
    # A colour written without a key (by hand, before these rules existed) is never taken
    # as up to date: the next pass decides it (migration 0014 made such colours overrides).
    return NO_WARNING_KEY if row.warning_level is None else ""


class CellNotFound(NotFound):
    pass


class BadOverride(Invalid):
    pass


class _LostRaceError(Exception):
    """Another hub changed the cell between our read and our write: it did the work."""


@dataclass(frozen=True, slots=True)
class Change:
    cell_id: str
    site: str
    level: str | None
    previous: str | None
    source: str
    rule: str | None


@dataclass(frozen=True, slots=True)
class Explanation:
    cell_id: str
    site: str
    name: str
    since: datetime | None
    verdict: dict[str, Any]


def _aware(ts: datetime | None) -> datetime | None:
    # SQLite hands timestamps back naive (they were stored as UTC).
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def check_rule_categories(config: WarningsConfig, vocabulary: Vocabulary) -> None:
    """A rule naming a category nobody can file would never match: refuse it at start."""
    for rule in config.rules:
        if rule.incidents is None:
            continue
        unknown = [c for c in rule.incidents.categories if vocabulary.category(c) is None]
        if unknown:
            raise ValueError(
                f"warnings.rules[{rule.name}]: unknown incident categories {unknown}: "
                "use the ids in incidents.categories"
            )


class WarningService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: WarningsConfig | None = None,
        *,
        vocabulary: Vocabulary | None = None,
        clock: Clock | None = None,
        live: LiveBroadcaster | None = None,
        locator: CellLocator | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config or WarningsConfig()
        if vocabulary is not None:
            check_rule_categories(self.config, vocabulary)
        self.clock = clock or SystemClock()
        self.live = live
        self.locator = locator or CellLocator(engine)
        self.alert_rules = [r.name for r in self.config.rules if r.alerts is not None]
        self.min_ages_min = sorted(
            {r.incidents.min_age_min for r in self.config.rules if r.incidents is not None}
            - {0}
        )
        self.max_window_min = max(
            (r.alerts.window_min for r in self.config.rules if r.alerts is not None), default=0.0
        )

    # -- reading what the rules need ---------------------------------------------------------

    def _inputs(
        self, conn: Connection, rows: list[Any], now: datetime
    ) -> tuple[dict[str, list[OpenIncident]], dict[str, list[RecentAlert]], dict[str, Override]]:
        ids = [r.id for r in rows]
        by_cell: dict[str, list[OpenIncident]] = {i: [] for i in ids}
        for r in repository.open_incidents(conn, ids):
            by_cell[r.cell_id].append(
                OpenIncident(
                    r.id,
                    r.number,
                    r.level,
                    r.category,
                    _aware(r.created_at) or now,
                    _aware(r.deadline_at),
                )
            )
        alerts = self._alerts_by_cell(conn, {r.site for r in rows}, set(ids), now)
        overrides = {
            cell_id: Override(
                Colour(o.level) if o.level else None,
                o.reason,
                o.set_by,
                _aware(o.set_at) or now,
                _aware(o.expires_at) or now,
            )
            for cell_id, o in repository.overrides(conn, ids).items()
        }
        return by_cell, alerts, overrides

    def _alerts_by_cell(
        self, conn: Connection, sites: set[str], wanted: set[str], now: datetime
    ) -> dict[str, list[RecentAlert]]:
        """Alerts count for the cell whose polygon holds their lon/lat (hub/geo/locate.py):
        the same place rule as incidents; an alert without a location counts nowhere."""
        out: dict[str, list[RecentAlert]] = {}
        if not self.max_window_min:
            return out
        since = now - timedelta(minutes=self.max_window_min)
        for site in sorted(sites):
            for a in repository.recent_alerts(conn, site, since):
                cell_id = self.locator.cell_at(site, a.lon, a.lat, conn)
                if cell_id in wanted:
                    out.setdefault(cell_id, []).append(RecentAlert(a.kind, _aware(a.ts) or now))
        return out

    def verdict(self, cell_id: str) -> tuple[Any, Verdict, datetime]:
        now = self.clock.now()
        with self.engine.connect() as conn:
            row = repository.cell(conn, cell_id)
            if row is None:
                raise CellNotFound(f"no grid cell {cell_id!r}")
            incidents, alerts, overrides = self._inputs(conn, [row], now)
        v = evaluate(
            self.config, incidents[row.id], alerts.get(row.id, []), now, overrides.get(row.id)
        )
        return row, v, now

    # -- recomputing -------------------------------------------------------------------------

    def recompute(self, cell_ids: Iterable[str] | None = None) -> list[Change]:
        """Bring the given cells (None: every cell) up to date; returns what changed."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            ids = repository.all_cell_ids(conn) if cell_ids is None else sorted(set(cell_ids))
            if not ids:
                return []
            rows = repository.cells(conn, ids)
            incidents, alerts, overrides = self._inputs(conn, rows, now)
        changes: list[Change] = []
        for row in rows:
            v = evaluate(
                self.config, incidents[row.id], alerts.get(row.id, []), now, overrides.get(row.id)
            )
            if v.key() == _stored_key(row):
                continue
            change = self._write(row, v, now)
            if change is not None:
                changes.append(change)
        self._publish(changes)
        return changes

    def _write(self, row: Any, v: Verdict, now: datetime) -> Change | None:
        details = {"level": v.level.value if v.level else None, "source": v.source}
        try:
            with self.audit.change(RULES_ACTOR, "cell.warning", row.id, details) as conn:
                if v.source != "override":  # a lapsed override goes with the change it causes
                    repository.delete_expired_override(conn, row.id, now)
                return self._apply_in(conn, row, v, now, RULES_ACTOR)
        except _LostRaceError:
            log.debug("cell %s changed under us; the other writer's result stands", row.id)
            return None

    def _apply_in(
        self, conn: Connection, row: Any, v: Verdict, now: datetime, actor: str
    ) -> Change:
        """Write ``v`` as the cell's warning and one history row, compare-and-set on the
        version ``row`` was read at; raises _LostRaceError when another writer came first."""
        level = v.level.value if v.level else None
        previous = row.warning_level
        episode = row.warning_episode
        if level is not None and (previous is None or episode is None):
            episode = new_id()  # none -> a colour: a new warning episode (one CAP thread)
        explanation = v.explanation(now, self.config.explanation_max_incidents)
        if v.override is not None:
            reason: str | None = v.override.reason
            set_by: str | None = v.override.by
            since = v.override.at
        else:
            reason, set_by, since = v.rule, (RULES_ACTOR if level else None), now
        values = {
            "warning_level": level,
            "warning_reason": reason if level or v.override else None,
            "warning_set_by": set_by if level or v.override else None,
            "warning_set_at": since if level or v.override else None,
            "warning_source": v.source if v.source != "none" else None,
            "warning_rule": v.rule,
            "warning_explanation": explanation,
            "warning_key": v.key(),
            "warning_episode": episode if level is not None else None,
        }
        if not repository.set_warning(conn, row.id, row.warning_version, values):
            raise _LostRaceError
        repository.add_history(
            conn,
            {
                "cell_id": row.id,
                "site": row.site,
                "ts": now,
                "level": level,
                "previous_level": previous,
                "source": v.source,
                "rule": v.rule,
                "reason": reason,
                "actor": actor,
                "episode": episode,
                "explanation": explanation,
            },
        )
        return Change(row.id, row.site, level, previous, v.source, v.rule)

    def _publish(self, changes: list[Change]) -> None:
        if self.live is None or not changes:
            return
        self.live.publish(
            [
                LiveEvent(
                    Layer.WARNINGS,
                    c.site,
                    {
                        "cell": c.cell_id,
                        "level": c.level,
                        "previous": c.previous,
                        "source": c.source,
                        "rule": c.rule,
                    },
                )
                for c in changes
            ]
        )

    # -- overrides ---------------------------------------------------------------------------

    def set_override(
        self, actor: str, cell_id: str, level: str | None, reason: str, expires_at: datetime
    ) -> Any:
        """A manual colour (``level`` None: forced "no warning") until ``expires_at``."""
        now = self.clock.now()
        text = reason.strip()
        if not text:
            raise BadOverride("reason: say why the cell's colour is set by hand")
        if len(text) > REASON_MAX_CHARS:
            raise BadOverride(f"reason: at most {REASON_MAX_CHARS} characters")
        if expires_at.tzinfo is None:
            raise BadOverride("expires_at: give a time zone (e.g. 2026-12-01T18:00:00Z)")
        if expires_at <= now:
            raise BadOverride("expires_at: must be in the future")
        longest = timedelta(hours=self.config.override_max_h)
        if expires_at - now > longest:
            raise BadOverride(
                f"expires_at: an override lasts at most {self.config.override_max_h:g} h"
            )
        if level is not None and level not in {c.value for c in Colour}:
            raise BadOverride(f"level: one of red, orange, yellow or none, not {level!r}")
        details = {"level": level, "reason": text, "expires_at": expires_at.isoformat()}
        with self.audit.change(actor, "cell.warning_override", cell_id, details) as conn:
            row = repository.cell(conn, cell_id, for_update=True)
            if row is None:
                raise CellNotFound(f"no grid cell {cell_id!r}")
            repository.put_override(
                conn,
                {
                    "cell_id": cell_id,
                    "level": level,
                    "reason": text,
                    "set_by": actor,
                    "set_at": now,
                    "expires_at": expires_at.astimezone(UTC),
                },
            )
            change = self._recompute_in(conn, row, now, actor)
        self._publish([change] if change else [])
        return self.cell_row(cell_id)

    def end_override(self, actor: str, cell_id: str, *, missing_ok: bool = False) -> Any:
        now = self.clock.now()
        with self.audit.change(actor, "cell.warning_override_end", cell_id) as conn:
            row = repository.cell(conn, cell_id, for_update=True)
            if row is None:
                raise CellNotFound(f"no grid cell {cell_id!r}")
            if not repository.delete_override(conn, cell_id) and not missing_ok:
                raise NotFound(f"grid cell {cell_id!r} has no warning override")
            change = self._recompute_in(conn, row, now, actor)
        self._publish([change] if change else [])
        return self.cell_row(cell_id)

    def _recompute_in(self, conn: Connection, row: Any, now: datetime, actor: str) -> Change | None:
        incidents, alerts, overrides = self._inputs(conn, [row], now)
        v = evaluate(
            self.config, incidents[row.id], alerts.get(row.id, []), now, overrides.get(row.id)
        )
        if v.key() == _stored_key(row):
            return None
        return self._apply_in(conn, row, v, now, actor)

    # -- reading -----------------------------------------------------------------------------

    def cell_row(self, cell_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.cell(conn, cell_id)
        if row is None:
            raise CellNotFound(f"no grid cell {cell_id!r}")
        return row

    def explain(self, cell_id: str) -> Explanation:
        """The cell's warning and what is behind it, brought up to date first (ages, counts
        and overdue flags are as of now)."""
        self.recompute([cell_id])
        row, v, now = self.verdict(cell_id)
        stored = row.warning_set_at if row.warning_level or row.warning_source else None
        body = v.explanation(now, self.config.explanation_max_incidents)
        return Explanation(row.id, row.site, row.name, _aware(stored), body)

    def history(self, cell_id: str, *, limit: int, before: int | None) -> list[Any]:
        with self.engine.connect() as conn:
            if repository.cell(conn, cell_id) is None:
                raise CellNotFound(f"no grid cell {cell_id!r}")
            return repository.history_page(conn, cell_id, limit=limit, before=before)

    # -- CAP ---------------------------------------------------------------------------------

    @staticmethod
    def _message(cell: Any, rows: list[Any]) -> WarningMessage:
        """The CAP message for the last of an episode's history rows (oldest first)."""
        last = rows[-1]
        episode = last.episode
        expires = None
        override = (last.explanation or {}).get("override")
        if last.source == "override" and override and last.level is not None:
            expires = datetime.fromisoformat(override["expires_at"])
        return WarningMessage(
            cell_id=cell.id,
            cell_name=cell.name,
            geometry=cell.geometry,
            level=last.level,
            source=last.source,
            rule=last.rule,
            reason=last.reason,
            episode=episode,
            sent=_aware(last.ts) or datetime.now(UTC),
            revision=len(rows),
            earlier=tuple(
                (identifier(cell.id, episode, n), _aware(r.ts) or datetime.now(UTC))
                for n, r in enumerate(rows[:-1], start=1)
            ),
            expires=expires,
        )

    def cap_messages(self, site: str | None = None) -> list[WarningMessage]:
        """The current state of every cell showing a colour (the CAP feed)."""
        out: list[WarningMessage] = []
        with self.engine.connect() as conn:
            for cell in repository.warning_cells(conn, site):
                if cell.warning_episode is None:
                    continue
                rows = repository.episode_history(conn, cell.id, cell.warning_episode)
                if rows:
                    out.append(self._message(cell, rows))
        return out

    def cap_message(self, cell_id: str) -> WarningMessage:
        """The cell's current warning, or the Cancel of the episode that ended last."""
        with self.engine.connect() as conn:
            cell = repository.cell(conn, cell_id)
            if cell is None:
                raise CellNotFound(f"no grid cell {cell_id!r}")
            last = repository.last_history(conn, cell_id)
            if last is None or last.episode is None:
                raise NotFound(f"grid cell {cell_id!r} has had no warning")
            rows = repository.episode_history(conn, cell_id, last.episode)
        return self._message(cell, rows)

    # -- what the worker asks ----------------------------------------------------------------

    def changed_since(
        self, incidents_since: datetime, alerts_since: datetime, now: datetime
    ) -> set[str]:
        """Cells to look at again: incidents changed, new located alerts, cells an alert-rate
        rule coloured (their windows decay), lapsed overrides, incidents that became overdue
        or reached a rule's minimum age since ``alerts_since`` (the last pass, less the
        overlap). The full pass every ``full_every_ticks`` is the safety net."""
        with self.engine.connect() as conn:
            cells = repository.changed_incident_cells(conn, incidents_since)
            if self.max_window_min:
                for site in repository.cell_sites(conn):
                    for a in repository.recent_alerts(conn, site, alerts_since):
                        cell_id = self.locator.cell_at(site, a.lon, a.lat, conn)
                        if cell_id is not None:
                            cells.add(cell_id)
            cells.update(repository.cells_coloured_by(conn, self.alert_rules))
            # Time alone makes incidents overdue or old enough for a rule: find those that
            # crossed a threshold since the last pass instead of waiting for the full pass.
            cells.update(repository.cells_crossing_deadlines(conn, alerts_since, now))
            for age_min in self.min_ages_min:
                age = timedelta(minutes=age_min)
                cells.update(repository.cells_crossing_age(conn, alerts_since - age, now - age))
            cells.update(repository.expired_override_cells(conn, now))
        return cells
