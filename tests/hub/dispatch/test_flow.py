"""The whole loop on a real hub and broker: alert -> incident -> dispatch -> Notify on the
glasses' topic -> Reply (receipt) -> acknowledge -> on my way -> arrived -> resolved through
the task route, every step audited."""

from __future__ import annotations

from sqlalchemy import select

from edge.protocol import ExpectedAction, OfficerAnswer
from hub.auth import Role
from hub.schema import audit_log
from tests.hub.conftest import RunningHub
from tests.hub.dispatch.conftest import District
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
