"""The NanoDet decoder on synthetic head tensors (sans-IO), its input normalisation, and the
default-detector choice. The real converted models run in test_nanodet_models.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from edge.camera.config import CameraConfig
from edge.camera.detectors import default as default_mod
from edge.camera.detectors import hog, onnx, tflite
from edge.camera.detectors.default import BUILD_HINT, choose_default, detector_reason
from edge.camera.detectors.nanodet import check_outputs, distances, parse_nanodet
from edge.camera.detectors.preprocess import normalise

LABELS = ["person", "bicycle", "car"]
SIZE = (64, 48)  # W x H: stride 8 -> 8 x 6 cells, 16 -> 4 x 3, 32 -> 2 x 2 (ceil)
BINS = 11
STRIDES = (8, 16, 32)
Head = dict[int, tuple[NDArray[np.float32], NDArray[np.float32]]]


def cells(stride: int) -> tuple[int, int]:
    return -(-SIZE[0] // stride), -(-SIZE[1] // stride)


def empty_head() -> Head:
    """Per stride: scores [1, cells, 3] (all 0.01) and flat distance logits [1, cells, 44]."""
    head = {}
    for s in STRIDES:
        n = cells(s)[0] * cells(s)[1]
        head[s] = (np.full((1, n, len(LABELS)), 0.01, np.float32),
                   np.zeros((1, n, 4 * BINS), np.float32))
    return head


def put(head: Head, stride: int, cell: tuple[int, int], what: tuple[int, float],
        sides: list[dict[int, float]]) -> None:
    """A detection (class, score) at one cell (col, row). ``sides`` gives, per side (l, t,
    r, b), probabilities of bins; they become logits whose softmax is that distribution."""
    scores, dist = head[stride]
    col, row = cell
    cls, score = what
    i = row * cells(stride)[0] + col
    scores[0, i, cls] = score
    for side, probs in enumerate(sides):
        p = np.full(BINS, 1e-9)
        for b, v in probs.items():
            p[b] = v
        dist[0, i, side * BINS:(side + 1) * BINS] = np.log(p / p.sum())


def flat(head: Head) -> list[NDArray[np.float32]]:
    return [t for s in STRIDES for t in head[s]]


def decode(outputs: list[NDArray[np.float32]], **kw: object) -> list[tuple[tuple[float, ...], str]]:
    args: dict[str, object] = {"input_size": SIZE, "labels": LABELS, "min_score": 0.3,
                               "nms_iou": 0.5, "keep": None, "strides": STRIDES, **kw}
    dets = parse_nanodet(outputs, **args)  # type: ignore[arg-type]
    return [(tuple(round(v, 3) for v in d.box), d.label) for d in dets]


def test_distances_are_the_softmax_expectation_not_the_argmax() -> None:
    logits = np.log(np.array([[0.0] * 2 + [0.6, 0.4] + [0.0] * 7] * 4) + 1e-12).reshape(1, 44)
    got = distances(logits, BINS)[0]
    assert got == pytest.approx([2.4] * 4, abs=1e-6)  # argmax would say 2


def test_one_box_decodes_to_its_cell_centre_plus_expected_distances() -> None:
    head = empty_head()
    # stride 8, cell (col 3, row 2): centre (28, 20); left 2.5 bins, top 1, right 0.5, bottom 4
    put(head, 8, (3, 2), (0, 0.9), [{2: 0.5, 3: 0.5}, {1: 1.0}, {0: 0.5, 1: 0.5}, {4: 1.0}])
    assert decode(flat(head)) == [((28 - 20.0, 20 - 8.0, 28 + 4.0, 20 + 32.0), "person")]


def test_output_order_and_layout_do_not_matter() -> None:
    head = empty_head()
    put(head, 16, (1, 1), (0, 0.8), [{3: 1.0}] * 4)
    put(head, 32, (0, 1), (2, 0.7), [{1: 1.0}] * 4)
    want = decode(flat(head))
    # centres (24, 24) and (16, 48); 3 bins of 16 px and 1 bin of 32 px on every side
    assert want == [((-24.0, -24.0, 72.0, 72.0), "person"), ((-16.0, 16.0, 48.0, 80.0), "car")]
    shuffled = [head[32][1], head[8][0], head[16][1], head[32][0], head[8][1], head[16][0]]
    assert decode(shuffled) == want  # LiteRT returns the six outputs in another order
    concatenated = np.concatenate([np.concatenate(head[s], axis=2) for s in STRIDES], axis=1)
    assert decode([concatenated]) == want  # the upstream single-tensor export


def test_keep_threshold_and_nms() -> None:
    head = empty_head()
    put(head, 8, (4, 3), (0, 0.9), [{2: 1.0}] * 4)
    put(head, 8, (5, 3), (0, 0.6), [{2: 1.0}] * 4)  # the same person one cell over: suppressed
    put(head, 8, (0, 0), (1, 0.95), [{1: 1.0}] * 4)  # a bicycle
    put(head, 16, (3, 2), (0, 0.29), [{1: 1.0}] * 4)  # below min_score
    assert decode(flat(head), keep={"person"}) == [((20.0, 12.0, 52.0, 44.0), "person")]
    both = decode(flat(head), nms_iou=0.9)
    assert [label for _, label in both] == ["bicycle", "person", "person"]
    assert decode(flat(head), keep={"dog"}) == []
    # only the best cell of a level reaches NMS (the stride-16 one is under min_score)
    assert decode(flat(head), max_candidates=1) == [((-4.0, -4.0, 12.0, 12.0), "bicycle")]


def test_non_finite_values_give_no_boxes() -> None:
    head = empty_head()
    put(head, 8, (1, 1), (0, 0.9), [{2: 1.0}] * 4)
    put(head, 8, (6, 4), (0, 0.8), [{2: 1.0}] * 4)
    put(head, 16, (2, 1), (0, 0.7), [{2: 1.0}] * 4)
    head[8][1][0, 9, 3] = np.nan  # cell (1, 1): a NaN distance logit
    head[8][1][0, 4 * 8 + 6, 0] = np.inf  # cell (6, 4): an infinite one
    head[16][0][0, 6, 0] = np.nan  # cell (2, 1): a NaN score
    assert decode(flat(head)) == []


def test_logits_and_wrong_shapes_are_refused_with_the_reason() -> None:
    head = empty_head()
    head[8][0][0, 0, 0] = 3.5
    with pytest.raises(ValueError, match="logits, not the sigmoided scores"):
        decode(flat(head))
    with pytest.raises(ValueError, match=r"stride 16 .* needs one \[12, 3\] score tensor"):
        decode([t for s in (8, 32) for t in empty_head()[s]])
    with pytest.raises(ValueError, match="expected 6 tensors"):
        decode([*flat(empty_head()), np.zeros((1, 5, 3), np.float32)])
    with pytest.raises(ValueError, match=r"not \[64 cells, 3 classes \+ 4 x bins\]"):
        decode([np.zeros((1, 63, 47), np.float32)])
    with pytest.raises(ValueError, match="needs the label list"):
        decode(flat(empty_head()), labels=[])
    with pytest.raises(ValueError, match="must be"):
        decode([np.zeros((2, 3, 4, 5), np.float32)])
    check_outputs([[1, 2704, 80], [1, 2704, 44], [1, 676, 80], [1, 676, 44], [1, 169, 80],
                   [1, 169, 44]], input_size=(416, 416), n_classes=80)
    with pytest.raises(ValueError, match="stride 8"):
        check_outputs([[1, 2704, 80], [1, 2704, 44]], input_size=(320, 320), n_classes=80)


def test_nanodet_normalisation_is_bgr_mean_std() -> None:
    rgb = np.array([[[10, 20, 30]]], dtype=np.uint8)
    x = normalise(rgb, "nanodet", np.float32)
    # channel 0 of the tensor is blue (30), 1 green (20), 2 red (10)
    want = [(30 - 103.53) / 57.375, (20 - 116.28) / 57.12, (10 - 123.675) / 58.395]
    assert x.dtype == np.float32 and x[0, 0].tolist() == pytest.approx(want, rel=1e-6)


def test_choose_default_prefers_onnx_then_tflite_then_hog(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config, why = choose_default(tmp_path)
    assert isinstance(config, hog.Config) and "HOG" in why and BUILD_HINT in why
    (tmp_path / "nanodet-m.tflite").write_bytes(b"x")
    config, why = choose_default(tmp_path)
    assert isinstance(config, tflite.Config) and config.output_format == "nanodet"
    assert config.input_layout == "nchw" and config.input_scale == "nanodet" and "LiteRT" in why
    (tmp_path / "nanodet-m.onnx").write_bytes(b"x")
    config, why = choose_default(tmp_path)
    assert isinstance(config, onnx.Config) and config.model == tmp_path / "nanodet-m.onnx"
    assert "onnxruntime" in why and "NanoDet-m 416x416" in why
    monkeypatch.setattr(default_mod, "_installed", lambda module: module != "onnxruntime")
    config, why = choose_default(tmp_path)
    assert isinstance(config, tflite.Config) and "onnxruntime is not installed" in why
    monkeypatch.setattr(default_mod, "_installed", lambda module: False)
    config, why = choose_default(tmp_path)
    assert isinstance(config, hog.Config)
    assert "onnxruntime is not installed" in why and "no TFLite runtime" in why


def test_camera_config_default_detector_follows_the_cache(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDWARD_CACHE", str(tmp_path))
    raw = {"site": "s", "device": "d", "source": {"type": "test"}}
    assert CameraConfig.model_validate(raw).detector.type == "hog"
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "nanodet-m.onnx").write_bytes(b"x")
    assert CameraConfig.model_validate(raw).detector.type == "onnx"
    explicit = CameraConfig.model_validate({**raw, "detector": {"type": "hog"}})
    assert explicit.detector.type == "hog"  # a configured detector is never replaced
    # the start-up sentence camtrack logs: configured as such, the default with its reason
    assert detector_reason(explicit.detector,
                           configured="detector" in explicit.model_fields_set) == (
        "hog detector as configured")
    chosen = CameraConfig.model_validate(raw)
    assert "detector" not in chosen.model_fields_set
    assert detector_reason(chosen.detector, configured=False).startswith(
        "NanoDet-m 416x416 on onnxruntime")
