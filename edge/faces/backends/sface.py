"""SFace 2021dec (OpenCV model zoo, Apache-2.0): 128-d identity embeddings of aligned crops.

Two runtimes run the same ONNX file and give the same vector (a test checks it): onnxruntime
on one thread, on the graph after exact rewrites that make it about 1.8x faster
(:mod:`edge.faces.backends.onnx_graph`), or OpenCV's ``FaceRecognizerSF``. ``bench/faces.py``
measures both, and onnxruntime with SFace's PRelus kept; the fastest on this machine class is
the default (see docs/faces.md)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edge.faces.align import CROP_PX, align_face
from edge.faces.backends.onnx_graph import drop_weight_inputs, prelu_as_relu, session_options
from edge.faces.types import BgrImage, Embedding, FaceBox

if TYPE_CHECKING:
    from edge.faces.backends import FaceBackendConfig

NAME = "sface-2021dec"
DIM = 128
Runtime = Literal["onnxruntime", "opencv"]
log = logging.getLogger(__name__)


def normalise(vector: Any) -> Embedding:
    """float32, unit length; a zero vector (a blank crop) stays zero rather than NaN."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    out: Embedding = (v / norm).astype(np.float32) if norm > 0 else v
    return out


def ort_session(model: Path, threads: int, *, rewrite_prelu: bool = True) -> Any:
    """An onnxruntime CPU session on ``threads`` threads, on SFace's graph after the exact
    rewrites of :mod:`edge.faces.backends.onnx_graph`: the same embedding, faster.

    SFace lists its weights as graph inputs as well as initialisers, so onnxruntime must treat
    them as overridable and cannot fold batch norms into the convolutions (it warns once per
    tensor): they are dropped from the inputs. Each PRelu becomes ``a*x + (1-a)*relu(x)``
    (about 1.8x faster, docs/benchmarks.md) unless ``rewrite_prelu`` is false (bench/faces.py's
    baseline). Without the ``onnx`` package the file runs as shipped, with a warning."""
    import onnxruntime as ort

    source: str | bytes = str(model)
    try:
        import onnx
    except ImportError:
        log.warning("the onnx package is not installed: SFace runs its graph as shipped, "
                    "about 2x slower (install gridward[camera])")
    else:
        graph = onnx.load(str(model))
        dropped = drop_weight_inputs(graph)
        rewritten = prelu_as_relu(graph) if rewrite_prelu else 0
        log.debug("SFace graph: %s weight inputs dropped, %s PRelu rewritten", dropped,
                  rewritten)
        if dropped or rewritten:
            source = graph.SerializeToString()
    return ort.InferenceSession(source, sess_options=session_options(threads),
                                providers=["CPUExecutionProvider"])


def crop_blob(crop: BgrImage) -> Any:
    """The network input of one aligned crop: RGB, 0..255 float, NCHW (as FaceRecognizerSF)."""
    rgb = crop[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[np.newaxis])


class SFaceEmbedder:
    """Aligns a detected face on its five landmarks and embeds it."""

    name = NAME
    dim = DIM

    def __init__(self, model: Path, runtime: Runtime = "onnxruntime", threads: int = 1, *,
                 rewrite_prelu: bool = True) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()  # neither runtime object is documented as thread-safe
        if runtime == "onnxruntime":
            self._session = ort_session(model, threads, rewrite_prelu=rewrite_prelu)
            self._input = self._session.get_inputs()[0].name
        else:
            import cv2

            self._recogniser = cv2.FaceRecognizerSF.create(str(model), "")

    def embed_crop(self, crop: BgrImage) -> Embedding:
        """Embed an already aligned 112x112 crop."""
        if crop.shape[:2] != (CROP_PX, CROP_PX):
            raise ValueError(f"an aligned crop is {CROP_PX}x{CROP_PX}, got {crop.shape[:2]}")
        with self._lock:
            if self.runtime == "onnxruntime":
                out = self._session.run(None, {self._input: crop_blob(crop)})[0]
            else:
                out = self._recogniser.feature(crop)
        return normalise(out)

    def embed(self, image: BgrImage, face: FaceBox) -> Embedding:
        if len(face.landmarks) != 5:
            raise ValueError("SFace needs the five landmarks to align the face")
        return self.embed_crop(align_face(image, face.landmarks))


def build_embedder(config: FaceBackendConfig) -> SFaceEmbedder:
    from edge.faces.backends import model_path
    from edge.faces.backends.models import SFACE_MODEL

    return SFaceEmbedder(model_path(config, SFACE_MODEL), config.embedder_runtime,
                         config.threads)
