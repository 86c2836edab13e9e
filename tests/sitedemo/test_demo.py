"""`gridward demo` (the README's main command after set-up) brings up the whole stack: broker,
hub with API, and every simulated device online and reporting, the officers' glasses answering
their dispatches, then stops cleanly."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_whole_stack(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        # `python -m sitedemo` is `gridward demo` without the console script's entry point
        [sys.executable, "-m", "sitedemo", "--run-dir", str(run_dir), "--port", "0",
         "--duration-s", "50"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    url = password = None
    checked_api = False
    for line in proc.stdout:
        lines.append(line)
        if m := re.search(r"Dashboard\s+(http://127\.0\.0\.1:\d+/)", line):
            url = m.group(1)
        if m := re.search(r"Log in as\s+admin / (\S+)", line):
            password = m.group(1)
        if url and password and not checked_api and "received" in line:
            with httpx.Client(base_url=url, timeout=10) as client:
                assert client.get("/api/v1/devices").status_code == 401
                token = client.post("/api/v1/auth/login", json={
                    "username": "admin", "password": password}).json()["token"]
                client.headers["Authorization"] = f"Bearer {token}"
                devices = client.get("/api/v1/devices").json()["items"]
                assert {d["id"] for d in devices} == {
                    "camera-vtest", "lidar-yard", "wristband-gw-1", "glasses-officer-1",
                    "glasses-officer-2"}
                assert all(d["online"] == "online" for d in devices), devices
                cells = client.get("/api/v1/grid-cells").json()["features"]
                assert len(cells) == 12
                assert client.get("/").status_code == 200
            checked_api = True
    assert proc.wait(timeout=60) == 0, "".join(lines)
    output = "".join(lines)
    assert checked_api, output
    assert "Not started" not in output, output
    assert "gridward demo stopped." in output
    db = sqlite3.connect(run_dir / "hub.sqlite")
    try:
        kinds = {r[0] for r in db.execute("SELECT DISTINCT device FROM positions")}
        alerts = {r[0] for r in db.execute("SELECT DISTINCT device FROM alerts")}
        states = dict(db.execute("SELECT device, state FROM device_state").fetchall())
        loop = _incident_loop(db)
    finally:
        db.close()
    assert kinds == {"camera-vtest", "lidar-yard", "wristband-gw-1", "glasses-officer-1",
                     "glasses-officer-2"}
    assert {"camera-vtest", "wristband-gw-1"} <= alerts
    assert set(states.values()) == {"stopped"}
    # The incident loop on the accelerated clock (configs/site.yaml, workflow):
    assert loop["alert_incidents"] >= 2, loop  # alerts opened incidents by the alert rules...
    assert loop["grouped"] >= 1, loop  # ...and repeats joined one instead of opening more
    assert loop["unrouted"] == 0, loop  # every incident reached a department
    assert loop["reports"] == 2, loop  # both scripted field reports, each with an incident
    assert loop["report_categories"] == {"garbage", "streetlight"}, loop  # the classifier's
    assert loop["resolved_reports"] >= 1, loop  # the desk worked one to resolved
    assert loop["escalations"] >= 1, loop  # an overdue incident escalated
    assert loop["rule_colours"] >= 1, loop  # a cell took its colour from the warning rules
    assert "field report R-" in output and "escalations" in output, output
    # The officers' loop: bound to their glasses, on duty, dispatched to the critical and high
    # incidents, and their glasses answered (acknowledge, on my way, arrived) by themselves.
    assert loop["officers"] == {("officer-1", "glasses-officer-1", 1),
                                ("officer-2", "glasses-officer-2", 1)}, loop
    assert loop["on_scene"] >= 1, loop
    assert loop["answers"] >= 3, loop
    assert loop["assigned_to_officer"] >= 1, loop  # the acknowledgement assigned the incident
    for officer in ("officer-1", "officer-2"):
        assert f"HUD frames  {officer}:" in output, output
        frame = run_dir / "hud" / officer / "latest.png"
        assert frame.is_file() and frame.stat().st_size > 1000, frame


def _incident_loop(db: sqlite3.Connection) -> dict[str, Any]:
    def one(sql: str) -> int:
        return int(db.execute(sql).fetchone()[0])

    return {
        "alert_incidents": one("SELECT count(*) FROM incidents WHERE source = 'alert'"),
        "grouped": one("SELECT count(*) FROM incidents WHERE alert_count >= 2"),
        "unrouted": one("SELECT count(*) FROM incidents WHERE department_id IS NULL"),
        "reports": one("SELECT count(*) FROM field_reports WHERE incident_id IS NOT NULL"),
        "report_categories": {
            r[0] for r in db.execute("SELECT category FROM incidents WHERE source = 'report'")
        },
        "resolved_reports": one(
            "SELECT count(*) FROM incidents WHERE source = 'report' AND state = 'resolved'"
        ),
        "escalations": one(
            "SELECT count(*) FROM incident_timers WHERE fired_at IS NOT NULL"
            " AND kind LIKE 'escalate%'"
        ),
        "officers": set(db.execute("SELECT username, device, on_duty FROM officers")),
        "on_scene": one("SELECT count(*) FROM dispatches WHERE state = 'on_scene'"),
        "answers": one("SELECT count(*) FROM dispatch_answers"),
        "assigned_to_officer": one(
            "SELECT count(*) FROM incidents WHERE assignee IN ('officer-1', 'officer-2')"
        ),
        "rule_colours": one(
            "SELECT count(*) FROM cell_warning_history WHERE source = 'rules' AND level IS NOT NULL"
        ),
    }
