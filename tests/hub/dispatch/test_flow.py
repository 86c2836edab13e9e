"""The whole loop on a real hub and broker: alert -> incident -> dispatch -> Notify on the
glasses' topic -> Reply (receipt) -> acknowledge -> on my way -> arrived -> resolved through
the task route, every step audited."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from edge.protocol import DeviceStatus, Evidence, ExpectedAction, OfficerAnswer
from hub.auth import Role
from hub.schema import audit_log
from tests.hub.conftest import JPEG, RunningHub
from tests.hub.dispatch.conftest import District, offset
from tests.support.waiting import wait_until


def test_alert_to_resolved_through_the_glasses(module_hub: RunningHub, district: District) -> None:
    near = district.officer(100)
    far = district.officer(5000)  # outside ring 0: not asked while near answers
    cam = district.camera()
    alert = district.alert(cam, 0)
    incident_id = district.incident_of(alert.id)

    notify = near.wait_notify()
    assert notify.incident_id == incident_id
    assert notify.action is ExpectedAction.ATTEND
    assert notify.alert_id == alert.id
    assert notify.respond_by is not None
    assert notify.location is not None
    [dispatch] = district.dispatches(incident_id)
    assert dispatch["officer"] == near.officer
    assert dispatch["state"] == "notified"
    assert dispatch["notify_id"] == notify.id
    assert 80 < dispatch["distance_m"] < 120
    assert not far.notifies

    near.receipt(notify)
    wait_until(lambda: district.dispatches(incident_id)[0]["delivered_at"] is not None)

    officer = district.client(Role.OFFICER, username=near.officer)
    mine = officer.get("/api/v1/dispatches/mine").json()
    assert [m["id"] for m in mine] == [dispatch["id"]]
    assert mine[0]["incident_number"] == notify.incident_number
    assert mine[0]["severity"] == "high"

    near.answer(notify, OfficerAnswer.ACKNOWLEDGE)
    wait_until(lambda: district.dispatches(incident_id)[0]["state"] == "acknowledged")
    admin = district.client()
    incident = admin.get(f"/api/v1/incidents/{incident_id}").json()
    assert incident["assignee"] == near.officer
    assert incident["state"] == "assigned"

    near.answer(notify, OfficerAnswer.ON_MY_WAY)
    wait_until(lambda: district.dispatches(incident_id)[0]["state"] == "en_route")
    assert admin.get(f"/api/v1/incidents/{incident_id}").json()["state"] == "in_progress"
    # Busy on this incident: the commanders' list says so.
    assert district.officer_view(near.officer)["availability"] == "busy"  # type: ignore[index]

    near.answer(notify, OfficerAnswer.ARRIVED, note="on scene")
    wait_until(lambda: district.dispatches(incident_id)[0]["state"] == "on_scene")

    task = officer.get(f"/api/v1/tasks/{incident_id}").json()
    res = officer.post(
        f"/api/v1/tasks/{incident_id}/done", json={"version": task["version"], "note": "handled"}
    )
    assert res.status_code == 200, res.text
    [final] = district.dispatches(incident_id)
    assert final["state"] == "done"
    # Resolved: the hub takes the dispatch back from the glasses' HUD.
    wait_until(lambda: any(n.withdraws == notify.id for n in near.notifies))
    assert officer.get("/api/v1/dispatches/mine").json() == []
    assert district.officer_view(near.officer)["availability"] == "available"  # type: ignore[index]

    with district.hub.service.store.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action).where(audit_log.c.target == incident_id)
        ).all()
    actions = [(r.actor, r.action) for r in rows]
    assert ("system:dispatch", "dispatch.notify") in actions
    answers = [a for a in actions if a == (near.officer, "dispatch.answer")]
    assert len(answers) == 3
    assert (near.officer, "incident.assign") in actions
    assert (near.officer, "incident.start") in actions
    assert (near.officer, "incident.resolve") in actions


def _sweep_after(district: District, incident_id: str, seconds: float) -> int:
    """Run one dispatch sweep as if ``seconds`` had passed (the hub's own sweeper runs on
    real time meanwhile and finds nothing due); how many of the incident's rounds it fired
    (each fired round widens, whether or not anybody is left to ask).
    Counted on the incident, not from the sweep's total: the module's hub may hold rounds
    another test left due, and the sweep fires those too."""
    service = district.hub.service

    def fired() -> int:
        timeline = district.client().get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
        return sum(e["kind"] == "dispatch" and e["details"].get("change") == "widened"
                   for e in timeline)  # fmt: skip

    before = fired()
    service.ctx.dispatch.sweep(service.clock.now() + timedelta(seconds=seconds))
    return fired() - before


class LiveDispatch:
    """The commander's live stream, dispatch layer only: every event received, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    def changes(self, incident_id: str, until: str) -> list[str]:
        """The changes seen for the incident, reading until ``until`` arrives."""

        def seen() -> list[str]:
            return [e["change"] for e in self.events if e["incident_id"] == incident_id]

        while until not in seen():
            frame = json.loads(self.ws.recv(timeout=10))
            batch = frame["events"] if frame["layer"] == "batch" else [frame]
            self.events.extend(e for e in batch if e["layer"] == "dispatch")
        return seen()


def test_nobody_acknowledges_widening_then_the_commander(
    module_hub: RunningHub, district: District
) -> None:
    token = district.client(Role.COMMANDER).headers["Authorization"].split()[1]
    url = f"ws://127.0.0.1:{module_hub.port}/api/v1/live?token={token}&layers=dispatch"
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=5))["layers"] == ["dispatch"]
        _widening_then_the_commander(district, LiveDispatch(ws))


def _widening_then_the_commander(district: District, live: LiveDispatch) -> None:
    # Rounds an earlier test of this module left due would widen to this test's officers
    # once its sweeps run: fire them now, while nobody is on duty to be asked.
    service = district.hub.service
    for _ in range(10):
        if not service.ctx.dispatch.sweep(service.clock.now() + timedelta(days=1)):
            break
    near = district.officer(100)
    mid = district.officer(1500)  # ring 1
    district.officer(1200, on_duty=False)  # never asked: off duty
    incident_id = district.incident_of(district.alert(district.camera(), 0).id)
    first = near.wait_notify()
    assert [d["officer"] for d in district.dispatches(incident_id)] == [near.officer]

    assert _sweep_after(district, incident_id, 61) == 1
    second = mid.wait_notify()
    assert second.dispatch_id != first.dispatch_id and second.incident_id == incident_id
    states = {d["officer"]: (d["state"], d["round"]) for d in district.dispatches(incident_id)}
    assert states == {near.officer: ("timed_out", 0), mid.officer: ("notified", 1)}
    assert _sweep_after(district, incident_id, 61) == 0  # round 0 is fired; round 1 not due yet

    # Round 1 runs out too; by then every fix is stale: nobody left, the commander is told.
    assert _sweep_after(district, incident_id, 125) == 1
    states = {d["officer"]: d["state"] for d in district.dispatches(incident_id)}
    assert states == {near.officer: "timed_out", mid.officer: "timed_out"}
    commander = district.client(Role.COMMANDER)
    inbox = commander.get("/api/v1/notifications").json()["items"]
    told = [n for n in inbox if n.get("incident_id") == incident_id]
    assert [n["message_key"] for n in told] == ["dispatch.unanswered"]
    timeline = district.client().get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    changes = [e["details"].get("change") for e in timeline if e["kind"] == "dispatch"]
    assert changes == ["notified", "widened", "notified", "widened", "unanswered"]
    assert ("system:dispatch", "dispatch.unanswered") in district.audit(incident_id)
    assert live.changes(incident_id, until="unanswered") == [
        "notified",
        "widened",
        "notified",
        "widened",
        "unanswered",
    ]
    ours = [e for e in live.events if e["incident_id"] == incident_id]
    told_live = [e for e in ours if e["change"] == "unanswered"]
    assert told_live[0]["dispatch"] is None and told_live[0]["site"] == district.hub.site
    widened = [e["dispatch"]["officer"] for e in ours if e["change"] == "widened"]
    assert widened == [near.officer, mid.officer]
    # A late acknowledgement still counts: better late than never.
    near.answer(first, OfficerAnswer.ACKNOWLEDGE)
    wait_until(
        lambda: (
            {d["officer"]: d["state"] for d in district.dispatches(incident_id)}[near.officer]
            == "acknowledged"
        )
    )


def test_offline_and_stale_officers_are_passed_over(
    module_hub: RunningHub, district: District
) -> None:
    gone = district.officer(50)
    gone.state(DeviceStatus.OFFLINE)
    district.officer(60, fix_age_s=600)  # stale fix: offline
    wait_until(lambda: (district.officer_view(gone.officer) or {}).get("availability") == "offline")
    chosen = district.officer(400)
    snapshot = Evidence.from_jpeg(JPEG)
    incident_id = district.incident_of(district.alert(district.camera(), 0, evidence=snapshot).id)
    note = chosen.wait_notify()
    # The alert's snapshot rides along (small); the hub's own re-encoding of it.
    assert note.evidence is not None and note.evidence.jpeg()[:2] == b"\xff\xd8"
    assert [d["officer"] for d in district.dispatches(incident_id)] == [chosen.officer]
    assert not gone.notifies


def test_reject_asks_the_next_officer_at_once(module_hub: RunningHub, district: District) -> None:
    near = district.officer(100)
    mid = district.officer(1500)
    incident_id = district.incident_of(district.alert(district.camera(), 0).id)
    note = near.wait_notify()
    near.answer(note, OfficerAnswer.REJECT, note="off shift in 5 min")
    replacement = mid.wait_notify()
    assert replacement.action is ExpectedAction.ATTEND
    states = {d["officer"]: (d["state"], d["round"]) for d in district.dispatches(incident_id)}
    # The replacement joins the current round (its timer stretched), not a wider one.
    assert states == {near.officer: ("rejected", 0), mid.officer: ("notified", 0)}
    # A rejected dispatch takes no more answers.
    msg = near.answer(note, OfficerAnswer.ACKNOWLEDGE)
    assert district.outcome(msg.id) == ("refused", "dispatch_closed")


def test_need_backup_sends_an_assist(module_hub: RunningHub, district: District) -> None:
    first = district.officer(100)
    backup = district.officer(1800)
    incident_id = district.incident_of(district.alert(district.camera(), 0).id)
    note = first.wait_notify()
    first.answer(note, OfficerAnswer.ARRIVED)
    first.answer(note, OfficerAnswer.NEED_BACKUP, note="two people, one armed")
    assist = backup.wait_notify()
    assert assist.action is ExpectedAction.ASSIST and assist.incident_id == incident_id
    states = {d["officer"]: (d["state"], d["action"]) for d in district.dispatches(incident_id)}
    assert states == {first.officer: ("on_scene", "attend"), backup.officer: ("notified", "assist")}
    # Nobody else left to send: the commanders hear of it.
    again = first.answer(note, OfficerAnswer.NEED_BACKUP)
    assert district.outcome(again.id) == ("accepted", None)
    inbox = district.client(Role.COMMANDER).get("/api/v1/notifications").json()["items"]
    keys = [n["message_key"] for n in inbox if n.get("incident_id") == incident_id]
    assert keys == ["dispatch.no_backup"]


def test_an_edit_that_raises_the_level_dispatches_once(
    module_hub: RunningHub, district: District
) -> None:
    officer = district.officer(100)
    operator = district.client(Role.OPERATOR)
    lon, lat = offset(0)
    res = operator.post(
        "/api/v1/incidents",
        json={
            "site": module_hub.site,
            "category": "intrusion",
            "level": "medium",
            "title": "a fence cut, reported by phone",
            "lon": lon,
            "lat": lat,
        },
    )
    res.raise_for_status()
    incident = res.json()
    assert district.dispatches(incident["id"]) == []
    url = f"/api/v1/incidents/{incident['id']}"
    raised = operator.patch(url, json={"version": incident["version"], "level": "critical"})
    assert raised.status_code == 200, raised.text
    note = officer.wait_notify()
    assert note.incident_id == incident["id"] and note.severity.value == "critical"
    edited = operator.patch(url, json={"version": raised.json()["version"], "title": "renamed"})
    assert edited.status_code == 200
    assert len(district.dispatches(incident["id"])) == 1  # a later edit asks nobody again
