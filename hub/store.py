"""The hub's relational store (SQLAlchemy 2 Core): SQLite (WAL) by default, PostgreSQL for
shared multi-replica sites. Alerts are inserted idempotently by message id."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from edge.protocol import Alert, DeviceState, Health, Inbound, PositionBatch, Reply
from edge.validators import utcnow

log = logging.getLogger(__name__)

metadata = MetaData()
TS = DateTime(timezone=True)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("ts", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("lon", Float),
    Column("lat", Float),
    Column("zone", String(64)),
    Column("entity", String(64)),
    Column("payload", JSON, nullable=False),
    Index("alerts_site_ts", "site", "ts"),
    Index("alerts_device_ts", "device", "ts"),
)

positions = Table(
    "positions",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("msg_id", String(36), nullable=False),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("entity_kind", String(16), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("accuracy_m", Float),
    Column("heading_deg", Float),
    Column("speed_mps", Float),
    Column("ts", TS, nullable=False),
    Index("positions_entity_ts", "entity", "ts"),
    Index("positions_ts", "ts"),
)

health = Table(
    "health",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("ts", TS, nullable=False),
    Column("payload", JSON, nullable=False),
    Index("health_device_ts", "device", "ts"),
)

device_state = Table(
    "device_state",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("ts", TS, nullable=False),
    Column("sw_version", String(64)),
    Column("config_version", Integer),
)

replies = Table(
    "replies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(36), nullable=False, index=True),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("ts", TS, nullable=False),
    Column("payload", Text, nullable=False),
)


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
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._dialect = self.engine.dialect.name
        metadata.create_all(self.engine)

    def _insert(self, table: Table) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def write_batch(self, items: Sequence[Inbound]) -> BatchResult:
        """Store one batch in a single transaction; safe to call again with the same items."""
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
                pos_rows.extend(_position_rows(msg))
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
                res = conn.execute(stmt, list(unique.values()))
                new = max(res.rowcount, 0)
                result.alerts_new = new
                result.alerts_duplicate = len(alert_rows) - new
            if pos_rows:
                conn.execute(positions.insert(), pos_rows)
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

    def _upsert_state(self, conn: Connection, msg: DeviceState) -> None:
        row = {
            "site": msg.site,
            "device": msg.device,
            "kind": msg.kind.value,
            "state": msg.state.value,
            "ts": msg.ts,
            "sw_version": msg.sw_version,
            "config_version": msg.config_version,
        }
        stmt = self._insert(device_state)
        update = {
            k: stmt.excluded[k] for k in ("kind", "state", "ts", "sw_version", "config_version")
        }
        # A retained state replayed after a newer one (reconnect races) must not win.
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "device"],
                set_=update,
                where=device_state.c.ts <= stmt.excluded.ts,
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


def _position_rows(msg: PositionBatch) -> list[dict[str, Any]]:
    return [
        {
            "msg_id": msg.id,
            "site": msg.site,
            "device": msg.device,
            "entity": p.entity,
            "entity_kind": p.entity_kind.value,
            "lon": p.lon,
            "lat": p.lat,
            "accuracy_m": p.accuracy_m,
            "heading_deg": p.heading_deg,
            "speed_mps": p.speed_mps,
            "ts": p.ts,
        }
        for p in msg.positions
    ]
