"""Real test data for the camera agent, fetched from a package registry into the cache.

The pedestrian video ``vtest.avi`` ships inside the opencv-python 4.11.0.86 source distribution
on PyPI: ``pip download`` fetches the sdist once (through the ordinary package client), only
``vtest.avi`` is extracted and its sha256 checked. Nothing here is committed to the repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SDIST = "opencv-python==4.11.0.86"
SDIST_FILE = "opencv-python-4.11.0.86.tar.gz"
VTEST_MEMBER = "opencv-python-4.11.0.86/opencv/samples/data/vtest.avi"
VTEST_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"


class TestDataMissingError(FileNotFoundError):
    """The cached test data is not there yet."""


def cache_dir() -> Path:
    return Path(os.environ.get("GRIDWARD_CACHE", str(REPO / ".cache")))


def vtest_path(cache: Path | None = None) -> Path:
    """Path of the cached vtest.avi; raises with the command to run when it is missing."""
    path = (cache or cache_dir()) / "camera" / "vtest.avi"
    if not path.is_file():
        raise TestDataMissingError(f"{path} is missing: run `python scripts/fetch_test_data.py`")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_vtest(cache: Path | None = None, say: Callable[[str], None] = lambda _m: None) -> Path:
    """Idempotent: download the sdist if needed, extract and verify ``vtest.avi``."""
    cache = cache or cache_dir()
    target = cache / "camera" / "vtest.avi"
    if target.is_file() and sha256_of(target) == VTEST_SHA256:
        say(f"vtest.avi already cached: {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sdist = downloads / SDIST_FILE
    if not sdist.is_file():
        say(f"downloading the {SDIST} source distribution (~95 MB) with pip ...")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
             "opencv-python", SDIST, "-d", str(downloads)],
            check=True,
        )
    say(f"extracting vtest.avi from {sdist.name} ...")
    with tarfile.open(sdist, "r:gz") as tar, tempfile.TemporaryDirectory(dir=cache) as tmp:
        source = tar.extractfile(tar.getmember(VTEST_MEMBER))
        if source is None:
            raise TestDataMissingError(f"{VTEST_MEMBER} is not a regular file in {sdist}")
        staged = Path(tmp) / "vtest.avi"
        with staged.open("wb") as out:
            shutil.copyfileobj(source, out)
        got = sha256_of(staged)
        if got != VTEST_SHA256:
            raise TestDataMissingError(
                f"vtest.avi sha256 {got} is not the expected {VTEST_SHA256}: refusing it")
        staged.replace(target)
    say(f"vtest.avi ready: {target}")
    return target
