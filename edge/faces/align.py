"""Five-point face alignment to the 112x112 ArcFace template.

Every embedder here (SFace, insightface's ArcFace) was trained on crops warped so that the
eyes, nose tip and mouth corners land on fixed template points; a similarity transform
(rotation, uniform scale, translation: no shear, so the face keeps its proportions) is fitted
to the detected landmarks by least squares (Umeyama 1991) and applied with ``warpAffine``.
OpenCV's ``FaceRecognizerSF.alignCrop`` does the same; a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from edge.faces.types import BgrImage

CROP_PX = 112
# (x, y) in the 112x112 crop, order of edge.faces.types: right eye, left eye, nose tip, right
# and left mouth corner (insightface's arcface_dst, the same points OpenCV's alignCrop uses)
ARCFACE_TEMPLATE: NDArray[np.float64] = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float64)

Points = Sequence[tuple[float, float]] | NDArray[np.float64]


def similarity_transform(src: Points, dst: Points = ARCFACE_TEMPLATE) -> NDArray[np.float64]:
    """The 2x3 matrix of the least-squares similarity transform taking ``src`` onto ``dst``.

    Raises ValueError for fewer than two points or points that all coincide (no scale)."""
    s = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(s) != len(d) or len(s) < 2:
        raise ValueError(f"need two or more matching points, got {len(s)} and {len(d)}")
    if not np.all(np.isfinite(s)):
        raise ValueError("landmarks are not finite")
    mean_s, mean_d = s.mean(axis=0), d.mean(axis=0)
    cs, cd = s - mean_s, d - mean_d
    var_s = float((cs ** 2).sum()) / len(s)
    if var_s < 1e-9:
        raise ValueError("landmarks coincide: no scale to fit")
    cov = cd.T @ cs / len(s)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a similarity
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign)) / var_s
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_d - scale * rotation @ mean_s
    return matrix


def align_face(image: BgrImage, landmarks: Points, size_px: int = CROP_PX) -> BgrImage:
    """The face warped onto the template, ``size_px`` square (the template scales with it)."""
    import cv2

    dst = ARCFACE_TEMPLATE * (size_px / CROP_PX)
    matrix = similarity_transform(landmarks, dst)
    crop = cv2.warpAffine(image, matrix, (size_px, size_px), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return np.asarray(crop, dtype=np.uint8)
