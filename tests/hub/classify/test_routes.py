"""POST /api/v1/classify/report against a running hub."""

from __future__ import annotations

from hub.auth import Role
from tests.hub.conftest import RunningHub


def test_classify_a_report_over_http(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    res = worker.post("/api/v1/classify/report", json={"text": "路灯不亮导致有人摔倒"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["category"] == "streetlight"
    assert 0.3 <= body["confidence"] <= 1
    assert len(body["alternatives"]) == 3
    assert "streetlight" not in {a["category"] for a in body["alternatives"]}

    empty = worker.post("/api/v1/classify/report", json={"text": "\x00 !!!"}).json()
    assert empty == {"category": None, "confidence": None, "alternatives": []}


def test_classify_refuses_bad_bodies_and_wrong_roles(hub: RunningHub) -> None:
    worker = hub.client(Role.WORKER)
    assert worker.post("/api/v1/classify/report", json={}).status_code == 422
    assert worker.post("/api/v1/classify/report", json={"text": 5}).status_code == 422
    extra = {"text": "x", "category": "garbage"}
    assert worker.post("/api/v1/classify/report", json=extra).status_code == 422
    too_long = {"text": "路" * 20_001}
    assert worker.post("/api/v1/classify/report", json=too_long).status_code == 422
    assert hub.client(None).post("/api/v1/classify/report", json={"text": "x"}).status_code == 401
    # Installers file no reports, so they have no use for suggestions.
    installer = hub.client(Role.INSTALLER)
    assert installer.post("/api/v1/classify/report", json={"text": "x"}).status_code == 403
