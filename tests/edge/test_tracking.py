"""The shared tracking core: ids unique across restarts (defect 6), and one association and
lifecycle used by both the camera and the LiDAR trackers."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.bus import BusConfig
from edge.camera.config import CameraConfig
from edge.lidar.clustering import Cluster
from edge.lidar.tracking import Tracker as LidarTracker
from edge.lidar.tracking import TrackerParams
from edge.tracking import TrackIds, track_entity
from edge.vision.boxes import Detection
from edge.vision.tracker import Tracker as CameraTracker
from hub.broker import free_port


def _walk_camera(tracker: CameraTracker) -> set[str]:
    ids: set[str] = set()
    for f in range(12):
        dets = [Detection((10 + 5 * f, 100, 30 + 5 * f, 150), 1.0),
                Detection((300 - 5 * f, 90, 320 - 5 * f, 140), 1.0)]
        ids |= {t.id for t in tracker.update(dets, f * 0.1)}
    return ids


def _walk_lidar(tracker: LidarTracker) -> set[str]:
    ids: set[str] = set()
    for f in range(12):
        clusters = [Cluster(1.0 + 0.1 * f, 2.0, 5, 0.3), Cluster(-3.0, 1.0 - 0.1 * f, 5, 0.3)]
        ids |= {t.id for t in tracker.update(clusters, f * 0.1)}
    return ids


def test_camera_ids_are_never_reused_across_restarts(tmp_path: Path) -> None:
    run_file = tmp_path / "cam-track-runs"
    first = _walk_camera(CameraTracker(ids=TrackIds.persistent(run_file)))
    second = _walk_camera(CameraTracker(ids=TrackIds.persistent(run_file)))
    assert len(first) == 2 and len(second) == 2
    assert first.isdisjoint(second), "a restarted camera named a new person with an old id"


def test_lidar_ids_are_never_reused_across_restarts(tmp_path: Path) -> None:
    run_file = tmp_path / "lidar-track-runs"
    first = _walk_lidar(LidarTracker(TrackerParams(confirm_hits=2),
                                     ids=TrackIds.persistent(run_file)))
    second = _walk_lidar(LidarTracker(TrackerParams(confirm_hits=2),
                                      ids=TrackIds.persistent(run_file)))
    assert len(first) == 2 and first.isdisjoint(second)


def test_camera_service_lifetimes_over_one_data_dir_use_new_ids(tmp_path: Path) -> None:
    """The service wires the persistent ids of its data directory into its tracker."""
    from edge.camera.service import CameraService

    cfg = CameraConfig.model_validate({
        "site": "s", "device": "cam-1", "data_dir": str(tmp_path),
        "mqtt": BusConfig(port=free_port()).model_dump(),
        "source": {"type": "file", "path": str(tmp_path / "none.avi")},
    })
    prefixes = []
    for _ in range(2):
        service = CameraService(cfg, source=_NoSource())
        prefixes.append(service.processor.tracker.core.ids.prefix)
        service.runtime.bus.stop()
        service.runtime.outbox.close()
        service.processor.close()
    assert prefixes == ["t1-", "t2-"]


class _NoSource:
    """Stands in for the GStreamer source: the service is built, never started."""

    def stop(self) -> None:
        return None


def test_run_numbers_survive_a_corrupt_file_without_going_back(tmp_path: Path) -> None:
    run_file = tmp_path / "runs"
    assert TrackIds.persistent(run_file).prefix == "t1-"
    assert TrackIds.persistent(run_file).prefix == "t2-"
    run_file.write_text("garbage", encoding="ascii")
    # The count restarts from the wall clock, far above any count reached before.
    ids = TrackIds.persistent(run_file, wall=1_800_000_000.0)
    assert ids.prefix == "t" + _b36(1_800_000_001) + "-"
    assert run_file.read_text(encoding="ascii").strip() == "1800000001"


def test_an_unwritable_run_file_falls_back_to_a_random_prefix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="ascii")
    a = TrackIds.persistent(blocker / "runs")  # a file where a directory should be
    b = TrackIds.persistent(blocker / "runs")
    assert a.prefix.startswith("tx") and a.prefix != b.prefix


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out


def test_both_trackers_run_on_the_one_core() -> None:
    from edge.tracking import TrackCore

    cam = CameraTracker()
    lidar = LidarTracker(TrackerParams())
    assert isinstance(cam.core, TrackCore) and isinstance(lidar.core, TrackCore)
    assert type(cam.core) is type(lidar.core)


def test_core_counts_created_and_confirmed_tracks() -> None:
    tracker = LidarTracker(TrackerParams(confirm_hits=3), ids=TrackIds("t"))
    for f in range(5):
        tracker.update([Cluster(0.0, 0.0, 5, 0.3)], f * 0.1)
    assert (tracker.created, tracker.confirmed_total) == (1, 1)
    assert [t.id for t in tracker.tracks] == ["t1"]


@pytest.mark.parametrize(("device", "track"), [("cam-1", "t3-17"), ("d" * 64, "t1z-123456")])
def test_track_entity_fits_the_wire_limit_and_keeps_the_track_id(device: str,
                                                                  track: str) -> None:
    entity = track_entity(device, track)
    assert len(entity) <= 64 and entity.endswith("-" + track)
