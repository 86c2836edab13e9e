"""Shared pieces of the glasses agent tests: a stand-in renderer and sink (the real ones are
the hud helper's and have their own tests), a hub-side listener, a settable clock."""

from __future__ import annotations

import queue
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from edge.bus import BusConfig
from edge.glasses.config import GlassesConfig
from edge.glasses.view import Frame, HudView
from edge.protocol import (
    AlertKind,
    Channel,
    DispatchAnswer,
    Notify,
    PositionBatch,
    Reply,
    Severity,
    decode_as,
)
from edge.validators import new_id, utcnow


class RecordingRenderer:
    def __init__(self) -> None:
        self.views: list[HudView] = []
        self._lock = threading.Lock()

    def render(self, view: HudView) -> Frame:
        with self._lock:
            self.views.append(view)
        return np.zeros((8, 8, 3), dtype=np.uint8)

    def last(self) -> HudView:
        with self._lock:
            return self.views[-1]


class RecordingSink:
    def __init__(self) -> None:
        self.frames = 0
        self.closed = False

    def show(self, frame: Frame) -> None:
        assert frame.dtype == np.uint8 and frame.ndim == 3
        self.frames += 1

    def close(self) -> None:
        self.closed = True


class Clock:
    """Wall clock the test moves by hand: starts at the real time (notify ts are checked)."""

    def __init__(self) -> None:
        self.value = utcnow()

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


class HubListener:
    """What the hub would receive from the glasses, decoded by channel."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.replies: list[Reply] = []
        self.answers: list[DispatchAnswer] = []
        self.positions: list[PositionBatch] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.inbox.put((topic, payload))

    def drain(self) -> HubListener:
        while not self.inbox.empty():
            topic, payload = self.inbox.get()
            channel = topic.rsplit("/", 1)[1]
            if channel == Channel.REPLY:
                self.replies.append(decode_as(Reply, payload))
            elif channel == Channel.ANSWER:
                self.answers.append(decode_as(DispatchAnswer, payload))
            elif channel == Channel.POS:
                self.positions.append(decode_as(PositionBatch, payload))
        return self


def glasses_config(site: str, device: str, mqtt: BusConfig, data_dir: Path,
                   **overrides: Any) -> GlassesConfig:
    token = data_dir / "api.token"
    data_dir.mkdir(parents=True, exist_ok=True)
    token.write_text("s3cret-token-for-tests\n", encoding="utf-8")
    values: dict[str, Any] = {
        "site": site, "device": device, "mqtt": mqtt, "data_dir": data_dir,
        "officer": {"username": "officer-li"}, "health_interval_s": 0.5,
        "display": {"sink": {"type": "png", "directory": str(data_dir / "hud")}},
        "inputs": {"http": {"enabled": False}},
    }
    values.update(overrides)
    return GlassesConfig.model_validate(values)


def notify(site: str, device: str, *, severity: Severity = Severity.HIGH,
           ts: datetime | None = None, dispatch: bool = True, **extra: Any) -> Notify:
    return Notify(site=site, device=device, kind=AlertKind.INTRUSION, severity=severity,
                  title="Person in the depot yard", ts=ts or utcnow(),
                  dispatch_id=new_id() if dispatch else None, incident_number="INC-0007",
                  location={"lon": 116.40, "lat": 39.91}, **extra)


def nmea(body: str, *, bad_checksum: bool = False) -> bytes:
    """A sentence with its checksum (wrong on purpose when asked)."""
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    if bad_checksum:
        checksum ^= 0x5A
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


class PtyReceiver:
    """A GNSS receiver on a pseudo-terminal: the agent opens the slave with pyserial, the test
    writes sentences on the master."""

    def __init__(self) -> None:
        import os
        import tty

        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        import os

        os.write(self.master, data)

    def close(self) -> None:
        import os

        if self.master >= 0:
            os.close(self.master)
            os.close(self.slave)
            self.master = self.slave = -1
