"""An insightface model pack (SCRFD detector + ArcFace recogniser, e.g. buffalo_s / buffalo_l)
loaded through insightface's own ``model_zoo.get_model`` from
``<models_dir>/insightface/<pack>/``.

Only the pack's detection and recognition files are opened: each ONNX graph is inspected
first and anything else in the pack (genderage, the 2D/3D landmark models) is skipped without
creating a session, because gridward never infers attributes of a person. The weights are
licensed for non-commercial research only: the config must accept that licence.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edge.faces.align import align_face
from edge.faces.backends.onnx_graph import session_options
from edge.faces.backends.sface import normalise
from edge.faces.types import BgrImage, Embedding, FaceBox

if TYPE_CHECKING:
    from edge.faces.backends import BackendSpec, FaceBackendConfig
    from edge.faces.types import FaceBackend

log = logging.getLogger(__name__)
Role = Literal["detection", "recognition", "other"]
LANDMARK_PX = 192


def classify(model: Path) -> Role:
    """What a pack file is, from its graph alone (the way insightface's router decides)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    initialisers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
    if len(graph.output) >= 5:
        return "detection"
    if len(inputs) == 1 and len(graph.output) == 1:
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        # insightface's router takes 192x192 for the landmark model and 96x96 for genderage
        # before it tries ArcFace (square, >= 112, a multiple of 16)
        if (len(dims) == 4 and dims[2] == dims[3] and dims[2] >= 112 and dims[2] % 16 == 0
                and dims[2] != LANDMARK_PX):
            return "recognition"
    return "other"


def get_zoo_model(model: Path, threads: int) -> Any:
    """insightface's router on one file, CPU only, never downloading."""
    from insightface import model_zoo

    return model_zoo.get_model(str(model), providers=["CPUExecutionProvider"],
                               sess_options=session_options(threads), download=False)


class InsightfaceEmbedder:
    """insightface's ``ArcFaceONNX`` on crops aligned by :mod:`edge.faces.align` (the same
    template insightface's ``norm_crop`` uses)."""

    dim: int

    def __init__(self, model: Path, name: str, threads: int = 1) -> None:
        self._model = get_zoo_model(model, threads)
        if getattr(self._model, "taskname", None) != "recognition":
            raise ValueError(f"{model.name} is not a recognition model")
        self.name = name
        self.dim = int(self._model.output_shape[-1])
        self._size = int(self._model.input_size[0])
        self._lock = threading.Lock()

    def embed_crop(self, crop: BgrImage) -> Embedding:
        with self._lock:
            out = self._model.get_feat(crop)
        return normalise(out)

    def embed(self, image: BgrImage, face: FaceBox) -> Embedding:
        if len(face.landmarks) != 5:
            raise ValueError("ArcFace needs the five landmarks to align the face")
        return self.embed_crop(align_face(image, face.landmarks, self._size))


class ScrfdDetector:
    """insightface's SCRFD: boxes, scores and the five keypoints (ArcFace order)."""

    def __init__(self, model: Path, *, min_score: float, nms_iou: float, max_faces: int,
                 input_px: int, threads: int = 1) -> None:
        self._model = get_zoo_model(model, threads)
        if getattr(self._model, "taskname", None) != "detection":
            raise ValueError(f"{model.name} is not a detection model")
        self._model.prepare(-1, det_thresh=min_score, nms_thresh=nms_iou,
                            input_size=(input_px, input_px))
        self._max_faces = max_faces
        self.name = f"scrfd-{model.stem}"
        self._lock = threading.Lock()

    def detect(self, image: BgrImage) -> list[FaceBox]:
        with self._lock:
            boxes, kpss = self._model.detect(image, max_num=self._max_faces)
        faces = []
        for i, b in enumerate(np.asarray(boxes, dtype=np.float64)):
            kps: tuple[tuple[float, float], ...] = ()
            if kpss is not None:
                kps = tuple((float(x), float(y)) for x, y in np.asarray(kpss[i]).reshape(5, 2))
            faces.append(FaceBox(float(b[0]), float(b[1]), float(b[2] - b[0]),
                                 float(b[3] - b[1]), float(b[4]), kps))
        faces.sort(key=lambda f: -f.score)
        return faces


def pack_files(pack_dir: Path) -> tuple[Path, Path]:
    """The detection and recognition files of a pack; ValueError names what is missing."""
    found: dict[Role, list[Path]] = {"detection": [], "recognition": [], "other": []}
    for path in sorted(pack_dir.glob("*.onnx")):
        role = classify(path)
        found[role].append(path)
        if role == "other":
            log.info("insightface pack %s: %s skipped (not detection or recognition)",
                     pack_dir.name, path.name)
    for role in ("detection", "recognition"):
        if len(found[role]) != 1:
            names = ", ".join(p.name for p in found[role]) or "none"
            raise ValueError(f"insightface pack {pack_dir} needs exactly one {role} model, "
                             f"found {names}")
    return found["detection"][0], found["recognition"][0]


def build(config: FaceBackendConfig, spec: BackendSpec) -> FaceBackend:
    """insightface: the operator's pack, once its licence is accepted in the config."""
    from edge.config import ConfigError
    from edge.faces.backends import insightface_pack_dir
    from edge.faces.backends.models import INSIGHTFACE_LICENCE
    from edge.faces.types import FaceModelMissingError

    if not config.accept_insightface_licence:
        raise ConfigError("backend insightface refused: " + INSIGHTFACE_LICENCE)
    pack_dir = insightface_pack_dir(config)
    if not pack_dir.is_dir():
        raise FaceModelMissingError(
            f"insightface pack {config.insightface_pack} is not in {pack_dir}: gridward does "
            "not download insightface packs (non-commercial licence); copy the unpacked pack "
            "there yourself (see `gridward faces models list`)")
    try:
        import insightface  # noqa: F401
    except ImportError as err:
        raise ConfigError("backend insightface needs the insightface package: pip install "
                          "--no-deps insightface==2.1 and the gridward[faces] extra") from err
    try:
        det_file, rec_file = pack_files(pack_dir)
        detector = ScrfdDetector(det_file, min_score=config.min_detector_score,
                                 nms_iou=config.nms_iou, max_faces=config.max_faces,
                                 input_px=config.insightface_input_px, threads=config.threads)
        embedder = InsightfaceEmbedder(rec_file, f"insightface-{config.insightface_pack}-"
                                       f"{rec_file.stem}", config.threads)
    except (ValueError, RuntimeError, OSError) as err:
        raise ConfigError(f"insightface pack {pack_dir} cannot be used: {err}") from err
    return spec.assemble(detector, embedder)
