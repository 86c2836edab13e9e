"""The evaluation harness: false match and false non-match rates of a backend on labelled pairs.

A pairs file is CSV with a header ``path_a,path_b,same``: two images and whether they show the
same person (1) or not (0). A path may end in ``#k`` to pick the k-th face of a photo with
several, counted left to right (``t1.jpg#2``); without it the photo's largest face is used.
Relative paths are taken from the CSV's directory.

For every threshold on a 0.01 grid the harness counts the impostor pairs scoring at or above it
(false matches) and the genuine pairs below it (false non-matches). The equal error rate is
where the two rates cross; the validated floor is the lowest threshold whose false match rate
on the set is at most the target (0 by default). A floor found on a few dozen impostor pairs
says little about a large population: with zero false matches in n trials the true rate can
still be up to 3/n (95 %, the "rule of three"), and the report says so.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from edge.faces.types import BgrImage, Embedding, FaceBackend

log = logging.getLogger(__name__)
Say = Callable[[str], None]
THRESHOLDS = tuple(round(i / 100, 2) for i in range(101))
CURVE_RGB = (214, 39, 40)


class PairsError(ValueError):
    """A pairs file that cannot be used; the message names the line."""


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    same: bool


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    threshold: float
    fmr: float
    fnmr: float
    false_matches: int
    false_non_matches: int


@dataclass(slots=True)
class Evaluation:
    backend: str
    embedder: str
    n_genuine: int
    n_impostor: int
    genuine_scores: list[float]
    impostor_scores: list[float]
    rows: list[ThresholdRow]
    eer: float
    eer_threshold: float
    target_fmr: float
    floor: float | None
    skipped: list[str] = field(default_factory=list)

    def caveat(self) -> str:
        if self.n_impostor == 0:
            return "no impostor pairs: the false match rate is unknown"
        bound = min(1.0, 3.0 / self.n_impostor)
        return (f"measured on {self.n_genuine} genuine and {self.n_impostor} impostor pairs: "
                f"a false match rate of 0 here only bounds the true rate below "
                f"{bound:.1%} (95 %, rule of three); validate on data of your own population")

    def summary(self) -> dict[str, object]:
        return {
            "backend": self.backend, "embedder": self.embedder,
            "n_genuine": self.n_genuine, "n_impostor": self.n_impostor,
            "genuine_min": min(self.genuine_scores, default=None),
            "impostor_max": max(self.impostor_scores, default=None),
            "eer": self.eer, "eer_threshold": self.eer_threshold,
            "target_fmr": self.target_fmr, "validated_floor": self.floor,
            "caveat": self.caveat(), "skipped": self.skipped,
            "thresholds": [asdict(r) for r in self.rows],
        }


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of a CSV file, paths resolved against its directory."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PairsError(f"cannot read pairs file {path}: {err.strerror}") from err
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames][:3] != [
            "path_a", "path_b", "same"]:
        raise PairsError(f"{path}: the first line must be the header path_a,path_b,same")
    pairs = []
    for line, row in enumerate(reader, start=2):
        a, b, same = (str(row.get(k) or "").strip() for k in ("path_a", "path_b", "same"))
        if not a or not b or same not in ("0", "1"):
            raise PairsError(f"{path} line {line}: need two paths and same 0 or 1, got "
                             f"{a!r}, {b!r}, {same!r}")
        pairs.append(Pair(_resolve(path.parent, a), _resolve(path.parent, b), same == "1"))
    if not pairs:
        raise PairsError(f"{path} holds no pairs")
    return pairs


def _resolve(base: Path, ref: str) -> str:
    file, sep, index = ref.partition("#")
    p = Path(file)
    return str(p if p.is_absolute() else base / p) + (sep + index)


def builtin_pairs(photos: dict[str, Path], group_faces: int = 6) -> list[Pair]:
    """The test photos as pairs: obama/obama2/obama3 are one person; biden and each of the
    group photo's six faces are six other people (all different)."""
    same = [str(photos[k]) for k in ("obama", "obama2", "obama3")]
    others = [str(photos["biden"])] + [f"{photos['group']}#{i}" for i in range(group_faces)]
    pairs = [Pair(a, b, True) for a, b in combinations(same, 2)]
    identities = [same, *[[o] for o in others]]
    for i, j in combinations(range(len(identities)), 2):
        pairs.extend(Pair(a, b, False) for a in identities[i] for b in identities[j])
    return pairs


class Embedder:
    """Embeds image references once each (photos are read and detected once)."""

    def __init__(self, backend: FaceBackend, say: Say) -> None:
        self.backend = backend
        self._say = say
        self._faces: dict[str, list[Embedding]] = {}
        self.skipped: list[str] = []

    def _photo(self, file: str) -> list[Embedding]:
        import cv2

        if file not in self._faces:
            image = cv2.imread(file, cv2.IMREAD_COLOR)
            if image is None:
                raise PairsError(f"cannot read image {file}")
            bgr: BgrImage = np.asarray(image, dtype=np.uint8)
            faces = self.backend.detector.detect(bgr)
            largest = max(faces, key=lambda f: f.area) if faces else None
            ordered = sorted(faces, key=lambda f: f.x)
            if largest is not None:
                ordered = [largest, *ordered]  # index -1 style: [0] largest, then left to right
            self._faces[file] = [self.backend.embedder.embed(bgr, f) for f in ordered]
        return self._faces[file]

    def embed(self, ref: str) -> Embedding | None:
        file, sep, index = ref.partition("#")
        faces = self._photo(file)
        pick = 0 if not sep else int(index) + 1 if index.isdigit() else -1
        if pick < 0 or pick >= len(faces):
            if ref not in self.skipped:
                self.skipped.append(ref)
                log.warning("no face %s in %s: its pairs are skipped", index or "", file)
            return None
        return faces[pick]


def rates(genuine: Sequence[float], impostor: Sequence[float],
          thresholds: Sequence[float] = THRESHOLDS) -> list[ThresholdRow]:
    g, i = np.asarray(genuine, dtype=np.float64), np.asarray(impostor, dtype=np.float64)
    rows = []
    for t in thresholds:
        fm = int((i >= t).sum())
        fnm = int((g < t).sum())
        rows.append(ThresholdRow(t, fm / len(i) if len(i) else 0.0,
                                 fnm / len(g) if len(g) else 0.0, fm, fnm))
    return rows


def equal_error_rate(rows: Sequence[ThresholdRow]) -> tuple[float, float]:
    """(EER, threshold): the grid point where FMR and FNMR are closest, their mean there."""
    best = min(rows, key=lambda r: (abs(r.fmr - r.fnmr), r.threshold))
    return (best.fmr + best.fnmr) / 2, best.threshold


def validated_floor(rows: Sequence[ThresholdRow], target_fmr: float = 0.0) -> float | None:
    """The lowest threshold from which on every FMR is at most ``target_fmr``."""
    floor = None
    for row in sorted(rows, key=lambda r: -r.threshold):
        if row.fmr > target_fmr:
            break
        floor = row.threshold
    return floor


def evaluate(pairs: Sequence[Pair], backend: FaceBackend, *, target_fmr: float = 0.0,
             say: Say | None = None) -> Evaluation:
    tell = say or (lambda _m: None)
    embedder = Embedder(backend, tell)
    genuine: list[float] = []
    impostor: list[float] = []
    step = max(1, len(pairs) // 10)
    for n, pair in enumerate(pairs, start=1):
        a, b = embedder.embed(pair.a), embedder.embed(pair.b)
        if a is not None and b is not None:
            (genuine if pair.same else impostor).append(round(float(np.dot(a, b)), 4))
        if n % step == 0 or n == len(pairs):
            tell(f"scored {n}/{len(pairs)} pairs")
    rows = rates(genuine, impostor)
    eer, eer_t = equal_error_rate(rows)
    return Evaluation(backend.name, backend.embedder.name, len(genuine), len(impostor),
                      genuine, impostor, rows, eer, eer_t, target_fmr,
                      validated_floor(rows, target_fmr), embedder.skipped)


def draw_roc(result: Evaluation, path: Path, size_px: int = 480) -> None:
    """The ROC curve (true match rate against false match rate) as a PNG, drawn with Pillow."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size_px, size_px), "white")
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = 50, 44, size_px - 20, size_px - 50
    span_x, span_y = right - left, bottom - top

    def at(fmr: float, tmr: float) -> tuple[float, float]:
        return left + fmr * span_x, bottom - tmr * span_y

    for k in range(11):
        gx, gy = left + k * span_x / 10, bottom - k * span_y / 10
        draw.line([(gx, top), (gx, bottom)], fill=(225, 225, 225))
        draw.line([(left, gy), (right, gy)], fill=(225, 225, 225))
        if k % 5 == 0:
            draw.text((gx - 8, bottom + 6), f"{k / 10:.1f}", fill="black")
            draw.text((left - 30, gy - 6), f"{k / 10:.1f}", fill="black")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.line([at(0, 0), at(1, 1)], fill=(160, 160, 160))  # chance
    points = sorted({(r.fmr, 1.0 - r.fnmr) for r in result.rows} | {(0.0, 0.0), (1.0, 1.0)})
    draw.line([at(x, y) for x, y in points], fill=CURVE_RGB, width=3)
    ex, ey = at(result.eer, 1.0 - result.eer)
    draw.ellipse([ex - 4, ey - 4, ex + 4, ey + 4], outline="black", width=2)
    draw.text((left, 6), f"ROC {result.backend} ({result.n_genuine} genuine, "
              f"{result.n_impostor} impostor pairs), EER {result.eer:.3f}", fill="black")
    draw.text((left + span_x / 2 - 50, size_px - 22), "false match rate", fill="black")
    draw.text((4, top - 18), "true match rate", fill="black")
    img.save(path, "PNG")


def write_report(result: Evaluation, out_dir: Path) -> dict[str, Path]:
    """summary.json, roc.png and rates.csv in ``out_dir`` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"summary": out_dir / "summary.json", "roc": out_dir / "roc.png",
             "rates": out_dir / "rates.csv"}
    files["summary"].write_text(json.dumps(result.summary(), indent=1) + "\n", encoding="utf-8")
    draw_roc(result, files["roc"])
    with files["rates"].open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["threshold", "fmr", "fnmr", "false_matches", "false_non_matches"])
        for r in result.rows:
            writer.writerow([f"{r.threshold:.2f}", f"{r.fmr:.4f}", f"{r.fnmr:.4f}",
                             r.false_matches, r.false_non_matches])
    return files
