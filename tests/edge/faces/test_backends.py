"""The face backends on the real models and photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.faces.types import BgrImage, Embedding, FaceBackend


def test_default_backend_separates_same_and_different_people(
        face_backend: FaceBackend, embedding_of: Callable[[str], Embedding]) -> None:
    assert face_backend.embedder.name == "sface-2021dec"
    assert face_backend.embedder.dim == 128
    same = [float(embedding_of(a) @ embedding_of(b))
            for a, b in (("obama", "obama2"), ("obama", "obama3"), ("obama2", "obama3"))]
    other = [float(embedding_of("biden") @ embedding_of(o)) for o in ("obama", "obama2", "obama3")]
    assert min(same) >= face_backend.default_threshold > max(other)
    for label in ("obama", "biden"):
        v = embedding_of(label)
        assert v.dtype == np.float32 and v.shape == (128,)
        assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-5)


def test_group_photo_gives_six_faces_with_landmarks(
        face_backend: FaceBackend, photo: Callable[[str], BgrImage]) -> None:
    faces = face_backend.detector.detect(photo("group"))
    assert len(faces) == 6
    assert all(len(f.landmarks) == 5 for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_alignment_agrees_with_opencv_align_crop(face_backend: FaceBackend,
                                                 photo: Callable[[str], BgrImage]) -> None:
    import cv2

    from edge.faces.align import align_face
    from edge.faces.testdata import SFACE, face_model_path

    recogniser = cv2.FaceRecognizerSF.create(str(face_model_path(SFACE)), "")
    for label in ("obama", "group"):
        image = photo(label)
        for face in face_backend.detector.detect(image)[:3]:
            row = np.array([face.x, face.y, face.w, face.h,
                            *[c for p in face.landmarks for c in p], face.score],
                           dtype=np.float32)
            reference = np.asarray(recogniser.alignCrop(image, row), dtype=np.int16)
            ours = align_face(image, face.landmarks).astype(np.int16)
            assert ours.shape == reference.shape == (112, 112, 3)
            diff = np.abs(ours - reference)
            assert float(diff.mean()) < 0.5 and int(np.percentile(diff, 99)) <= 2


@settings(max_examples=40, deadline=None)
@given(st.floats(-3.1, 3.1), st.floats(0.05, 20.0), st.floats(-2000, 2000),
       st.floats(-2000, 2000))
def test_similarity_transform_inverts_any_similarity(angle: float, scale: float, dx: float,
                                                     dy: float) -> None:
    from edge.faces.align import ARCFACE_TEMPLATE, similarity_transform

    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE @ rot.T + np.array([dx, dy])  # a face anywhere, any size and roll
    matrix = similarity_transform(src)
    back = src @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(back, ARCFACE_TEMPLATE, atol=1e-6)


def test_similarity_transform_recovers_a_known_transform() -> None:
    from edge.faces.align import ARCFACE_TEMPLATE, similarity_transform

    angle, scale, shift = np.radians(23), 2.5, np.array([40.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (ARCFACE_TEMPLATE - shift) @ np.linalg.inv(rot).T  # template = rot @ src + shift
    matrix = similarity_transform(src)
    assert np.allclose(matrix[:, :2], rot, atol=1e-9)
    assert np.allclose(matrix[:, 2], shift, atol=1e-9)
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform([(5.0, 5.0)] * 5)
    with pytest.raises(ValueError, match="finite"):
        similarity_transform([(float("nan"), 1.0)] * 5)


def test_both_sface_runtimes_give_the_same_embedding(
        face_models: None, face_backend: FaceBackend,
        photo: Callable[[str], BgrImage]) -> None:
    from edge.faces.backends import FaceBackendConfig, load_backend

    other_runtime = "onnxruntime" if FaceBackendConfig().embedder_runtime == "opencv" \
        else "opencv"
    other = load_backend(FaceBackendConfig(embedder_runtime=other_runtime))
    image = photo("biden")
    face = face_backend.detector.detect(image)[0]
    a = face_backend.embedder.embed(image, face)
    b = other.embedder.embed(image, face)
    assert float(a @ b) > 0.9999


def test_blazeface_backend_embeds_into_the_same_space(
        face_models: None, embedding_of: Callable[[str], Embedding],
        photo: Callable[[str], BgrImage]) -> None:
    from edge.faces.backends import FaceBackendConfig, load_backend

    light = load_backend(FaceBackendConfig(backend="blazeface-sface"))
    assert light.detector.name == "blazeface-full-range"
    assert light.embedder.name == "sface-2021dec"  # same embedder: bundles stay compatible
    vectors = {}
    for label in ("obama", "obama2", "biden"):
        image = photo(label)
        faces = light.detector.detect(image)
        assert len(faces) == 1 and len(faces[0].landmarks) == 5
        vectors[label] = light.embedder.embed(image, faces[0])
        # its five points (mouth corners estimated) align close to YuNet's crop
        assert float(vectors[label] @ embedding_of(label)) > 0.9
    assert float(vectors["obama"] @ vectors["obama2"]) >= light.default_threshold
    assert float(vectors["obama"] @ vectors["biden"]) < light.default_threshold


def test_blazeface_six_keypoints_map_onto_the_template() -> None:
    from edge.faces.align import ARCFACE_TEMPLATE
    from edge.faces.backends.blazeface import five_points

    t = ARCFACE_TEMPLATE
    mouth_centre = (t[3] + t[4]) / 2
    six = [t[0], t[1], t[2], mouth_centre, (10.0, 60.0), (100.0, 60.0)]
    five = np.array(five_points(six))
    assert np.allclose(five[:3], t[:3])
    # the estimated corners sit on the template's (its mouth is level with its eyes, nearly)
    assert np.allclose(five[3:], t[3:], atol=0.5)


def test_insightface_code_path_matches_the_default_backend(
        face_backend: FaceBackend, photo: Callable[[str], BgrImage]) -> None:
    """insightface's own router loads the SFace ONNX as an ArcFaceONNX recogniser (a 112x112
    input): the insightface embedder path gives the default backend's vector."""
    # Set-up installs insightface (bootstrap.sh): without it this fails rather than skips.
    from edge.faces.align import align_face
    from edge.faces.backends.insightface_pack import InsightfaceEmbedder, classify
    from edge.faces.testdata import SFACE, face_model_path

    model = face_model_path(SFACE)
    assert classify(model) == "recognition"
    embedder = InsightfaceEmbedder(model, "insightface-test-sface")
    assert embedder.dim == 128
    image = photo("obama3")
    face = face_backend.detector.detect(image)[0]
    crop = align_face(image, face.landmarks)
    ours = face_backend.embedder.embed(image, face)
    theirs = embedder.embed_crop(crop)
    assert float(ours @ theirs) > 0.99
    assert float(embedder.embed(image, face) @ ours) > 0.99


def test_insightface_refuses_without_the_licence_or_the_pack(tmp_path: Path) -> None:
    from edge.config import ConfigError
    from edge.faces.backends import FaceBackendConfig, load_backend
    from edge.faces.types import FaceModelMissingError

    refused = FaceBackendConfig(backend="insightface", insightface_pack="buffalo_s",
                                models_dir=tmp_path)
    with pytest.raises(ConfigError, match="non-commercial"):
        load_backend(refused)
    accepted = refused.model_copy(update={"accept_insightface_licence": True})
    with pytest.raises(FaceModelMissingError, match="does not download"):
        load_backend(accepted)
    # a pack holding only an attribute-sized model is refused before any session exists
    pack = tmp_path / "insightface" / "buffalo_s"
    pack.mkdir(parents=True)
    _tiny_onnx(pack / "genderage.onnx", 96)
    with pytest.raises(ConfigError, match="exactly one detection model, found none"):
        load_backend(accepted)


def _tiny_onnx(path: Path, side: int, outputs: int = 1) -> None:
    """An ONNX graph of Identity nodes with an NCHW ``side`` x ``side`` input and ``outputs``
    outputs (classified by its shape, never run)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, side, side])
    ys = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, 3, side, side])
          for i in range(outputs)]
    nodes = [helper.make_node("Identity", ["x"], [f"y{i}"]) for i in range(outputs)]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], ys)), str(path))


def test_a_pack_yields_its_detector_and_recogniser_and_skips_the_rest(tmp_path: Path,
                                                                      face_models: None) -> None:
    from edge.faces.backends.insightface_pack import classify, pack_files
    from edge.faces.testdata import SFACE, face_model_path

    _tiny_onnx(tmp_path / "det_500m.onnx", 640, outputs=9)  # SCRFD: scores, boxes, kps x 3
    _tiny_onnx(tmp_path / "genderage.onnx", 96)
    _tiny_onnx(tmp_path / "2d106det.onnx", 192)
    (tmp_path / "w600k_mbf.onnx").symlink_to(face_model_path(SFACE))
    assert classify(tmp_path / "genderage.onnx") == "other"
    assert classify(tmp_path / "2d106det.onnx") == "other"
    assert pack_files(tmp_path) == (tmp_path / "det_500m.onnx", tmp_path / "w600k_mbf.onnx")
    (tmp_path / "w600k_r50.onnx").symlink_to(face_model_path(SFACE))
    with pytest.raises(ValueError, match="exactly one recognition model"):
        pack_files(tmp_path)


@pytest.mark.parametrize(("update", "needle"), [
    ({"backend": "insightface"}, "needs insightface_pack"),
    ({"backend": "insightface", "insightface_pack": "../etc"}, "not a path"),
    ({"insightface_pack": "buffalo_s"}, "only apply to backend insightface"),
    ({"accept_insightface_licence": True}, "only apply to backend insightface"),
    ({"match_threshold": 0.05}, "below the validated floor"),
    ({"backend": "nope"}, "literal_error"),
    ({"unknown_key": 1}, "extra_forbidden"),
])
def test_backend_config_refuses_nonsense(update: dict[str, object], needle: str) -> None:
    from pydantic import ValidationError

    from edge.faces.backends import FaceBackendConfig

    with pytest.raises(ValidationError) as info:
        FaceBackendConfig.model_validate(update)
    assert needle in str(info.value) or needle in repr(info.value.errors())


def test_threshold_floor_cannot_be_undercut_but_may_be_raised() -> None:
    from edge.faces.backends import SPECS, FaceBackendConfig, threshold_floor

    for key, spec in SPECS.items():
        assert threshold_floor(key) == spec.floor <= spec.default_threshold
        assert FaceBackendConfig(backend="yunet-sface").threshold() == SPECS[
            "yunet-sface"].default_threshold
    floor = threshold_floor("yunet-sface")
    assert FaceBackendConfig(match_threshold=floor).threshold() == floor
    assert FaceBackendConfig(match_threshold=0.9).threshold() == 0.9


def test_registry_and_config_literal_agree() -> None:
    from typing import get_args

    from edge.faces.backends import BACKENDS, FaceBackendConfig

    literal = FaceBackendConfig.model_fields["backend"].annotation
    assert {s.key for s in BACKENDS} == set(get_args(literal))


def test_missing_and_swapped_model_files_are_refused(tmp_path: Path) -> None:
    from edge.config import ConfigError
    from edge.faces.backends import FaceBackendConfig, load_backend
    from edge.faces.testdata import SFACE, YUNET, face_model_path
    from edge.faces.types import FaceModelMissingError

    config = FaceBackendConfig(models_dir=tmp_path)
    with pytest.raises(FaceModelMissingError, match="gridward faces models fetch"):
        load_backend(config)
    (tmp_path / YUNET.file).write_bytes(face_model_path(YUNET).read_bytes())
    (tmp_path / SFACE.file).write_bytes(b"not the pinned model")
    with pytest.raises(ConfigError, match="pinned sha256"):
        load_backend(config)


def test_detectors_refuse_non_images(face_backend: FaceBackend) -> None:
    with pytest.raises(ValueError, match="H x W x 3"):
        face_backend.detector.detect(np.zeros((10, 10), dtype=np.uint8))
    for side in (2, 5, 31):  # below YuNet's stride: it once returned inf boxes for these
        assert face_backend.detector.detect(np.zeros((side, side, 3), dtype=np.uint8)) == []


def test_implausible_detector_rows_are_dropped() -> None:
    from edge.faces.backends.yunet import plausible

    good = np.array([10, 10, 50, 60, *([20.0] * 10), 0.9])
    assert plausible(good, (100, 100))
    for index, value in ((0, np.inf), (2, 0.0), (3, -5.0), (14, 1.5), (14, np.nan),
                         (0, 200.0), (5, np.inf)):
        bad = good.copy()
        bad[index] = value
        assert not plausible(bad, (100, 100)), (index, value)


def test_the_hub_side_of_faces_loads_no_agent_code(face_models: None) -> None:
    """The hub enrols with the default backend: that path must not import the camera agent
    (the architecture contract) nor insightface (its weights' licence)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from edge.faces.backends import FaceBackendConfig, load_backend\n"
            "from edge.faces import quality, evaluate\n"
            "load_backend(FaceBackendConfig())\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('edge.camera', 'insightface',"
            " 'ai_edge_litert', 'hub')))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_model_pins_agree_with_the_fetch_code() -> None:
    from edge.camera.detectors.packaged_models import BLAZEFACE
    from edge.faces.backends.models import BLAZEFACE_MODEL, SFACE_MODEL, YUNET_MODEL
    from edge.faces.testdata import SFACE, YUNET

    assert (YUNET_MODEL.file, YUNET_MODEL.sha256) == (YUNET.file, YUNET.sha256)
    assert (SFACE_MODEL.file, SFACE_MODEL.sha256) == (SFACE.file, SFACE.sha256)
    full = next(m for m in BLAZEFACE if m.name == "full_range")
    assert (BLAZEFACE_MODEL.file, BLAZEFACE_MODEL.sha256) == (full.file, full.sha256)
    assert BLAZEFACE_MODEL.path().parent.name == "blazeface"


@pytest.mark.bench
def test_faces_bench_runs(face_models: None, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "bench" / "faces.py"
    spec = importlib.util.spec_from_file_location("bench_faces", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--rounds", "1", "--frames", "1"]) == 0
    assert "faces/s on one core, group frame" in capsys.readouterr().out


def test_models_cli_lists_licences_and_verifies_digests(
        face_models: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main
    from edge.faces.testdata import YUNET, face_model_path

    assert main(["faces", "models", "list"]) == 0
    out = capsys.readouterr().out
    for needle in ("yunet-sface: default threshold 0.4, floor 0.37", "MIT", "Apache-2.0",
                   "non-commercial", YUNET.sha256):
        assert needle in out
    (tmp_path / YUNET.file).write_bytes(face_model_path(YUNET).read_bytes()[:-1] + b"\0")
    assert main(["faces", "models", "verify", "--models-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "yunet-2023mar          digest mismatch" in err
    assert "sface-2021dec          missing" in err
    # fetch on a filled cache only checks digests (no registry needed), and never fetches
    # an insightface pack
    assert main(["faces", "models", "fetch"]) == 0
    out = capsys.readouterr().out
    assert "face models ready" in out and "BlazeFace models ready" in out
    assert "insightface packs are not fetched" in out
    assert main(["faces", "models", "verify"]) == 0
