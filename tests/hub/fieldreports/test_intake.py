"""Field report intake over HTTP against the real hub: idempotency, categories, media."""

from __future__ import annotations

import io
import json

from PIL import Image
from sqlalchemy import select

from hub.auth import Role
from hub.schema import audit_log, field_reports, incident_attachments, incidents
from tests.hub.conftest import RunningHub
from tests.hub.fieldreports.helpers import report_json, send
from tests.hub.fieldreports.photos import (
    CAMERA_MODEL,
    COMMENT,
    jpeg_with_exif,
    ogg_voice,
    png_bomb,
    png_bytes,
    truncated_jpeg,
)


def _count(hub: RunningHub, table: object) -> int:
    with hub.service.store.engine.connect() as conn:
        return len(conn.execute(select(table)).all())  # type: ignore[call-overload]


def test_a_report_resent_three_times_is_stored_once(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    report = report_json(category="garbage", lon=114.05, lat=22.54)
    photo = jpeg_with_exif()
    first = send(worker, report, [photo])
    second = send(worker, report, [photo])
    third = send(worker, report, [photo])
    assert first.status_code == 201, first.text
    assert second.status_code == 200 and third.status_code == 200
    assert first.json() == second.json() == third.json()
    body = first.json()
    assert body["number"].startswith("R-") and len(body["number"]) == 8
    assert body["incident_number"].startswith("I-")
    assert body["status"] == "received"
    assert _count(hub, field_reports) == 1
    assert _count(hub, incidents) == 1
    assert _count(hub, incident_attachments) == 1
    with hub.service.store.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit_log.c.action)).all()]
    assert actions.count("field_report.submit") == 1
    counts = hub.client(Role.ADMIN).get("/api/v1/stats").json()["field_reports"]
    assert counts == {"api_accepted": 1, "api_resent": 2}


def test_the_same_id_with_a_different_body_is_a_conflict(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    report = report_json(category="garbage")
    assert send(worker, report).status_code == 201
    changed = dict(report, description="Something else entirely")
    res = send(worker, changed)
    assert res.status_code == 409
    assert report["client_report_id"] in res.json()["detail"]
    # A different photo under the same id is a different report too.
    assert send(worker, report, [jpeg_with_exif()]).status_code == 409
    assert _count(hub, field_reports) == 1


def test_client_ids_are_per_reporter(hub: RunningHub) -> None:
    report = report_json(category="noise")
    assert send(hub.client(Role.WORKER), report).status_code == 201
    # Another user choosing the same UUID files their own report (no collision, no leak).
    other = send(hub.client(Role.OFFICER), report)
    assert other.status_code == 201
    assert _count(hub, field_reports) == 2


def test_category_the_reporter_gives_must_be_reportable(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    unknown = send(worker, report_json(category="alien_landing"))
    assert unknown.status_code == 422
    assert "alien_landing" in unknown.json()["detail"] and "garbage" in unknown.json()["detail"]
    alert_only = send(worker, report_json(category="watchlist_match"))
    assert alert_only.status_code == 422
    assert "not one a field report may name" in alert_only.json()["detail"]
    assert _count(hub, field_reports) == 0 and _count(hub, incidents) == 0


def test_without_a_category_the_classifier_decides_else_other(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    text = "Overflowing rubbish bins and bags of garbage dumped on the pavement"
    res = send(worker, report_json(description=text))
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["category"] == "garbage" and body["category_source"] == "classifier"
    assert body["suggested_category"] == "garbage" and body["suggested_confidence"] > 0.5
    # Nothing the classifier has seen: no suggestion, and the fallback applies.
    res = send(worker, report_json(description="qzxv wkpt jjrr"))
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["category"] == "other" and body["category_source"] == "default"
    assert body["suggested_category"] is None


def test_photo_exif_is_stripped_and_its_gps_becomes_the_location(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    raw = jpeg_with_exif(lon=114.0575, lat=22.5431)
    assert CAMERA_MODEL.encode() in raw and COMMENT in raw  # the test photo carries them
    res = send(worker, report_json(category="road_damage"), [raw])
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["location_source"] == "photo"
    assert abs(body["lon"] - 114.0575) < 1e-6 and abs(body["lat"] - 22.5431) < 1e-6
    detail = worker.get(f"/api/v1/field-reports/{body['id']}").json()
    (attachment,) = detail["attachments"]
    stored = worker.get(f"/api/v1/field-reports/{body['id']}/attachments/{attachment['id']}")
    assert stored.headers["content-type"] == "image/jpeg"
    data = stored.content
    for secret in (CAMERA_MODEL.encode(), COMMENT, b"xmpmeta", b"ICCFAKE", b"Exif"):
        assert secret not in data, secret
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (320, 240)
        assert not img.getexif() and "icc_profile" not in img.info and "comment" not in img.info
    with hub.service.store.engine.connect() as conn:
        lon, lat = conn.execute(select(incidents.c.lon, incidents.c.lat)).one()
    assert (round(lon, 4), round(lat, 4)) == (114.0575, 22.5431)


def test_a_given_location_wins_over_the_photo(hub: RunningHub) -> None:
    res = send(
        hub.client(Role.WORKER),
        report_json(category="garbage", lon=114.1, lat=22.6),
        [jpeg_with_exif(lon=114.0575, lat=22.5431)],
    )
    body = res.json()
    assert body["location_source"] == "given" and (body["lon"], body["lat"]) == (114.1, 22.6)


def test_no_location_at_all(hub: RunningHub) -> None:
    res = send(hub.client(Role.WORKER), report_json(category="garbage"), [png_bytes()])
    assert res.status_code == 201, res.text
    assert res.json()["location_source"] == "none" and res.json()["lon"] is None


def test_fake_photos_are_refused_with_a_clear_error(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    for fake in (b"this is a text file, not a photo\n" * 5, truncated_jpeg(), png_bomb()):
        res = send(worker, report_json(category="garbage"), [fake])
        assert res.status_code == 422, res.text
        assert "photo 1" in res.json()["detail"]
    assert _count(hub, field_reports) == 0 and _count(hub, incidents) == 0


def test_oversize_photo_is_413_naming_the_limit(hub: RunningHub) -> None:
    limit = hub.service.config.field_reports.max_photo_bytes
    big = jpeg_with_exif() + b"\x00" * limit  # over the limit by the photo's own size
    res = send(hub.client(Role.WORKER), report_json(category="garbage"), [big])
    assert res.status_code == 413
    assert str(limit) in res.json()["detail"]


def test_too_many_photos_is_422(hub: RunningHub) -> None:
    limit = hub.service.config.field_reports.max_photos
    res = send(
        hub.client(Role.WORKER), report_json(category="garbage"), [png_bytes()] * (limit + 1)
    )
    assert res.status_code == 422
    assert str(limit) in res.json()["detail"]


def test_voice_note_is_sniffed_and_stored_as_is(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    voice = ogg_voice()
    res = send(worker, report_json(category="noise"), voice=voice)
    assert res.status_code == 201, res.text
    assert res.json()["has_voice"] is True
    detail = worker.get(f"/api/v1/field-reports/{res.json()['id']}").json()
    (attachment,) = detail["attachments"]
    assert attachment["kind"] == "voice" and attachment["content_type"] == "audio/ogg"
    got = worker.get(f"/api/v1/field-reports/{res.json()['id']}/attachments/{attachment['id']}")
    assert got.content == voice and got.headers["x-content-type-options"] == "nosniff"
    fake = send(worker, report_json(category="noise"), voice=b"<html>not audio</html>" * 3)
    assert fake.status_code == 422 and "voice note" in fake.json()["detail"]


def test_hostile_bodies(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    huge = send(worker, report_json(description="x" * 4001))
    assert huge.status_code == 422 and "description" in huge.json()["detail"]
    nul = send(worker, report_json(description="bad\x00byte"))
    assert nul.status_code == 422 and "control characters" in nul.json()["detail"]
    not_json = send(worker, "{not json")
    assert not_json.status_code == 422 and "JSON" in not_json.json()["detail"]
    extra = send(worker, report_json(reporter="admin"))
    assert extra.status_code == 422
    nan = send(
        worker, json.dumps(report_json()).replace('"description"', '"lon": NaN, "description"')
    )
    assert nan.status_code == 422
    half = send(worker, report_json(lon=114.0))
    assert half.status_code == 422 and "both lon and lat" in half.json()["detail"]
    wrong_type = worker.post("/api/v1/field-reports", json=report_json())
    assert wrong_type.status_code == 415
    files = [("report", ("r.json", json.dumps(report_json()).encode(), "application/json"))]
    files += [("photo", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(1000)]
    many = worker.post("/api/v1/field-reports", files=files)
    assert many.status_code == 422 and "multipart" in many.json()["detail"]
    fields = worker.post(
        "/api/v1/field-reports",
        files={"report": (None, "{}")},
        data={f"f{i}": "x" for i in range(1000)},
    )
    assert fields.status_code == 422
    assert _count(hub, field_reports) == 0
    # Every refusal is counted by its reason, none was stored.
    counts = hub.client(Role.ADMIN).get("/api/v1/stats").json()["field_reports"]
    assert counts["refused_bad_report"] >= 5 and counts["refused_unsupported"] == 1
    assert counts["refused_invalid"] >= 2 and "api_accepted" not in counts
