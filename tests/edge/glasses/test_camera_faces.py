"""Face matching on the glasses' camera, end to end (tests/edge/glasses/face_run.py): the
glasses announce their bundle key, receive a real sealed bundle over the real Mosquitto, match
the enrolled face across frames of a real video and raise the camera's face_match alert; never
for the other faces; the HUD never shows a match; and no trace of a face that is not enrolled
leaves the process (the camera's canary search, tests/edge/faces/test_canary.py, on the
glasses' recording)."""

from __future__ import annotations

import pytest

from edge.alert_details import FaceMatchDetails, parse_details
from edge.faces.keys import load_or_create_device_key, public_key_b64
from edge.protocol import AlertKind, DeviceState, decode_as
from tests.edge.faces.test_canary import (
    _found,
    _haystacks,
    crop_needles,
    embedding_needles,
    embedding_text_hits,
)
from tests.edge.faces.video_run import ENROLLED, FaceRun
from tests.edge.glasses.face_run import OFFICER_FIX, glasses_face_run
from tests.edge.glasses.support import RecordingRenderer
from tests.support.broker import BrokerHarness, unique_site

pytestmark = pytest.mark.gstreamer


@pytest.fixture
def recorded(broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[FaceRun, RecordingRenderer]:
    return glasses_face_run(broker, unique_site, tmp_path_factory.mktemp("glasses-faces"))


def test_glasses_announce_their_bundle_key_and_the_version_in_force(
        recorded: tuple[FaceRun, RecordingRenderer]) -> None:
    run, _ = recorded
    states = [decode_as(DeviceState, p) for t, p in run.messages
              if t.endswith("/state") and p and f"/glasses/{run.device}/" in t]
    assert states, "no retained state from the glasses"
    key = public_key_b64(load_or_create_device_key(run.data_dir / "watchlist" / "device.key"))
    assert {s.bundle_key_b64 for s in states} == {key}
    assert any(s.watchlist_version == 1 for s in states)
    replies = [t for t, _ in run.messages if t.endswith("/reply")]
    assert replies, "the bundle was answered"


def test_the_enrolled_face_is_matched_across_frames_and_nobody_else(
        recorded: tuple[FaceRun, RecordingRenderer]) -> None:
    run, _ = recorded
    last = run.segments[-1]
    assert run.frames_processed >= last.first_frame + last.frames  # the whole video
    faces = [a for a in run.alerts if a.kind is AlertKind.FACE_MATCH]
    assert faces, f"no face_match alert; health: {run.health_metrics}"
    assert {a.kind for a in run.alerts} == {AlertKind.FACE_MATCH}
    assert all(a.device == run.device for a in faces)
    details = [parse_details(a.kind, a.details) for a in faces]
    assert all(isinstance(d, FaceMatchDetails) for d in details)
    assert {d.entry_id for d in details if isinstance(d, FaceMatchDetails)} == {ENROLLED}
    for alert, d in zip(faces, details, strict=True):
        assert isinstance(d, FaceMatchDetails)
        assert d.bundle_version == 1 and d.backend == "yunet-sface"
        assert d.score >= d.threshold >= 0.3
        assert 2 <= d.frames_matched <= d.frames_seen  # k of n frames of one face track
        assert alert.face_crop is not None and alert.evidence is not None
        # placed at the officer's fix, its accuracy widened by the camera's match range
        assert alert.location is not None
        assert (alert.location.lon, alert.location.lat) == OFFICER_FIX[:2]
        assert alert.location.accuracy_m == pytest.approx(OFFICER_FIX[2] + 10.0)
    # each alert's crop is an Obama face of the video, never a Biden face
    sent = {a.face_crop.jpeg() for a in faces if a.face_crop is not None}
    photos = {t.photo for t in run.traces if t.crop_jpeg in sent}
    assert photos <= {"obama2", "obama3"} and photos
    others = [t for t in run.traces if t.photo in ("biden",)]
    assert len(others) >= 5, "the other faces went through the stage"
    assert not sent & {t.crop_jpeg for t in others}
    m = run.health_metrics
    assert m["faces_active"] == 1.0
    assert m["face_matches"] == len(faces)
    assert m["camera_frames_analysed"] == run.frames_processed


def test_a_match_is_never_shown_on_the_hud(recorded: tuple[FaceRun, RecordingRenderer]
                                           ) -> None:
    run, renderer = recorded
    assert [a for a in run.alerts if a.kind is AlertKind.FACE_MATCH]
    assert renderer.views, "the HUD rendered during the run"
    assert all(not view.items for view in renderer.views)


def test_no_trace_of_a_face_that_is_not_enrolled_leaves_the_glasses(
        recorded: tuple[FaceRun, RecordingRenderer], caplog: pytest.LogCaptureFixture) -> None:
    run, _ = recorded
    stacks = _haystacks(run, caplog.text)
    names = {p.name for p in run.files}
    assert any(n.endswith("-outbox.sqlite") for n in names), names
    assert any(n.endswith("-watchlist.json") for n in names), names
    text = stacks["logs"].decode("utf-8") + "".join(
        d.decode("utf-8", "replace") for n, d in stacks.items() if n.startswith("mqtt"))
    canaries = [t for t in run.traces if t.photo in ("biden",)]
    assert len(canaries) >= 5
    for trace in canaries:
        where = _found(embedding_needles(trace.embedding), stacks)
        assert not where, f"{trace.photo} frame {trace.frame}: embedding bytes in {where}"
        assert embedding_text_hits(trace.embedding, text) < 3
        where = _found(crop_needles(trace.crop_jpeg), stacks)
        assert not where, f"{trace.photo} frame {trace.frame}: face crop in {where}"
    # the control: the same search finds the matched faces' crops where their alerts carry
    # them (MQTT and the outbox), so an empty search above is not a deaf one
    sent = {a.face_crop.jpeg() for a in run.alerts if a.face_crop is not None}
    for trace in (t for t in run.traces if t.crop_jpeg in sent):
        where = _found(crop_needles(trace.crop_jpeg), stacks)
        assert any(w.startswith("mqtt") and "/alert #" in w for w in where), where
        assert any("outbox" in w for w in where), where
