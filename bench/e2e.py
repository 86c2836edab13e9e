"""End-to-end alert latency (issue 14): an edge agent's alert to the HUD frame that shows it.

    .venv/bin/python bench/e2e.py [--events 1000] [--rate-per-s 5] [--baseline 300]

A real Mosquitto (tests/support/broker.py) and a real hub (SQLite, API, ingest, incidents,
dispatch, command outbox) as the tests start them; three edge agents' runtimes (a camera box,
a wristband gateway, a LiDAR scanner: real ``AgentRuntime`` with its durable outbox) raise their
own kind of alert (camera intrusion, wristband geofence exit, LiDAR intrusion) through
``build_alert`` + ``send_alert``, the path each agent's service calls once its model or
geofence has decided; model inference is excluded and measured apart. The events go round the
three kinds at a steady rate. Each alert opens an incident of its own (the bench's alert rules
put first: one zone per event, so nothing groups), which the hub dispatches to the nearest
officer's glasses: a real glasses agent that renders the HUD frame into an in-memory sink.

Per-hop timestamps, all on this machine's monotonic clock (``time.perf_counter``):

- ``enqueue``    just before ``send_alert`` (the outbox insert with its fsync is in hop 1)
- ``broker``     a plain subscriber on the alert topics sees the alert
- ``stored``     the hub's after-commit callback (``Ingest.on_stored``) gets the alert's batch;
                 incident intake runs inside it and writes the incident, the dispatch and its
                 Notify (command outbox) in one transaction, then wakes the command publisher
- ``dispatched`` the subscriber sees the ``Notify`` on the glasses' notify topic
- ``rendered``   the glasses agent's sink receives the first frame that shows the dispatch

Baseline in the same run: a bare paho QoS 1 publish -> subscribe round on the same broker, one
message at a time; the total's ratio to it is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt

from edge.agent import AgentRuntime
from edge.alert_details import AlertDetails, GeofenceExitDetails, IntrusionDetails, build_alert
from edge.protocol import Channel, DeviceKind, Location, Severity, device_topic
from hub.incidents.config import DEFAULT_ALERT_RULES, AlertRule, IncidentsConfig
from tests.hub.conftest import RunningHub, provisioned_agent, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.flood import raw_client

SITE = "e2e"
ORIGIN = (114.0579, 22.5431)  # lon, lat: the events happen within ~200 m of it
HOPS = ("enqueue", "broker", "stored", "dispatched", "rendered")
AGENTS = (
    (DeviceKind.CAMERA, "e2e-camera"),
    (DeviceKind.WRISTBAND, "e2e-band-gw"),
    (DeviceKind.LIDAR, "e2e-lidar"),
)


# --- timestamps -------------------------------------------------------------------------------


@dataclass
class Stamps:
    """alert id -> hop -> perf_counter seconds; the first stamp of a hop wins (a resend or a
    repeated frame does not move it)."""

    by_alert: dict[str, dict[str, float]] = field(default_factory=dict)
    by_dispatch: dict[str, str] = field(default_factory=dict)  # dispatch id -> alert id
    pending: dict[str, float] = field(default_factory=dict)  # rendered before linked
    passes: list[float] = field(default_factory=list)  # command publisher passes, seconds
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, alert_id: str, hop: str, at: float | None = None) -> None:
        at = time.perf_counter() if at is None else at
        with self.lock:
            self.by_alert.setdefault(alert_id, {}).setdefault(hop, at)

    def link_dispatch(self, dispatch_id: str, alert_id: str) -> None:
        """The sniffer saw the Notify of ``dispatch_id`` (for ``alert_id``)."""
        with self.lock:
            self.by_dispatch.setdefault(dispatch_id, alert_id)
            early = self.pending.pop(dispatch_id, None)
        if early is not None:
            self.mark(alert_id, "rendered", early)

    def mark_rendered(self, dispatch_id: str, at: float) -> None:
        """The HUD drew the dispatch; the sniffer may not have linked it to its alert yet."""
        with self.lock:
            alert_id = self.by_dispatch.get(dispatch_id)
            if alert_id is None:
                self.pending.setdefault(dispatch_id, at)
                return
        self.mark(alert_id, "rendered", at)

    def complete(self, hops: tuple[str, ...]) -> int:
        with self.lock:
            return sum(1 for s in self.by_alert.values() if all(h in s for h in hops))


def quantiles_ms(values: list[float]) -> tuple[float, float, float, float]:
    """p50, p95, p99 and max in milliseconds."""
    ms = sorted(v * 1000 for v in values)
    if len(ms) < 2:
        one = ms[0] if ms else float("nan")
        return one, one, one, one
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return q[49], q[94], q[98], ms[-1]


# --- the sniffing subscriber --------------------------------------------------------------------


@contextmanager
def sniffer(broker: BrokerHarness, stamps: Stamps) -> Iterator[mqtt.Client]:
    """A plain subscriber beside the hub: sees each alert and each Notify as the broker
    delivers them (the hub reads alerts through its own shared subscription)."""

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        at = time.perf_counter()
        body = json.loads(m.payload)
        if m.topic.endswith("/alert"):
            stamps.mark(body["id"], "broker", at)
        elif m.topic.endswith("/notify"):
            alert_id = body.get("alert_id")
            if alert_id:
                stamps.mark(alert_id, "dispatched", at)
                if body.get("dispatch_id"):
                    stamps.link_dispatch(body["dispatch_id"], alert_id)

    c = raw_client(broker, "hub", "e2e-sniffer")
    c.on_message = on_message
    c.subscribe([(f"gw/v1/{SITE}/+/+/alert", 1), (f"gw/v1/{SITE}/cmd/+/notify", 1)])
    time.sleep(0.3)  # the SUBACK; nothing is sent before the run starts
    try:
        yield c
    finally:
        c.loop_stop()
        c.disconnect()


# --- baseline -----------------------------------------------------------------------------------


def baseline_round_s(broker: BrokerHarness, samples: int) -> list[float]:
    """Bare paho QoS 1 publish -> subscribe on the same broker, one message at a time."""
    got = threading.Event()
    device = "e2e-base"
    broker.add_device(SITE, DeviceKind.CAMERA, device)
    topic = device_topic(SITE, DeviceKind.CAMERA, device, Channel.ALERT)
    sub = raw_client(broker, "hub", "e2e-base-sub")
    sub.on_message = lambda c, u, m: got.set()
    sub.subscribe(topic, qos=1)
    pub = raw_client(broker, device, device)
    time.sleep(0.3)
    payload = json.dumps({"id": "x" * 36, "pad": "y" * 400}).encode()
    rounds: list[float] = []
    try:
        for _ in range(samples):
            got.clear()
            t0 = time.perf_counter()
            pub.publish(topic, payload, qos=1)
            if not got.wait(5):
                raise RuntimeError("baseline message lost")
            rounds.append(time.perf_counter() - t0)
            time.sleep(0.005)
    finally:
        for c in (pub, sub):
            c.loop_stop()
            c.disconnect()
    return rounds


# --- inference, apart ---------------------------------------------------------------------------


def hog_ms_per_frame(frames: int) -> float | None:
    """The camera's always-available detector (OpenCV HOG, ungated, whole 640x480 frame) on
    the first frames of vtest.avi, when the test data is cached; None otherwise."""
    try:
        import cv2
        import numpy as np

        from edge.camera.detectors import build_detector
        from edge.camera.detectors.base import Image
        from edge.camera.detectors.hog import Config as HogConfig
        from edge.camera.testdata import cache_dir
    except ImportError:
        return None
    video = cache_dir() / "camera" / "vtest.avi"
    if not video.is_file():
        return None
    cap = cv2.VideoCapture(str(video))
    images: list[Image] = []
    while len(images) < frames:
        ok, image = cap.read()
        if not ok:
            break
        images.append(np.ascontiguousarray(cv2.resize(image, (640, 480)), dtype=np.uint8))
    cap.release()
    if not images:
        return None
    detector = build_detector(HogConfig())
    detector.detect(images[0])  # warm-up
    t0 = time.perf_counter()
    for image in images:
        detector.detect(image)
    detector.close()
    return (time.perf_counter() - t0) * 1000 / len(images)


# --- the stack ----------------------------------------------------------------------------------


def bench_rules() -> IncidentsConfig:
    """Every bench alert opens its own high/critical incident (one zone per event, grouped by
    zone within 1 s): each one is dispatched."""
    rules = [
        AlertRule(name="e2e-intrusion", kinds=["intrusion"], category="intrusion",
                  level="high", group_window_s=1, place="zone"),
        AlertRule(name="e2e-walked-out", kinds=["geofence_exit"],
                  category="person_in_distress", level="critical", group_window_s=1,
                  place="zone"),
    ]
    return IncidentsConfig(alert_rules=[*rules, *DEFAULT_ALERT_RULES])


def event(seq: int) -> tuple[int, AlertDetails, Severity, Location]:
    """The seq-th event: which agent raises it, its details as that agent builds them."""
    which = seq % 3
    east, north = ((seq * 37) % 200 - 100) * 1e-5, ((seq * 53) % 200 - 100) * 1e-5
    where = Location(lon=ORIGIN[0] + east, lat=ORIGIN[1] + north, accuracy_m=3.0)
    details: AlertDetails
    if which == 0:  # edge/camera/service.py _alert
        details = IntrusionDetails(source="camera", track_id=f"t{seq}", x_px=320.0, y_px=400.0,
                                   dwell_s=0.0)
    elif which == 1:  # edge/wristband/service.py _emit (a GeofenceEngine exit intent)
        details = GeofenceExitDetails(method="trilateration")
    else:  # edge/lidar/service.py _raise_intrusion
        details = IntrusionDetails(source="lidar", track_id=f"t{seq}", x_m=3.2, y_m=7.5,
                                   dwell_s=0.4)
    severity = Severity.CRITICAL if which == 1 else Severity.HIGH
    return which, details, severity, where


def watch_hub(hub: RunningHub, stamps: Stamps) -> None:
    """Stamp ``stored`` as ingest's after-commit callback starts and ``intake`` as it returns
    (incident intake and the dispatch it writes run inside it); ``picked`` (a breakdown of
    broker -> stored) when the ingest thread hands the batch to the store, and ``published``
    (of intake -> dispatched) when the command publisher hands the Notify to paho."""
    ingest = hub.service.ingest
    inner = ingest.on_stored
    if inner is None:
        raise RuntimeError("hub ingest has no after-store callback")

    def on_stored(batch: list[Any], result: Any) -> None:
        at = time.perf_counter()
        ids = [item.message.id for item in batch if type(item.message).__name__ == "Alert"]
        for i in ids:
            stamps.mark(i, "stored", at)
        inner(batch, result)
        done = time.perf_counter()
        for i in ids:
            stamps.mark(i, "intake", done)

    ingest.on_stored = on_stored
    store = hub.service.store
    write_batch = store.write_batch

    def timed_write(batch: list[Any], *args: Any, **kwargs: Any) -> Any:
        at = time.perf_counter()  # the ingest thread took the batch off its queue
        for item in batch:
            if type(item.message).__name__ == "Alert":
                stamps.mark(item.message.id, "picked", at)
        return write_batch(batch, *args, **kwargs)

    store.write_batch = timed_write  # type: ignore[method-assign,assignment]
    bus = hub.service.bus
    publish = bus.publish

    def watched_publish(topic: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if topic.endswith("/notify"):  # the command publisher hands the Notify to paho
            alert_id = json.loads(payload).get("alert_id")
            if alert_id:
                stamps.mark(alert_id, "published")
        return publish(topic, payload, *args, **kwargs)

    bus.publish = watched_publish  # type: ignore[method-assign]
    publisher = hub.service.command_publisher
    publish_due = publisher.publish_due

    def timed_pass() -> int:
        t0 = time.perf_counter()
        try:
            return publish_due()
        finally:
            stamps.passes.append(time.perf_counter() - t0)

    publisher.publish_due = timed_pass  # type: ignore[method-assign]


OFFICER = f"{SITE}-officer"  # start_hub makes one user per role
GLASSES = "e2e-glasses"


class FixedPosition:
    """The bench officer stands at the origin, facing north (a GNSS receiver is a serial
    boundary; tests/edge/glasses and the demo drive the real NMEA path)."""

    def __init__(self) -> None:
        from edge.glasses.view import Pose

        self._pose = Pose

    def pose(self, now: Any) -> Any:
        return self._pose(lon=ORIGIN[0], lat=ORIGIN[1], heading_deg=0.0, accuracy_m=3.0,
                          fix_at=now)

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def health(self) -> dict[str, float]:
        return {}


class Answerer:
    """Plays the officer: each dispatch, once a frame has shown it, is answered ``reject``
    through the agent (durable outbox -> hub), so the box holds a realistic one or two pending
    items instead of a backlog of a thousand; the hub, with no other officer, tells the
    commander. Runs on its own thread: the render thread must not wait on the outbox."""

    def __init__(self) -> None:
        self.todo: queue.Queue[str | None] = queue.Queue()
        self.agent: Any = None
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="e2e-answerer", daemon=True)

    def start(self, agent: Any) -> None:
        self.agent = agent
        self._thread.start()

    def stop(self) -> None:
        self.todo.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from edge.protocol import OfficerAnswer

        while (notify_id := self.todo.get()) is not None:
            try:
                self.agent.answer(notify_id, OfficerAnswer.REJECT, "e2e bench")
            except Exception:  # noqa: BLE001 - counted and reported; the run goes on
                self.errors += 1


class WatchedRenderer:
    """The HUD renderer, remembering the view of the frame it just drew."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.view: Any = None

    def render(self, view: Any) -> Any:
        self.view = view
        return self.inner.render(view)


class MemorySink:
    """In-memory sink: stamps ``rendered`` for a dispatch the first time the frame shown draws
    it: as the card (a fresh high/critical notification takes the card at once) or as one of
    the first two chips of the queue strip under it (two arrived between two frames)."""

    CHIPS_DRAWN = 2  # at 640 px the strip has room for at least two

    def __init__(self, renderer: WatchedRenderer, report: Callable[[str, float], None],
                 answerer: Answerer) -> None:
        self.renderer = renderer
        self.report = report
        self.answerer = answerer
        self.frames = 0
        self.as_card = 0
        self.as_chip = 0
        self._seen: set[str] = set()

    def show(self, frame: Any) -> None:
        at = time.perf_counter()
        self.frames += 1
        view = self.renderer.view
        if view is None or frame is None or not view.items:
            return
        card = view.items[view.selected]
        chips = [it for it in view.items if it is not card][: self.CHIPS_DRAWN]
        for item in (card, *chips):
            if item.dispatch_id is None or item.notify_id in self._seen or item.answer:
                continue
            self._seen.add(item.notify_id)
            if item is card:
                self.as_card += 1
            else:
                self.as_chip += 1
            self.report(item.dispatch_id, at)
            self.answerer.todo.put(item.notify_id)

    def close(self) -> None:
        return None


def glasses_config(broker_port: int, secret: Path, work: Path) -> dict[str, Any]:
    return {
        "site": SITE, "device": GLASSES, "data_dir": str(work / GLASSES),
        "mqtt": {"port": broker_port, "username": GLASSES, "password_file": str(secret)},
        "officer": {"username": OFFICER},
        "display": {"sink": {"type": "png", "directory": str(work / "hud")}},  # unused
        "speech": {"enabled": False}, "inputs": {"http": {"enabled": False}},
        "position_interval_s": 1.0, "queue_max": 20,
    }


@contextmanager
def glasses_agent(config_json: str, report: Callable[[str, float], None]) -> Iterator[Any]:
    """A real glasses agent (edge/glasses/service.py) with the real HUD renderer and the
    in-memory sink; yields (agent, sink)."""
    from edge.glasses.config import GlassesConfig
    from edge.glasses.hud import HudRenderer
    from edge.glasses.service import GlassesAgent

    config = GlassesConfig.model_validate_json(config_json)
    answerer = Answerer()
    renderer = WatchedRenderer(HudRenderer(config.display.width_px, config.display.height_px))
    sink = MemorySink(renderer, report, answerer)
    agent = GlassesAgent(config, renderer=renderer, sink=sink, position=FixedPosition())
    agent.start()
    answerer.start(agent)
    try:
        if not agent.runtime.bus.wait_connected(10):
            raise RuntimeError("glasses agent did not connect")
        yield agent, sink, answerer
    finally:
        answerer.stop()
        agent.stop()


def glasses_child(config_path: Path) -> int:
    """``--glasses-child CONFIG``: the glasses agent in a process of its own (as on the box),
    printing ``R <dispatch id> <perf_counter>`` per first drawing (the monotonic clock is the
    machine's, shared by every process) until its stdin closes, then a summary line."""
    def report(dispatch_id: str, at: float) -> None:
        print(f"R {dispatch_id} {at:.6f}", flush=True)

    with glasses_agent(config_path.read_text(encoding="utf-8"), report) as (_, sink, answerer):
        print("READY", flush=True)
        sys.stdin.read()  # the parent closes it at the end of the run
        print(f"S {sink.frames} {sink.as_card} {sink.as_chip} {answerer.errors}", flush=True)
    return 0


class GlassesProcess:
    def __init__(self, config_path: Path, stamps: Stamps) -> None:
        self.stamps = stamps
        self.summary = ""
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--glasses-child", str(config_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, name="e2e-glasses-out", daemon=True)
        self._reader.start()
        if not self._ready.wait(60):
            self.stop()
            raise RuntimeError("the glasses agent process did not start")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "READY":
                self._ready.set()
            elif kind == "R":
                dispatch_id, at = rest.split()
                self.stamps.mark_rendered(dispatch_id, float(at))
            elif kind == "S":
                frames, card, chip, errors = rest.split()
                self.summary = (f"HUD (own process): {frames} frames; dispatches first drawn as "
                                f"the card {card}, as a queue chip {chip}; answer errors {errors}")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)


def start_glasses(hub: RunningHub, broker: BrokerHarness, work: Path, stamps: Stamps,
                  stack: ExitStack, *, own_process: bool) -> Callable[[], str]:
    """The officer's glasses, bound to them and on duty, once the hub has their fix; returns
    what to say about the HUD at the end."""
    from hub.auth import Role

    admin = hub.client(Role.ADMIN)
    creds = admin.post("/api/v1/devices", json={"id": GLASSES, "site": SITE,
                                                "kind": "glasses"})
    creds.raise_for_status()
    secret = work / f"{GLASSES}.pw"
    secret.write_text(creds.json()["mqtt_password"], encoding="utf-8")
    config_json = json.dumps(glasses_config(broker.port, secret, work))
    summary: Callable[[], str]
    if own_process:
        path = work / "glasses.json"
        path.write_text(config_json, encoding="utf-8")
        child = GlassesProcess(path, stamps)
        stack.callback(child.stop)
        summary = lambda: child.summary  # noqa: E731 - read after the child stopped
    else:
        _, sink, answerer = stack.enter_context(glasses_agent(config_json, stamps.mark_rendered))
        summary = lambda: (f"HUD (in the bench process): {sink.frames} frames; dispatches "  # noqa: E731
                           f"first drawn as the card {sink.as_card}, as a queue chip "
                           f"{sink.as_chip}; answer errors {answerer.errors}")
    res = admin.put(f"/api/v1/officers/{OFFICER}", json={"device": GLASSES, "on_duty": True})
    res.raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        me = next(o for o in admin.get("/api/v1/officers").json() if o["username"] == OFFICER)
        if me["availability"] == "available":
            return summary
        time.sleep(0.2)
    raise RuntimeError(f"bench officer never became available: {me}")


@dataclass
class Run:
    stamps: Stamps
    baseline: list[float]
    hops: tuple[str, ...]
    sent: int
    elapsed_s: float
    notes: list[str]


def run(events: int, rate_per_s: float, baseline_samples: int, work: Path, *,
        glasses: bool, own_process: bool = True) -> Run:
    stamps = Stamps()
    with ExitStack() as stack:
        broker = BrokerHarness(work / "broker")
        broker.start()
        stack.callback(broker.stop)
        baseline = baseline_round_s(broker, baseline_samples)
        hub = start_hub(broker, SITE, work, incidents=bench_rules())
        stack.callback(stop_hub, broker, hub)
        notes: list[str] = []
        hops: tuple[str, ...] = HOPS[:3]
        hud: Callable[[], str] | None = None
        if glasses:
            hud = start_glasses(hub, broker, work, stamps, stack, own_process=own_process)
            hops = HOPS
        agents: list[AgentRuntime] = []
        for kind, device in AGENTS:
            agent = provisioned_agent(hub, broker, work, device, kind.value)
            stack.callback(agent.stop)
            agents.append(agent)
        watch_hub(hub, stamps)
        stack.enter_context(sniffer(broker, stamps))
        t0 = time.perf_counter()
        for seq in range(events):
            which, details, severity, where = event(seq)
            agent = agents[which]
            alert = build_alert(details, site=SITE, device=agent.device, severity=severity,
                                title=f"e2e event {seq}", location=where, zone=f"z{seq}",
                                entity=f"e2e-{seq}")
            stamps.mark(alert.id, "enqueue")
            agent.send_alert(alert)
            delay = t0 + (seq + 1) / rate_per_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.perf_counter() - t0
        deadline = time.monotonic() + 60
        while stamps.complete(hops) < events and time.monotonic() < deadline:
            time.sleep(0.05)
        missing = events - stamps.complete(hops)
        if missing:
            notes.append(f"{missing} of {events} events did not reach every hop within 60 s")
    if hud is not None:
        notes.append(hud())  # the glasses stopped with the stack: their summary is in
    return Run(stamps, baseline, hops, events, elapsed, notes)


def report(result: Run, inference_ms: float | None) -> str:
    hops = result.hops
    rows: list[tuple[str, list[float]]] = []
    complete = [s for s in result.stamps.by_alert.values() if all(h in s for h in hops)]
    for a, b in itertools.pairwise(hops):
        rows.append((f"{a} -> {b}", [s[b] - s[a] for s in complete]))
    total = [s[hops[-1]] - s[hops[0]] for s in complete]
    rows.append((f"total ({hops[0]} -> {hops[-1]})", total))
    picked = [s for s in complete if "picked" in s]
    rows.append(("  of which broker -> picked", [s["picked"] - s["broker"] for s in picked]))
    rows.append(("  and picked -> stored", [s["stored"] - s["picked"] for s in picked]))
    if "dispatched" in hops:
        pub = [s for s in complete if "published" in s]
        rows.append(("  of which stored -> publish", [s["published"] - s["stored"] for s in pub]))
        rows.append(("  and publish -> dispatched",
                     [s["dispatched"] - s["published"] for s in pub]))
        rows.append(("  command publisher pass", list(result.stamps.passes)))
    rows.append(("after-store callback (intake)",
                 [s["intake"] - s["stored"] for s in complete if "intake" in s]))
    base = quantiles_ms(result.baseline)
    lines = [
        f"events                   {result.sent} sent in {result.elapsed_s:.1f} s "
        f"({result.sent / result.elapsed_s:.1f}/s), {len(complete)} through every hop",
        f"{'hop':<28}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        f"{'bare paho QoS 1 (baseline)':<28}" + "".join(f"{v:9.1f}" for v in base),
    ]
    for name, values in rows:
        q = quantiles_ms(values)
        lines.append(f"{name:<28}" + "".join(f"{v:9.1f}" for v in q))
    tq = quantiles_ms(total)
    lines.append(f"total / baseline          p50 {tq[0] / base[0]:.1f}x   "
                 f"p99 {tq[2] / base[2]:.1f}x")
    lines.append(f"target p99 < 250 ms       {'met' if tq[2] < 250 else 'NOT met'} "
                 f"(p99 {tq[2]:.1f} ms)")
    if inference_ms is not None:
        lines.append(f"inference, apart          HOG ungated 640x480: {inference_ms:.0f} ms "
                     "a frame (camera only; before the alert exists)")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate-per-s", type=float, default=5.0)
    parser.add_argument("--baseline", type=int, default=300, help="baseline rounds")
    parser.add_argument("--inference-frames", type=int, default=10,
                        help="HOG frames to time (0: skip)")
    parser.add_argument("--glasses-in-process", action="store_true",
                        help="the glasses agent in the bench's process (default: its own)")
    parser.add_argument("--glasses-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-glasses", action="store_true",
                        help="stop at the hub (no dispatch, no HUD): the hops before them")
    args = parser.parse_args()
    if args.glasses_child is not None:
        return glasses_child(args.glasses_child)
    with tempfile.TemporaryDirectory(prefix="gridward-e2e-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # Mosquitto drops to its own user (ENVIRONMENT.md)
        result = run(args.events, args.rate_per_s, args.baseline, work,
                     glasses=not args.no_glasses,
                     own_process=not args.glasses_in_process)
    inference = hog_ms_per_frame(args.inference_frames) if args.inference_frames else None
    print(report(result, inference), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
