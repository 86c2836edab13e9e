"""The hub's typed configuration (YAML, validated at start; ``--validate-config``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, model_validator

from edge.bus import BusConfig
from edge.config import StrictModel
from edge.validators import SegmentId
from hub.broker import Account
from hub.commands.config import CommandOutboxConfig
from hub.dashboard_config import DashboardConfig
from hub.timeseries import InfluxConfig


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
    ws_queue_max: Annotated[int, Field(ge=10, le=100_000)] = 2000
    dashboard_dir: Path | None = Field(
        default=None, description="built dashboard files; default: the one shipped with the hub"
    )

    @model_validator(mode="after")
    def _paired(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("api.tls_cert_file and api.tls_key_file go together")
        return self


class RetentionConfig(StrictModel):
    """How long each kind of data is kept. None keeps it forever."""

    positions_days: Annotated[float, Field(gt=0)] | None = 30
    health_days: Annotated[float, Field(gt=0)] | None = 30
    replies_days: Annotated[float, Field(gt=0)] | None = 30
    alerts_days: Annotated[float, Field(gt=0)] | None = 365
    run_every_s: Annotated[float, Field(ge=10)] = 3600


class HubConfig(StrictModel):
    site: SegmentId | None = Field(
        default=None, description="only ingest this site; None ingests every site on the broker"
    )
    database_url: Annotated[str, Field(min_length=1)] = "sqlite:////var/lib/gridward/hub.sqlite"
    database_url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GRIDWARD_DATABASE_URL"
    mqtt: BusConfig = Field(default_factory=BusConfig)
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "hub-1"
    ingest_queue_max: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    ingest_batch_max: Annotated[int, Field(ge=1, le=100_000)] = 1000
    accept_unprovisioned: bool = Field(
        default=False,
        description="store messages from devices not in the registry (lab use only)",
    )
    api: ApiConfig = Field(default_factory=ApiConfig)
    broker: BrokerFilesConfig | None = None
    ca_dir: Path | None = None
    audit_head_file: Path | None = None
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

    def resolved_database_url(self) -> str:
        """The URL from the environment (so a PostgreSQL password stays out of files) or config."""
        return os.environ.get(self.database_url_env) or self.database_url
