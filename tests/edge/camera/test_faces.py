"""The camera's face stage on real photos with the real YuNet + SFace backend and the real
gallery: faces tied to person tracks, k of n, nothing run without a watchlist, the limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from numpy.typing import NDArray
from pydantic import ValidationError

from edge.camera.config import CameraConfig
from edge.config import load_config
from edge.faces.backends import FaceBackendConfig, load_backend
from edge.faces.bundle import BundleEntry, BundlePayload
from edge.faces.gallery import Candidate, Gallery
from edge.faces.keys import ed25519_public_b64, key_id_of
from edge.faces.matcher import MatcherConfig, ThresholdBelowFloorError
from edge.faces.stage import FaceStage, GalleryView, blur_faces, encode_face_crop
from edge.faces.stage_config import FaceCropConfig, FacesConfig, FaceStageConfig
from edge.faces.types import BgrImage, Embedding, FaceBackend, FaceBox
from edge.vision.tracker import Track
from tests.edge.faces.face_video import compose

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def backend() -> FaceBackend:
    return load_backend(FaceBackendConfig())


@dataclass
class Counting:
    """Counts calls into the real detector and embedder (a spy, not a stand-in)."""

    backend: FaceBackend
    detect_calls: int = 0
    embed_calls: int = 0
    seen_shapes: list[tuple[int, ...]] = field(default_factory=list)

    def wrap(self) -> FaceBackend:
        outer = self

        class Det:
            name = outer.backend.detector.name

            def detect(self, image: BgrImage) -> list[FaceBox]:
                outer.detect_calls += 1
                outer.seen_shapes.append(image.shape)
                return outer.backend.detector.detect(image)

        class Emb:
            name = outer.backend.embedder.name
            dim = outer.backend.embedder.dim

            def embed(self, image: BgrImage, face: FaceBox) -> Embedding:
                outer.embed_calls += 1
                return outer.backend.embedder.embed(image, face)

        b = self.backend
        return FaceBackend(b.name, Det(), Emb(), b.default_threshold, b.floor, b.licence)


_EMBEDDINGS: dict[str, Embedding] = {}


def embedding(backend: FaceBackend, label: str) -> Embedding:
    if label not in _EMBEDDINGS:
        frame, _ = compose(label)
        faces = backend.detector.detect(frame)
        _EMBEDDINGS[label] = backend.embedder.embed(frame, max(faces, key=lambda f: f.area))
    return _EMBEDDINGS[label]


def gallery(backend: FaceBackend, entries: dict[str, str], version: int = 1) -> Gallery:
    payload = BundlePayload(
        version=version, issued_at=NOW, expires_at=NOW + timedelta(days=1),
        model=backend.embedder.name, dim=backend.embedder.dim,
        entries=tuple(BundleEntry(entry_id, NOW + timedelta(days=1), embedding(backend, label))
                      for entry_id, label in entries.items()))
    return Gallery.from_payload(payload)


def track(track_id: str, box: tuple[float, float, float, float]) -> Track:
    return Track(id=track_id, box=box, label="person", score=0.9, first_ts=0.0, last_ts=0.0)


def stage(backend: FaceBackend, galleries: Callable[[], GalleryView], **kw: object
          ) -> FaceStage:
    config = FaceStageConfig.model_validate({"matcher": {"k_frames": 2, "n_frames": 3,
                                                         "cooldown_s": 60}, **kw})
    return FaceStage(config, backend, galleries, wall=lambda: NOW)


def test_obama_matches_on_the_kth_frame_and_biden_never(backend: FaceBackend) -> None:
    g = gallery(backend, {"entry-obama": "obama"})
    s = stage(backend, lambda: g)
    frame, box = compose("obama2", 60)
    t = track("t1", box)
    assert s.process(frame, [t], {"t1"}) == []
    [event] = s.process(frame, [t], {"t1"})
    assert (event.decision.entry_id, event.decision.track_id) == ("entry-obama", "t1")
    assert event.decision.score > 0.5
    assert event.bundle_version == 1
    assert event.crop is not None
    crop = cv2.imdecode(np.frombuffer(event.crop.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None
    assert max(crop.shape[:2]) == FaceCropConfig().size_px
    assert len(event.crop.jpeg) <= FaceCropConfig().max_bytes

    frame_b, box_b = compose("biden", 60)
    tb = track("t2", box_b)
    for _ in range(6):
        assert s.process(frame_b, [tb], {"t1", "t2"}) == []
    assert s.matcher.held_entries() <= {"entry-obama"}
    assert s.metrics()["faces_active"] == 1.0


def test_no_watchlist_means_no_detection(backend: FaceBackend) -> None:
    spy = Counting(backend)
    empty = Gallery.empty(backend.embedder.name, backend.embedder.dim)
    s = stage(spy.wrap(), lambda: empty)
    frame, box = compose("obama2")
    for _ in range(3):
        assert s.process(frame, [track("t1", box)], {"t1"}) == []
    assert spy.detect_calls == 0
    assert s.metrics()["faces_active"] == 0.0


def test_an_expired_bundle_means_no_detection(backend: FaceBackend) -> None:
    spy = Counting(backend)
    g = gallery(backend, {"entry-obama": "obama"})
    s = FaceStage(FaceStageConfig(), spy.wrap(), lambda: g,
                  wall=lambda: NOW + timedelta(days=2))
    frame, box = compose("obama2")
    assert s.process(frame, [track("t1", box)], {"t1"}) == []
    assert spy.detect_calls == 0


def test_without_person_tracks_no_face_is_looked_at(backend: FaceBackend) -> None:
    spy = Counting(backend)
    g = gallery(backend, {"entry-obama": "obama"})
    s = stage(spy.wrap(), lambda: g, search_region="frame")
    frame, _ = compose("obama2")
    assert s.process(frame, [], set()) == []
    assert spy.detect_calls == 0


def test_a_face_outside_every_person_box_is_not_embedded(backend: FaceBackend) -> None:
    spy = Counting(backend)
    g = gallery(backend, {"entry-obama": "obama"})
    s = stage(spy.wrap(), lambda: g, search_region="frame")
    frame, _box = compose("obama2", 20)
    elsewhere = (500.0, 0.0, 639.0, 479.0)  # a "person" where there is no face
    for _ in range(3):
        assert s.process(frame, [track("t1", elsewhere)], {"t1"}) == []
    assert spy.detect_calls == 3
    assert spy.embed_calls == 0
    assert s.counters["faces_unassigned"] == 3


def test_person_upper_searches_only_the_upper_part_of_each_person(backend: FaceBackend
                                                                  ) -> None:
    spy = Counting(backend)
    g = gallery(backend, {"entry-obama": "obama"})
    s = stage(spy.wrap(), lambda: g, upper_fraction=0.5)
    frame, box = compose("obama2", 60)
    s.process(frame, [track("t1", box)], {"t1"})
    [shape] = spy.seen_shapes
    # the upper half, plus the margin above the box's top (10 % of its width)
    assert shape[0] <= (box[3] - box[1]) * 0.5 + (box[2] - box[0]) * 0.1 + 2
    assert shape[0] < frame.shape[0] * 0.7
    assert spy.embed_calls == 1


def test_max_faces_per_frame_is_a_limit_counted(backend: FaceBackend) -> None:
    spy = Counting(backend)
    g = gallery(backend, {"entry-obama": "obama"})
    s = stage(spy.wrap(), lambda: g, search_region="frame", max_faces_per_frame=2,
              min_face_px=16)
    frame, _ = compose("group", 20)
    faces = backend.detector.detect(frame)
    assert len(faces) >= 4
    # one person track around each face
    tracks = [track(f"g{i}", (f.x - 10, f.y - 10, f.x + f.w + 10, f.y + f.h * 3))
              for i, f in enumerate(faces)]
    s.process(frame, tracks, {t.id for t in tracks})
    assert spy.embed_calls == 2
    assert s.counters["faces_over_limit"] == len(faces) - 2


def test_a_new_bundle_version_restarts_the_vote(backend: FaceBackend) -> None:
    current = [gallery(backend, {"entry-obama": "obama"}, version=1)]
    s = stage(backend, lambda: current[0])
    frame, box = compose("obama2", 60)
    t = track("t1", box)
    assert s.process(frame, [t], {"t1"}) == []
    current[0] = gallery(backend, {"entry-obama": "obama"}, version=2)
    assert s.process(frame, [t], {"t1"}) == []  # the v1 vote does not count for v2
    [event] = s.process(frame, [t], {"t1"})
    assert event.bundle_version == 2


def test_threshold_below_the_floor_is_refused_by_config_and_stage(backend: FaceBackend
                                                                  ) -> None:
    floor = backend.floor
    hub = Ed25519PrivateKey.generate().public_key()
    watchlist = {"hub_keys": {key_id_of(hub): ed25519_public_b64(hub)}}
    with pytest.raises(ValidationError, match=f"floor {floor:g}"):
        FacesConfig.model_validate({"matcher": {"threshold": floor - 0.05},
                                    "watchlist": watchlist})
    assert FacesConfig.model_validate({"matcher": {"threshold": floor},
                                       "watchlist": watchlist}).matcher.threshold == floor
    # the backend's own threshold setting is the same knob: honoured, but not both at once
    via_backend = FacesConfig.model_validate({"backend": {"match_threshold": 0.5},
                                              "watchlist": watchlist})
    assert via_backend.stage_config().matcher.threshold == 0.5
    with pytest.raises(ValidationError, match="once"):
        FacesConfig.model_validate({"backend": {"match_threshold": 0.5},
                                    "matcher": {"threshold": 0.5}, "watchlist": watchlist})
    with pytest.raises(ThresholdBelowFloorError):
        FaceStage(FaceStageConfig(matcher=MatcherConfig(threshold=floor - 0.05)), backend,
                  Gallery.empty)


def test_blur_faces_removes_the_detail_of_a_face(backend: FaceBackend) -> None:
    frame, _ = compose("biden", 60)
    [face] = backend.detector.detect(frame)
    blurred = blur_faces(frame, [face])
    x, y, w, h = int(face.x) + 2, int(face.y) + 2, int(face.w) - 4, int(face.h) - 4
    region = blurred[y:y + h, x:x + w]
    assert float(cv2.Laplacian(region, cv2.CV_64F).var()) < 0.2 * float(
        cv2.Laplacian(frame[y:y + h, x:x + w], cv2.CV_64F).var())
    assert backend.detector.detect(blurred) == []
    assert np.array_equal(blurred[:, :40], frame[:, :40])  # the rest untouched


def test_face_crop_is_deterministic_and_bounded(backend: FaceBackend) -> None:
    frame, _ = compose("obama3", 60)
    [face] = backend.detector.detect(frame)
    small = FaceCropConfig(max_bytes=4096, size_px=256, quality=95)
    a, b = encode_face_crop(frame, face, small), encode_face_crop(frame, face, small)
    assert a.jpeg == b.jpeg
    assert len(a.jpeg) <= 4096


def test_the_commented_faces_example_in_configs_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "configs" / "camera.yaml"
    lines = example.read_text(encoding="utf-8").splitlines()
    start = lines.index("# faces:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    uncommented = "\n".join([*lines[:start], *block]) + "\n"
    path = tmp_path / "camera.yaml"
    path.write_text(uncommented, encoding="utf-8")
    config = load_config(path, CameraConfig)
    assert config.faces is not None
    assert config.faces.matcher.k_frames == 3
    assert config.faces.stage_config().matcher.threshold == 0.45
    assert load_config(example, CameraConfig).faces is None


def test_a_face_box_at_or_beyond_the_frame_edge(backend: FaceBackend) -> None:
    frame, _ = compose("obama2", 60)
    edge = FaceBox(-30.0, -20.0, 80.0, 90.0, 0.9, ())
    crop = encode_face_crop(frame, edge, FaceCropConfig())
    assert cv2.imdecode(np.frombuffer(crop.jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(ValueError, match="outside"):
        encode_face_crop(frame, FaceBox(700.0, 10.0, 50.0, 50.0, 0.9, ()), FaceCropConfig())


def test_nan_and_negative_scores_never_count(backend: FaceBackend) -> None:
    @dataclass(frozen=True)
    class Cand:
        entry_id: str
        score: float

    class Broken:
        version = 1
        size = 1

        def is_expired(self, now: datetime) -> bool:
            return False

        def search(self, embeddings: object, k: int, now: datetime) -> list[list[Cand]]:
            return [[Cand("e", float("nan")), Cand("e", -1.0)]]

    s = stage(backend, Broken)
    frame, box = compose("obama2", 60)
    for _ in range(4):
        assert s.process(frame, [track("t1", box)], {"t1"}) == []
    assert s.matcher.held_entries() == set()


def test_validate_config_checks_the_face_models(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    hub = Ed25519PrivateKey.generate().public_key()
    video = tmp_path / "v.avi"
    video.write_bytes(b"not empty")

    def validate(faces: dict[str, object]) -> tuple[int, str, str]:
        path = tmp_path / "cam.yaml"
        path.write_text(yaml.safe_dump({
            "site": "s", "device": "cam", "detector": {"type": "hog"},
            "source": {"type": "file", "path": str(video)},
            "faces": {"watchlist": {"hub_keys": {key_id_of(hub): ed25519_public_b64(hub)}},
                      **faces}}), encoding="utf-8")
        rc = main(["edge", "camera", "--config", str(path), "--validate-config"])
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, _ = validate({})
    assert rc == 0
    assert "faces: yunet-sface, threshold 0.4" in out
    rc, _, err = validate({"backend": {"models_dir": str(tmp_path / "empty")}})
    assert rc == 2
    assert "faces: face model" in err and "missing" in err and "fetch" in err


def test_no_embedding_outlives_its_frame(backend: FaceBackend) -> None:
    """Every embedding the stage computes is unreferenced once process() returns: nothing of a
    face that matched no entry is kept (no list, no cache). The weak references would stay alive
    if anything held the vectors (or a view of them)."""
    import gc
    import weakref

    refs: list[weakref.ref[NDArray[np.float32]]] = []

    class Watched:
        name = backend.embedder.name
        dim = backend.embedder.dim

        def embed(self, image: BgrImage, face: FaceBox) -> Embedding:
            vector = backend.embedder.embed(image, face)
            refs.append(weakref.ref(vector))
            return vector

    b = backend
    watched = FaceBackend(b.name, b.detector, Watched(), b.default_threshold, b.floor, b.licence)
    real = gallery(backend, {"entry-obama": "obama"})

    class WatchedGallery:
        version = real.version
        size = real.size

        def is_expired(self, now: datetime) -> bool:
            return real.is_expired(now)

        def search(self, embeddings: NDArray[np.float32], k: int, now: datetime
                   ) -> list[list[Candidate]]:
            refs.append(weakref.ref(embeddings))  # the stacked queries of the frame
            return real.search(embeddings, k, now)

    s = stage(watched, WatchedGallery)
    frame, box = compose("biden", 60)
    for _ in range(3):
        assert s.process(frame, [track("t1", box)], {"t1"}) == []
    gc.collect()
    assert len(refs) == 6
    assert all(r() is None for r in refs)
    # the control: a held vector keeps its weak reference alive
    held = backend.embedder.embed(frame, backend.detector.detect(frame)[0])
    assert weakref.ref(held)() is not None
