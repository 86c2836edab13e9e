"""Broker connection settings and the bus errors, without the MQTT client.

Config models import this module, not :mod:`edge.bus`, so validating a config (``gridward edge
<kind> --validate-config``, the hub's config, the tests) never loads paho.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BusError(Exception):
    """Base class for bus failures the caller can act on."""


class NotConnectedError(BusError):
    """Raised by :meth:`Bus.publish` while the broker connection is down."""


class TlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_hostname: bool = Field(
        default=False, description="only for lab brokers whose certificate lacks the host name"
    )

    @model_validator(mode="after")
    def _paired(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: set both or neither")
        return self


class BusConfig(BaseModel):
    """Broker connection. The password comes from ``password_file`` or the environment variable
    named by ``password_env``, never from a committed config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    transport: Literal["tcp", "websockets"] = "tcp"
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    password_file: Path | None = None
    password_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GRIDWARD_MQTT_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
    tls: TlsConfig | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    session_expiry_s: Annotated[int, Field(ge=0, le=7 * 86400)] = 3600
    reconnect_min_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_inflight: Annotated[int, Field(ge=1, le=65535)] = 100

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self

    def password(self) -> str | None:
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise BusError(
                    f"cannot read MQTT password file {self.password_file}: {err.strerror}"
                ) from err
        return os.environ.get(self.password_env)
