"""The LiDAR piece of ``gridward demo``: a simulated LD06 guarding a walled yard with a gate,
read over a real pseudo-terminal by a real :class:`~edge.lidar.service.LidarService`.

Layout (site metres from the demo's reference point; x east, y north): the scanner sits on a
post at (40, 20) inside a 14 x 10 m walled yard with a 3 m gate in its west wall. A counting line
spans the gate; a transformer enclosure in the north-east corner is a restricted zone. Every
60 s one visitor walks in through the gate and out again, and one intruder climbs into the
enclosure and lingers (an intrusion alert), then leaves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from edge.bus import BusConfig
from edge.lidar.config import LidarConfig
from edge.lidar.scene import SceneConfig
from edge.lidar.service import LidarService
from edge.lidar.simulator import SimulatedScanner

DEMO_DEVICES: list[str] = ["lidar-yard"]

POST = (40.0, 20.0)
YARD = (33.0, 15.0, 47.0, 25.0)  # x0, y0, x1, y1
GATE_Y = (18.5, 21.5)
ENCLOSURE = [(42.5, 21.5), (46.0, 21.5), (46.0, 24.0), (42.5, 24.0)]
LOOP_S = 60.0


def _pt(x: float, y: float) -> dict[str, float]:
    return {"x_m": x, "y_m": y}


def demo_scene() -> SceneConfig:
    x0, y0, x1, y1 = YARD
    g0, g1 = GATE_Y
    walls = [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)),
             ((x0, y1), (x0, g1)), ((x0, g0), (x0, y0)),
             # the enclosure's low fence is below the scan plane: only its posts show
             ((42.5, 21.45), (42.6, 21.45)), ((45.9, 21.45), (46.0, 21.45))]
    visitor = [(4.0, 29.0, 20.0), (8.0, 36.0, 19.5), (14.0, 38.0, 17.0), (20.0, 36.0, 20.5),
               (24.0, 29.0, 20.0)]
    intruder = [(5.0, 36.0, 23.5), (8.0, 41.0, 23.0), (10.0, 44.0, 22.8), (18.0, 44.2, 22.9),
                (21.0, 41.0, 23.0), (25.0, 36.5, 23.5)]
    return SceneConfig.model_validate({
        "model": "ld06",
        "mount": {"x_m": POST[0], "y_m": POST[1], "yaw_deg": 90.0},
        "walls": [{"a": _pt(*a), "b": _pt(*b)} for a, b in walls],
        "walkers": [
            {"name": "visitor", "waypoints": [{"t_s": t, "x_m": x, "y_m": y}
                                              for t, x, y in visitor]},
            {"name": "intruder", "waypoints": [{"t_s": t, "x_m": x, "y_m": y}
                                               for t, x, y in intruder]},
        ],
        "loop_s": LOOP_S,
    })


def demo_config(site: str, device: str, *, mqtt: BusConfig, data_dir: Path, port: Path,
                origin: tuple[float, float]) -> LidarConfig:
    x0 = YARD[0]
    g0, g1 = GATE_Y
    return LidarConfig.model_validate({
        "site": site, "device": device, "mqtt": mqtt, "data_dir": data_dir,
        "health_interval_s": 5.0,
        "site_origin": {"lon": origin[0], "lat": origin[1]},
        "scanner": {"model": "ld06", "port": str(port)},
        "mount": {"x_m": POST[0], "y_m": POST[1], "yaw_deg": 90.0},
        "background": {"learn_s": 3.0},
        "zones": [{"id": "transformer", "polygon": [_pt(x, y) for x, y in ENCLOSURE],
                   "min_dwell_s": 2.0, "severity": "high",
                   "title": "Person inside the transformer enclosure"}],
        "lines": [{"id": "yard-gate", "a": _pt(x0, g0 - 0.5), "b": _pt(x0, g1 + 0.5),
                   "in_name": "in", "out_name": "out"}],
    })


class LidarDemo:
    def __init__(self, simulator: SimulatedScanner, service: LidarService) -> None:
        self.simulator = simulator
        self.service = service

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.service.stop()
        self.simulator.stop()


def start_demo(site: str, mqtt_for: Callable[[str], BusConfig], data_dir: Path,
               origin: tuple[float, float]) -> LidarDemo:
    """Start the simulated scanner and its agent; returns an object with ``.stop()``."""
    device = DEMO_DEVICES[0]
    data_dir.mkdir(parents=True, exist_ok=True)
    simulator = SimulatedScanner(demo_scene(), data_dir / f"{device}.tty")
    simulator.start()
    try:
        service = LidarService(demo_config(site, device, mqtt=mqtt_for(device),
                                           data_dir=data_dir, port=simulator.link,
                                           origin=origin))
        service.start()
    except Exception:
        simulator.stop()
        raise
    return LidarDemo(simulator, service)
