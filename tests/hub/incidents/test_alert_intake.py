"""Alerts through the alert rules: which open incidents, grouping by kind, place and window,
idempotency, and that a failure never escapes into ingest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.clock import ManualClock
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import EventKind, IncidentState
from hub.schema import audit_log, incident_alerts, incident_events, incidents
from hub.store import Store
from tests.hub.incidents.support import (
    T0,
    add_alert,
    add_cell,
    add_department,
    make_service,
    name_department,
)

SITE = "s1"


def rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(incidents).order_by(incidents.c.created_at)).all())


def links(store: Store, incident_id: str) -> int:
    with store.engine.connect() as conn:
        stmt = select(func.count()).where(incident_alerts.c.incident_id == incident_id)
        return int(conn.execute(stmt).scalar() or 0)


@pytest.mark.parametrize(
    ("kind", "severity", "category", "level"),
    [
        ("sos", "high", "person_in_distress", "critical"),
        ("intrusion", "medium", "intrusion", "high"),
        ("perimeter_breach", "critical", "intrusion", "high"),
        ("tamper", "low", "device_fault", "medium"),
        ("signal_lost", "info", "device_fault", "medium"),
        ("cloned_device", "high", "device_fault", "high"),
    ],
)
def test_each_default_rule_opens_its_incident(
    store: Store, kind: str, severity: str, category: str, level: str
) -> None:
    svc = make_service(store)
    assert svc.process_alerts([add_alert(store.engine, SITE, kind=kind, severity=severity)]) == 1
    [row] = rows(store)
    assert (row.category, row.level, row.source, row.state) == (category, level, "alert", "new")
    assert row.alert_count == 1
    assert row.opened_by == "system:alert-rules"


@pytest.mark.parametrize(
    ("kind", "severity"),
    [
        ("intrusion", "low"),  # below the intrusion rule's min_severity
        ("battery_low", "high"),  # no rule names it
        ("loitering", "critical"),
        ("geofence_exit", "high"),
        ("face_match", "critical"),  # a possible match: reviewed first (hub/matches)
    ],
)
def test_alerts_matching_no_rule_open_nothing(store: Store, kind: str, severity: str) -> None:
    svc = make_service(store)
    assert svc.process_alerts([add_alert(store.engine, SITE, kind=kind, severity=severity)]) == 0
    assert rows(store) == []
    assert svc.intake.as_dict()["alerts_unmatched"] == 1


def test_200_alerts_in_a_window_make_one_incident_with_200_links(store: Store) -> None:
    svc = make_service(store)
    batch = [add_alert(store.engine, SITE, ts=T0 + timedelta(seconds=2 * i)) for i in range(200)]
    # in two ingest batches, as a burst would arrive
    svc.process_alerts(batch[:120])
    svc.process_alerts(batch[120:])
    [row] = rows(store)
    assert row.alert_count == 200
    assert links(store, row.id) == 200
    assert row.first_alert_at.replace(tzinfo=None) == T0.replace(tzinfo=None)
    assert row.last_alert_at.replace(tzinfo=None) == (T0 + timedelta(seconds=398)).replace(
        tzinfo=None
    )
    with store.engine.connect() as conn:
        linked_events = conn.execute(
            select(incident_events.c.details).where(
                incident_events.c.incident_id == row.id,
                incident_events.c.kind == EventKind.ALERT_LINKED,
            )
        ).all()
    assert sum(e.details["count"] for e in linked_events) == 200


def test_the_window_edge(store: Store) -> None:
    """The window runs from the group's last alert: one just inside joins, one at the edge
    opens a new incident, and the old incident stops grouping."""
    window = 600  # the intrusion rule's default
    svc = make_service(store)
    svc.process_alerts([add_alert(store.engine, SITE, ts=T0)])
    svc.process_alerts([add_alert(store.engine, SITE, ts=T0 + timedelta(seconds=window - 1))])
    assert len(rows(store)) == 1
    last = T0 + timedelta(seconds=window - 1)
    svc.process_alerts([add_alert(store.engine, SITE, ts=last + timedelta(seconds=window))])
    first, second = rows(store)
    assert first.alert_count == 2 and first.group_key is None
    assert second.alert_count == 1 and second.group_key is not None
    assert first.state == second.state == IncidentState.NEW


def test_the_window_edge_inside_one_batch(store: Store) -> None:
    svc = make_service(store)
    svc.process_alerts(
        [
            add_alert(store.engine, SITE, ts=T0),
            add_alert(store.engine, SITE, ts=T0 + timedelta(seconds=300)),
            add_alert(store.engine, SITE, ts=T0 + timedelta(seconds=900)),  # 600 after the last
            add_alert(store.engine, SITE, ts=T0 + timedelta(seconds=901)),
        ]
    )
    assert [r.alert_count for r in rows(store)] == [2, 2]


def test_place_kind_and_site_separate_groups(store: Store) -> None:
    add_cell(store.engine, SITE, "c1", 114.0, 22.5)
    add_cell(store.engine, SITE, "c2", 114.1, 22.5)
    svc = make_service(store)
    svc.process_alerts(
        [
            add_alert(store.engine, SITE, device="cam-1", lon=114.005, lat=22.505),
            add_alert(store.engine, SITE, device="cam-2", lon=114.006, lat=22.506),  # same cell
            add_alert(store.engine, SITE, device="cam-3", lon=114.105, lat=22.505),  # c2
            add_alert(store.engine, SITE, kind="perimeter_breach", lon=114.005, lat=22.505),
            add_alert(store.engine, "s2", device="cam-1", lon=114.005, lat=22.505),
            add_alert(store.engine, SITE, device="cam-9"),  # no location: by its device
        ]
    )
    got = sorted((r.site, r.cell_id or "-", r.alert_count) for r in rows(store))
    assert got == [
        ("s1", "-", 1),
        ("s1", "c1", 1),  # perimeter_breach: another kind
        ("s1", "c1", 2),
        ("s1", "c2", 1),
        ("s2", "-", 1),  # s2 has no cells
    ]


def test_zone_and_device_places(store: Store) -> None:
    cfg = IncidentsConfig.model_validate(
        {
            "alert_rules": [
                {
                    "name": "z",
                    "kinds": ["loitering"],
                    "category": "public_order",
                    "level": "low",
                    "place": "zone",
                },
                {
                    "name": "d",
                    "kinds": ["tamper"],
                    "category": "device_fault",
                    "level": "low",
                    "place": "device",
                },
            ]
        }
    )
    svc = make_service(store, cfg)
    svc.process_alerts(
        [
            add_alert(store.engine, SITE, kind="loitering", device="a", zone="gate"),
            add_alert(store.engine, SITE, kind="loitering", device="b", zone="gate"),
            add_alert(store.engine, SITE, kind="loitering", device="b", zone="yard"),
            add_alert(store.engine, SITE, kind="tamper", device="a", zone="gate"),
            add_alert(store.engine, SITE, kind="tamper", device="b", zone="gate"),
        ]
    )
    assert sorted((r.category, r.alert_count) for r in rows(store)) == [
        ("device_fault", 1),
        ("device_fault", 1),
        ("public_order", 1),
        ("public_order", 2),
    ]


def test_processing_twice_links_once(store: Store) -> None:
    svc = make_service(store)
    batch = [add_alert(store.engine, SITE, ts=T0 + timedelta(seconds=i)) for i in range(5)]
    assert svc.process_alerts(batch) == 5
    assert svc.process_alerts(batch) == 0
    assert svc.process_alerts(batch[2:3] + batch[:1]) == 0
    [row] = rows(store)
    assert row.alert_count == 5 and links(store, row.id) == 5


def test_a_resolved_incident_stops_grouping(store: Store) -> None:
    clock = ManualClock(T0)
    svc = make_service(store, clock=clock)
    svc.process_alerts([add_alert(store.engine, SITE, ts=T0)])
    [row] = rows(store)
    svc.close("op", row.id, "false alarm", row.version)
    svc.process_alerts([add_alert(store.engine, SITE, ts=T0 + timedelta(seconds=5))])
    assert [r.state for r in rows(store)] == ["closed", "new"]


def test_alert_incidents_are_located_and_routed_and_audited(store: Store) -> None:
    add_cell(store.engine, SITE, "c1", 114.0, 22.5)
    add_department(store.engine, "ps-east", "public_security")
    name_department(store.engine, "c1", "public_security", "ps-east")
    svc = make_service(store)
    svc.process_alerts([add_alert(store.engine, SITE, lon=114.005, lat=22.505)])
    [row] = rows(store)
    assert (row.cell_id, row.department_id, row.routing_rule) == (
        "c1",
        "ps-east",
        "line-public_security",
    )
    with store.engine.connect() as conn:
        audits = conn.execute(select(audit_log).where(audit_log.c.target == row.id)).all()
    assert [a.action for a in audits] == ["incident.open"]
    assert audits[0].details["alerts"] == 1


def test_a_failure_is_counted_and_never_raised(store: Store) -> None:
    svc = make_service(store)
    alert = add_alert(store.engine, SITE)
    store.engine.dispose()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE incident_alerts")  # the store is broken under us
    svc.intake_batch([alert])
    assert svc.intake.as_dict()["errors"] == 1
    assert svc.intake.healthy is False
