"""The camera piece of ``gridward demo``: a simulated camera box that replays the pedestrian
video ``vtest.avi`` as a live stream (paced at its own 10 fps, looping) through the real agent:
GStreamer ingest, person detection (the default detector: NanoDet-m where set-up has built it,
HOG otherwise), tracking, a line and an intrusion zone, alerts with
snapshots and track positions on the map through a homography anchored at the demo origin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge.bus import BusConfig
from edge.camera.config import CameraConfig
from edge.camera.homography import GroundPoint, HomographyConfig
from edge.camera.service import CameraService
from edge.camera.testdata import vtest_path
from edge.camera.zones import IntrusionZone, LineZone
from edge.projection import LocalProjection
from edge.vision.ingest import FileSource, IngestConfig

DEMO_DEVICES: list[str] = ["camera-vtest"]


def demo_homography(origin: tuple[float, float]) -> HomographyConfig:
    """The visible footpath (~768x576 px) as a ~40 m x 25 m patch north-east of ``origin``."""
    geo = LocalProjection(*origin).offset

    # far edge of the path (top of the image) is wider on the ground than the near edge
    corners = [((0, 150), geo(-5, 30)), ((767, 150), geo(45, 30)),
               ((767, 575), geo(30, 0)), ((0, 575), geo(10, 0))]
    return HomographyConfig(points=[GroundPoint(px=px, lon=lon, lat=lat)
                                    for px, (lon, lat) in corners], accuracy_m=3.0)


def demo_config(site: str, device: str, mqtt: BusConfig, data_dir: Path, *,
                origin: tuple[float, float], video: Path) -> CameraConfig:
    return CameraConfig(
        site=site, device=device, mqtt=mqtt, data_dir=data_dir, health_interval_s=5.0,
        source=FileSource(path=video, loop=True, live=True),
        ingest=IngestConfig(width_px=768, height_px=576, policy="latest"),
        zones=[
            LineZone(id="footpath-west", a=(200, 340), b=(200, 140), cooldown_s=30),
            IntrusionZone(id="lawn", polygon=[(0, 420), (767, 500), (767, 575), (0, 575)],
                          cooldown_s=60),
        ],
        homography=demo_homography(origin), position_interval_s=1.0,
    )


def start_demo(site: str, mqtt_for: Callable[[str], BusConfig], data_dir: Path,
               origin: tuple[float, float]) -> CameraService:
    """Start the demo camera (returns something with ``.stop()``)."""
    device = DEMO_DEVICES[0]
    data_dir.mkdir(parents=True, exist_ok=True)
    config = demo_config(site, device, mqtt_for(device), data_dir, origin=origin,
                         video=vtest_path())
    service = CameraService(config)
    service.start()
    return service
