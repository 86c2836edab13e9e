"""The hub's typed configuration (YAML, validated at start; ``--validate-config``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator

from edge.bus_config import BusConfig
from edge.config import StrictModel
from edge.validators import SegmentId
from hub.broker import Account
from hub.bundles.config import BundlesConfig
from hub.classify.config import ClassifierConfig
from hub.commands.config import CommandOutboxConfig
from hub.dashboard_config import DashboardConfig
from hub.dispatch.config import DispatchConfig
from hub.fieldreports.config import FieldReportsConfig
from hub.flood import FloodConfig
from hub.incidents.config import IncidentsConfig
from hub.matches.config import MatchesConfig
from hub.timeseries import InfluxConfig
from hub.warnings.config import WarningsConfig
from hub.watchlists.config import WatchlistsConfig


class BrokerFilesConfig(StrictModel):
    """Where the hub writes the broker's password file and ACL, and how it makes the broker
    reload them (SIGHUP to the pid in ``pid_file``)."""

    password_file: Path
    acl_file: Path
    pid_file: Path | None = None
    service_accounts_file: Path | None = Field(
        default=None,
        description="lines 'username:<mosquitto hash>' for hub services; they get the hub ACL",
    )

    def service_accounts(self) -> list[Account]:
        if self.service_accounts_file is None:
            return []
        accounts = []
        for n, line in enumerate(self.service_accounts_file.read_text().splitlines(), 1):
            line = line.strip()  # noqa: PLW2901
            if not line or line.startswith("#"):
                continue
            user, sep, digest = line.partition(":")
            if not sep or not digest.startswith("$7$"):
                raise ValueError(
                    f"{self.service_accounts_file}:{n}: expected 'username:$7$...' "
                    "(a mosquitto_passwd hash)"
                )
            accounts.append(Account.hub(user, digest))
        return accounts


# An origin as browsers send it: scheme, host and optional port, no path, no trailing slash.
ORIGIN_PATTERN = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$"


class ApiConfig(StrictModel):
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    session_ttl_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 12 * 3600
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    max_geojson_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 5 * 1024 * 1024
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    login_window_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    login_lockout_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=60.0,
        description="first lockout of a user+address (or address) after login_max_failures; "
        "each further lockout doubles it",
    )
    login_lockout_max_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 3600.0
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed "
        "(addresses or networks); none by default, so a client cannot pick its own address",
    )
    allowed_origins: list[Annotated[str, Field(pattern=ORIGIN_PATTERN)]] = Field(
        default_factory=list,
        description="origins (scheme://host[:port]) besides the hub's own that may send "
        "cookie-authenticated changes and open the live stream, e.g. the public URL behind "
        "a proxy",
    )
    ws_queue_max: Annotated[int, Field(ge=10, le=100_000)] = 2000
    live_relay: bool = Field(
        default=True,
        description="relay this replica's live events to the other hub replicas on the broker "
        "(and show theirs), so every browser sees every change (docs/dashboard.md); a lone hub "
        "may turn it off to save the broker its echo",
    )
    dashboard_dir: Path | None = Field(
        default=None, description="built dashboard files; default: the one shipped with the hub"
    )

    @model_validator(mode="after")
    def _paired(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("api.tls_cert_file and api.tls_key_file go together")
        if self.login_lockout_max_s < self.login_lockout_s:
            raise ValueError("api.login_lockout_max_s must be at least api.login_lockout_s")
        return self


class RetentionConfig(StrictModel):
    """How long each kind of data is kept. None keeps it forever."""

    positions_days: Annotated[float, Field(gt=0)] | None = 30
    health_days: Annotated[float, Field(gt=0)] | None = 30
    replies_days: Annotated[float, Field(gt=0)] | None = 30
    alerts_days: Annotated[float, Field(gt=0)] | None = 365
    evidence_days: Annotated[float, Field(gt=0)] | None = Field(
        default=30,
        description="alert snapshots; a snapshot an open incident links is kept (once "
        "incidents exist: hub.retention.evidence_on_hold)",
    )
    rejected_days: Annotated[float, Field(gt=0)] = Field(
        default=14, description="dead letters (refused device messages)"
    )
    rejected_max_rows: Annotated[int, Field(ge=100, le=10_000_000)] = Field(
        default=10_000, description="dead letters kept at most, newest first"
    )
    commands_days: Annotated[float, Field(gt=0)] | None = Field(
        default=90,
        description="finished hub -> device commands (answered, failed, superseded); a "
        "command still pending or sent is never deleted by age",
    )
    run_every_s: Annotated[float, Field(ge=10)] = 3600


class AuditConfig(StrictModel):
    """Where the audit log's secrets and checkpoints live: outside the database (docs/hub.md).

    Each path defaults to a file in ``directory``; ``directory`` defaults to ``audit/`` beside a
    SQLite database file, else ``/var/lib/gridward/audit``."""

    directory: Path | None = None
    key_file: Path | None = Field(
        default=None, description="HMAC key (hex, mode 0600), created on first start if missing"
    )
    key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = Field(
        default="GRIDWARD_AUDIT_KEY",
        description="environment variable holding the HMAC key (hex); wins over key_file",
    )
    signing_key_file: Path | None = Field(
        default=None, description="Ed25519 checkpoint signing key (PEM, 0600), created if missing"
    )
    public_key_file: Path | None = Field(
        default=None, description="its public key (PEM): back it up away from the hub"
    )
    checkpoint_file: Path | None = Field(
        default=None, description="append-only JSON lines of signed checkpoints"
    )
    write_checkpoints: bool = Field(
        default=True, description="false on extra replicas when one replica writes checkpoints"
    )
    checkpoint_every_records: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    checkpoint_every_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 10.0


class HubConfig(StrictModel):
    site: SegmentId | None = Field(
        default=None, description="only ingest this site; None ingests every site on the broker"
    )
    database_url: Annotated[str, Field(min_length=1)] = "sqlite:////var/lib/gridward/hub.sqlite"
    database_url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GRIDWARD_DATABASE_URL"
    mqtt: BusConfig = Field(default_factory=BusConfig)
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "hub-1"
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default="UTC",
        description="the site's IANA time zone (e.g. Asia/Shanghai): routing rules' hours and "
        "days, printed pages and displayed times use it; everything is stored in UTC",
    )
    ingest_queue_max: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    ingest_batch_max: Annotated[int, Field(ge=1, le=100_000)] = 1000
    ingest_alert_wait_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30,
        description="how long an alert waits for room in a full ingest queue before it is "
        "left unacked for its device to resend (keeps the MQTT loop running)",
    )
    ingest_dead_letters_per_s: Annotated[float, Field(gt=0, le=10_000)] = Field(
        default=20, description="refused messages recorded per second at most (bursts of 10 s)"
    )
    flood: FloodConfig = Field(
        default_factory=FloodConfig,
        description="per-device telemetry rate limit at ingest (docs/hub.md, flooding devices)",
    )
    ingest_max_future_skew_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=120,
        description="positions stamped further ahead of the hub's clock are refused "
        "(ts_in_future): they would stay the latest position until then",
    )
    ingest_max_past_age_s: Annotated[float, Field(gt=0, le=366 * 86_400)] = Field(
        default=86_400,
        description="positions older than this are kept in the history but never become an "
        "entity's latest position nor go to the live map",
    )
    accept_unprovisioned: bool = Field(
        default=False,
        description="store messages from devices not in the registry (lab use only)",
    )
    api: ApiConfig = Field(default_factory=ApiConfig)
    broker: BrokerFilesConfig | None = None
    ca_dir: Path | None = None
    audit: AuditConfig = Field(default_factory=AuditConfig)
    audit_head_file: Path | None = Field(
        default=None,
        description="deprecated: its directory becomes audit.directory (the head file itself "
        "is replaced by signed checkpoints)",
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    influx: InfluxConfig | None = Field(
        default=None, description="also write positions and health to InfluxDB (docs/influxdb.md)"
    )
    commands: CommandOutboxConfig = Field(
        default_factory=CommandOutboxConfig,
        description="hub-to-device command retries (docs/hub.md)",
    )
    ui: DashboardConfig = Field(
        default_factory=DashboardConfig, description="the command dashboard (docs/dashboard.md)"
    )
    incidents: IncidentsConfig = Field(
        default_factory=IncidentsConfig,
        description="lines of work, categories, routing, deadlines, escalation (docs/incidents.md)",
    )
    warnings: WarningsConfig = Field(
        default_factory=WarningsConfig,
        description="three-colour cell warning rules (docs/incidents.md)",
    )
    field_reports: FieldReportsConfig = Field(
        default_factory=FieldReportsConfig,
        description="field report and Open311 intake (docs/incidents.md)",
    )
    dispatch: DispatchConfig = Field(
        default_factory=DispatchConfig,
        description="who is sent to an incident, widening rings, the commander (docs/dispatch.md)",
    )
    bundles: BundlesConfig = Field(
        default_factory=BundlesConfig,
        description="signed, encrypted watchlist bundles pushed to face-matching devices "
        "(docs/watchlists.md, Bundles)",
    )
    matches: MatchesConfig = Field(
        default_factory=MatchesConfig,
        description="review of possible face matches, two reviewers, crop retention "
        "(docs/matches.md)",
    )
    classify: ClassifierConfig = Field(
        default_factory=ClassifierConfig,
        description="the field-report category classifier (docs/incidents-stats.md)",
    )
    watchlists: WatchlistsConfig = Field(
        default_factory=WatchlistsConfig,
        description="watchlist governance, enrolment photos and face quality (docs/watchlists.md)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)"
            ) from err
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _audit_location(self) -> Self:
        if self.audit_head_file is not None and self.audit.directory is not None:
            raise ValueError(
                "audit_head_file is replaced by audit.directory: keep only audit.directory"
            )
        return self

    def resolved_database_url(self) -> str:
        """The URL from the environment (so a PostgreSQL password stays out of files) or config."""
        return os.environ.get(self.database_url_env) or self.database_url
