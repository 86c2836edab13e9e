"""Possible matches on a real store with the real incident and dispatch services: intake,
review by one or two distinct reviewers, the incident a confirmation opens (and its verify
dispatch), the officer's outcome, audited image views, the export, and retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from edge.protocol import (
    Channel,
    DeviceKind,
    DeviceTopic,
    Evidence,
    ExpectedAction,
    Inbound,
    Notify,
    decode_as,
)
from edge.validators import utcnow
from hub import retention
from hub.auth import Role
from hub.clock import ManualClock
from hub.config import RetentionConfig
from hub.errors import Forbidden, Invalid, NotFound
from hub.incidents.config import IncidentsConfig
from hub.matches.config import MatchesConfig
from hub.matches.service import Decision, Image, Outcome, ReviewRefused
from hub.schema import (
    alerts,
    command_outbox,
    dispatches,
    evidence,
    face_crops,
    incident_alerts,
    incident_events,
    incidents,
    notifications,
)
from hub.store import Store
from tests.hub.matches.support import Replica, face_alert, principal, replica, seed_people


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/matches.sqlite")
    yield s
    s.close()


def _hub(store: Store, tmp_path: Path, **config: object) -> Replica:
    clock = ManualClock(utcnow())
    seed_people(store, clock.now(), {"near-a": 100.0, "far-z": 50_000.0})
    return replica(store, tmp_path / "audit", clock, MatchesConfig.model_validate(config))


def test_a_face_match_alert_is_a_pending_match_and_opens_no_incident(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path)
    alert = face_alert(score=0.81)
    assert hub.ingest(alert) == [alert.id]
    assert hub.ingest(alert) == []  # a resend after a lost ack: stored once, one match

    match = hub.match_of(alert.id)
    assert (match["status"], match["entry_id"], match["score"], match["threshold"]) == (
        "pending",
        "entry-1",
        0.81,
        0.5,
    )
    assert (match["bundle_version"], match["reviews"], match["reviews_needed"]) == (3, [], 1)
    assert hub.count(incidents) == 0
    assert hub.count(incident_alerts) == 0
    # The crop is stored apart (re-encoded), never inside the alert's payload.
    with store.engine.connect() as conn:
        payload = conn.execute(select(alerts.c.payload).where(alerts.c.id == alert.id)).scalar()
    assert isinstance(payload, dict)
    assert "face_crop" not in payload
    assert hub.count(face_crops, face_crops.c.alert_id == alert.id) == 1
    assert hub.actions(match["id"]) == [("system:matches", "match.new")]
    inbox = hub.count(
        notifications,
        notifications.c.username == "cmd-1",
        notifications.c.message_key == "review.inbox_pending",
    )
    assert inbox == 1
    assert [e.data["match"]["id"] for e in hub.events if e.layer == "matches"] == [match["id"]]


def test_confirm_opens_one_incident_that_dispatches_officers_to_verify(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path)
    alert = face_alert()
    hub.ingest(alert)
    match_id = hub.match_of(alert.id)["id"]

    done = hub.matches.review("rev-a", match_id, Decision.CONFIRM, "same scar, same jacket")
    assert done["status"] == "confirmed"
    assert done["reviews"][0]["reviewer"] == "rev-a"
    with store.engine.connect() as conn:
        [incident] = conn.execute(select(incidents)).all()
        linked = conn.execute(select(incident_alerts.c.alert_id)).scalars().all()
        sent = conn.execute(select(dispatches.c.officer, dispatches.c.action)).all()
        [payload] = conn.execute(select(command_outbox.c.payload)).scalars().all()
    assert (incident.category, incident.level, incident.id) == (
        "watchlist_match",
        "high",
        done["incident_id"],
    )
    assert done["incident_number"] == incident.number
    assert list(linked) == [alert.id]
    assert sent == [("near-a", "verify")]
    notify = decode_as(Notify, bytes(payload))
    assert isinstance(notify, Notify)
    assert (notify.action, notify.alert_id, notify.device) == (
        ExpectedAction.VERIFY,
        alert.id,
        "gl-near-a",
    )
    assert hub.actions(match_id) == [
        ("system:matches", "match.new"),
        ("rev-a", "match.review"),
        ("rev-a", "match.confirmed"),
    ]
    assert ("rev-a", "incident.open") in hub.actions(incident.id)
    # Decided: a later review is refused and changes nothing.
    with pytest.raises(ReviewRefused, match="confirmed already"):
        hub.matches.review("rev-b", match_id, Decision.REJECT, "")
    assert hub.count(incidents) == 1


def test_two_reviewers_must_be_distinct_and_one_reject_rejects(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path, two_reviewers=True)
    first, second = face_alert("entry-1"), face_alert("entry-2")
    hub.ingest(first, second)
    m1, m2 = hub.match_of(first.id)["id"], hub.match_of(second.id)["id"]

    after_one = hub.matches.review("rev-a", m1, Decision.CONFIRM, "")
    assert (after_one["status"], after_one["reviews_needed"]) == ("pending", 2)
    with pytest.raises(ReviewRefused, match="reviewed this match already"):
        hub.matches.review("rev-a", m1, Decision.CONFIRM, "again")  # the same user twice
    assert hub.count(incidents) == 0
    assert hub.matches.get(m1)["status"] == "pending"
    confirmed = hub.matches.review("rev-b", m1, Decision.CONFIRM, "")
    assert confirmed["status"] == "confirmed"
    assert [r["reviewer"] for r in confirmed["reviews"]] == ["rev-a", "rev-b"]
    assert hub.count(incidents) == 1

    hub.matches.review("rev-a", m2, Decision.CONFIRM, "")
    rejected = hub.matches.review("rev-b", m2, Decision.REJECT, "different person")
    assert (rejected["status"], rejected["incident_id"]) == ("rejected", None)
    assert hub.count(incidents) == 1
    assert ("rev-b", "match.rejected") in hub.actions(m2)


def test_outcome_by_the_dispatched_officer_only_and_on_the_timeline(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path)
    alert = face_alert()
    hub.ingest(alert)
    match_id = hub.match_of(alert.id)["id"]
    officer = principal("near-a", Role.OFFICER)
    with pytest.raises(ReviewRefused, match="pending"):
        hub.matches.record_outcome(
            principal("rev-a", Role.OPERATOR), match_id, Outcome.NOT_FOUND, ""
        )
    with pytest.raises(Forbidden):  # not dispatched yet: nobody was sent to a pending match
        hub.matches.record_outcome(officer, match_id, Outcome.NOT_FOUND, "")
    hub.matches.review("rev-a", match_id, Decision.CONFIRM, "")
    with pytest.raises(Forbidden, match="dispatched"):
        hub.matches.record_outcome(
            principal("far-z", Role.OFFICER), match_id, Outcome.IDENTITY_CONFIRMED, ""
        )
    # The officer's view of the match goes to the officer sent, whatever incidents are asked.
    incident_id = hub.matches.get(match_id)["incident_id"]
    assert hub.matches.for_officer("far-z", [incident_id]) == {}
    seen = hub.matches.for_officer("near-a", [incident_id, "no-such-incident"])
    assert list(seen) == [incident_id]
    assert (seen[incident_id]["id"], seen[incident_id]["confirmations"]) == (match_id, 1)
    with pytest.raises(Invalid):
        hub.matches.record_outcome(officer, match_id, Outcome.NOT_THE_PERSON, "x" * 501)

    done = hub.matches.record_outcome(
        officer, match_id, Outcome.NOT_THE_PERSON, "ID card checked: another person"
    )
    assert (done["outcome"], done["outcome_by"]) == ("not_the_person", "near-a")
    with store.engine.connect() as conn:
        events = conn.execute(
            select(incident_events.c.actor, incident_events.c.text, incident_events.c.details)
            .where(incident_events.c.kind == "match")
            .order_by(incident_events.c.id)
        ).all()
    assert [(e.actor, e.details["change"]) for e in events] == [
        ("rev-a", "confirmed"),
        ("near-a", "outcome"),
    ]
    assert events[1].text == "ID card checked: another person"
    assert ("near-a", "match.outcome") in hub.actions(match_id)
    with pytest.raises(ReviewRefused, match="recorded already"):
        hub.matches.record_outcome(officer, match_id, Outcome.IDENTITY_CONFIRMED, "")


def test_every_image_view_is_audited_and_rejected_images_are_deleted_after_the_ttl(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path, rejected_crop_ttl_s=3600)
    kept, dropped = face_alert("entry-1"), face_alert("entry-2")
    hub.ingest(kept, dropped)
    m_kept, m_dropped = hub.match_of(kept.id)["id"], hub.match_of(dropped.id)["id"]
    crop = hub.matches.image("rev-a", m_dropped, Image.CROP)
    snap = hub.matches.image("rev-a", m_dropped, Image.SNAPSHOT)
    assert crop[:2] == snap[:2] == b"\xff\xd8"
    assert crop != snap
    assert hub.actions(m_dropped).count(("rev-a", "match.crop_view")) == 2

    hub.matches.review("rev-a", m_kept, Decision.CONFIRM, "")
    hub.matches.review("rev-a", m_dropped, Decision.REJECT, "not them")
    hub.clock.advance(3599)
    assert hub.matches.sweep()["crops_deleted"] == 0
    hub.clock.advance(2)
    assert hub.matches.sweep()["crops_deleted"] == 1

    assert hub.count(face_crops, face_crops.c.alert_id == dropped.id) == 0
    assert hub.count(evidence, evidence.c.alert_id == dropped.id) == 0
    # The confirmed match keeps its images (normal evidence retention); the rejected match's
    # record stays, saying when its images went.
    assert hub.count(face_crops, face_crops.c.alert_id == kept.id) == 1
    assert hub.count(evidence, evidence.c.alert_id == kept.id) == 1
    record = hub.matches.get(m_dropped)
    assert (record["status"], record["crop_deleted_at"]) == (
        "rejected",
        hub.clock.now().isoformat(),
    )
    assert ("system:matches", "match.crop_deleted") in hub.actions(m_dropped)
    with pytest.raises(NotFound):
        hub.matches.image("rev-a", m_dropped, Image.CROP)
    assert hub.matches.sweep()["crops_deleted"] == 0  # once


def test_undecided_matches_expire_and_lose_their_images(store: Store, tmp_path: Path) -> None:
    hub = _hub(store, tmp_path, pending_ttl_s=600, rejected_crop_ttl_s=60)
    alert = face_alert()
    hub.ingest(alert)
    match_id = hub.match_of(alert.id)["id"]
    hub.clock.advance(601)
    assert hub.matches.sweep()["expired"] == 1
    assert hub.matches.get(match_id)["status"] == "expired"
    with pytest.raises(ReviewRefused):
        hub.matches.review("rev-a", match_id, Decision.CONFIRM, "")
    hub.clock.advance(61)
    assert hub.matches.sweep()["crops_deleted"] == 1
    assert hub.count(face_crops) == 0


def test_details_that_do_not_fit_make_no_match_and_are_counted(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path)
    alert = face_alert()
    forged = alert.model_copy(update={"details": {"entry_id": "entry-1", "score": 7}})
    hub.ingest(forged)
    assert hub.matches.page(None, limit=10, after=None) == []
    assert hub.matches.stats_snapshot()["bad_details"] == 1
    assert hub.count(incidents) == 0


def test_a_missed_intake_is_recovered_by_the_sweeper(store: Store, tmp_path: Path) -> None:
    hub = _hub(store, tmp_path)
    alert = face_alert()
    topic = DeviceTopic("s1", DeviceKind.CAMERA, alert.device, Channel.ALERT)
    hub.store.write_batch([Inbound(topic, alert)])  # stored; the hub died before its hook
    assert hub.matches.sweep()["recovered"] == 1
    assert hub.match_of(alert.id)["status"] == "pending"


def test_export_is_formula_safe_and_audited_with_its_row_count(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path)
    hub.ingest(face_alert("=cmd|calc"), face_alert("entry-2"))
    text = hub.matches.export_csv("auditor-1", None)
    lines = text.strip().splitlines()
    assert lines[0].startswith("id,alert_id,site,device,entry_id")
    assert len(lines) == 3
    assert ",'=cmd|calc," in text
    assert ("auditor-1", "match.export") in hub.actions("matches")
    with pytest.raises(Invalid):
        hub.matches.export_csv("auditor-1", "bogus")


def test_alert_rules_naming_face_match_are_refused() -> None:
    rule = {"name": "w", "kinds": ["face_match"], "category": "watchlist_match", "level": "high"}
    with pytest.raises(ValueError, match="possible matches for review"):
        IncidentsConfig.model_validate({"alert_rules": [rule]})


def test_confirmed_crops_follow_evidence_retention_and_open_incidents_hold_them(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path)
    held, free = face_alert("entry-1"), face_alert("entry-2")
    hub.ingest(held, free)
    hub.matches.review("rev-a", hub.match_of(held.id)["id"], Decision.CONFIRM, "")
    later = utcnow() + timedelta(days=31)
    deleted = retention.enforce(store.engine, RetentionConfig(), now=later)
    assert deleted["face_crops"] == 1
    assert hub.count(face_crops, face_crops.c.alert_id == held.id) == 1  # its incident is open
    assert hub.count(face_crops, face_crops.c.alert_id == free.id) == 0


def test_a_crop_that_is_no_jpeg_refuses_the_alert_like_a_bad_snapshot(
    store: Store, tmp_path: Path
) -> None:
    hub = _hub(store, tmp_path)
    polyglot = b"<svg onload=alert(1)>" + b"\xff\xd8" * 20
    alert = face_alert().model_copy(update={"face_crop": Evidence.from_jpeg(polyglot)})
    topic = DeviceTopic("s1", DeviceKind.CAMERA, alert.device, Channel.ALERT)
    result = store.write_batch([Inbound(topic, alert)])
    assert [r.reason for r in result.rejected] == ["evidence_not_jpeg"]
    assert not result.new_alert_ids
    assert hub.count(alerts) == hub.count(face_crops) == 0
    assert hub.matches.sweep()["recovered"] == 0
