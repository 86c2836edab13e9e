"""A hub's match, incident and dispatch services on a real store, without broker or HTTP:
face_match alerts stored through the store's own batch path (crop and snapshot re-encoded as
ingest does), officers seeded as rows, one injectable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from edge.alert_details import FaceMatchDetails, build_alert
from edge.protocol import (
    Alert,
    Channel,
    DeviceKind,
    DeviceTopic,
    Evidence,
    Inbound,
    Location,
    Severity,
)
from hub.auth import Principal, Role
from hub.clock import ManualClock
from hub.commands.outbox import CommandOutbox
from hub.dispatch.config import DispatchConfig
from hub.dispatch.service import DispatchService
from hub.incidents.alert_rules import stored_alerts
from hub.incidents.config import IncidentsConfig
from hub.incidents.service import IncidentService
from hub.live import LiveBroadcaster, LiveEvent
from hub.matches.config import MatchesConfig
from hub.matches.service import MatchService
from hub.schema import audit_log, users
from hub.store import Store
from tests.hub.dispatch.support import seed_officers
from tests.support.images import small_jpeg
from tests.support.incident_timers import shared_audit

SITE = "s1"
CAMERA = "cam-1"
LON, LAT = 114.0, 22.5


def face_alert(
    entry_id: str = "entry-1",
    score: float = 0.78,
    *,
    crop: bool = True,
    site: str = SITE,
    device: str = CAMERA,
    at: tuple[float, float] = (LON, LAT),
    **details: Any,
) -> Alert:
    values: dict[str, Any] = {
        "entry_id": entry_id,
        "score": score,
        "bundle_version": 3,
        "threshold": 0.5,
        "frames_matched": 3,
        "frames_seen": 5,
        "backend": "yunet-sface",
        **details,
    }
    return build_alert(
        FaceMatchDetails(**values),
        site=site,
        device=device,
        severity=Severity.HIGH,
        title="possible watchlist match",
        location=Location(lon=at[0], lat=at[1]),
        evidence=Evidence.from_jpeg(small_jpeg(64, 48), 64, 48),
        face_crop=Evidence.from_jpeg(small_jpeg(32, 32), 32, 32) if crop else None,
    )


@dataclass
class Replica:
    store: Store
    clock: ManualClock
    incidents: IncidentService
    dispatch: DispatchService
    matches: MatchService
    events: list[LiveEvent] = field(default_factory=list)

    def ingest(self, *alerts: Alert) -> list[str]:
        """Store the alerts as ingest does and run the after-store hooks; the new ids."""
        items = [
            Inbound(DeviceTopic(SITE, DeviceKind.CAMERA, a.device, Channel.ALERT), a)
            for a in alerts
        ]
        result = self.store.write_batch(items)
        fresh = stored_alerts(items, result.new_alert_ids)
        self.incidents.process_alerts(fresh)
        self.matches.intake_batch([a.id for a in fresh if a.kind == "face_match"])
        return sorted(result.new_alert_ids)

    def match_of(self, alert_id: str) -> dict[str, Any]:
        [found] = [
            m for m in self.matches.page(None, limit=100, after=None) if m["alert_id"] == alert_id
        ]
        return found

    def actions(self, target: str) -> list[tuple[str, str]]:
        return audit_actions(self.store.engine, target)

    def count(self, table: Any, *where: Any) -> int:
        with self.store.engine.connect() as conn:
            stmt = select(func.count()).select_from(table)
            for w in where:
                stmt = stmt.where(w)
            return int(conn.execute(stmt).scalar_one())


def audit_actions(engine: Engine, target: str) -> list[tuple[str, str]]:
    """(actor, action) of every audit entry about ``target``, in order."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action)
            .where(audit_log.c.target == target)
            .order_by(audit_log.c.seq)
        ).all()
    return [(r.actor, r.action) for r in rows]


def replica(
    store: Store,
    audit_dir: Path,
    clock: ManualClock,
    config: MatchesConfig | None = None,
    hub_id: str = "hub-1",
) -> Replica:
    audit = shared_audit(store, audit_dir)
    live = LiveBroadcaster()
    dispatch = DispatchService(
        store.engine,
        audit,
        DispatchConfig(),
        outbox=CommandOutbox(),
        live=live,
        clock=clock,
        hub_id=hub_id,
    )
    incidents = IncidentService(
        store.engine, audit, IncidentsConfig(), clock, on_change=dispatch.after_incident
    )
    incidents.in_transaction = dispatch.on_incident
    matches = MatchService(
        store.engine, audit, config or MatchesConfig(), incidents=incidents, live=live, clock=clock
    )
    r = Replica(store, clock, incidents, dispatch, matches)
    live.relay = r.events.extend
    return r


def seed_people(store: Store, now: datetime, officers_north_m: dict[str, float]) -> None:
    """Reviewers (operators), a commander, and officers with bound glasses near the camera."""
    with store.engine.begin() as conn:
        for name, role in (
            ("rev-a", Role.OPERATOR),
            ("rev-b", Role.OPERATOR),
            ("cmd-1", Role.COMMANDER),
        ):
            conn.execute(
                users.insert().values(
                    username=name,
                    role=role.value,
                    password_hash="!",
                    active=True,
                    created_at=now,
                    display_name=name,
                )
            )
        seed_officers(conn, site=SITE, north_m=officers_north_m, now=now, lon=LON, lat=LAT)


def principal(username: str, role: Role) -> Principal:
    return Principal(username=username, role=role, token_id="t", token_kind="session")
