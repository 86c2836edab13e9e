"""The exact graph rewrites SFace runs with on onnxruntime (edge/faces/backends/onnx_graph.py):
the same function as the file as shipped, on synthetic graphs and on every test face."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edge.faces.types import BgrImage, FaceBackend

# slopes below 0 and above 1 on purpose: max(x, a*x) equals PRelu only for 0 <= a <= 1, and
# SFace's own slopes run from -0.81 to 1.12
SLOPES = (-0.8, 0.0, 0.25, 1.0, 1.12)


def _prelu_model(*, slope_as_input: bool = False) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    channels = len(SLOPES)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 3, 4])
    slope = numpy_helper.from_array(np.array(SLOPES, dtype=np.float32).reshape(channels, 1, 1),
                                    "slope")
    # a second PRelu sharing the slope, and a name already taken by what the rewrite would
    # call its first temporary: the generated names must not collide
    nodes = [helper.make_node("PRelu", ["x", "slope"], ["h"], name="p1"),
             helper.make_node("Identity", ["h"], ["y_relu"]),
             helper.make_node("PRelu", ["y_relu", "slope"], ["y"], name="p2")]
    inputs = [x]
    if slope_as_input:
        inputs.append(helper.make_tensor_value_info("slope", TensorProto.FLOAT,
                                                    [channels, 1, 1]))
    graph = helper.make_graph(nodes, "g", inputs, [y], initializer=[slope])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    out: np.ndarray[Any, Any] = session.run(None, {"x": x})[0]
    return out


def test_prelu_rewrite_is_the_same_function_for_any_slope() -> None:
    import onnx

    from edge.faces.backends.onnx_graph import prelu_as_relu

    x = np.random.default_rng(7).normal(0.0, 3.0, (1, len(SLOPES), 3, 4)).astype(np.float32)
    x[0, :, 0, 0] = 0.0
    original = _prelu_model()
    expected = _run(original, x)
    a = np.array(SLOPES, dtype=np.float32).reshape(-1, 1, 1)
    once = np.where(x > 0, x, a * x)
    assert np.allclose(expected, np.where(once > 0, once, a * once), atol=1e-6)  # the oracle

    rewritten = _prelu_model()
    assert prelu_as_relu(rewritten) == 2
    onnx.checker.check_model(rewritten, full_check=True)
    assert "PRelu" not in {n.op_type for n in rewritten.graph.node}
    names = [o for n in rewritten.graph.node for o in n.output]
    assert len(names) == len(set(names))
    assert np.allclose(_run(rewritten, x), expected, rtol=1e-6, atol=1e-6)
    assert prelu_as_relu(rewritten) == 0  # idempotent: nothing left to rewrite


def test_a_slope_overridable_at_run_time_is_left_alone() -> None:
    from edge.faces.backends.onnx_graph import drop_weight_inputs, prelu_as_relu

    model = _prelu_model(slope_as_input=True)
    assert prelu_as_relu(model) == 0
    assert [n.op_type for n in model.graph.node] == ["PRelu", "Identity", "PRelu"]
    assert drop_weight_inputs(model) == 1  # SFace's case: its weights are inputs too
    assert prelu_as_relu(model) == 2


def test_sface_runs_rewritten_and_embeds_every_test_face_as_shipped(
        face_models: None, face_backend: FaceBackend,
        photo: Callable[[str], BgrImage]) -> None:
    import onnx

    from edge.faces.backends.models import SFACE_MODEL
    from edge.faces.backends.onnx_graph import drop_weight_inputs, prelu_as_relu
    from edge.faces.backends.sface import SFaceEmbedder

    graph = onnx.load(str(SFACE_MODEL.path()))
    assert drop_weight_inputs(graph) > 0
    assert prelu_as_relu(graph) == 27  # every PRelu of SFace: none left on the slow kernel
    shipped = SFaceEmbedder(SFACE_MODEL.path(), "onnxruntime", 1, rewrite_prelu=False)
    n = 0
    for label in ("obama", "obama2", "obama3", "biden", "group"):
        image = photo(label)
        for face in face_backend.detector.detect(image):
            a, b = face_backend.embedder.embed(image, face), shipped.embed(image, face)
            assert float(a @ b) > 0.99999
            assert float(np.abs(a - b).max()) < 1e-5
            n += 1
    assert n == 10


def test_without_onnx_sface_runs_as_shipped_and_says_so(
        face_models: None, face_backend: FaceBackend, photo: Callable[[str], BgrImage],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from edge.faces.backends.models import SFACE_MODEL
    from edge.faces.backends.sface import SFaceEmbedder

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with caplog.at_level(logging.WARNING, logger="edge.faces.backends.sface"):
        plain = SFaceEmbedder(SFACE_MODEL.path())
    assert "onnx package is not installed" in caplog.text
    image = photo("biden")
    face = face_backend.detector.detect(image)[0]
    assert float(plain.embed(image, face) @ face_backend.embedder.embed(image, face)) > 0.99999


def test_both_yunet_runtimes_find_the_same_faces(
        face_models: None, face_backend: FaceBackend, photo: Callable[[str], BgrImage]) -> None:
    """The onnxruntime path decodes and suppresses YuNet's output itself: it must give
    FaceDetectorYN's faces, on the photos at their size (shrunk to 1280), letterboxed into a
    640x480 frame (sides not multiples of 32 are padded) and on a frame with no face."""
    import cv2

    from edge.faces.backends import FaceBackendConfig, load_backend

    assert face_backend.detector.runtime == "onnxruntime"  # type: ignore[attr-defined]
    opencv = load_backend(FaceBackendConfig(detector_runtime="opencv")).detector
    group = photo("group")
    frames = [photo(label) for label in ("obama", "obama2", "obama3", "biden")]
    odd: BgrImage = np.asarray(cv2.resize(group, (637, 459)), dtype=np.uint8)
    frames += [group, odd, np.zeros((480, 640, 3), dtype=np.uint8)]
    found = 0
    for frame in frames:
        a, b = face_backend.detector.detect(frame), opencv.detect(frame)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-4)
            assert np.allclose([x.x, x.y, x.w, x.h], [y.x, y.y, y.w, y.h], atol=1e-2)
            assert np.allclose(x.landmarks, y.landmarks, atol=1e-2)
        found += len(a)
    assert found == 4 + 6 + 6


def test_without_onnx_yunet_runs_on_opencv_and_says_so(
        face_models: None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from edge.faces.backends.models import YUNET_MODEL
    from edge.faces.backends.yunet import YuNetDetector

    monkeypatch.setitem(sys.modules, "onnx", None)
    with caplog.at_level(logging.WARNING, logger="edge.faces.backends.yunet"):
        detector = YuNetDetector(YUNET_MODEL.path(), min_score=0.8, nms_iou=0.3, max_faces=5,
                                 max_side_px=1280)
    assert detector.runtime == "opencv"
    assert "onnx package is not installed" in caplog.text
