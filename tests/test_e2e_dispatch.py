"""The whole patrol-officer loop (issue 14 item 4) on real parts: a camera agent's alert ->
the hub's incident -> a dispatch to the nearest officer -> the Notify on a real glasses agent
process (`gridward edge glasses`, simulated GNSS on a pty, PNG HUD) -> the HUD frame shows it ->
the agent's answers (acknowledge, on my way, arrived: its demo auto-answer) -> the hub's
dispatch states and the incident follow -> the officer resolves through the task route ->
resolved, every step audited."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

from edge.agent import AgentRuntime
from edge.alert_details import IntrusionDetails
from edge.glasses.hud import HudRenderer
from edge.glasses.view import HudView
from edge.protocol import Location, Severity
from edge.sim import RoutePoint
from edge.validators import utcnow
from hub.auth import Role
from sitedemo.gnss import SimulatedGnss
from tests.hub.conftest import PASSWORD, RunningHub, provisioned_agent, start_hub, stop_hub
from tests.support.broker import BrokerHarness, unique_site

T = TypeVar("T")
HERE = (114.0579, 22.5431)
W, H = 640, 400
GRIDWARD = [sys.executable, "-c", "import sys; from edge.cli import main; sys.exit(main())"]


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    hub: RunningHub
    camera: AgentRuntime
    officer: str
    device: str
    hud_dir: Path
    agent: subprocess.Popen[bytes]
    local_api: httpx.Client
    admin: httpx.Client
    officer_client: httpx.Client


@pytest.fixture(scope="module")
def stack(broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    site = unique_site("e2e")
    hub = start_hub(broker, site, tmp)
    gnss = SimulatedGnss([RoutePoint(lon=HERE[0], lat=HERE[1]),
                          RoutePoint(lon=HERE[0] + 0.0005, lat=HERE[1])], speed_mps=1.0)
    proc: subprocess.Popen[bytes] | None = None
    camera: AgentRuntime | None = None
    local: httpx.Client | None = None
    try:
        officer, device = f"{site}-officer", f"{site}-glasses"
        admin = hub.client(Role.ADMIN)
        creds = admin.post("/api/v1/devices",
                           json={"id": device, "site": site, "kind": "glasses"}).json()
        (tmp / "glasses.pw").write_text(creds["mqtt_password"], encoding="utf-8")
        (tmp / "local.token").write_text("local-api-token-for-the-test", encoding="utf-8")
        (tmp / "local.token").chmod(0o600)
        port = free_port()
        hud_dir = tmp / "hud"
        config = {
            "site": site, "device": device, "data_dir": str(tmp / "glasses"),
            "mqtt": {"port": broker.port, "username": device,
                     "password_file": str(tmp / "glasses.pw"), "reconnect_min_s": 0.05},
            "officer": {"username": officer},
            "display": {"width_px": W, "height_px": H,
                        "sink": {"type": "png", "directory": str(hud_dir)}},
            "speech": {"enabled": False},
            "position": {"source": "gnss", "port": gnss.port},
            "position_interval_s": 0.5,
            "inputs": {"http": {"enabled": True, "port": port,
                                "token_file": str(tmp / "local.token")}},
            "demo": True,
            # long enough for the HUD to show the dispatch unanswered first
            "auto_answer": {"after_s": 1.0},
        }
        (tmp / "glasses.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        gnss.start()
        log = (tmp / "glasses.log").open("wb")
        proc = subprocess.Popen(
            [*GRIDWARD, "edge", "glasses", "--config", str(tmp / "glasses.yaml")],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        local = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                             headers={"Authorization": "Bearer local-api-token-for-the-test"})
        res = admin.put(f"/api/v1/officers/{officer}", json={"device": device, "on_duty": True})
        assert res.status_code == 200, res.text

        def available() -> dict[str, Any] | None:
            for o in admin.get("/api/v1/officers").json():
                if o["username"] == officer and o["availability"] == "available":
                    return dict(o)
            return None

        wait_for("the officer available (bound, on duty, a fix from the glasses)", available)
        camera = provisioned_agent(hub, broker, tmp, f"{site}-cam", "camera")
        officer_client = hub.client(None)
        token = officer_client.post("/api/v1/auth/login", json={
            "username": officer, "password": PASSWORD}).json()["token"]
        officer_client.headers["Authorization"] = f"Bearer {token}"
        yield Stack(hub, camera, officer, device, hud_dir, proc, local, admin, officer_client)
    finally:
        if local is not None:
            local.close()
        if camera is not None:
            camera.stop()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        gnss.stop()
        stop_hub(broker, hub)


def _card_differs_from_empty(png: Path) -> bool:
    """The HUD frame's severity band differs from an empty HUD's: a card is drawn."""
    renderer = HudRenderer(W, H)
    empty = renderer.render(HudView(now=utcnow(), language="en"))
    frame = np.asarray(Image.open(png).convert("RGB"))
    x0, y0, x1, y1 = renderer.layout()["severity"]
    band, blank = frame[y0:y1, x0:x1], empty[y0:y1, x0:x1]
    return bool(np.count_nonzero(np.any(band != blank, axis=2)) > 0.05 * band[..., 0].size)


def test_alert_to_resolved_through_the_glasses(stack: Stack) -> None:
    admin = stack.admin
    alert = stack.camera.raise_alert(
        IntrusionDetails(source="camera", track_id="7", x_px=320.0, y_px=400.0),
        severity=Severity.HIGH, title="person entered yard",
        location=Location(lon=HERE[0] + 0.0003, lat=HERE[1] + 0.0002), zone="yard")

    def incident() -> dict[str, Any] | None:
        items = admin.get("/api/v1/incidents").json()["items"]
        return next((i for i in items if i["source"] == "alert"), None)

    inc = wait_for("the alert's incident", incident)
    assert inc["level"] == "high"

    # The box got the Notify (its local API lists it), before any answer...
    def on_box() -> dict[str, Any] | None:
        try:
            items = stack.local_api.get("/v1/state").json()["items"]
        except httpx.TransportError:
            return None
        return next((i for i in items if i["dispatch_id"]), None)

    item = wait_for("the notification on the glasses", on_box)
    assert item["incident_number"] == inc["number"]
    mine = stack.officer_client.get("/api/v1/dispatches/mine").json()
    assert [(d["incident_id"], d["alert_id"]) for d in mine] == [(inc["id"], alert.id)]
    # ...and the HUD frame shows its card.
    latest = stack.hud_dir / "latest.png"
    wait_for("a HUD frame with the card", lambda: latest.is_file()
             and _card_differs_from_empty(latest))

    def dispatch_in(state: str) -> dict[str, Any] | None:
        rows = admin.get(f"/api/v1/incidents/{inc['id']}/dispatches").json()
        return next((d for d in rows if d["state"] == state), None)

    done = wait_for("the dispatch on scene (acknowledged, on my way, arrived)",
                    lambda: dispatch_in("on_scene"))
    assert done["officer"] == stack.officer and done["device"] == stack.device
    assert done["delivered_at"] is not None  # the box's receipt Reply reached the hub
    assert done["notify_id"] == item["notify_id"]

    task = stack.officer_client.get(f"/api/v1/tasks/{inc['id']}")
    assert task.status_code == 200, task.text  # acknowledged: assigned to the officer
    assert task.json()["state"] == "in_progress"  # on my way: in progress
    res = stack.officer_client.post(f"/api/v1/tasks/{inc['id']}/done", json={
        "version": task.json()["version"], "note": "gate closed, nobody left in the yard"})
    assert res.status_code == 200, res.text
    assert res.json()["state"] == "resolved"

    records = admin.get("/api/v1/audit", params={"target": inc["id"], "limit": 100}).json()
    steps = [(r["action"], r["details"].get("answer")) for r in reversed(records["items"])
             if r["action"].startswith(("dispatch.", "incident."))]
    # Opened and dispatched in one transaction, then each answer and its effect, then done.
    assert set(steps[:2]) == {("incident.open", None), ("dispatch.notify", None)}, steps
    assert steps[2:] == [
        ("dispatch.answer", "acknowledge"), ("incident.assign", None),
        ("dispatch.answer", "on_my_way"), ("incident.start", None),
        ("dispatch.answer", "arrived"),
        ("incident.resolve", None),
    ], steps
    answers = [r for r in records["items"] if r["action"] == "dispatch.answer"]
    assert {(r["details"]["dispatch"], r["actor"], r["details"]["via"]) for r in answers} == {
        (done["id"], stack.officer, "mqtt")}  # from the glasses, through the broker
    assert admin.get("/api/v1/audit/verify").json()["ok"] is True


@pytest.mark.bench
def test_bench_script_runs() -> None:
    """bench/e2e.py still runs the whole path (on request: pytest -m bench)."""
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [sys.executable, str(root / "bench" / "e2e.py"), "--events", "9", "--rate-per-s", "10",
         "--baseline", "5", "--inference-frames", "0"],
        capture_output=True, text=True, timeout=300, check=False, cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "9 through every hop" in res.stdout, res.stdout
    assert "dispatched -> rendered" in res.stdout, res.stdout
