"""Everything a request handler may use, built once per hub process by :class:`HubService`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from edge.bus import Bus
from hub.audit import AuditTrail
from hub.auth import LoginRateLimiter
from hub.config import HubConfig
from hub.ingest import Ingest
from hub.live import LiveBroadcaster
from hub.provisioning import DeviceRegistry
from hub.store import Store
from hub.timeseries import TimeSeriesWriter
from hub.workers import WorkerStatus


@dataclass
class HubContext:
    config: HubConfig
    store: Store
    audit: AuditTrail
    registry: DeviceRegistry
    live: LiveBroadcaster
    login_limiter: LoginRateLimiter
    bus: Bus
    ingest: Ingest
    timeseries: TimeSeriesWriter | None = None
    workers: Callable[[], list[WorkerStatus]] = field(default=list)

    @property
    def engine(self) -> Engine:
        return self.store.engine
