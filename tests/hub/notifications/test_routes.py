"""The inbox API: mine only, newest first, rendered in my language and the site's zone,
paged, and another user's notification is as absent as one that never existed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.auth import Role
from hub.i18n import translate
from hub.notifications.repository import notify
from hub.notifications.routes import language
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness

DEADLINE = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)  # 18:30 in Shanghai


@pytest.fixture
def hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    running = start_hub(broker, site, tmp_path, timezone="Asia/Shanghai")
    yield running
    stop_hub(broker, running)


def put(hub: RunningHub, role: Role, n: int, key: str = "notify.incident_overdue") -> None:
    with hub.service.store.engine.begin() as conn:
        for i in range(n):
            notify(
                conn,
                f"{hub.site}-{role.value}",
                kind="escalate_supervisor",
                message_key=key,
                params={
                    "number": f"I-{i:06d}",
                    "title": "Bins",
                    "deadline_at": DEADLINE.isoformat(),
                },
                now=DEADLINE + timedelta(minutes=i),
            )


def items(res: Any) -> list[dict[str, Any]]:
    assert res.status_code == 200, res.text
    out: list[dict[str, Any]] = res.json()["items"]
    return out


def test_mine_only_newest_first_rendered_in_my_language(hub: RunningHub) -> None:
    put(hub, Role.OPERATOR, 3)
    put(hub, Role.OFFICER, 2)
    operator = hub.client(Role.OPERATOR)
    mine = items(operator.get("/api/v1/notifications"))
    assert [n["params"]["number"] for n in mine] == ["I-000002", "I-000001", "I-000000"]
    assert mine[0]["text"] == (
        'Incident I-000002 "Bins" is overdue (deadline 2026-12-01 18:30 CST): please supervise it.'
    )
    zh = items(operator.get("/api/v1/notifications", params={"lang": "zh-CN"}))
    assert zh[0]["text"] == translate(
        "notify.incident_overdue",
        "zh-CN",
        number="I-000002",
        title="Bins",
        deadline_at="2026-12-01 18:30 CST",
    )
    assert "督办" in zh[0]["text"]
    by_header = items(
        operator.get("/api/v1/notifications", headers={"Accept-Language": "en;q=0.5, zh-CN"})
    )
    assert by_header[0]["text"] == zh[0]["text"]
    assert len(items(hub.client(Role.OFFICER).get("/api/v1/notifications"))) == 2
    assert items(hub.client(Role.COMMANDER).get("/api/v1/notifications")) == []


def test_mark_read_unread_filter_and_count(hub: RunningHub) -> None:
    put(hub, Role.OPERATOR, 3)
    operator = hub.client(Role.OPERATOR)
    newest = items(operator.get("/api/v1/notifications"))[0]
    res = operator.post(f"/api/v1/notifications/{newest['id']}/read")
    assert res.status_code == 200, res.text
    first_read = res.json()["read_at"]
    assert first_read is not None
    again = operator.post(f"/api/v1/notifications/{newest['id']}/read").json()
    assert again["read_at"] == first_read  # idempotent: the first read time stays
    unread = items(operator.get("/api/v1/notifications", params={"unread": "true"}))
    assert newest["id"] not in [n["id"] for n in unread]
    assert len(unread) == 2
    assert operator.get("/api/v1/notifications/unread-count").json() == {"unread": 2}


def test_another_users_notification_is_not_found(hub: RunningHub) -> None:
    put(hub, Role.OFFICER, 1)
    officer = hub.client(Role.OFFICER)
    [theirs] = items(officer.get("/api/v1/notifications"))
    for role in (Role.OPERATOR, Role.ADMIN, Role.COMMANDER):
        res = hub.client(role).post(f"/api/v1/notifications/{theirs['id']}/read")
        assert res.status_code == 404, (role, res.text)
    assert items(officer.get("/api/v1/notifications"))[0]["read_at"] is None  # still unread
    assert hub.client(Role.OPERATOR).post("/api/v1/notifications/999999/read").status_code == 404
    assert hub.client(None).get("/api/v1/notifications").status_code == 401


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "99999999999999999999999", "1.5"])
def test_garbage_ids_are_refused(hub: RunningHub, bad: str) -> None:
    res = hub.client(Role.OPERATOR).post(f"/api/v1/notifications/{bad}/read")
    assert res.status_code == 422, res.text


def test_pages_follow_the_cursor(hub: RunningHub) -> None:
    put(hub, Role.OPERATOR, 5)
    operator = hub.client(Role.OPERATOR)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        res = operator.get("/api/v1/notifications", params=params)
        seen += [n["id"] for n in items(res)]
        cursor = res.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)
    bad = operator.get("/api/v1/notifications", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 422
    assert operator.get("/api/v1/notifications", params={"lang": "fr"}).status_code == 422


def test_an_unknown_key_shows_the_key_not_an_error(hub: RunningHub) -> None:
    put(hub, Role.OPERATOR, 1, key="notify.from_a_newer_hub")
    [n] = items(hub.client(Role.OPERATOR).get("/api/v1/notifications"))
    assert n["text"] == "notify.from_a_newer_hub"


@pytest.mark.parametrize(
    ("lang", "header", "expected"),
    [
        (None, None, "en"),
        ("zh-CN", "en", "zh-CN"),
        (None, "zh-TW,zh;q=0.8", "zh-CN"),
        (None, "fr-FR, de;q=0.9", "en"),
        (None, "zh;q=0, en;q=0.1", "en"),
        (None, "zh;q=abc", "en"),
        (None, "*", "en"),
        (None, "," * 5000, "en"),
    ],
)
def test_language_negotiation(lang: str | None, header: str | None, expected: str) -> None:
    assert language(lang, header) == expected
