"""Routing inside the service: the clock and the site's zone decide hours and days, unknown
departments are reported (not a crash), the live hook sees every change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.clock import ManualClock
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import IncidentLevel, IncidentSource
from hub.incidents.service import NewIncident, incident_event
from hub.live import Layer
from hub.store import Store
from tests.hub.incidents.support import add_department, make_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIG = IncidentsConfig.model_validate(
    {
        "routing": [
            {"name": "weekend", "when": {"days": ["sat", "sun"]}, "department": "weekend-duty"},
            {
                "name": "night",
                "when": {"hours": {"from": "22:00", "to": "06:00"}},
                "department": "night-duty",
            },
            {"name": "default", "department": "day-office"},
        ]
    }
)


def new() -> NewIncident:
    return NewIncident("s1", IncidentSource.MANUAL, "noise", IncidentLevel.LOW, "Loud music")


def test_the_clock_in_the_sites_zone_routes(store: Store) -> None:
    # Friday 2026-12-04 13:30 UTC = 21:30 in Shanghai.
    clock = ManualClock(datetime(2026, 12, 4, 13, 30, tzinfo=UTC))
    svc = make_service(store, CONFIG, clock, zone=SHANGHAI)
    utc_svc = make_service(store, CONFIG, clock, zone=UTC)
    assert svc.open("op", new()).department_id == "day-office"
    clock.advance(timedelta(minutes=30))  # 22:00 local: night
    assert svc.open("op", new()).department_id == "night-duty"
    assert utc_svc.open("op", new()).department_id == "day-office"  # 14:00 in UTC
    clock.advance(timedelta(hours=2))  # Saturday 00:00 local, still Friday in UTC
    assert svc.open("op", new()).routing_rule == "weekend"
    assert utc_svc.open("op", new()).routing_rule == "default"


def test_unknown_departments_are_warnings(store: Store) -> None:
    svc = make_service(store, CONFIG)
    add_department(store.engine, "day-office", "city_management")
    assert svc.check_departments() == [
        "routing rule 'weekend' names unknown department 'weekend-duty'",
        "routing rule 'night' names unknown department 'night-duty'",
    ]
    decision, cell, warnings = svc.dry_run(
        "s1", "noise", IncidentLevel.LOW, at=datetime(2026, 12, 5, 12, tzinfo=SHANGHAI)
    )
    assert (decision.rule, decision.department, cell) == ("weekend", "weekend-duty", None)
    assert "rule 'weekend' chose unknown department 'weekend-duty'" in warnings


def test_every_change_reaches_the_live_hook(store: Store) -> None:
    seen: list[tuple[Any, str]] = []
    svc = make_service(store, CONFIG, on_change=lambda r, action: seen.append((r, action)))
    row = svc.open("op", new())
    svc.comment("op", row.id, "heard it too")
    svc.close("op", row.id, "", row.version)
    assert [(r.state, action) for r, action in seen] == [
        ("new", "incident.open"), ("new", "incident.comment"), ("closed", "incident.close")]
    event = incident_event(*seen[-1])
    assert event.layer is Layer.INCIDENTS
    assert event.data["number"] == row.number and event.data["state"] == "closed"
    assert event.data["change"] == "incident.close"


def test_a_failing_live_hook_does_not_undo_the_change(store: Store) -> None:
    def broken(row: Any, action: str) -> None:
        raise RuntimeError("no loop")

    svc = make_service(store, CONFIG, on_change=broken)
    row = svc.open("op", new())
    assert svc.get(row.id).state == "new"
