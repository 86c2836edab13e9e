"""Model manifest fetch/verify over real HTTP on loopback, and the camera CLI."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.camera.models import ModelEntry, ModelError, fetch, load_manifest, verify
from edge.cli import main


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, directory=str(root), **k)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(5)


def _entry(url: str, sha: str) -> ModelEntry:
    return ModelEntry(name="m", kind="tflite", source=url, file="m.tflite", sha256=sha,
                      licence="Apache-2.0", input_size=(320, 320), output="ssd", labels="coco80")


def test_fetch_verifies_sha256_and_refuses_a_substitute(http_dir: tuple[str, Path],
                                                        tmp_path: Path) -> None:
    base, root = http_dir
    (root / "m.tflite").write_bytes(b"model-bytes")
    good = hashlib.sha256(b"model-bytes").hexdigest()
    cache = tmp_path / "models"
    path = fetch(_entry(f"{base}/m.tflite", good), cache)
    assert path.read_bytes() == b"model-bytes" and verify(_entry(base, good), cache) == "ok"
    with pytest.raises(ModelError, match="does not match"):
        fetch(_entry(f"{base}/m.tflite", "0" * 64), tmp_path / "other")
    assert not (tmp_path / "other" / "m.tflite").exists()
    with pytest.raises(ModelError, match="not pinned"):
        fetch(_entry(f"{base}/m.tflite", "unpinned"), tmp_path / "third")
    pinned = fetch(_entry(f"{base}/m.tflite", "unpinned"), tmp_path / "third", pin=True)
    assert good in (pinned.parent / "lock.yaml").read_text()


def test_manifest_loads() -> None:
    names = [m.name for m in load_manifest().models]
    assert "efficientdet-lite0" in names


def test_cli_validate_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "cam.yaml"
    good.write_text("site: s\ndevice: d\nsource: {type: test}\n")
    assert main(["edge", "camera", "--config", str(good), "--validate-config"]) == 0
    assert "videotestsrc" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: s\ndevice: d\nsource: {type: test}\nzones:\n  - {type: nope}\n")
    assert main(["edge", "camera", "--config", str(bad), "--validate-config"]) == 2
    assert "bad.yaml:line 5: zones.0" in capsys.readouterr().err
    assert main(["edge", "camera", "models", "list"]) == 0
