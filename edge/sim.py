"""A simulated field device for the demo and the delivery tests: it walks a route, publishes
positions and health through a real :class:`~edge.agent.AgentRuntime`, and raises alerts."""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated

from pydantic import Field

from edge.agent import AgentRuntime
from edge.config import AgentConfig, StrictModel
from edge.projection import LocalProjection
from edge.protocol import AlertKind, DeviceKind, EntityKind, Location, Position, Severity
from edge.validators import utcnow


class RoutePoint(StrictModel):
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]


class SimulatedDeviceConfig(AgentConfig):
    kind: DeviceKind = DeviceKind.GLASSES
    entity: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "officer-1"
    entity_kind: EntityKind = EntityKind.OFFICER
    route: list[RoutePoint] = Field(min_length=2)
    speed_mps: Annotated[float, Field(gt=0, le=50)] = 1.4
    position_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    alert_interval_s: Annotated[float, Field(gt=0)] | None = 30.0
    alert_kind: AlertKind = AlertKind.SOS


def walk(route: list[RoutePoint], distance_m: float) -> tuple[float, float, float]:
    """(lon, lat, heading_deg) after ``distance_m`` along the closed ``route``."""
    legs = []
    for a, b in zip(route, route[1:] + route[:1], strict=True):
        dx, dy = LocalProjection(a.lon, a.lat).to_site(b.lon, b.lat)
        legs.append((a, b, math.hypot(dx, dy), math.degrees(math.atan2(dx, dy)) % 360))
    total = sum(leg[2] for leg in legs) or 1.0
    d = distance_m % total
    for a, b, length, heading in legs:
        if d <= length and length > 0:
            f = d / length
            return a.lon + (b.lon - a.lon) * f, a.lat + (b.lat - a.lat) * f, heading
        d -= length
    return route[0].lon, route[0].lat, 0.0


class SimulatedDevice:
    def __init__(self, config: SimulatedDeviceConfig, runtime: AgentRuntime | None = None) -> None:
        self.config = config
        self.runtime = runtime or AgentRuntime(config, config.kind)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.alerts_sent = 0

    def start(self) -> None:
        self.runtime.start()
        self._thread = threading.Thread(
            target=self._run, name=f"sim-{self.config.device}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.runtime.stop()

    def _run(self) -> None:
        cfg = self.config
        started = time.monotonic()
        next_alert = started + (cfg.alert_interval_s or math.inf)
        while not self._stop.wait(cfg.position_interval_s):
            now = time.monotonic()
            lon, lat, heading = walk(cfg.route, (now - started) * cfg.speed_mps)
            self.runtime.send_positions(
                [
                    Position(
                        entity=cfg.entity,
                        entity_kind=cfg.entity_kind,
                        lon=lon,
                        lat=lat,
                        accuracy_m=5.0,
                        heading_deg=round(heading, 1),
                        speed_mps=cfg.speed_mps,
                        ts=utcnow(),
                    )
                ]
            )
            if now >= next_alert and cfg.alert_interval_s is not None:
                next_alert = now + cfg.alert_interval_s
                self.runtime.alert(
                    kind=cfg.alert_kind,
                    severity=Severity.HIGH,
                    entity=cfg.entity,
                    title=f"{cfg.alert_kind.value} from {cfg.entity}",
                    location=Location(lon=lon, lat=lat, accuracy_m=5.0),
                )
                self.alerts_sent += 1
