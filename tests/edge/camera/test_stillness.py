"""Tracks survive stillness: a frame the detector did not look at does not age a track.

The clip is real footage (vtest.avi): people keep walking by while one of them is frozen in
place (see :mod:`tests.edge.camera.clips`), so the motion gate stops seeing them after a few
frames. Before issue 17 the tracker was fed "no detections" on such frames: the person lost
the track after 8 frames, their loitering timer restarted and they came back with new ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.camera.config import CameraConfig
from edge.camera.detectors.hog import (
    Config as HogConfig,  # the clip's boxes and ids were drawn from HOG's
)
from edge.camera.pipeline import FrameProcessor
from edge.camera.zones import LoiteringZone
from edge.tracking import TrackIds
from edge.vision.boxes import Box, Detection, iou
from edge.vision.ingest import IngestConfig, TestPatternSource
from edge.vision.tracker import Tracker, TrackerConfig
from tests.edge.camera.clips import standing_person_clip

PERSON: Box = (227.0, 60.0, 273.0, 177.0)  # HOG's box of the frozen person in the clip view


def _det(box: Box) -> Detection:
    return Detection(box, 1.0, "person")


def test_a_track_outside_what_the_detector_looked_at_is_held_not_aged() -> None:
    tr = Tracker(TrackerConfig(max_missed_frames=3), ids=TrackIds("t"))
    still = (100.0, 100.0, 140.0, 200.0)
    for i in range(3):
        tr.update([_det(still)], i * 0.1)
    elsewhere = [(300.0, 0.0, 400.0, 100.0)]
    for i in range(3, 60):  # motion only far away, nothing found there
        seen = tr.update([], i * 0.1, looked=elsewhere)
        assert [t.id for t in seen] == ["t1"]
    assert tr.tracks[0].missed == 0 and tr.tracks[0].box == pytest.approx(still)
    # looked at and not found: it ages as before and is dropped after max_missed_frames
    for i in range(60, 64):
        tr.update([], i * 0.1, looked=[(90.0, 90.0, 150.0, 210.0)])
    assert tr.tracks == []


def test_a_passer_by_next_to_a_still_person_gets_a_track_of_their_own() -> None:
    tr = Tracker(TrackerConfig(), ids=TrackIds("t"))
    still = (100.0, 100.0, 140.0, 200.0)
    for i in range(4):
        tr.update([_det(still)], i * 0.1)
    # not overlapping, 0.4 box heights away: inside the centre-distance gate of a mover
    passer = (150.0, 95.0, 190.0, 195.0)
    seen = tr.update([_det(passer)], 0.4, looked=[(80.0, 80.0, 200.0, 220.0)])
    still_track = next(t for t in tr.tracks if t.id == "t1")
    assert still_track.box == pytest.approx(still) and still_track.missed == 1
    assert [t.id for t in seen] == []  # the passer's new track is not confirmed yet
    assert {t.id for t in tr.tracks} == {"t1", "t2"}


def test_a_standing_person_keeps_one_id_and_their_loitering_timer(vtest: Path,
                                                                   tmp_path: Path) -> None:
    step_s = 0.2
    clip = standing_person_clip(vtest, 150)  # 30 s at 5 fps
    config = CameraConfig(
        site="s", device="d", mqtt={"host": "127.0.0.1"}, data_dir=tmp_path,
        source=TestPatternSource(), detector=HogConfig(),
        ingest=IngestConfig(width_px=384, height_px=288),
        zones=[LoiteringZone(id="bench", polygon=[(200, 140), (300, 140), (300, 200),
                                                  (200, 200)], dwell_s=20)])
    proc = FrameProcessor(config, track_ids=TrackIds("t"))
    person_ids: list[set[str]] = []
    modes: list[str] = []
    events = []
    try:
        for i, frame in enumerate(clip):
            result = proc.process(frame, i * step_s)
            modes.append(result.mode)
            person_ids.append({t.id for t in result.tracks if iou(t.box, PERSON) > 0.6})
            events.extend(result.events)
    finally:
        proc.close()
    # the gate really stopped looking at them: most frames are gated or motion regions
    # elsewhere, and the detector saw the whole frame every 2 s (the default)
    assert modes.count("full") <= 5 + 15 + 1
    assert modes.count("regions") + modes.count("gated") >= 100
    # one person, one id, in every frame once confirmed (min_hits 2)
    assert all(ids == {"t1"} for ids in person_ids[1:]), [
        (i, ids) for i, ids in enumerate(person_ids) if ids != {"t1"}]
    loiter = [e for e in events if e.track_id == "t1"]
    assert len(loiter) == 1
    assert loiter[0].started_ts == pytest.approx(step_s)  # entered when first confirmed
    assert loiter[0].dwell_s == pytest.approx(20.0, abs=step_s)
