"""The AR-glasses agent: Notify in -> receipt Reply at once -> the box's queue -> a HUD view,
rendered on every change and at least once a second; the officer's answers go to the hub as
:class:`DispatchAnswer` through the durable outbox; the officer's position goes out as
telemetry (entity_kind officer)."""

from __future__ import annotations

import base64
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from edge.agent import AgentRuntime
from edge.glasses.config import GlassesConfig
from edge.glasses.queue import NotificationQueue, Queued
from edge.glasses.speech import cue_text
from edge.glasses.view import HudItem, HudView, Language, Pose, Renderer, Sink
from edge.protocol import (
    CmdChannel,
    DeviceKind,
    DispatchAnswer,
    EntityKind,
    Location,
    Message,
    Notify,
    OfficerAnswer,
    Position,
    Reply,
    Severity,
)
from edge.validators import utcnow

if TYPE_CHECKING:
    from edge.glasses.camera import GlassesCamera

log = logging.getLogger(__name__)

EVIDENCE_KEPT = 16  # photos held in memory for the newest notifications (never on disk)
CUE_SEVERITIES = frozenset({Severity.HIGH, Severity.CRITICAL})
KEY_HINTS = ("glasses.hint.select", "glasses.hint.answer")


class Speaker(Protocol):
    """edge.glasses.speech.Speaker: queues a cue, never blocks."""

    def say(self, text: str, language: Language) -> bool: ...


class PositionSource(Protocol):
    """Where the officer's fix comes from (GNSS receiver, the paired phone)."""

    def pose(self, now: datetime) -> Pose | None:
        """The latest fix, or None when there is none or it is stale."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict[str, float]: ...


class Input(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class RefusedError(Exception):
    """An input the agent will not act on (an answer to an unknown notification, a phone fix
    while the GNSS is the source); ``code`` is the machine-readable reason for the API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class PhoneFixes:
    """Position source fed by the local API (POST /v1/position) from the paired phone."""

    max_fix_age_s: float
    latest: Pose | None = None
    received: int = 0

    def update(self, pose: Pose) -> None:
        self.latest = pose
        self.received += 1

    def pose(self, now: datetime) -> Pose | None:
        latest = self.latest
        if latest is None or (now - latest.fix_at).total_seconds() > self.max_fix_age_s:
            return None
        return latest

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def health(self) -> dict[str, float]:
        return {"phone_fixes": float(self.received)}


class GlassesAgent:
    def __init__(
        self,
        config: GlassesConfig,
        *,
        renderer: Renderer,
        sink: Sink,
        runtime: AgentRuntime | None = None,
        position: PositionSource | None = None,
        speaker: Speaker | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.officer = config.officer.username
        self.language: Language = config.language
        self.renderer = renderer
        self.sink = sink
        self.position = position
        self.speaker = speaker
        self._now = now
        self.runtime = runtime if runtime is not None else AgentRuntime(
            config, DeviceKind.GLASSES, health_fields=self.health_fields)
        self.runtime.on_command(CmdChannel.NOTIFY, self._on_command)
        self.queue = NotificationQueue(
            config.data_dir / f"{config.device}-notifications.sqlite", config.queue_max)
        self.counters: Counter[str] = Counter()
        self.inputs: list[Input] = []
        self._evidence: OrderedDict[str, bytes] = OrderedDict()
        self._cues: list[str] = []
        self._lock = threading.Lock()  # selection, evidence, cues: API, button and render
        self._selected: str | None = None
        self._tick_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.frames = 0
        self.last_view: HudView | None = None
        self._last_sent: Pose | None = None
        # face matching, only where the site turned the glasses camera on; its matches go to the
        # hub for review and are never shown here (edge/glasses/camera.py says why)
        self.camera: GlassesCamera | None = None
        if config.camera is not None and config.camera.enabled:
            # OpenCV and the face models are needed only here (the faces extra)
            from edge.glasses.camera import GlassesCamera

            self.camera = GlassesCamera(config.camera, self.runtime,
                                        officer_fix=self._officer_fix)
        self.render_loop = self.runtime.supervise("render", self._render_run, self._stop)
        self.position_loop = self.runtime.supervise("position", self._position_run, self._stop)

    # -- lifecycle ----------------------------------------------------------------------------

    def add_input(self, source: Input) -> None:
        self.inputs.append(source)

    def start(self) -> None:
        self.runtime.start()
        if self.camera is not None:
            self.camera.start()
        if self.position is not None:
            self.position.start()
        self.render_loop.start()
        self.position_loop.start()
        started: list[Input] = []
        try:
            for source in self.inputs:
                source.start()
                started.append(source)
        except Exception:
            self.inputs = started
            self.stop()
            raise

    def stop(self) -> None:
        for source in self.inputs:
            source.stop()
        self._stop.set()
        self._wake.set()
        self.render_loop.stop(timeout_s=5)
        self.position_loop.stop(timeout_s=5)
        if self.position is not None:
            self.position.stop()
        if self.camera is not None:
            self.camera.stop()
        self.runtime.stop()
        self.sink.close()
        self.queue.close()

    # -- notifications ------------------------------------------------------------------------

    def _on_command(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.on_notify(message)

    def on_notify(self, notify: Notify) -> None:
        now = self._now()
        if notify.withdraws is not None:
            self._withdraw(notify, notify.withdraws, now)
            return
        stale = (now - notify.ts).total_seconds() > self.config.stale_after_s
        # On disk before the receipt: the receipt stops the hub's retries (contract rule 2),
        # so a notify the box failed to store must stay unanswered and come again.
        added = self.queue.add(notify, now, stale=stale)
        self.runtime.send_reply(Reply(site=self.runtime.site, device=self.runtime.device,
                                      request_id=notify.id, ok=True))
        if not added:
            self.counters["notify_duplicate"] += 1
            return
        self.counters["notify_in"] += 1
        if stale:
            self.counters["notify_stale_on_arrival"] += 1
        log.info("notification %s (%s, %s)%s", notify.id, notify.kind.value,
                 notify.severity.value, " stale" if stale else "")
        with self._lock:
            if notify.evidence is not None:
                self._evidence[notify.id] = base64.b64decode(notify.evidence.data_b64)
                while len(self._evidence) > EVIDENCE_KEPT:
                    self._evidence.popitem(last=False)
            if notify.severity in CUE_SEVERITIES and not stale:
                # A fresh urgent dispatch takes the card: the officer must not have to page
                # to it (the one looked at before is one "p" away).
                self._selected = notify.id
                if self.speaker is not None:
                    self._cues.append(notify.id)
        self._wake.set()

    def _withdraw(self, notify: Notify, withdrawn: str, now: datetime) -> None:
        """The hub took a dispatch back: it leaves the HUD (receipt first, like any notify)."""
        dropped = self.queue.withdraw(withdrawn, now)
        self.runtime.send_reply(Reply(site=self.runtime.site, device=self.runtime.device,
                                      request_id=notify.id, ok=True))
        self.counters["notify_withdrawn" if dropped else "withdraw_before_notify"] += 1
        log.info("notification %s withdrawn by %s", withdrawn, notify.id)
        with self._lock:
            self._evidence.pop(withdrawn, None)
            if self._selected == withdrawn:
                self._selected = None
        self._wake.set()

    # -- what the officer does ----------------------------------------------------------------

    def ordered(self) -> list[Queued]:
        return sorted(self.queue.items(), key=lambda q: self._item(q).urgency())

    def selected_id(self) -> str | None:
        items = self.ordered()
        with self._lock:
            ids = [q.notify.id for q in items]
            if self._selected not in ids:
                self._selected = ids[0] if ids else None
            return self._selected

    def select(self, delta: int) -> str | None:
        """Move the selection ``delta`` items down the urgency order (wraps around)."""
        items = self.ordered()
        if not items:
            return None
        ids = [q.notify.id for q in items]
        with self._lock:
            index = ids.index(self._selected) if self._selected in ids else 0
            self._selected = ids[(index + delta) % len(ids)]
            chosen = self._selected
        self._wake.set()
        return chosen

    def answer(self, notify_id: str | None, answer: OfficerAnswer, note: str = ""
               ) -> DispatchAnswer:
        """Answer a dispatch (the selected one when ``notify_id`` is None): durable first, then
        shown as answered. Raises :class:`RefusedError`."""
        target = notify_id if notify_id is not None else self.selected_id()
        if target is None:
            raise RefusedError("nothing_selected", "no notification to answer")
        item = self.queue.get(target)
        if item is None:
            raise RefusedError("unknown_notify", f"no notification {target} on this box")
        if item.notify.dispatch_id is None:
            raise RefusedError("not_a_dispatch", "this notification is for information only")
        pose = self.position.pose(self._now()) if self.position is not None else None
        location = (Location(lon=pose.lon, lat=pose.lat, accuracy_m=pose.accuracy_m)
                    if pose is not None else None)
        message = DispatchAnswer(
            site=self.runtime.site, device=self.runtime.device, ts=self._now(),
            dispatch_id=item.notify.dispatch_id, notify_id=item.notify.id,
            officer=self.officer, answer=answer, note=note, location=location)
        if not self.runtime.send_durable(message):
            raise RefusedError("outbox_full", "the answer could not be stored; check the link")
        self.queue.set_answer(item.notify.id, answer, message.ts)
        self.counters[f"answer_{answer.value}"] += 1
        self._wake.set()
        return message

    def phone_fix(self, pose: Pose) -> None:
        """A fix posted by the paired phone (POST /v1/position)."""
        if not isinstance(self.position, PhoneFixes):
            raise RefusedError("position_source", "the position source is not the phone")
        self.position.update(pose)
        self._wake.set()

    def state(self) -> dict[str, Any]:
        """What the local API reports (GET /v1/state): plain JSON data."""
        view = self.build_view(self._now())
        selected = view.items[view.selected].notify_id if view.items else None
        return {
            "officer": self.officer,
            "online": view.online,
            "unsent_answers": view.unsent_answers,
            "selected": selected,
            "pose": None if view.pose is None else {
                "lon": view.pose.lon, "lat": view.pose.lat,
                "heading_deg": view.pose.heading_deg, "fix_at": view.pose.fix_at.isoformat()},
            "items": [{
                "notify_id": i.notify_id, "dispatch_id": i.dispatch_id, "kind": i.kind.value,
                "severity": i.severity.value, "title": i.title, "action": i.action.value,
                "incident_number": i.incident_number, "issued_at": i.issued_at.isoformat(),
                "received_at": i.received_at.isoformat(), "stale": i.stale,
                "answer": i.answer.value if i.answer else None,
                "target": list(i.target) if i.target else None,
            } for i in view.items],
        }

    # -- the view -----------------------------------------------------------------------------

    def _item(self, q: Queued) -> HudItem:
        n = q.notify
        return HudItem(
            notify_id=n.id, kind=n.kind, severity=n.severity, title=n.title, issued_at=n.ts,
            received_at=q.received_at, action=n.action, dispatch_id=n.dispatch_id,
            incident_number=n.incident_number,
            target=(n.location.lon, n.location.lat) if n.location else None,
            evidence_jpeg=self._evidence.get(n.id), answer=q.answer, stale=q.stale)

    def build_view(self, now: datetime) -> HudView:
        items = sorted((self._item(q) for q in self.queue.items()), key=HudItem.urgency)
        ids = [i.notify_id for i in items]
        with self._lock:
            if self._selected not in ids:
                self._selected = ids[0] if ids else None
            selected = ids.index(self._selected) if self._selected is not None else 0
        pose = self.position.pose(now) if self.position is not None else None
        return HudView(now=now, language=self.language, items=tuple(items), selected=selected,
                       pose=pose, online=self.runtime.bus.connected,
                       unsent_answers=self.runtime.outbox.depth(), hints=KEY_HINTS)

    def tick(self) -> HudView:
        """One render pass: age the queue, run demo answers, speak cues, draw and show."""
        with self._tick_lock:  # the render loop and a test (or the CLI) may both tick
            return self._tick()

    def _tick(self) -> HudView:
        now = self._now()
        if self.queue.mark_stale(now - timedelta(seconds=self.config.stale_after_s)):
            self.counters["notify_went_stale"] += 1
        self.queue.forget(now - timedelta(seconds=self.config.forget_after_s))
        self._auto_answer(now)
        with self._lock:
            cues, self._cues = self._cues, []
        view = self.build_view(now)
        for item in view.items:
            if item.notify_id in cues and self.speaker is not None:
                self.speaker.say(cue_text(item, self.language, view.pose), self.language)
                self.counters["cues"] += 1
        frame = self.renderer.render(view)
        self.sink.show(frame)
        self.frames += 1
        self.last_view = view
        return view

    def _auto_answer(self, now: datetime) -> None:
        plan = self.config.auto_answer
        if plan is None:
            return
        for q in self.queue.items():
            if q.notify.dispatch_id is None:
                continue
            done = plan.answers.index(q.answer) + 1 if q.answer in plan.answers else 0
            if (q.answer is not None and done == 0) or done >= len(plan.answers):
                continue  # the officer (or a person at the API) took over, or all given
            since = q.answered_at or q.received_at
            if (now - since).total_seconds() >= plan.after_s:
                try:
                    self.answer(q.notify.id, plan.answers[done])
                except RefusedError as err:
                    log.warning("demo answer not given: %s", err)

    def _render_run(self) -> None:
        interval = self.config.display.render_interval_s
        while not self._stop.is_set():
            self.tick()
            self._wake.wait(interval)
            self._wake.clear()

    # -- positions ----------------------------------------------------------------------------

    def _position_run(self) -> None:
        while not self._stop.wait(self.config.position_interval_s):
            self.publish_position()

    def _officer_fix(self) -> Location | None:
        pose = self.position.pose(self._now()) if self.position is not None else None
        if pose is None:
            return None
        return Location(lon=pose.lon, lat=pose.lat, accuracy_m=pose.accuracy_m)

    def publish_position(self) -> bool:
        if self.position is None:
            return False
        pose = self.position.pose(self._now())
        if pose is None:
            self.counters["position_no_fix"] += 1
            return False
        if pose == self._last_sent:
            return False  # no new fix since the last batch: the hub already has this one
        self._last_sent = pose
        self.runtime.send_positions([Position(
            entity=self.officer, entity_kind=EntityKind.OFFICER, lon=pose.lon, lat=pose.lat,
            accuracy_m=pose.accuracy_m, heading_deg=pose.heading_deg, ts=pose.fix_at)])
        self.counters["positions"] += 1
        return True

    def health_fields(self) -> dict[str, Any]:
        items = self.queue.items()
        metrics: dict[str, float] = {
            "notifications": float(len(items)),
            "stale": float(sum(1 for q in items if q.stale)),
            "unanswered": float(sum(1 for q in items
                                    if q.answer is None and q.notify.dispatch_id)),
            "unsent_answers": float(self.runtime.outbox.depth()),
            "frames": float(self.frames),
            "notify_in": float(self.counters["notify_in"]),
            "notify_duplicate": float(self.counters["notify_duplicate"]),
            "positions": float(self.counters["positions"]),
        }
        if self.position is not None:
            metrics.update(self.position.health())
        for source in self.inputs:
            report = getattr(source, "health", None)
            if callable(report):
                metrics.update(report())
        return {"metrics": metrics, "dropped": {"notes_evicted": self.queue.evicted}}
