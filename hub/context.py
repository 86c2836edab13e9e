"""Everything a request handler may use, built once per hub process by :class:`HubService`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from edge.bus import Bus
from hub.alerts.service import AlertService
from hub.audit import AuditTrail
from hub.auth import LoginRateLimiter
from hub.broker_stats import BrokerStats
from hub.clock import Clock, SystemClock
from hub.commands.outbox import CommandOutbox
from hub.commands.service import CommandService
from hub.config import HubConfig
from hub.devices.service import DeviceService
from hub.geo.service import GeoService
from hub.incidents.service import IncidentService
from hub.ingest import Ingest
from hub.live import LiveBroadcaster
from hub.mapview.service import MapService
from hub.org.service import OrgService
from hub.positions.service import PositionService
from hub.store import Store
from hub.timeseries import TimeSeriesWriter
from hub.users.service import UserService
from hub.workers import WorkerStatus


@dataclass
class HubContext:
    config: HubConfig
    store: Store
    audit: AuditTrail
    registry: DeviceService
    live: LiveBroadcaster
    login_limiter: LoginRateLimiter
    bus: Bus
    ingest: Ingest
    timeseries: TimeSeriesWriter | None = None
    workers: Callable[[], list[WorkerStatus]] = field(default=list)
    outbox: CommandOutbox = field(default_factory=CommandOutbox)
    broker_stats: BrokerStats | None = None  # the broker's $SYS counters (hub/broker_stats.py)
    clock: Clock = field(default_factory=SystemClock)  # every workflow timer reads this one
    # The area services; built from the fields above when not given.
    alerts: AlertService = field(init=False)
    positions: PositionService = field(init=False)
    geo: GeoService = field(init=False)
    users: UserService = field(init=False)
    mapview: MapService = field(init=False)
    commands: CommandService = field(init=False)
    incidents: IncidentService = field(init=False)
    org: OrgService = field(init=False)

    def __post_init__(self) -> None:
        engine = self.store.engine
        self.alerts = AlertService(engine, self.audit)
        self.positions = PositionService(engine)
        self.geo = GeoService(
            engine, self.audit, hub_site=self.config.site, vocabulary=self.config.incidents
        )
        self.users = UserService(engine, self.audit, self.login_limiter)
        self.mapview = MapService(engine, self.config, self.ingest.flood)
        self.commands = CommandService(engine)
        self.incidents = IncidentService(engine, self.audit, self.config.incidents, self.clock)
        self.org = OrgService(
            engine, self.audit, self.config.incidents, hub_site=self.config.site, clock=self.clock
        )

    @property
    def devices(self) -> DeviceService:
        return self.registry

    @property
    def engine(self) -> Engine:
        return self.store.engine
