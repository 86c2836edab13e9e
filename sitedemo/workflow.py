"""The demo's incident loop: the district's organisation, scripted field reports from grid
workers, and a department desk that works them, on the hub's accelerated clock.

Everything goes through the hub's own API (a phone and a desk would use nothing else), except
the organisation, which is seeded straight into the database like the rest of the demo site.
"""

from __future__ import annotations

import json
import logging
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select, update

from edge.validators import new_id
from hub.auth import Role, create_user, issue_token
from hub.broker import new_password
from hub.schema import (
    cell_departments,
    departments,
    grid_cells,
    incident_timers,
    incidents,
    team_members,
    teams,
)
from sitedemo.site import DemoFieldReport, SiteConfig

log = logging.getLogger(__name__)


def team_id(row: int) -> str:
    return f"team-{string.ascii_lowercase[row]}"


def seed_organisation(
    engine: Engine, site: SiteConfig, secrets: Path, write_secret: Any
) -> dict[str, str]:
    """Users, departments, row teams and who is responsible for each cell; returns the
    people's passwords by username (also written to ``secrets``)."""
    wf = site.workflow
    if wf is None:
        return {}
    now = datetime.now(UTC)
    people: list[tuple[str, str, Role]] = [
        (wf.commander.username, wf.commander.name, Role.COMMANDER)
    ]
    people += [(d.supervisor.username, d.supervisor.name, Role.OPERATOR) for d in wf.departments]
    people += [(w.username, w.name, Role.WORKER) for w in wf.grid_workers]
    passwords: dict[str, str] = {}
    with engine.begin() as conn:
        for username, name, role in people:
            passwords[username] = new_password()
            create_user(conn, username, passwords[username], role, name)
            write_secret(secrets / f"{username}.password", passwords[username])
        conn.execute(
            departments.insert(),
            [
                {
                    "id": d.id,
                    "site": site.site,
                    "name": d.name,
                    "line": d.line,
                    "supervisor": d.supervisor.username,
                    "commander": wf.commander.username,
                    "updated_at": now,
                }
                for d in wf.departments
            ],
        )
        for row, name in enumerate(site.grid.row_teams):
            members = [w.username for w in wf.grid_workers if w.row == row]
            conn.execute(
                teams.insert().values(
                    id=team_id(row),
                    site=site.site,
                    name=name,
                    leader=members[0] if members else None,
                    updated_at=now,
                )
            )
            if members:
                conn.execute(
                    team_members.insert(),
                    [{"team_id": team_id(row), "username": m} for m in members],
                )
        for cell_id in site.grid.cell_ids():
            row = string.ascii_lowercase.index(cell_id.removeprefix("cell-")[0])
            conn.execute(
                update(grid_cells).where(grid_cells.c.id == cell_id).values(team_id=team_id(row))
            )
        conn.execute(
            cell_departments.insert(),
            [
                {"cell_id": cell_id, "line": d.line, "department_id": d.id}
                for cell_id in site.grid.cell_ids()
                for d in wf.departments
            ],
        )
    return passwords


def demo_photo() -> bytes | None:
    """A frame of the demo video as a JPEG (a grid worker's photo); None without OpenCV."""
    try:
        import cv2

        from edge.camera.testdata import vtest_path

        capture = cv2.VideoCapture(str(vtest_path()))
        try:
            ok, frame = capture.read()
        finally:
            capture.release()
        if not ok:
            return None
        ok, encoded = cv2.imencode(".jpg", frame)
        return bytes(encoded) if ok else None
    except Exception:  # a photo is optional in the demo
        log.warning("no demo photo: the demo video is not available", exc_info=True)
        return None


@dataclass
class LoopStats:
    reports_filed: int = 0
    reports_failed: int = 0
    desk_resolved: int = 0
    desk_errors: int = 0
    errors: list[str] = field(default_factory=list)


class WorkflowDriver:
    """Files the scripted field reports and plays the department desk, on a thread."""

    def __init__(self, base_url: str, engine: Engine, site: SiteConfig) -> None:
        if site.workflow is None:
            raise ValueError("the site has no workflow section")
        self.base_url = base_url
        self.engine = engine
        self.site = site
        self.workflow = site.workflow
        self.stats = LoopStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tokens: dict[str, str] = {}
        self._photo: bytes | None = None
        self._seen: dict[str, float] = {}  # report incidents -> when the desk first saw them

    def _token(self, username: str) -> str:
        if username not in self._tokens:
            with self.engine.begin() as conn:
                self._tokens[username] = issue_token(
                    conn, username, "api", "demo", timedelta(days=1)
                )[0]
        return self._tokens[username]

    def _client(self, username: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self._token(username)}"},
            timeout=10,
        )

    def start(self) -> None:
        if any(r.photo for r in self.workflow.field_reports):
            self._photo = demo_photo()
        self._thread = threading.Thread(target=self._run, name="demo-workflow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        started = time.monotonic()
        pending = sorted(self.workflow.field_reports, key=lambda r: r.after_s)
        while not self._stop.wait(1.0):
            elapsed = time.monotonic() - started
            while pending and pending[0].after_s <= elapsed:
                self._file(pending.pop(0))
            if self.workflow.desk_resolves_reports_after_s is not None:
                self._desk(self.workflow.desk_resolves_reports_after_s)

    def _file(self, report: DemoFieldReport) -> None:
        lon, lat = self.site.lonlat(report.at)
        body = {
            "client_report_id": new_id(),
            "description": report.description,
            "lon": lon,
            "lat": lat,
        }
        files: list[tuple[str, tuple[str | None, bytes | str, str]]] = [
            ("report", (None, json.dumps(body, ensure_ascii=False), "application/json"))
        ]
        if report.photo and self._photo is not None:
            files.append(("photo", ("photo.jpg", self._photo, "image/jpeg")))
        try:
            with self._client(report.by) as client:
                res = client.post("/api/v1/field-reports", files=files)
            res.raise_for_status()
            got = res.json()
            self.stats.reports_filed += 1
            print(
                f"  field report {got.get('number')} from {report.by}: category "
                f"{got.get('category')} (suggested {got.get('suggested_category')}), incident "
                f"{got.get('incident_number')}",
                flush=True,
            )
        except httpx.HTTPError as err:
            self.stats.reports_failed += 1
            self.stats.errors.append(f"field report from {report.by}: {err}")
            log.warning("demo field report from %s failed: %s", report.by, err)

    def _desk(self, after_s: float) -> None:
        """The department desk: assign, start and resolve field-report incidents."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    incidents.c.id,
                    incidents.c.department_id,
                    incidents.c.state,
                    incidents.c.version,
                )
                .where(incidents.c.source == "report")
                .where(incidents.c.state.in_(["new", "assigned", "in_progress"]))
            ).all()
            supervisors = dict(
                conn.execute(select(departments.c.id, departments.c.supervisor)).all()
            )
        now = time.monotonic()
        for row in rows:
            first = self._seen.setdefault(row.id, now)
            if now - first < after_s:
                continue
            desk = supervisors.get(row.department_id) or self.workflow.commander.username
            try:
                with self._client(desk) as client:
                    self._work(client, row.id, desk)
                self.stats.desk_resolved += 1
            except httpx.HTTPError as err:
                self.stats.desk_errors += 1
                self.stats.errors.append(f"desk on {row.id}: {err}")
                log.warning("demo desk could not work incident %s: %s", row.id, err)

    @staticmethod
    def _work(client: httpx.Client, incident_id: str, desk: str) -> None:
        base = f"/api/v1/incidents/{incident_id}"
        for step, body in (
            ("assign", {"assignee": desk}),
            ("start", {}),
            ("resolve", {"text": "Handled on site by the department desk (demo)."}),
        ):
            current = client.get(base)
            current.raise_for_status()
            state = current.json()["state"]
            if (step, state) in {
                ("assign", "assigned"),
                ("assign", "in_progress"),
                ("start", "in_progress"),
            }:
                continue
            res = client.post(f"{base}/{step}", json={**body, "version": current.json()["version"]})
            res.raise_for_status()


def summary(engine: Engine) -> str:
    """One progress line: incidents by state, escalations, cells by colour."""
    with engine.connect() as conn:
        by_state = conn.execute(
            select(incidents.c.state, func.count()).group_by(incidents.c.state)
        ).all()
        escalated = conn.execute(
            select(func.count())
            .select_from(incident_timers)
            .where(
                incident_timers.c.fired_at.is_not(None) & incident_timers.c.kind.like("escalate%")
            )
        ).scalar()
        by_colour = conn.execute(
            select(grid_cells.c.warning_level, func.count())
            .where(grid_cells.c.warning_level.is_not(None))
            .group_by(grid_cells.c.warning_level)
        ).all()
    states: Counter[str] = Counter({str(k): int(v) for k, v in by_state})
    colours: Counter[str] = Counter({str(k): int(v) for k, v in by_colour})
    open_n = states["new"] + states["assigned"] + states["in_progress"]
    done = states["resolved"] + states["closed"]
    cells = ", ".join(f"{colours[c]} {c}" for c in ("red", "orange", "yellow") if colours[c])
    return (
        f"incidents {open_n} open / {done} resolved, escalations {escalated}, "
        f"warnings: {cells or 'none'}"
    )
