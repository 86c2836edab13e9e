"""SFace 2021dec (OpenCV model zoo, Apache-2.0): 128-d identity embeddings of aligned crops.

Two runtimes run the same ONNX file and give the same vector (a test checks it): onnxruntime
on one thread, or OpenCV's ``FaceRecognizerSF``. ``bench/faces.py`` measures both; the faster
one on this machine class is the default (see docs/faces.md)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edge.faces.align import CROP_PX, align_face
from edge.faces.types import BgrImage, Embedding, FaceBox

if TYPE_CHECKING:
    from edge.faces.backends import FaceBackendConfig

NAME = "sface-2021dec"
DIM = 128
Runtime = Literal["onnxruntime", "opencv"]


def normalise(vector: Any) -> Embedding:
    """float32, unit length; a zero vector (a blank crop) stays zero rather than NaN."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    out: Embedding = (v / norm).astype(np.float32) if norm > 0 else v
    return out


def ort_session(model: Path, threads: int) -> Any:
    """An onnxruntime CPU session on ``threads`` threads.

    SFace lists its weights as graph inputs as well as initialisers, so onnxruntime must treat
    them as overridable and cannot fold batch norms into the convolutions (it warns once per
    tensor); with the ``onnx`` package present the weights are dropped from the inputs first
    (the same numbers, a test checks the embedding)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source: str | bytes = str(model)
    try:
        import onnx
    except ImportError:
        pass
    else:
        graph = onnx.load(str(model))
        weights = {init.name for init in graph.graph.initializer}
        inputs = [i for i in graph.graph.input if i.name not in weights]
        if len(inputs) != len(graph.graph.input):
            del graph.graph.input[:]
            graph.graph.input.extend(inputs)
            source = graph.SerializeToString()
    return ort.InferenceSession(source, sess_options=options,
                                providers=["CPUExecutionProvider"])


def crop_blob(crop: BgrImage) -> Any:
    """The network input of one aligned crop: RGB, 0..255 float, NCHW (as FaceRecognizerSF)."""
    rgb = crop[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[np.newaxis])


class SFaceEmbedder:
    """Aligns a detected face on its five landmarks and embeds it."""

    name = NAME
    dim = DIM

    def __init__(self, model: Path, runtime: Runtime = "onnxruntime", threads: int = 1) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()  # neither runtime object is documented as thread-safe
        if runtime == "onnxruntime":
            self._session = ort_session(model, threads)
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
