"""The hub's relational store (SQLAlchemy 2 Core): SQLite (WAL) by default, PostgreSQL for
shared multi-replica sites. Alerts are inserted idempotently by message id."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from edge.protocol import (
    Alert,
    DeviceState,
    DeviceStatus,
    Health,
    Inbound,
    Position,
    PositionBatch,
    Reply,
)
from edge.validators import new_id, utcnow
from hub.schema import alerts, device_state, health, latest_positions, positions, replies

log = logging.getLogger(__name__)
LATEST_COLUMNS = (
    "entity_kind",
    "device",
    "lon",
    "lat",
    "accuracy_m",
    "heading_deg",
    "speed_mps",
    "ts",
)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(slots=True)
class BatchResult:
    """What one committed batch did; ``acks`` maps (site, device) to alert ids now stored."""

    alerts_new: int = 0
    alerts_duplicate: int = 0
    positions: int = 0
    health: int = 0
    states: int = 0
    acks: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so readers never block ingest."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Store:
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._dialect = self.engine.dialect.name
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (idempotent; safe on every start)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if self._dialect == "postgresql":
                # Two hub replicas starting together must not both run the migration.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _insert(self, table: Table) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def write_batch(self, items: Sequence[Inbound]) -> BatchResult:
        """Store one batch in a single transaction; safe to call again with the same items.

        :class:`SightingBatch` items are not stored raw: :mod:`hub.fusion` turns them into
        positions, stored with :meth:`write_fused_positions`.
        """
        result = BatchResult()
        alert_rows: list[dict[str, Any]] = []
        pos_rows: list[dict[str, Any]] = []
        health_rows: list[dict[str, Any]] = []
        reply_rows: list[dict[str, Any]] = []
        states: dict[tuple[str, str], DeviceState] = {}
        now = utcnow()
        for item in items:
            msg = item.message
            if isinstance(msg, Alert):
                alert_rows.append(_alert_row(msg, now))
                result.acks.setdefault((msg.site, msg.device), []).append(msg.id)
            elif isinstance(msg, PositionBatch):
                pos_rows.extend(position_rows(msg))
            elif isinstance(msg, Health):
                health_rows.append(
                    {
                        "id": msg.id,
                        "site": msg.site,
                        "device": msg.device,
                        "ts": msg.ts,
                        "payload": msg.model_dump(mode="json"),
                    }
                )
            elif isinstance(msg, DeviceState):
                key = (msg.site, msg.device)
                if key not in states or states[key].ts <= msg.ts:
                    states[key] = msg
            elif isinstance(msg, Reply):
                reply_rows.append(
                    {
                        "id": msg.id,
                        "request_id": msg.request_id,
                        "site": msg.site,
                        "device": msg.device,
                        "ts": msg.ts,
                        "payload": msg.model_dump_json(),
                    }
                )
        with self.engine.begin() as conn:
            if alert_rows:
                unique = {r["id"]: r for r in alert_rows}
                stmt = self._insert(alerts).on_conflict_do_nothing(index_elements=["id"])
                # RETURNING counts the rows really inserted on every backend (executemany
                # rowcount is -1 on PostgreSQL).
                res = conn.execute(stmt.returning(alerts.c.id), list(unique.values()))
                new = len(res.all())
                result.alerts_new = new
                result.alerts_duplicate = len(alert_rows) - new
            if pos_rows:
                conn.execute(positions.insert(), pos_rows)
                self._upsert_latest(conn, pos_rows)
                result.positions = len(pos_rows)
            if health_rows:
                stmt = self._insert(health).on_conflict_do_nothing(index_elements=["id"])
                conn.execute(stmt, health_rows)
                result.health = len(health_rows)
            if reply_rows:
                stmt = self._insert(replies).on_conflict_do_nothing(index_elements=["id"])
                conn.execute(stmt, reply_rows)
            for state in states.values():
                self._upsert_state(conn, state)
                result.states += 1
        return result

    def write_fused_positions(
        self,
        items: Sequence[tuple[str, Position]],
        *,
        device: str,
        supersede_within_s: float,
    ) -> int:
        """Store positions the hub computed itself (e.g. multi-gateway fusion) as ``device``.

        History always gets them. A band's latest position is replaced when it is not newer,
        or when it is less accurate (or of unknown accuracy) and at most ``supersede_within_s``
        newer: a gateway's coarse guess made a moment later must not hide a better hub fix.
        """
        if not items:
            return 0
        msg_id = new_id()
        rows = [position_row(msg_id, site, device, p) for site, p in items]
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["site"], row["entity"])
            if key not in newest or newest[key]["ts"] <= row["ts"]:
                newest[key] = row
        grace = timedelta(seconds=supersede_within_s)
        t = latest_positions
        with self.engine.begin() as conn:
            conn.execute(positions.insert(), rows)
            current: dict[tuple[str, str], tuple[datetime, float | None]] = {}
            for site in {k[0] for k in newest}:
                ents = [k[1] for k in newest if k[0] == site]
                stmt = select(t.c.entity, t.c.ts, t.c.accuracy_m).where(
                    t.c.site == site, t.c.entity.in_(ents)
                )
                for entity, ts, acc in conn.execute(stmt):
                    current[(site, entity)] = (_aware(ts), acc)
            replace = []
            for key, row in newest.items():
                old = current.get(key)
                if old is None or old[0] <= row["ts"]:
                    replace.append(row)
                    continue
                worse = old[1] is None or (
                    row["accuracy_m"] is not None and old[1] > row["accuracy_m"]
                )
                if worse and old[0] <= row["ts"] + grace:
                    replace.append(row)
            if replace:
                self._upsert_latest(conn, replace, newer_only=False)
        return len(rows)

    def _upsert_latest(
        self, conn: Connection, rows: list[dict[str, Any]], *, newer_only: bool = True
    ) -> None:
        """Make each (site, entity)'s newest row in ``rows`` its latest position; with
        ``newer_only`` an older row never replaces a newer stored one."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["site"], row["entity"])
            if key not in latest or latest[key]["ts"] <= row["ts"]:
                latest[key] = row
        stmt = self._insert(latest_positions)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "entity"],
                set_={c: stmt.excluded[c] for c in LATEST_COLUMNS},
                where=(latest_positions.c.ts <= stmt.excluded.ts) if newer_only else None,
            ),
            [{k: v for k, v in r.items() if k != "msg_id"} for r in latest.values()],
        )

    def _upsert_state(self, conn: Connection, msg: DeviceState) -> None:
        row = {
            "site": msg.site,
            "device": msg.device,
            "kind": msg.kind.value,
            "state": msg.state.value,
            "ts": msg.ts,
            "received_at": utcnow(),
            "sw_version": msg.sw_version,
            "config_version": msg.config_version,
        }
        stmt = self._insert(device_state)
        cols = ("kind", "state", "ts", "received_at", "sw_version", "config_version")
        update = {k: stmt.excluded[k] for k in cols}
        # A retained state replayed after a newer one (reconnect races) must not win. The
        # broker's last will ("offline") always does: it was composed when the connection was
        # made, so its timestamp predates the "online" it overrides.
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "device"],
                set_=update,
                where=(device_state.c.ts <= stmt.excluded.ts)
                | (stmt.excluded.state == DeviceStatus.OFFLINE.value),
            ),
            row,
        )

    # -- reads used by the CLI, tests and the API ------------------------------------------

    def count_alerts(self, site: str | None = None) -> int:
        stmt = select(func.count()).select_from(alerts)
        if site is not None:
            stmt = stmt.where(alerts.c.site == site)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def alert_ids(self, site: str | None = None) -> list[str]:
        stmt = select(alerts.c.id)
        if site is not None:
            stmt = stmt.where(alerts.c.site == site)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def device_states(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(device_state))]

    def close(self) -> None:
        self.engine.dispose()


def _alert_row(msg: Alert, now: datetime) -> dict[str, Any]:
    payload = json.loads(msg.model_dump_json(exclude_none=True))
    return {
        "id": msg.id,
        "site": msg.site,
        "device": msg.device,
        "kind": msg.kind.value,
        "severity": msg.severity.value,
        "ts": msg.ts,
        "received_at": now,
        "lon": msg.location.lon if msg.location else None,
        "lat": msg.location.lat if msg.location else None,
        "zone": msg.zone,
        "entity": msg.entity,
        "payload": payload,
    }


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def position_row(msg_id: str, site: str, device: str, p: Position) -> dict[str, Any]:
    return {
        "msg_id": msg_id,
        "site": site,
        "device": device,
        "entity": p.entity,
        "entity_kind": p.entity_kind.value,
        "lon": p.lon,
        "lat": p.lat,
        "accuracy_m": p.accuracy_m,
        "heading_deg": p.heading_deg,
        "speed_mps": p.speed_mps,
        "ts": p.ts,
    }


def position_rows(msg: PositionBatch) -> list[dict[str, Any]]:
    return [position_row(msg.id, msg.site, msg.device, p) for p in msg.positions]
