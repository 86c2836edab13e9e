"""The incident workflow on a real store: opening (located, routed, audited), every allowed
and refused transition, versions, notifications, links, retention holds, hostile input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub import retention
from hub.clock import ManualClock
from hub.config import RetentionConfig
from hub.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import TRANSITIONS, IncidentLevel, IncidentSource, IncidentState
from hub.incidents.service import (
    IncidentService,
    NewIncident,
    StaleVersion,
    UnknownAssignee,
    UnknownCategory,
)
from hub.schema import alerts, audit_log, evidence, notifications
from hub.store import Store
from tests.hub.incidents.support import (
    T0,
    add_alert,
    add_cell,
    add_department,
    add_user,
    make_service,
    name_department,
)

SITE = "s1"
S = IncidentState


def new(**kw: Any) -> NewIncident:
    values: dict[str, Any] = {
        "site": SITE,
        "source": IncidentSource.MANUAL,
        "category": "garbage",
        "level": IncidentLevel.MEDIUM,
        "title": "Rubbish by the gate",
    }
    values.update(kw)
    return NewIncident(**values)


@pytest.fixture
def svc(store: Store) -> IncidentService:
    add_user(store.engine, "ann")
    add_user(store.engine, "bob")
    return make_service(store)


def audits(store: Store, target: str) -> list[str]:
    with store.engine.connect() as conn:
        stmt = select(audit_log.c.action).where(audit_log.c.target == target)
        return [r.action for r in conn.execute(stmt.order_by(audit_log.c.seq)).all()]


def test_open_locates_routes_and_audits(store: Store, svc: IncidentService) -> None:
    add_cell(store.engine, SITE, "c1", 114.0, 22.5)
    add_department(store.engine, "san-1", "sanitation")
    name_department(store.engine, "c1", "sanitation", "san-1")
    row = svc.open("ann", new(lon=114.005, lat=22.505))
    assert (row.cell_id, row.department_id, row.routing_rule) == ("c1", "san-1", "line-sanitation")
    assert row.number.startswith("I-") and row.state == "new" and row.version == 1
    kinds = [e.kind for e in svc.detail(row.id).events]
    assert kinds == ["created", "routed"]
    assert audits(store, row.id) == ["incident.open"]


def test_open_in_keeps_its_contract(store: Store, svc: IncidentService) -> None:
    """The reports helper calls open_in(conn, actor, NewIncident) inside its transaction."""
    with svc.audit.change("worker", "report.submit", "r1") as conn:
        row = svc.open_in(conn, "worker", new(source=IncidentSource.REPORT, cell_id="c9"))
    assert row.source == "report" and row.cell_id == "c9"
    assert svc.get(row.id).id == row.id


def test_open_outside_every_cell_has_no_cell(svc: IncidentService) -> None:
    row = svc.open("ann", new(lon=10.0, lat=10.0))
    assert row.cell_id is None
    assert row.department_id is None and row.routing_rule is None  # unrouted: no cell, no line


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"category": "unicorns"}, UnknownCategory),
        ({"title": ""}, Invalid),
        ({"title": "   "}, Invalid),
        ({"title": "x" * 201}, TooLarge),
        ({"title": "nul\x00byte"}, Invalid),
        ({"description": "d" * 20_001}, TooLarge),
        ({"description": "\x00"}, Invalid),
        ({"lon": 114.0}, Invalid),
        ({"lon": 500.0, "lat": 1.0}, Invalid),
    ],
)
def test_open_refuses_bad_input(
    store: Store, svc: IncidentService, change: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        svc.open("ann", new(**change))
    with store.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.seq)).first() is None  # nothing was written


# --- transitions --------------------------------------------------------------------------------


def drive(svc: IncidentService, state: IncidentState) -> Any:
    """An incident brought to ``state`` by the public operations."""
    row = svc.open("ann", new())
    path = {
        S.NEW: [],
        S.ASSIGNED: [S.ASSIGNED],
        S.IN_PROGRESS: [S.ASSIGNED, S.IN_PROGRESS],
        S.RESOLVED: [S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED],
        S.CLOSED: [S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CLOSED],
    }[state]
    for step in path:
        row = attempt(svc, row, step)
    assert row.state == state
    return row


def attempt(svc: IncidentService, row: Any, target: IncidentState) -> Any:
    """The operation that asks for ``target`` from the row's state."""
    v = row.version
    current = S(row.state)
    if target is S.ASSIGNED and current in (S.RESOLVED, S.CLOSED):
        return svc.reopen("ann", row.id, "not fixed after all", v)
    if target is S.NEW:
        return svc.reopen("ann", row.id, "not fixed after all", v)
    ops: dict[IncidentState, Callable[[], Any]] = {
        S.ASSIGNED: lambda: svc.assign("ann", row.id, "bob", v),
        S.IN_PROGRESS: lambda: svc.start("bob", row.id, v, may_manage=False),
        S.RESOLVED: lambda: svc.resolve("ann", row.id, "swept", v, may_manage=True),
        S.CLOSED: lambda: svc.close("ann", row.id, "", v),
    }
    return ops[target]()


def _reachable(current: IncidentState, target: IncidentState) -> bool:
    """What the operations allow: the state machine, except that a reopen goes to assigned
    when there is an assignee (our path always has one past NEW) and to new otherwise."""
    if target is S.NEW:
        return current in (S.RESOLVED, S.CLOSED) and False  # drive() always has an assignee
    return target in TRANSITIONS[current]


PAIRS = [(a, b) for a in S for b in S]


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition_pair(
    svc: IncidentService, current: IncidentState, target: IncidentState
) -> None:
    row = drive(svc, current)
    if target is S.NEW and current in (S.RESOLVED, S.CLOSED):
        # reopening an incident with an assignee returns it to them, not to new
        after = attempt(svc, row, target)
        assert after.state == S.ASSIGNED and after.version == row.version + 1
        return
    if _reachable(current, target):
        after = attempt(svc, row, target)
        assert after.state == target
        assert after.version == row.version + 1
        return
    with pytest.raises(Conflict):
        attempt(svc, row, target)
    assert svc.get(row.id).version == row.version  # nothing changed


def test_reopen_without_assignee_goes_back_to_new(svc: IncidentService) -> None:
    row = svc.open("ann", new())
    row = svc.close("ann", row.id, "duplicate", row.version)
    row = svc.reopen("ann", row.id, "not a duplicate", row.version)
    assert row.state == "new" and row.closed_at is None


def test_transitions_are_audited_with_the_incident_id(store: Store, svc: IncidentService) -> None:
    row = drive(svc, S.CLOSED)
    svc.reopen("ann", row.id, "again", row.version)
    assert audits(store, row.id) == [
        "incident.open",
        "incident.assign",
        "incident.start",
        "incident.resolve",
        "incident.close",
        "incident.reopen",
    ]
    timeline = svc.detail(row.id).events
    assert [(e.kind, e.from_state, e.to_state) for e in timeline[2:]] == [
        ("assigned", "new", "assigned"),
        ("state", "assigned", "in_progress"),
        ("state", "in_progress", "resolved"),
        ("state", "resolved", "closed"),
        ("state", "closed", "assigned"),
    ]
    assert timeline[-1].text == "again"


def test_a_stale_version_is_a_conflict(svc: IncidentService) -> None:
    row = svc.open("ann", new())
    svc.assign("ann", row.id, "bob", row.version)
    with pytest.raises(StaleVersion):
        svc.assign("ann", row.id, "ann", row.version)  # from the view before bob's assignment
    with pytest.raises(StaleVersion):
        svc.edit("ann", row.id, row.version, level=IncidentLevel.HIGH)
    assert svc.get(row.id).assignee == "bob"


def test_assign_needs_an_active_user_and_notifies_them(store: Store, svc: IncidentService) -> None:
    row = svc.open("ann", new())
    with pytest.raises(UnknownAssignee):
        svc.assign("ann", row.id, "mallory", row.version)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET active = 0 WHERE username = 'bob'")
    with pytest.raises(UnknownAssignee):
        svc.assign("ann", row.id, "bob", row.version)
    add_user(store.engine, "cy")
    svc.assign("ann", row.id, "cy", row.version)
    with store.engine.connect() as conn:
        inbox = conn.execute(select(notifications)).all()
    assert [(n.username, n.kind, n.incident_id) for n in inbox] == [
        ("cy", "incident_assigned", row.id)
    ]
    assert inbox[0].params["number"] == row.number


def test_only_the_assignee_works_an_incident_unless_a_manager(svc: IncidentService) -> None:
    row = svc.assign("ann", svc.open("ann", new()).id, "bob", 1)
    with pytest.raises(Forbidden):
        svc.start("ann", row.id, row.version, may_manage=False)
    row = svc.start("bob", row.id, row.version, may_manage=False)
    with pytest.raises(Forbidden):
        svc.resolve("ann", row.id, "done", row.version, may_manage=False)
    assert svc.resolve("ann", row.id, "done", row.version, may_manage=True).state == "resolved"


def test_resolve_and_reopen_need_text(svc: IncidentService) -> None:
    row = drive(svc, S.IN_PROGRESS)
    with pytest.raises(Invalid):
        svc.resolve("bob", row.id, "  ", row.version, may_manage=True)
    row = svc.resolve("bob", row.id, "fixed", row.version, may_manage=True)
    with pytest.raises(Invalid):
        svc.reopen("ann", row.id, "", row.version)


def test_edit_keeps_the_department_and_calls_the_deadline_hook(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "hub.incidents.deadlines.on_change",
        lambda conn, config, row, now: seen.append((row.category, row.level)),
    )
    svc = make_service(
        store, IncidentsConfig.model_validate({"routing": [{"name": "d", "department": "ops"}]})
    )
    row = svc.open("ann", new())
    row = svc.edit("ann", row.id, row.version, category="sewage", level=IncidentLevel.HIGH)
    assert (row.category, row.level, row.department_id) == ("sewage", "high", "ops")
    assert seen == [("garbage", "medium"), ("sewage", "high")]
    event = svc.detail(row.id).events[-1]
    assert event.details["before"] == {"category": "garbage", "level": "medium"}
    with pytest.raises(UnknownCategory):
        svc.edit("ann", row.id, row.version, category="unicorns")
    with pytest.raises(Invalid):
        svc.edit("ann", row.id, row.version)


def test_comments_and_links_do_not_bump_the_version(store: Store, svc: IncidentService) -> None:
    row = svc.open("ann", new())
    alert = add_alert(store.engine, SITE)
    svc.comment("bob", row.id, "on my way")
    svc.link_alert("ann", row.id, alert.id)
    svc.link_alert("ann", row.id, alert.id)  # twice: once
    after = svc.get(row.id)
    assert after.version == row.version and after.alert_count == 1
    with pytest.raises(NotFound):
        svc.link_alert("ann", row.id, "0190a0a0-0000-7000-8000-000000000000")
    with pytest.raises(NotFound):
        svc.link_evidence("ann", row.id, "nope")
    with pytest.raises(NotFound):
        svc.comment("ann", "0190a0a0-0000-7000-8000-000000000000", "hello?")
    with pytest.raises(TooLarge):
        svc.comment("ann", row.id, "x" * 20_001)
    with pytest.raises(Invalid):
        svc.comment("ann", row.id, "a\x00b")


# --- retention ----------------------------------------------------------------------------------


def test_evidence_is_held_while_open_and_released_after_close(
    store: Store, svc: IncidentService
) -> None:
    clock = ManualClock(T0)
    svc = make_service(store, clock=clock)
    grouped = add_alert(store.engine, SITE, with_evidence=True)
    svc.process_alerts([grouped])
    by_hand = add_alert(store.engine, SITE, kind="battery_low", with_evidence=True)
    unrelated = add_alert(store.engine, SITE, kind="battery_low", with_evidence=True)
    [row] = svc.page(_all(), limit=10, after=None)
    with store.engine.connect() as conn:
        ev_id = conn.execute(
            select(evidence.c.id).where(evidence.c.alert_id == by_hand.id)
        ).scalar_one()
    svc.link_evidence("ann", row.id, ev_id)
    with store.engine.begin() as conn:  # acknowledged alerts are eligible for deletion
        conn.execute(alerts.update().values(status="acknowledged"))
    config = RetentionConfig(evidence_days=1, alerts_days=1)
    later = T0 + timedelta(days=30)

    retention.enforce(store.engine, config, now=later)
    assert _evidence_of(store) == {grouped.id, by_hand.id}  # the unrelated one went
    assert _alerts(store) == {grouped.id, by_hand.id}
    assert unrelated.id not in _alerts(store)

    row = svc.close("ann", row.id, "done", row.version)
    retention.enforce(store.engine, config, now=later)
    assert _evidence_of(store) == set()
    assert _alerts(store) == set()


def _all() -> Any:
    from hub.incidents.repository import IncidentFilter

    return IncidentFilter()


def _evidence_of(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {r.alert_id for r in conn.execute(select(evidence.c.alert_id)).all()}


def _alerts(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {r.id for r in conn.execute(select(alerts.c.id)).all()}
