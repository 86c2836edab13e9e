"""The watchlist API on a real hub (uvicorn, SQLite, broker): enrolment through multipart with
the real photos, quality and governance refusals with their codes, hostile uploads, the
audited photo view and the photo encrypted at rest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.auth import Role
from hub.schema import audit_log
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import clients_closed, pinned_hub
from tests.hub.watchlists.conftest import (
    as_png,
    blurred,
    faceless,
    photo,
    png_bomb,
    shrunk,
)
from tests.support.broker import BrokerHarness

ENTRIES = "/api/v1/watchlists/entries"


@pytest.fixture(scope="module")
def wl_hub(broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with pinned_hub(broker, tmp_path_factory.mktemp("hub")) as running:
        yield running


@pytest.fixture
def hub(wl_hub: RunningHub) -> Iterator[RunningHub]:
    with clients_closed(wl_hub):
        yield wl_hub


def fields(**overrides: str) -> dict[str, str]:
    values = {
        "label": "Zhang San",
        "category": "wanted_person",
        "reason": "suspect in robbery case 2026-114",
        "legal_basis": "warrant 2026-WX-0041",
        "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }
    values.update(overrides)
    return values


def enrol(
    client: httpx.Client,
    data: bytes | None = None,
    content_type: str = "image/jpeg",
    **overrides: str,
) -> httpx.Response:
    files = {"photo": ("face.jpg", photo("obama") if data is None else data, content_type)}
    return client.post(ENTRIES, data=fields(**overrides), files=files)


def refused(res: httpx.Response, status: int, code: str) -> None:
    assert res.status_code == status, res.text
    body: dict[str, Any] = res.json()
    assert body.get("code") == code, body
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10


def test_enrol_approve_and_the_audited_photo(hub: RunningHub) -> None:
    operator, commander = hub.client(Role.OPERATOR), hub.client(Role.COMMANDER)
    config = operator.get("/api/v1/watchlists/config").json()
    assert config["require_distinct_approver"] is True and "wanted_person" in config["categories"]
    res = enrol(operator)
    assert res.status_code == 201, res.text
    entry = res.json()
    assert entry["status"] == "pending" and entry["enrolled_by"].endswith("-operator")
    assert entry["legal_basis"] == "warrant 2026-WX-0041"
    assert entry["quality"]["face_width_px"] >= 80
    # The operator may not approve (no watchlist:approve): the route refuses before any rule.
    assert operator.post(f"{ENTRIES}/{entry['id']}/approve").status_code == 403
    approved = commander.post(f"{ENTRIES}/{entry['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active"
    listed = commander.get(ENTRIES, params={"status": "active"}).json()["items"]
    assert entry["id"] in [e["id"] for e in listed]
    assert entry["id"] not in [
        e["id"] for e in commander.get(ENTRIES, params={"status": "pending"}).json()["items"]
    ]
    view = hub.client(Role.AUDITOR).get(f"{ENTRIES}/{entry['id']}/photo")
    assert view.status_code == 200
    assert view.content == photo("obama")
    assert view.headers["content-type"] == "image/jpeg"
    assert "no-store" in view.headers["cache-control"]
    with hub.service.store.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.details).where(
                audit_log.c.target == entry["id"]
            )
        ).all()
    assert [(r.actor.split("-")[-1], r.action) for r in rows] == [
        ("operator", "watchlist.enrol"),
        ("commander", "watchlist.approve"),
        ("auditor", "watchlist.photo_view"),
    ]
    for r in rows:  # ids and governance data only: no photo, no embedding
        assert "embedding" not in str(r.details) and len(str(r.details)) < 300


def test_own_entry_cannot_be_approved_or_refused_by_its_enroller(hub: RunningHub) -> None:
    commander = hub.client(Role.COMMANDER)
    entry = enrol(commander).json()
    refused(commander.post(f"{ENTRIES}/{entry['id']}/approve"), 403, "governance.own_entry")
    refused(
        commander.post(f"{ENTRIES}/{entry['id']}/refuse", json={"reason": "mine"}),
        403,
        "governance.own_entry",
    )
    admin = hub.client(Role.ADMIN)
    res = admin.post(f"{ENTRIES}/{entry['id']}/refuse", json={"reason": "no warrant attached"})
    assert res.status_code == 200 and res.json()["refuse_reason"] == "no warrant attached"
    refused(admin.post(f"{ENTRIES}/{entry['id']}/approve"), 409, "governance.wrong_state")
    refused(
        admin.post(f"{ENTRIES}/{entry['id']}/revoke", json={"reason": "x"}),
        409,
        "governance.wrong_state",
    )


def test_governance_refusals_through_the_api(hub: RunningHub) -> None:
    operator = hub.client(Role.OPERATOR)
    far = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases: list[tuple[dict[str, str], str]] = [
        ({"reason": ""}, "governance.missing_reason"),
        ({"legal_basis": " "}, "governance.missing_legal_basis"),
        ({"category": "religion"}, "governance.unknown_category"),
        ({"expires_at": far}, "governance.expiry_too_far"),
        ({"expires_at": past}, "governance.expiry_in_past"),
        ({"expires_at": "next tuesday"}, "governance.bad_expiry"),
        ({"expires_at": "2027-01-01T00:00:00"}, "governance.expiry_without_zone"),
    ]
    for overrides, code in cases:
        refused(enrol(operator, None, "image/jpeg", **overrides), 422, code)
    assert hub.client(Role.AUDITOR).post(ENTRIES, files={"photo": b"x"}).status_code == 403


def test_quality_refusals_with_the_real_photos(hub: RunningHub) -> None:
    operator = hub.client(Role.OPERATOR)
    before = len(operator.get(ENTRIES).json()["items"])
    refused(enrol(operator, photo("t1")), 422, "quality.several_faces")
    refused(enrol(operator, faceless()), 422, "quality.no_face")
    refused(enrol(operator, blurred()), 422, "quality.too_blurred")
    refused(enrol(operator, shrunk()), 422, "quality.too_small")
    refused(enrol(operator, photo("obama")[:200]), 422, "quality.unreadable_image")
    assert len(operator.get(ENTRIES).json()["items"]) == before  # no row written
    assert enrol(operator, as_png(), "image/png").status_code == 201  # PNG is fine


def test_hostile_uploads(hub: RunningHub) -> None:
    operator = hub.client(Role.OPERATOR)
    limit = hub.service.config.watchlists.photo_max_bytes
    huge = b"\xff\xd8\xff" + b"\0" * limit
    refused(enrol(operator, huge), 413, "photo.too_large")
    way_over = operator.post(ENTRIES, data=fields(), files={"photo": ("a.jpg", huge * 2)})
    assert way_over.status_code == 413  # the body limit, before any handler reads it
    refused(enrol(operator, b"GIF89a not a portrait"), 415, "photo.unsupported_type")
    refused(enrol(operator, b"<svg onload=alert(1)>", "image/jpeg"), 415, "photo.unsupported_type")
    refused(enrol(operator, photo("obama"), "image/png"), 415, "photo.unsupported_type")
    refused(enrol(operator, png_bomb(), "image/png"), 413, "photo.too_large")
    # Forged multipart: extra fields, a field sent as a file, the photo as text, two photos.
    res = operator.post(
        ENTRIES,
        data={**fields(), "embedding": "0.1,0.2", "status": "active"},
        files={"photo": ("a.jpg", photo("obama"), "image/jpeg")},
    )
    refused(res, 422, "form.unexpected_field")
    values = fields()
    label = values.pop("label")
    res = operator.post(
        ENTRIES,
        data=values,
        files={"photo": ("a.jpg", photo("obama")), "label": ("l.txt", label.encode())},
    )
    refused(res, 422, "form.file_as_field")
    res = operator.post(ENTRIES, data=fields(), files={"photo": (None, b"abc")})  # a text field
    refused(res, 422, "photo.missing")
    res = operator.post(
        ENTRIES,
        data=fields(),
        files=[("photo", ("a.jpg", photo("obama"))), ("photo", ("b.jpg", photo("obama2")))],
    )
    refused(res, 422, "form.repeated_field")
    res = operator.post(
        ENTRIES,
        data=values,
        files=[("photo", ("a.jpg", photo("obama"))), ("a", ("a", b"1")), ("b", ("b", b"2"))],
    )
    refused(res, 422, "form.malformed")  # more files than the form has room for
    res = operator.post(ENTRIES, json={**fields(), "photo": "aGVsbG8="})
    refused(res, 415, "photo.not_multipart")
    res = operator.post(
        ENTRIES,
        content=b"--x\r\nbroken",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert res.status_code in (415, 422)
    assert res.status_code != 500


def test_photo_is_encrypted_at_rest(hub: RunningHub) -> None:
    """Neither the database (with its WAL) nor any file in the hub's data or secrets
    directories holds the photo's bytes, whole or in part; the key file is 0600."""
    operator = hub.client(Role.OPERATOR)
    data = photo("biden")
    assert enrol(operator, data, label="Biden").status_code == 201
    root = Path(str(hub.service.store.engine.url.database)).parent
    probes = [data[i : i + 48] for i in (0, 600, len(data) // 2, len(data) - 48)]
    scanned = 0
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            scanned += 1
            for probe in probes:
                assert probe not in blob, f"photo bytes found in {path}"
    assert scanned >= 2
    key = root / "audit" / "watchlist-photos.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_unknown_entry_and_anonymous(hub: RunningHub) -> None:
    operator = hub.client(Role.OPERATOR)
    assert operator.get(f"{ENTRIES}/01234567-89ab-7def-8123-456789abcdef").status_code == 404
    assert operator.get(f"{ENTRIES}/not-an-id!/photo").status_code == 422
    assert hub.client(None).get(ENTRIES).status_code == 401
    assert hub.client(Role.OFFICER).get(ENTRIES).status_code == 403
