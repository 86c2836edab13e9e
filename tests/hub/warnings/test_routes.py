"""The warning routes on a running hub: explanation, history pages, the manual override with
its expiry (clock-driven), the old /warning route, and hostile input."""

from __future__ import annotations

import json
from datetime import timedelta

from websockets.sync.client import connect

from hub.auth import Role
from tests.hub.warnings.conftest import ClockedHub


def _iso(clocked: ClockedHub, **delta: float) -> str:
    return (clocked.w.clock.now() + timedelta(**delta)).isoformat()


def test_explanation_names_the_rule_and_the_incidents_behind_it(clocked_hub: ClockedHub) -> None:
    w = clocked_hub.w
    w.cell("a1", 0, name="Market Street")
    critical = w.incident("a1", "critical", "fire_hazard", deadline_in_min=30)
    w.incident("a1", "low")
    w.advance(minutes=45)
    for _ in range(5):
        w.alert(0)
    w.tick()
    reader = clocked_hub.running.client(Role.OPERATOR)
    body = reader.get("/api/v1/grid-cells/a1/warning").json()
    assert body["level"] == "red"
    assert body["source"] == "rules"
    assert body["rule"] == "critical-open"
    assert body["name"] == "Market Street"
    assert body["since"].startswith("2026-12-01T01:45:00")
    assert body["matched_rules"] == ["critical-open", "high-open", "alert-burst"]
    assert body["incident_count"] == 1
    (behind,) = body["incidents"]
    assert behind == {
        "id": critical.id,
        "number": critical.number,
        "level": "critical",
        "category": "fire_hazard",
        "age_min": 45.0,
        "overdue": True,
    }
    assert body["alerts"] is None  # the winning rule counts no alerts
    assert reader.get("/api/v1/grid-cells/nowhere/warning").status_code == 404
    assert reader.get("/api/v1/grid-cells/bad%20id/warning").status_code == 422


def test_override_wins_until_it_expires_then_the_rules_take_over(clocked_hub: ClockedHub) -> None:
    w = clocked_hub.w
    w.cell("a1", 0)
    w.incident("a1", "high")
    w.tick()
    cmd = clocked_hub.running.client(Role.COMMANDER)
    res = cmd.put(
        "/api/v1/grid-cells/a1/warning-override",
        json={"level": "red", "reason": "festival crowd", "expires_at": _iso(clocked_hub, hours=2)},
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["level"], body["source"], body["rule"]) == ("red", "override", None)
    assert body["override"]["reason"] == "festival crowd"
    assert body["override"]["by"] == f"{clocked_hub.running.site}-commander"
    assert body["matched_rules"] == ["high-open"]  # what the rules would say meanwhile
    cell = cmd.get("/api/v1/grid-cells/a1").json()["properties"]
    assert (cell["warning_level"], cell["warning_source"]) == ("red", "override")
    w.advance(hours=1, minutes=59)
    assert w.tick() == []
    w.advance(minutes=2)  # expired: the worker hands the cell back to the rules
    changes = w.tick()
    assert [(c.level, c.source) for c in changes] == [("orange", "rules")]
    items = cmd.get("/api/v1/grid-cells/a1/warning-history").json()["items"]
    assert [(i["level"], i["source"], i["actor"]) for i in items] == [
        ("orange", "rules", "system:warnings"),
        ("red", "override", f"{clocked_hub.running.site}-commander"),
        ("orange", "rules", "system:warnings"),
    ]
    auditor = clocked_hub.running.client(Role.AUDITOR)
    audit = auditor.get("/api/v1/audit", params={"action": "cell.warning_override"}).json()
    assert audit["items"][0]["details"]["reason"] == "festival crowd"


def test_delete_ends_the_override_early_and_none_forces_no_colour(clocked_hub: ClockedHub) -> None:
    w = clocked_hub.w
    w.cell("a1", 0)
    w.incident("a1", "critical")
    w.tick()
    cmd = clocked_hub.running.client(Role.COMMANDER)
    res = cmd.put(
        "/api/v1/grid-cells/a1/warning-override",
        json={"level": "none", "reason": "false alarm, checked on site",
              "expires_at": _iso(clocked_hub, hours=1)},
    )
    assert (res.json()["level"], res.json()["source"]) == (None, "override")
    w.tick()
    assert w.level("a1") is None  # the rules do not win it back while the override holds
    res = cmd.delete("/api/v1/grid-cells/a1/warning-override")
    assert (res.json()["level"], res.json()["source"]) == ("red", "rules")
    assert cmd.delete("/api/v1/grid-cells/a1/warning-override").status_code == 404
    auditor = clocked_hub.running.client(Role.AUDITOR)
    ends = auditor.get("/api/v1/audit", params={"action": "cell.warning_override_end"}).json()
    assert [e["target"] for e in ends["items"]] == ["a1"]


def test_hostile_overrides_get_clear_errors_and_change_nothing(clocked_hub: ClockedHub) -> None:
    w = clocked_hub.w
    w.cell("a1", 0)
    w.tick()
    cmd = clocked_hub.running.client(Role.COMMANDER)
    good = {"level": "red", "reason": "flooding", "expires_at": _iso(clocked_hub, hours=1)}
    cases = {
        "no reason": {k: v for k, v in good.items() if k != "reason"},
        "empty reason": {**good, "reason": ""},
        "blank reason": {**good, "reason": "   "},
        "no expiry": {k: v for k, v in good.items() if k != "expires_at"},
        "past expiry": {**good, "expires_at": _iso(clocked_hub, minutes=-1)},
        "naive expiry": {**good, "expires_at": "2026-12-01T05:00:00"},
        "too long": {**good, "expires_at": _iso(clocked_hub, days=7, minutes=1)},
        "purple": {**good, "level": "purple"},
        "extra field": {**good, "by": "someone-else"},
        "nul": {**good, "reason": "bad\x00reason"},
        "not a date": {**good, "expires_at": "tomorrow"},
    }
    for name, body in cases.items():
        res = cmd.put("/api/v1/grid-cells/a1/warning-override", json=body)
        assert res.status_code == 422, (name, res.status_code, res.text)
    huge = cmd.put(
        "/api/v1/grid-cells/a1/warning-override", json={**good, "reason": "x" * 1_000_000}
    )
    assert huge.status_code in {413, 422}
    assert cmd.put("/api/v1/grid-cells/nope/warning-override", json=good).status_code == 404
    operator = clocked_hub.running.client(Role.OPERATOR)
    assert operator.put("/api/v1/grid-cells/a1/warning-override", json=good).status_code == 403
    assert operator.delete("/api/v1/grid-cells/a1/warning-override").status_code == 403
    anonymous = clocked_hub.running.client(None)
    assert anonymous.get("/api/v1/grid-cells/a1/warning").status_code == 401
    assert w.level("a1") is None
    assert cmd.get("/api/v1/grid-cells/a1/warning-history").json()["items"] == []
    # At the limit it is accepted.
    edge = {**good, "expires_at": _iso(clocked_hub, days=7)}
    assert cmd.put("/api/v1/grid-cells/a1/warning-override", json=edge).status_code == 200


def test_the_old_warning_route_is_an_override_with_the_default_expiry(
    clocked_hub: ClockedHub,
) -> None:
    w = clocked_hub.w
    w.cell("a1", 0)
    cmd = clocked_hub.running.client(Role.COMMANDER)
    res = cmd.post("/api/v1/grid-cells/a1/warning", json={"level": "yellow", "reason": "works"})
    assert res.json()["properties"]["warning_level"] == "yellow"
    explained = cmd.get("/api/v1/grid-cells/a1/warning").json()
    assert explained["override"]["expires_at"].startswith("2026-12-02T01:00:00")  # 24 h
    w.advance(hours=24, seconds=1)
    w.tick()
    assert w.level("a1") is None
    cmd.post("/api/v1/grid-cells/a1/warning", json={"level": "red", "reason": "again"})
    res = cmd.post("/api/v1/grid-cells/a1/warning", json={"level": None, "reason": "cleared"})
    assert res.json()["properties"]["warning_level"] is None
    # Clearing with no override in place is not an error on the old route.
    res = cmd.post("/api/v1/grid-cells/a1/warning", json={"level": None, "reason": "cleared"})
    assert res.status_code == 200


def test_history_pages_with_a_cursor(clocked_hub: ClockedHub) -> None:
    w = clocked_hub.w
    w.cell("a1", 0)
    cmd = clocked_hub.running.client(Role.COMMANDER)
    for n, level in enumerate(["red", "orange", "yellow", "red", "none"]):
        cmd.put(
            "/api/v1/grid-cells/a1/warning-override",
            json={"level": level, "reason": f"step {n}", "expires_at": _iso(clocked_hub, hours=1)},
        ).raise_for_status()
    seen: list[str | None] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = cmd.get("/api/v1/grid-cells/a1/warning-history", params=params).json()
        seen += [i["reason"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"step {n}" for n in range(4, -1, -1)]
    assert pages == 3
    bad = cmd.get("/api/v1/grid-cells/a1/warning-history", params={"cursor": "garbage!"})
    assert bad.status_code == 422


def test_a_colour_change_reaches_the_live_stream(clocked_hub: ClockedHub) -> None:
    w = clocked_hub.w
    w.cell("a1", 0)
    w.tick()
    running = clocked_hub.running
    token = running.client(Role.OPERATOR).headers["Authorization"].split()[1]
    url = f"ws://127.0.0.1:{running.port}/api/v1/live?layers=warnings&token={token}"
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=10))["layer"] == "hello"
        w.incident("a1", "critical")
        w.tick()
        event = json.loads(ws.recv(timeout=10))
    assert event == {
        "layer": "warnings",
        "site": running.site,
        "cell": "a1",
        "level": "red",
        "previous": None,
        "source": "rules",
        "rule": "critical-open",
    }


def test_incidents_behind_a_colour_are_shown_only_with_incidents_read(
    clocked_hub: ClockedHub,
) -> None:
    w = clocked_hub.w
    w.cell("a1", 0)
    w.incident("a1", "critical")
    w.tick()
    installer = clocked_hub.running.client(Role.INSTALLER)  # cells:read, no incidents:read
    body = installer.get("/api/v1/grid-cells/a1/warning").json()
    assert (body["level"], body["rule"], body["incident_count"]) == ("red", "critical-open", 1)
    assert body["incidents"] == []
    (item,) = installer.get("/api/v1/grid-cells/a1/warning-history").json()["items"]
    assert item["explanation"]["incidents"] == []
    operator = clocked_hub.running.client(Role.OPERATOR)
    assert len(operator.get("/api/v1/grid-cells/a1/warning").json()["incidents"]) == 1
    (item,) = operator.get("/api/v1/grid-cells/a1/warning-history").json()["items"]
    assert len(item["explanation"]["incidents"]) == 1
