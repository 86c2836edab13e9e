"""Dashboard: 5,000 live markers updating once a second, measured in Debian's Chromium; with
--triage, the triage feed over 10,000 open incidents under 50 new alerts a second.

    .venv/bin/python bench/dashboard.py [--entities 5000] [--seconds 10]
    .venv/bin/python bench/dashboard.py --triage [--incidents 10000] [--rate 50] [--seconds 10]

One real broker, one real hub, one logged-in dashboard (1920x1080). Three phases, same page:

  baseline  the dashboard with an empty positions layer (its frame time is the reference)
  inject    N entities move once a second, fed in the page as live batch frames handed to
            the dashboard's own WebSocket message handler: the browser's own cost
  e2e       N entities move once a second, published over MQTT as PositionBatch (500 per
            message) -> broker -> hub ingest (SQLite) -> live WebSocket -> canvas

Frame time = interval between requestAnimationFrame callbacks (60 Hz display: 16.7 ms ideal);
draw = time the positions canvas takes per frame; latency = wall clock from the position's
timestamp (set when published) to the end of the frame that drew it. Draw and latency come
from the dashboard's read-only render diagnostic (gridwardDiagnostics, docs/dashboard.md);
the page has no test hooks, so the bench drives it through its address, its config and its
WebSocket like any client.
"""

from __future__ import annotations

import argparse
import math
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import Page, sync_playwright

from edge.agent import AgentRuntime
from edge.config import AgentConfig
from edge.protocol import AlertKind, DeviceKind, EntityKind, Position, Severity
from edge.validators import new_id, utcnow
from hub.auth import Role, create_user
from hub.config import ApiConfig, HubConfig
from hub.dashboard_config import DashboardConfig
from hub.service import HubService
from tests.support.broker import BrokerHarness

SITE = "bench"
PASSWORD = secrets.token_urlsafe(18)  # a throwaway user of a temporary hub
ORIGIN = (114.0570, 22.5430)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# The page's own WebSocket, kept by an init script (bench side) so INJECT_JS can hand it frames.
KEEP_SOCKET_JS = """(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.benchSocket = this; }
  };
})()"""

MEASURE_JS = """(seconds) => new Promise((resolve) => {
  const render = () => window.gridwardDiagnostics.render();
  const before = render();
  const since = (after, key) => {
    const n = after[`${key}_count`] - before[`${key}_count`];
    return n > 0 ? after[`${key}_ms`].slice(-n) : [];
  };
  const frames = [];
  let last = performance.now();
  const end = last + seconds * 1000;
  function tick(now) {
    frames.push(now - last); last = now;
    if (now < end) { requestAnimationFrame(tick); return; }
    const after = render();
    resolve({frames, draw: since(after, "draw"), latency: since(after, "ts_to_draw"),
             recv: since(after, "recv_to_draw"), updates: after.updates - before.updates,
             entities: after.entities});
  }
  requestAnimationFrame(tick);
})"""

INJECT_JS = """([n, seconds, lon0, lat0]) => {
  // Same shape as the hub's live events; 1 Hz per entity, spread over the second in 10 slices.
  let step = 0;
  const kinds = ["officer", "wearer", "track"];
  const timer = setInterval(() => {
    const slice = step % 10;
    const ts = new Date().toISOString();
    const events = [];
    for (let i = slice; i < n; i += 10) {
      const a = (i / n) * Math.PI * 2 + step * 0.002;
      const r = 0.002 + (i % 50) * 0.00008;
      events.push({layer: "positions", site: "bench", entity: `e-${i}`, entity_kind: kinds[i % 3],
        device: "bench-dev", lon: lon0 + r * Math.cos(a), lat: lat0 + r * Math.sin(a) * 0.9,
        accuracy_m: 3, heading_deg: null, speed_mps: 1.2, ts});
    }
    // One batch frame, as the hub sends events that queued up together.
    window.benchSocket.onmessage({data: JSON.stringify({layer: "batch", events})});
    step += 1;
  }, 100);
  setTimeout(() => clearInterval(timer), seconds * 1000 + 50);
}"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def summary(result: dict[str, Any]) -> dict[str, float]:
    frames = result["frames"][1:]
    return {
        "frame_p50": pct(frames, 0.5),
        "frame_p95": pct(frames, 0.95),
        "frame_max": max(frames) if frames else float("nan"),
        "fps": 1000 / statistics.mean(frames) if frames else 0.0,
        "draw_p50": pct(result["draw"], 0.5),
        "draw_p95": pct(result["draw"], 0.95),
        "lat_p50": pct(result["latency"], 0.5),
        "lat_p95": pct(result["latency"], 0.95),
        "updates_per_s": result["updates"],
        "entities": result["entities"],
    }


def publisher(agent: AgentRuntime, n: int, seconds: float, stop: threading.Event) -> None:
    """Every entity moves once a second; batches of 500 spread over the second."""
    lon0, lat0 = ORIGIN
    step = 0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and not stop.is_set():
        tick = time.monotonic()
        for start in range(0, n, 500):
            ts = utcnow()
            batch = []
            for i in range(start, min(n, start + 500)):
                a = (i / n) * math.tau + step * 0.002
                r = 0.002 + (i % 50) * 0.00008
                batch.append(
                    Position(
                        entity=f"m-{i}",
                        # a wristband gateway may report only wearers (hub entity ownership)
                        entity_kind=EntityKind.WEARER,
                        lon=lon0 + r * math.cos(a),
                        lat=lat0 + r * math.sin(a) * 0.9,
                        accuracy_m=3.0,
                        ts=ts,
                    )
                )
            agent.send_positions(batch)
            time.sleep(max(0.0, 1.0 / math.ceil(n / 500) - 0.002))
        step += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))


def wait_live(page: Page) -> None:
    page.wait_for_selector("#app-view[aria-busy='false']", state="attached", timeout=20_000)
    # a function, not an expression string: Playwright evals strings, which the CSP refuses
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")


def bench_hub(
    work: Path, broker: BrokerHarness, user: str, role: Role, ui: DashboardConfig | None = None
) -> HubService:
    """A started hub on SQLite in ``work`` with one user of ``role`` (password PASSWORD)."""
    hub = HubService(
        HubConfig(
            site=SITE,
            database_url=f"sqlite:///{work}/hub.sqlite",
            mqtt=broker.hub_config(),
            client_id="bench-hub",
            accept_unprovisioned=True,
            api=ApiConfig(port=0, ws_queue_max=100_000),
            ui=ui or DashboardConfig(),
        )
    )
    with hub.store.engine.begin() as conn:
        create_user(conn, user, PASSWORD, role)
    hub.start()
    return hub


def bench_agent(work: Path, broker: BrokerHarness, kind: DeviceKind, device: str) -> AgentRuntime:
    agent = AgentRuntime(
        AgentConfig(
            site=SITE,
            device=device,
            data_dir=work / "edge",
            mqtt=broker.add_device(SITE, kind, device),
            telemetry_queue_max=10_000,
        ),
        kind,
    )
    agent.start()
    return agent


def login(page: Page, hub: HubService, user: str) -> None:
    """Sign in through the form, the view in the address: zoom 15 on the site's centre."""
    page.goto(f"http://127.0.0.1:{hub.api_port}/#map=15/22.543000/114.057000")
    page.fill("#login-user", user)
    page.fill("#login-pass", PASSWORD)
    page.press("#login-pass", "Enter")
    wait_live(page)


def run(page: Page, seconds: float) -> dict[str, float]:
    return summary(page.evaluate(MEASURE_JS, seconds))


def main() -> int:  # noqa: PLR0915 - one linear script: set up, three phases, print
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--trail-points", type=int, default=None, help="override ui.trail_points")
    parser.add_argument("--triage", action="store_true", help="the triage feed bench instead")
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0, help="new alerts per second")
    args = parser.parse_args()
    if args.triage:
        return triage(args.incidents, args.rate, args.seconds)
    n = args.entities
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = BrokerHarness(work / "broker")
        broker.start()
        ui = DashboardConfig(
            **({} if args.trail_points is None else {"trail_points": args.trail_points})
        )
        hub = bench_hub(work, broker, "bench-admin", Role.ADMIN, ui)
        agent = bench_agent(work, broker, DeviceKind.WRISTBAND, "bench-dev")
        stop = threading.Event()
        try:
            assert hub.bus.wait_connected(10)
            assert agent.bus.wait_connected(10)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.add_init_script(KEEP_SOCKET_JS)
                login(page, hub, "bench-admin")
                base = run(page, min(args.seconds, 5))
                page.evaluate(INJECT_JS, [n, args.seconds + 1, *ORIGIN])
                time.sleep(1.0)  # every entity present before measuring
                inject = run(page, args.seconds)
                time.sleep(1.2)
                page.reload()  # the injected entities are gone (the hub never had them)
                wait_live(page)
                pub = threading.Thread(
                    target=publisher, args=(agent, n, args.seconds + 3, stop), daemon=True
                )
                pub.start()
                time.sleep(2.0)
                e2e = run(page, args.seconds)
                stop.set()
                pub.join()
                dropped = hub.live.stats.get("clients_dropped_slow", 0)
                browser.close()
        finally:
            stop.set()
            agent.stop()
            hub.stop()
            broker.stop()
    print(f"entities {n}, each moving once a second; {args.seconds:.0f} s per phase; 1920x1080")
    head = f"{'phase':10} {'fps':>6} {'frame p50':>10} {'p95':>7} {'max':>7} {'draw p50':>9} "
    head += f"{'p95':>7} {'latency p50':>12} {'p95':>8} {'updates/s':>10} {'on map':>7}"
    print(head)
    for name, s in (("baseline", base), ("inject", inject), ("e2e", e2e)):
        print(
            f"{name:10} {s['fps']:6.1f} {s['frame_p50']:8.1f}ms {s['frame_p95']:5.1f}ms "
            f"{s['frame_max']:5.0f}ms {s['draw_p50']:7.1f}ms {s['draw_p95']:5.1f}ms "
            f"{s['lat_p50']:10.0f}ms {s['lat_p95']:6.0f}ms "
            f"{s['updates_per_s'] / args.seconds:10.0f} {s['entities']:7.0f}"
        )
    print(f"ratio frame p95 inject / baseline   {inject['frame_p95'] / base['frame_p95']:.2f}")
    print(f"ratio frame p95 e2e / baseline      {e2e['frame_p95'] / base['frame_p95']:.2f}")
    print(f"live clients dropped as too slow    {dropped}")
    return 0


# --- the triage feed (issue 13) --------------------------------------------------------------

# Frame intervals only: the feed has no canvas of its own to time.
FRAMES_JS = """(seconds) => new Promise((resolve) => {
  const frames = [];
  let last = performance.now();
  const end = last + seconds * 1000;
  function tick(now) {
    frames.push(now - last); last = now;
    if (now < end) requestAnimationFrame(tick); else resolve(frames);
  }
  requestAnimationFrame(tick);
})"""


INCIDENT_COUNT_JS = """(n) =>
  document.querySelector('.feed-incidents .count')?.textContent === `${n}`"""


def _seed_incidents(hub: HubService, n: int) -> None:
    """``n`` open incidents written straight into the store (the bench measures the page, not
    the incident service), newest last, spread over levels and the three open states."""
    from sqlalchemy import insert

    from hub.schema import incidents

    now = utcnow()
    levels, states = ("critical", "high", "medium", "low"), ("new", "assigned", "in_progress")
    rows = [
        {
            "id": new_id(), "number": f"I-{i:07d}", "site": SITE, "source": "manual",
            "category": "public_order", "level": levels[i % 4], "title": f"incident {i}",
            "description": "", "state": states[i % 3], "opened_by": "bench",
            "escalation_stage": 0, "alert_count": 0, "created_at": now, "updated_at": now,
            "version": 1, "lon": ORIGIN[0], "lat": ORIGIN[1],
        }
        for i in range(n)
    ]  # fmt: skip
    with hub.store.engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(incidents), rows[start : start + 5000])


def _alert_stream(agent: AgentRuntime, rate: float, seconds: float, stop: threading.Event) -> int:
    """``rate`` alerts a second through the real path (outbox, broker, ingest, live stream);
    one in 25 is critical (it beeps)."""
    sent = 0
    t0 = time.monotonic()
    while not stop.is_set() and time.monotonic() - t0 < seconds:
        critical = sent % 25 == 0
        agent.alert(
            kind=AlertKind.LOITERING if critical else AlertKind.BATTERY_LOW,
            severity=Severity.CRITICAL if critical else Severity.LOW,
            zone=f"z-{sent % 40}",
        )
        sent += 1
        time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
    return sent


def _frames(page: Page, seconds: float) -> dict[str, float]:
    frames = page.evaluate(FRAMES_JS, seconds)[1:]
    return {
        "p50": pct(frames, 0.5),
        "p95": pct(frames, 0.95),
        "max": max(frames) if frames else float("nan"),
        "fps": 1000 / statistics.mean(frames) if frames else 0.0,
    }


def triage(n_incidents: int, rate: float, seconds: float) -> int:  # noqa: PLR0915 - linear
    """Phases on one page: the empty dashboard (baseline), the feed over ``n_incidents`` open
    incidents, the same under ``rate`` new alerts a second with the pointer away from the feed
    (rows go in) and with the pointer on the feed (they wait in the "N new" bar)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = BrokerHarness(work / "broker")
        broker.start()
        hub = bench_hub(work, broker, "bench-operator", Role.OPERATOR)
        agent = bench_agent(work, broker, DeviceKind.CAMERA, "bench-cam")
        stop = threading.Event()
        results: dict[str, dict[str, float]] = {}
        try:
            assert hub.bus.wait_connected(10)
            assert agent.bus.wait_connected(10)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                login(page, hub, "bench-operator")
                results["empty page"] = _frames(page, seconds)
                _seed_incidents(hub, n_incidents)
                t0 = time.monotonic()
                page.reload()
                wait_live(page)
                page.wait_for_function(INCIDENT_COUNT_JS, arg=n_incidents)
                load_s = time.monotonic() - t0
                results[f"{n_incidents} incidents"] = _frames(page, seconds)
                page.mouse.move(5, 500)  # on the map, away from the feed
                streams: list[int] = []
                phases = (("stream, pointer away", None), ("stream, pointer on feed", "#feed-list"))
                for label, pointer in phases:
                    if pointer:
                        box = page.locator(pointer).bounding_box()
                        assert box is not None
                        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
                    stop.clear()
                    pub = threading.Thread(
                        target=lambda: streams.append(
                            _alert_stream(agent, rate, seconds + 2, stop)
                        ),
                        daemon=True,
                    )
                    pub.start()
                    time.sleep(1.0)
                    results[label] = _frames(page, seconds)
                    stop.set()
                    pub.join()
                diag = page.evaluate("() => window.gridwardDiagnostics.feed()")
                shown = page.evaluate("() => document.querySelectorAll('#feed-list li').length")
                browser.close()
        finally:
            stop.set()
            agent.stop()
            hub.stop()
            broker.stop()
    print(f"triage feed: {n_incidents} open incidents, {rate:.0f} new alerts/s, {seconds:.0f} s")
    print(f"feed loaded (reload until the hub's incident count shows) in {load_s:.2f} s")
    print(f"rows in the page at the end {shown}; alerts sent per stream phase {streams}")
    print(f"held in the 'new' bar at the end {diag['pending']}")
    print(f"{'phase':26} {'fps':>6} {'frame p50':>10} {'p95':>7} {'max':>7} {'p95 ratio':>10}")
    base = results["empty page"]["p95"]
    for name, r in results.items():
        print(
            f"{name:26} {r['fps']:6.1f} {r['p50']:8.1f}ms {r['p95']:5.1f}ms {r['max']:5.0f}ms "
            f"{r['p95'] / base:10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
