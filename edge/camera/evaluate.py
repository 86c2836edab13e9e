"""How well a person detector sees the people in hand-labelled frames, and what the whole
pipeline counts on a hand-labelled line.

The core is sans-IO (boxes in, figures out) so it can be tested on cases worked out by hand:

- :func:`match_frame`: greedy matching at an IoU threshold (0.5 by default), highest score
  first, as PASCAL VOC does. A detection takes the unmatched counted label it overlaps most; a
  second detection of a person already taken is a false positive (a duplicate). Labels flagged
  ``partial`` or ``small`` (heavily occluded, cut off by the frame edge, too far away to be fair
  to any detector) are *ignore regions*: a missed one costs nothing, and a detection lying
  mostly inside one (at least half of its own area) counts as neither right nor wrong.
- :func:`average_precision`: VOC 2010+ all-point AP: the area under the precision/recall curve
  after making precision monotone (each recall level takes the best precision at that recall or
  beyond).

``python -m edge.camera.evaluate`` runs every available detector (HOG, NanoDet ONNX, NanoDet
TFLite) over the labelled frames of the project's pedestrian video and prints precision, recall
and AP per detector, full frame and as the motion-gated pipeline runs it, and the line-crossing
count of the whole pipeline against the crossing hand labels.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import TypeAdapter, ValidationError

from edge.camera.detectors import Detector, DetectorConfig, DetectorError, build_detector
from edge.camera.detectors.hog import Config as HogConfig
from edge.vision.boxes import Box, Detection, area, iou

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "tests" / "data" / "labels" / "vtest_every20.json"
CROSSINGS = REPO / "tests" / "data" / "vtest_line_crossings.yaml"
VIDEO_FPS = 10.0
IGNORE_FLAGS = frozenset({"partial", "small"})
# a detection at least this much inside an ignore region is not held against the detector
IGNORE_COVER = 0.5
CROSSING_TOLERANCE_FRAMES = 15


@dataclass(frozen=True, slots=True)
class LabelBox:
    box: Box
    ignore: bool = False


@dataclass(frozen=True)
class Labels:
    frame_size_px: tuple[int, int]
    frames: Mapping[int, Sequence[LabelBox]]

    @property
    def counted(self) -> int:
        return sum(1 for boxes in self.frames.values() for b in boxes if not b.ignore)


class LabelsError(ValueError):
    """A label file that cannot be used; the message says where and what."""


def parse_labels(data: Mapping[str, Any]) -> Labels:
    """Labels from the JSON document of ``tests/data/labels/`` (see its METHOD.md)."""
    try:
        w, h = (int(v) for v in data["frame_size_px"])
        frames: dict[int, list[LabelBox]] = {}
        for entry in data["frames"]:
            index = int(entry["frame"])
            if index in frames:
                raise LabelsError(f"frame {index} is labelled twice")
            boxes = []
            for item in entry["boxes"]:
                x1, y1, x2, y2 = (float(v) for v in item["box"])
                if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
                    raise LabelsError(f"frame {index}: box {item['box']} is empty or outside "
                                      f"the {w}x{h} frame")
                flag = item.get("flag")
                if flag is not None and flag not in IGNORE_FLAGS:
                    raise LabelsError(f"frame {index}: unknown flag {flag!r}")
                boxes.append(LabelBox((x1, y1, x2, y2), ignore=flag is not None))
            frames[index] = boxes
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, LabelsError):
            raise
        raise LabelsError(f"not a label document: {err!r}") from err
    return Labels((w, h), frames)


def load_labels(path: Path = LABELS) -> Labels:
    return parse_labels(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class FrameMatch:
    """The counted detections of one frame as (score, true positive), and the people missed."""

    scored: list[tuple[float, bool]]
    missed: int
    ignored: int


def match_frame(detections: Sequence[Detection], truth: Sequence[LabelBox],
                iou_threshold: float = 0.5) -> FrameMatch:
    counted = [t.box for t in truth if not t.ignore]
    ignore = [t.box for t in truth if t.ignore]
    taken = [False] * len(counted)
    scored: list[tuple[float, bool]] = []
    ignored = 0
    for det in sorted(detections, key=lambda d: d.score, reverse=True):
        best, best_iou = -1, iou_threshold
        for i, box in enumerate(counted):
            overlap = iou(det.box, box)
            if not taken[i] and overlap >= best_iou:
                best, best_iou = i, overlap
        if best >= 0:
            taken[best] = True
            scored.append((det.score, True))
            continue
        det_area = area(det.box)
        if det_area > 0 and any(_intersection(det.box, box) / det_area >= IGNORE_COVER
                                for box in ignore):
            ignored += 1
            continue
        scored.append((det.score, False))
    return FrameMatch(scored, taken.count(False), ignored)


def _intersection(a: Box, b: Box) -> float:
    return (max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            * max(0.0, min(a[3], b[3]) - max(a[1], b[1])))


def average_precision(scored: Sequence[tuple[float, bool]], n_truth: int) -> float:
    """All-point interpolated AP of detections ``(score, true positive)`` against ``n_truth``
    people. Ties in score keep their given order (a stable sort), as VOC's evaluation does."""
    if n_truth <= 0:
        raise ValueError("AP needs at least one labelled person")
    if not scored:
        return 0.0
    order = sorted(range(len(scored)), key=lambda i: scored[i][0], reverse=True)
    hits = np.asarray([scored[i][1] for i in order], dtype=np.float64)
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    recall = np.concatenate(([0.0], tp / n_truth, [1.0]))
    precision = np.concatenate(([0.0], tp / (tp + fp), [0.0]))
    # monotone envelope from the right, then sum precision over each step in recall
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


@dataclass(frozen=True)
class Scores:
    tp: int
    fp: int
    fn: int
    ignored: int
    ap: float

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


def score(detections: Mapping[int, Sequence[Detection]], labels: Labels,
          iou_threshold: float = 0.5, min_score: float | None = None) -> Scores:
    """Scores over every labelled frame; a labelled frame with no entry in ``detections`` had
    no detections. Precision and recall are at ``min_score`` (all given detections when None);
    AP uses every detection given, whatever its score."""
    unknown = sorted(set(detections) - set(labels.frames))
    if unknown:
        raise ValueError(f"detections for frames without labels: {unknown[:5]}")
    scored: list[tuple[float, bool]] = []
    tp = fp = fn = ignored = 0
    for index, truth in labels.frames.items():
        dets = list(detections.get(index, ()))
        m = match_frame(dets, truth, iou_threshold)
        scored += m.scored
        ignored += m.ignored
        if min_score is not None:  # re-matched: a dropped detection can free a label
            m = match_frame([d for d in dets if d.score >= min_score], truth, iou_threshold)
        tp += sum(1 for _s, hit in m.scored if hit)
        fp += sum(1 for _s, hit in m.scored if not hit)
        fn += m.missed
    return Scores(tp, fp, fn, ignored, average_precision(scored, labels.counted))


# ------------------------------------------------------------------------------------------
# Line crossings against the hand count


@dataclass(frozen=True)
class CrossingLabels:
    line: tuple[tuple[float, float], tuple[float, float]]
    frame_size_px: tuple[int, int]
    crossings: list[tuple[int, str]]


def load_crossings(path: Path = CROSSINGS) -> CrossingLabels:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    a, b = data["line"]["a"], data["line"]["b"]
    return CrossingLabels(((float(a[0]), float(a[1])), (float(b[0]), float(b[1]))),
                          (int(data["frame_size_px"][0]), int(data["frame_size_px"][1])),
                          [(int(c["frame"]), str(c["direction"])) for c in data["crossings"]])


@dataclass(frozen=True)
class CrossingResult:
    counted: int
    labelled: int
    matched: int
    by_direction: dict[str, tuple[int, int]]  # direction: (counted, labelled)


def compare_crossings(events: Sequence[tuple[int, str]], labels: Sequence[tuple[int, str]],
                      tolerance: int = CROSSING_TOLERANCE_FRAMES) -> CrossingResult:
    """Pair counted crossings ``(frame, direction)`` with labelled ones of the same direction
    within ``tolerance`` frames, nearest first; each label pairs at most once."""
    free = list(labels)
    matched = 0
    pairs = sorted(((abs(ef - lf), i, j) for i, (ef, ed) in enumerate(events)
                    for j, (lf, ld) in enumerate(free) if ed == ld and abs(ef - lf) <= tolerance))
    used_e: set[int] = set()
    used_l: set[int] = set()
    for _d, i, j in pairs:
        if i not in used_e and j not in used_l:
            used_e.add(i)
            used_l.add(j)
            matched += 1
    directions = sorted({d for _f, d in events} | {d for _f, d in labels})
    by_dir = {d: (sum(1 for _f, e in events if e == d), sum(1 for _f, x in labels if x == d))
              for d in directions}
    return CrossingResult(len(events), len(labels), matched, by_dir)


# ------------------------------------------------------------------------------------------
# Detectors and the video (I/O from here on)

DETECTOR_CONFIG: TypeAdapter[Any] = TypeAdapter(DetectorConfig)
# detectors run with a low threshold so that AP sees the whole precision/recall curve;
# precision and recall are then taken at the detector's own configured threshold
CURVE_MIN_SCORE = {"hog": 0.0, "onnx": 0.05, "tflite": 0.05}
NANODET_FILES = {"onnx": "nanodet-m.onnx", "tflite": "nanodet-m.tflite"}


@dataclass(frozen=True)
class Candidate:
    name: str
    config: Any  # a DetectorConfig with min_score lowered to CURVE_MIN_SCORE
    operating_min_score: float


def nanodet_config(runtime: str, models: Path) -> Any:
    """The operating config of NanoDet-m as the agent runs it by default (built by ``gridward
    edge camera models build nanodet-m``); raises DetectorError when the plugins here cannot
    take it."""
    model = models / NANODET_FILES[runtime]
    try:  # the default-detector choice owns the operating config; use it where it exists
        default = importlib.import_module("edge.camera.detectors.default")
        config: Any = getattr(default, f"nanodet_{runtime}_config")(model)
    except (ImportError, AttributeError):
        raw = {"type": runtime, "model": str(model), "output_format": "nanodet",
               "input_scale": "nanodet", "input_layout": "nchw", "min_score": 0.4,
               "nms_iou": 0.5}
        try:
            config = DETECTOR_CONFIG.validate_python(raw)
        except ValidationError as err:
            raise DetectorError(f"the {runtime} plugin here has no NanoDet support: "
                                f"{err.errors()[0]['msg']}") from err
    except ValidationError as err:
        raise DetectorError(f"NanoDet {runtime} config: {err}") from err
    return config


def candidates(models: Path) -> dict[str, Candidate | str]:
    """name -> what to run, or the reason it cannot run here."""
    configs: dict[str, Any] = {"hog": HogConfig()}
    out: dict[str, Candidate | str] = {}
    for runtime in ("onnx", "tflite"):
        try:
            configs[f"nanodet-{runtime}"] = nanodet_config(runtime, models)
        except DetectorError as err:
            out[f"nanodet-{runtime}"] = str(err)
    for name, cfg in configs.items():
        model = getattr(cfg, "model", None)
        if model is not None and not Path(model).is_file():
            out[name] = f"{model} is not built: gridward edge camera models build nanodet-m"
            continue
        curve = cfg.model_copy(update={"min_score": min(cfg.min_score,
                                                        CURVE_MIN_SCORE[cfg.type])})
        out[name] = Candidate(name, curve, float(cfg.min_score))
    return dict(sorted(out.items()))


class AtThreshold:
    """A detector seen through its operating threshold (what the pipeline gets)."""

    def __init__(self, inner: Detector, min_score: float) -> None:
        self.inner, self.min_score, self.name = inner, min_score, inner.name

    def detect(self, frame: NDArray[np.uint8],
               regions: Sequence[Box] | None = None) -> list[Detection]:
        return [d for d in self.inner.detect(frame, regions) if d.score >= self.min_score]

    def close(self) -> None:
        return None  # the evaluation closes the inner detector itself


def frames_of(video: Path, width: int, height: int) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """(index in decode order, BGR frame) for every frame of a video file, through the same
    GStreamer ingest the agent uses (so frame numbers agree with the labels)."""
    from edge.vision.ingest import FileSource, FrameSource, IngestConfig

    src = FrameSource(FileSource(path=video), IngestConfig(width_px=width, height_px=height,
                                                           policy="all"))
    src.start()
    index = 0
    try:
        while True:
            frame = src.read(0.5)
            if frame is None:
                if src.ended.is_set():
                    return
                continue
            yield index, frame.image
            index += 1
    finally:
        src.stop()


@dataclass
class DetectorRun:
    """What one detector did on the video: full-frame detections on the labelled frames,
    the motion-gated pipeline's detections there, its line crossings, and its cost."""

    name: str
    min_score: float | None = None
    full: dict[int, list[Detection]] = field(default_factory=dict)
    gated: dict[int, list[Detection]] = field(default_factory=dict)
    crossings: list[tuple[int, str]] = field(default_factory=list)
    full_ms: list[float] = field(default_factory=list)


def run_video(video: Path, labels: Labels, crossings: CrossingLabels,
              detectors: Mapping[str, Detector], *, pipeline: bool = True,
              thresholds: Mapping[str, float] | None = None) -> list[DetectorRun]:
    """One decode pass; every detector runs full frame on the labelled frames and, when
    ``pipeline``, inside its own motion-gated pipeline on every frame with the labelled line,
    seeing only detections at or above its operating threshold (``thresholds``)."""
    from edge.camera.config import CameraConfig
    from edge.camera.pipeline import FrameProcessor
    from edge.camera.zones import LineZone
    from edge.vision.ingest import FileSource, IngestConfig

    w, h = labels.frame_size_px
    if crossings.frame_size_px != (w, h):
        raise ValueError("the crossing labels and the box labels are at different sizes")
    runs = {name: DetectorRun(name, (thresholds or {}).get(name)) for name in detectors}
    procs: dict[str, FrameProcessor] = {}
    if pipeline:
        cfg = CameraConfig(site="eval", device="eval", source=FileSource(path=video),
                           ingest=IngestConfig(width_px=w, height_px=h, policy="all"),
                           zones=[LineZone(id="line", a=crossings.line[0], b=crossings.line[1],
                                           cooldown_s=0)])
        procs = {name: FrameProcessor(cfg, detector=AtThreshold(
            det, (thresholds or {}).get(name, float("-inf")))) for name, det in detectors.items()}
    for index, image in frames_of(video, w, h):
        labelled = index in labels.frames
        for name, det in detectors.items():
            run = runs[name]
            if labelled:
                t0 = time.perf_counter()
                run.full[index] = det.detect(image)
                run.full_ms.append((time.perf_counter() - t0) * 1000)
            if pipeline:
                result = procs[name].process(image, index / VIDEO_FPS)
                if labelled:
                    run.gated[index] = list(result.detections)
                run.crossings += [(index, e.direction or "") for e in result.events
                                  if e.direction is not None]
    return list(runs.values())


def _table(runs: Sequence[DetectorRun], labels: Labels, skipped: Mapping[str, str],
           crossings: CrossingLabels | None) -> str:
    lines = [f"{labels.counted} labelled people in {len(labels.frames)} frames "
             f"(ignore regions: {sum(1 for f in labels.frames.values() for b in f if b.ignore)})",
             "", f"{'detector':<16}{'mode':<12}{'TP':>5}{'FP':>5}{'FN':>5}"
             f"{'precision':>11}{'recall':>8}{'AP@0.5':>8}{'ms/frame':>10}"]
    for run in runs:
        modes = [("full frame", run.full)] + ([("pipeline", run.gated)] if run.gated else [])
        for mode, dets in modes:
            s = score(dets, labels, min_score=run.min_score)
            ms = f"{float(np.median(run.full_ms)):.0f}" if mode == "full frame" else ""
            lines.append(f"{run.name:<16}{mode:<12}{s.tp:>5}{s.fp:>5}{s.fn:>5}"
                         f"{s.precision:>11.3f}{s.recall:>8.3f}{s.ap:>8.3f}{ms:>10}")
    for name, why in skipped.items():
        lines.append(f"{name:<16}skipped: {why}")
    if crossings is not None and any(run.gated for run in runs):
        lines += ["", f"line crossings (whole pipeline; hand count {len(crossings.crossings)}, "
                      f"matched = same direction within {CROSSING_TOLERANCE_FRAMES} frames)"]
        for run in runs:
            c = compare_crossings(run.crossings, crossings.crossings)
            per = ", ".join(f"{d} {n}/{m}" for d, (n, m) in c.by_direction.items())
            lines.append(f"{run.name:<16}counted {c.counted:>3}  matched {c.matched:>3} of "
                         f"{c.labelled}  ({per})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from edge.camera.models import models_dir
    from edge.camera.testdata import fetch_vtest

    ap = argparse.ArgumentParser(prog="python -m edge.camera.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--crossings", type=Path, default=CROSSINGS)
    ap.add_argument("--models", type=Path, default=None, help="default: the model cache")
    ap.add_argument("--only", action="append", default=None,
                    help="hog, nanodet-onnx or nanodet-tflite (repeatable)")
    ap.add_argument("--no-pipeline", action="store_true",
                    help="full-frame figures only (no gated pipeline, no line crossings)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        labels = load_labels(args.labels)
    except (OSError, LabelsError) as err:
        sys.stderr.write(f"cannot read labels {args.labels}: {err}\n")
        return 2
    crossings = load_crossings(args.crossings)
    found = candidates(args.models or models_dir())
    if args.only:
        found = {k: v for k, v in found.items() if k in args.only}
    detectors: dict[str, Detector] = {}
    thresholds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name, cand in found.items():
        if isinstance(cand, str):
            skipped[name] = cand
            continue
        try:
            detectors[name] = build_detector(cand.config)
            thresholds[name] = cand.operating_min_score
        except DetectorError as err:
            skipped[name] = str(err)
    try:
        runs = run_video(fetch_vtest(), labels, crossings, detectors,
                         pipeline=not args.no_pipeline, thresholds=thresholds)
    finally:
        for det in detectors.values():
            det.close()
    sys.stdout.write(_table(runs, labels, skipped, None if args.no_pipeline else crossings) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
