"""The issue's video test: a short video of the real photos (obama2, biden, obama3, a group)
through a real camera agent (GStreamer file ingest, NanoDet-m, tracker, YuNet + SFace), with
obama.jpg enrolled in a sealed bundle the hub pushed over the real Mosquitto: face_match alerts
for the Obama entry only, each with a face crop and a frame snapshot; never one for Biden or
the group."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.alert_details import FaceMatchDetails, parse_details
from edge.protocol import AlertKind, Evidence
from tests.edge.faces.video_run import ENROLLED, FaceRun, face_run
from tests.support.broker import BrokerHarness, unique_site

pytestmark = pytest.mark.gstreamer


@pytest.fixture
def run(broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory) -> FaceRun:
    return face_run(broker, unique_site, tmp_path_factory.mktemp("faces"))


def _image(evidence: Evidence | None) -> np.ndarray:
    assert evidence is not None
    data = np.frombuffer(evidence.jpeg(), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_obama_is_matched_and_nobody_else(run: FaceRun) -> None:
    faces = [a for a in run.alerts if a.kind is AlertKind.FACE_MATCH]
    assert faces, f"no face_match alert; health: {run.health_metrics}"
    assert all(a.device == run.device for a in faces)
    assert {a.kind for a in run.alerts} == {AlertKind.FACE_MATCH}  # no zones configured
    details = [parse_details(a.kind, a.details) for a in faces]
    assert all(isinstance(d, FaceMatchDetails) for d in details)
    assert {d.entry_id for d in details if isinstance(d, FaceMatchDetails)} == {ENROLLED}
    for alert, d in zip(faces, details, strict=True):
        assert isinstance(d, FaceMatchDetails)
        assert d.bundle_version == 1
        assert d.backend == "yunet-sface"
        assert d.score >= d.threshold >= 0.3
        assert d.frames_matched >= 2
        assert d.frames_seen >= d.frames_matched
        crop, snapshot = _image(alert.face_crop), _image(alert.evidence)
        assert max(crop.shape[:2]) <= 160
        assert snapshot.shape[1] >= 320
    # Both Obama photos of the video were recognised as the entry (each its own track), and
    # each alert's crop is an Obama face of the video (the crops recorded as the agent embedded
    # the faces of the Obama segments), not a Biden or group face.
    obama_crops = {t.crop_jpeg for t in run.traces if t.photo in ("obama2", "obama3")}
    other_crops = {t.crop_jpeg for t in run.traces if t.photo in ("biden", "group")}
    sent_crops = {a.face_crop.jpeg() for a in faces if a.face_crop is not None}
    assert sent_crops <= obama_crops
    assert not sent_crops & other_crops
    photos = {t.photo for t in run.traces if t.crop_jpeg in sent_crops}
    assert photos == {"obama2", "obama3"}
    assert run.health_metrics["faces_active"] == 1.0
    assert run.health_metrics["face_matches"] == len(faces)
    assert run.health_metrics["faces_inference_ms"] > 0


def test_the_recording_saw_the_agent(run: FaceRun) -> None:
    """The recorder is not deaf: the agent's state, health and bundle reply passed it."""
    topics = {t.rsplit("/", 1)[-1] for t, _ in run.messages}
    assert {"state", "health", "alert", "reply", "watchlist"} <= topics
    biden_or_group = [t for t in run.traces if t.photo in ("biden", "group")]
    assert len(biden_or_group) >= 6, "the canary faces were embedded by the agent's stage"
    assert isinstance(run.run_dir, Path)
