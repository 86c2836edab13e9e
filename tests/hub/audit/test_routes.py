"""The audit API of a running hub (real broker, SQLite, uvicorn): concurrent audited requests,
querying, and a verify route that names the forged record."""

from __future__ import annotations

import base64
import json
import threading

import httpx
from sqlalchemy import func, select, update

from hub.auth import Role
from hub.schema import audit_log
from tests.hub.conftest import RunningHub


def test_concurrent_audited_requests_all_succeed(hub: RunningHub) -> None:
    """4 threads x 50 audited requests. Before the fix, audit appends raced on SQLite
    ('UNIQUE constraint failed: audit_log.seq') and the request failed with a 500."""
    clients = [hub.client(Role.ADMIN) for _ in range(4)]
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(client: httpx.Client, n: int) -> None:
        start.wait()
        for i in range(50):
            if i % 2:  # a change: its audit record commits with it
                res = client.post("/api/v1/auth/tokens", json={"name": f"t{n}-{i}"})
            else:  # an audited read: the record is the only write
                res = client.get("/api/v1/audit/verify")
            with lock:
                statuses.append(res.status_code)

    threads = [threading.Thread(target=worker, args=(c, n)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(statuses)) == [200, 201] and len(statuses) == 200
    with hub.service.store.engine.connect() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                select(audit_log.c.action, func.count())
                .where(audit_log.c.action.in_(["token.create", "audit.verify"]))
                .group_by(audit_log.c.action)
            ).all()
        )
    assert counts == {"token.create": 100, "audit.verify": 100}
    verdict = hub.client(Role.AUDITOR).get("/api/v1/audit/verify").json()
    assert verdict["ok"] is True and verdict["failures"] == []
    assert verdict["hmac_checked"] and verdict["checkpoints_checked"]
    assert verdict["checkpoints"] >= 1  # every 100 records by default


def test_query_filters_and_pages(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    for i in range(5):
        assert admin.post("/api/v1/auth/tokens", json={"name": f"page{i}"}).status_code == 201
    auditor = hub.client(Role.AUDITOR)
    first = auditor.get("/api/v1/audit", params={"action": "token.create", "limit": 3}).json()
    assert [r["target"] for r in first["items"]] == ["page4", "page3", "page2"]
    rest = auditor.get(
        "/api/v1/audit", params={"action": "token.create", "cursor": first["next_cursor"]}
    ).json()
    assert [r["target"] for r in rest["items"]] == ["page1", "page0"]
    assert rest["next_cursor"] is None
    for forged in ([1e400], ["x"], [-5], [10**30], [{"seq": 1}]):
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        res = auditor.get("/api/v1/audit", params={"cursor": cursor})
        assert res.status_code == 422, (forged, res.text)
    assert hub.client(Role.OPERATOR).get("/api/v1/audit/verify").status_code == 403


def test_verify_route_names_the_edited_record(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    for i in range(3):
        admin.post("/api/v1/auth/tokens", json={"name": f"v{i}"})
    engine = hub.service.store.engine
    with engine.connect() as conn:
        seq = conn.execute(select(audit_log.c.seq).where(audit_log.c.target == "v1")).scalar_one()
    with engine.begin() as conn:  # an insider edits one record's target
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(target="nothing"))
    verdict = hub.client(Role.AUDITOR).get("/api/v1/audit/verify").json()
    assert verdict["ok"] is False
    assert verdict["failures"][0] == {
        "kind": "record",
        "reason": "HMAC does not match: edited, forged without the audit key, or written under "
        "another key",
        "record_seq": seq,
        "checkpoint_line": None,
    }
    assert verdict["problems"][0].startswith(f"record {seq}: HMAC does not match")
