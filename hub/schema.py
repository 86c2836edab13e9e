"""Every table of the hub's relational store, in one place (SQLAlchemy 2 Core).

Alembic migrations in ``hub/migrations`` create and evolve these tables; the tests check that a
migrated database matches this metadata. Coordinates are WGS84 lon/lat; times are UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
TS = DateTime(timezone=True)
ID = String(64)
SEQ = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only

sites = Table(
    "sites",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("ref_lon", Float),
    Column("ref_lat", Float),
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("created_at", TS, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    # Device ids are broker usernames, so they are unique across sites.
    Column("id", ID, primary_key=True),
    Column("site", ID, nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("status", String(16), nullable=False, default="active"),  # active | retired
    Column("lon", Float),  # where it is mounted (WGS84), set by the installer
    Column("lat", Float),
    Column("mqtt_password_hash", String(256)),
    Column("cert_serial", String(64)),
    Column("created_at", TS, nullable=False),
    Column("created_by", ID),
    Column("retired_at", TS),
)

device_state = Table(
    "device_state",
    metadata,
    Column("site", ID, primary_key=True),
    Column("device", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("ts", TS, nullable=False),
    Column("received_at", TS),
    Column("sw_version", String(64)),
    Column("config_version", Integer),
)

health = Table(
    "health",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("ts", TS, nullable=False),
    Column("payload", JSON, nullable=False),
    Index("ix_health_device_ts", "device", "ts"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("ts", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("lon", Float),
    Column("lat", Float),
    Column("zone", ID),
    Column("entity", ID),
    Column("status", String(16), nullable=False, default="new"),  # new | acknowledged
    Column("acknowledged_by", ID),
    Column("acknowledged_at", TS),
    Column("payload", JSON, nullable=False),
    Index("ix_alerts_site_ts", "site", "ts"),
    Index("ix_alerts_device_ts", "device", "ts"),
)

alert_notes = Table(
    "alert_notes",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column(
        "alert_id",
        String(36),
        ForeignKey("alerts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("author", ID, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", TS, nullable=False),
)

positions = Table(
    "positions",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("msg_id", String(36), nullable=False),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("entity", ID, nullable=False),
    Column("entity_kind", String(16), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("accuracy_m", Float),
    Column("heading_deg", Float),
    Column("speed_mps", Float),
    Column("ts", TS, nullable=False),
    Index("ix_positions_entity_ts", "entity", "ts"),
    Index("ix_positions_ts", "ts"),
)

latest_positions = Table(
    "latest_positions",
    metadata,
    Column("site", ID, primary_key=True),
    Column("entity", ID, primary_key=True),
    Column("entity_kind", String(16), nullable=False),
    Column("device", ID, nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("accuracy_m", Float),
    Column("heading_deg", Float),
    Column("speed_mps", Float),
    Column("ts", TS, nullable=False),
)

# Who may report an entity's position (hub/ownership.py): its first accepted reporter.
entity_owners = Table(
    "entity_owners",
    metadata,
    Column("site", ID, primary_key=True),
    Column("entity", ID, primary_key=True),
    Column("entity_kind", String(16), nullable=False),
    Column("device", ID, nullable=False),
    Column("claimed_at", TS, nullable=False),
)

replies = Table(
    "replies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(36), nullable=False, index=True),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("ts", TS, nullable=False),
    Column("payload", Text, nullable=False),
)

zones = Table(
    "zones",
    metadata,
    Column("id", ID, primary_key=True),
    Column("site", ID, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("geometry", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", ID),
)

grid_cells = Table(
    "grid_cells",
    metadata,
    Column("id", ID, primary_key=True),
    Column("site", ID, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("team", String(200), nullable=False, default=""),
    Column("geometry", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("warning_level", String(16)),  # red | orange | yellow | None
    Column("warning_reason", String(500)),
    Column("warning_set_by", ID),
    Column("warning_set_at", TS),
    Column("updated_at", TS, nullable=False),
)

config_pushes = Table(
    "config_pushes",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("device", ID, ForeignKey("devices.id"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("message_id", String(36)),  # the ConfigPush id; the device's Reply cites it
    Column("config", JSON, nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at", TS, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("username", ID, primary_key=True),
    Column("display_name", String(200), nullable=False, default=""),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", ID, ForeignKey("users.username"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # session | api
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS),
    Column("last_used_at", TS),
    Column("revoked", Boolean, nullable=False, default=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=False),
    Column("ts", TS, nullable=False),
    Column("actor", ID, nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # "hmac-sha256" (keyed), or "sha256" for records written before the audit key existed.
    Column("chain", String(16), nullable=False, server_default="sha256"),
    Index("ix_audit_log_actor_ts", "actor", "ts"),
    Index("ix_audit_log_action_seq", "action", "seq"),
)

pois = Table(
    "pois",
    metadata,
    Column("id", ID, primary_key=True),
    Column("site", ID, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
)

rejected_messages = Table(
    # Dead letters: device input the hub refused (decode, gate or store). Bounded by
    # retention (age and row count) so a flood of garbage cannot fill the disk.
    "rejected_messages",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("received_at", TS, nullable=False, index=True),
    Column("topic", String(256), nullable=False),
    Column("site", ID),
    Column("device", ID),
    Column("channel", String(16)),
    Column("message_id", String(36)),
    Column("reason", String(64), nullable=False),
    Column("error", String(500), nullable=False, default=""),
    Column("payload_bytes", Integer, nullable=False),
    Column("payload_head", LargeBinary, nullable=False),
    Index("ix_rejected_messages_device_id", "device", "id"),
    Index("ix_rejected_messages_reason_id", "reason", "id"),
)

evidence = Table(
    # Snapshots that came with alerts, kept apart from the alert row so that listing alerts
    # never reads image bytes and retention can expire them on their own schedule.
    "evidence",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "alert_id",
        String(36),
        ForeignKey("alerts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("size_bytes", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False, index=True),
)

# Hub -> device commands (config pushes today; watchlist bundles and officer notifications
# next), written in the transaction of the change that causes them and published after commit
# by hub/commands/publisher.py. ``id`` is the message id the device's Reply cites.
command_outbox = Table(
    "command_outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the encoded message, published as is
    Column("qos", Integer, nullable=False),
    Column("retain", Boolean, nullable=False),
    # pending | sent | answered | failed | superseded
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", ID, nullable=False),
    Column("sent_at", TS),
    Column("answered_at", TS),
    Column("answer_ok", Boolean),
    Column("answer_error", String(500)),
    Column("last_error", String(500)),  # why the last attempt or the command failed
    Index("ix_command_outbox_state_next_attempt_at", "state", "next_attempt_at"),
)
