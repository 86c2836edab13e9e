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
    Column("team", String(200), nullable=False, default=""),  # free text (before teams existed)
    Column("team_id", ID),  # teams.id: the responsible team of grid workers
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

# -- Grid management (issue 12): organisation, incidents, timers, notifications -------------
# Departments work one line of work each (public security, sanitation, ...); a grid cell names,
# per line, the department responsible for it, and a team of grid workers with a leader.

departments = Table(
    "departments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("site", ID),  # None: serves every site of this hub
    Column("name", String(200), nullable=False),
    Column("line", String(32), nullable=False, index=True),  # a line of work (workflow config)
    Column("supervisor", ID),  # username: first escalation step
    Column("commander", ID),  # username: second escalation step (None: the site's commanders)
    Column("updated_at", TS, nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("id", ID, primary_key=True),
    Column("site", ID, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("leader", ID),  # username; also a member
    Column("updated_at", TS, nullable=False),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", ID, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("username", ID, ForeignKey("users.username"), primary_key=True, index=True),
)

cell_departments = Table(
    "cell_departments",
    metadata,
    Column("cell_id", ID, ForeignKey("grid_cells.id", ondelete="CASCADE"), primary_key=True),
    Column("line", String(32), primary_key=True),
    Column("department_id", ID, ForeignKey("departments.id"), nullable=False, index=True),
)

# States: new -> assigned -> in_progress -> resolved -> closed; resolved/closed can be
# reopened (hub/incidents/model.py holds the state machine).
incidents = Table(
    "incidents",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7
    Column("number", String(32), nullable=False, unique=True),  # human reference, e.g. I-000123
    Column("site", ID, nullable=False),
    Column("source", String(16), nullable=False),  # alert | report | manual
    Column("category", String(64), nullable=False),
    Column("level", String(16), nullable=False),  # low | medium | high | critical
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("cell_id", ID),  # from the location; None outside every cell
    Column("lon", Float),
    Column("lat", Float),
    Column("department_id", ID),
    Column("routing_rule", String(64)),  # the rule that chose the department
    Column("assignee", ID),  # username
    Column("state", String(16), nullable=False),
    Column("deadline_at", TS),
    Column("escalation_stage", Integer, nullable=False, default=0),  # 0 none, 1 supervisor, 2 cmd
    Column("group_key", String(200)),  # alert grouping: kind/place/window, while open
    Column("alert_count", Integer, nullable=False, default=0),
    Column("first_alert_at", TS),
    Column("last_alert_at", TS),
    Column("opened_by", ID, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("resolved_at", TS),
    Column("closed_at", TS),
    Column("version", Integer, nullable=False, default=1),  # optimistic concurrency
    Index("ix_incidents_state_deadline_at", "state", "deadline_at"),
    Index("ix_incidents_cell_id_state", "cell_id", "state"),
    Index("ix_incidents_group_key_state", "group_key", "state"),
    Index("ix_incidents_site_created_at", "site", "created_at"),
    Index("ix_incidents_department_id_state", "department_id", "state"),
    Index("ix_incidents_updated_at", "updated_at"),  # warnings and live views poll changes
)

incident_events = Table(
    # The incident's timeline: creation, routing, assignment, every transition, comments,
    # linked alerts, reminders and escalations. Audited separately in audit_log.
    "incident_events",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("ts", TS, nullable=False),
    Column("actor", ID, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16)),
    Column("text", Text, nullable=False, default=""),
    Column("details", JSON, nullable=False),
)

incident_alerts = Table(
    "incident_alerts",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "alert_id",
        String(36),
        ForeignKey("alerts.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("linked_at", TS, nullable=False),
)

incident_evidence = Table(
    # Evidence linked by hand (an alert's own snapshot is linked through incident_alerts).
    "incident_evidence",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "evidence_id",
        String(36),
        ForeignKey("evidence.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("linked_at", TS, nullable=False),
)

incident_attachments = Table(
    # Photos, voice notes and files attached to an incident (by field reports or operators);
    # images are re-encoded before they are stored.
    "incident_attachments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        index=True,
    ),
    Column("report_id", String(36), index=True),  # the field report that brought it, if any
    Column("kind", String(16), nullable=False),  # photo | voice | file
    Column("filename", String(200), nullable=False, default=""),
    Column("content_type", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("data", LargeBinary, nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at", TS, nullable=False),
)

incident_timers = Table(
    # Reminders and escalations, due at a time; ``fired_at`` is set in the transaction that
    # performs the timer's effect, so a timer runs exactly once however many hubs sweep.
    "incident_timers",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(32), nullable=False),  # reminder | escalate_supervisor | escalate_...
    Column("due_at", TS, nullable=False),
    Column("fired_at", TS),
    Column("fired_by", String(64)),  # the hub's client id
    Column("cancelled", Boolean, nullable=False, default=False),
    Index("ix_incident_timers_fired_at_due_at", "fired_at", "due_at"),
    Index("uq_incident_timers_incident_id_kind", "incident_id", "kind", unique=True),
)

notifications = Table(
    # A user's inbox: assignments, reminders, escalations. Titles are message-catalogue keys
    # with parameters, rendered in the reader's language.
    "notifications",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("username", ID, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("incident_id", String(36), ForeignKey("incidents.id", ondelete="CASCADE")),
    Column("message_key", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("read_at", TS),
    Index("ix_notifications_username_id", "username", "id"),
)

sequences = Table(
    # Named counters for human reference numbers (incident I-000123, report R-000045): the
    # increment happens in the transaction that uses the number, so replicas never share one.
    "sequences",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# --- warnings (issue 12, item 5): three-colour cell warnings, overrides, history -------------

# The cell's current warning lives on grid_cells (warning_level/reason/set_by/set_at above, read
# by the map); these columns say where it came from and why. ``warning_version`` is bumped by
# every change, compare-and-set, so two hubs recomputing one cell write one history row.
for _column in (
    Column("warning_source", String(16)),  # rules | override; None with no warning
    Column("warning_rule", String(64)),  # the rule that chose the colour
    Column("warning_explanation", JSON),  # hub/warnings/rules.py Verdict.explanation
    Column("warning_key", String(64)),  # digest of what a history row is written for
    Column("warning_episode", String(36)),  # from none to a colour and back: one CAP episode
    Column("warning_version", Integer, nullable=False, server_default="0"),
):
    grid_cells.append_column(_column)

cell_warning_overrides = Table(
    # A manual colour (or a forced "none") with a reason, until it expires or is ended.
    "cell_warning_overrides",
    metadata,
    Column("cell_id", ID, ForeignKey("grid_cells.id", ondelete="CASCADE"), primary_key=True),
    Column("level", String(16)),  # red | orange | yellow | None: no warning, whatever the rules
    Column("reason", String(500), nullable=False),
    Column("set_by", ID, nullable=False),
    Column("set_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False, index=True),
)

cell_warning_history = Table(
    # One row per change of a cell's colour or of what is behind it (rule, incidents, override).
    "cell_warning_history",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("cell_id", ID, ForeignKey("grid_cells.id", ondelete="CASCADE"), nullable=False),
    Column("site", ID, nullable=False),
    Column("ts", TS, nullable=False),
    Column("level", String(16)),  # None: the warning ended
    Column("previous_level", String(16)),
    Column("source", String(16), nullable=False),  # rules | override | none
    Column("rule", String(64)),
    Column("reason", String(500)),
    Column("actor", ID, nullable=False),
    Column("episode", String(36)),
    Column("explanation", JSON, nullable=False),
    Index("ix_cell_warning_history_cell_id_id", "cell_id", "id"),
)

# --- issue 12, deadlines (hub/incidents/deadlines.py) -------------------------------------

incident_deadlines = Table(
    # The policy applied to an incident's deadline: when its clock started (the opening, or the
    # latest reopening) so a re-levelling moves the deadline from the same start; ``running``
    # is False while the incident is resolved or closed, which is how a reopening is recognised.
    "incident_deadlines",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("started_at", TS, nullable=False),
    Column("deadline_at", TS, nullable=False),
    Column("running", Boolean, nullable=False),
)

# --- field reports (issue 12, item 6) ----------------------------------------------------------

field_reports = Table(
    # A report from a grid worker's phone or an Open311 client; it opens one incident. The
    # phone chooses ``client_report_id`` and resends it after a lost connection: one report per
    # (reporter, client_report_id); ``fingerprint`` tells a resend from a different report.
    "field_reports",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7
    Column("number", String(32), nullable=False, unique=True),  # confirmation, e.g. R-000045
    Column("site", ID, nullable=False),
    Column("reporter", ID, nullable=False),  # username
    Column("client_report_id", String(64)),  # None: an Open311 request without a client id
    Column("channel", String(16), nullable=False),  # api | open311
    Column("fingerprint", String(64), nullable=False),  # sha256 of the request's content
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="SET NULL"),
        index=True,
    ),
    Column("category", String(64), nullable=False),
    Column("category_source", String(16), nullable=False),  # reporter | classifier | default
    Column("suggested_category", String(64)),
    Column("suggested_confidence", Float),
    Column("level", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("lon", Float),
    Column("lat", Float),
    Column("location_source", String(16), nullable=False),  # given | photo | none
    Column("address", String(200), nullable=False, default=""),
    Column("photo_count", Integer, nullable=False, default=0),
    Column("has_voice", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Index(
        "uq_field_reports_reporter_client_report_id", "reporter", "client_report_id", unique=True
    ),
    Index("ix_field_reports_reporter_id", "reporter", "id"),
    Index("ix_field_reports_created_at", "created_at"),
)
# -- Incidents (issue 12, item 2): alert grouping ------------------------------------------------

# An incident keeps its group key only while its alert group is live (open, window not closed);
# NULLs never collide, so this makes "one live incident per group" hold across hub replicas.
Index("uq_incidents_group_key", incidents.c.group_key, unique=True)

# --- dispatch (issue 14) ---------------------------------------------------------------------

officers = Table(
    # An officer's duty and the glasses device bound to them (one device per officer).
    "officers",
    metadata,
    Column("username", ID, ForeignKey("users.username", ondelete="CASCADE"), primary_key=True),
    Column("device", ID, ForeignKey("devices.id", ondelete="SET NULL")),
    Column("on_duty", Boolean, nullable=False, default=False),
    Column("since", TS, nullable=False),  # when on_duty last changed
    Column("updated_at", TS, nullable=False),
    Column("updated_by", ID, nullable=False),
    Index("uq_officers_device", "device", unique=True),
)

dispatches = Table(
    # One row per officer asked per incident; ``notify_id`` is the command outbox row (and the
    # Notify's id) that carried it. States: notified -> acknowledged -> en_route -> on_scene ->
    # verified, or rejected | timed_out | cancelled | done.
    "dispatches",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("site", ID, nullable=False),
    Column("officer", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("round", Integer, nullable=False),  # the ring it was asked in (0 first)
    Column("action", String(16), nullable=False),  # attend | verify | assist | observe
    Column("state", String(16), nullable=False),
    Column("distance_m", Float),
    Column("notify_id", String(36), nullable=False, unique=True),
    Column("notified_at", TS, nullable=False),
    Column("respond_by", TS, nullable=False),
    Column("delivered_at", TS),  # the device's Reply to the Notify, recorded by the outbox
    Column("last_answer", String(16)),
    Column("answered_at", TS),
    Column("alert_id", String(36)),  # the alert the Notify was about
    Column("cancel_reason", String(500)),
    Column("created_by", ID, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_dispatches_incident_id_round", "incident_id", "round"),
    Index("ix_dispatches_officer_state", "officer", "state"),
    Index("ix_dispatches_delivered_at", "delivered_at"),
)

dispatch_rounds = Table(
    # A ring's time to answer. ``fired_at`` is set by the one hub that claims it (conditional
    # UPDATE), in the transaction that widens or tells the commander: a round fires once
    # however many hubs sweep; (incident, round) is unique, so no round is asked twice.
    "dispatch_rounds",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("round", Integer, nullable=False),
    Column("due_at", TS, nullable=False),
    Column("fired_at", TS),
    Column("fired_by", String(64)),  # the hub's client id
    Column("cancelled", Boolean, nullable=False, default=False),
    Index("ix_dispatch_rounds_fired_at_due_at", "fired_at", "due_at"),
    Index("uq_dispatch_rounds_incident_id_round", "incident_id", "round", unique=True),
)

dispatch_answers = Table(
    # Every officer answer received (MQTT DispatchAnswer or the phone's HTTP answer); the
    # message id is the key, so a replay is stored once and changes nothing. ``outcome`` is
    # set by the hub that processes it: accepted, or refused with ``reason``.
    "dispatch_answers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("site", ID, nullable=False),
    Column("device", ID),  # None: answered over HTTP
    Column("dispatch_id", String(36), nullable=False, index=True),
    Column("notify_id", String(36)),
    Column("officer", ID, nullable=False),
    Column("answer", String(16), nullable=False),
    Column("ts", TS, nullable=False),
    Column("note", String(500), nullable=False, default=""),
    Column("lon", Float),
    Column("lat", Float),
    Column("received_at", TS, nullable=False),
    Column("outcome", String(16)),  # None until processed | accepted | refused
    Column("reason", String(64)),
    Index("ix_dispatch_answers_outcome", "outcome"),
)

# --- watchlist bundles (issue 15, item 3) -----------------------------------------------------

bundle_state = Table(
    # One row (id 1, inserted by the migration): the hub-wide bundle version in force. A new
    # version is claimed by locking this row in the transaction that pushes it, so two hub
    # replicas never issue one number twice, and the second of two replicas reacting to one
    # change finds the digest already current and issues nothing.
    "bundle_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),  # 0: no bundle issued yet
    Column("digest", String(64)),  # sha256 of the version's (entry id, expiry) list
    Column("entries", Integer, nullable=False),
    Column("issued_at", TS),
    Column("expires_at", TS),
    Column("issued_by", ID),  # the hub's client id
)

bundle_versions = Table(
    # Every version issued (what changed is in the audit log: entry ids only, never embeddings).
    "bundle_versions",
    metadata,
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("issued_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("reason", String(32), nullable=False),  # change | expiry | refresh
    Column("issued_by", ID, nullable=False),
)

bundle_devices = Table(
    # A face-matching device's bundle key (from its DeviceState, bound to the authenticated
    # device id) and where its bundle stands: pushed, applied (its Reply), reported (its state).
    "bundle_devices",
    metadata,
    Column("device", ID, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("site", ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key_b64", String(44)),
    Column("key_registered_at", TS),
    Column("key_changed_at", TS),
    Column("pushed_key_b64", String(44)),  # the key the pushed bundle was sealed for
    Column("version_pushed", BigInteger),
    Column("pushed_at", TS),
    Column("push_command_id", String(36)),
    Column("push_entries", Integer),
    Column("version_applied", BigInteger),
    Column("applied_at", TS),
    Column("version_reported", BigInteger),  # DeviceState.watchlist_version
    Column("reported_at", TS),
    Column("failed_version", BigInteger),  # a version that could not be sent (too large)
    Column("last_error", String(500)),
    Column("last_error_at", TS),
    Column("push_parts", Integer),  # envelopes the pushed version was sealed as (1: whole)
    Column("push_set", String(64)),  # that sealing's set_sha256 (None: one envelope)
    Column("parts_acked", Integer),  # of them answered ok so far
)

bundle_pushes = Table(
    # One row per sealed envelope sent (its id is the command outbox row's and the Reply's
    # request_id); a Reply counts only from the device the envelope was sealed for.
    "bundle_pushes",
    metadata,
    Column("command_id", String(36), primary_key=True),
    Column("device", ID, nullable=False, index=True),
    Column("version", BigInteger, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("pushed_at", TS, nullable=False),
    Column("outcome", String(16)),  # None until answered | received (a part) | applied | refused
    Column("reason", String(64)),
    Column("answered_at", TS),
    Column("part", Integer),  # of a bundle in parts: this envelope's index (None: whole)
    Column("parts", Integer),
    Column("set_sha256", String(64)),
)

# --- watchlists (issue 15) -------------------------------------------------------------------

watchlist_entries = Table(
    # One governed entry: who proposed it, why, on what legal basis, who approved it, until
    # when. States: pending -> active | refused; active -> revoked | expired. Only active rows
    # before ``expires_at`` go into bundles. ``embedding`` is float32 bytes of ``dim`` values.
    "watchlist_entries",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7
    Column("label", String(200), nullable=False),
    Column("category", ID, nullable=False),
    Column("reason", String(1000), nullable=False),
    Column("legal_basis", String(500), nullable=False),
    Column("status", String(16), nullable=False),
    Column("enrolled_by", ID, nullable=False),
    Column("enrolled_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("approved_by", ID),
    Column("approved_at", TS),
    Column("refused_by", ID),
    Column("refused_at", TS),
    Column("refuse_reason", String(1000)),
    Column("revoked_by", ID),
    Column("revoked_at", TS),
    Column("revoke_reason", String(1000)),
    Column("expired_at", TS),  # when the sweeper marked it (``expires_at`` is when it expired)
    Column("model", String(64), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("quality", JSON, nullable=False),
    Index("ix_watchlist_entries_status_expires_at", "status", "expires_at"),
)

watchlist_photos = Table(
    # The enrolment photo, AES-256-GCM encrypted (the entry id is the associated data, so a
    # ciphertext moved to another entry does not open); ``key_id`` names the key file's key.
    "watchlist_photos",
    metadata,
    Column(
        "entry_id",
        String(36),
        ForeignKey("watchlist_entries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key_id", String(32), nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("content_type", String(32), nullable=False),
)

face_crops = Table(
    # The face crop a face_match alert carried (re-encoded like evidence, hub/snapshots.py),
    # written in the ingest transaction that stores the alert; never inside the alert payload.
    # Deleted early for rejected or expired matches (hub/matches), else with the evidence.
    "face_crops",
    metadata,
    Column(
        "alert_id",
        String(36),
        ForeignKey("alerts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("source_sha256", String(64), nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("size_bytes", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False, index=True),
)

matches = Table(
    # A face_match alert as a *possible* match until humans decide it: pending -> confirmed
    # (an incident opened, ``incident_id``) | rejected | expired. No foreign key to the alert:
    # the match record (who decided what) outlives the alert's retention.
    "matches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("alert_id", String(36), nullable=False, unique=True),
    Column("site", ID, nullable=False),
    Column("device", ID, nullable=False),
    Column("entry_id", String(64), nullable=False, index=True),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("bundle_version", Integer, nullable=False),
    Column("backend", String(64), nullable=False),
    Column("frames_matched", Integer, nullable=False),
    Column("frames_seen", Integer, nullable=False),
    Column("lon", Float),
    Column("lat", Float),
    Column("seen_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reviews_needed", Integer, nullable=False),
    Column("decided_at", TS),
    Column("incident_id", String(36), ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("outcome", String(32)),
    Column("outcome_note", String(500)),
    Column("outcome_by", ID),
    Column("outcome_at", TS),
    Column("crop_deleted_at", TS),
    Index("ix_matches_status_seen_at", "status", "seen_at"),
)

match_reviews = Table(
    # One decision per reviewer per match: the key makes a second one (a replay, a double
    # click, another replica) impossible.
    "match_reviews",
    metadata,
    Column(
        "match_id",
        String(36),
        ForeignKey("matches.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("reviewer", ID, primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("note", String(500), nullable=False, default=""),
    Column("at", TS, nullable=False),
)
