"""The sweeper inside real hub processes: it runs on its own thread on the hub's injected
clock, shows in worker status, and its timers survive a restart (they live in the database):
a hub stopped before the deadline and a new one started after it escalate exactly once."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from edge.validators import utcnow
from hub.auth import Role
from hub.clock import ManualClock
from hub.config import ApiConfig, AuditConfig, BrokerFilesConfig, HubConfig
from hub.incidents.model import IncidentLevel
from hub.service import HubService
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.hub.test_live_relay import LiveSocket
from tests.support.broker import BrokerHarness
from tests.support.incident_timers import ASSIGNEE, SUPERVISOR, T0, World, seed_people
from tests.support.waiting import wait_until


def clocked_hub(broker: BrokerHarness, site: str, tmp_path: Path, clock: ManualClock) -> HubService:
    config = HubConfig.model_validate(
        {
            "site": site,
            "database_url": f"sqlite:///{tmp_path}/hub.sqlite",
            "mqtt": broker.hub_config(),
            "client_id": f"{site}-hub",
            "api": ApiConfig(port=0),
            "broker": BrokerFilesConfig(
                password_file=broker.layout.password_file, acl_file=broker.layout.acl_file
            ),
            "ca_dir": broker.ca.directory,
            "audit": AuditConfig(directory=tmp_path / "audit"),
            "incidents": {"deadlines": {"sweep_every_s": 0.05}},
        }
    )
    service = HubService(config, broker_reload=broker.proc.reload, clock=clock)
    service.registry.extra_accounts = lambda: list(broker.accounts.values())
    service.start(api=False)
    return service


def world_of(service: HubService, clock: ManualClock) -> World:
    return World(service.store, service.audit, service.config.incidents, clock)


def wait_for_sweeps(service: HubService, n: int) -> None:
    start = service.timers.stats["sweeps"]
    wait_until(lambda: service.timers.stats["sweeps"] >= start + n, message=f"{n} sweeps")


def test_timers_survive_a_restart_and_fire_once(
    broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    first = clocked_hub(broker, site, tmp_path, clock)
    try:
        assert {w.name: w.alive for w in first.worker_status()}["timers"] is True
        seed_people(first.store)
        world = world_of(first, clock)
        row = world.open(level=IncidentLevel.CRITICAL)  # reminder 45 min, supervisor 60, cmd 120
        clock.advance(timedelta(minutes=30))
        wait_for_sweeps(first, 2)
        assert world.notification_count() == 0
    finally:
        first.stop()  # down before the deadline

    later = ManualClock(T0 + timedelta(minutes=70))
    second = clocked_hub(broker, site, tmp_path, later)
    try:
        world = world_of(second, later)
        wait_until(lambda: world.notification_count() == 2, message="reminder and escalation")
        wait_for_sweeps(second, 2)
        assert world.notification_count() == 2
        assert [n.kind for n in world.inbox(ASSIGNEE)] == ["reminder"]
        assert [n.kind for n in world.inbox(SUPERVISOR)] == ["escalate_supervisor"]
        assert world.get(row.id).escalation_stage == 1
    finally:
        second.stop()

    third_clock = ManualClock(later.now())
    third = clocked_hub(broker, site, tmp_path, third_clock)
    try:
        world = world_of(third, third_clock)
        wait_for_sweeps(third, 2)
        assert world.notification_count() == 2  # nothing fires twice after a restart
        assert third.timers.stats["fired"] == 0
        assert len(world.events(row.id, "reminder", "escalated")) == 2
        # The hub's own clock, not the wall clock (hours past T0), decides: stage 2 waits
        # until this hub's clock reaches the deadline + 60 min.
        third_clock.advance(timedelta(minutes=50))
        wait_until(lambda: world.notification_count() == 3, message="the commander's turn")
        assert world.get(row.id).escalation_stage == 2
    finally:
        third.stop()


def test_the_running_hub_reports_its_sweeper(hub: RunningHub) -> None:
    wait_until(lambda: hub.service.timers.stats_snapshot()["sweeps"] >= 1, message="a sweep")
    health = hub.client(None).get("/api/v1/health").json()
    assert health["workers"]["timers"]["alive"] is True
    stats = hub.client(Role.ADMIN).get("/api/v1/stats").json()
    assert stats["timers"]["sweeps"] >= 1
    assert stats["timers"]["failed"] == 0


def test_an_escalation_reaches_every_operators_live_map(
    broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    """The sweeper changes incidents outside any request: what it fires is still announced on
    the live stream (and so through the relay to the other replicas' operators)."""
    hub = start_hub(broker, site, tmp_path, incidents={"deadlines": {"sweep_every_s": 0.05}})
    try:
        with ExitStack() as stack:
            live = LiveSocket(hub, stack)
            seed_people(hub.service.store)
            # opened three hours ago (reminder 45 min, supervisor 60, commander 120): all due
            world = World(hub.service.store, hub.service.audit, hub.service.config.incidents,
                          ManualClock(utcnow() - timedelta(hours=3)), site=site)
            row = world.open(level=IncidentLevel.CRITICAL)
            event = live.until(lambda e: e["layer"] == "incidents" and e["id"] == row.id)
            assert event["change"] == "incident.escalate"
            assert event["number"] == row.number and event["state"] == row.state
        assert hub.service.timers.stats["fired"] == 3
    finally:
        stop_hub(broker, hub)
