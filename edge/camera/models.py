"""The model manifest (``models/manifest.yaml``) and its fetch / verify / list commands.

Downloads go to ``$GRIDWARD_CACHE/models``; a file is only moved into place after its sha256
matches the manifest, so a truncated or substituted download never becomes a model.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError

from edge.camera.testdata import REPO, cache_dir
from edge.config import ConfigError, StrictModel, parse_config

MANIFEST = REPO / "models" / "manifest.yaml"
UNPINNED = "unpinned"

COCO80 = (  # noqa: SIM905 - one readable block beats 80 quoted items
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
    "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork "
    "knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake "
    "chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush"
).split()
LABEL_SETS: dict[str, tuple[str, ...]] = {"coco80": tuple(COCO80)}


class ModelEntry(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    kind: Literal["tflite", "onnx"]
    source: Annotated[str, Field(pattern=r"^(https?|file)://\S+$")]
    file: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
    sha256: Annotated[str, Field(pattern=r"^([0-9a-f]{64}|unpinned)$")]
    licence: Annotated[str, Field(min_length=1, max_length=64)]
    input_size: tuple[Annotated[int, Field(gt=0, le=4096)], Annotated[int, Field(gt=0, le=4096)]]
    output: Literal["ssd", "yolo"]
    labels: Literal["coco80"]


class Manifest(StrictModel):
    models: list[ModelEntry] = Field(min_length=1)


class ModelError(Exception):
    """A model that cannot be fetched or does not match its manifest entry."""


def load_manifest(path: Path = MANIFEST) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read model manifest {path}: {err.strerror}") from err
    return parse_config(text, Manifest, str(path))


def models_dir() -> Path:
    return cache_dir() / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(entry: ModelEntry, directory: Path | None = None) -> str:
    """"ok", "missing", "unpinned" or "mismatch"."""
    path = (directory or models_dir()) / entry.file
    if not path.is_file():
        return "missing"
    if entry.sha256 == UNPINNED:
        return UNPINNED
    return "ok" if _sha256(path) == entry.sha256 else "mismatch"


def fetch(entry: ModelEntry, directory: Path | None = None, *, pin: bool = False,
          timeout_s: float = 60.0) -> Path:
    directory = directory or models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / entry.file
    if entry.sha256 == UNPINNED and not pin:
        raise ModelError(f"{entry.name}: sha256 is not pinned in the manifest; run with --pin "
                         "to download and record it, then review and copy it into the manifest")
    if verify(entry, directory) == "ok":
        return target
    with tempfile.NamedTemporaryFile(dir=directory, delete=False) as tmp:
        staged = Path(tmp.name)
        try:
            with urllib.request.urlopen(entry.source, timeout=timeout_s) as resp:  # noqa: S310
                shutil.copyfileobj(resp, tmp)
        except OSError as err:
            staged.unlink(missing_ok=True)
            raise ModelError(f"{entry.name}: download from {entry.source} failed: {err}") from err
    got = _sha256(staged)
    if entry.sha256 not in (UNPINNED, got):
        staged.unlink(missing_ok=True)
        raise ModelError(f"{entry.name}: sha256 {got} does not match the manifest's "
                         f"{entry.sha256}: refusing the file")
    staged.replace(target)
    if entry.sha256 == UNPINNED:
        _record_pin(directory, entry.name, got)
    return target


def _record_pin(directory: Path, name: str, digest: str) -> None:
    lock = directory / "lock.yaml"
    data: dict[str, str] = {}
    if lock.is_file():
        try:
            loaded = yaml.safe_load(lock.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            loaded = None
        if isinstance(loaded, dict):
            data = {str(k): str(v) for k, v in loaded.items()}
    data[name] = digest
    lock.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")


def labels_for(entry: ModelEntry) -> list[str]:
    return list(LABEL_SETS[entry.labels])


__all__ = ["MANIFEST", "Manifest", "ModelEntry", "ModelError", "ValidationError", "fetch",
           "labels_for", "load_manifest", "models_dir", "verify"]
