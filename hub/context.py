"""Everything a request handler may use, built once per hub process by :class:`HubService`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from edge.bus import Bus
from edge.protocol import AlertKind
from hub.alerts.service import AlertService
from hub.audit import AuditPaths, AuditTrail
from hub.auth import LoginRateLimiter
from hub.broker_stats import BrokerStats
from hub.bundles.service import BundleService
from hub.bundles.signing import LazySigningKey, key_path
from hub.classify.classifier import ReportClassifier
from hub.clock import Clock, SystemClock
from hub.commands.outbox import CommandOutbox
from hub.commands.service import CommandService
from hub.config import HubConfig
from hub.devices.service import DeviceService
from hub.dispatch.service import DispatchService
from hub.fieldreports.service import FieldReportService
from hub.geo.service import GeoService
from hub.incidents.service import IncidentNotFound, IncidentService, incident_event
from hub.incidents.timers import ACTIONS, Fired, TimerSweeper
from hub.ingest import Ingest
from hub.live import LiveBroadcaster
from hub.mapview.service import MapService
from hub.matches.service import MatchService
from hub.notifications.service import NotificationService
from hub.open311.service import Open311Service
from hub.org.service import OrgService
from hub.positions.service import PositionService
from hub.store import Store
from hub.timeseries import TimeSeriesWriter
from hub.users.service import UserService
from hub.warnings.service import WarningService
from hub.watchlists.photos import KEY_FILE_NAME, PhotoVault
from hub.watchlists.service import WatchlistService
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
    warnings: WarningService = field(init=False)
    notifications: NotificationService = field(init=False)
    timers: TimerSweeper = field(init=False)  # started and stopped by HubService
    fieldreports: FieldReportService = field(init=False)
    open311: Open311Service = field(init=False)
    org: OrgService = field(init=False)
    dispatch: DispatchService = field(init=False)  # its sweeper started and stopped by HubService
    bundles: BundleService = field(init=False)  # its sweeper started and stopped by HubService
    watchlists: WatchlistService = field(init=False)  # its expiry sweeper: HubService
    matches: MatchService = field(init=False)  # its sweeper started and stopped by HubService

    def __post_init__(self) -> None:
        engine = self.store.engine
        self.alerts = AlertService(engine, self.audit, live=self.live)
        self.positions = PositionService(engine)
        self.geo = GeoService(
            engine, self.audit, hub_site=self.config.site, vocabulary=self.config.incidents
        )
        self.users = UserService(engine, self.audit, self.login_limiter)
        self.mapview = MapService(engine, self.config, self.ingest.flood)
        self.commands = CommandService(engine)
        self.incidents = IncidentService(
            engine,
            self.audit,
            self.config.incidents,
            self.clock,
            zone=self.config.zone(),
            on_change=self._incident_changed,
        )
        self.dispatch = DispatchService(
            engine,
            self.audit,
            self.config.dispatch,
            outbox=self.outbox,
            live=self.live,
            clock=self.clock,
            hub_id=self.config.client_id,
            kind_for_category=self._kind_for_category,
            announce_incident=self.incidents.announce,
        )
        self.incidents.in_transaction = self.dispatch.on_incident
        self.matches = MatchService(
            engine,
            self.audit,
            self.config.matches,
            incidents=self.incidents,
            live=self.live,
            clock=self.clock,
        )
        self.warnings = WarningService(
            engine,
            self.audit,
            self.config.warnings,
            vocabulary=self.config.incidents,
            clock=self.clock,
            live=self.live,
        )
        self.notifications = NotificationService(engine, self.audit, self.config.zone(), self.clock)
        self.timers = TimerSweeper(
            engine, self.audit, self.config.incidents, self.clock, hub_id=self.config.client_id
        )
        self.timers.on_fired = self._announce_fired
        self.fieldreports = FieldReportService(
            engine,
            self.audit,
            config=self.config.field_reports,
            vocabulary=self.config.incidents,
            incidents=self.incidents,
            site=self.config.site,
            clock=self.clock,
            classifier=ReportClassifier.load_default(self.config.classify),
        )
        self.open311 = Open311Service(
            engine,
            self.fieldreports,
            config=self.config.field_reports,
            vocabulary=self.config.incidents,
            jurisdiction=self.config.site,
            clock=self.clock,
        )
        self.org = OrgService(
            engine, self.audit, self.config.incidents, hub_site=self.config.site, clock=self.clock
        )
        self.bundles = BundleService(
            engine,
            self.audit,
            self.config.bundles,
            self.outbox,
            LazySigningKey(key_path(self.config)),
            clock=self.clock,
            hub_id=self.config.client_id,
        )
        self.watchlists = WatchlistService(
            engine,
            self.audit,
            self.config.watchlists,
            vault=PhotoVault(self._photo_key_file()),
            clock=self.clock,
        )
        # Approve and revoke re-seal every device's bundle (expiry: the bundles sweeper).
        self.watchlists.on_change.append(self.bundles.wake)

    @property
    def devices(self) -> DeviceService:
        return self.registry

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def _photo_key_file(self) -> Path:
        """The watchlist photo key: configured, else beside the audit keys (the hub's
        secrets directory, outside the database)."""
        configured = self.config.watchlists.photo_key_file
        if configured is not None:
            return configured
        paths = AuditPaths.resolve(
            self.config.audit, self.config.resolved_database_url(), self.config.audit_head_file
        )
        return paths.key_file.parent / KEY_FILE_NAME

    def _incident_changed(self, row: Any, action: str) -> None:
        self.live.publish([incident_event(row, action)])
        self.dispatch.after_incident(row, action)

    def _kind_for_category(self, category: str) -> AlertKind | None:
        """What a Notify about an incident without an alert calls it: the first alert kind
        an alert rule files under the incident's category."""
        for rule in self.config.incidents.alert_rules:
            if rule.category == category:
                return rule.kinds[0]
        return None

    def _announce_fired(self, fired: list[Fired]) -> None:
        """Reminders and escalations this hub fired, on the live map (and through the relay to
        the other replicas' operators): one event per incident, its newest row."""
        actions: dict[str, str] = {}
        for f in fired:  # an escalation says more than a reminder fired with it
            if actions.get(f.incident_id) != "incident.escalate":
                actions[f.incident_id] = ACTIONS[f.kind]
        events = []
        for incident_id, action in actions.items():
            try:
                events.append(incident_event(self.incidents.get(incident_id), action))
            except IncidentNotFound:
                continue  # deleted since: nothing to show
        self.live.publish(events)
