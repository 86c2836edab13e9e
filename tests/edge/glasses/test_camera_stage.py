"""The shared face stage as the glasses run it (:meth:`FaceStage.process_frame`): whole frames,
faces tracked by their own boxes, on real photos with the real backend and gallery. A face that
moves about its own width between analysed frames (the wearer turns their head) stays one
track and gathers its k votes; with the camera's person-tracker settings it would not."""

from __future__ import annotations

from edge.faces.stage import FaceStage
from edge.faces.stage_config import FaceStageConfig
from edge.faces.types import FaceBackend
from edge.glasses.config import GlassesCameraConfig
from edge.vision.tracker import Tracker, TrackerConfig
from tests.edge.camera.test_faces import NOW, backend, gallery
from tests.edge.faces.face_video import compose

__all__ = ["backend"]  # the module-scoped fixture, shared with the camera's stage tests

STEP_PX = 94  # how far the face video's figures move per frame: about a face's width


def _stage(backend: FaceBackend, tracker: TrackerConfig) -> FaceStage:
    config = FaceStageConfig.model_validate({
        "search_region": "frame", "matcher": {"k_frames": 2, "n_frames": 4, "cooldown_s": 60}})
    watched = gallery(backend, {"entry-obama": "obama"})
    return FaceStage(config, backend, lambda: watched, face_tracker=Tracker(tracker),
                     wall=lambda: NOW)


def _walk(stage: FaceStage, photo: str, t0: float) -> list[tuple[int, str]]:
    """(frame, track id) of each match while ``photo`` crosses the frame at 10 frames/s."""
    found = []
    for i in range(5):
        frame, _ = compose(photo, 20 + STEP_PX * i)
        found += [(i, m.decision.track_id) for m in stage.process_frame(frame, t0 + 0.1 * i)]
    return found


def test_a_fast_face_is_one_track_matched_on_its_kth_frame_and_biden_never(
        backend: FaceBackend) -> None:
    glasses = GlassesCameraConfig.model_validate({"enabled": False}).tracker
    stage = _stage(backend, glasses)
    matches = _walk(stage, "obama2", 0.0)
    assert matches, f"no match; counters {stage.counters}"
    assert matches[0][0] == 1  # k = 2: the second frame of the track
    assert len({track for _, track in matches}) == 1
    assert stage.counters["faces_unassigned"] == 0  # every face was its track's
    assert _walk(stage, "biden", 2.0) == []
    assert stage.counters["faces_embedded"] == 10


def test_with_the_cameras_person_tracker_the_same_face_never_gathers_votes(
        backend: FaceBackend) -> None:
    """The control: the glasses' tracker settings are what makes the difference (a new track
    on every frame: each frame's vote is the first of its track)."""
    stage = _stage(backend, TrackerConfig(min_hits=1))
    assert _walk(stage, "obama2", 0.0) == []
    assert stage.counters["faces_embedded"] == 5
