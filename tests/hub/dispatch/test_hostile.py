"""Attacks on dispatch: answers from the wrong device, for another officer, for a dispatch that
does not exist, replayed ids, garbage on the answer topic, another officer over HTTP, and
manual dispatch without the permission. Each is refused, counted, audited, and changes
nothing else."""

from __future__ import annotations

from edge.protocol import Channel, DispatchAnswer, OfficerAnswer
from edge.validators import new_id
from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.dispatch.conftest import District
from tests.support.waiting import wait_until


def test_forged_and_replayed_answers_change_nothing(
    module_hub: RunningHub, district: District
) -> None:
    victim = district.officer(100)
    other = district.officer(9000)  # an officer of this hub, with their own glasses
    incident_id = district.incident_of(district.alert(district.camera(), 0).id)
    note = victim.wait_notify()
    dispatch = module_hub.service.ctx.dispatch
    ingest = module_hub.service.ingest
    before = dispatch.stats_snapshot()

    # Another officer's glasses answer for the victim's dispatch, in the victim's name.
    forged = DispatchAnswer(
        site=other.site,
        device=other.device,
        dispatch_id=note.dispatch_id,  # type: ignore[arg-type]
        notify_id=note.id,
        officer=victim.officer,
        answer=OfficerAnswer.REJECT,
    )
    other.publish(Channel.ANSWER, forged)
    assert district.outcome(forged.id) == ("refused", "wrong_device")
    # Refused, but stored: acked, so the sender's outbox stops resending it.
    wait_until(lambda: forged.id in other.acked, message="the refused answer acked")
    # The victim's own device, claiming another officer.
    wrong = victim.answer(note, OfficerAnswer.REJECT, officer=other.officer)
    assert district.outcome(wrong.id) == ("refused", "wrong_officer")
    unknown = victim.answer(note, OfficerAnswer.ACKNOWLEDGE, dispatch_id=new_id())
    assert district.outcome(unknown.id) == ("refused", "unknown_dispatch")
    [row] = district.dispatches(incident_id)
    assert row["state"] == "notified" and row["last_answer"] is None

    # Garbage on the answer topic: refused by ingest, counted; the next answer still lands.
    rejected = sum(ingest.stats.rejected.values())
    victim.raw(Channel.ANSWER, b'{"v": 1, "dispatch_id": ')
    victim.raw(Channel.ANSWER, b"\xff" * 5000)
    wait_until(lambda: sum(ingest.stats.rejected.values()) >= rejected + 2)
    good = victim.answer(note, OfficerAnswer.ACKNOWLEDGE)
    assert district.outcome(good.id) == ("accepted", None)

    # Replays: the same message again, and the same id with another body: stored once.
    victim.publish(Channel.ANSWER, good)
    replay = good.model_copy(update={"answer": OfficerAnswer.REJECT})
    victim.publish(Channel.ANSWER, replay)
    # The other device reusing the id is refused at the store (never acked to it).
    taken = ingest.stats.rejected["answer_id_taken"]
    other.publish(Channel.ANSWER, good.model_copy(update={"device": other.device}))
    wait_until(lambda: ingest.stats.rejected["answer_id_taken"] == taken + 1)
    wait_until(lambda: good.id in victim.acked, message="the answer acked to its sender")
    assert good.id not in other.acked
    marker = victim.answer(note, OfficerAnswer.ON_MY_WAY)  # answers arrive in order
    assert district.outcome(marker.id) == ("accepted", None)
    [row] = district.dispatches(incident_id)
    assert row["state"] == "en_route"
    audit = district.audit(incident_id)
    assert audit.count((victim.officer, "dispatch.answer")) == 2
    refused = district.audit(str(note.dispatch_id))
    assert [a for a, action in refused if action == "dispatch.answer_refused"] == [
        other.device,
        victim.device,
    ]
    assert district.audit(unknown.dispatch_id) == [(victim.device, "dispatch.answer_refused")]
    after = dispatch.stats_snapshot()
    for reason in ("wrong_device", "wrong_officer", "unknown_dispatch"):
        assert after.get(f"refused_{reason}", 0) == before.get(f"refused_{reason}", 0) + 1


def test_http_answers_only_from_the_dispatched_officer(
    module_hub: RunningHub, district: District
) -> None:
    mine = district.officer(100)
    theirs = district.officer(9500)
    incident_id = district.incident_of(district.alert(district.camera(), 0).id)
    note = mine.wait_notify()
    url = f"/api/v1/dispatches/{note.dispatch_id}/answers"
    stranger = district.client(Role.OFFICER, username=theirs.officer)
    res = stranger.post(url, json={"answer": "reject"})
    assert res.status_code == 404
    assert (
        stranger.post(
            f"/api/v1/dispatches/{new_id()}/answers", json={"answer": "reject"}
        ).status_code
        == 404
    )
    owner = district.client(Role.OFFICER, username=mine.officer)
    assert owner.post(url, json={"answer": "bogus"}).status_code == 422
    assert owner.post(url, json={"answer": "acknowledge", "extra": 1}).status_code == 422
    res = owner.post(
        url,
        json={"answer": "acknowledge", "note": "coming", "location": {"lon": 114.0, "lat": 22.5}},
    )
    assert res.status_code == 200, res.text
    assert res.json()["state"] == "acknowledged"
    assert owner.post(url, json={"answer": "reject"}).json()["state"] == "rejected"
    assert owner.post(url, json={"answer": "acknowledge"}).status_code == 409  # closed
    # A commander reads every dispatch but cannot answer one.
    assert district.client(Role.COMMANDER).post(url, json={"answer": "arrived"}).status_code == 403
    states = {d["officer"]: d["state"] for d in district.dispatches(incident_id)}
    assert states[mine.officer] == "rejected"


def test_manual_dispatch_and_binding_permissions(
    module_hub: RunningHub, district: District
) -> None:
    resting = district.officer(100, on_duty=False)
    ready = district.officer(200)
    operator = district.client(Role.OPERATOR)
    res = operator.post(
        "/api/v1/incidents",
        json={
            "site": module_hub.site,
            "category": "intrusion",
            "level": "medium",
            "title": "reported by phone",
            "lon": 114.057,
            "lat": 22.543,
        },
    )
    res.raise_for_status()
    incident_id = res.json()["id"]
    assert district.dispatches(incident_id) == []  # medium: not dispatched automatically
    url = f"/api/v1/incidents/{incident_id}/dispatches"
    body = {"officer": ready.officer, "action": "verify"}
    assert (
        district.client(Role.OFFICER, username=ready.officer).post(url, json=body).status_code
        == 403
    )
    assert district.client(Role.AUDITOR).post(url, json=body).status_code == 403
    assert district.client(Role.WORKER).get("/api/v1/officers").status_code == 403
    assert district.client(Role.AUDITOR).get("/api/v1/officers").status_code == 200
    res = operator.post(url, json={"officer": resting.officer})
    assert res.status_code == 409 and "off_duty" in res.json()["detail"]
    assert operator.post(url, json={"officer": "nobody-here"}).status_code == 404
    res = operator.post(url, json=body)
    assert res.status_code == 201, res.text
    assert res.json()["action"] == "verify" and res.json()["officer"] == ready.officer
    assert ready.wait_notify().action.value == "verify"
    assert operator.post(url, json=body).status_code == 409  # already dispatched
    forced = operator.post(url, json={"officer": resting.officer, "force": True})
    assert forced.status_code == 201
    cancel = operator.post(f"/api/v1/dispatches/{forced.json()['id']}/cancel", json={"reason": "x"})
    assert cancel.status_code == 200 and cancel.json()["state"] == "cancelled"
    # The cancelled dispatch is taken back from the resting officer's glasses, not the other's.
    first = resting.wait_notify()
    assert first.withdraws is None
    wait_until(lambda: any(n.withdraws == first.id for n in resting.notifies))
    taken_back = next(n for n in resting.notifies if n.withdraws == first.id)
    assert taken_back.dispatch_id == forced.json()["id"]
    assert all(n.withdraws is None for n in ready.notifies)
    again = operator.post(f"/api/v1/dispatches/{forced.json()['id']}/cancel", json={"reason": "x"})
    assert again.status_code == 409

    # Binding: another officer's glasses (409), a camera (422), an unknown officer (404).
    admin = district.client()
    put = f"/api/v1/officers/{resting.officer}"
    res = admin.put(put, json={"device": ready.device, "on_duty": True})
    assert res.status_code == 409
    cam = district.camera()
    assert admin.put(put, json={"device": cam.device, "on_duty": True}).status_code == 422
    assert (
        admin.put(
            "/api/v1/officers/nobody-here", json={"device": None, "on_duty": True}
        ).status_code
        == 404
    )
    assert operator.put(put, json={"device": resting.device, "on_duty": True}).status_code == 200
    officer = district.client(Role.OFFICER, username=resting.officer)
    assert officer.put(put, json={"device": None, "on_duty": True}).status_code == 403
    res = officer.put("/api/v1/me/duty", json={"on_duty": False})
    assert res.status_code == 200 and res.json()["availability"] == "off_duty"
    assert res.json()["device"] == resting.device  # the binding stays
